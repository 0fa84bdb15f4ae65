"""`python -m accvideo launch-command --nnodes N --nproc-per-node G --rdzv-endpoint HOST:PORT COMMAND ...`:
the exact `torchrun` line to run on each node of a multi-node run (docs/GPU.md, "Multi-node").

It prints and runs nothing else. COMMAND (`distill gpd --teacher ... --out ...`, `synvid ...`,
`train-teacher ...`) is checked by the real `python -m accvideo` parser first, so a typo fails
here rather than on 16 GPUs. The rendezvous is torchrun's c10d backend at HOST:PORT (the first
node's address, reachable from all); every node runs the same line but for its `--node-rank`.
"""

from __future__ import annotations

import argparse
import re
import shlex

# the commands that run under torchrun (one entry point for `python` and `torchrun`)
LAUNCHABLE = ("distill", "synvid", "train-teacher")
RDZV_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _check(args: argparse.Namespace) -> None:
    for name in ("nnodes", "nproc_per_node"):
        value = getattr(args, name)
        if value < 1:
            raise ValueError(f"`--{name.replace('_', '-')}` must be an integer >= 1 but is {value}.")
    host, _, port = args.rdzv_endpoint.rpartition(":")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"`--rdzv-endpoint` must be HOST:PORT with a port in [1, 65535] but is "
                         f"{args.rdzv_endpoint!r}.")
    if not RDZV_ID.fullmatch(args.rdzv_id):
        raise ValueError(f"`--rdzv-id` must be 1-64 characters from A-Z, a-z, 0-9, _ and - but is {args.rdzv_id!r}.")
    command = [c for c in args.accvideo if c != "--"] if args.accvideo[:1] == ["--"] else args.accvideo
    if not command or command[0] not in LAUNCHABLE:
        raise ValueError(f"`COMMAND` must be one of the torchrun commands {list(LAUNCHABLE)} with its arguments "
                         f"but is {shlex.join(command)!r}.")
    from accvideo.cli.main import build_parser

    def refuse(message: str):
        raise ValueError(f"`COMMAND` must parse as `python -m accvideo {shlex.join(command)}` but does not: "
                         f"{message}.")

    parser = build_parser()
    parsers = [parser, *(sub for action in parser._subparsers._group_actions for sub in action.choices.values())]
    for each in parsers:  # a bad COMMAND is our ValueError (exit 2 with its sentence), not argparse's exit
        each.error = refuse
    parser.parse_args(command)
    args.accvideo = command


def node_commands(args: argparse.Namespace) -> list[list[str]]:
    """One torchrun argv per node, node rank 0 first (the checked `args` of `launch-command`)."""
    return [["torchrun", f"--nnodes={args.nnodes}", f"--nproc-per-node={args.nproc_per_node}", f"--node-rank={rank}",
             "--rdzv-backend=c10d", f"--rdzv-endpoint={args.rdzv_endpoint}", f"--rdzv-id={args.rdzv_id}",
             "-m", "accvideo", *args.accvideo] for rank in range(args.nnodes)]


def cmd_launch_command(args: argparse.Namespace) -> int:
    _check(args)
    if args.json:
        import json

        print(json.dumps(node_commands(args)))
        return 0
    world = args.nnodes * args.nproc_per_node
    print(f"# {args.nnodes} node(s) x {args.nproc_per_node} process(es) = {world} ranks; rendezvous c10d at "
          f"{args.rdzv_endpoint} (reachable from every node). --out must be on storage all nodes share.")
    for rank, argv in enumerate(node_commands(args)):
        print(f"# node {rank}")
        print(shlex.join(argv))
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("launch-command", help="print the torchrun command for each node of a multi-node run")
    p.add_argument("--nnodes", type=int, required=True, help="nodes (machines) in the run")
    p.add_argument("--nproc-per-node", type=int, required=True, help="processes per node: one per GPU")
    p.add_argument("--rdzv-endpoint", required=True, metavar="HOST:PORT",
                   help="the c10d rendezvous: the first node's address and a free port, e.g. 10.0.0.1:29500")
    p.add_argument("--rdzv-id", default="accvideo", help="the run's rendezvous id (the same on every node)")
    p.add_argument("--json", action="store_true", help="print one JSON list of argv lists, node 0 first")
    p.add_argument("accvideo", nargs=argparse.REMAINDER, metavar="COMMAND ...",
                   help=f"the accvideo command and its arguments, after the options above: {', '.join(LAUNCHABLE)}")
    p.set_defaults(func=cmd_launch_command)

