"""`python -m accvideo distill METHOD ...`: the CLI of the distillation trainer."""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from accvideo.training.methods.accvideo import AccVideoConfig
from accvideo.training.methods.gpd import GPDConfig
from accvideo.training.trainer import TrainerConfig
from accvideo.util.config import load_config


@dataclass
class AccVideoDistillConfig:
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    method: AccVideoConfig = field(default_factory=AccVideoConfig)


@dataclass
class GPDDistillConfig:
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    method: GPDConfig = field(default_factory=GPDConfig)


def run_gpd(teacher: str, out: str | Path, cfg: GPDDistillConfig, resume: bool = True, dry_run: bool = False) -> dict:
    """All GPD stages in order; a finished stage (its pipeline exists) is loaded, not retrained."""
    import dataclasses
    import shutil

    import torch
    from diffusers import WanTransformer3DModel

    from accvideo.generation import latent_shape, resolve_sampling
    from accvideo.models.registry import load_model
    from accvideo.synvid import load_prompts
    from accvideo.training.methods.gpd import GPDStage
    from accvideo.training.trainer import run_training
    from accvideo.util import distributed
    from accvideo.util.io import atomic_write_text

    cfg.method.validate()
    cfg.trainer.validate()
    if cfg.trainer.threads > 0:
        torch.set_num_threads(cfg.trainer.threads)
    model = load_model(teacher)
    spec = resolve_sampling(model, guidance_scale=cfg.method.guidance_scale, shift=cfg.method.shift)
    guidance, shift, max_len = spec.guidance_scale, spec.shift, spec.max_sequence_length
    prompts = load_prompts(cfg.method.prompts)
    with torch.no_grad():
        text = model.pipe.encode_prompt(prompts, do_classifier_free_guidance=False, max_sequence_length=max_len)[0]
        empty = model.pipe.encode_prompt("", do_classifier_free_guidance=False, max_sequence_length=max_len)[0][0]
    shape = latent_shape(model.pipe, spec.num_frames, spec.height, spec.width)[1:]
    plan = {"stages": [{"stage": k, "student_steps": n} for k, n in enumerate(cfg.method.schedule, 1)],
            "guidance_baked_in": guidance, "shift": shift, "prompts": len(prompts)}
    if dry_run:
        return {"dry_run": True, **plan}
    out = Path(out)
    info = distributed.setup()
    stage_cfg = dataclasses.replace(cfg.trainer)
    try:
        guide, guide_steps, guide_guidance = model.transformer, cfg.method.teacher_steps, guidance
        summaries = []
        for k, n in enumerate(cfg.method.schedule, 1):
            stage_dir = out / "stages" / f"stage-{k}"
            done = stage_dir / "pipeline" / "model_index.json"
            if done.exists():
                student = WanTransformer3DModel.from_pretrained(stage_dir / "pipeline" / "transformer")
                summaries.append({"stage": k, "student_steps": n, "loaded": True})
            else:
                torch.manual_seed(cfg.trainer.seed + k)
                method = GPDStage(cfg.method, k, guide, guide, guide_steps, guide_guidance, text, empty, shape, shift)
                stage_cfg.seed = cfg.trainer.seed + k
                if cfg.method.stage_steps:
                    stage_cfg.steps = cfg.method.stage_steps[k - 1]
                result = run_training(method, stage_cfg, cfg, stage_dir, teacher, resume=resume, info=info)
                summaries.append({"stage": k, "student_steps": n, **result})
                student = method.student
                if cfg.trainer.parallel == "fsdp2" and info.distributed:
                    # the sharded student cannot guide the next stage as is: read back the
                    # full weights the stage exported (every rank, after the trainer's barrier)
                    student = WanTransformer3DModel.from_pretrained(stage_dir / "pipeline" / "transformer")
            # the next stage is guided by this one and starts from its weights
            guide, guide_steps, guide_guidance = student.eval().requires_grad_(False), n, 1.0
        if info.is_main:
            final = out / "pipeline"
            if final.exists():
                shutil.rmtree(final)
            shutil.copytree(out / "stages" / f"stage-{len(cfg.method.schedule)}" / "pipeline", final)
            atomic_write_text(out / "summary.json", json.dumps({"method": "gpd", **plan, "stage_runs": summaries},
                                                               indent=2, default=str))
        distributed.barrier(info)
        return {"method": "gpd", **plan, "stage_runs": summaries}
    finally:
        distributed.cleanup(info)


def run_accvideo(teacher: str, synvid: str, out: str | Path, cfg: AccVideoDistillConfig, resume: bool = True,
                 dry_run: bool = False) -> dict:
    import torch

    from accvideo.models.registry import load_model
    from accvideo.training.data import load_key_states
    from accvideo.training.methods.accvideo import AccVideoMethod
    from accvideo.training.trainer import run_training
    from accvideo.util import distributed

    if cfg.trainer.threads > 0:
        torch.set_num_threads(cfg.trainer.threads)
    pipe = load_model(teacher)
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
    elif args.method == "gpd":
        if args.schedule:  # "48,24,12,6": the teacher's step count, then each stage's
            counts = [c.strip() for c in args.schedule.split(",") if c.strip()]
            if len(counts) < 2 or not all(c.isdigit() for c in counts):
                raise ValueError(f"`--schedule` must list the teacher's steps then each stage's, "
                                 f"like 48,24,12,6, but is {args.schedule!r}.")
            overrides += [f"method.teacher_steps={counts[0]}", f"method.schedule=[{','.join(counts[1:])}]"]
        cfg = load_config(GPDDistillConfig, args.config, overrides)
        summary = run_gpd(args.teacher, out, cfg, resume=args.resume == "auto", dry_run=args.dry_run)
    else:  # argparse restricts the choices
        raise ValueError(f"`method` must be one of {METHODS} but is {args.method!r}.")
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps(summary, indent=2, default=str))
    return 0


METHODS = ["accvideo", "gpd"]


def add_parser(sub) -> None:
    p = sub.add_parser("distill", help="distil a few-step student from a teacher (AccVideo; GPD)")
    p.add_argument("method", choices=METHODS)
    p.add_argument("--teacher", default="tiny-teacher", help="teacher model name or pipeline folder")
    p.add_argument("--synvid", help="SynVid folder (accvideo)")
    p.add_argument("--out", required=True, help="run folder; the student lands in OUT/pipeline")
    p.add_argument("--steps", type=int, default=None, help="optimiser steps (trainer.steps; per stage for gpd)")
    p.add_argument("--schedule", default=None, help="gpd: teacher steps, then student steps per stage, e.g. 48,24,12,6")
    p.add_argument("--config", help="YAML with `trainer:` and `method:` sections")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="dotted override, e.g. method.lambda_adv=0")
    p.add_argument("--resume", choices=["auto", "never"], default="auto")
    p.add_argument("--dry-run", action="store_true", help="build everything, print what would train, exit")
    p.set_defaults(func=cmd_distill)
