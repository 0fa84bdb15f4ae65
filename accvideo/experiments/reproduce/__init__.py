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
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
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
    stage_teacher_eval,
    stage_toy,
)
from accvideo.util.cpu import cpu_sample, cpu_share

__all__ = ["PRESETS", "STAGES", "Paths", "Preset", "ReportRow", "StageLog", "report_rows", "run_reproduce",
           "synvid_store"]

log = logging.getLogger("accvideo.experiments.reproduce")


# With `--jobs 2` a second process runs these, beside the main one's synvid and accvideo: none
# needs a student, and the decoder waits for the synvid stage (it learns its final states). The
# teacher's rows first: the accvideo stage's ablation table then finds them scored.
SIDE_STAGES = ("teacher-eval", "gpd", "decoder")
POLL_S = 10.0


def run_reproduce(out: str | Path, preset: str = "tiny-v2", results: str | Path | None = None,
                  bundle_dir: str | Path | None = None, only: tuple[str, ...] = (), command: str = "",
                  jobs: int = 1, side: bool = False, compile: bool = False) -> dict:
    """Run every stage not yet finished; returns OUT/stages.json's content.

    jobs=2: once the teacher is trained, the side stages run in a second process (`side=True`,
    OUT/side.log), each process on one torch thread; the main process waits for it before `eval`.
    compile: the teacher's transformer stage and GPD under torch.compile (`Preset.compile`)."""
    if preset not in PRESETS:
        raise ValueError(f"`preset` must be one of {sorted(PRESETS)} but is {preset!r}.")
    unknown = [s for s in only if s not in STAGES]
    if unknown:
        raise ValueError(f"`stages` must be names from {list(STAGES)} but has {unknown}.")
    if jobs not in (1, 2):
        raise ValueError(f"`jobs` must be 1 or 2 (processes; this machine's budget is two cores) but is {jobs}.")
    if jobs == 2 and only:
        raise ValueError(f"`jobs` must be 1 when `stages` is given but is {jobs} with stages {list(only)}.")
    settings = replace(PRESETS[preset], compile=True) if compile else PRESETS[preset]
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
        "teacher-eval": lambda: stage_teacher_eval(p, settings),
        "eval": lambda: stage_eval(p, settings),
        "bench": lambda: stage_bench(p, settings),
        "toy": lambda: stage_toy(p, settings),
        "report": lambda: stage_report(p, settings, stages, command),
        "bundle": lambda: stage_bundle(p, settings, stages, command),
    }
    if side:
        torch.set_num_threads(1)
        todo = [s for s in SIDE_STAGES if not stages.done(s)]
    else:
        todo = [s for s in STAGES if (not only or s in only)]
    branch = _SideProcess(p, preset, stages, compile) if jobs == 2 else None
    try:
        _run_stages(todo, runners, stages, branch, side, bool(only))
    except BaseException:
        if branch is not None:
            branch.stop()  # its stages resume from their checkpoints on the next run
        raise
    return stages.data


def _run_stages(todo: list[str], runners: dict, stages: StageLog, branch: _SideProcess | None, side: bool,
                only: bool) -> None:
    with tqdm(total=len(todo), desc="reproduce (side)" if side else "reproduce", unit="stage") as bar:
        for stage in todo:
            always = stage in ("report", "bundle") or only  # cheap, and asked for again
            if branch is not None and stage in SIDE_STAGES:
                bar.update(1)
                continue
            if branch is not None and stage != "teacher":
                if stage in ("synvid", "accvideo"):
                    branch.start()  # the teacher is trained; once
                elif branch.proc is not None:
                    stages.add_join_wait(branch.join())
            if stages.done(stage) and not always:
                bar.update(1)
                continue
            if side and stage == "decoder":
                _wait_for(stages, "synvid")
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
            parallel = branch is not None or side
            stages.finish(stage, seconds, **info, **({"process": "side" if side else "main"} if parallel else {}))
            log.info("stage %s: done in %s", stage, fmt_seconds(seconds))
            bar.update(1)
    if branch is not None and branch.proc is not None:
        stages.add_join_wait(branch.join())


def _wait_for(stages: StageLog, stage: str) -> None:
    """Side process: wait until the main process has finished `stage`; fail if the main process is gone."""
    parent = os.getppid()
    while not stages.done(stage):
        if os.getppid() != parent:
            raise RuntimeError(f"the main `reproduce` process ended before its {stage} stage finished; "
                               "rerun the command to resume")
        time.sleep(POLL_S)


class _SideProcess:
    """The second process of `--jobs 2`: `reproduce` with the side flag, on one thread, logging to OUT/side.log."""

    def __init__(self, p: Paths, preset: str, stages: StageLog, compile: bool = False):
        self.p, self.preset, self.stages, self.proc, self.log_file = p, preset, stages, None, None
        self.compile = compile
        self.threads = torch.get_num_threads()
        self.started = False

    def start(self) -> None:
        if self.started or all(self.stages.done(s) for s in SIDE_STAGES):
            return
        self.started = True
        argv = [sys.executable, "-m", "accvideo", "reproduce", "--preset", self.preset, "--out", str(self.p.out),
                "--results", str(self.p.results), "--side-process", *(["--compile"] if self.compile else [])]
        self.log_file = open(self.p.out / "side.log", "a")
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        self.proc = subprocess.Popen(argv, stdout=self.log_file, stderr=subprocess.STDOUT, env=env)
        torch.set_num_threads(1)  # the side process has the other core
        log.info("side process %d: %s (log %s)", self.proc.pid, ", ".join(SIDE_STAGES), self.p.out / "side.log")

    def join(self) -> float:
        """Wait for the side process; returns the seconds waited. Raises if it failed."""
        if self.proc is None:
            return 0.0
        start = time.perf_counter()
        try:
            rc = self.proc.wait()
        finally:
            waited = time.perf_counter() - start
            self._close()
        if rc != 0:
            raise RuntimeError(f"the side process ({', '.join(SIDE_STAGES)}) failed with exit code {rc}; "
                               f"see {self.p.out / 'side.log'}, then rerun the command to resume")
        return waited

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait()
        self._close()

    def _close(self) -> None:
        """After the side process ended: its log closed, the main process back to its own threads."""
        if self.log_file is not None:
            self.log_file.close()
        self.proc, self.log_file = None, None
        torch.set_num_threads(self.threads)
