"""`python -m accvideo launch-command`: the torchrun line per node of a multi-node run, read back by
torchrun's own parser (c10d rendezvous flags) and its accvideo part by ours."""

import json
import re
import shlex

import pytest
from torch.distributed.run import get_args_parser

from accvideo.cli.main import build_parser, main

GPD = ["distill", "gpd", "--teacher", "wan2.1-t2v-1.3b", "--config", "configs/wan2.1-t2v-1.3b/gpd.yaml",
       "--out", "runs/gpd-wan13b", "--set", "trainer.lr=2e-5"]
NODES = ["launch-command", "--nnodes", "2", "--nproc-per-node", "8", "--rdzv-endpoint", "10.0.0.1:29500"]


def test_prints_one_torchrun_line_per_node_that_parses(capsys):
    assert main([*NODES, "--rdzv-id", "gpd-wan13b", *GPD]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if not line.startswith("#")]
    assert len(lines) == 2
    for rank, line in enumerate(lines):
        argv = shlex.split(line)
        assert argv[0] == "torchrun"
        torchrun = get_args_parser().parse_args(argv[1:])
        assert (torchrun.nnodes, torchrun.nproc_per_node, torchrun.node_rank) == ("2", "8", rank)
        assert (torchrun.rdzv_backend, torchrun.rdzv_endpoint, torchrun.rdzv_id) == ("c10d", "10.0.0.1:29500",
                                                                                     "gpd-wan13b")
        assert torchrun.module and torchrun.training_script == "accvideo"
        assert torchrun.training_script_args == GPD
        ours = build_parser().parse_args(torchrun.training_script_args)
        assert (ours.command, ours.method, ours.teacher, ours.set) == ("distill", "gpd", "wan2.1-t2v-1.3b",
                                                                       ["trainer.lr=2e-5"])


def test_json_lists_the_argv_of_every_node(capsys):
    assert main([*NODES[:2], "3", *NODES[3:], "--json", "synvid", "--config", "configs/wan2.1-t2v-1.3b/synvid.yaml",
                 "--out", "runs/s"]) == 0
    commands = json.loads(capsys.readouterr().out)
    assert [c[3] for c in commands] == ["--node-rank=0", "--node-rank=1", "--node-rank=2"]
    assert all("--rdzv-backend=c10d" in c and c[c.index("-m") + 1] == "accvideo" for c in commands)


@pytest.mark.parametrize("args, match", [
    (["--nnodes", "0", "--nproc-per-node", "8", "--rdzv-endpoint", "h:29500", *GPD], r"`--nnodes` must be an integer "
     r">= 1 but is 0"),
    (["--nnodes", "2", "--nproc-per-node", "8", "--rdzv-endpoint", "h", *GPD], r"`--rdzv-endpoint` must be HOST:PORT"),
    (["--nnodes", "2", "--nproc-per-node", "8", "--rdzv-endpoint", "h:1", "generate", "--prompt", "x"],
     r"`COMMAND` must be one of the torchrun commands"),
    (["--nnodes", "2", "--nproc-per-node", "8", "--rdzv-endpoint", "h:1", "distill", "gpd", "--stepz", "3"],
     r"`COMMAND` must parse as `python -m accvideo distill gpd --stepz 3` but does not"),
])
def test_bad_arguments_are_named(args, match, capsys):
    assert main(["launch-command", *args]) == 2
    assert re.search(match, capsys.readouterr().err)
