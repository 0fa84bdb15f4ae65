"""Few-step students: MLPs trained so that one Euler step lands where the distillation points say.

``train_student`` trains one; ``train_students`` trains several at once as one batched model (each
layer's weights stacked, ``baddbmm``), which is what the app does: a change of the data positions or
of the sample count needs five students, and one batched run costs far less than five runs.
Its backward pass and Adam are written out (``_StackedNet``, ``_adam_step``): at these sizes a step's
cost was autograd's and the optimizer's per-op overhead, and the hand-written step is the same
kernels in the same order, so the same bits as autograd and ``torch.optim.Adam`` (``test_toy``). The batched
run follows each student's own seeded run: same initialisation, same batches, and Adam is
elementwise; only the matmul's rounding differs (``test_toy`` compares them)."""

from __future__ import annotations

from functools import lru_cache

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

    Weights are stacked per layer, (K, in, out) and biases (K, 1, out); the loss is the sum over
    students of each one's mean, so each student's gradient is its own. Returns K students.
    """
    points_list = list(points_list)
    if not points_list:
        return []
    count = len(points_list)
    # (n, 3) per student: x, sigma and the velocity target, gathered by one index_select per step
    tables = [torch.stack([p.x, p.sigma, (p.x_next - p.x) / (p.sigma_next - p.sigma)], -1) for p in points_list]
    sizes = [len(table) for table in tables]
    same_size = len(set(sizes)) == 1  # the app's case: one (K, n, 3) table, one gather per step
    generators = [torch.Generator().manual_seed(seed) for _ in points_list]
    with single_thread(), torch.no_grad():
        torch.manual_seed(seed)
        template = VelocityMLP(width, depth)  # the initialisation of each student's own run
        net = _StackedNet(template, count)
        exp_avg, exp_avg_sq = torch.zeros_like(net.flat), torch.zeros_like(net.flat)
        if same_size:
            table = torch.stack(tables)
        for step, rate in enumerate(_cosine_rates(learning_rate, num_train_steps), start=1):
            if same_size:  # same seed and size: every student's own run draws this same batch
                batch = torch.randint(0, sizes[0], (batch_size,), generator=generators[0])
                rows = table.index_select(1, batch)  # `table[:, batch]` is several times slower
            else:
                batches = [torch.randint(0, n, (batch_size,), generator=g) for n, g in zip(sizes, generators)]
                rows = torch.stack([t.index_select(0, b) for t, b in zip(tables, batches)])
            net.gradient(rows[..., :2], rows[..., 2:])
            _adam_step(net.flat, net.grad, exp_avg, exp_avg_sq, step, rate)
    return [net.student(k, width, depth) for k in range(count)]


class _StackedNet:
    """K ``VelocityMLP`` s as one batched MLP whose weights, (K, in, out), and biases, (K, 1, out), are views
    into one flat tensor ``flat`` (P,), with their gradients likewise in ``grad`` (P,).

    Why by hand, not autograd and ``torch.optim.Adam``: a batched run's cost is per-op overhead (each
    op is a few thousand multiply-adds), and autograd's graph plus Adam over 8 tensors cost more ops
    than the arithmetic. ``gradient`` calls the kernels autograd's backward calls (``bmm``,
    ``silu_backward``, the bias sum), in its order, so the gradients are the same bits (``test_toy``
    checks against autograd); the layouts are the ones ``baddbmm`` takes, so no transpose per step.
    """

    def __init__(self, template: VelocityMLP, count: int):
        linears = [m for m in template.net if isinstance(m, nn.Linear)]
        tensors = [m.weight.detach().T for m in linears] + [m.bias.detach()[None] for m in linears]
        sizes = [count * t.numel() for t in tensors]
        self.flat = torch.cat([t.expand(count, *t.shape).reshape(-1) for t in tensors])
        self.grad = torch.zeros_like(self.flat)
        views = [v.view(count, *t.shape) for v, t in zip(self.flat.split(sizes), tensors)]
        grads = [v.view(count, *t.shape) for v, t in zip(self.grad.split(sizes), tensors)]
        self.weights, self.biases = views[: len(linears)], views[len(linears) :]
        self.weight_grads, self.bias_grads = grads[: len(linears)], grads[len(linears) :]

    def gradient(self, inputs: torch.Tensor, target: torch.Tensor) -> None:
        """Fill ``grad`` with the gradient of ``sum_k mean_b (v_k(inputs[k, b]) - target[k, b])^2``:
        ``inputs`` (K, B, 2) of (x, sigma), ``target`` (K, B, 1)."""
        hidden, layer_inputs, pre_activations = inputs, [], []
        last = len(self.weights) - 1
        for i, (weight, bias) in enumerate(zip(self.weights, self.biases)):
            layer_inputs.append(hidden)
            hidden = torch.baddbmm(bias, hidden, weight)
            if i < last:
                pre_activations.append(hidden)
                hidden = nn.functional.silu(hidden)
        # d loss / d output as autograd has it: mean's 1/B (in float32) times pow's 2 * (output - target)
        scale = float(torch.tensor(1.0) / hidden.shape[1])
        upstream = (2 * (hidden - target)).mul_(scale)
        for i in range(last, -1, -1):
            torch.bmm(layer_inputs[i].transpose(1, 2), upstream, out=self.weight_grads[i])
            torch.sum(upstream, 1, keepdim=True, out=self.bias_grads[i])
            if i:
                upstream = torch.ops.aten.silu_backward(upstream.bmm(self.weights[i].transpose(1, 2)),
                                                        pre_activations[i - 1])

    def student(self, k: int, width: int, depth: int) -> VelocityMLP:
        """Student ``k`` as a ``VelocityMLP`` (eval mode, no gradients)."""
        student = VelocityMLP(width, depth)
        linears = [m for m in student.net if isinstance(m, nn.Linear)]
        for module, weight, bias in zip(linears, self.weights, self.biases):
            module.weight.data.copy_(weight[k].T)
            module.bias.data.copy_(bias[k, 0])
        student.eval()
        student.requires_grad_(False)
        return student


# torch.optim.Adam's defaults, which `train_student` uses.
ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8


def _adam_step(param, grad, exp_avg, exp_avg_sq, step: int, rate: float) -> None:
    """One step of ``torch.optim.Adam`` (default betas and eps, no weight decay) on flat tensors (P,), in
    place: its single-tensor update op for op (``test_toy`` checks the two agree bit for bit), so the
    batched students take the very steps ``train_student``'s optimizer takes."""
    beta1, beta2 = ADAM_BETAS
    exp_avg.lerp_(grad, 1 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    denom = (exp_avg_sq.sqrt() / (1 - beta2**step) ** 0.5).add_(ADAM_EPS)
    param.addcdiv_(exp_avg, denom, value=-(rate / (1 - beta1**step)))


@lru_cache(maxsize=8)
def _cosine_rates(learning_rate: float, num_train_steps: int) -> tuple[float, ...]:
    """The learning rate of each step, (num_train_steps,), under ``CosineAnnealingLR`` as ``train_student``
    steps it. Read off the scheduler itself (its recursive formula rounds unlike the closed form), once per
    (rate, steps), so the batched loop makes no optimizer or scheduler call per step."""
    optimizer = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=learning_rate)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, num_train_steps)
    rates = []
    for _ in range(num_train_steps):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()  # no gradient, so no update; stepping it first is the order the scheduler expects
        schedule.step()
    return tuple(rates)


def sample_student(student: VelocityMLP, eps: torch.Tensor, num_key_steps: int) -> torch.Tensor:
    """``num_key_steps`` Euler steps from ``eps`` (N,) at sigma = 1; returns samples (N,)."""
    with torch.no_grad(), single_thread():
        return euler_sample(student, eps, key_sigmas(num_key_steps)).x_0
