"""`python -m accvideo plan CONFIG --gpus N --gpu-mem GB [--json]`: the memory plan of a run.

Argument parsing only; the estimate is `accvideo.training.plan`. Exits 0 when the run fits, 3
when it does not (so a launcher script can refuse it), after printing the plan.
"""

from __future__ import annotations

import argparse
import json

NOT_FITTING = 3


def cmd_plan(args: argparse.Namespace) -> int:
    from accvideo.training.plan import plan_config

    result = plan_config(args.config, args.gpus, args.gpu_mem, teacher=args.teacher, overrides=args.set or [],
                         recalibrate=args.recalibrate)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{result['kind']} with {result['teacher']} on {result['gpus']} GPU(s) of {result['gpu_mem_gb']:g} GB: "
              f"{result['frames']} frames of {result['height']}x{result['width']} ({result['tokens']:,} tokens)")
        for part, gb in result["parts_gb"].items():
            print(f"  {part:<36} {gb:9.2f} GB")
        print(f"  {'peak':<36} {result['peak_gb']:9.2f} GB   (needed with allocator and CUDA context: "
              f"{result['needed_gb']:.2f} GB)")
        if result["fits"]:
            print("fits")
        elif result["change"]:
            print(f"does not fit; change {', '.join(result['change']['settings'])} "
                  f"(peak {result['change']['peak_gb']:.2f} GB)")
        else:
            print("does not fit, and no setting the plan knows makes it fit: use more or larger GPUs")
    return 0 if result["fits"] else NOT_FITTING


def add_parser(sub) -> None:
    p = sub.add_parser("plan", help="estimated peak GPU memory per GPU of a SynVid / AccVideo / GPD config, part by "
                                    "part, and whether it fits")
    p.add_argument("config", help="a YAML config (configs/wan2.1-t2v-1.3b/{synvid,accvideo,gpd}.yaml)")
    p.add_argument("--gpus", type=int, required=True, help="GPUs (ranks) the run uses")
    p.add_argument("--gpu-mem", type=float, required=True, help="memory of one GPU in GB (1e9 bytes)")
    p.add_argument("--teacher", default=None, help="teacher name or folder (default: the config's folder name)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="config override, as for distill")
    p.add_argument("--json", action="store_true", help="print the plan as one JSON object")
    p.add_argument("--recalibrate", action="store_true", help="measure the architecture's activations again")
    p.set_defaults(func=cmd_plan)
