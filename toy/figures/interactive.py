"""The toy's four figures in plotly, for the app's Toy tab and the HTML files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

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
    joined_paths,
    panel_titles,
    shown_indices,
    trajectory_panel_data,
    useless_links,
)
from toy.teacher import Teacher

__all__ = ["plotly_figures", "write_html"]

# Panel titles are long and the panels narrow (the app draws each figure at page width, down to
# about 1000 px): titles wrap at this many characters, in a smaller font, with room above for
# two lines and, where there is one, the figure's own title.
TITLE_WIDTH = {2: 60, 3: 42, 4: 24, 5: 18, 6: 16}


def _wrap(text: str, width: int) -> str:
    """``text`` broken into lines of at most ``width`` characters (plotly's ``<br>``)."""
    lines: list[str] = []
    for word in text.split():
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return "<br>".join(lines)


def _subplots(titles, **kwargs) -> go.Figure:
    """``make_subplots`` with one row of ``len(titles)`` panels whose titles wrap instead of overlapping."""
    width = TITLE_WIDTH.get(len(titles), 24)
    figure = make_subplots(
        rows=1, cols=len(titles), subplot_titles=[_wrap(t, width) for t in titles], horizontal_spacing=0.06, **kwargs
    )
    figure.update_annotations(font_size=12)
    return figure


def plotly_figures(result, teacher: Teacher) -> dict[str, go.Figure]:
    """The four interactive figures of a ``ToyResult``, keyed as in ``FIGURE_FILES``."""
    return {
        "trajectories": _plotly_trajectories(result, teacher),
        "distribution_matching": _plotly_matching(result, teacher),
        "useless_vs_M": _plotly_useless(result),
        "student_results": _plotly_students(result, teacher),
    }


def _plotly_trajectories(result, teacher: Teacher) -> go.Figure:
    figure = _subplots(panel_titles(result), shared_yaxes=True)
    sigmas, paths = trajectory_panel_data(result, teacher)
    line_x, line_y = joined_paths(sigmas, paths)
    lower, upper = teacher.positions
    for col, key in ((1, "forward_diffusion"), (2, "trajectory")):
        points = result.points[key]
        shown = shown_indices(points)
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
        link_x, link_y = useless_links(points, shown)
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
    figure.update_layout(height=450, margin={"t": 80}, legend={"orientation": "h", "y": -0.2})
    return figure


def _plotly_matching(result, teacher: Teacher) -> go.Figure:
    matching = result.distribution_matching
    eps = matching.eps.numpy()
    titles = (
        f"(c) histograms: teacher vs distribution matching (W1 {result.summary['dm_w1']:.3f})",
        f"(d) guidance at init: {matching.inaccurate_fraction:.0%} points away from the teacher's target",
        f"after training: {matching.wrong_endpoint_fraction:.1%} of noise sent to the other point",
    )
    figure = _subplots(titles)
    edges = histogram_edges(teacher)
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
        height=450,
        barmode="overlay",
        margin={"t": 80},
        legend={"orientation": "h", "y": -0.2},
        font={"size": 11},
    )
    return figure


def _plotly_useless(result) -> go.Figure:
    table = result.table
    figure = go.Figure()
    M = table["M"].to_numpy()
    for column, name, color in METHODS:
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
    keys = fig2f_keys(result)
    rows = {float(row.M): row for row in result.students.itertuples()}
    titles = [
        f"M = {M:g}: W1 {rows[M].forward_diffusion_w1:.2f} vs {rows[M].trajectory_w1:.2f}" for M, _ in keys
    ]
    figure = _subplots(titles, shared_yaxes=True)
    edges = histogram_edges(teacher)
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
        title={
            "text": f"(f) {result.config.num_key_steps}-step students' samples vs the teacher's ({noise});"
            "<br>W1 to the teacher: forward-diffusion vs trajectory student",
            "y": 0.97,
            "yanchor": "top",
        },
        margin={"t": 120},
        barmode="overlay",
        height=460,
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
