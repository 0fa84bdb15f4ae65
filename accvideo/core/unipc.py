"""UniPC sampling of a rectified-flow ODE over any velocity callable (diffusers' scheduler).

The AccVideo-Wan authors sample their student with Wan's flow-matching UniPC solver, which
the Wan2.1 -Diffusers repos ship as `UniPCMultistepScheduler(prediction_type="flow_prediction",
use_flow_sigmas=True, flow_shift=k)`. `unipc_sample` drives that scheduler the way
`WanPipeline.__call__` does, with the same `velocity(x, sigma) -> v` contract as
`euler_sample`, so the model is still called only through the caller's callable.

Two upstream details are kept on purpose, because they are what the authors ran:
- the schedule spaces the n model calls over linspace(1, 1/1000) (then shifted) and appends 0
  (`unipc_sigma_schedule`), not over linspace(1, 0) as our Euler schedule does;
- the model sees the scheduler's integer timestep `int(1000 sigma)` (999 at sigma = 1), while
  the solver steps with the exact sigma.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from accvideo.core.sampling import SampleResult, SamplingInterrupted, StepCallback, VelocityFn, check_sigmas

NUM_TRAIN_TIMESTEPS = 1000  # the Wan2.1 scheduler's num_train_timesteps; timestep = 1000 sigma


def unipc_sigma_schedule(num_steps: int, shift: float = 1.0) -> torch.Tensor:
    """The sigmas of an n-step flow UniPC run: shape (num_steps + 1,), float64.

    Exactly what `UniPCMultistepScheduler(use_flow_sigmas=True, flow_shift=shift).set_timesteps(n)`
    computes (before its 1e-6 nudge of sigma = 1): linspace(1, 1/1000, n + 1)[:-1] shifted by
    `k s / (1 + (k - 1) s)` in numpy float64, then a final 0.
    """
    if not isinstance(num_steps, int) or isinstance(num_steps, bool) or num_steps < 1:
        raise ValueError(f"`num_steps` must be an integer >= 1 but is {num_steps!r}.")
    if not shift > 0:
        raise ValueError(f"`shift` must be > 0 but is {shift!r}.")
    # numpy, in the scheduler's operation order, so the values are the scheduler's to the bit
    sigmas = np.linspace(1, 1 / NUM_TRAIN_TIMESTEPS, num_steps + 1)[:-1]
    sigmas = shift * sigmas / (1 + (shift - 1) * sigmas)
    return torch.from_numpy(np.concatenate([sigmas, [0.0]]))


def flow_unipc_scheduler():
    """A fresh flow-matching UniPC scheduler configured like the Wan2.1 -Diffusers repos. Its
    flow_shift is 1: `unipc_sample` hands it an already shifted schedule."""
    from diffusers import UniPCMultistepScheduler

    return UniPCMultistepScheduler(num_train_timesteps=NUM_TRAIN_TIMESTEPS, prediction_type="flow_prediction",
                                   use_flow_sigmas=True, flow_shift=1.0, solver_order=2, solver_type="bh2",
                                   predict_x0=True, lower_order_final=True, final_sigmas_type="zero")


def unipc_sample(
    velocity: VelocityFn,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    callback: StepCallback | None = None,
    interrupt: Callable[[], bool] | None = None,
    return_trajectory: bool = False,
) -> SampleResult:
    """Integrate from sigmas[0] to sigmas[-1] = 0 with the second-order flow UniPC solver.

    Args and result as `euler_sample`: `velocity(x, sigma) -> v` (v of the shape of x), `x` the
    start at sigmas[0] (usually noise, any shape), `sigmas` a strictly decreasing schedule of
    shape (n + 1,) ending at 0 (`unipc_sigma_schedule`, or a student's key-step schedule).
    `callback(step_index, num_steps, sigma_next, x)` after each step; the trajectory, when
    requested, has shape (n + 1, *x.shape). One velocity call per step.
    """
    sigmas = check_sigmas(torch.as_tensor(sigmas, dtype=torch.float64))
    if float(sigmas[-1]) != 0.0 or float(sigmas[0]) > 1.0:
        raise ValueError(f"`sigmas` for the UniPC sampler must lie in [0, 1] and end at 0 but is {sigmas.tolist()}.")
    scheduler = flow_unipc_scheduler()
    scheduler.set_timesteps(sigmas=sigmas[:-1].numpy(), device=x.device)
    scheduler.set_begin_index(0)  # as WanPipeline: step i is schedule index i
    num_steps = len(scheduler.timesteps)
    states = [x] if return_trajectory else None
    for i, t in enumerate(scheduler.timesteps):
        if interrupt is not None and interrupt():
            raise SamplingInterrupted(f"sampling interrupted before step {i + 1} of {num_steps}")
        # the model sees the scheduler's integer timestep, as in WanPipeline and Wan's own sampler
        v = velocity(x, int(t) / NUM_TRAIN_TIMESTEPS)
        x = scheduler.step(v, t, x, return_dict=False)[0]
        if states is not None:
            states.append(x)
        if callback is not None:
            callback(i, num_steps, float(sigmas[i + 1]), x)
    trajectory = torch.stack(states) if states is not None else None
    return SampleResult(x_0=x, sigmas=sigmas, trajectory=trajectory, num_evals=num_steps)
