"""AccVideo recipe: its config and `run_accvideo` (SynVid key states -> the one trainer loop)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from accvideo.models.registry import load_model
from accvideo.training.data import load_key_states
from accvideo.training.methods.accvideo import AccVideoConfig, AccVideoMethod
from accvideo.training.trainer import TrainerConfig, run_training
from accvideo.training.watchdog import WatchdogConfig, watchdog_hooks
from accvideo.util import distributed
from accvideo.util.config import to_dict
from accvideo.util.runs import claim_run


@dataclass
class AccVideoDistillConfig:
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    method: AccVideoConfig = field(default_factory=AccVideoConfig)
    watchdog: WatchdogConfig = field(default_factory=WatchdogConfig)  # off by default (`--watchdog N`)


def run_accvideo(teacher: str, synvid: str, out: str | Path, cfg: AccVideoDistillConfig, resume: bool = True,
                 dry_run: bool = False) -> dict:
    """Distil an AccVideo student from `teacher` on the key states of the SynVid folder `synvid`."""
    if cfg.trainer.threads > 0:
        torch.set_num_threads(cfg.trainer.threads)
    # our own copy: the method hooks the teacher and the trainer moves it; the app's cached one stays put
    model = load_model(teacher, cached=False)
    data = load_key_states(synvid, cfg.method.num_key_steps)
    torch.manual_seed(cfg.trainer.seed)
    method = AccVideoMethod(cfg.method, model.transformer, data)
    if dry_run:
        method.close()
        return {"dry_run": True, "samples": len(data["latents"]), "key_steps": method.keys,
                "key_sigmas": [round(float(s), 4) for s in method.key_sigmas],
                "phases": method.all_phases, "trainable": {k: sum(p.numel() for p in m.parameters())
                                                           for k, m in method.trainable().items()}}
    info = distributed.setup()
    try:
        # the watchdog only watches: turning it on or off on resume is the same run
        claimed = {k: v for k, v in to_dict(cfg).items() if k != "watchdog"}
        claim_run(out, "accvideo", {"teacher": str(teacher), "synvid": str(synvid), **claimed}, write=info.is_main)
        hooks = watchdog_hooks(cfg.watchdog, method, teacher, out, info.is_main)
        return run_training(method, cfg.trainer, cfg, out, teacher, resume=resume, info=info, hooks=hooks)
    finally:
        distributed.cleanup(info)
