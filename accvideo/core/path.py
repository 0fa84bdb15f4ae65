"""The rectified-flow path, written once (the convention of the whole package).

    x_sigma = (1 - sigma) * x_0 + sigma * eps,   v = eps - x_0,   t = 1000 * sigma

`t` is the timestep the diffusers transformers (Wan, HunyuanVideo) take: their schedulers
train on `num_train_timesteps = 1000` and pass `sigma * 1000` to the model.
"""

from __future__ import annotations

import torch

TIMESTEP_SCALE = 1000.0


def timestep(sigma: float | torch.Tensor, batch_size: int, device: torch.device | str | None = None) -> torch.Tensor:
    """The transformer's timestep for noise level `sigma`: float32, shape (batch_size,).

    `sigma` is a python float (one level for the batch) or a tensor of shape () or (batch_size,)
    (one level per sample). The product is taken in float64 and rounded once to float32, so a
    float and a float32 tensor of the same sigma give the same bits, and a bf16 model never
    sees a rounded timestep (999 would become 1000 in bf16).
    """
    sigma = torch.as_tensor(sigma, dtype=torch.float64, device=device)
    t = (sigma * TIMESTEP_SCALE).to(torch.float32)
    if t.ndim == 0:
        return t.expand(batch_size).contiguous()
    if t.shape != (batch_size,):
        raise ValueError(f"`sigma` must be a number or have shape ({batch_size},) but has shape {tuple(t.shape)}.")
    return t


def interpolate(x_0: torch.Tensor, eps: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """x_sigma for data x_0 and noise eps (same shape (B, ...)); sigma of shape (B,) or ()."""
    sigma = _per_sample(sigma, x_0)
    return (1 - sigma) * x_0 + sigma * eps


def velocity_target(x_0: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """The velocity a flow-matching model learns: v = eps - x_0."""
    return eps - x_0


def _per_sample(sigma: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
    return sigma.view(-1, *([1] * (x.ndim - 1))) if sigma.ndim == 1 else sigma
