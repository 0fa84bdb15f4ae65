"""Sigma schedules and key-step selection for rectified-flow sampling.

See `accvideo/__init__.py` for the time convention (sigma = 1 is noise, 0 is data).
"""

from __future__ import annotations

import torch


def shift_sigmas(sigmas: torch.Tensor, shift: float) -> torch.Tensor:
    """Apply the SD3 / Wan / HunyuanVideo timestep shift `s' = k s / (1 + (k - 1) s)`.

    A shift k > 1 spends more of the steps at high noise, where large-scale structure
    is decided. Both ends are fixed points: s = 0 -> 0 and s = 1 -> 1.
    """
    if shift <= 0:
        raise ValueError(f"`shift` must be > 0 but is {shift}.")
    return shift * sigmas / (1 + (shift - 1) * sigmas)


def sigma_schedule(num_steps: int, shift: float = 1.0) -> torch.Tensor:
    """The sigmas `1 = s_0 > s_1 > ... > s_n = 0` of an n-step sampler.

    Returns a float64 tensor of shape (num_steps + 1,): `linspace(1, 0, n + 1)` then shifted.
    The shift is diffusers' `FlowMatchEulerDiscreteScheduler(shift=k)` (tested). Its default
    spacing differs: it evaluates at linspace(1, 1/1000, n) and appends 0, so its last model
    call (at sigma = 0.001) barely moves the sample. We spread all n calls over [1, 0], which
    matters for few-step students; `set_timesteps(sigmas=linspace(1, 0, n + 1)[:-1])` makes
    the diffusers scheduler agree with this function exactly.
    """
    if not isinstance(num_steps, int) or isinstance(num_steps, bool) or num_steps < 1:
        raise ValueError(f"`num_steps` must be an integer >= 1 but is {num_steps!r}.")
    return shift_sigmas(torch.linspace(1.0, 0.0, num_steps + 1, dtype=torch.float64), shift)


def key_steps(num_steps: int, num_key_steps: int) -> list[int]:
    """Indices `0 = k_0 < k_1 < ... < k_m = n` of the m + 1 key points on an n-step trajectory.

    AccVideo's student takes one step per segment [k_j, k_{j+1}]. The indices are spread
    as evenly as integers allow, so 50 -> 5 gives every 10th step: [0, 10, 20, 30, 40, 50].
    """
    if not isinstance(num_steps, int) or num_steps < 1:
        raise ValueError(f"`num_steps` must be an integer >= 1 but is {num_steps!r}.")
    if not isinstance(num_key_steps, int) or not 1 <= num_key_steps <= num_steps:
        raise ValueError(
            f"`num_key_steps` must be an integer in [1, num_steps={num_steps}] but is {num_key_steps!r}."
        )
    return [round(j * num_steps / num_key_steps) for j in range(num_key_steps + 1)]


def key_sigmas(sigmas: torch.Tensor, num_key_steps: int) -> torch.Tensor:
    """The sub-schedule `s_{k_0}, ..., s_{k_m}` of `sigmas` (shape (n + 1,)) at the key steps."""
    return sigmas[key_steps(len(sigmas) - 1, num_key_steps)]
