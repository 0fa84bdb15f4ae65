"""Few-step students: MLPs trained so that one Euler step lands where the distillation points say.

``train_student`` trains one; ``train_students`` trains several at once as one batched model (each
layer's weights stacked, ``baddbmm``), which is what the app does: a change of the data positions or
of the sample count needs five students, and one batched run costs little more than one student
(the per-step cost is Python and autograd overhead, not arithmetic). The batched run follows each
student's own seeded run: same initialisation, same batches, and Adam is elementwise; only the
matmul's rounding differs (``test_toy`` compares them).
"""

from __future__ import annotations

import torch
from torch import nn

from toy.core import euler_sample, sigma_schedule
from toy.teacher import VelocityMLP, single_thread

__all__ = ["key_sigmas", "sample_student", "train_student", "train_students"]


def key_sigmas(num_key_steps: int) -> torch.Tensor:
    """``sigma_j = 1 - j / m`` for ``j = 0 .. m``: (m+1,), from 1 down to 0.

    The core's unshifted schedule, in float32 like every other toy tensor (the core
    keeps float64 for long video schedules; the MLP and the points are float32).
    """
    return sigma_schedule(num_key_steps).float()


def train_student(
    points,
    seed: int,
    num_train_steps: int = 300,
    batch_size: int = 256,
    width: int = 32,
    depth: int = 3,
    learning_rate: float = 2e-2,
) -> VelocityMLP:
    """Few-step student on ``DistillPoints``: one Euler step from each ``x`` at ``sigma`` should land on ``x_next``.

    The loss is written in velocity units, ``(v(x, sigma) - (x_next - x) / (sigma_next - sigma))^2``,
    which has the same minimiser as the landing error and the same scale at every step.
    """
    target = (points.x_next - points.x) / (points.sigma_next - points.sigma)
    generator = torch.Generator().manual_seed(seed)
    with single_thread():
        torch.manual_seed(seed)
        student = VelocityMLP(width, depth)
        optimizer = torch.optim.Adam(student.parameters(), lr=learning_rate)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, num_train_steps)
        for _ in range(num_train_steps):
            batch = torch.randint(0, points.x.numel(), (batch_size,), generator=generator)
            loss = (student(points.x[batch], points.sigma[batch]) - target[batch]).pow(2).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
    student.eval()
    student.requires_grad_(False)
    return student


def train_students(
    points_list,
    seed: int,
    num_train_steps: int = 300,
    batch_size: int = 256,
    width: int = 32,
    depth: int = 3,
    learning_rate: float = 2e-2,
) -> list[VelocityMLP]:
    """``train_student`` for each ``DistillPoints`` of ``points_list`` (K of them), trained together.

    Weights are stacked per layer, (K, out, in) and biases (K, out); the loss is the sum over
    students of each one's mean, so each student's gradient is its own. Returns K students.
    """
    points_list = list(points_list)
    if not points_list:
        return []
    count = len(points_list)
    sizes = [p.x.numel() for p in points_list]
    # (K, n) tables when every student has as many points (the app's case): one gather per step
    same_size = len(set(sizes)) == 1
    generators = [torch.Generator().manual_seed(seed) for _ in points_list]
    with single_thread():
        torch.manual_seed(seed)
        template = VelocityMLP(width, depth)  # the initialisation of each student's own run
        linears = [m for m in template.net if isinstance(m, nn.Linear)]
        weights = [m.weight.detach().expand(count, -1, -1).clone().requires_grad_(True) for m in linears]
        biases = [m.bias.detach().expand(count, -1).clone().requires_grad_(True) for m in linears]
        optimizer = torch.optim.Adam([*weights, *biases], lr=learning_rate)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, num_train_steps)
        if same_size:
            inputs = torch.stack([torch.stack([p.x, p.sigma], dim=-1) for p in points_list])  # (K, n, 2)
            targets = torch.stack([(p.x_next - p.x) / (p.sigma_next - p.sigma) for p in points_list])
        for _ in range(num_train_steps):
            if same_size:  # same seed and size: every student's own run draws this same batch
                batch = torch.randint(0, sizes[0], (batch_size,), generator=generators[0])
                hidden, target = inputs[:, batch], targets[:, batch]
            else:
                batches = [torch.randint(0, n, (batch_size,), generator=g) for n, g in zip(sizes, generators)]
                hidden = torch.stack([torch.stack([p.x[b], p.sigma[b]], -1) for p, b in zip(points_list, batches)])
                target = torch.stack(
                    [((p.x_next - p.x) / (p.sigma_next - p.sigma))[b] for p, b in zip(points_list, batches)]
                )
            for i, (weight, bias) in enumerate(zip(weights, biases)):
                hidden = torch.baddbmm(bias.unsqueeze(1), hidden, weight.transpose(1, 2))
                if i < len(weights) - 1:
                    hidden = nn.functional.silu(hidden)
            loss = (hidden.squeeze(-1) - target).pow(2).mean(dim=1).sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
    students = []
    for k in range(count):
        student = VelocityMLP(width, depth)
        student_linears = [m for m in student.net if isinstance(m, nn.Linear)]
        for module, weight, bias in zip(student_linears, weights, biases):
            module.weight.data.copy_(weight.detach()[k])
            module.bias.data.copy_(bias.detach()[k])
        student.eval()
        student.requires_grad_(False)
        students.append(student)
    return students


def sample_student(student: VelocityMLP, eps: torch.Tensor, num_key_steps: int) -> torch.Tensor:
    """``num_key_steps`` Euler steps from ``eps`` (N,) at sigma = 1; returns samples (N,)."""
    with torch.no_grad(), single_thread():
        return euler_sample(student, eps, key_sigmas(num_key_steps)).x_0
