"""The distillation trainer: one loop for every method.

A method declares its trainable modules and its update phases (for AccVideo:
"discriminator" then "student"); the trainer owns everything else: optimisers, gradient
accumulation, data parallelism, logging, atomic checkpoints, resume and the final pipeline
folder. It runs the same under `python` and `torchrun`.

Parallelism (`trainer.parallel`): "ddp" replicates the trainables on every rank (gloo on
CPU, NCCL on GPUs); "fsdp2" shards them with `torch.distributed.fsdp.fully_shard`
(one unit per transformer block, then the root), so a rank holds 1/world of each
trainable's parameters, gradients and optimizer state: what real students need. With
FSDP2, checkpoints and the exported pipeline hold full (gathered) state dicts, each rank
taking its shard on resume (in the mode the run started in: the optimizer states differ).

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

from accvideo.models.registry import SAMPLING_FILE, read_sampling_defaults, resolve_model
from accvideo.training.checkpoint import MetricsLog, load_checkpoint, save_checkpoint, set_rng_state
from accvideo.training.lr import lr_factor
from accvideo.util import distributed
from accvideo.util.config import save_config, to_dict
from accvideo.util.io import atomic_write_text

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
    parallel: str = "ddp"  # "ddp" | "fsdp2" (sharded; see the module docstring)
    mixed_precision: str = "no"  # "no" | "bf16": bf16 compute, fp32 master weights and reductions

    def validate(self) -> None:
        for name in ("steps", "batch_size", "grad_accum", "log_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"`trainer.{name}` must be >= 1 but is {getattr(self, name)}.")
        if not self.lr > 0:
            raise ValueError(f"`trainer.lr` must be > 0 but is {self.lr}.")
        if self.parallel not in ("ddp", "fsdp2"):
            raise ValueError(f"`trainer.parallel` must be 'ddp' or 'fsdp2' but is {self.parallel!r}.")
        if self.mixed_precision not in ("no", "bf16"):
            raise ValueError(f"`trainer.mixed_precision` must be 'no' or 'bf16' but is {self.mixed_precision!r}.")


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


# Child module lists that are FSDP2 units: Wan's `blocks`, HunyuanVideo's two block stacks.
BLOCK_LISTS = ("blocks", "transformer_blocks", "single_transformer_blocks")


def shard_fsdp2(module: nn.Module, mesh, mixed_precision: str = "no") -> nn.Module:
    """Shard `module` in place with FSDP2: each transformer block its own unit (its parameters
    are gathered just for its forward/backward), then the root for the rest."""
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    kwargs = {"mesh": mesh}
    if mixed_precision == "bf16":
        kwargs["mp_policy"] = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
    for name in BLOCK_LISTS:
        for block in getattr(module, name, None) or []:
            fully_shard(block, **kwargs)
    fully_shard(module, **kwargs)
    return module


def full_state_dict(module: nn.Module, sharded: bool) -> dict:
    """The whole state dict on rank 0 (empty elsewhere under FSDP2); collective when sharded."""
    if not sharded:
        return module.state_dict()
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    return get_model_state_dict(module, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


class _FullState:
    """Stands in for a sharded module where a method's `export` reads `state_dict()`."""

    def __init__(self, state: dict):
        self._state = state

    def state_dict(self) -> dict:
        return self._state


def _to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


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
    if hasattr(method, "to"):  # frozen parts (teacher, guide) and schedules go to the device too
        method.to(info.device)
    modules = method.trainable()
    for m in modules.values():
        m.to(info.device)
    sharded = cfg.parallel == "fsdp2" and info.distributed
    if sharded:
        from torch.distributed.device_mesh import init_device_mesh

        mesh = init_device_mesh(info.device.type, (info.world_size,))
        wrapped = {k: shard_fsdp2(m, mesh, cfg.mixed_precision) for k, m in modules.items()}
    else:
        wrapped = {k: DDP(m) if info.distributed else m for k, m in modules.items()}
    # FSDP2 computes in bf16 by its policy; elsewhere autocast does it (weights stay fp32)
    autocast = cfg.mixed_precision == "bf16" and not sharded
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
        _load_states(state, modules, optimizers, method, sharded)
        set_rng_state(state["rng"])
        start = state["step"]
        metrics.truncate(lambda r: r.get("step", 0) <= start)
        if info.is_main:
            log.info("resumed %s from %s at step %d", method.name, ckpt_path, start)

    def save(step: int) -> None:
        # under FSDP2 every rank takes part in gathering; rank 0 alone writes
        module_states = {k: full_state_dict(m, sharded) for k, m in modules.items()}
        optimizer_states = _optimizer_states(optimizers, modules, method, sharded)
        if info.is_main:
            save_checkpoint(ckpt_path, method=method.name, step=step, modules=module_states,
                            optimizers=optimizer_states, config=to_dict(full_config))
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
                batch = _to_device(method.batch(_step_rng(cfg.seed, step, micro, info.rank), cfg.batch_size),
                                   info.device)
                with torch.autocast(info.device.type, dtype=torch.bfloat16, enabled=autocast):
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
               "seconds": time.perf_counter() - t0, "world_size": info.world_size, "parallel": cfg.parallel}
    if sharded:  # gathered on every rank, used on rank 0
        modules = {k: _FullState(full_state_dict(m, True)) for k, m in modules.items()}
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



def _optimizer_states(optimizers: dict, modules: dict, method: Method, sharded: bool) -> dict:
    if not sharded:
        return {k: o.state_dict() for k, o in optimizers.items()}
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    return {phase: get_optimizer_state_dict(_phase_model(modules, method, phase), opt, options=options)
            for phase, opt in optimizers.items()}


def _phase_model(modules: dict, method: Method, phase: str) -> nn.Module:
    names = method.phase_modules(phase)
    return modules[names[0]] if len(names) == 1 else nn.ModuleList([modules[n] for n in names])


def _load_states(state: dict, modules: dict, optimizers: dict, method: Method, sharded: bool) -> None:
    if not sharded:
        for name, module in modules.items():
            module.load_state_dict(state["modules"][name])
        for phase, opt in optimizers.items():
            opt.load_state_dict(state["optimizers"][phase])
        return
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions,
        set_model_state_dict,
        set_optimizer_state_dict,
    )

    # every rank read the same full checkpoint; each keeps its own shard
    options = StateDictOptions(full_state_dict=True)
    for name, module in modules.items():
        set_model_state_dict(module, state["modules"][name], options=options)
    for phase, opt in optimizers.items():
        set_optimizer_state_dict(_phase_model(modules, method, phase), opt,
                                 optim_state_dict=state["optimizers"][phase], options=options)
