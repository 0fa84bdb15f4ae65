"""Decoder distillation as a trainer method: a `TinyVideoDecoder` learns the teacher VAE's own decodes.

Data (built once, before training, by `build_decoder_data`): N normalised latents z_i
(N, C, T', H', W') and their targets y_i = clamp(VAE.decode(z_i), -1, 1) (N, 3, T, H, W), from
  - "synvid": the final states x_0 of a SynVid run's trajectories (what samplers produce), or
  - "world": clips of the model's procedural world encoded by the VAE (posterior mode), half of
    them perturbed, z + s eps with s ~ U(0, noise_std): a sampler's x_0 is near, not on, the
    encoder's manifold, and the decoder must follow the VAE there too.
The targets are the VAE's decodes of exactly these latents (perturbed ones included), so the
student learns the VAE, not the clips. `heldout` of the N are kept out of training for the
summary's PSNR.

Loss per batch (prediction p, target y, both (B, 3, T, H, W)):
    loss = mean((p - y)^2) + freq_weight * mean(| |FFT2(p)| - |FFT2(y)| |)   (orthonormal spatial FFT)
The frequency term (spatial FFT amplitudes, orthonormal) penalises the blur an MSE-trained
small decoder drifts to; set `freq_weight=0` to train on MSE alone (measured in docs/FIXED_COST.md).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from accvideo.models.tiny_decoder import TinyVideoDecoder

log = logging.getLogger(__name__)
SOURCES = ("auto", "world", "synvid")


@dataclass
class DecoderConfig:
    source: str = "auto"  # "auto": synvid when a SynVid run is given, else world
    num_videos: int = 1024  # latents for "world" (SynVid: at most this many of its samples)
    heldout: int = 64  # of them, kept out of training for the summary's PSNR
    noise_std: float = 0.3  # "world": largest perturbation, in normalised latent units
    channels: int = 64
    num_blocks: int = 2
    pixel_shuffle: int = 2
    freq_weight: float = 0.3
    crop: int = 0  # train on random latent crops of this size (0: whole frames); for large real videos
    data_batch: int = 8  # videos per VAE call while building the data

    def validate(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"`method.source` must be one of {list(SOURCES)} but is {self.source!r}.")
        for name, low in (("num_videos", 2), ("heldout", 1), ("channels", 4), ("num_blocks", 0),
                          ("pixel_shuffle", 1), ("crop", 0), ("data_batch", 1)):
            if getattr(self, name) < low:
                raise ValueError(f"`method.{name}` must be >= {low} but is {getattr(self, name)}.")
        if self.heldout >= self.num_videos:
            raise ValueError(f"`method.heldout` must be smaller than `method.num_videos` ({self.num_videos}) but is "
                             f"{self.heldout}.")
        for name in ("noise_std", "freq_weight"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"`method.{name}` must be >= 0 but is {getattr(self, name)}.")


def frequency_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of spatial FFT amplitudes of (B, 3, T, H, W) videos (orthonormal FFT,
    so the term has the scale of a pixel difference)."""
    a = torch.fft.rfft2(pred.float(), norm="ortho").abs()
    b = torch.fft.rfft2(target.float(), norm="ortho").abs()
    return (a - b).abs().mean()


def psnr_db(pred: torch.Tensor, target: torch.Tensor) -> float:
    """PSNR in dB of videos in [-1, 1] (peak-to-peak 2), over all elements."""
    mse = (pred.float().clamp(-1, 1) - target.float()).pow(2).mean().item()
    return float("inf") if mse == 0 else 10 * np.log10(4.0 / mse)


class DecoderMethod:
    """Role: the decoder (trainable). One phase, "decoder"; batches drawn from the data in memory."""

    name = "decoder"
    all_phases = ["decoder"]
    rng_stream = None

    def __init__(self, cfg: DecoderConfig, decoder: TinyVideoDecoder, latents: torch.Tensor, targets: torch.Tensor):
        """latents (N, C, T', H', W') float32; targets (N, 3, T, H, W) float16 in [-1, 1]; the last
        `cfg.heldout` rows are held out."""
        self.cfg, self.decoder = cfg, decoder.train()
        self.latents, self.targets = latents, targets
        self.num_train = len(latents) - cfg.heldout
        self.fs = decoder.config.scale_factor_spatial

    def to(self, device: torch.device) -> DecoderMethod:
        return self  # the data stays on the CPU; batches move

    def close(self) -> None:
        """Nothing to release."""

    def trainable(self) -> dict[str, nn.Module]:
        return {"decoder": self.decoder}

    def phases(self, step: int) -> list[str]:
        return ["decoder"]

    def phase_modules(self, phase: str) -> list[str]:
        return ["decoder"]

    def lr(self, phase: str, base_lr: float) -> float:
        return base_lr

    def batch(self, rng: np.random.Generator, batch_size: int) -> dict:
        index = torch.from_numpy(rng.integers(self.num_train, size=batch_size))
        z, y = self.latents[index], self.targets[index].float()
        c = self.cfg.crop
        if c and (z.shape[-2] > c or z.shape[-1] > c):
            # one crop per batch: the convolutions are translation-equivariant, so crops teach them
            # the whole frame's mapping at a fraction of the memory (edges aside)
            top = int(rng.integers(z.shape[-2] - c + 1)) if z.shape[-2] > c else 0
            left = int(rng.integers(z.shape[-1] - c + 1)) if z.shape[-1] > c else 0
            z = z[..., top:top + c, left:left + c]
            y = y[..., top * self.fs:(top + c) * self.fs, left * self.fs:(left + c) * self.fs]
        return {"latents": z, "targets": y}

    def loss(self, phase: str, batch: dict, wrapped: dict[str, nn.Module], step: int):
        pred = wrapped["decoder"](batch["latents"])
        mse = F.mse_loss(pred.float(), batch["targets"])
        freq = frequency_loss(pred, batch["targets"]) if self.cfg.freq_weight > 0 else pred.new_zeros(())
        loss = mse + self.cfg.freq_weight * freq
        return loss, {"mse": mse.item(), "freq": freq.item(),
                      "psnr": 10 * float(np.log10(4.0 / max(mse.item(), 1e-12)))}

    @torch.no_grad()
    def heldout_psnr(self, batch_size: int = 16) -> float:
        """PSNR (dB) of the decoder against the VAE on the held-out latents."""
        self.decoder.eval()
        device = next(self.decoder.parameters()).device
        preds = [self.decoder(self.latents[i:i + batch_size].to(device)).clamp(-1, 1).cpu()
                 for i in range(self.num_train, len(self.latents), batch_size)]
        return psnr_db(torch.cat(preds), self.targets[self.num_train:])
