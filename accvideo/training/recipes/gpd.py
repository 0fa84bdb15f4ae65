"""GPD recipe: its config and `run_gpd`, every stage in order through the one trainer loop."""

from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import torch

from accvideo.generation import encode, latent_shape, resolve_sampling
from accvideo.models.registry import load_model
from accvideo.synvid import load_prompts
from accvideo.training.methods.gpd import GPDConfig, GPDStage
from accvideo.training.trainer import TrainerConfig, run_training
from accvideo.training.watchdog import WatchdogConfig, watchdog_hooks
from accvideo.util import distributed
from accvideo.util.config import to_dict
from accvideo.util.io import atomic_write_text
from accvideo.util.runs import claim_run


@dataclass
class GPDDistillConfig:
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    method: GPDConfig = field(default_factory=GPDConfig)
    watchdog: WatchdogConfig = field(default_factory=WatchdogConfig)  # off by default (`--watchdog N`)


def run_gpd(teacher: str, out: str | Path, cfg: GPDDistillConfig, resume: bool = True, dry_run: bool = False) -> dict:
    """All GPD stages in order; a finished stage (its pipeline exists) is loaded, not retrained."""
    cfg.method.validate()
    cfg.trainer.validate()
    if cfg.trainer.threads > 0:
        torch.set_num_threads(cfg.trainer.threads)
    # our own copy: the trainer moves the guide to its device, and the app's cached one stays put
    model = load_model(teacher, cached=False)
    spec = resolve_sampling(model, guidance_scale=cfg.method.guidance_scale, shift=cfg.method.shift,
                            negative_prompt="")
    guidance, shift = spec.guidance_scale, spec.shift
    prompts = load_prompts(cfg.method.prompts)
    with torch.no_grad():
        # the prompts' rows, and under guidance the empty prompt's (the guide's unconditional branch)
        conditioning = encode(model, prompts, spec)
    shape = latent_shape(model.pipe, spec.num_frames, spec.height, spec.width)[1:]
    transformer_class = type(model.transformer)
    counts = cfg.method.stage_counts()
    paper = cfg.method.variant == "paper"
    plan = {"stages": [{"stage": k, "student_steps": n, "horizon": cfg.method.horizon(k),
                        **({"teacher_guidance": cfg.method.teacher_guidance(k, guidance)} if paper else {})}
                       for k, n in enumerate(counts, 1)], "variant": cfg.method.variant,
            "guidance_baked_in": guidance, "shift": shift, "prompts": len(prompts)}
    if dry_run:
        return {"dry_run": True, **plan}
    out = Path(out)
    info = distributed.setup()
    stage_cfg = dataclasses.replace(cfg.trainer)
    try:
        # the watchdog only watches: turning it on or off on resume is the same run
        claim_run(out, "gpd", {"teacher": str(teacher), **{k: v for k, v in to_dict(cfg).items() if k != "watchdog"}},
                  write=info.is_main)
        copies: list = []  # the watchdog's one private pipeline copy, shared by the stages

        def watchdog_copy():
            if not copies:
                copies.append(load_model(teacher, cached=False))
            return copies[0]
        guide, guide_steps, guide_guidance = model.transformer, cfg.method.teacher_steps, guidance
        summaries = []
        for k, n in enumerate(counts, 1):
            stage_dir = out / "stages" / f"stage-{k}"
            done = stage_dir / "pipeline" / "model_index.json"
            if done.exists():
                student = transformer_class.from_pretrained(stage_dir / "pipeline" / "transformer")
                summaries.append({"stage": k, "student_steps": n, "loaded": True})
            else:
                torch.manual_seed(cfg.trainer.seed + k)
                method = GPDStage(cfg.method, k, guide, guide, guide_steps, guide_guidance, conditioning.cond,
                                  conditioning.uncond, shape, shift, spec.embedded_guidance_scale,
                                  teacher=model.transformer if paper else None,
                                  teacher_guidance=cfg.method.teacher_guidance(k, guidance) if paper else 1.0)
                stage_cfg.seed = cfg.trainer.seed + k
                if cfg.method.stage_steps:
                    stage_cfg.steps = cfg.method.stage_steps[k - 1]
                hooks = watchdog_hooks(cfg.watchdog, method, watchdog_copy, out, info.is_main, stage=f"stage-{k}")
                result = run_training(method, stage_cfg, cfg, stage_dir, teacher, resume=resume, info=info,
                                      hooks=hooks)
                summaries.append({"stage": k, "student_steps": n, **result})
                student = method.student
                if cfg.trainer.parallel == "fsdp2" and info.distributed:
                    # the sharded student cannot guide the next stage as is: read back the
                    # full weights the stage exported (every rank, after the trainer's barrier)
                    student = transformer_class.from_pretrained(stage_dir / "pipeline" / "transformer")
            # the next stage is guided by this one and starts from its weights
            guide, guide_steps, guide_guidance = student.eval().requires_grad_(False), n, 1.0
        if info.is_main:
            final = out / "pipeline"
            if final.exists():
                shutil.rmtree(final)
            shutil.copytree(out / "stages" / f"stage-{len(counts)}" / "pipeline", final)
            atomic_write_text(out / "summary.json", json.dumps({"method": "gpd", **plan, "stage_runs": summaries},
                                                               indent=2, default=str))
        distributed.barrier(info)
        return {"method": "gpd", **plan, "stage_runs": summaries}
    finally:
        distributed.cleanup(info)
