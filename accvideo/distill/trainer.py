"""The distillation trainer: one loop for every method.

A method declares its trainable modules and its update phases (for AccVideo:
"discriminator" then "student"); the trainer owns everything else: optimisers, gradient
accumulation, DDP (gloo on CPU, NCCL on GPUs), logging, atomic checkpoints, resume and the
final pipeline folder. It runs the same under `python` and `torchrun`.

Output folder:
    DIR/config.yaml, DIR/metrics.jsonl, DIR/checkpoints/last.pt, DIR/pipeline/, DIR/summary.json
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from tqdm.auto import tqdm

from ..config import save_config, to_dict
from ..models.registry import SAMPLING_FILE, read_sampling_defaults, resolve_model
from ..training import distributed
from ..training.checkpoint import MetricsLog, atomic_write_text, load_checkpoint, save_checkpoint, set_rng_state
from ..training.lr import lr_factor

log = logging.getLogger("accvideo.distill")


@dataclass
class TrainerConfig:
    steps: int = 1500
    batch_size: int = 8
    grad_accum: int = 1
    lr: float = 1e-4
    warmup_steps: int = 50
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    seed: int = 0
    log_every: int = 25
    checkpoint_every: int = 100
    threads: int = 0  # torch threads per process; 0 leaves torch's default

    def validate(self) -> None:
        for name in ("steps", "batch_size", "grad_accum", "log_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"`trainer.{name}` must be >= 1 but is {getattr(self, name)}.")
        if not self.lr > 0:
            raise ValueError(f"`trainer.lr` must be > 0 but is {self.lr}.")


class Method(Protocol):
    """What a distillation method provides to the trainer."""

    name: str
    all_phases: list[str]

    def trainable(self) -> dict[str, nn.Module]: ...
    def phases(self, step: int) -> list[str]: ...
    def phase_modules(self, phase: str) -> list[str]: ...
    def lr(self, phase: str, base_lr: float) -> float: ...
    def batch(self, rng: np.random.Generator, batch_size: int) -> dict: ...
    def loss(self, phase: str, batch: dict, wrapped: dict[str, nn.Module], step: int
             ) -> tuple[torch.Tensor, dict[str, float]]:
        """`wrapped` holds the DDP-wrapped trainables (plain modules in one process); a phase
        calls through `wrapped` only the modules it trains, the rest through `trainable()`."""
        ...
    def export(self, pipe, modules: dict[str, nn.Module]) -> dict: ...


def _step_rng(seed: int, step: int, micro: int, rank: int) -> np.random.Generator:
    # batches depend only on (seed, step, micro-batch, rank): a resumed run sees the same data
    return np.random.default_rng([seed, step, micro, rank])


def run_training(method: Method, cfg: TrainerConfig, full_config, out: str | Path, teacher: str | Path,
                 resume: bool = True, info: distributed.DistInfo | None = None) -> dict:
    """Train `method` for `cfg.steps` optimiser steps (per phase) and export a pipeline to out/pipeline."""
    cfg.validate()
    info = info or distributed.setup()
    out = Path(out)
    metrics = MetricsLog(out / "metrics.jsonl", enabled=info.is_main)
    if info.is_main:
        out.mkdir(parents=True, exist_ok=True)
        save_config(full_config, out / "config.yaml")
    modules = method.trainable()
    wrapped = {k: DDP(m) if info.distributed else m for k, m in modules.items()}
    optimizers = {}
    for phase in method.all_phases:
        params = [p for name in method.phase_modules(phase) for p in modules[name].parameters() if p.requires_grad]
        optimizers[phase] = torch.optim.AdamW(params, lr=method.lr(phase, cfg.lr), betas=(0.9, 0.99),
                                              weight_decay=cfg.weight_decay)
    ckpt_path = out / "checkpoints" / "last.pt"
    start = 0
    if resume and ckpt_path.exists():
        state = load_checkpoint(ckpt_path)
        if state.get("method") != method.name:
            raise ValueError(f"checkpoint {str(ckpt_path)!r} is from method {state.get('method')!r}, "
                             f"not {method.name!r}; use a new --out folder.")
        for name, module in modules.items():
            module.load_state_dict(state["modules"][name])
        for phase, opt in optimizers.items():
            opt.load_state_dict(state["optimizers"][phase])
        set_rng_state(state["rng"])
        start = state["step"]
        metrics.truncate(lambda r: r.get("step", 0) <= start)
        if info.is_main:
            log.info("resumed %s from %s at step %d", method.name, ckpt_path, start)

    def save(step: int) -> None:
        if info.is_main:
            save_checkpoint(ckpt_path, method=method.name, step=step,
                            modules={k: m.state_dict() for k, m in modules.items()},
                            optimizers={k: o.state_dict() for k, o in optimizers.items()},
                            config=to_dict(full_config))
        distributed.barrier(info)

    bar = tqdm(total=cfg.steps, initial=start, desc=f"distill {method.name}", disable=not info.is_main,
               mininterval=2.0)
    t0 = time.perf_counter()
    last: dict = {}
    for step in range(start, cfg.steps):
        record: dict = {"step": step + 1}
        factor = lr_factor(step, cfg.warmup_steps, cfg.steps)
        for phase in method.phases(step):
            opt = optimizers[phase]
            for group in opt.param_groups:
                group["lr"] = method.lr(phase, cfg.lr) * factor
            opt.zero_grad(set_to_none=True)
            total = 0.0
            for micro in range(cfg.grad_accum):
                batch = method.batch(_step_rng(cfg.seed, step, micro, info.rank), cfg.batch_size)
                loss, extra = method.loss(phase, batch, wrapped, step)
                if not torch.isfinite(loss):
                    raise RuntimeError(f"{phase} loss became {float(loss)} at step {step}; lower the learning rate.")
                (loss / cfg.grad_accum).backward()
                total += loss.item() / cfg.grad_accum
                for k, v in extra.items():
                    record[f"{phase}/{k}"] = record.get(f"{phase}/{k}", 0.0) + v / cfg.grad_accum
            params = [p for g in opt.param_groups for p in g["params"]]
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            opt.step()
            record[f"{phase}/loss"] = total
        bar.update(1)
        if (step + 1) % cfg.log_every == 0 or step + 1 == cfg.steps:
            record = {k: (distributed.mean_across_ranks(v, info) if k != "step" else v) for k, v in record.items()}
            record["lr_factor"] = factor
            record["elapsed_s"] = time.perf_counter() - t0
            metrics.write(**record)
            last = record
            bar.set_postfix({k.split("/")[0][:4]: f"{v:.4f}" for k, v in record.items() if k.endswith("/loss")})
        if (step + 1) % cfg.checkpoint_every == 0 or step + 1 == cfg.steps:
            save(step + 1)
    bar.close()

    summary = {"method": method.name, "steps": cfg.steps, "resumed_from": start, "final": last,
               "seconds": time.perf_counter() - t0, "world_size": info.world_size}
    if info.is_main:
        from diffusers import DiffusionPipeline

        # a fresh copy of the teacher's pipeline; the student's transformer goes into it
        folder = resolve_model(teacher)
        student = DiffusionPipeline.from_pretrained(str(folder), local_files_only=True)
        sampling = method.export(student, modules)
        student.save_pretrained(out / "pipeline")
        base = read_sampling_defaults(folder)
        base.update(sampling)
        atomic_write_text(out / "pipeline" / SAMPLING_FILE, json.dumps(base, indent=2))
        atomic_write_text(out / "summary.json", json.dumps({**summary, "config": to_dict(full_config)},
                                                           indent=2, default=str))
    distributed.barrier(info)
    return summary

