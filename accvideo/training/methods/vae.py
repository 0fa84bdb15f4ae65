"""The teacher's first stage as a trainer method: the video VAE learns to reconstruct clips of
the procedural world.

Loss per clip batch (videos (B, 3, T, H, W) in [-1, 1]):
    rec = mean(w * (e^2 + |e|)),  e = decode(mode(encode(x))) - x,  w = 1 + foreground_weight * [x is object]
    loss = rec + kl_weight * KL(posterior || N(0, I)) / (3 T H W)
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from accvideo.models.vae import decode_unclamped
from accvideo.world import WorldConfig, make_batch


class VAELoss(nn.Module):
    """The reconstruction loss with the VAE inside, so DDP sees one forward per step (the VAE's
    encode and decode are not its `forward`)."""

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


class VAEMethod:
    """Role: the VAE (trainable, through `VAELoss`). One phase, "vae"; clips rendered per batch."""

    name = "vae"
    all_phases = ["vae"]
    rng_stream = 1  # the teacher loop's stage number: seeded runs keep their data (trainer._step_rng)

    def __init__(self, vae, world: WorldConfig, split: str, kl_weight: float, foreground_weight: float):
        self.objective = VAELoss(vae.train(), kl_weight, foreground_weight)
        self.world, self.split = world, split

    def to(self, device: torch.device) -> VAEMethod:
        return self  # nothing frozen; the loop moves the trainable

    def close(self) -> None:
        """Nothing to release."""

    def trainable(self) -> dict[str, nn.Module]:
        return {"vae": self.objective}

    def phases(self, step: int) -> list[str]:
        return ["vae"]

    def phase_modules(self, phase: str) -> list[str]:
        return ["vae"]

    def lr(self, phase: str, base_lr: float) -> float:
        return base_lr

    def batch(self, rng: np.random.Generator, batch_size: int) -> dict:
        return {"videos": make_batch(int(rng.integers(2**31)), batch_size, self.world, self.split)[0]}

    def loss(self, phase: str, batch: dict, wrapped: dict[str, nn.Module], step: int):
        return wrapped["vae"](batch["videos"])
