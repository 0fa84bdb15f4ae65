"""The `report` stage: RESULTS.md with its tables, the frontier plot and the sample grid, from
OUT/procbench.csv, OUT/bench.csv and the stage log. Which model is which row, and where it shows,
comes from `rows.report_rows`."""

from __future__ import annotations

import os
import shutil
import sys
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from accvideo.eval.grid import comparison_grid
from accvideo.eval.plots import plot_frontier
from accvideo.eval.tables import markdown_table, table_columns
from accvideo.experiments.bundle import git_commit
from accvideo.experiments.reproduce.presets import Preset
from accvideo.experiments.reproduce.rows import ReportRow, bench_names, labels_where, report_rows, teacher_steps
from accvideo.experiments.reproduce.stages import STAGES, Paths, StageLog, fmt_seconds
from accvideo.util.io import atomic_write_text

BENCH_COLUMNS = ["name", "steps", "nfe", "text_encoder_s", "denoising_s", "vae_decode_s", "total_s", "speedup"]


def _frontier_plot(procbench: pd.DataFrame, bench: pd.DataFrame, path: Path, names: dict[str, str]) -> None:
    """The train rows with the bench run's end-to-end seconds, through `plot_frontier`."""
    seconds = dict(zip(bench["name"], bench["total_s"]))
    train = procbench[procbench["split"] == "train"].copy()
    train["end_to_end_s"] = train["row"].map(lambda r: seconds.get(names.get(r)))
    plot_frontier(train, path)


def _headline(rows: list[ReportRow], procbench: pd.DataFrame, bench: pd.DataFrame, n: int) -> pd.DataFrame:
    """One line per row with a headline name: bench numbers, speedup against its baseline, ProcBench."""
    train = procbench[procbench["split"] == "train"].set_index("row")
    heldout = procbench[procbench["split"] == "heldout"].set_index("row")
    by_name = bench.set_index("name")

    def line(row: ReportRow) -> dict:
        b, base_s = by_name.loc[row.bench], float(by_name.loc[row.baseline]["total_s"])
        r = train.loc[row.label]
        return {"model": row.headline, "steps": int(b["steps"]), "NFE": int(b["nfe"]),
                "end to end s": round(float(b["total_s"]), 3), "speedup": f"{base_s / float(b['total_s']):.2f}x",
                "speedup vs": row.baseline, "ProcBench total": r["total"], "95% CI": r.get("total_ci", ""),
                "held-out total": heldout.loc[row.label, "total"] if row.label in heldout.index else "",
                f"PSNR to teacher@{n}": "" if pd.isna(r.get("psnr")) else f"{r['psnr']:.2f} dB"}

    return pd.DataFrame([line(row) for row in rows if row.headline is not None])


def _separation(path: Path) -> list[str]:
    """The section of OUT/separation.csv (`stage_eval`): each student against the teacher, paired."""
    if not path.exists() or path.stat().st_size < 2:
        return []
    table = pd.read_csv(path)
    return ["## Students against the teacher, paired", "",
            "The same train prompts and seeds for A and B (`videos` of them; the rows on more videos score "
            "each student and the teacher at its steps again, the headline rows' first videos among them). "
            "Each total has its own bootstrap 95% "
            "interval; A - B resamples the videos of both together (video i against video i), so what the "
            "prompts and seeds share cancels and its interval is narrower. An interval of A - B that "
            "excludes 0 separates the two.", "", markdown_table(table)]


def _cpu_columns(cpu: dict) -> dict:
    """A stage's `cpu_share` as table cells (empty for a stage logged before it was recorded)."""
    def cell(key):
        return "" if cpu.get(key) is None else cpu[key]

    return {"torch threads": cell("threads"), "cores used by it": cell("own_cores"),
            "cores used by other jobs": cell("other_cores")}


def _bench_table(bench: pd.DataFrame) -> pd.DataFrame:
    table = bench[BENCH_COLUMNS].copy()
    for c in BENCH_COLUMNS[3:]:
        table[c] = table[c].map(lambda v: f"{v:.4f}" if not isinstance(v, str) else v)
    return table


def stage_report(p: Paths, preset: Preset, stages: StageLog, command: str) -> dict:
    procbench = pd.read_csv(p.out / "procbench.csv")
    bench = pd.read_csv(p.out / "bench.csv")
    n, m = teacher_steps(p), preset.accvideo_m
    rows = report_rows(p, preset, n)
    names = bench_names(rows)
    p.figures.mkdir(parents=True, exist_ok=True)
    _frontier_plot(procbench, bench, p.figures / "frontier.png", names)
    comparison_grid([(row.grid, row.model, row.steps) for row in rows if row.grid is not None],
                    p.figures / "samples.png", seed=0)
    if (p.accvideo / "ablation.png").exists():
        shutil.copy(p.accvideo / "ablation.png", p.figures / "ablation.png")
    toy_dir = p.out / "toy"
    for png in sorted(toy_dir.glob("*.png")):
        shutil.copy(png, p.figures / f"toy-{png.name}")

    head = _headline(rows, procbench, bench, n)
    train = procbench[procbench["split"] == "train"]
    ablation = train[train["row"].isin(labels_where(rows, "ablation"))]
    frontier = train[train["row"].isin(labels_where(rows, "frontier"))].copy()
    seconds = bench.set_index("name")["total_s"]
    frontier["end to end s"] = frontier["row"].map(lambda r: round(float(seconds[names[r]]), 3))
    frontier = frontier.sort_values(["steps", "row"])
    stage_rows = pd.DataFrame([{"stage": s, "wall": fmt_seconds(stages.wall(s)),
                                "finished": stages.data["stages"].get(s, {}).get("finished", ""),
                                "process": stages.data["stages"][s].get("process", "main"),
                                **_cpu_columns(stages.data["stages"][s].get("cpu") or {})}
                               for s in STAGES if s in stages.data["stages"]])
    toy_table = pd.read_csv(toy_dir / "useless.csv").round(4) if (toy_dir / "useless.csv").exists() else None
    rel = p.figures.name

    text = [
        "# Results",
        "",
        "Everything on this page was measured by one command, on the machine and at the commit below.",
        "Rerun it to reproduce every model and figure; it resumes where it stopped.",
        "",
        "```bash",
        command,
        "```",
        "",
        f"- commit `{git_commit()}`, written {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- wall time of the pipeline: **{fmt_seconds(stages.pipeline_wall())}** (the stages from teacher to "
        "toy of the main process, plus its wait for the side process, whose stages ran beside its own: `--jobs 2`)",
        f"- Python {sys.version.split()[0]}, torch {_torch_version()}, {os.cpu_count()} CPU cores",
        "",
        "## Headline",
        "",
        "End-to-end seconds and speedups come from one interleaved `bench` run (medians of "
        f"{preset.bench_repeats} repeats); ProcBench from {preset.num_videos} videos per row on the train split "
        f"and on the held-out split (combinations never trained on). PSNR is the agreement with the {n}-step "
        "teacher on the same prompts and seeds.",
        "",
        markdown_table(head),
        *_separation(p.out / "separation.csv"),
        "## AccVideo against the teacher at its step count",
        "",
        *([] if preset.trajectory_only else [
            "The trajectory-loss-only row of the ablation is left out of this command to fit its time "
            "budget; `python -m accvideo ablation --method accvideo` trains it (docs/DISTILL.md).", ""]),
        markdown_table(ablation[table_columns(ablation)]),
        f"![ablation]({rel}/ablation.png)",
        "",
        "## Speed-quality frontier",
        "",
        "Students distilled for m = " + ", ".join(map(str, (*preset.frontier, m))) +
        " steps against the undistilled teacher at the same step counts.",
        "",
        markdown_table(frontier[["row", "steps", "nfe", "total", "psnr", "end to end s"]]),
        f"![frontier]({rel}/frontier.png)",
        "",
        "## Same prompts, same seeds",
        "",
        "Every other frame of four train prompts and two held-out combinations (seed 0).",
        "",
        f"![samples]({rel}/samples.png)",
        "",
        "## Every ProcBench row",
        "",
        markdown_table(procbench[table_columns(procbench)]),
        "## Timing per stage of generation",
        "",
        markdown_table(_bench_table(bench)),
    ]
    if toy_table is not None:
        text += ["## The 1D toy (Fig. 2)", "",
                 "Share of useless data points against the data mismatch M, forward diffusion against the "
                 "teacher's own trajectories (docs/TOY.md explains the toy).", "",
                 markdown_table(toy_table)]
        text += [f"![toy {f.stem}]({rel}/{f.name})" for f in sorted(p.figures.glob("toy-*.png"))] + [""]
    text += ["## Wall time per pipeline stage", "",
             "Cores used: average cores busy during the stage's last run (a resumed stage: its last part), "
             "by this command and by everything else on the machine; other jobs slow every stage.", "",
             markdown_table(stage_rows)]
    p.results.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(p.results, "\n".join(text))
    return {"results": str(p.results)}


def _torch_version() -> str:
    import torch

    return torch.__version__
