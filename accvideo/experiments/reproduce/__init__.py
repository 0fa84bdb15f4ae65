"""`python -m accvideo reproduce`: every bundled model and every reported figure from nothing.

One command runs the whole pipeline in order, each stage resumable:

    teacher   procedural clips, VAE, flow-matching transformer (`train-teacher`)
    synvid    the teacher's guided trajectories, key states of every m stored (`synvid`)
    accvideo  the 5-step student (trajectory + adversarial loss) and students for the 2-4 step
              frontier, each scored by ProcBench (`ablation`, without its trajectory-only row)
    gpd       progressive 48 -> 24 -> 12 -> 6 student with online targets (`distill gpd`)
    decoder   the lightweight decoder of the teacher's VAE and its check against the VAE
              (`distill decoder`, docs/FIXED_COST.md)
    eval      the remaining ProcBench rows (GPD, 48-step teacher, held-out split)
    bench     end-to-end timing of every model in one interleaved run (`bench`)
    toy       the 1D flow-matching toy figures (`python -m toy`)
    report    RESULTS.md with tables, the frontier plot, sample frames; its figures beside it
    bundle    (with --bundle-dir) the three models and tiny-decoder with provenance, e.g. into assets/

A finished stage leaves `OUT/stages.json` entries (wall time, end time) and its outputs; a
rerun skips it. A stage killed mid-way resumes through the resume of the command it wraps
(teacher and distillation checkpoints, complete SynVid shards, cached score rows; a trained
decoder whose config matches is kept).

`presets` holds the sizes of every stage; `rows` the one list of report rows (which model is
scored, timed, shown and bundled under which name); `stages` the stages that compute, `Paths`
and `StageLog`; `report` writes RESULTS.md. `run_reproduce` below runs them in order.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from tqdm.auto import tqdm

from accvideo.experiments.reproduce.presets import PRESETS, Preset, synvid_store
from accvideo.experiments.reproduce.report import stage_report
from accvideo.experiments.reproduce.rows import ReportRow, report_rows
from accvideo.experiments.reproduce.stages import (
    STAGES,
    Paths,
    StageLog,
    decoder_config,
    fmt_seconds,
    stage_accvideo,
    stage_bench,
    stage_bundle,
    stage_decoder,
    stage_eval,
    stage_gpd,
    stage_synvid,
    stage_teacher,
    stage_toy,
)
from accvideo.util.cpu import cpu_sample, cpu_share

__all__ = ["PRESETS", "STAGES", "Paths", "Preset", "ReportRow", "StageLog", "report_rows", "run_reproduce",
           "synvid_store"]

log = logging.getLogger("accvideo.experiments.reproduce")


def run_reproduce(out: str | Path, preset: str = "tiny-v2", results: str | Path | None = None,
                  bundle_dir: str | Path | None = None, only: tuple[str, ...] = (), command: str = "") -> dict:
    """Run every stage not yet finished; returns OUT/stages.json's content."""
    if preset not in PRESETS:
        raise ValueError(f"`preset` must be one of {sorted(PRESETS)} but is {preset!r}.")
    unknown = [s for s in only if s not in STAGES]
    if unknown:
        raise ValueError(f"`stages` must be names from {list(STAGES)} but has {unknown}.")
    settings = PRESETS[preset]
    decoder_config(settings)  # a bad decoder override fails now, not after the students
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    p = Paths(out, Path(results) if results else out / "RESULTS.md", Path(bundle_dir) if bundle_dir else None)
    stages = StageLog(out)
    command = command or f"python -m accvideo reproduce --preset {preset} --out {out}"
    runners = {
        "teacher": lambda: stage_teacher(p, settings),
        "synvid": lambda: stage_synvid(p, settings),
        "accvideo": lambda: stage_accvideo(p, settings),
        "gpd": lambda: stage_gpd(p, settings),
        "decoder": lambda: stage_decoder(p, settings),
        "eval": lambda: stage_eval(p, settings),
        "bench": lambda: stage_bench(p, settings),
        "toy": lambda: stage_toy(p, settings),
        "report": lambda: stage_report(p, settings, stages, command),
        "bundle": lambda: stage_bundle(p, settings, stages, command),
    }
    todo = [s for s in STAGES if (not only or s in only)]
    with tqdm(total=len(todo), desc="reproduce", unit="stage") as bar:
        for stage in todo:
            always = stage in ("report", "bundle") or bool(only)  # cheap, and asked for again
            if stages.done(stage) and not always:
                bar.update(1)
                continue
            bar.set_postfix_str(stage)
            log.info("stage %s: starting", stage)
            start, before = time.perf_counter(), cpu_sample()
            try:
                info = runners[stage]()
            except BaseException:
                stages.add_partial(stage, time.perf_counter() - start)
                raise
            seconds = time.perf_counter() - start
            # alone or beside other jobs: the cores this process and everything else used meanwhile
            info = {**info, "cpu": cpu_share(before, cpu_sample())}
            if stage == "teacher" and info.get("teacher_wall_s") and seconds < 0.5 * info["teacher_wall_s"]:
                seconds = float(info["teacher_wall_s"])  # trained earlier by the same command: its own clock
            stages.finish(stage, seconds, **info)
            log.info("stage %s: done in %s", stage, fmt_seconds(seconds))
            bar.update(1)
    return stages.data
