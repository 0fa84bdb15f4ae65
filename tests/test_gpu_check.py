"""The GPU check (`scripts/gpu_check.sh`, issue 16) is run rarely and on a borrowed machine, so
whatever can fail without a GPU is caught here: the script's syntax, every `accvideo` command
line it runs (parsed by the real parser, overrides applied to the real configs), its refusal
without CUDA, and its Python helper end to end at a small size on the CPU."""

import importlib.util
import json
import re
import shlex
import subprocess
from pathlib import Path

import pytest
import torch

from accvideo.cli.main import build_parser

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "gpu_check.sh"


def _helper():
    spec = importlib.util.spec_from_file_location("gpu_check_real", REPO / "scripts" / "gpu_check_real.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _commands(tail: str) -> list[list[str]]:
    """The argument lists after `tail` ("-m accvideo" or "gpu_check_real.py") in the script, with
    continuation lines joined and shell variables replaced by a placeholder value."""
    text = SCRIPT.read_text().replace("\\\n", " ")
    found = []
    for line in text.splitlines():
        if line.lstrip().startswith("#") or tail not in line:
            continue
        line = re.sub(r'"?\$\{?[A-Z_]+(\[@\])?\}?(/[^" ]*)?"?', "X", line.split(tail, 1)[1])
        found.append(shlex.split(line))
    return found


def test_script_syntax():
    done = subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_every_accvideo_command_parses_and_its_overrides_apply():
    from accvideo.training.recipes.accvideo import AccVideoDistillConfig
    from accvideo.training.recipes.gpd import GPDDistillConfig
    from accvideo.util.config import apply_overrides

    commands = _commands("-m accvideo")
    assert {c[0] for c in commands} == {"generate", "synvid", "distill", "plan"}
    parser = build_parser()
    for argv in commands:
        args = parser.parse_args(["3" if a == "X" and argv[i - 1] == "--gpu-mem" else a for i, a in enumerate(argv)])
        if argv[0] in ("distill", "plan"):  # a misspelt key is an error here, not on the GPU machine
            cls = {"accvideo": AccVideoDistillConfig, "gpd": GPDDistillConfig}.get(
                getattr(args, "method", None) or Path(args.config).stem)
            if cls is not None:
                apply_overrides(cls(), args.set or [])
    # the helper's own distillation command lines, as the real-size parts run them
    helper = _helper()
    for method in ("accvideo", "gpd"):
        argv = helper.distill_argv(method, Path("t"), Path("o"), 3, Path("s"))
        args = parser.parse_args(argv)
        cfg = {"accvideo": AccVideoDistillConfig, "gpd": GPDDistillConfig}[method]
        from accvideo.util.config import load_config

        load_config(cfg, args.config, args.set)


def test_every_helper_command_exists():
    helper = _helper()
    for argv in _commands("gpu_check_real.py"):
        with pytest.raises(SystemExit) as stop:  # --help of each subcommand: it exists and parses
            helper.main([argv[0], "--help"])
        assert stop.value.code == 0


@pytest.mark.slow  # a bash + python subprocess: about 4 s
def test_stops_with_a_sentence_without_cuda(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present: the check would run")
    done = subprocess.run(["bash", str(SCRIPT), str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "no CUDA device" in done.stderr and "Nothing was run" in done.stderr
    assert not list((tmp_path / "out").glob("*.out"))


def test_run_figures_reads_step_times_and_peak(tmp_path):
    (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in [
        {"step": 1, "elapsed_s": 5.0, "student/loss": 1.0, "peak_gpu_memory_gb": 20.0},
        {"step": 2, "elapsed_s": 7.0, "student/loss": 0.5, "peak_gpu_memory_gb": 21.0},
        {"step": 3, "elapsed_s": 9.5, "student/loss": 0.25, "peak_gpu_memory_gb": 21.0}]) + "\n")
    figures = _helper().run_figures(tmp_path)
    assert figures["step_s"] == [5.0, 2.0, 2.5] and figures["steady_step_s"] == 2.25
    assert figures["peak_gpu_memory_gb"] == 21.0 and figures["final_losses"] == {"student/loss": 0.25}
    with pytest.raises(ValueError, match="no metrics.jsonl"):
        _helper().run_figures(tmp_path / "missing")


def test_cpu_smoke_builds_the_real_architecture_small_and_trains_one_step(tmp_path):
    helper = _helper()
    figures = helper.cpu_smoke(tmp_path)
    config = json.loads((tmp_path / "pipeline" / "transformer" / "config.json").read_text())
    assert config["text_dim"] == 4096 and config["in_channels"] == 16 and config["patch_size"] == [1, 2, 2]
    vae = json.loads((tmp_path / "pipeline" / "vae" / "config.json").read_text())
    assert (vae["z_dim"], vae["scale_factor_temporal"], vae["scale_factor_spatial"]) == (16, 4, 8)
    assert figures["synvid"]["nfe"] == 10 and figures["synvid"]["frames"] == 5
    for method in ("accvideo", "gpd"):
        fig = figures[method]
        assert fig["steps"] == 1 and all(v == v and abs(v) < 1e6 for v in fig["final_losses"].values())
