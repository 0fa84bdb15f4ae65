"""`python -m accvideo distill METHOD ...`: the command line of the distillation recipes.

Argument parsing only; the recipes (configs and `run_*`) live in `accvideo.training.recipes`,
so experiments never import a CLI module.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from accvideo.training.preflight import check_plan, synvid_size
from accvideo.training.recipes.accvideo import AccVideoDistillConfig, run_accvideo
from accvideo.training.recipes.decoder import DecoderDistillConfig, run_decoder_distill
from accvideo.training.recipes.gpd import GPDDistillConfig, run_gpd
from accvideo.training.watchdog import WatchdogStop
from accvideo.util.config import load_config


def cmd_distill(args: argparse.Namespace) -> int:
    overrides = list(args.set or [])
    if args.steps is not None:
        overrides.append(f"trainer.steps={args.steps}")
    if args.watchdog is not None:
        if args.watchdog < 0:
            raise ValueError(f"`--watchdog` must be a number of steps >= 0 (0: off) but is {args.watchdog}.")
        overrides.append(f"watchdog.every={args.watchdog}")
    if args.watchdog_stop:
        overrides.append("watchdog.stop=true")
    # Test-only: tests/test_app.py sets ACCVIDEO_TEST_FORCE_LR in the app's own environment so that a
    # job launched from the browser really collapses (the form refuses any lr above 0.1, and at 0.1 the
    # tiny model degrades without collapsing). No form field, argument or config key sets it, so the UI
    # cannot trigger it; the forced lr is saved in the run's resolved config like any override.
    if os.environ.get("ACCVIDEO_TEST_FORCE_LR"):
        overrides.append(f"trainer.lr={float(os.environ['ACCVIDEO_TEST_FORCE_LR']):g}")
    out = Path(args.out)
    if args.resume == "never" and (out / "checkpoints").exists():
        raise ValueError(f"`--out` {str(out)!r} already holds a run; pass `--resume auto` or choose a new folder.")
    if args.method == "accvideo":
        if not args.synvid:
            raise ValueError(f"`--synvid` is required for `distill accvideo` but is {args.synvid!r} (make one with "
                             "`accvideo synvid`).")
        if not (Path(args.synvid) / "config.json").is_file():
            raise ValueError(f"`--synvid` must be a SynVid folder (with config.json, made by `accvideo synvid`) "
                             f"but is {args.synvid!r}.")
        cfg = load_config(AccVideoDistillConfig, args.config, overrides)
        _check_plan(args, "accvideo", cfg, synvid_size(args.synvid))
        summary = _stopping(run_accvideo, args.teacher, args.synvid, out, cfg, resume=args.resume == "auto",
                            dry_run=args.dry_run)
    elif args.method == "gpd":
        if args.schedule:  # "48,24,12,6": the teacher's step count, then each stage's
            counts = [c.strip() for c in args.schedule.split(",") if c.strip()]
            if len(counts) < 2 or not all(c.isdigit() for c in counts):
                raise ValueError(f"`--schedule` must list the teacher's steps then each stage's, "
                                 f"like 48,24,12,6, but is {args.schedule!r}.")
            overrides += [f"method.teacher_steps={counts[0]}", f"method.schedule=[{','.join(counts[1:])}]"]
        cfg = load_config(GPDDistillConfig, args.config, overrides)
        _check_plan(args, "gpd", cfg)
        summary = _stopping(run_gpd, args.teacher, out, cfg, resume=args.resume == "auto", dry_run=args.dry_run)
    elif args.method == "decoder":
        if args.synvid and not (Path(args.synvid) / "config.json").is_file():
            raise ValueError(f"`--synvid` must be a SynVid folder (with config.json, made by `accvideo synvid`) "
                             f"but is {args.synvid!r}.")
        cfg = load_config(DecoderDistillConfig, args.config, overrides)
        summary = run_decoder_distill(args.teacher, out, cfg, synvid=args.synvid, resume=args.resume == "auto",
                                      dry_run=args.dry_run)
        if not args.dry_run and int(os.environ.get("RANK", "0")) == 0 and args.check_videos > 0:
            from accvideo.eval.decoder import record_check

            summary["check"] = record_check(args.teacher, out, num_videos=args.check_videos)
    else:  # argparse restricts the choices
        raise ValueError(f"`method` must be one of {METHODS} but is {args.method!r}.")
    if summary is None:
        return 3  # stopped by the watchdog: not a success, and not a bad argument (2)
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps(summary, indent=2, default=str))
    return 0


def world_size() -> int:
    """Ranks of this run: torchrun's WORLD_SIZE (all nodes), 1 under plain `python`."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def _check_plan(args: argparse.Namespace, kind: str, cfg, size: dict | None = None) -> None:
    """Refuse, before any weights load, a run whose memory plan exceeds `--gpu-mem` (or, for a real
    teacher on CUDA, the GPU's memory); see `accvideo.training.preflight`."""
    check_plan(kind, args.teacher, cfg, world_size(), args.gpu_mem, size=size, check=not args.no_plan_check)


def add_plan_arguments(p: argparse.ArgumentParser) -> None:
    """`--gpu-mem GB` and `--no-plan-check` (shared by `distill` and `synvid`)."""
    p.add_argument("--gpu-mem", type=float, default=None, metavar="GB",
                   help="refuse the run before loading weights when its memory plan exceeds GB per GPU (default: "
                        "the CUDA GPU's own memory, checked for real teachers only; no check on a CPU)")
    p.add_argument("--no-plan-check", action="store_true",
                   help="skip the memory plan (a warning); a run that does not fit then fails with CUDA out of memory")


def _stopping(run, *args, **kwargs):
    """`run(...)`, or None after the watchdog stopped it (its reason on stderr, once)."""
    try:
        return run(*args, **kwargs)
    except WatchdogStop as stop:
        if int(os.environ.get("RANK", "0")) == 0:
            print(f"stopped: {stop}", file=sys.stderr)
        return None


METHODS = ["accvideo", "gpd", "decoder"]


def add_parser(sub) -> None:
    p = sub.add_parser("distill", help="distil a few-step student from a teacher (AccVideo; GPD), or its "
                       "VAE into a lightweight decoder (decoder)")
    p.add_argument("method", choices=METHODS)
    p.add_argument("--teacher", default="tiny-teacher", help="teacher model name or pipeline folder")
    p.add_argument("--synvid", help="SynVid folder (accvideo; decoder: its final states, else world clips)")
    p.add_argument("--out", required=True, help="run folder; the student lands in OUT/pipeline")
    p.add_argument("--steps", type=int, default=None, help="optimiser steps (trainer.steps; per stage for gpd)")
    p.add_argument("--schedule", default=None, help="gpd: teacher steps, then student steps per stage, e.g. 48,24,12,6")
    p.add_argument("--config", help="YAML with `trainer:` and `method:` sections")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="dotted override, e.g. method.lambda_adv=0")
    p.add_argument("--resume", choices=["auto", "never"], default="auto")
    p.add_argument("--check-videos", type=int, default=8, help="decoder: generated videos for the final PSNR and "
                   "speed check against the VAE (0: skip)")
    p.add_argument("--dry-run", action="store_true", help="build everything, print what would train, exit")
    p.add_argument("--watchdog", type=int, default=None, metavar="N",
                   help="every N steps render a validation clip into OUT/watchdog and flag collapse (solid, noise, "
                        "static, exploding); off by default (watchdog.every in a config)")
    p.add_argument("--watchdog-stop", action="store_true", help="stop the run at the first flagged clip (exit 3)")
    add_plan_arguments(p)  # accvideo, gpd (the decoder's distillation has no plan)
    p.set_defaults(func=cmd_distill)
