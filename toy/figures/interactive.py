"""The toy's four figures in plotly, for the app's Toy tab and the HTML files.

Each figure is built as plain trace and layout dicts and handed to ``go.Figure`` once: plotly
validates every property it is given, and validating each trace and layout update as it is added
(``make_subplots``, ``add_trace``, ``update_layout``) cost twice as much, a tenth of a second per
slider change. The one-row subplot layouts come from ``make_subplots``, once per panel count.
"""

from __future__ import annotations

import copy
from functools import lru_cache
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

__all__ = ["plotly_figures", "prepare_layouts", "write_html"]

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


@lru_cache(maxsize=16)
def _row_layout(num_panels: int, shared_yaxes: bool) -> dict:
    """``make_subplots``' layout for one row of ``num_panels`` panels, as a dict without the template
    (``go.Figure`` adds the default one): axes ``xaxis``, ``xaxis2``, ... and one title annotation per
    panel (text still empty). Copy before changing it."""
    figure = make_subplots(rows=1, cols=num_panels, subplot_titles=[" "] * num_panels, horizontal_spacing=0.06,
                           shared_yaxes=shared_yaxes)
    figure.update_annotations(font_size=12)
    layout = figure.layout.to_plotly_json()
    layout.pop("template", None)
    return layout


def prepare_layouts(max_panels: int) -> None:
    """Build the one-row layouts of 2 to ``max_panels`` panels now (``warm_up`` calls it): the first
    ``make_subplots`` of a panel count is a fifth of a second, the next ones come from the cache."""
    for num_panels in range(2, max_panels + 1):
        for shared_yaxes in (False, True):
            _row_layout(num_panels, shared_yaxes)


def _subplot_layout(titles, shared_yaxes: bool = False) -> dict:
    """A fresh one-row layout with the panel ``titles`` wrapped so that they do not overlap."""
    width = TITLE_WIDTH.get(len(titles), 24)
    layout = copy.deepcopy(_row_layout(len(titles), shared_yaxes))
    for annotation, title in zip(layout["annotations"], titles):
        annotation["text"] = _wrap(title, width)
    return layout


def _axes(col: int) -> dict:
    """The trace keys that put a trace in panel ``col`` (1-based) of a one-row layout."""
    suffix = "" if col == 1 else str(col)
    return {"xaxis": f"x{suffix}", "yaxis": f"y{suffix}"}


def _axis(layout: dict, name: str, col: int, **values) -> None:
    """Set ``values`` on axis ``name`` (``"xaxis"`` or ``"yaxis"``) of panel ``col``."""
    layout.setdefault(name + ("" if col == 1 else str(col)), {}).update(values)


def _histogram_bins(teacher: Teacher) -> dict:
    edges = histogram_edges(teacher)
    return {"start": float(edges[0]), "end": float(edges[-1]), "size": float(edges[1] - edges[0])}


def plotly_figures(result, teacher: Teacher) -> dict[str, go.Figure]:
    """The four interactive figures of a ``ToyResult``, keyed as in ``FIGURE_FILES``."""
    return {
        "trajectories": _plotly_trajectories(result, teacher),
        "distribution_matching": _plotly_matching(result, teacher),
        "useless_vs_M": _plotly_useless(result),
        "student_results": _plotly_students(result, teacher),
    }


def _plotly_trajectories(result, teacher: Teacher) -> go.Figure:
    layout = _subplot_layout(panel_titles(result), shared_yaxes=True)
    sigmas, paths = trajectory_panel_data(result, teacher)
    line_x, line_y = joined_paths(sigmas, paths)
    lower, upper = teacher.positions
    traces = []
    for col, key in ((1, "forward_diffusion"), (2, "trajectory")):
        points = result.points[key]
        shown = shown_indices(points)
        useless = points.useless.numpy()[shown]
        axes = _axes(col)
        traces.append({"type": "scatter", "x": line_x, "y": line_y, "mode": "lines",
                       "line": {"color": TEACHER, "width": 0.6}, "name": "teacher ODE", "legendgroup": "teacher",
                       "showlegend": col == 1, "hoverinfo": "skip", **axes})
        link_x, link_y = useless_links(points, shown)
        if link_x.size:
            traces.append({"type": "scatter", "x": link_x, "y": link_y, "mode": "lines",
                           "line": {"color": USELESS, "width": 1, "dash": "dot"}, "name": "pair's target x_0",
                           "showlegend": col == 1, "hoverinfo": "skip", **axes})
        sigma, x = points.sigma.numpy()[shown], points.x.numpy()[shown]
        for mask, color, name in ((~useless, USEFUL, "useful point"), (useless, USELESS, "useless point")):
            traces.append({"type": "scatter", "x": sigma[mask], "y": x[mask], "mode": "markers",
                           "marker": {"color": color, "size": 4}, "name": name, "legendgroup": name,
                           "showlegend": col == 1, **axes})
        traces.append({"type": "scatter", "x": [0.0, 0.0], "y": [lower, upper], "mode": "markers",
                       "marker": {"color": "black", "size": 9, "symbol": "diamond"}, "name": "teacher data",
                       "showlegend": col == 1, **axes})
        _axis(layout, "xaxis", col, title={"text": "sigma (1 = noise, 0 = data)"}, autorange="reversed")
    _axis(layout, "yaxis", 1, title={"text": "x"})
    layout.update(height=450, margin={"t": 80}, legend={"orientation": "h", "y": -0.2})
    return go.Figure(data=traces, layout=layout)


def _plotly_matching(result, teacher: Teacher) -> go.Figure:
    matching = result.distribution_matching
    eps = matching.eps.numpy()
    titles = (
        f"(c) histograms: teacher vs distribution matching (W1 {result.summary['dm_w1']:.3f})",
        f"(d) guidance at init: {matching.inaccurate_fraction:.0%} points away from the teacher's target",
        f"after training: {matching.wrong_endpoint_fraction:.1%} of noise sent to the other point",
    )
    layout = _subplot_layout(titles)
    bins = _histogram_bins(teacher)
    traces = [
        {"type": "histogram", "x": samples.numpy(), "xbins": bins, "histnorm": "probability density",
         "marker": {"color": color}, "opacity": 0.6, "name": name, **_axes(1)}
        for samples, color, name in (
            (result.samples["teacher"], TEACHER, "teacher"),
            (matching.samples, MATCHING, "distribution matching"),
        )
    ]
    x_teacher = matching.x_teacher.numpy()
    for col in (2, 3):
        traces.append({"type": "scatter", "x": eps, "y": x_teacher, "mode": "lines", "line": {"color": TEACHER},
                       "name": "teacher ODE map", "showlegend": col == 2, **_axes(col)})
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
        traces.append({"type": "scatter", "x": seg_x, "y": seg_y, "mode": "lines",
                       "line": {"color": color, "width": 1.5}, "name": name, **_axes(2)})
    traces.append({"type": "scatter", "x": eps, "y": x_init, "mode": "lines",
                   "line": {"color": MATCHING, "dash": "dot"}, "name": "generator at init", **_axes(2)})
    wrong = matching.wrong_endpoint.numpy()
    x_final = matching.x_final.numpy()
    traces.append({"type": "scatter", "x": eps, "y": x_final, "mode": "lines", "line": {"color": MATCHING},
                   "name": "generator after training", **_axes(3)})
    traces.append({"type": "scatter", "x": eps[wrong], "y": x_final[wrong], "mode": "markers",
                   "marker": {"color": USELESS, "size": 6}, "name": "sent to the other point", **_axes(3)})
    _axis(layout, "xaxis", 1, title={"text": "x"})
    _axis(layout, "xaxis", 2, title={"text": "noise eps"})
    _axis(layout, "xaxis", 3, title={"text": "noise eps"})
    _axis(layout, "yaxis", 2, title={"text": "generated x"})
    layout.update(height=450, barmode="overlay", margin={"t": 80}, legend={"orientation": "h", "y": -0.2},
                  font={"size": 11})
    return go.Figure(data=traces, layout=layout)


def _plotly_useless(result) -> go.Figure:
    table = result.table
    M = table["M"].to_numpy()
    traces = []
    for column, name, color in METHODS:
        mean = table[column].to_numpy()
        std = table[column + "_std"].to_numpy()
        traces.append({"type": "scatter", "x": np.concatenate([M, M[::-1]]),
                       "y": np.concatenate([mean + std, (mean - std)[::-1]]), "fill": "toself", "fillcolor": color,
                       "opacity": 0.2, "line": {"width": 0}, "hoverinfo": "skip", "showlegend": False})
        traces.append({"type": "scatter", "x": M, "y": mean, "mode": "lines+markers", "line": {"color": color},
                       "name": name, "error_y": {"type": "data", "array": std, "visible": False}})
    layout = {
        "title": {"text": f"(e) useless distillation points vs dataset mismatch M "
                          f"(mean ± std over {result.config.num_seeds} seeds)"},
        "xaxis": {"title": {"text": "dataset mismatch M (std of the blur of the student's data)"}},
        "yaxis": {"title": {"text": "fraction of useless points"}, "rangemode": "tozero"},
        "height": 420,
        "legend": {"orientation": "h", "y": -0.25},
        # what `add_vline` adds: a dashed line at the current M across the plot's height
        "shapes": [{"type": "line", "x0": result.config.M, "x1": result.config.M, "xref": "x", "y0": 0, "y1": 1,
                    "yref": "y domain", "line": {"color": "black", "dash": "dash", "width": 1}}],
    }
    return go.Figure(data=traces, layout=layout)


def _plotly_students(result, teacher: Teacher) -> go.Figure:
    keys = fig2f_keys(result)
    rows = {float(row.M): row for row in result.students.itertuples()}
    titles = [
        f"M = {M:g}: W1 {rows[M].forward_diffusion_w1:.2f} vs {rows[M].trajectory_w1:.2f}" for M, _ in keys
    ]
    layout = _subplot_layout(titles, shared_yaxes=True)
    bins = _histogram_bins(teacher)
    traces = []
    for col, (_, key) in enumerate(keys, start=1):
        for samples, color, name in (
            (result.samples["teacher"], TEACHER, "teacher (50-step ODE)"),
            (result.samples[key], FORWARD, "forward-diffusion student"),
            (result.samples["trajectory"], TRAJECTORY, "trajectory student (AccVideo)"),
        ):
            traces.append({"type": "histogram", "x": samples.numpy(), "xbins": bins,
                           "histnorm": "probability density", "marker": {"color": color}, "opacity": 0.55,
                           "name": name, "legendgroup": name, "showlegend": col == 1, **_axes(col)})
    noise = "random noise pairing" if result.config.noise_mismatch else "ODE noise pairing"
    layout.update(
        title={
            "text": f"(f) {result.config.num_key_steps}-step students' samples vs the teacher's ({noise});"
            "<br>W1 to the teacher: forward-diffusion vs trajectory student",
            # 0.97 put the title under the app's plot label ("Students"), hiding its "(f)"
            "y": 0.92,
            "yanchor": "top",
        },
        margin={"t": 120},
        barmode="overlay",
        height=460,
        legend={"orientation": "h", "y": -0.2},
        font={"size": 11},
    )
    return go.Figure(data=traces, layout=layout)


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
