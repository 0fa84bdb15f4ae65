"""The job manager: launch, stop and resume job processes in a runs folder, and report on them.

A launch starts the spec's argv (`specs.build_command`) with `subprocess.Popen(argv)`, no shell,
in its own process group so Stop reaches `torchrun`'s workers too. Everything a job reads or
writes stays inside the runs folder `RUNS_DIR` (default `runs/app`, env `ACCVIDEO_RUNS_DIR`):
a job named NAME writes `RUNS_DIR/NAME/` (the CLI's `--out`, plus `job.json` with its state and
`job.log` with its output); an AccVideo job reads the SynVid of another run in `RUNS_DIR`.

A launch or a resume is refused before anything is written when `max_jobs` jobs already run or
the job's estimated disk use exceeds the free space (`quotas`); a launch also when the job's
memory plan does not fit the GPU (`plans`: app.py's `--gpu-mem`, else the CUDA GPU's memory for
a real teacher), with the setting to change.

Only state changes write: a launch, a resume, a stop and a process's end rewrite the run's
`job.json` and the readable index `RUNS_DIR/runs.csv`. Everything that reports (`runs`,
`progress`, `table`, `log_tail`) only reads, so the app's refresh timer can call it freely.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import threading
import time
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from accvideo.training.preflight import check_gpu_mem  # lower layer: the plan, no weights loaded
from accvideo.util.checks import RUN_NAME, check_run_name
from accvideo.util.io import atomic_write_text  # lower layer: temp file, then rename

from . import runs
from .plans import check_job_plan
from .quotas import check_quotas, default_max_jobs
from .runs import JOB_FILE, LOG_FILE, TABLE_COLUMNS, TABLE_FILE, JobState
from .specs import JobSpec, build_command, default_runs_dir, executable_argv, local_gpus, make_spec

REPO_ROOT = Path(__file__).resolve().parents[3]


class JobManager:
    """Launch, stop, resume and watch jobs in `runs_dir`. Thread-safe; one instance per app."""

    def __init__(self, runs_dir: Path | str | None = None, max_jobs: int | None = None,
                 gpu_mem: float | None = None, plan_check: bool = True):
        """`max_jobs`: how many jobs may run at once (None: `quotas.default_max_jobs`). `gpu_mem`: GB
        per GPU a job's memory plan must fit (None: the CUDA GPU's own, for real teachers only);
        `plan_check=False` skips the plan (a warning in the log)."""
        self.runs_dir = Path(runs_dir) if runs_dir is not None else default_runs_dir()
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        if max_jobs is not None and (not isinstance(max_jobs, int) or isinstance(max_jobs, bool) or max_jobs < 1):
            raise ValueError(f"`max_jobs` must be an integer >= 1 but is {max_jobs!r}.")
        self.max_jobs = max_jobs if max_jobs is not None else default_max_jobs(local_gpus())
        self.gpu_mem = None if gpu_mem is None else check_gpu_mem(gpu_mem, "gpu_mem")
        self.plan_check = plan_check
        self._procs: dict[str, subprocess.Popen] = {}
        self._lock = threading.RLock()

    # -- paths
    def run_dir(self, name) -> Path:
        """RUNS_DIR/name, after checking the name and that the path stays inside RUNS_DIR."""
        check_run_name(name)
        path = (self.runs_dir / name).resolve()
        if path.parent != self.runs_dir.resolve():
            raise ValueError(f"`name` must stay inside the runs folder {str(self.runs_dir)!r} but is {name!r}.")
        return path

    def state(self, name: str) -> JobState:
        """The run's `job.json` as saved (its status may be stale; `runs` settles it)."""
        data = runs.read_job(self.run_dir(name))
        if not data:
            raise ValueError(f"`name` must be a run in {str(self.runs_dir)!r} but {name!r} is not one.")
        return JobState(**data)

    def _save(self, state: JobState) -> None:
        atomic_write_text(self.run_dir(state.name) / JOB_FILE, json.dumps(asdict(state), indent=2))
        self.save_table()

    # -- launch / stop / resume
    def launch(self, spec: JobSpec) -> JobState:
        """Validate `spec`, start its command in RUNS_DIR/name, return its state. A name in use is an error."""
        argv = build_command(spec, self.runs_dir.resolve())
        run_dir = self.run_dir(spec.name)
        with self._lock:
            if (run_dir / JOB_FILE).exists() or run_dir.exists() and any(run_dir.iterdir()):
                raise ValueError(f"`name` must be a new run but {spec.name!r} already exists in "
                                 f"{str(self.runs_dir)!r}; pick another name or Resume it.")
            check_quotas(spec, self.runs_dir, self._running(), self.max_jobs)
            check_job_plan(spec, self.runs_dir.resolve(), self.gpu_mem, self.plan_check)  # before any weights load
            spec_dict = {k: v for k, v in asdict(spec).items() if k != "kind"}
            state = JobState(name=spec.name, kind=spec.kind, spec=spec_dict, argv=argv, command=shlex.join(argv))
            self._start(state, run_dir)
            return state

    def _start(self, state: JobState, run_dir: Path) -> None:
        run_dir.mkdir(parents=True, exist_ok=True)
        log = open(run_dir / LOG_FILE, "ab")  # noqa: SIM115 - handed to the child, closed by the watcher
        log.write(f"\n$ {state.command}\n".encode())
        log.flush()
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1"}
        # argv list, no shell; a new session = a process group Stop can signal as a whole
        proc = subprocess.Popen(executable_argv(state.argv), cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        state.pid, state.status, state.returncode, state.ended = proc.pid, "running", None, None
        state.started = state.started or time.time()
        self._procs[state.name] = proc
        self._save(state)
        threading.Thread(target=self._watch, args=(state.name, proc, log), daemon=True).start()

    def _watch(self, name: str, proc: subprocess.Popen, log) -> None:
        code = proc.wait()
        log.close()
        with self._lock:
            state = self.state(name)
            if state.pid != proc.pid:  # resumed since: a newer process owns the state
                return
            state.returncode = code
            state.ended = time.time()
            if state.status != "stopped":
                state.status = "finished" if code == 0 else "failed"
            self._procs.pop(name, None)
            self._save(state)

    def stop(self, name: str) -> JobState:
        """SIGTERM to the job's process group (torchrun and its workers); the last checkpoint stays."""
        with self._lock:
            state = self.state(name)
            if state.status != "running" or not self._alive(state):
                raise ValueError(f"`name` must be a running job but {name!r} is {self._status(state)}.")
            state.status = "stopped"
            self._save(state)
            try:
                os.killpg(state.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            return state

    def resume(self, name: str) -> JobState:
        """Relaunch a stopped or failed job with the same argv; the CLIs continue from the last checkpoint."""
        with self._lock:
            state = self.state(name)
            status = self._status(state)
            if status == "running":
                raise ValueError(f"`name` must be a stopped or failed job but {name!r} is running.")
            if status == "finished":
                raise ValueError(f"`name` must be a stopped or failed job but {name!r} has finished.")
            check_quotas(make_spec(state.kind, **state.spec), self.runs_dir, self._running(), self.max_jobs)
            state.launches += 1
            self._start(state, self.run_dir(name))
            return state

    def wait(self, name: str, timeout: float) -> JobState:
        """Block until the job ends (for tests and scripts); ValueError on timeout."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            state = self.state(name)
            if self._status(state) != "running":
                return state
            time.sleep(0.5)
        raise ValueError(f"job {name!r} did not end within {timeout} s.")

    # -- status (read only)
    def _alive(self, state: JobState) -> bool:
        proc = self._procs.get(state.name)
        if proc is not None:
            return proc.poll() is None
        if state.pid is None:
            return False
        try:  # a job launched by an earlier app process: is its pid still ours?
            os.kill(state.pid, 0)
            cmdline = Path(f"/proc/{state.pid}/cmdline").read_bytes().decode(errors="replace")
            return "accvideo" in cmdline
        except (OSError, ProcessLookupError):
            return False

    def _running(self) -> list[str]:
        return [s.name for s in self.runs() if s.status == "running"]

    def _status(self, state: JobState) -> str:
        return runs.settled_status(state, self.run_dir(state.name), self._alive(state))

    def progress(self, name: str) -> tuple[int, int]:
        """(done, total) in optimiser steps (distillation) or samples (SynVid)."""
        state = self.state(name)
        return runs.run_progress(state, self.run_dir(name), self._status(state))

    def log_tail(self, name: str, lines: int = 40) -> str:
        return runs.log_tail(self.run_dir(name), lines)

    def runs(self) -> list[JobState]:
        """Every run in the folder with its settled status, newest first."""
        states = []
        for path in sorted(self.runs_dir.glob(f"*/{JOB_FILE}")):
            data = runs.read_job(path.parent)
            if data and RUN_NAME.fullmatch(data.get("name", "")):
                state = JobState(**data)
                state.status = self._status(state)
                states.append(state)
        return sorted(states, key=lambda s: s.started, reverse=True)

    def students(self) -> dict[str, Path]:
        """Finished distillation runs: {'run:NAME': pipeline folder}."""
        found = {}
        for state in self.runs():
            folder = runs.student_folder(self.run_dir(state.name)) if state.kind != "synvid" else None
            if folder is not None and state.status == "finished":
                found[f"run:{state.name}"] = folder
        return found

    def synvid_runs(self) -> list[str]:
        return [s.name for s in self.runs() if s.kind == "synvid" and s.status == "finished"]

    def table(self) -> pd.DataFrame:
        """The runs table, rebuilt from the `job.json` files (read only)."""
        rows = [runs.table_row(state, self.run_dir(state.name), state.status) for state in self.runs()]
        return pd.DataFrame(rows, columns=TABLE_COLUMNS)

    # -- the one write of the index
    def save_table(self) -> pd.DataFrame:
        """Write RUNS_DIR/runs.csv (a readable index; job.json files stay the source of truth).
        Called on state changes only, never by a reader."""
        table = self.table()
        atomic_write_text(self.runs_dir / TABLE_FILE, table.to_csv(index=False))
        return table
