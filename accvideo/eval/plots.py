"""Figures for ProcBench and the speed benchmark: matplotlib for .png/.svg/.pdf, plotly for .html;
the ablation bars and the speed-quality frontier of a table of ProcBench rows (matplotlib)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pandas is imported by the callers; `python -m accvideo --help` does not pay for it
    import pandas as pd

DIMENSIONS = ("color", "shape", "motion", "flicker", "consistency", "fidelity")
BENCH_STAGES = ("text_encoder", "denoising", "vae_decode")
_SUFFIXES = (".png", ".svg", ".pdf", ".html")


def _target(path) -> Path:
    path = Path(path)
    if path.suffix.lower() not in _SUFFIXES:
        raise ValueError(f"`plot` must end in one of {list(_SUFFIXES)} but is {str(path)!r}.")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def short_label(model: str) -> str:
    """A readable name for a model name or folder: runs/tiny-teacher/pipeline -> tiny-teacher/pipeline."""
    parts = Path(str(model)).parts
    return "/".join(parts[-2:]) if len(parts) > 1 else str(model)


def plot_procbench(result, path) -> Path:
    """Bar chart of a `ProcBenchResult`'s per-dimension scores (0-1), chance levels marked."""
    from accvideo.eval.procbench import CHANCE

    path = _target(path)
    values = [result.scores[d] for d in DIMENSIONS]
    title = (f"ProcBench {short_label(result.model)} | {result.split} | {result.num_steps} steps | "
             f"total {result.total:.1f}")
    if path.suffix.lower() == ".html":
        import plotly.graph_objects as go

        fig = go.Figure(go.Bar(x=list(DIMENSIONS), y=values, text=[f"{v:.2f}" for v in values]))
        for i, d in enumerate(DIMENSIONS):
            if d in CHANCE:
                fig.add_shape(type="line", x0=i - 0.4, x1=i + 0.4, y0=CHANCE[d], y1=CHANCE[d],
                              line={"dash": "dot", "color": "grey"})
        fig.update_layout(title=title, yaxis={"range": [0, 1.05], "title": "score"})
        fig.write_html(str(path), include_plotlyjs="cdn")
        return path
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    bars = ax.bar(DIMENSIONS, values, color="#4c72b0")
    ax.bar_label(bars, fmt="%.2f")
    for i, d in enumerate(DIMENSIONS):
        if d in CHANCE:
            ax.hlines(CHANCE[d], i - 0.4, i + 0.4, colors="grey", linestyles="dotted",
                      label="chance" if i == 0 else None)
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("score")
    ax.set_title(title, fontsize=9)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_bench(result, path) -> Path:
    """Horizontal stacked bars of median seconds per stage, one bar per model, speedups labelled."""
    path = _target(path)
    rows = result.rows
    labels = [f"{short_label(m)} ({s} steps)" for m, s in zip(rows.model, rows.steps)]
    if path.suffix.lower() == ".html":
        import plotly.graph_objects as go

        fig = go.Figure([go.Bar(name=s, y=labels, x=rows[f"{s}_s"], orientation="h") for s in BENCH_STAGES])
        fig.update_layout(barmode="stack", title=f"median seconds per video (speedup vs {result.baseline})",
                          xaxis={"title": "seconds"})
        for label, total, speedup in zip(labels, rows.total_s, rows.speedup):
            fig.add_annotation(x=total, y=label, text=f" {speedup:.1f}x", showarrow=False, xanchor="left")
        fig.write_html(str(path), include_plotlyjs="cdn")
        return path
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 0.6 * len(rows) + 1.6))
    left = [0.0] * len(rows)
    for stage in BENCH_STAGES:
        widths = list(rows[f"{stage}_s"])
        ax.barh(labels, widths, left=left, label=stage)
        left = [a + b for a, b in zip(left, widths)]
    for i, (total, speedup) in enumerate(zip(rows.total_s, rows.speedup)):
        ax.text(total, i, f" {speedup:.1f}x", va="center", fontsize=9)
    ax.invert_yaxis()
    ax.set_xlim(0, max(rows.total_s) * 1.2)
    ax.set_xlabel("median seconds per video")
    ax.set_title(f"speed, interleaved, speedup vs {short_label(result.baseline)}", fontsize=9)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


# ----------------------------------------------------------------------------- tables of rows


def _kind(row: str) -> str:
    if row.startswith("teacher@"):
        return "teacher"
    return "gpd" if row.lower().startswith("gpd") else "accvideo"


def plot_frontier(table: pd.DataFrame, path: Path, seconds: str = "end_to_end_s") -> None:
    """ProcBench total and PSNR to the reference against end-to-end seconds (log), one curve for
    the undistilled teacher at fewer steps and one per student family; labels are step counts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    table = table[table["row"] != "+ trajectory loss"].dropna(subset=[seconds]).copy()
    table["kind"] = table["row"].map(_kind)
    styles = {"teacher": ("o-", "gray", "teacher, fewer steps (no distillation)"),
              "accvideo": ("s-", "#C44E52", "AccVideo students"), "gpd": ("D", "#4C72B0", "GPD student")}
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, metric, label in ((axes[0], "total", "ProcBench total"), (axes[1], "psnr", "PSNR to the reference (dB)")):
        for kind, (style, color, name) in styles.items():
            data = table[table["kind"] == kind].dropna(subset=[metric]).sort_values("steps")
            if data.empty:
                continue
            ax.plot(data[seconds], data[metric], style, color=color, label=name)
            for _, r in data.iterrows():
                ax.annotate(str(int(r["steps"])), (r[seconds], r[metric]), fontsize=7, textcoords="offset points",
                            xytext=(4, 4))
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%.2g"))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("seconds per video, end to end (log scale)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="lower right")
    fig.suptitle("Speed-quality frontier (numbers: denoising steps)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_ablation(table: pd.DataFrame, out: Path) -> None:
    """ablation.png: ProcBench total per row; frontier.png: see `plot_frontier`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.barh(table["row"][::-1], table["total"][::-1], color="#4C72B0")
    for y, v in enumerate(table["total"][::-1]):
        ax.text(v + 0.5, y, f"{v:.1f}", va="center", fontsize=8)
    ax.set_xlabel("ProcBench total (0-100)")
    ax.set_xlim(0, 105)
    fig.tight_layout()
    fig.savefig(out / "ablation.png", dpi=120)
    plt.close(fig)
    plot_frontier(table, out / "frontier.png",
                  "end_to_end_s" if "end_to_end_s" in table.columns else "seconds_per_video")
