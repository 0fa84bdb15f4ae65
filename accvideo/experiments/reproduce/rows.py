"""The one list of report rows: every model `reproduce` scores, times, shows and bundles.

`report_rows` is the table; `stage_eval` (ProcBench rows), `stage_bench` (bench names and
specs), `stage_report` (headline, ablation, frontier, sample grid, frontier plot) and
`stage_bundle` read it and nothing else. A model that has two jobs (the teacher at 5 steps is
the AccVideo baseline and, when the GPD student also has 5 steps, the GPD one) is listed once
per job; every view keeps the first entry of a label or bench name, so each model is scored and
timed once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from accvideo.experiments.ablation import ADVERSARIAL_ROW, TRAJECTORY_ROW, student_row, student_run, teacher_row
from accvideo.experiments.reproduce.presets import Preset

if TYPE_CHECKING:
    from accvideo.experiments.reproduce.stages import Paths

SPLITS = ("train", "heldout")
GPD_ROW = "gpd"


@dataclass(frozen=True)
class ReportRow:
    """One model of the report and every place it shows.

    label: its ProcBench row (and score cache key, shared with `run_ablation`); model: its
    pipeline folder; steps: the step count it is sampled at (None: its own sampling defaults).
    bench: its name in bench.csv (None: not timed). heldout: also scored on the held-out split.
    ablation / frontier: a row of those report tables. headline, baseline: its name in the
    headline table and the bench name its speedup there is against. grid: its column title in
    samples.png. bundle, run: bundled as this name from this run folder (`--bundle-dir`). versus:
    the labels it is paired against in the report's separation table (the same prompts and seeds,
    A - B with its paired 95% interval): the teacher at its own step count, and the full teacher."""

    label: str
    model: Path
    steps: int | None = None
    bench: str | None = None
    heldout: bool = False
    ablation: bool = False
    frontier: bool = False
    headline: str | None = None
    baseline: str | None = None
    grid: str | None = None
    bundle: str | None = None
    run: Path | None = None
    versus: tuple[str, ...] = ()

    @property
    def bench_spec(self) -> str:
        """NAME_OR_DIR[@STEPS], as `bench` takes it."""
        return str(self.model) if self.steps is None else f"{self.model}@{self.steps}"


def teacher_steps(p: Paths) -> int:
    """The teacher's own step count (its resolved sampling default): the reference of every row."""
    from accvideo.generation import resolve_sampling
    from accvideo.models.registry import load_model

    return resolve_sampling(load_model(p.teacher)).num_steps


def report_rows(p: Paths, preset: Preset, n: int | None = None) -> list[ReportRow]:
    """The report's rows in display order (`n`: the teacher's own steps, default `teacher_steps(p)`)."""
    n = teacher_steps(p) if n is None else n
    m, (gpd_teacher, gpd_steps) = preset.accvideo_m, (preset.gpd_schedule[0], preset.gpd_schedule[-1])

    def teacher(k: int, **roles) -> ReportRow:
        return ReportRow(teacher_row(k), p.teacher, k, bench=teacher_row(k), **roles)

    reference = teacher_row(n)
    rows = [
        teacher(n, heldout=True, ablation=True, headline=f"tiny-teacher, {n} steps", baseline=reference,
                grid=f"teacher {n} steps", bundle="tiny-teacher", run=p.teacher_run),
        teacher(m, heldout=True, ablation=True, frontier=True, baseline=reference,
                headline=f"tiny-teacher, {m} steps (no distillation)", grid=f"teacher {m} steps"),
    ]
    if preset.trajectory_only:
        rows.append(ReportRow(TRAJECTORY_ROW, p.student(m, adversarial=False), ablation=True))
    rows.append(ReportRow(ADVERSARIAL_ROW, p.student(m), bench=f"accvideo m={m}", heldout=True, ablation=True,
                          frontier=True, headline=f"tiny-accvideo (m = {m})", baseline=reference,
                          grid=f"AccVideo {m} steps", bundle="tiny-accvideo", run=p.accvideo / student_run(m),
                          versus=(teacher_row(m), reference)))
    for k in preset.frontier:
        if k != m:  # as in `run_ablation`: the main student is the frontier's m-step point
            rows += [teacher(k, frontier=True),
                     ReportRow(student_row(k), p.student(k), bench=f"accvideo m={k}", frontier=True)]
    gpd_reference = teacher_row(gpd_teacher)
    rows += [
        teacher(gpd_teacher, headline=f"tiny-teacher, {gpd_teacher} steps", baseline=gpd_reference),
        teacher(gpd_steps, headline=f"tiny-teacher, {gpd_steps} steps (no distillation)", baseline=gpd_reference),
        ReportRow(GPD_ROW, p.gpd / "pipeline", bench="gpd", heldout=True, baseline=gpd_reference,
                  headline=f"tiny-gpd ({'->'.join(map(str, preset.gpd_schedule))})",
                  grid=f"GPD {gpd_steps} steps", bundle="tiny-gpd", run=p.gpd,
                  versus=(teacher_row(gpd_steps), gpd_reference)),
    ]
    return rows


def procbench_rows(rows: list[ReportRow]) -> list[tuple[str, ReportRow]]:
    """(split, row) of every ProcBench row: the train split, then the held-out one; a label once per split."""
    out = []
    for split in SPLITS:
        seen = set()
        for row in rows:
            if (split == "train" or row.heldout) and row.label not in seen:
                seen.add(row.label)
                out.append((split, row))
    return out


def bench_specs(rows: list[ReportRow]) -> dict[str, str]:
    """Bench name -> bench spec, in row order; the first (the teacher at its own steps) is the baseline."""
    specs: dict[str, str] = {}
    for row in rows:
        if row.bench is not None:
            specs.setdefault(row.bench, row.bench_spec)
    return specs


def bench_names(rows: list[ReportRow]) -> dict[str, str]:
    """ProcBench label -> bench name, for the labels that are timed."""
    names: dict[str, str] = {}
    for row in rows:
        if row.bench is not None:
            names.setdefault(row.label, row.bench)
    return names


def labels_where(rows: list[ReportRow], role: str) -> list[str]:
    """The labels of the rows with a role (`ablation`, `frontier`), once each, in row order."""
    return list(dict.fromkeys(row.label for row in rows if getattr(row, role)))
