"""`python -m accvideo distill METHOD ...`: the CLI of the distillation trainer."""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..config import load_config
from .accvideo_method import AccVideoConfig
from .trainer import TrainerConfig


@dataclass
class AccVideoDistillConfig:
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    method: AccVideoConfig = field(default_factory=AccVideoConfig)


def run_accvideo(teacher: str, synvid: str, out: str | Path, cfg: AccVideoDistillConfig, resume: bool = True,
                 dry_run: bool = False) -> dict:
    import torch

    from ..models.registry import load_pipeline
    from ..training import distributed
    from .accvideo_method import AccVideoMethod
    from .data import load_key_states
    from .trainer import run_training

    if cfg.trainer.threads > 0:
        torch.set_num_threads(cfg.trainer.threads)
    pipe = load_pipeline(teacher)
    data = load_key_states(synvid, cfg.method.num_key_steps)
    torch.manual_seed(cfg.trainer.seed)
    method = AccVideoMethod(cfg.method, pipe.transformer, data)
    if dry_run:
        return {"dry_run": True, "samples": len(data["latents"]), "key_steps": method.keys,
                "key_sigmas": [round(float(s), 4) for s in method.key_sigmas],
                "phases": method.all_phases, "trainable": {k: sum(p.numel() for p in m.parameters())
                                                           for k, m in method.trainable().items()}}
    info = distributed.setup()
    try:
        return run_training(method, cfg.trainer, cfg, out, teacher, resume=resume, info=info)
    finally:
        distributed.cleanup(info)


def cmd_distill(args: argparse.Namespace) -> int:
    overrides = list(args.set or [])
    if args.steps is not None:
        overrides.append(f"trainer.steps={args.steps}")
    out = Path(args.out)
    if args.resume == "never" and (out / "checkpoints").exists():
        raise ValueError(f"`--out` {str(out)!r} already holds a run; pass `--resume auto` or choose a new folder.")
    if args.method == "accvideo":
        if not args.synvid:
            raise ValueError("`--synvid` is required for `distill accvideo` (make one with `accvideo synvid`).")
        cfg = load_config(AccVideoDistillConfig, args.config, overrides)
        summary = run_accvideo(args.teacher, args.synvid, out, cfg, resume=args.resume == "auto",
                               dry_run=args.dry_run)
    else:  # argparse restricts the choices
        raise ValueError(f"`method` must be one of {METHODS} but is {args.method!r}.")
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps(summary, indent=2, default=str))
    return 0


METHODS = ["accvideo"]


def add_parser(sub) -> None:
    p = sub.add_parser("distill", help="distil a few-step student from a teacher (AccVideo; GPD)")
    p.add_argument("method", choices=METHODS)
    p.add_argument("--teacher", default="tiny-teacher", help="teacher model name or pipeline folder")
    p.add_argument("--synvid", help="SynVid folder (accvideo)")
    p.add_argument("--out", required=True, help="run folder; the student lands in OUT/pipeline")
    p.add_argument("--steps", type=int, default=None, help="optimiser steps (trainer.steps)")
    p.add_argument("--config", help="YAML with `trainer:` and `method:` sections")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="dotted override, e.g. method.lambda_adv=0")
    p.add_argument("--resume", choices=["auto", "never"], default="auto")
    p.add_argument("--dry-run", action="store_true", help="build everything, print what would train, exit")
    p.set_defaults(func=cmd_distill)
