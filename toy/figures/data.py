"""What the toy's figures draw, computed once for both renderers.

Colours, the panel file names, and the arrays cut from a ``ToyResult``: teacher paths
as NaN-broken lines, the fixed subset of points to draw, the dashed links from useless
points, histogram edges and panel titles. :mod:`toy.figures.interactive` (plotly) and
:mod:`toy.figures.png` (matplotlib) only turn these into marks.
"""

from __future__ import annotations

import numpy as np
import torch

from toy.teacher import Teacher

USEFUL, USELESS = "#2ca02c", "#d62728"
TEACHER, FORWARD, TRAJECTORY, MATCHING = "#7f7f7f", "#ff7f0e", "#1f77b4", "#9467bd"
NUM_LINES, NUM_SHOWN, NUM_LINKS = 40, 600, 15

FIGURE_FILES = {
    "trajectories": "fig2ab_trajectories",
    "distribution_matching": "fig2cd_distribution_matching",
    "useless_vs_M": "fig2e",
    "student_results": "fig2f",
}

# Fig. 2e curves: (column of the useless table, legend name, colour).
METHODS = (
    ("forward_diffusion", "forward diffusion", FORWARD),
    ("forward_diffusion_noise_mismatch", "forward diffusion + noise mismatch", USELESS),
    ("trajectory", "teacher trajectories (AccVideo)", TRAJECTORY),
)


def joined_paths(sigmas: np.ndarray, paths: np.ndarray):
    """Paths (K+1, L) on ``sigmas`` (K+1,) -> one x/y pair with NaN breaks between paths."""
    count = paths.shape[1]
    xs = np.concatenate([np.append(sigmas, np.nan)] * count)
    ys = np.concatenate([np.append(paths[:, i], np.nan) for i in range(count)])
    return xs, ys


def shown_indices(points, seed: int = 0) -> np.ndarray:
    """A fixed random subset of point indices to draw (drawing all would hide the structure)."""
    total = points.x.numel()
    generator = np.random.default_rng(seed)
    return np.sort(generator.choice(total, size=min(NUM_SHOWN, total), replace=False))


def useless_links(points, shown: np.ndarray):
    """Dashed segments from useless points to the ``x_0`` their pair says they lead to."""
    useless = shown[points.useless.numpy()[shown]][:NUM_LINKS]
    xs, ys = [], []
    for i in useless:
        xs += [float(points.sigma[i]), 0.0, np.nan]
        ys += [float(points.x[i]), float(points.x_0[i]), np.nan]
    return np.array(xs), np.array(ys)


def trajectory_panel_data(result, teacher: Teacher):
    return teacher.sigmas.numpy(), result.teacher_paths[:, :NUM_LINES].numpy()


def histogram_edges(teacher: Teacher, num_bins: int = 80) -> np.ndarray:
    lower, upper = teacher.positions
    span = upper - lower
    return np.linspace(lower - 1.5 * span, upper + 1.5 * span, num_bins + 1)


def fig2f_keys(result) -> list[tuple[float, str]]:
    return [(float(row.M), f"forward_diffusion_M={row.M:g}") for row in result.students.itertuples()]


def panel_titles(result):
    config = result.config
    forward = result.points["forward_diffusion"]
    trajectory = result.points["trajectory"]
    noise = "random noise pairing" if config.noise_mismatch else "ODE noise pairing"
    return (
        f"(a-b) forward diffusion, M = {config.M:g}, {noise}: {forward.useless_fraction:.1%} useless",
        f"teacher trajectories (AccVideo): {trajectory.useless_fraction:.1%} useless",
    )


def to_numpy(values) -> np.ndarray:
    return values.numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
