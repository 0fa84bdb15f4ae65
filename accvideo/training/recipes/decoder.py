"""Decoder distillation recipe: its config, the data (latents and the VAE's decodes of them) and
`run_decoder_distill` (the one trainer loop, then OUT/decoder with hashes and OUT/summary.json).

    python -m accvideo distill decoder --teacher tiny-teacher --out runs/decoder [--synvid RUN]

Works for every family the VAE decode of `models.families` knows (Wan2.1, HunyuanVideo): the
decoder reads the transformer's normalised latents, the targets come from `Family.decode`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from accvideo.generation import resolve_sampling
from accvideo.models.families import family_of
from accvideo.models.registry import load_model
from accvideo.models.tiny_decoder import TinyVideoDecoder, save_decoder, vae_sha256
from accvideo.models.vae import encode_videos
from accvideo.synvid import open_synvid
from accvideo.training.methods.decoder import DecoderConfig, DecoderMethod
from accvideo.training.trainer import TrainerConfig, run_training
from accvideo.util import distributed
from accvideo.util.config import from_dict, to_dict
from accvideo.util.io import atomic_write_text
from accvideo.util.runs import claim_run
from accvideo.world import WorldConfig, make_batch

log = logging.getLogger(__name__)


@dataclass
class DecoderDistillConfig:
    # a small convolutional net on data in memory: a larger step size than the transformers'
    trainer: TrainerConfig = field(default_factory=lambda: TrainerConfig(steps=3000, batch_size=16, lr=2e-3,
                                                                          warmup_steps=50, log_every=50,
                                                                          checkpoint_every=250))
    method: DecoderConfig = field(default_factory=DecoderConfig)
    dtype: str = "fp32"  # the teacher's VAE while building the data (bf16 for Wan2.1 on a GPU)


def _encode(pipe, videos: torch.Tensor) -> torch.Tensor:
    """Clips (B, 3, T, H, W) in [-1, 1] -> the transformer's normalised latents (posterior mode)."""
    family = family_of(pipe)
    if family.name == "wan":
        return encode_videos(pipe.vae, videos)
    return pipe.vae.encode(videos.to(pipe.vae.dtype)).latent_dist.mode() * pipe.vae.config.scaling_factor


def _world_latents(model, cfg: DecoderConfig, seed: int, device: torch.device) -> torch.Tensor:
    """`cfg.num_videos` latents (N, C, T', H', W') of the model's world at its sampling size, half of
    them perturbed by up to `cfg.noise_std` (see the method's docstring)."""
    spec = resolve_sampling(model)
    recorded = model.sampling.get("world")
    world = from_dict(WorldConfig, recorded) if recorded else WorldConfig()
    world = dataclasses.replace(world, height=spec.height, width=spec.width, num_frames=spec.num_frames)
    out = []
    for start in range(0, cfg.num_videos, cfg.data_batch):
        count = min(cfg.data_batch, cfg.num_videos - start)
        videos = make_batch(seed * 100_003 + start, count, world)[0].to(device)
        out.append(_encode(model.pipe, videos).float().cpu())
    latents = torch.cat(out)
    gen = torch.Generator().manual_seed(seed)
    scale = torch.rand(len(latents), generator=gen) * cfg.noise_std
    scale[torch.arange(len(latents)) % 2 == 0] = 0.0  # every other latent stays on the manifold
    noise = torch.randn(latents.shape, generator=gen)
    return latents + scale.view(-1, 1, 1, 1, 1) * noise


def _synvid_latents(synvid: str | Path, cfg: DecoderConfig) -> torch.Tensor:
    """The final states x_0 (N, C, T', H', W') of a SynVid run, at most `cfg.num_videos` of them."""
    ds = open_synvid(synvid)
    if ds.num_steps not in ds.stored_steps:
        raise ValueError(f"`synvid` folder {str(synvid)!r} stores steps {ds.stored_steps} but not the final state "
                         f"{ds.num_steps} the decoder learns from; regenerate it with `--store all` or `key:M`.")
    tensors = ds.to_tensors(positions=[ds.stored_steps.index(ds.num_steps)])
    return tensors["latents"][: cfg.num_videos, 0].float()


@torch.no_grad()
def build_decoder_data(model, cfg: DecoderConfig, synvid: str | Path | None, seed: int
                       ) -> tuple[torch.Tensor, torch.Tensor, str]:
    """(latents (N, C, T', H', W') float32 on the CPU, targets (N, 3, T, H, W) float16 in [-1, 1], source)."""
    source = cfg.source if cfg.source != "auto" else ("synvid" if synvid else "world")
    device = next(model.vae.parameters()).device
    if source == "synvid":
        if not synvid:
            raise ValueError("`method.source` 'synvid' needs `--synvid` (a SynVid run) but none was given.")
        latents = _synvid_latents(synvid, cfg)
    else:
        latents = _world_latents(model, cfg, seed, device)
    if len(latents) <= cfg.heldout:
        raise ValueError(f"`method.heldout` ({cfg.heldout}) must be smaller than the {len(latents)} latents found "
                         f"({source}); lower it or give more data.")
    family, targets = family_of(model.pipe), []
    for start in range(0, len(latents), cfg.data_batch):
        z = latents[start:start + cfg.data_batch].to(device)
        targets.append(family.decode(model.pipe, z).float().clamp(-1, 1).to(torch.float16).cpu())
    return latents, torch.cat(targets), source


def new_decoder(model, cfg: DecoderConfig) -> TinyVideoDecoder:
    """A random-init decoder sized for the model's VAE (factors) and latent channels."""
    ft, fs = family_of(model.pipe).scale_factors(model.pipe)
    return TinyVideoDecoder(latent_channels=model.transformer.config.in_channels, scale_factor_temporal=ft,
                            scale_factor_spatial=fs, channels=cfg.channels, num_blocks=cfg.num_blocks,
                            pixel_shuffle=cfg.pixel_shuffle)


def run_decoder_distill(teacher: str, out: str | Path, cfg: DecoderDistillConfig, synvid: str | None = None,
                        resume: bool = True, dry_run: bool = False) -> dict:
    """Distil `teacher`'s VAE decoder into a `TinyVideoDecoder`; writes OUT/decoder and OUT/summary.json."""
    cfg.method.validate()
    if cfg.trainer.threads > 0:
        torch.set_num_threads(cfg.trainer.threads)
    info = distributed.setup()
    try:
        model = load_model(teacher, dtype=cfg.dtype, device=None if info.device.type == "cpu" else str(info.device))
        torch.manual_seed(cfg.trainer.seed)
        decoder = new_decoder(model, cfg.method)
        if dry_run:
            return {"dry_run": True, "family": family_of(model.pipe).name, "vae_sha256": vae_sha256(model.folder),
                    "decoder_params": sum(p.numel() for p in decoder.parameters()),
                    "source": cfg.method.source if cfg.method.source != "auto" else ("synvid" if synvid else "world")}
        out = Path(out)
        claim_run(out, "decoder", {"teacher": str(teacher), "synvid": str(synvid), **to_dict(cfg)},
                  write=info.is_main)
        latents, targets, source = build_decoder_data(model, cfg.method, synvid, cfg.trainer.seed)
        log.info("decoder data: %d latents %s from %s, targets %s", len(latents), tuple(latents.shape[1:]), source,
                 tuple(targets.shape[1:]))
        method = DecoderMethod(cfg.method, decoder, latents, targets)
        summary = run_training(method, cfg.trainer, cfg, out, resume=resume, info=info)
        summary["heldout_psnr_db"] = round(method.heldout_psnr(), 3)
        summary.update(source=source, num_latents=len(latents), vae_sha256=vae_sha256(model.folder),
                       family=family_of(model.pipe).name, teacher=str(teacher),
                       decoder_params=sum(p.numel() for p in decoder.parameters()))
        if info.is_main:
            info_json = {k: summary[k] for k in ("vae_sha256", "family", "teacher", "source", "num_latents",
                                                 "heldout_psnr_db", "decoder_params")}
            save_decoder(decoder.cpu().eval(), out / "decoder", {**info_json, "config": to_dict(cfg)})
            atomic_write_text(out / "summary.json", json.dumps({**summary, "config": to_dict(cfg)}, indent=2,
                                                               default=_json_default))
        return summary
    finally:
        distributed.cleanup(info)


def _json_default(value):
    return float(value) if isinstance(value, np.floating) else str(value)
