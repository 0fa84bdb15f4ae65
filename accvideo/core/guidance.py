"""Classifier-free guidance: one formula for inference, SynVid and online distillation targets."""

from __future__ import annotations

import torch


def cfg(v_cond: torch.Tensor, v_uncond: torch.Tensor, scale: float) -> torch.Tensor:
    """Guided velocity v_uncond + scale * (v_cond - v_uncond); scale 1 gives v_cond."""
    return v_uncond + scale * (v_cond - v_uncond)
