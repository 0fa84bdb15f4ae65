"""The training loop: one loop for every method, the teacher's two stages included.

A method declares its trainable modules and its update phases (for AccVideo: "discriminator"
then "student"; for the teacher's stages one phase each); the loop owns everything else:
optimisers (AdamW, betas 0.9/0.99), the LR schedule (`lr.py`), gradient accumulation, data
parallelism (`parallel.py`), the non-finite-loss check (before `backward`, so a bad batch
never reaches the weights), gradient clipping, hooks such as EMA (`hooks.py`) and the collapse
watchdog (`watchdog.py`, checked after every full step), logging,
atomic checkpoints, resume, and closing the method at the end. It runs the same under
`python` and `torchrun`. Batches depend only on (seed, step, micro-batch, rank): a resumed
run sees the same data and ends with the same weights.

What a run leaves in `out` (the recipes add their own outputs beside it):
    config.yaml, metrics.jsonl (one line per logged step: `<phase>/loss`, `<phase>/<extra>`,
    `<phase>/grad_norm`, `lr_factor`, `elapsed_s`; plus `stage` for a named stage, and on CUDA
    `peak_gpu_memory_gb`, the largest `torch.cuda.max_memory_allocated` of any rank so far),
    checkpoints/last.pt (or checkpoints/<stage>.pt: modules, optimizers, hooks, step, RNG,
    config; beside it its .sha256 and the previous one, see `checkpoint.py`), and, given a
    teacher to export from, pipeline/ and summary.json (`export.py`).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from tqdm.auto import tqdm

from accvideo.training.checkpoint import MetricsLog, load_latest_checkpoint, save_checkpoint, set_rng_state
from accvideo.training.export import export_student
from accvideo.training.hooks import Hook
from accvideo.training.lr import lr_factor
from accvideo.training.parallel import (
    FullState,
    enable_checkpointing,
    full_state_dict,
    load_states,
    optimizer_states,
    shard_fsdp2,
)
from accvideo.training.watchdog import WatchdogStop
from accvideo.util import distributed
from accvideo.util.config import save_config, to_dict

log = logging.getLogger("accvideo.train")


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
    # recompute each transformer block in backward (trainables, and frozen models a method runs
    # with grad, e.g. AccVideo's teacher): far less activation memory for about 1/3 more compute
    gradient_checkpointing: bool = False
    # torch.compile the method's transformers in place for this run (`compile_targets`, default its
    # trainables); the first calls compile (about a minute on this CPU, cached on disk after)
    compile: bool = False

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
    """What a training method provides to the loop.

    `rng_stream`: None, or an integer mixed into the batch RNG key (the teacher's stages keep
    their historical keys with it; see `_step_rng`). Optional: `grad_frozen()`, the frozen
    models the method backpropagates through (checkpointed with the trainables)."""

    name: str
    all_phases: list[str]
    rng_stream: int | None

    def trainable(self) -> dict[str, nn.Module]: ...
    def phases(self, step: int) -> list[str]: ...
    def phase_modules(self, phase: str) -> list[str]: ...
    def lr(self, phase: str, base_lr: float) -> float: ...
    def batch(self, rng: np.random.Generator, batch_size: int) -> dict:
        """One micro-batch on the CPU (tensors, or dicts of tensors such as the conditioning)."""
        ...
    def loss(self, phase: str, batch: dict, wrapped: dict[str, nn.Module], step: int
             ) -> tuple[torch.Tensor, dict[str, float]]:
        """`wrapped` holds the DDP- or FSDP-wrapped trainables (plain modules in one process); a
        phase calls through `wrapped` only the modules it trains, the rest through `trainable()`."""
        ...
    def to(self, device: torch.device) -> Method:
        """Move frozen models and schedules to `device` (the loop moves the trainables)."""
        ...
    def close(self) -> None:
        """Release what the method holds on shared objects (forward hooks); called once at the end."""
        ...
    def export(self, pipe, modules: dict[str, nn.Module]) -> dict:
        """Load the trained weights into `pipe` (a fresh copy of the teacher's pipeline) and return
        its sampling defaults; needed only when `run_training` is given a teacher to export from."""
        ...


def _to_device(batch: dict, device: torch.device) -> dict:
    """Tensors of a batch, also inside nested dicts (the conditioning), moved to `device`."""
    return {k: v.to(device) if isinstance(v, torch.Tensor) else _to_device(v, device) if isinstance(v, dict) else v
            for k, v in batch.items()}


def _step_rng(seed: int, step: int, micro: int, rank: int, stream: int | None = None) -> np.random.Generator:
    """The RNG of one micro-batch: a function of (seed, step, micro-batch, rank) only, so a resumed
    run sees the same data. With a `stream` (the teacher's stages: 1 VAE, 2 transformer) the key
    is [seed, stream, step, rank], the one the teacher's own loop used, so a seeded teacher
    gives the same numbers as before the loops were merged; later micro-batches append their index."""
    if stream is None:
        return np.random.default_rng([seed, step, micro, rank])
    return np.random.default_rng([seed, stream, step, rank] + ([micro] if micro else []))


@contextlib.contextmanager
def _no_grad_sync(wrapped: dict[str, nn.Module], enabled: bool):
    """Accumulate gradients locally (no all-reduce) on every micro-step but the last one."""
    with contextlib.ExitStack() as stack:
        if enabled:
            for module in wrapped.values():
                if isinstance(module, DDP):
                    stack.enter_context(module.no_sync())
                elif hasattr(module, "set_requires_gradient_sync"):  # FSDP2
                    module.set_requires_gradient_sync(False)
                    stack.callback(module.set_requires_gradient_sync, True)
        yield


def run_training(method: Method, cfg: TrainerConfig, full_config, out: str | Path, teacher: str | Path | None = None,
                 resume: bool = True, info: distributed.DistInfo | None = None, *, stage: str | None = None,
                 hooks: Sequence[Hook] = ()) -> dict:
    """Train `method` for `cfg.steps` optimiser steps (per phase) in `out`; returns the summary
    {method, steps, resumed_from, final (the last metrics record), seconds, world_size, parallel}.

    teacher: export the trained student into out/pipeline from this teacher's pipeline (and
    write out/summary.json); None leaves the outputs to the recipe. stage: the name of one stage
    of a multi-stage run sharing `out` (checkpoint `checkpoints/<stage>.pt`, metrics records
    tagged with it). hooks: e.g. `EMA`, told after every optimiser step and checkpointed.
    The method is closed at the end (its hooks removed), also when training fails.
    """
    compiled: list[nn.Module] = []
    try:
        return _train(method, cfg, full_config, Path(out), teacher, resume, info, stage, list(hooks), compiled)
    finally:
        for module in compiled:  # plain again: a model the run borrowed (GPD's teacher, a cached
            module._compiled_call_impl = None  # pipeline) goes back to its other users as it came
        method.close()


def _train(method: Method, cfg: TrainerConfig, full_config, out: Path, teacher, resume: bool,
           info: distributed.DistInfo | None, stage: str | None, hooks: list[Hook], compiled: list[nn.Module]) -> dict:
    cfg.validate()
    info = info or distributed.setup()
    metrics = MetricsLog(out / "metrics.jsonl", enabled=info.is_main)
    if info.is_main:
        out.mkdir(parents=True, exist_ok=True)
        save_config(full_config, out / "config.yaml")
    method.to(info.device)  # frozen parts (teacher, guide) and schedules go to the device too
    modules = method.trainable()
    for m in modules.values():
        m.to(info.device)
    if cfg.gradient_checkpointing:
        _enable_checkpointing(method, modules)
    sharded = cfg.parallel == "fsdp2" and info.distributed
    if sharded and hooks:
        raise ValueError(f"`hooks` must be empty with `trainer.parallel` 'fsdp2' (they would average shards) but "
                         f"are {[h.name for h in hooks]}.")
    for hook in hooks:
        hook.setup(modules)
    if cfg.compile:
        targets = method.compile_targets() if hasattr(method, "compile_targets") else list(modules.values())
        for module in targets:
            module.compile()
            compiled.append(module)
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
    ckpt_path = out / "checkpoints" / f"{stage or 'last'}.pt"
    start = 0
    # every rank checks the same files and so picks the same checkpoint
    found = load_latest_checkpoint(ckpt_path) if resume else None
    if found is not None:
        state, used = found
        if state.get("method") != method.name:
            raise ValueError(f"checkpoint {str(used)!r} is from method {state.get('method')!r}, "
                             f"not {method.name!r}; use a new --out folder.")
        load_states(state, modules, optimizers, method.phase_modules, sharded)
        for hook in hooks:
            if hook.name in state["hooks"]:
                hook.load_state_dict(state["hooks"][hook.name])
            elif not getattr(hook, "stateless", False):  # a watchdog may be added on resume; an EMA not
                raise ValueError(f"checkpoint {str(used)!r} holds no state for hook {hook.name!r} (it has "
                                 f"{sorted(state['hooks'])}); resume without that hook or use a new --out folder.")
        set_rng_state(state["rng"])
        start = state["step"]
        metrics.truncate(lambda r: r.get("stage") != stage or r.get("step", 0) <= start)
        if info.is_main:
            log.info("resumed %s from %s at step %d", stage or method.name, used, start)

    def save(step: int) -> None:
        # under FSDP2 every rank takes part in gathering; rank 0 alone writes
        module_states = {k: full_state_dict(m, sharded) for k, m in modules.items()}
        optimizer_state = optimizer_states(optimizers, modules, method.phase_modules, sharded)
        if info.is_main:
            save_checkpoint(ckpt_path, method=method.name, step=step, modules=module_states,
                            optimizers=optimizer_state, hooks={h.name: h.state_dict() for h in hooks},
                            config=to_dict(full_config))
        distributed.barrier(info)

    bar = tqdm(total=cfg.steps, initial=start, desc=stage or f"train {method.name}", disable=not info.is_main,
               mininterval=2.0)
    t0 = time.perf_counter()
    last: dict = {}
    for step in range(start, cfg.steps):
        record: dict = {"stage": stage} if stage else {}
        record["step"] = step + 1
        factor = lr_factor(step, cfg.warmup_steps, cfg.steps)
        for phase in method.phases(step):
            record.update(_phase_step(method, phase, step, factor, cfg, wrapped, optimizers[phase], info, autocast))
            for hook in hooks:
                hook.after_step(method.phase_modules(phase), modules)
        bar.update(1)
        _watch(hooks, step + 1, modules, info)
        if (step + 1) % cfg.log_every == 0 or step + 1 == cfg.steps:
            record = {k: v if k in ("stage", "step") else distributed.mean_across_ranks(v, info)
                      for k, v in record.items()}
            record["lr_factor"] = factor
            record["elapsed_s"] = time.perf_counter() - t0
            if info.device.type == "cuda":  # read before this step's save: the training peak, for `accvideo plan`
                record["peak_gpu_memory_gb"] = distributed.max_across_ranks(
                    torch.cuda.max_memory_allocated(info.device) / 1e9, info)
            metrics.write(**record)
            last = record
            bar.set_postfix({k.split("/")[0][:4]: f"{v:.4f}" for k, v in record.items() if k.endswith("/loss")})
        if (step + 1) % cfg.checkpoint_every == 0 or step + 1 == cfg.steps:
            save(step + 1)
    bar.close()

    summary = {"method": method.name, "steps": cfg.steps, "resumed_from": start, "final": last,
               "seconds": time.perf_counter() - t0, "world_size": info.world_size, "parallel": cfg.parallel}
    if teacher is not None:
        if sharded:  # gathered on every rank, used on rank 0
            modules = {k: FullState(full_state_dict(m, True)) for k, m in modules.items()}
        if info.is_main:
            export_student(method, modules, teacher, out, summary, full_config)
    distributed.barrier(info)
    return summary


def _watch(hooks: list[Hook], step: int, modules: dict[str, nn.Module], info: distributed.DistInfo) -> None:
    """Give hooks with a `check` (the collapse watchdog) their turn after a full step. Rank 0 renders;
    the verdict is shared so that every rank stops at the same step (one alone would hang the rest)."""
    for hook in hooks:
        if hasattr(hook, "check") and hook.due(step):
            reason = hook.check(step, modules)
            if distributed.max_across_ranks(1.0 if reason else 0.0, info) > 0:
                raise WatchdogStop(reason or f"watchdog flagged step {step} on rank 0 (see watchdog.json)")


def _enable_checkpointing(method: Method, modules: dict[str, nn.Module]) -> None:
    """Checkpoint the transformer blocks of the trainables and of `method.grad_frozen()` (frozen
    models the method backpropagates through, if it has any); before any wrapping."""
    targets = {**modules, **(method.grad_frozen() if hasattr(method, "grad_frozen") else {})}
    if not [name for name, m in targets.items() if enable_checkpointing(m)]:
        raise ValueError(f"`trainer.gradient_checkpointing` is true but no module of method {method.name!r} "
                         f"({sorted(targets)}) has transformer blocks to checkpoint; set it to false.")


def _phase_step(method: Method, phase: str, step: int, factor: float, cfg: TrainerConfig,
                wrapped: dict[str, nn.Module], opt: torch.optim.Optimizer, info: distributed.DistInfo,
                autocast: bool) -> dict[str, float]:
    """One optimiser step of `phase` over `cfg.grad_accum` micro-batches; returns its metrics."""
    for group in opt.param_groups:
        group["lr"] = method.lr(phase, cfg.lr) * factor
    opt.zero_grad(set_to_none=True)
    record: dict[str, float] = {}
    total = 0.0
    for micro in range(cfg.grad_accum):
        rng = _step_rng(cfg.seed, step, micro, info.rank, method.rng_stream)
        batch = _to_device(method.batch(rng, cfg.batch_size), info.device)
        # gradients are all-reduced once, on the last micro-batch
        with _no_grad_sync(wrapped, info.distributed and micro + 1 < cfg.grad_accum):
            with torch.autocast(info.device.type, dtype=torch.bfloat16, enabled=autocast):
                loss, extra = method.loss(phase, batch, wrapped, step)
            # before backward: a non-finite loss must not reach the weights (nor the EMA)
            if not torch.isfinite(loss):
                raise RuntimeError(f"{phase} loss became {loss.item()} at step {step}; lower the learning rate.")
            (loss / cfg.grad_accum).backward()
        total += loss.item() / cfg.grad_accum
        for k, v in extra.items():
            record[f"{phase}/{k}"] = record.get(f"{phase}/{k}", 0.0) + v / cfg.grad_accum
    if cfg.grad_clip > 0:
        params = [p for g in opt.param_groups for p in g["params"]]
        norm = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        record[f"{phase}/grad_norm"] = float(norm.full_tensor() if hasattr(norm, "full_tensor") else norm)
    opt.step()
    record[f"{phase}/loss"] = total
    return record
