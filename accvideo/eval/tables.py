"""Tables of ProcBench rows: the columns shown, GitHub markdown, and end-to-end seconds from `bench`."""

from __future__ import annotations

import pandas as pd

from accvideo.eval.bench import run_speed_bench


def table_columns(table: pd.DataFrame) -> list[str]:
    """The columns a ProcBench row table shows, in order, where present."""
    columns = ("row", "split", "steps", "nfe", "num_videos", "total", "total_ci", "minus_full_paired", "semantic",
               "color", "shape",
               "motion", "temporal", "fidelity", "detail", "distractor_recall", "motion_fidelity", "motion_ratio",
               "diversity",
               "psnr", "end_to_end_s", "speedup", "hf_energy", "hf_vs_teacher")
    return [c for c in columns if c in table.columns]


def _cell(value) -> str:
    """A table cell: blank for missing, an interval as [lo, hi]."""
    if isinstance(value, list | tuple):
        return "[" + ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value) + "]"
    return "" if pd.isna(value) else str(value)


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub markdown table of a DataFrame (no extra dependency)."""
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def add_bench(table: pd.DataFrame, repeats: int = 3) -> pd.DataFrame:
    """Time every row's model in one interleaved `bench` run (the first row is the baseline) and
    add `end_to_end_s` (median seconds per video) and `speedup`. ProcBench's own per-video
    seconds come from runs that may share the CPU with training; these are measured together."""
    if repeats < 1:
        return table
    specs = [f"{r.model}@{int(r.steps)}" if str(r.row).startswith("teacher@") else str(r.model)
             for r in table.itertuples()]
    unique = list(dict.fromkeys(specs))
    result = run_speed_bench(unique, repeats=repeats, warmup=1)
    seconds = dict(zip(result.rows.model, result.rows.total_s))
    table = table.copy()
    table["end_to_end_s"] = [round(float(seconds[s]), 4) for s in specs]
    table["speedup"] = (table["end_to_end_s"].iloc[0] / table["end_to_end_s"]).round(2)
    return table
