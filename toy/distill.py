"""Distillation in 1D: where the distillation points come from, and which of them are useless.

Two ways to build the points a few-step student trains on (both give, for each of
``N`` noises ``eps``, one point at each of the ``m`` key noise levels
``sigma_j = 1 - j / m``, ``j = 0 .. m-1``, plus the point it should reach at ``sigma_{j+1}``):

* **forward diffusion** (existing knowledge-distillation methods): take a data sample
  ``x_0`` from the *student's* dataset and noise it, ``x_sigma = (1 - sigma) x_0 + sigma eps``;
  the student learns the step ``x_{sigma_j} -> x_{sigma_{j+1}}`` of that same pair.

  - **dataset mismatch M**: the student's dataset is the teacher's data blurred by
    Gaussian noise of std ``M``: ``x_0 = ODE(eps) + M * n``, ``n ~ N(0, 1)``. Each student
    sample keeps a *label*: the teacher data point it was made from (the one ``ODE(eps)``
    is nearer to). ``M = 0`` is the teacher's own data.
  - **Gaussian-noise mismatch**: ``eps`` is paired with ``x_0`` at random (a random
    permutation of the same noises) instead of by the teacher's ODE coupling
    ``eps -> ODE(eps)``. The student's data set and the set of noises stay the same.

* **teacher trajectories** (AccVideo): solve the teacher's ODE from ``eps`` on its grid
  of ``n`` steps and keep every ``n / m``-th point (the key points); the student learns
  the step from key point ``j`` to key point ``j + 1``. The student's dataset, and so
  ``M``, never enters. The label is the data point the trajectory ends nearer to.

A point is **useless** when the teacher's ODE solved from ``(x_sigma, sigma)`` to
``sigma = 0`` ends nearer the *other* teacher data point than its label: the teacher's
guidance there contradicts the target the method trains towards.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from toy.students import key_sigmas, sample_student, train_student, train_students
from toy.teacher import Teacher, VelocityMLP, single_thread

__all__ = [
    "DistillPoints",
    "DistributionMatching",
    "forward_diffusion_points",
    "forward_diffusion_useless",
    "key_sigmas",
    "sample_student",
    "teacher_noise_and_trajectories",
    "train_distribution_matching",
    "train_student",
    "train_students",
    "trajectory_points",
    "useless_fraction",
]


@dataclass
class DistillPoints:
    """The points one method distils on; every field is (N * m,), pair-major.

    ``x`` sits at ``sigma`` and should move to ``x_next`` at ``sigma_next``; ``x_0`` is the
    data end of its pair (or trajectory), ``label_upper`` says which teacher point
    that stands for, ``useless`` marks points the teacher would send elsewhere.
    """

    method: str
    x: torch.Tensor
    sigma: torch.Tensor
    x_next: torch.Tensor
    sigma_next: torch.Tensor
    x_0: torch.Tensor
    eps: torch.Tensor
    label_upper: torch.Tensor
    useless: torch.Tensor

    @property
    def useless_fraction(self) -> float:
        return float(self.useless.float().mean())


def teacher_noise_and_trajectories(teacher: Teacher, num_points: int, seed: int):
    """Noise ``eps`` (N,) from ``seed`` and the teacher's trajectories (num_steps+1, N)."""
    generator = torch.Generator().manual_seed(seed)
    eps = torch.randn(num_points, generator=generator)
    return eps, teacher.trajectories(eps)


def _mark(teacher: Teacher, points: DistillPoints) -> DistillPoints:
    points.useless = teacher.ends_upper(points.x, points.sigma) != points.label_upper
    return points


def _expand(values: torch.Tensor, num_key_steps: int) -> torch.Tensor:
    """(N,) -> (N * m,): each pair repeated once per key step (pair-major)."""
    return values.repeat_interleave(num_key_steps)


def forward_diffusion_points(
    teacher: Teacher,
    eps: torch.Tensor,
    x_teacher: torch.Tensor,
    M: float,
    noise_mismatch: bool,
    num_key_steps: int,
    seed: int,
) -> DistillPoints:
    """Distillation points by forward diffusion from the student's dataset (see module docstring).

    ``eps`` (N,) are the noises and ``x_teacher`` (N,) their teacher ODE endpoints; the
    student's dataset is ``x_teacher + M * n``. Returns (N * m,) fields.
    """
    generator = torch.Generator().manual_seed(seed + 7_919)
    label_upper = x_teacher > teacher.midpoint
    x_0 = x_teacher + M * torch.randn(x_teacher.shape, generator=generator)
    if noise_mismatch:
        eps = eps[torch.randperm(eps.numel(), generator=generator)]
    sigmas = key_sigmas(num_key_steps)
    sigma = sigmas[:-1].repeat(eps.numel())
    sigma_next = sigmas[1:].repeat(eps.numel())
    x_0, eps, label_upper = (_expand(v, num_key_steps) for v in (x_0, eps, label_upper))
    points = DistillPoints(
        method="forward_diffusion",
        x=(1 - sigma) * x_0 + sigma * eps,
        sigma=sigma,
        x_next=(1 - sigma_next) * x_0 + sigma_next * eps,
        sigma_next=sigma_next,
        x_0=x_0,
        eps=eps,
        label_upper=label_upper,
        useless=torch.zeros_like(label_upper),
    )
    return _mark(teacher, points)


def forward_diffusion_useless(
    teacher: Teacher,
    eps: torch.Tensor,
    x_teacher: torch.Tensor,
    M_values,
    noise_mismatch: bool,
    num_key_steps: int,
    seed: int,
) -> list[float]:
    """``forward_diffusion_points(...).useless_fraction`` for each ``M`` of ``M_values`` (L of them), in one
    pass over (L, N, m) arrays: a list of L fractions.

    The Fig. 2e sweep needs only the fractions, and every ``M`` of a seed shares the draws (the blur
    noise and the permutation do not depend on ``M``), so one broadcast replaces L calls. Same
    elementwise operations in the same order, so the same points and the same fractions.
    """
    generator = torch.Generator().manual_seed(seed + 7_919)
    label_upper = x_teacher > teacher.midpoint
    blur = torch.randn(x_teacher.shape, generator=generator)
    if noise_mismatch:
        eps = eps[torch.randperm(eps.numel(), generator=generator)]
    M = torch.tensor([float(v) for v in M_values], dtype=x_teacher.dtype)[:, None, None]  # (L, 1, 1)
    sigmas = key_sigmas(num_key_steps)
    sigma = sigmas[:-1]  # (m,): broadcast against (L, N, 1) pairs
    x_0 = (x_teacher + M.squeeze(-1) * blur).unsqueeze(-1)
    x = (1 - sigma) * x_0 + sigma * eps[:, None]
    boundary = teacher.separatrix[teacher.step_index(sigma)]  # (m,)
    useless = (x > boundary) != label_upper[:, None]
    return useless.float().mean(dim=(1, 2)).tolist()


def trajectory_points(teacher: Teacher, trajectories: torch.Tensor, num_key_steps: int) -> DistillPoints:
    """Key points of the teacher's own trajectories (num_steps+1, N) -> (N * m,) fields."""
    num_steps = trajectories.shape[0] - 1
    if num_steps % num_key_steps:
        raise ValueError(
            f"`num_key_steps` must divide the teacher's {num_steps} steps but is {num_key_steps}"
        )
    keys = trajectories[:: num_steps // num_key_steps]  # (m+1, N)
    sigmas = key_sigmas(num_key_steps)
    num_pairs = trajectories.shape[1]
    x_0 = keys[-1]
    label_upper = x_0 > teacher.midpoint
    points = DistillPoints(
        method="trajectory",
        x=keys[:-1].T.reshape(-1),
        sigma=sigmas[:-1].repeat(num_pairs),
        x_next=keys[1:].T.reshape(-1),
        sigma_next=sigmas[1:].repeat(num_pairs),
        x_0=_expand(x_0, num_key_steps),
        eps=_expand(keys[0], num_key_steps),
        label_upper=_expand(label_upper, num_key_steps),
        useless=torch.zeros(num_pairs * num_key_steps, dtype=torch.bool),
    )
    return _mark(teacher, points)


def useless_fraction(points: DistillPoints) -> float:
    """Fraction of ``points`` that are useless, in [0, 1]."""
    return points.useless_fraction


def _mmd_loss(
    samples: torch.Tensor, target: torch.Tensor, bandwidths=(0.1, 0.3, 1.0), with_constant: bool = True
) -> torch.Tensor:
    """Squared MMD between ``samples`` (B,) and ``target`` (T,), sum of Gaussian kernels.

    ``with_constant=False`` leaves out the target-target term: it has no gradient, so training
    and guidance are the same without it, and it was a third of the kernel work (T x T).
    """

    def kernel(a, b):
        distance = (a[:, None] - b[None, :]).pow(2)
        return sum(torch.exp(-distance / (2 * h * h)) for h in bandwidths)

    loss = kernel(samples, samples).mean() - 2 * kernel(samples, target).mean()
    return loss + kernel(target, target).mean() if with_constant else loss


class _ResidualVelocity(nn.Module):
    """A fixed velocity plus a trainable MLP whose last layer starts at zero: (N,) -> (N,).

    How distribution matching starts from a teacher without weights (the exact velocity):
    at initialisation it *is* the teacher, and training moves only the residual.
    """

    def __init__(self, base: nn.Module, width: int = 32, depth: int = 2):
        super().__init__()
        self.base = base
        self.residual = VelocityMLP(width, depth)
        last = self.residual.net[-1]
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)

    def forward(self, x: torch.Tensor, sigma) -> torch.Tensor:
        return self.base(x, sigma) + self.residual(x, sigma)


def _generator_start(teacher: Teacher) -> nn.Module:
    """A trainable copy of the teacher's velocity (the teacher's own weights when it has any)."""
    if any(True for _ in teacher.model.parameters()):
        return copy.deepcopy(teacher.model)
    return _ResidualVelocity(teacher.model)


@dataclass
class DistributionMatching:
    """A one-step generator ``G(eps) = eps - v(eps, 1)`` trained only to match the teacher's samples.

    Like distribution-matching methods, it starts from the teacher (its weights, or for the exact
    teacher the exact velocity plus a zero-initialised residual MLP), so at initialisation ``G``
    is one Euler step of the teacher: close to the data mean (exactly the mean for the exact
    teacher, whose posterior at ``sigma = 1`` is the prior).

    ``eps`` (K,) is an evaluation grid of noises; ``x_init`` / ``x_final`` (K,) are ``G(eps)``
    before and after training; ``guidance`` (K,) is the distribution-matching update
    direction (minus the MMD gradient) on each sample at initialisation; ``x_teacher`` (K,)
    is where the teacher's ODE sends each noise. ``inaccurate`` marks guidance that points
    away from the teacher's endpoint; ``wrong_endpoint`` marks noises the trained
    generator sends nearer the other data point than the teacher does.
    """

    eps: torch.Tensor
    x_teacher: torch.Tensor
    x_init: torch.Tensor
    guidance: torch.Tensor
    x_final: torch.Tensor
    samples: torch.Tensor
    inaccurate: torch.Tensor
    wrong_endpoint: torch.Tensor
    inaccurate_history: list[tuple[int, float]]

    @property
    def inaccurate_fraction(self) -> float:
        return float(self.inaccurate.float().mean())

    @property
    def wrong_endpoint_fraction(self) -> float:
        return float(self.wrong_endpoint.float().mean())


def train_distribution_matching(
    teacher: Teacher,
    teacher_samples: torch.Tensor,
    seed: int,
    num_train_steps: int = 300,
    batch_size: int = 256,
    num_grid: int = 201,
    learning_rate: float = 1e-2,
) -> DistributionMatching:
    """Train a one-step generator by MMD to ``teacher_samples`` (T,) and record its guidance.

    Guidance on a noise is *inaccurate* when it moves the sample away from the teacher's
    endpoint for that noise while the two are more than 5% of the data spacing apart.
    """
    lower, upper = teacher.positions
    tolerance = 0.05 * (upper - lower)
    generator = torch.Generator().manual_seed(seed + 104_729)
    eps_grid = torch.linspace(-3.0, 3.0, num_grid)
    x_teacher = teacher.solve(eps_grid, torch.ones_like(eps_grid))
    target_upper = x_teacher > teacher.midpoint

    def generate(model, eps):
        return eps - model(eps, 1.0)

    def guidance_on_grid(model):
        x = generate(model, eps_grid).detach().requires_grad_(True)
        _mmd_loss(x, teacher_samples, with_constant=False).backward()
        direction = -x.grad
        gap = x_teacher - x.detach()
        # A sample already at its teacher endpoint has no meaningful direction to get wrong.
        away = (torch.sign(direction) != torch.sign(gap)) & (gap.abs() > tolerance)
        return x.detach(), direction, away

    history: list[tuple[int, float]] = []
    with single_thread():
        torch.manual_seed(seed + 104_729)  # the residual MLP of an exact teacher starts from here
        model = _generator_start(teacher).train()
        model.requires_grad_(True)
        x_init, guidance, inaccurate = guidance_on_grid(model)
        optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
        for step in range(num_train_steps):
            if step % 50 == 0:
                history.append((step, float(guidance_on_grid(model)[2].float().mean())))
            eps = torch.randn(batch_size, generator=generator)
            index = torch.randint(0, teacher_samples.numel(), (batch_size,), generator=generator)
            loss = _mmd_loss(generate(model, eps), teacher_samples[index], with_constant=False)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        history.append((num_train_steps, float(guidance_on_grid(model)[2].float().mean())))
        with torch.no_grad():
            x_final = generate(model, eps_grid)
            samples = generate(model, torch.randn(teacher_samples.numel(), generator=generator))
    return DistributionMatching(
        eps=eps_grid,
        x_teacher=x_teacher,
        x_init=x_init,
        guidance=guidance,
        x_final=x_final,
        samples=samples,
        inaccurate=inaccurate,
        wrong_endpoint=(x_final > teacher.midpoint) != target_upper,
        inaccurate_history=history,
    )
