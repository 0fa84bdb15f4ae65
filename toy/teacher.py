"""The 1D teacher on two data points: the exact flow-matching velocity, or a small MLP trained for it.

Time convention (rectified flow, used throughout ``toy``)::

    sigma in [0, 1],   x_sigma = (1 - sigma) * x_0 + sigma * eps,   eps ~ N(0, 1)
    the network predicts the velocity  v = eps - x_0
    sampling goes from sigma = 1 (noise) to sigma = 0 (data):
        x <- x + (sigma_next - sigma) * v(x, sigma)

The teacher's ODE is solved on a uniform grid of ``num_steps`` intervals with
classical RK4 (four velocity calls per interval); few-step students use the plain
Euler update above, the package core's ``euler_sample`` (see :mod:`toy.core`).

For two data points ``a < b`` the exact velocity is ``(x - E[x_0 | x_sigma]) / sigma``, where the
posterior puts weight ``sigmoid((b - a) (1 - sigma) (x - (1 - sigma) m) / sigma^2)`` on ``b``
(``m = (a + b) / 2``). ``TeacherConfig.kind`` picks it (``"exact"``, what the app and the CLI use:
no training, vectorised) or the MLP trained by flow matching (``"mlp"``, the toy's first teacher,
about as good but seconds of training per data pair). The exact ODE sends the lower half of the
Gaussian (eps < 0, the median) to ``a`` and the upper half to ``b``. A 1D ODE flow never lets two
trajectories cross, so the set of points at noise level ``sigma`` that end nearer ``b`` is
everything above a single curve, the *separatrix*: the trajectory that ends exactly at the
midpoint ``(a + b) / 2``. ``Teacher`` stores that curve on its grid, which turns the question
"where does the teacher's ODE from ``(x, sigma)`` end?" into one comparison. For the exact
velocity it is the line ``x = (1 - sigma) m``: there the posterior is 1/2-1/2, so ``v = -m``, which
is the line's own slope (RK4 keeps it to rounding); the MLP's is found by bisection.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field

import torch
from torch import nn

__all__ = [
    "ExactVelocity",
    "TEACHER_KINDS",
    "Teacher",
    "TeacherConfig",
    "VelocityMLP",
    "check_positions",
    "exact_teacher",
    "get_teacher",
    "single_thread",
    "train_teacher",
]


@contextlib.contextmanager
def single_thread():
    """Run tiny-MLP work at one torch thread (fastest for these sizes), then restore."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def check_positions(positions) -> tuple[float, float]:
    """Validate the two data positions; return them as a ``(lower, upper)`` float pair."""
    try:
        values = tuple(float(p) for p in positions)
    except (TypeError, ValueError):
        raise ValueError(f"`positions` must be two numbers but is {positions!r}") from None
    if len(values) != 2:
        raise ValueError(f"`positions` must hold exactly 2 numbers but holds {len(values)}: {positions!r}")
    if not all(math.isfinite(p) and abs(p) <= 10.0 for p in values):
        raise ValueError(f"`positions` must be finite with |value| <= 10 but are {values}")
    if values[1] - values[0] < 0.2:
        raise ValueError(
            f"`positions` must be increasing and at least 0.2 apart (lower, upper) but are {values}"
        )
    return values


class VelocityMLP(nn.Module):
    """``v(x, sigma)``: inputs ``x`` (N,) and ``sigma`` (N,) or scalar, output (N,)."""

    def __init__(self, width: int = 64, depth: int = 3):
        super().__init__()
        layers: list[nn.Module] = [nn.Linear(2, width), nn.SiLU()]
        for _ in range(depth - 1):
            layers += [nn.Linear(width, width), nn.SiLU()]
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
        sigma = torch.as_tensor(sigma, dtype=x.dtype).expand_as(x)
        return self.net(torch.stack([x, sigma], dim=-1)).squeeze(-1)


class ExactVelocity(nn.Module):
    """The exact velocity ``v(x, sigma)`` of flow matching on two equally likely points.

    Inputs ``x`` (N,) and ``sigma`` (N,) or scalar, output (N,). No parameters.
    """

    # The field is singular at sigma = 0 (the posterior collapses to a point); RK4's last stage
    # lands there. On a straight final approach x - x0_hat is rounding, so dividing by a small
    # floor instead of 0 adds ~1e-7 to the endpoint instead of a NaN.
    SIGMA_FLOOR = 1e-3

    def __init__(self, positions: tuple[float, float]):
        super().__init__()
        self.lower, self.upper = check_positions(positions)

    def _coefficients(self, sigma) -> tuple:
        # Scalar sigma (the solver's case) stays a Python float: half the tensor ops per call.
        if isinstance(sigma, torch.Tensor) and sigma.dim() == 0:
            sigma = float(sigma)
        if isinstance(sigma, torch.Tensor):
            sigma = sigma.clamp(min=self.SIGMA_FLOOR)
        else:
            sigma = max(sigma, self.SIGMA_FLOOR)
        midpoint = 0.5 * (self.lower + self.upper)
        return sigma, (self.upper - self.lower) * (1 - sigma) / sigma**2, (1 - sigma) * midpoint

    def posterior_upper(self, x: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
        """``P(x_0 = upper | x_sigma = x)``: (N,), for ``sigma`` (N,) or scalar."""
        _, slope, centre = self._coefficients(sigma)
        return torch.sigmoid(slope * (x - centre))

    def forward(self, x: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
        sigma, slope, centre = self._coefficients(sigma)
        x_0 = torch.sigmoid(slope * (x - centre)) * (self.upper - self.lower) + self.lower
        return (x - x_0) / sigma


TEACHER_KINDS = ("exact", "mlp")


@dataclass(frozen=True)
class TeacherConfig:
    """How the teacher is made and solved. Cached teachers are keyed by this whole config.

    ``kind``: ``"exact"`` (the closed-form velocity; the training fields are unused) or ``"mlp"``.
    """

    kind: str = "exact"
    positions: tuple[float, float] = (-1.0, 1.0)
    seed: int = 0
    num_train_steps: int = 1500
    batch_size: int = 512
    width: int = 64
    depth: int = 3
    learning_rate: float = 3e-3
    num_steps: int = 50  # RK4 intervals of the teacher's ODE grid

    def __post_init__(self):
        object.__setattr__(self, "positions", check_positions(self.positions))
        if self.kind not in TEACHER_KINDS:
            raise ValueError(f"`kind` must be one of {TEACHER_KINDS} but is {self.kind!r}")
        if self.num_steps < 2:
            raise ValueError(f"`num_steps` must be >= 2 but is {self.num_steps}")


@dataclass
class Teacher:
    """A velocity (``ExactVelocity`` or a trained ``VelocityMLP``) plus its solver grid and separatrix.

    ``sigmas`` (num_steps+1,) runs from 1 to 0; ``separatrix`` (num_steps+1,) is the
    position, at each grid sigma, of the trajectory that ends at the midpoint.
    """

    config: TeacherConfig
    model: nn.Module
    sigmas: torch.Tensor
    separatrix: torch.Tensor = field(default_factory=lambda: torch.empty(0))
    train_seconds: float = 0.0

    @property
    def positions(self) -> tuple[float, float]:
        return self.config.positions

    @property
    def midpoint(self) -> float:
        lower, upper = self.config.positions
        return 0.5 * (lower + upper)

    def step_index(self, sigma: torch.Tensor) -> torch.Tensor:
        """Grid index of each ``sigma`` (N,); raises if a sigma is not on the grid."""
        index = torch.round((1.0 - sigma) * self.config.num_steps).long()
        off_grid = (self.sigmas[index] - sigma).abs() > 1e-5
        if bool(off_grid.any()):
            raise ValueError(f"`sigma` must lie on the teacher's grid of {self.config.num_steps} steps")
        return index

    def solve(self, x: torch.Tensor, sigma: torch.Tensor, return_path: bool = False) -> torch.Tensor:
        """RK4 from grid noise levels ``sigma`` (N,) to 0, starting at ``x`` (N,).

        Every point takes the remaining steps of the shared grid, so a point taken from
        a teacher trajectory continues exactly along it. Returns the endpoints (N,), or
        with ``return_path`` the whole path (num_steps+1, N), frozen before each start.
        """
        start = self.step_index(sigma)
        all_started = int(start.max()) if start.numel() else 0
        path = [x]
        with torch.no_grad(), single_thread():
            for i in range(self.config.num_steps):
                if i >= all_started:  # every point is moving: no masking (most calls start at sigma = 1)
                    x = _rk4_step(self.model, x, self.sigmas[i], self.sigmas[i + 1])
                elif bool((active := start <= i).any()):
                    s, s_next = self.sigmas[i], self.sigmas[i + 1]
                    x_new = _rk4_step(self.model, x[active], s, s_next)
                    x = x.clone()
                    x[active] = x_new
                path.append(x)
        return torch.stack(path) if return_path else x

    def trajectories(self, eps: torch.Tensor) -> torch.Tensor:
        """Teacher trajectories from noise ``eps`` (N,): (num_steps+1, N), row 0 is ``eps``."""
        return self.solve(eps, torch.ones_like(eps), return_path=True)

    def ends_upper(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """Whether the teacher's ODE from ``(x, sigma)`` ends nearer the upper point: bool (N,).

        Uses the separatrix (see the module docstring); ``test_toy`` checks it agrees
        with a direct :meth:`solve`.
        """
        return x > self.separatrix[self.step_index(sigma)]


def _rk4_step(model: nn.Module, x: torch.Tensor, sigma, sigma_next) -> torch.Tensor:
    h = sigma_next - sigma
    k1 = model(x, sigma)
    k2 = model(x + 0.5 * h * k1, sigma + 0.5 * h)
    k3 = model(x + 0.5 * h * k2, sigma + 0.5 * h)
    k4 = model(x + h * k3, sigma_next)
    return x + h / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)


def _find_separatrix(teacher: Teacher, num_candidates: int = 33, num_rounds: int = 6) -> torch.Tensor:
    """Bisect (by a grid of candidates per round) for the noise whose trajectory ends at the midpoint."""
    low, high = -6.0, 6.0
    for _ in range(num_rounds):
        eps = torch.linspace(low, high, num_candidates)
        upper = teacher.solve(eps, torch.ones_like(eps)) > teacher.midpoint
        # The flow is monotone, so `upper` is False...False True...True.
        first = int(torch.nonzero(upper)[0]) if bool(upper.any()) else num_candidates - 1
        first = max(first, 1)
        low, high = float(eps[first - 1]), float(eps[first])
    eps_star = torch.tensor([0.5 * (low + high)])
    return teacher.trajectories(eps_star)[:, 0]


def _grid(config: TeacherConfig) -> torch.Tensor:
    # The RK4 grid stays the float32 linspace the published numbers came from: the core's
    # float64 schedule rounds to it within one ulp at 50 steps, but the distribution-matching
    # generator amplifies that ulp (its W1 moves from 0.078 to 0.068).
    return torch.linspace(1.0, 0.0, config.num_steps + 1)


def exact_teacher(config: TeacherConfig) -> Teacher:
    """The teacher with the closed-form velocity: no training, separatrix ``(1 - sigma) m``."""
    start = time.perf_counter()
    sigmas = _grid(config)
    teacher = Teacher(config=config, model=ExactVelocity(config.positions), sigmas=sigmas)
    lower, upper = config.positions
    teacher.separatrix = (1 - sigmas) * (0.5 * (lower + upper))
    teacher.train_seconds = time.perf_counter() - start
    return teacher


def train_teacher(config: TeacherConfig) -> Teacher:
    """Flow matching on the two-point data (``kind="mlp"``); about two seconds at the default sizes."""
    lower, upper = config.positions
    generator = torch.Generator().manual_seed(config.seed)
    start = time.perf_counter()
    with single_thread():
        torch.manual_seed(config.seed)
        model = VelocityMLP(config.width, config.depth)
        optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, config.num_train_steps)
        data = torch.tensor([lower, upper])
        for _ in range(config.num_train_steps):
            x_0 = data[torch.randint(0, 2, (config.batch_size,), generator=generator)]
            eps = torch.randn(config.batch_size, generator=generator)
            sigma = torch.rand(config.batch_size, generator=generator)
            x_sigma = (1 - sigma) * x_0 + sigma * eps
            loss = (model(x_sigma, sigma) - (eps - x_0)).pow(2).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
        model.eval()
        model.requires_grad_(False)
        teacher = Teacher(config=config, model=model, sigmas=_grid(config))
        teacher.separatrix = _find_separatrix(teacher)
    teacher.train_seconds = time.perf_counter() - start
    return teacher


_TEACHERS: dict[TeacherConfig, Teacher] = {}


def get_teacher(config: TeacherConfig | None = None) -> Teacher:
    """The teacher for ``config``, made (or trained) once per process and then cached."""
    config = config or TeacherConfig()
    if config not in _TEACHERS:
        _TEACHERS[config] = exact_teacher(config) if config.kind == "exact" else train_teacher(config)
    return _TEACHERS[config]
