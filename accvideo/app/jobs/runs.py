"""Run folders: what a job left behind, read back. Nothing here starts, stops or writes anything.

A job named NAME lives in `RUNS_DIR/NAME/`: `job.json` (its `JobState`), `job.log` (its output),
and what the CLI writes there: `metrics.jsonl` (one JSON line per logged trainer step; GPD one
per stage under `stages/stage-k/`), `shard-*.json` sidecars and `manifest.csv` (SynVid), and
`pipeline/` plus `summary.json` (a finished student).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .specs import make_spec

JOB_FILE, LOG_FILE, TABLE_FILE = "job.json", "job.log", "runs.csv"
TABLE_COLUMNS = ["name", "kind", "status", "progress", "last_loss", "student", "started", "command"]
METRIC_COLUMNS = ["step", "series", "loss"]
SYNVID_SHARD_SIZE = 16  # the SynVid CLI's default; its sidecars count finished shards


@dataclass
class JobState:
    """What `job.json` holds for one run."""

    name: str
    kind: str
    spec: dict
    argv: list[str]
    command: str
    status: str = "running"  # running | finished | failed | stopped
    pid: int | None = None
    returncode: int | None = None
    started: float = 0.0
    ended: float | None = None
    launches: int = 1


def read_job(run_dir: Path) -> dict:
    """The run's `job.json` as a dict ({} when absent or being rewritten)."""
    try:
        return json.loads((run_dir / JOB_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def read_watchdog(run_dir: Path) -> dict:
    """The collapse watchdog's latest record (`watchdog.json`: step, stage, clip relative to the run,
    flags, stats), with `clip` made absolute; {} when the run has none (yet)."""
    try:
        record = json.loads((run_dir / "watchdog.json").read_text())
        return {**record, "clip": str(run_dir / record["clip"])}
    except (OSError, json.JSONDecodeError, KeyError, TypeError):
        return {}


def read_metrics(run_dir: Path, kind: str) -> pd.DataFrame:
    """Loss records of a run as a DataFrame with `step` (global, across GPD stages), `series`, `loss`.

    The trainer appends one JSON line per logged step to `metrics.jsonl` (`step`, `<phase>/loss`,
    ...); GPD has one file per stage under `stages/stage-k/`, laid end to end here.
    """
    files = [run_dir / "metrics.jsonl"] if kind == "accvideo" else \
        sorted((run_dir / "stages").glob("stage-*/metrics.jsonl"), key=lambda p: int(p.parent.name.split("-")[1]))
    rows, offset = [], 0
    for path in files:
        if not path.exists():
            continue
        last = 0
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line being written right now
            last = max(last, int(record.get("step", 0)))
            for key, value in record.items():
                if key.endswith("/loss"):
                    label = key if kind == "accvideo" else f"{path.parent.name} {key}"
                    rows.append({"step": offset + record["step"], "series": label, "loss": value})
        if kind == "gpd":
            offset += _stage_steps(run_dir, last)
    return pd.DataFrame(rows, columns=METRIC_COLUMNS)


def _stage_steps(run_dir: Path, fallback: int) -> int:
    # a stage runs the spec's `steps`; a stage cut short by Stop counts what it logged
    job = read_job(run_dir)
    return int(job.get("spec", {}).get("steps", fallback)) if job else fallback


def student_folder(run_dir: Path) -> Path | None:
    """The finished student pipeline of a distillation run, if there is one."""
    folder = run_dir / "pipeline"
    return folder if (folder / "model_index.json").exists() and (run_dir / "summary.json").exists() else None


def left_finished(state: JobState, run_dir: Path) -> bool:
    """Whether the run left its result: a student (distillation) or a SynVid manifest."""
    if state.kind == "synvid":
        return (run_dir / "manifest.csv").exists()
    return student_folder(run_dir) is not None


def settled_status(state: JobState, run_dir: Path, alive: bool) -> str:
    """The status to show: `job.json`'s, unless it says running and no process is alive. Then the app
    restarted while the job ran, and what the job left behind decides between finished and stopped."""
    if state.status == "running" and not alive:
        return "finished" if left_finished(state, run_dir) else "stopped"
    return state.status


def run_progress(state: JobState, run_dir: Path, status: str) -> tuple[int, int]:
    """(done, total) in optimiser steps (distillation) or samples (SynVid)."""
    total = make_spec(state.kind, **state.spec).total_steps()
    if state.kind == "synvid":
        if (run_dir / "manifest.csv").exists():
            return total, total
        return min(total, len(list(run_dir.glob("shard-*.json"))) * SYNVID_SHARD_SIZE), total
    metrics = read_metrics(run_dir, state.kind)
    done = int(metrics["step"].max()) if len(metrics) else 0
    if status == "finished":
        done = total
    return min(done, total), total


def last_loss(metrics: pd.DataFrame) -> float | None:
    """The latest student loss (GPD and AccVideo log `.../student/loss`), else the latest loss of any series."""
    if not len(metrics):
        return None
    student = metrics["series"].str.endswith("student/loss")
    losses = metrics[student]["loss"] if student.any() else metrics["loss"]
    return round(float(losses.iloc[-1]), 6)


def table_row(state: JobState, run_dir: Path, status: str) -> dict:
    """One row of the runs table (TABLE_COLUMNS)."""
    done, total = run_progress(state, run_dir, status)
    loss = last_loss(read_metrics(run_dir, state.kind)) if state.kind != "synvid" else None
    student = f"run:{state.name}" if state.kind != "synvid" and status == "finished" else ""
    return {"name": state.name, "kind": state.kind, "status": status, "progress": f"{done}/{total}",
            "last_loss": loss, "student": student,
            "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(state.started)), "command": state.command}


# CSI sequences (colours, cursor moves, erase line) and the OSC / two-byte escapes tqdm and rich write
ANSI_ESCAPE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")


def clean_terminal_text(text: str) -> str:
    """`text` as a terminal would leave it: ANSI escape codes removed, and of each line rewritten
    with carriage returns (tqdm's redraws) only its last non-empty state kept."""
    text = ANSI_ESCAPE.sub("", text).replace("\r\n", "\n")
    # split on "\n" only: str.splitlines would also split on "\r" and keep every redraw as a line
    lines = []
    for line in text.split("\n"):
        states = [state for state in line.split("\r") if state.strip()]
        lines.append(states[-1] if states else "")
    return "\n".join(lines)


def log_tail(run_dir: Path, lines: int = 40) -> str:
    """The last `lines` lines of `job.log`, as a terminal would show them (oldest first, newest last)."""
    path = run_dir / LOG_FILE
    if not path.exists():
        return ""
    with open(path, "rb") as f:
        f.seek(max(0, path.stat().st_size - 64_000))  # the tail only: a long job's log grows without bound
        text = f.read().decode(errors="replace")
    return "\n".join(clean_terminal_text(text).rstrip("\n").split("\n")[-lines:])
