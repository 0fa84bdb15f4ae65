"""Teacher training for the tiny family: the VAE first, then the transformer by flow matching.

Runs the same under `python` and `torchrun --nproc_per_node=N` (DDP; gloo on CPU). Only
rank 0 logs and saves. Each stage checkpoints atomically (model, optimizer, EMA, step, RNG,
config) and `resume="auto"` continues from the last checkpoint of the unfinished stage.

Output folder layout:
    DIR/config.yaml            resolved config
    DIR/metrics.jsonl          one JSON line per logged step (stage, step, loss, lr, ...)
    DIR/checkpoints/*.pt       per-stage training state
    DIR/stages/                finished stage outputs (init pipeline, trained VAE, latents)
    DIR/pipeline/              the final diffusers pipeline folder (what `generate` loads)
    DIR/summary.json           wall times, final losses, sizes
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from tqdm.auto import tqdm

from ..config import save_config, to_dict
from ..data.procedural import SPLITS, WorldConfig, make_batch
from ..models.registry import SAMPLING_FILE
from ..models.tiny import TinyConfig, build_pipeline
from ..models.vae import decode_unclamped, normalize_latents
from ..schedules import shift_sigmas
from . import distributed
from .checkpoint import (
    MetricsLog,
    atomic_write_bytes,
    atomic_write_text,
    load_checkpoint,
    save_checkpoint,
    set_rng_state,
)
from .lr import lr_factor

log = logging.getLogger("accvideo.train")


@dataclass
class VAEStageConfig:
    # 1000 steps. A 500-step VAE round trip scored shape 0.42 on ProcBench against 0.92 after
    # 1000 steps (corners melt), and capped its teacher at 85.4. At about 0.71 s per VAE step and
    # 0.32 s per transformer step on 2 cores, 1000 + 5500 steps fit the 45-minute budget.
    steps: int = 1000
    batch_size: int = 8
    # Full clips: the causal cache a later 4-frame chunk sees differs from the first chunk's,
    # and a VAE trained on 5 frames only drifts in frames 6-9 (seen here).
    num_frames: int = 9
    lr: float = 1e-3
    warmup_steps: int = 50
    kl_weight: float = 1e-6
    foreground_weight: float = 4.0  # the object is ~10% of pixels; without this colours wash out
    stats_clips: int = 512


@dataclass
class TransformerStageConfig:
    steps: int = 5500
    batch_size: int = 32
    lr: float = 5e-4
    warmup_steps: int = 200
    weight_decay: float = 0.01
    caption_dropout: float = 0.1  # empty prompt this often, so classifier-free guidance works
    num_clips: int = 6000  # clips rendered and encoded once, then reused
    ema_decay: float = 0.999
    grad_clip: float = 1.0


@dataclass
class SamplingDefaults:
    num_steps: int = 50
    guidance_scale: float = 2.5  # chosen by ProcBench on the train split (docs/EVAL.md)
    shift: float = 3.0


@dataclass
class TeacherTrainConfig:
    preset: str = "tiny"
    seed: int = 0
    split: str = "train"
    log_every: int = 50
    checkpoint_every: int = 250
    threads: int = 0  # torch threads per process; 0 = leave torch's default
    vae: VAEStageConfig = field(default_factory=VAEStageConfig)
    transformer: TransformerStageConfig = field(default_factory=TransformerStageConfig)
    sampling: SamplingDefaults = field(default_factory=SamplingDefaults)
    # Architecture and world (`model.world`, e.g. `--set model.world.num_distractors=2,3` or
    # configs/teacher-world-v2.yaml). The defaults are the bundled v1 teacher's.
    model: TinyConfig = field(default_factory=TinyConfig)

    def validate(self) -> None:
        if self.preset != "tiny":
            raise ValueError(f"`preset` must be 'tiny' (real-model presets train with distill) but is {self.preset!r}.")
        if self.split not in SPLITS:
            raise ValueError(f"`split` must be one of {list(SPLITS)} but is {self.split!r}.")
        for name, value in (("vae.steps", self.vae.steps), ("transformer.steps", self.transformer.steps),
                            ("vae.batch_size", self.vae.batch_size),
                            ("transformer.batch_size", self.transformer.batch_size)):
            if value < 1:
                raise ValueError(f"`{name}` must be >= 1 but is {value}.")
        if (self.vae.num_frames - 1) % 4 != 0:
            raise ValueError(f"`vae.num_frames` must be 4k + 1 but is {self.vae.num_frames}.")


def sampling_defaults(cfg: TeacherTrainConfig) -> dict:
    """The teacher's `accvideo_sampling.json`: steps, guidance, shift, clip size and its world."""
    tiny = cfg.model
    return {"role": "teacher", **to_dict(cfg.sampling), "height": tiny.world.height, "width": tiny.world.width,
            "num_frames": tiny.world.num_frames, "max_sequence_length": tiny.max_sequence_length,
            "world": to_dict(tiny.world)}  # evaluators render real clips of this world


def lr_at(step: int, base_lr: float, warmup: int, total: int) -> float:
    return base_lr * lr_factor(step, warmup, total)


class VAELoss(nn.Module):
    """Reconstruction loss of the VAE as a module, so DDP sees one forward per step."""

    def __init__(self, vae, kl_weight: float, foreground_weight: float):
        super().__init__()
        self.vae, self.kl_weight, self.foreground_weight = vae, kl_weight, foreground_weight

    def forward(self, videos: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        posterior = self.vae.encode(videos).latent_dist
        # Decode the posterior mean: sampling adds noise of std ~1 at init that drowns the
        # colour signal for hundreds of steps; the transformer trains on the mean anyway.
        recon = decode_unclamped(self.vae, posterior.mode())
        foreground = (videos.amax(dim=1, keepdim=True) > -0.95).float()
        weight = 1.0 + self.foreground_weight * foreground
        err = recon - videos
        rec = (weight * (err.pow(2) + err.abs())).mean()
        kl = posterior.kl().mean() / videos[0].numel()
        loss = rec + self.kl_weight * kl
        return loss, {"rec": rec.item(), "mse": err.detach().pow(2).mean().item(), "kl": kl.item()}


class FlowMatchingLoss(nn.Module):
    """`|| v_theta(x_sigma, sigma, c) - (eps - x_0) ||^2` with x_sigma = (1 - sigma) x_0 + sigma eps."""

    def __init__(self, transformer):
        super().__init__()
        self.transformer = transformer

    def forward(self, x_0: torch.Tensor, eps: torch.Tensor, sigma: torch.Tensor, text: torch.Tensor):
        """x_0, eps: (B, C, T, H, W); sigma: (B,); text: (B, L, D)."""
        s = sigma.view(-1, 1, 1, 1, 1)
        x_sigma = (1 - s) * x_0 + s * eps
        v = self.transformer(x_sigma, timestep=sigma * 1000, encoder_hidden_states=text, return_dict=False)[0]
        loss = F.mse_loss(v.float(), (eps - x_0).float())
        return loss, {}


def _step_rng(seed: int, stage: int, step: int, rank: int) -> np.random.Generator:
    # Data depends only on (seed, stage, step, rank): a resumed run sees the same batches.
    return np.random.default_rng([seed, stage, step, rank])


def _run_stage(name: str, stage_id: int, loss_module: nn.Module, params: list[nn.Parameter], total_steps: int,
               base_lr: float, warmup: int, weight_decay: float, batch_fn, cfg: TeacherTrainConfig,
               out: Path, info: distributed.DistInfo, metrics: MetricsLog, resume: bool,
               ema: nn.Module | None = None, ema_decay: float = 0.0, grad_clip: float = 0.0) -> dict:
    """Generic loop: AdamW, LR schedule, DDP, checkpoints, resume, metrics, progress bar."""
    ckpt_path = out / "checkpoints" / f"{name}.pt"
    optimizer = torch.optim.AdamW(params, lr=base_lr, weight_decay=weight_decay, betas=(0.9, 0.99))
    start = 0
    if resume and ckpt_path.exists():
        state = load_checkpoint(ckpt_path)
        loss_module.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if ema is not None and state.get("ema") is not None:
            ema.load_state_dict(state["ema"])
        set_rng_state(state["rng"])
        start = state["step"]
        metrics.truncate(lambda r: r.get("stage") != name or r.get("step", 0) <= start)
        if info.is_main:
            log.info("%s: resumed from %s at step %d", name, ckpt_path, start)
    module = DDP(loss_module) if info.distributed else loss_module

    def save(step: int) -> None:
        if info.is_main:
            save_checkpoint(ckpt_path, model=loss_module.state_dict(), optimizer=optimizer.state_dict(),
                            ema=ema.state_dict() if ema is not None else None, step=step, config=to_dict(cfg))
        distributed.barrier(info)

    bar = tqdm(total=total_steps, initial=start, desc=name, disable=not info.is_main, mininterval=2.0)
    t0, last = time.perf_counter(), {}
    for step in range(start, total_steps):
        lr = lr_at(step, base_lr, warmup, total_steps)
        for group in optimizer.param_groups:
            group["lr"] = lr
        inputs = batch_fn(_step_rng(cfg.seed, stage_id, step, info.rank))
        loss, extra = module(*inputs)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(params, grad_clip) if grad_clip > 0 else torch.tensor(0.0)
        optimizer.step()
        if ema is not None:
            with torch.no_grad():
                for p_ema, p in zip(ema.parameters(), params):
                    p_ema.lerp_(p, 1 - ema_decay)
        if not torch.isfinite(loss):
            raise RuntimeError(f"{name}: loss became {float(loss)} at step {step}; lower the learning rate.")
        bar.update(1)
        if (step + 1) % cfg.log_every == 0 or step + 1 == total_steps:
            loss_value = distributed.mean_across_ranks(loss.item(), info)
            last = {"stage": name, "step": step + 1, "loss": loss_value, "lr": lr,
                    "grad_norm": float(grad_norm), "elapsed_s": time.perf_counter() - t0, **extra}
            metrics.write(**last)
            bar.set_postfix(loss=f"{loss_value:.4f}")
        if (step + 1) % cfg.checkpoint_every == 0 or step + 1 == total_steps:
            save(step + 1)
    bar.close()
    return {"final": last, "seconds": time.perf_counter() - t0, "steps": total_steps, "resumed_from": start}


@torch.no_grad()
def _encode_clips(vae, world: WorldConfig, num_clips: int, seed: int, split: str, batch: int = 64):
    """Render `num_clips` seeded clips and encode them: raw latents (N, C, T', H', W'), prompts."""
    latents, prompts = [], []
    for i, start in enumerate(range(0, num_clips, batch)):
        videos, specs = make_batch(seed * 100_003 + i, min(batch, num_clips - start), world, split)
        latents.append(vae.encode(videos).latent_dist.mode())
        prompts += [s.prompt for s in specs]
    return torch.cat(latents), prompts


def train_teacher(cfg: TeacherTrainConfig, out: str | Path, resume: bool = True, dry_run: bool = False) -> dict:
    """Train the tiny teacher into `out`; returns the summary dict (also written to summary.json)."""
    cfg.validate()
    info = distributed.setup()
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    out = Path(out)
    stages = out / "stages"
    metrics = MetricsLog(out / "metrics.jsonl", enabled=info.is_main)
    tiny = cfg.model
    t_start = time.perf_counter()
    summary: dict = {"config": to_dict(cfg), "world_size": info.world_size}
    try:
        if info.is_main:
            out.mkdir(parents=True, exist_ok=True)
            save_config(cfg, out / "config.yaml")
            if not (stages / "init" / "model_index.json").exists():
                build_pipeline(tiny, seed=cfg.seed).save_pretrained(stages / "init")
        distributed.barrier(info)
        from diffusers import AutoencoderKLWan, WanPipeline

        pipe = WanPipeline.from_pretrained(stages / "init")
        if dry_run:
            log.info("dry run: built the pipeline and the config; exiting before training")
            return {"dry_run": True, "out": str(out)}

        # ---- stage 1: VAE -------------------------------------------------------------
        vae_dir = stages / "vae"
        if not (vae_dir / "config.json").exists():
            vae = pipe.vae.train()
            vae_world = dataclasses.replace(tiny.world, num_frames=cfg.vae.num_frames)

            def vae_batch(rng):
                return (make_batch(int(rng.integers(2**31)), cfg.vae.batch_size, vae_world, cfg.split)[0],)

            torch.manual_seed(cfg.seed + info.rank)
            summary["vae"] = _run_stage(
                "vae", 1, VAELoss(vae, cfg.vae.kl_weight, cfg.vae.foreground_weight), list(vae.parameters()),
                cfg.vae.steps, cfg.vae.lr, cfg.vae.warmup_steps, 0.0, vae_batch, cfg, out, info, metrics, resume,
                grad_clip=1.0,
            )
            vae.eval()
            raw, _ = _encode_clips(vae, tiny.world, cfg.vae.stats_clips, cfg.seed + 7, cfg.split)
            mean = raw.mean(dim=(0, 2, 3, 4))
            std = raw.std(dim=(0, 2, 3, 4)).clamp_min(1e-3)
            vae.register_to_config(latents_mean=mean.tolist(), latents_std=std.tolist())
            if info.is_main:
                vae.save_pretrained(vae_dir)
            distributed.barrier(info)
        vae = AutoencoderKLWan.from_pretrained(vae_dir).eval().requires_grad_(False)
        pipe.vae = vae

        # ---- stage 2: encode the training clips once ------------------------------------
        latents_file = stages / "latents.pt"
        if not latents_file.exists():
            if info.is_main:
                t = time.perf_counter()
                raw, prompts = _encode_clips(vae, tiny.world, cfg.transformer.num_clips, cfg.seed, cfg.split)
                payload = {"latents": normalize_latents(vae, raw), "prompts": prompts}
                atomic_write_bytes(latents_file, lambda f: torch.save(payload, f))
                log.info("encoded %d clips in %.1fs", len(prompts), time.perf_counter() - t)
            distributed.barrier(info)
        data = torch.load(latents_file, weights_only=False)
        x_all, prompts = data["latents"], data["prompts"]
        unique = sorted(set(prompts))
        with torch.no_grad():
            embeds, _ = pipe.encode_prompt(unique + [""], do_classifier_free_guidance=False,
                                           max_sequence_length=tiny.max_sequence_length)
        prompt_index = torch.tensor([unique.index(p) for p in prompts])
        empty_index = len(unique)

        # ---- stage 3: transformer by flow matching --------------------------------------
        tcfg = cfg.transformer
        transformer = pipe.transformer.train()
        ema = build_pipeline(tiny, seed=cfg.seed).transformer
        ema.load_state_dict(transformer.state_dict())
        ema.requires_grad_(False)

        def transformer_batch(rng):
            g = torch.Generator().manual_seed(int(rng.integers(2**62)))
            idx = torch.randint(len(x_all), (tcfg.batch_size,), generator=g)
            x_0 = x_all[idx]
            eps = torch.randn(x_0.shape, generator=g)
            sigma = shift_sigmas(torch.rand(tcfg.batch_size, generator=g), cfg.sampling.shift).float()
            keep = torch.rand(tcfg.batch_size, generator=g) >= tcfg.caption_dropout
            text = embeds[torch.where(keep, prompt_index[idx], torch.full_like(idx, empty_index))]
            return x_0, eps, sigma, text

        summary["transformer"] = _run_stage(
            "transformer", 2, FlowMatchingLoss(transformer), list(transformer.parameters()), tcfg.steps, tcfg.lr,
            tcfg.warmup_steps, tcfg.weight_decay, transformer_batch, cfg, out, info, metrics, resume,
            ema=ema, ema_decay=tcfg.ema_decay, grad_clip=tcfg.grad_clip,
        )

        # ---- assemble the pipeline --------------------------------------------------------
        if info.is_main:
            pipe.transformer = ema.eval()
            pipe.save_pretrained(out / "pipeline")
            atomic_write_text(out / "pipeline" / SAMPLING_FILE, json.dumps(sampling_defaults(cfg), indent=2))
            summary["wall_s"] = time.perf_counter() - t_start
            summary["num_params"] = {
                "transformer": sum(p.numel() for p in ema.parameters()),
                "vae": sum(p.numel() for p in vae.parameters()),
                "text_encoder": sum(p.numel() for p in pipe.text_encoder.parameters()),
            }
            atomic_write_text(out / "summary.json", json.dumps(summary, indent=2, default=str))
        distributed.barrier(info)
        return summary
    finally:
        distributed.cleanup(info)
