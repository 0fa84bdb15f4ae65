"""The toy's four figures in matplotlib, written as the PNGs in ``docs/``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from toy.figures.data import (
    FIGURE_FILES,
    FORWARD,
    MATCHING,
    METHODS,
    TEACHER,
    TRAJECTORY,
    USEFUL,
    USELESS,
    fig2f_keys,
    histogram_edges,
    panel_titles,
    shown_indices,
    to_numpy,
    trajectory_panel_data,
    useless_links,
)
from toy.teacher import Teacher

__all__ = ["write_pngs"]


def write_pngs(result, teacher: Teacher, out_dir: str | Path, dpi: int = 110, keys=None) -> list[Path]:
    """Write the panels ``keys`` (default: all four) as PNG files named as in ``FIGURE_FILES``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    painters = {
        "trajectories": _png_trajectories,
        "distribution_matching": _png_matching,
        "useless_vs_M": _png_useless,
        "student_results": _png_students,
    }
    paths = []
    for key, paint in painters.items():
        if keys is not None and key not in keys:
            continue
        figure = paint(plt, result, teacher)
        path = out_dir / f"{FIGURE_FILES[key]}.png"
        figure.savefig(path, dpi=dpi, bbox_inches="tight")
        plt.close(figure)
        paths.append(path)
    return paths


def _png_trajectories(plt, result, teacher: Teacher):
    figure, axes = plt.subplots(1, 2, figsize=(12, 4.6), sharey=True)
    sigmas, paths = trajectory_panel_data(result, teacher)
    lower, upper = teacher.positions
    for axis, key, title in zip(axes, ("forward_diffusion", "trajectory"), panel_titles(result)):
        points = result.points[key]
        shown = shown_indices(points)
        useless = points.useless.numpy()[shown]
        axis.plot(sigmas, paths, color=TEACHER, linewidth=0.6, alpha=0.7)
        link_x, link_y = useless_links(points, shown)
        axis.plot(link_x, link_y, color=USELESS, linewidth=0.8, linestyle=":")
        x, s = points.x.numpy()[shown], points.sigma.numpy()[shown]
        axis.scatter(s[~useless], x[~useless], s=7, color=USEFUL, label="useful point", zorder=3)
        axis.scatter(s[useless], x[useless], s=9, color=USELESS, label="useless point", zorder=4)
        axis.scatter([0, 0], [lower, upper], marker="D", s=40, color="black", label="teacher data", zorder=5)
        axis.set_xlim(1.03, -0.03)
        axis.set_xlabel("sigma (1 = noise, 0 = data)")
        axis.set_title(title, fontsize=9.5)
    axes[0].set_ylabel("x")
    axes[0].plot([], [], color=TEACHER, linewidth=0.8, label="teacher ODE")
    axes[0].plot([], [], color=USELESS, linestyle=":", label="pair's target x_0 (from useless points)")
    figure.tight_layout(rect=(0, 0.07, 1, 1))
    figure.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=5, fontsize=8, frameon=False)
    return figure


def _png_matching(plt, result, teacher: Teacher):
    matching = result.distribution_matching
    eps = matching.eps.numpy()
    figure, axes = plt.subplots(1, 3, figsize=(15, 4.4))
    edges = histogram_edges(teacher)
    axes[0].hist(
        result.samples["teacher"].numpy(), bins=edges, density=True, color=TEACHER, alpha=0.6, label="teacher"
    )
    axes[0].hist(
        matching.samples.numpy(),
        bins=edges,
        density=True,
        color=MATCHING,
        alpha=0.6,
        label="distribution matching",
    )
    axes[0].set_title(f"(c) output histograms (W1 {result.summary['dm_w1']:.3f})", fontsize=10)
    axes[0].set_xlabel("x")
    axes[0].legend(fontsize=8)
    direction = matching.guidance.numpy()
    scale = 0.4 / max(float(np.abs(direction).max()), 1e-12)
    x_init = matching.x_init.numpy()
    inaccurate = matching.inaccurate.numpy()
    axes[1].plot(eps, matching.x_teacher.numpy(), color=TEACHER, label="teacher ODE map")
    axes[1].plot(eps, x_init, color=MATCHING, linestyle=":", label="generator at init")
    for mask, color, name in (
        (~inaccurate, USEFUL, "guidance towards teacher's target"),
        (inaccurate, USELESS, "inaccurate guidance"),
    ):
        axes[1].vlines(
            eps[mask],
            x_init[mask],
            x_init[mask] + scale * direction[mask],
            color=color,
            linewidth=1.2,
            label=name,
        )
    axes[1].set_title(
        f"(d) guidance at init: {matching.inaccurate_fraction:.0%} of noises pushed away\n"
        "from the teacher's target",
        fontsize=10,
    )
    axes[1].set_xlabel("noise eps")
    axes[1].set_ylabel("generated x")
    axes[1].legend(fontsize=8)
    wrong = matching.wrong_endpoint.numpy()
    axes[2].plot(eps, matching.x_teacher.numpy(), color=TEACHER, label="teacher ODE map")
    axes[2].plot(eps, matching.x_final.numpy(), color=MATCHING, label="generator after training")
    axes[2].scatter(
        eps[wrong],
        matching.x_final.numpy()[wrong],
        color=USELESS,
        s=12,
        zorder=3,
        label="sent to the other point",
    )
    axes[2].set_title(
        f"after training: {matching.wrong_endpoint_fraction:.1%} of noises sent to the other point",
        fontsize=10,
    )
    axes[2].set_xlabel("noise eps")
    axes[2].legend(fontsize=8)
    figure.tight_layout()
    return figure


def _png_useless(plt, result, teacher: Teacher):
    table = result.table
    figure, axis = plt.subplots(figsize=(6.8, 4.3))
    M = table["M"].to_numpy()
    for column, name, color in METHODS:
        mean = table[column].to_numpy()
        std = table[column + "_std"].to_numpy()
        axis.plot(M, mean, marker="o", color=color, label=name)
        axis.fill_between(M, mean - std, mean + std, color=color, alpha=0.2)
    axis.set_xlabel("dataset mismatch M (std of the blur of the student's data)")
    axis.set_ylabel("fraction of useless points")
    axis.set_ylim(bottom=-0.01)
    axis.set_title(
        f"(e) useless points vs M (mean ± std over {result.config.num_seeds} seeds, "
        f"{result.points['trajectory'].x.numel()} points each)",
        fontsize=10,
    )
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    return figure


def _png_students(plt, result, teacher: Teacher):
    keys = fig2f_keys(result)
    rows = {float(row.M): row for row in result.students.itertuples()}
    figure, axes = plt.subplots(1, len(keys), figsize=(3.4 * len(keys), 3.6), sharey=True, squeeze=False)
    edges = histogram_edges(teacher)
    for axis, (M, key) in zip(axes[0], keys):
        for samples, color, name in (
            (result.samples["teacher"], TEACHER, "teacher (50-step ODE)"),
            (result.samples[key], FORWARD, "forward-diffusion student"),
            (result.samples["trajectory"], TRAJECTORY, "trajectory student"),
        ):
            axis.hist(
                to_numpy(samples),
                bins=edges,
                density=True,
                color=color,
                alpha=0.5,
                label=name,
                histtype="stepfilled",
            )
        axis.set_title(
            f"M = {M:g}\nW1: forward {rows[M].forward_diffusion_w1:.2f}, "
            f"trajectory {rows[M].trajectory_w1:.2f}",
            fontsize=9,
        )
        axis.set_xlabel("x")
    axes[0][0].set_ylabel("density")
    axes[0][0].legend(fontsize=7, loc="upper center")
    noise = "random noise pairing" if result.config.noise_mismatch else "ODE noise pairing"
    figure.suptitle(f"(f) {result.config.num_key_steps}-step students vs the teacher ({noise})", fontsize=10)
    figure.tight_layout()
    return figure
