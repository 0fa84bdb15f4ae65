"""One call for the app and the CLI: ``run_toy(config) -> ToyResult``.

Everything that does not depend on a parameter is cached per process: the teacher
(keyed by positions and seed), its trajectories, the trajectory-distilled student, the
distribution-matching generator, the Fig. 2e sweep and the students of Fig. 2f. A
parameter change then costs one student trained at the new ``M`` plus the figures.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import lru_cache

import pandas as pd
import torch

from toy import cache, distill
from toy.teacher import TEACHER_KINDS, Teacher, TeacherConfig, check_positions, get_teacher

__all__ = ["ToyConfig", "ToyResult", "benchmark", "run_toy", "useless_table", "warm_up"]

MAX_M = 5.0
# One toy computation at a time: the caches and the torch thread setting are process-wide.
_LOCK = threading.RLock()


def _check_M(value, name: str = "M") -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"`{name}` must be a number but is {value!r}") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"`{name}` must be >= 0 but is {value}")
    if value > MAX_M:
        raise ValueError(f"`{name}` must be <= {MAX_M} but is {value}")
    return value


def _check_int(value, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"`{name}` must be an integer in [{low}, {high}] but is {value!r}")
    return value


@dataclass(frozen=True)
class ToyConfig:
    """Parameters of the toy. Build from a dict with :meth:`from_dict` (unknown keys are errors).

    ``M``: dataset mismatch, the std of the Gaussian blur of the student's data.
    ``noise_mismatch``: pair noise with data at random instead of by the teacher's ODE.
    ``num_points``: noises per seed (each gives ``num_key_steps`` distillation points).
    ``M_values``: the x axis of Fig. 2e; ``fig2f_M``: the students shown in Fig. 2f (the
    current ``M`` is added). ``num_seeds``: seeds ``seed .. seed+num_seeds-1`` for the bands.
    ``teacher_kind``: ``"exact"`` (the closed-form velocity) or ``"mlp"`` (trained), see :mod:`toy.teacher`.
    """

    positions: tuple[float, float] = (-1.0, 1.0)
    M: float = 1.0
    noise_mismatch: bool = False
    seed: int = 0
    num_points: int = 1000
    num_key_steps: int = 5
    num_teacher_steps: int = 50
    teacher_seed: int = 0
    num_seeds: int = 3
    M_values: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)
    fig2f_M: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0)
    student_train_steps: int = 300
    teacher_kind: str = "exact"

    def __post_init__(self):
        object.__setattr__(self, "positions", check_positions(self.positions))
        object.__setattr__(self, "M", _check_M(self.M))
        if not isinstance(self.noise_mismatch, bool):
            raise ValueError(f"`noise_mismatch` must be True or False but is {self.noise_mismatch!r}")
        _check_int(self.seed, "seed", 0, 2**31 - 1)
        _check_int(self.teacher_seed, "teacher_seed", 0, 2**31 - 1)
        _check_int(self.num_points, "num_points", 50, 20_000)
        _check_int(self.num_teacher_steps, "num_teacher_steps", 2, 500)
        _check_int(self.num_key_steps, "num_key_steps", 1, self.num_teacher_steps)
        if self.num_teacher_steps % self.num_key_steps:
            raise ValueError(
                f"`num_key_steps` must divide `num_teacher_steps` ({self.num_teacher_steps}) "
                f"but is {self.num_key_steps}"
            )
        _check_int(self.num_seeds, "num_seeds", 1, 20)
        _check_int(self.student_train_steps, "student_train_steps", 1, 20_000)
        if self.teacher_kind not in TEACHER_KINDS:
            raise ValueError(f"`teacher_kind` must be one of {TEACHER_KINDS} but is {self.teacher_kind!r}")
        for name in ("M_values", "fig2f_M"):
            values = getattr(self, name)
            if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
                raise ValueError(f"`{name}` must be a list of numbers but is {values!r}")
            values = tuple(sorted({_check_M(v, name) for v in values}))
            limit = 30 if name == "M_values" else 6
            if not 1 <= len(values) <= limit:
                raise ValueError(f"`{name}` must hold 1 to {limit} distinct values but holds {len(values)}")
            object.__setattr__(self, name, values)

    @classmethod
    def from_dict(cls, values: dict) -> ToyConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown ToyConfig keys {unknown}; known keys are {sorted(known)}")
        return cls(**values)

    @property
    def teacher_config(self) -> TeacherConfig:
        return TeacherConfig(
            kind=self.teacher_kind, positions=self.positions, seed=self.teacher_seed, num_steps=self.num_teacher_steps
        )


@dataclass
class ToyResult:
    """What one call returns.

    ``figures``: plotly figures ``trajectories`` (Fig. 2a-b), ``distribution_matching``
    (Fig. 2c-d), ``useless_vs_M`` (Fig. 2e), ``student_results`` (Fig. 2f).
    ``table``: the Fig. 2e table, one row per M (useless fractions, mean and std over seeds).
    ``students``: one row per M of Fig. 2f (Wasserstein-1 distance of each student's
    samples to the teacher's, and the share of samples stranded between the points).
    ``summary``: scalars for the current ``M`` (useless fractions, DM guidance, timing).
    ``points``: the ``DistillPoints`` of both methods at ``M``; ``samples``: (N,) tensors
    keyed ``teacher``, ``trajectory`` and ``forward_diffusion_M=<M>``; ``teacher_paths``:
    (num_teacher_steps+1, 40) teacher trajectories to draw.
    """

    config: ToyConfig
    figures: dict = field(default_factory=dict)
    table: pd.DataFrame | None = None
    students: pd.DataFrame | None = None
    summary: dict = field(default_factory=dict)
    points: dict = field(default_factory=dict)
    samples: dict = field(default_factory=dict)
    teacher_paths: torch.Tensor | None = None
    distribution_matching: distill.DistributionMatching | None = None
    seconds: float = 0.0


# --------------------------------------------------------------------------- cached pieces


@lru_cache(maxsize=32)
def _trajectories(teacher_config: TeacherConfig, num_points: int, seed: int):
    return distill.teacher_noise_and_trajectories(get_teacher(teacher_config), num_points, seed)


@lru_cache(maxsize=8)
def _evaluation_noise(teacher_config: TeacherConfig, num_points: int, seed: int):
    """Held-out noise (N,) and where the teacher's ODE sends it (N,)."""
    eps = torch.randn(num_points, generator=torch.Generator().manual_seed(seed + 1_000_003))
    teacher = get_teacher(teacher_config)
    return eps, teacher.solve(eps, torch.ones_like(eps))


def _points(config: ToyConfig, method: str, M: float, noise_mismatch: bool, seed: int):
    teacher = get_teacher(config.teacher_config)
    eps, trajectories = _trajectories(config.teacher_config, config.num_points, seed)
    if method == "trajectory":
        return distill.trajectory_points(teacher, trajectories, config.num_key_steps)
    return distill.forward_diffusion_points(
        teacher, eps, trajectories[-1], M, noise_mismatch, config.num_key_steps, seed
    )


# (student config, method, M, noise_mismatch) -> samples (N,); oldest entries dropped past the limit
_STUDENTS: OrderedDict[tuple, torch.Tensor] = OrderedDict()
_MAX_STUDENTS = 256


def _student_samples(config: ToyConfig, requests: list[tuple[str, float, bool]]) -> list[torch.Tensor]:
    """Samples (N,) on the held-out noise of the students distilled by ``(method, M, noise_mismatch)``.

    The ones not cached yet are trained together as one batched model (``distill.train_students``).
    """
    missing = [r for r in dict.fromkeys(requests) if (config, *r) not in _STUDENTS]
    if missing:
        points = [_points(config, method, M, noise_mismatch, config.seed) for method, M, noise_mismatch in missing]
        students = distill.train_students(points, config.seed, config.student_train_steps)
        eps, _ = _evaluation_noise(config.teacher_config, config.num_points, config.seed)
        for request, student in zip(missing, students):
            _STUDENTS[(config, *request)] = distill.sample_student(student, eps, config.num_key_steps)
    for request in requests:
        _STUDENTS.move_to_end((config, *request))
    while len(_STUDENTS) > _MAX_STUDENTS:
        _STUDENTS.popitem(last=False)
    return [_STUDENTS[(config, *request)] for request in requests]


def _student_key(config: ToyConfig) -> ToyConfig:
    """The config fields a student depends on (so a change of M alone reuses the others)."""
    return dataclasses.replace(
        config, M=0.0, noise_mismatch=False, M_values=(0.0,), fig2f_M=(0.0,), num_seeds=1
    )


@lru_cache(maxsize=16)
def _useless_table(config: ToyConfig) -> pd.DataFrame:
    teacher = get_teacher(config.teacher_config)
    columns = {"forward_diffusion": [], "forward_diffusion_noise_mismatch": [], "trajectory": []}  # (seeds, M)
    for seed in range(config.seed, config.seed + config.num_seeds):
        eps, paths = _trajectories(config.teacher_config, config.num_points, seed)
        for noise_mismatch, column in ((False, "forward_diffusion"), (True, "forward_diffusion_noise_mismatch")):
            columns[column].append(distill.forward_diffusion_useless(
                teacher, eps, paths[-1], config.M_values, noise_mismatch, config.num_key_steps, seed
            ))
        # trajectory points do not depend on M: one set per seed
        fraction = distill.trajectory_points(teacher, paths, config.num_key_steps).useless_fraction
        columns["trajectory"].append([fraction] * len(config.M_values))
    rows = []
    for j, M in enumerate(config.M_values):
        row = {"M": M}
        for column, per_seed in columns.items():
            fractions = [values[j] for values in per_seed]
            row[column] = statistics.fmean(fractions)
            row[column + "_std"] = statistics.pstdev(fractions)
        rows.append(row)
    return pd.DataFrame(rows)


def useless_table(config: ToyConfig | None = None) -> pd.DataFrame:
    """The Fig. 2e table: for each ``M`` in ``config.M_values``, the useless fraction of the
    distillation points (mean and ``_std`` over seeds) under forward diffusion without and
    with Gaussian-noise mismatch, and under trajectory-based distillation."""
    config = config or ToyConfig()
    key = dataclasses.replace(config, M=0.0, noise_mismatch=False, fig2f_M=(0.0,))
    return _useless_table(key).copy()


def _wasserstein(a: torch.Tensor, b: torch.Tensor) -> float:
    """1D Wasserstein-1 between samples (N,) and (M,): mean gap of the sorted values (quantiles if N != M)."""
    a, b = a.sort().values, b.sort().values
    if a.numel() != b.numel():
        levels = (torch.arange(max(a.numel(), b.numel())) + 0.5) / max(a.numel(), b.numel())
        a, b = (v[(levels * v.numel()).long().clamp(max=v.numel() - 1)] for v in (a, b))
    return float((a - b).abs().mean())


def _stranded(samples: torch.Tensor, teacher: Teacher) -> float:
    """Share of samples farther than a quarter of the spacing from both data points."""
    lower, upper = teacher.positions
    gap = torch.minimum((samples - lower).abs(), (samples - upper).abs())
    return float((gap > 0.25 * (upper - lower)).float().mean())


# --------------------------------------------------------------------------- the entry point


def run_toy(config: ToyConfig | dict | None = None, *, with_figures: bool = True) -> ToyResult:
    """Run the 1D toy for ``config`` (a ``ToyConfig`` or a dict of its fields).

    Stages: check inputs, teacher (cached), distillation points at ``M`` for both
    methods, Fig. 2e sweep (cached), students for Fig. 2f (cached per M), distribution
    matching (cached), figures. Raises ``ValueError`` for a bad parameter.
    """
    with _LOCK:
        return _run_toy(config, with_figures)


def _run_toy(config, with_figures: bool) -> ToyResult:
    start = time.perf_counter()
    # 1. check inputs
    if config is None:
        config = ToyConfig()
    elif isinstance(config, dict):
        config = ToyConfig.from_dict(config)
    elif not isinstance(config, ToyConfig):
        raise ValueError(f"`config` must be a ToyConfig or a dict but is {type(config).__name__}")

    # 2. teacher and its samples on held-out noise
    teacher = get_teacher(config.teacher_config)
    _, teacher_samples = _evaluation_noise(config.teacher_config, config.num_points, config.seed)

    # 3. distillation points at the current M
    forward = _points(config, "forward_diffusion", config.M, config.noise_mismatch, config.seed)
    trajectory = _points(config, "trajectory", config.M, config.noise_mismatch, config.seed)

    # 4. Fig. 2e sweep over M and seeds
    table = useless_table(config)

    # 5. students of Fig. 2f: forward-diffusion students at each M, one trajectory student
    student_config = _student_key(config)
    student_M = sorted(set(config.fig2f_M) | {config.M})
    trajectory_samples, *forward_list = _student_samples(
        student_config,
        [("trajectory", 0.0, False)] + [("forward_diffusion", M, config.noise_mismatch) for M in student_M],
    )
    samples = {"teacher": teacher_samples, "trajectory": trajectory_samples}
    student_rows = []
    for M, forward_samples in zip(student_M, forward_list):
        samples[f"forward_diffusion_M={M:g}"] = forward_samples
        student_rows.append(
            {
                "M": M,
                "forward_diffusion_w1": _wasserstein(forward_samples, teacher_samples),
                "forward_diffusion_stranded": _stranded(forward_samples, teacher),
                "trajectory_w1": _wasserstein(samples["trajectory"], teacher_samples),
                "trajectory_stranded": _stranded(samples["trajectory"], teacher),
            }
        )
    students = pd.DataFrame(student_rows)

    # 6. distribution matching (per data spacing, against a fixed number of teacher samples)
    matching = cache.distribution_matching(config.teacher_config, config.seed)

    result = ToyResult(
        config=config,
        table=table,
        students=students,
        points={"forward_diffusion": forward, "trajectory": trajectory},
        samples=samples,
        distribution_matching=matching,
        teacher_paths=_trajectories(config.teacher_config, config.num_points, config.seed)[1][:, :40],
    )
    result.summary = {
        "M": config.M,
        "noise_mismatch": config.noise_mismatch,
        "useless_forward_diffusion": forward.useless_fraction,
        "useless_trajectory": trajectory.useless_fraction,
        "num_distillation_points": int(forward.x.numel()),
        "num_useless_forward_diffusion": int(forward.useless.sum()),
        "num_useless_trajectory": int(trajectory.useless.sum()),
        "dm_inaccurate_guidance_at_init": matching.inaccurate_fraction,
        "dm_wrong_endpoint_after_training": matching.wrong_endpoint_fraction,
        "dm_w1": _wasserstein(matching.samples, teacher_samples),
        "teacher_train_seconds": teacher.train_seconds,
    }

    # 7. figures
    if with_figures:
        from toy import figures  # plotly is slow to import; `--json` runs never need it

        result.figures = figures.plotly_figures(result, teacher)
    result.seconds = time.perf_counter() - start
    result.summary["seconds"] = result.seconds
    return result


def warm_up(config: ToyConfig | None = None, spacings=()) -> float:
    """Fill the caches for ``config`` under both noise pairings (figures included, so plotly is
    imported), then distribution matching for each data spacing in ``spacings`` (the app passes
    its position sliders' spacings; see :mod:`toy.cache`). Later changes of ``M``, of the noise
    switch, of a data position or of the sample count then answer at update speed. For the app to
    call once at start, in a thread: the lock is taken per piece, so users are served in between.
    Returns the seconds it took."""
    config = config or ToyConfig()
    start = time.perf_counter()
    for noise_mismatch in (False, True):
        run_toy(dataclasses.replace(config, noise_mismatch=noise_mismatch))
    from toy import figures  # imported by the runs above

    figures.prepare_layouts(len(config.fig2f_M) + 1)  # Fig. 2f gains a panel for an M not in fig2f_M
    for spacing in spacings:
        with _LOCK:  # centred: any pair with this spacing shares the entry (lower + spacing can round below 0.2)
            half = 0.5 * float(spacing)
            centred = dataclasses.replace(config.teacher_config, positions=(-half, half))
            cache.distribution_matching(centred, config.seed)
    return time.perf_counter() - start


def benchmark(M_values=(0.3, 0.6, 0.9, 1.2, 1.8), config: ToyConfig | None = None) -> dict:
    """Median wall time of one parameter update (a new ``M``, caches warm, figures built).

    Returns ``{"cold_seconds", "update_seconds": [...], "median_update_seconds"}``; the
    cold time includes training the teacher unless it was trained earlier in the process.
    Meant for a fresh process: an ``M`` already used there would be answered from the cache.
    """
    config = config or ToyConfig()
    start = time.perf_counter()
    run_toy(config)
    cold = time.perf_counter() - start
    times = []
    for M in M_values:
        start = time.perf_counter()
        run_toy(dataclasses.replace(config, M=M))
        times.append(time.perf_counter() - start)
    return {"cold_seconds": cold, "update_seconds": times, "median_update_seconds": statistics.median(times)}
