"""The teacher's second stage as a trainer method: the transformer learns the rectified-flow
velocity on pre-encoded latents of the procedural world,

    L = || v_theta(x_sigma, sigma, c) - (eps - x_0) ||^2,   x_sigma = (1 - sigma) x_0 + sigma eps,

with sigma = shift(u), u ~ U(0, 1) (the sampling schedule's shift), and the empty prompt in
place of the caption a `caption_dropout` share of the time, so classifier-free guidance works.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from accvideo.core.path import interpolate, velocity_target
from accvideo.core.schedules import shift_sigmas
from accvideo.models.families import family_of


class FlowMatchingMethod:
    """Role: the transformer (trainable). One phase, "transformer"."""

    name = "flow_matching"
    all_phases = ["transformer"]
    rng_stream = 2  # the teacher loop's stage number: seeded runs keep their data (trainer._step_rng)

    def __init__(self, transformer: nn.Module, latents: torch.Tensor, cond: dict[str, torch.Tensor],
                 prompt_index: torch.Tensor, empty_index: int, shift: float, caption_dropout: float):
        """latents: (N, C, T, H, W) normalised clip latents; cond: conditioning of P prompts (P
        rows each); prompt_index: (N,) the row of each clip's prompt; empty_index: the row of the
        empty prompt."""
        self.transformer = transformer.train()
        self.family = family_of(transformer)
        self.latents, self.cond = latents, cond
        self.prompt_index, self.empty_index = prompt_index, empty_index
        self.shift, self.caption_dropout = shift, caption_dropout

    def to(self, device: torch.device) -> FlowMatchingMethod:
        return self  # nothing frozen; batches are moved by the loop

    def close(self) -> None:
        """Nothing to release."""

    def trainable(self) -> dict[str, nn.Module]:
        return {"transformer": self.transformer}

    def phases(self, step: int) -> list[str]:
        return ["transformer"]

    def phase_modules(self, phase: str) -> list[str]:
        return ["transformer"]

    def lr(self, phase: str, base_lr: float) -> float:
        return base_lr

    def batch(self, rng: np.random.Generator, batch_size: int) -> dict:
        g = torch.Generator().manual_seed(int(rng.integers(2**62)))
        idx = torch.randint(len(self.latents), (batch_size,), generator=g)
        x_0 = self.latents[idx]
        eps = torch.randn(x_0.shape, generator=g)
        sigma = shift_sigmas(torch.rand(batch_size, generator=g), self.shift).float()
        keep = torch.rand(batch_size, generator=g) >= self.caption_dropout
        rows = torch.where(keep, self.prompt_index[idx], torch.full_like(idx, self.empty_index))
        return {"x_0": x_0, "eps": eps, "sigma": sigma, "cond": {k: v[rows] for k, v in self.cond.items()}}

    def loss(self, phase: str, batch: dict, wrapped: dict[str, nn.Module], step: int):
        """x_0, eps: (B, C, T, H, W); sigma: (B,); cond: B rows."""
        x_0, eps, sigma = batch["x_0"], batch["eps"], batch["sigma"]
        x_sigma = interpolate(x_0, eps, sigma)
        v = self.family.transformer_call(wrapped["transformer"], x_sigma, sigma, batch["cond"])
        return F.mse_loss(v.float(), velocity_target(x_0, eps).float()), {}
