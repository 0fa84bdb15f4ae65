"""Figures of the toy: plotly for the app (and HTML), matplotlib for the PNGs in ``docs/``.

Both sets draw the same four panels from a ``ToyResult``:
``trajectories`` (Fig. 2a-b), ``distribution_matching`` (Fig. 2c-d),
``useless_vs_M`` (Fig. 2e) and ``student_results`` (Fig. 2f).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from toy.teacher import Teacher

__all__ = ["FIGURE_FILES", "plotly_figures", "write_html", "write_pngs"]

USEFUL, USELESS = "#2ca02c", "#d62728"
TEACHER, FORWARD, TRAJECTORY, MATCHING = "#7f7f7f", "#ff7f0e", "#1f77b4", "#9467bd"
NUM_LINES, NUM_SHOWN, NUM_LINKS = 40, 600, 15

FIGURE_FILES = {
    "trajectories": "fig2ab_trajectories",
    "distribution_matching": "fig2cd_distribution_matching",
    "useless_vs_M": "fig2e",
    "student_results": "fig2f",
}

_METHODS = (
    ("forward_diffusion", "forward diffusion", FORWARD),
    ("forward_diffusion_noise_mismatch", "forward diffusion + noise mismatch", USELESS),
    ("trajectory", "teacher trajectories (AccVideo)", TRAJECTORY),
)


# --------------------------------------------------------------------------- shared data prep


def _lines(sigmas: np.ndarray, paths: np.ndarray):
    """Paths (K+1, L) on ``sigmas`` (K+1,) -> one x/y pair with NaN breaks between paths."""
    count = paths.shape[1]
    xs = np.concatenate([np.append(sigmas, np.nan)] * count)
    ys = np.concatenate([np.append(paths[:, i], np.nan) for i in range(count)])
    return xs, ys


def _shown(points, seed: int = 0) -> np.ndarray:
    """A fixed random subset of point indices to draw (drawing all would hide the structure)."""
    total = points.x.numel()
    generator = np.random.default_rng(seed)
    return np.sort(generator.choice(total, size=min(NUM_SHOWN, total), replace=False))


def _links(points, shown: np.ndarray):
    """Dashed segments from useless points to the ``x_0`` their pair says they lead to."""
    useless = shown[points.useless.numpy()[shown]][:NUM_LINKS]
    xs, ys = [], []
    for i in useless:
        xs += [float(points.sigma[i]), 0.0, np.nan]
        ys += [float(points.x[i]), float(points.x_0[i]), np.nan]
    return np.array(xs), np.array(ys)


def _trajectory_panel_data(result, teacher: Teacher):
    return teacher.sigmas.numpy(), result.teacher_paths[:, :NUM_LINES].numpy()


def _histogram_edges(teacher: Teacher, num_bins: int = 80) -> np.ndarray:
    lower, upper = teacher.positions
    span = upper - lower
    return np.linspace(lower - 1.5 * span, upper + 1.5 * span, num_bins + 1)


def _fig2f_keys(result) -> list[tuple[float, str]]:
    return [(float(row.M), f"forward_diffusion_M={row.M:g}") for row in result.students.itertuples()]


def _titles(result):
    config = result.config
    forward = result.points["forward_diffusion"]
    trajectory = result.points["trajectory"]
    noise = "random noise pairing" if config.noise_mismatch else "ODE noise pairing"
    return (
        f"(a-b) forward diffusion, M = {config.M:g}, {noise}: {forward.useless_fraction:.1%} useless",
        f"teacher trajectories (AccVideo): {trajectory.useless_fraction:.1%} useless",
    )


# --------------------------------------------------------------------------- plotly


def plotly_figures(result, teacher: Teacher) -> dict[str, go.Figure]:
    """The four interactive figures of a ``ToyResult``, keyed as in ``FIGURE_FILES``."""
    return {
        "trajectories": _plotly_trajectories(result, teacher),
        "distribution_matching": _plotly_matching(result, teacher),
        "useless_vs_M": _plotly_useless(result),
        "student_results": _plotly_students(result, teacher),
    }


def _plotly_trajectories(result, teacher: Teacher) -> go.Figure:
    figure = make_subplots(rows=1, cols=2, shared_yaxes=True, subplot_titles=_titles(result))
    sigmas, paths = _trajectory_panel_data(result, teacher)
    line_x, line_y = _lines(sigmas, paths)
    lower, upper = teacher.positions
    for col, key in ((1, "forward_diffusion"), (2, "trajectory")):
        points = result.points[key]
        shown = _shown(points)
        useless = points.useless.numpy()[shown]
        figure.add_trace(
            go.Scatter(
                x=line_x,
                y=line_y,
                mode="lines",
                line={"color": TEACHER, "width": 0.6},
                name="teacher ODE",
                legendgroup="teacher",
                showlegend=col == 1,
                hoverinfo="skip",
            ),
            row=1,
            col=col,
        )
        link_x, link_y = _links(points, shown)
        if link_x.size:
            figure.add_trace(
                go.Scatter(
                    x=link_x,
                    y=link_y,
                    mode="lines",
                    line={"color": USELESS, "width": 1, "dash": "dot"},
                    name="pair's target x_0",
                    showlegend=col == 1,
                    hoverinfo="skip",
                ),
                row=1,
                col=col,
            )
        for mask, color, name in ((~useless, USEFUL, "useful point"), (useless, USELESS, "useless point")):
            figure.add_trace(
                go.Scatter(
                    x=points.sigma.numpy()[shown][mask],
                    y=points.x.numpy()[shown][mask],
                    mode="markers",
                    marker={"color": color, "size": 4},
                    name=name,
                    legendgroup=name,
                    showlegend=col == 1,
                ),
                row=1,
                col=col,
            )
        figure.add_trace(
            go.Scatter(
                x=[0.0, 0.0],
                y=[lower, upper],
                mode="markers",
                marker={"color": "black", "size": 9, "symbol": "diamond"},
                name="teacher data",
                showlegend=col == 1,
            ),
            row=1,
            col=col,
        )
        figure.update_xaxes(title_text="sigma (1 = noise, 0 = data)", autorange="reversed", row=1, col=col)
    figure.update_yaxes(title_text="x", row=1, col=1)
    figure.update_layout(height=430, margin={"t": 60}, legend={"orientation": "h", "y": -0.2})
    return figure


def _plotly_matching(result, teacher: Teacher) -> go.Figure:
    matching = result.distribution_matching
    eps = matching.eps.numpy()
    titles = (
        f"(c) histograms: teacher vs distribution matching (W1 {result.summary['dm_w1']:.3f})",
        f"(d) guidance at init: {matching.inaccurate_fraction:.0%} points away from the teacher's target",
        f"after training: {matching.wrong_endpoint_fraction:.1%} of noise sent to the other point",
    )
    figure = make_subplots(rows=1, cols=3, subplot_titles=titles)
    edges = _histogram_edges(teacher)
    bins = {"start": float(edges[0]), "end": float(edges[-1]), "size": float(edges[1] - edges[0])}
    for samples, color, name in (
        (result.samples["teacher"], TEACHER, "teacher"),
        (matching.samples, MATCHING, "distribution matching"),
    ):
        figure.add_trace(
            go.Histogram(
                x=samples.numpy(),
                xbins=bins,
                histnorm="probability density",
                marker={"color": color},
                opacity=0.6,
                name=name,
            ),
            row=1,
            col=1,
        )
    for col in (2, 3):
        figure.add_trace(
            go.Scatter(
                x=eps,
                y=matching.x_teacher.numpy(),
                mode="lines",
                line={"color": TEACHER},
                name="teacher ODE map",
                showlegend=col == 2,
            ),
            row=1,
            col=col,
        )
    # Guidance as short vertical arrows from each initial sample, scaled to be visible.
    direction = matching.guidance.numpy()
    scale = 0.4 / max(float(np.abs(direction).max()), 1e-12)
    x_init = matching.x_init.numpy()
    inaccurate = matching.inaccurate.numpy()
    for mask, color, name in (
        (~inaccurate, USEFUL, "guidance towards teacher's target"),
        (inaccurate, USELESS, "inaccurate guidance"),
    ):
        seg_x = np.stack([eps[mask], eps[mask], np.full(mask.sum(), np.nan)], 1).ravel()
        seg_y = np.stack(
            [x_init[mask], x_init[mask] + scale * direction[mask], np.full(mask.sum(), np.nan)], 1
        ).ravel()
        figure.add_trace(
            go.Scatter(x=seg_x, y=seg_y, mode="lines", line={"color": color, "width": 1.5}, name=name),
            row=1,
            col=2,
        )
    figure.add_trace(
        go.Scatter(
            x=eps, y=x_init, mode="lines", line={"color": MATCHING, "dash": "dot"}, name="generator at init"
        ),
        row=1,
        col=2,
    )
    wrong = matching.wrong_endpoint.numpy()
    figure.add_trace(
        go.Scatter(
            x=eps,
            y=matching.x_final.numpy(),
            mode="lines",
            line={"color": MATCHING},
            name="generator after training",
        ),
        row=1,
        col=3,
    )
    figure.add_trace(
        go.Scatter(
            x=eps[wrong],
            y=matching.x_final.numpy()[wrong],
            mode="markers",
            marker={"color": USELESS, "size": 6},
            name="sent to the other point",
        ),
        row=1,
        col=3,
    )
    figure.update_xaxes(title_text="x", row=1, col=1)
    figure.update_xaxes(title_text="noise eps", row=1, col=2)
    figure.update_xaxes(title_text="noise eps", row=1, col=3)
    figure.update_yaxes(title_text="generated x", row=1, col=2)
    figure.update_layout(
        height=430,
        barmode="overlay",
        margin={"t": 60},
        legend={"orientation": "h", "y": -0.2},
        font={"size": 11},
    )
    return figure


def _plotly_useless(result) -> go.Figure:
    table = result.table
    figure = go.Figure()
    M = table["M"].to_numpy()
    for column, name, color in _METHODS:
        mean = table[column].to_numpy()
        std = table[column + "_std"].to_numpy()
        figure.add_trace(
            go.Scatter(
                x=np.concatenate([M, M[::-1]]),
                y=np.concatenate([mean + std, (mean - std)[::-1]]),
                fill="toself",
                fillcolor=color,
                opacity=0.2,
                line={"width": 0},
                hoverinfo="skip",
                showlegend=False,
            )
        )
        figure.add_trace(
            go.Scatter(
                x=M,
                y=mean,
                mode="lines+markers",
                line={"color": color},
                name=name,
                error_y={"type": "data", "array": std, "visible": False},
            )
        )
    figure.add_vline(x=result.config.M, line={"color": "black", "dash": "dash", "width": 1})
    figure.update_layout(
        title=f"(e) useless distillation points vs dataset mismatch M "
        f"(mean ± std over {result.config.num_seeds} seeds)",
        xaxis_title="dataset mismatch M (std of the blur of the student's data)",
        yaxis_title="fraction of useless points",
        yaxis={"rangemode": "tozero"},
        height=420,
        legend={"orientation": "h", "y": -0.25},
    )
    return figure


def _plotly_students(result, teacher: Teacher) -> go.Figure:
    keys = _fig2f_keys(result)
    rows = {float(row.M): row for row in result.students.itertuples()}
    titles = [
        f"M = {M:g}: W1 {rows[M].forward_diffusion_w1:.2f} vs {rows[M].trajectory_w1:.2f}" for M, _ in keys
    ]
    figure = make_subplots(rows=1, cols=len(keys), shared_yaxes=True, subplot_titles=titles)
    edges = _histogram_edges(teacher)
    bins = {"start": float(edges[0]), "end": float(edges[-1]), "size": float(edges[1] - edges[0])}
    for col, (_, key) in enumerate(keys, start=1):
        for samples, color, name in (
            (result.samples["teacher"], TEACHER, "teacher (50-step ODE)"),
            (result.samples[key], FORWARD, "forward-diffusion student"),
            (result.samples["trajectory"], TRAJECTORY, "trajectory student (AccVideo)"),
        ):
            figure.add_trace(
                go.Histogram(
                    x=samples.numpy(),
                    xbins=bins,
                    histnorm="probability density",
                    marker={"color": color},
                    opacity=0.55,
                    name=name,
                    legendgroup=name,
                    showlegend=col == 1,
                ),
                row=1,
                col=col,
            )
    noise = "random noise pairing" if result.config.noise_mismatch else "ODE noise pairing"
    figure.update_layout(
        title=f"(f) {result.config.num_key_steps}-step students' samples vs the teacher's ({noise}); "
        "W1: forward-diffusion vs trajectory student",
        barmode="overlay",
        height=400,
        legend={"orientation": "h", "y": -0.2},
        font={"size": 11},
    )
    return figure


def write_html(figures: dict[str, go.Figure], out_dir: str | Path, inline: bool = False) -> list[Path]:
    """Write each figure as ``<name>.html`` (plotly.js from the CDN unless ``inline``)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for key, figure in figures.items():
        path = out_dir / f"{FIGURE_FILES[key]}.html"
        figure.write_html(path, include_plotlyjs=True if inline else "cdn")
        paths.append(path)
    return paths


# --------------------------------------------------------------------------- matplotlib


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
    sigmas, paths = _trajectory_panel_data(result, teacher)
    lower, upper = teacher.positions
    for axis, key, title in zip(axes, ("forward_diffusion", "trajectory"), _titles(result)):
        points = result.points[key]
        shown = _shown(points)
        useless = points.useless.numpy()[shown]
        axis.plot(sigmas, paths, color=TEACHER, linewidth=0.6, alpha=0.7)
        link_x, link_y = _links(points, shown)
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
    edges = _histogram_edges(teacher)
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
    for column, name, color in _METHODS:
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
    keys = _fig2f_keys(result)
    rows = {float(row.M): row for row in result.students.itertuples()}
    figure, axes = plt.subplots(1, len(keys), figsize=(3.4 * len(keys), 3.6), sharey=True, squeeze=False)
    edges = _histogram_edges(teacher)
    for axis, (M, key) in zip(axes[0], keys):
        for samples, color, name in (
            (result.samples["teacher"], TEACHER, "teacher (50-step ODE)"),
            (result.samples[key], FORWARD, "forward-diffusion student"),
            (result.samples["trajectory"], TRAJECTORY, "trajectory student"),
        ):
            axis.hist(
                _to_numpy(samples),
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


def _to_numpy(values) -> np.ndarray:
    return values.numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
