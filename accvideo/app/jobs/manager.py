"""The job launcher: validated job specs -> the CLI command a user would type -> a process in a run folder.

Layer: below the UI, above data / distill / eval. It never builds a shell string: a spec's
fields are checked (ranges, choices, the schedule's form, a sanitised run name), turned into
an argv list and started with `subprocess.Popen(argv)` (no shell), in its own process group
so Stop reaches `torchrun`'s workers too.

Everything a job reads or writes stays inside the runs folder `RUNS_DIR` (default
`runs/app`, env `ACCVIDEO_RUNS_DIR`): a job named NAME writes `RUNS_DIR/NAME/` (the CLI's
`--out`, plus `job.json` with its state and `job.log` with its output); an AccVideo job
reads the SynVid of another run in `RUNS_DIR`. The runs table is rebuilt from the
`job.json` files and saved as `RUNS_DIR/runs.csv`, so it survives an app restart.
"""

from __future__ import annotations

import json
import math
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from accvideo.data.procedural import SPLITS

REPO_ROOT = Path(__file__).resolve().parents[3]
RUN_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
KINDS = ("synvid", "accvideo", "gpd")
JOB_FILE, LOG_FILE, TABLE_FILE = "job.json", "job.log", "runs.csv"
TABLE_COLUMNS = ["name", "kind", "status", "progress", "last_loss", "student", "started", "command"]


def default_runs_dir() -> Path:
    return Path(os.environ.get("ACCVIDEO_RUNS_DIR", "runs/app"))


def local_gpus() -> int:
    """Number of CUDA devices torch sees (0 on a CPU-only machine)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def max_processes() -> int:
    """Upper bound for `nproc`: one process per GPU, or per CPU core with gloo."""
    return local_gpus() or max(1, os.cpu_count() or 1)


# --------------------------------------------------------------------------- validation helpers


def check_run_name(name, argument: str = "name") -> str:
    """A run name is 1-64 characters from [A-Za-z0-9_-]: no '/', '..', spaces or shell syntax."""
    if not isinstance(name, str) or not RUN_NAME.fullmatch(name):
        raise ValueError(f"`{argument}` must be 1 to 64 characters from A-Z, a-z, 0-9, '_' and '-' but is {name!r}.")
    return name


def _int(value, argument: str, low: int, high: int) -> int:
    # gradio Numbers arrive as floats; 3.0 is 3, 3.5 is an error
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or value != int(value) or not low <= int(value) <= high:
        raise ValueError(f"`{argument}` must be an integer in [{low}, {high}] but is {value!r}.")
    return int(value)


def _float(value, argument: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or not low <= value <= high:
        raise ValueError(f"`{argument}` must be a number in [{low:g}, {high:g}] but is {value!r}.")
    return float(value)


def _choice(value, argument: str, choices) -> str:
    if value not in choices:
        raise ValueError(f"`{argument}` must be one of {list(choices)} but is {value!r}.")
    return value


def parse_schedule(text) -> list[int]:
    """'48,24,12,6' -> [48, 24, 12, 6]: the teacher's steps, then each stage's; each divides the one before."""
    rule = "the teacher's steps then each stage's, decreasing, each dividing the previous one, like 48,24,12,6"
    if not isinstance(text, str) or not re.fullmatch(r"\s*\d{1,4}(\s*,\s*\d{1,4}){1,7}\s*", text):
        raise ValueError(f"`schedule` must list {rule}, but is {text!r}.")
    counts = [int(c) for c in text.split(",")]
    if counts[-1] < 1 or counts[0] > 1000 or any(b >= a or a % b for a, b in zip(counts, counts[1:])):
        raise ValueError(f"`schedule` must list {rule}, but is {text!r}.")
    return counts


def teacher_models() -> list[str]:
    """Bundled models whose saved sampling role is not `student` (the teachers a job may use)."""
    from accvideo.models.registry import ASSETS, BUNDLED, read_sampling_defaults

    names = []
    for name, folder in BUNDLED.items():
        try:
            role = read_sampling_defaults(ASSETS / folder).get("role", "teacher")
        except ValueError:
            continue
        if role != "student" and (ASSETS / folder / "model_index.json").exists():
            names.append(name)
    return sorted(names)


# --------------------------------------------------------------------------- job specs


@dataclass
class SynVidJob:
    """`python -m accvideo synvid`: the teacher's trajectories for a prompt preset, into RUNS_DIR/name."""

    name: str
    teacher: str = "tiny-teacher"
    preset: str = "train"
    num_steps: int = 50
    samples_per_prompt: int = 1
    store: str = "all"  # "all" or "key:M"
    nproc: int = 1
    kind: str = field(default="synvid", init=False)

    def validate(self, runs_dir: Path) -> None:
        check_run_name(self.name)
        _choice(self.teacher, "teacher", teacher_models())
        _choice(self.preset, "preset", list(SPLITS))
        self.num_steps = _int(self.num_steps, "num_steps", 2, 200)
        self.samples_per_prompt = _int(self.samples_per_prompt, "samples_per_prompt", 1, 64)
        if not isinstance(self.store, str) or not re.fullmatch(r"all|key:\d{1,3}", self.store):
            raise ValueError(f"`store` must be 'all' or 'key:M' but is {self.store!r}.")
        if self.store != "all":
            _int(int(self.store[4:]), "store key:M", 1, self.num_steps)
        self.nproc = _int(self.nproc, "nproc", 1, max_processes())

    def cli_args(self, runs_dir: Path) -> list[str]:
        return ["synvid", "--teacher", self.teacher, "--prompts", self.preset, "--num-steps", str(self.num_steps),
                "--samples-per-prompt", str(self.samples_per_prompt), "--store", self.store,
                "--out", str(runs_dir / self.name)]

    def total_steps(self) -> int:
        """Samples to generate (SynVid progress is counted in finished samples)."""
        return len(SPLITS[self.preset]) * self.samples_per_prompt


def _trainer_overrides(steps: int, batch_size: int, lr: float) -> list[str]:
    # log and checkpoint often enough that the live plot moves and Stop loses little
    log_every = max(1, min(25, steps // 20))
    checkpoint_every = max(1, min(100, steps // 20))
    return ["--steps", str(steps), "--set", f"trainer.batch_size={batch_size}", "--set", f"trainer.lr={lr:g}",
            "--set", f"trainer.log_every={log_every}", "--set", f"trainer.checkpoint_every={checkpoint_every}"]


@dataclass
class AccVideoJob:
    """`python -m accvideo distill accvideo`: an m-step student from the SynVid of run `synvid_run`."""

    name: str
    synvid_run: str = ""
    teacher: str = "tiny-teacher"
    steps: int = 800
    m: int = 5
    lr: float = 2e-4
    batch_size: int = 8
    nproc: int = 1
    kind: str = field(default="accvideo", init=False)

    def validate(self, runs_dir: Path) -> None:
        check_run_name(self.name)
        check_run_name(self.synvid_run, "synvid_run")
        if self.synvid_run == self.name:
            raise ValueError(f"`synvid_run` must be another run than `name` but both are {self.name!r}.")
        config = runs_dir / self.synvid_run / "config.json"
        if not config.exists():
            raise ValueError(f"`synvid_run` must name a SynVid run in {str(runs_dir)!r} but {self.synvid_run!r} "
                             "has no SynVid there (launch a SynVid job first).")
        _choice(self.teacher, "teacher", teacher_models())
        self.steps = _int(self.steps, "steps", 1, 100_000)
        num_steps = json.loads(config.read_text()).get("num_steps", 50)
        self.m = _int(self.m, "m", 1, num_steps)
        self.lr = _float(self.lr, "lr", 1e-7, 1e-1)
        self.batch_size = _int(self.batch_size, "batch_size", 1, 256)
        self.nproc = _int(self.nproc, "nproc", 1, max_processes())

    def cli_args(self, runs_dir: Path) -> list[str]:
        return ["distill", "accvideo", "--teacher", self.teacher, "--synvid", str(runs_dir / self.synvid_run),
                "--out", str(runs_dir / self.name), *_trainer_overrides(self.steps, self.batch_size, self.lr),
                "--set", f"method.num_key_steps={self.m}", "--resume", "auto"]

    def total_steps(self) -> int:
        return self.steps


@dataclass
class GPDJob:
    """`python -m accvideo distill gpd`: progressive stages of the schedule, `steps` optimiser steps each."""

    name: str
    schedule: str = "48,24,12,6"
    teacher: str = "tiny-teacher"
    steps: int = 300
    lr: float = 1e-4
    batch_size: int = 8
    nproc: int = 1
    kind: str = field(default="gpd", init=False)

    def validate(self, runs_dir: Path) -> None:
        check_run_name(self.name)
        self.schedule = ",".join(str(c) for c in parse_schedule(self.schedule))
        _choice(self.teacher, "teacher", teacher_models())
        self.steps = _int(self.steps, "steps", 1, 100_000)
        self.lr = _float(self.lr, "lr", 1e-7, 1e-1)
        self.batch_size = _int(self.batch_size, "batch_size", 1, 256)
        self.nproc = _int(self.nproc, "nproc", 1, max_processes())

    def cli_args(self, runs_dir: Path) -> list[str]:
        return ["distill", "gpd", "--teacher", self.teacher, "--schedule", self.schedule,
                "--out", str(runs_dir / self.name), *_trainer_overrides(self.steps, self.batch_size, self.lr),
                "--resume", "auto"]

    def total_steps(self) -> int:
        return self.steps * (len(self.schedule.split(",")) - 1)


JobSpec = SynVidJob | AccVideoJob | GPDJob
SPEC_CLASSES = {"synvid": SynVidJob, "accvideo": AccVideoJob, "gpd": GPDJob}


def make_spec(kind: str, **fields) -> JobSpec:
    """A spec of `kind` from form fields; unknown fields are an error (no field reaches a shell)."""
    cls = SPEC_CLASSES.get(kind)
    if cls is None:
        raise ValueError(f"`kind` must be one of {list(KINDS)} but is {kind!r}.")
    known = {f for f in cls.__dataclass_fields__ if f != "kind"}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise ValueError(f"unknown {kind} job fields {unknown}; known fields are {sorted(known)}.")
    return cls(**fields)


def build_command(spec: JobSpec, runs_dir: Path | str | None = None, gpus: int | None = None) -> list[str]:
    """The argv a user would type: `torchrun --nproc_per_node=N -m accvideo ...` when N > 1 or on GPUs,
    otherwise `python -m accvideo ...`. The spec is validated first; argv[0] is `torchrun` or `python`."""
    runs_dir = Path(runs_dir) if runs_dir is not None else default_runs_dir()
    spec.validate(runs_dir)
    gpus = local_gpus() if gpus is None else gpus
    if spec.nproc > 1 or gpus > 0:
        launcher = ["torchrun", "--standalone", f"--nproc_per_node={spec.nproc}", "-m", "accvideo"]
    else:
        launcher = ["python", "-m", "accvideo"]
    return launcher + spec.cli_args(runs_dir)


def executable_argv(argv: list[str]) -> list[str]:
    """The displayed command with `python` / `torchrun` bound to this interpreter's own."""
    if argv[0] == "python":
        return [sys.executable, *argv[1:]]
    if argv[0] == "torchrun":
        found = shutil.which("torchrun")
        return [found, *argv[1:]] if found else [sys.executable, "-m", "torch.distributed.run", *argv[1:]]
    raise ValueError(f"`argv[0]` must be 'python' or 'torchrun' but is {argv[0]!r}.")


# --------------------------------------------------------------------------- status from the run folder


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
    return pd.DataFrame(rows, columns=["step", "series", "loss"])


def _stage_steps(run_dir: Path, fallback: int) -> int:
    job = _read_job(run_dir)
    return int(job.get("spec", {}).get("steps", fallback)) if job else fallback


def _synvid_done(run_dir: Path) -> int:
    return len(list(run_dir.glob("shard-*.json")))


def _read_job(run_dir: Path) -> dict:
    try:
        return json.loads((run_dir / JOB_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def student_folder(run_dir: Path) -> Path | None:
    """The finished student pipeline of a distillation run, if there is one."""
    folder = run_dir / "pipeline"
    return folder if (folder / "model_index.json").exists() and (run_dir / "summary.json").exists() else None


# --------------------------------------------------------------------------- the manager


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


class JobManager:
    """Launch, stop, resume and watch jobs in `runs_dir`. Thread-safe; one instance per app."""

    def __init__(self, runs_dir: Path | str | None = None):
        self.runs_dir = Path(runs_dir) if runs_dir is not None else default_runs_dir()
        self.runs_dir.mkdir(parents=True, exist_ok=True)
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
        data = _read_job(self.run_dir(name))
        if not data:
            raise ValueError(f"`name` must be a run in {str(self.runs_dir)!r} but {name!r} is not one.")
        return JobState(**data)

    def _save(self, state: JobState) -> None:
        from accvideo.training.checkpoint import atomic_write_text

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

    # -- status
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

    def _status(self, state: JobState) -> str:
        if state.status == "running" and not self._alive(state):
            # the app restarted while the job ran: judge by what the job left behind
            done = student_folder(self.run_dir(state.name)) if state.kind != "synvid" else \
                (self.run_dir(state.name) / "manifest.csv").exists()
            return "finished" if done else "stopped"
        return state.status

    def progress(self, name: str) -> tuple[int, int]:
        """(done, total) in optimiser steps (distillation) or samples (SynVid)."""
        state = self.state(name)
        spec = make_spec(state.kind, **state.spec)
        total = spec.total_steps()
        run_dir = self.run_dir(name)
        if state.kind == "synvid":
            shard_size = 16  # the CLI's default; the sidecars count finished shards
            done = min(total, _synvid_done(run_dir) * shard_size)
            if (run_dir / "manifest.csv").exists():
                done = total
            return done, total
        metrics = read_metrics(run_dir, state.kind)
        done = int(metrics["step"].max()) if len(metrics) else 0
        if self._status(state) == "finished":
            done = total
        return min(done, total), total

    def log_tail(self, name: str, lines: int = 40) -> str:
        path = self.run_dir(name) / LOG_FILE
        if not path.exists():
            return ""
        with open(path, "rb") as f:
            f.seek(max(0, path.stat().st_size - 64_000))
            text = f.read().decode(errors="replace")
        # tqdm redraws with carriage returns; keep the latest state of each line
        text = "\n".join(line.rsplit("\r", 1)[-1] for line in text.splitlines())
        return "\n".join(text.splitlines()[-lines:])

    def runs(self) -> list[JobState]:
        states = []
        for path in sorted(self.runs_dir.glob(f"*/{JOB_FILE}")):
            data = _read_job(path.parent)
            if data and RUN_NAME.fullmatch(data.get("name", "")):
                state = JobState(**data)
                state.status = self._status(state)
                states.append(state)
        return sorted(states, key=lambda s: s.started, reverse=True)

    def students(self) -> dict[str, Path]:
        """Finished distillation runs: {'run:NAME': pipeline folder}."""
        found = {}
        for state in self.runs():
            folder = student_folder(self.run_dir(state.name)) if state.kind != "synvid" else None
            if folder is not None and state.status == "finished":
                found[f"run:{state.name}"] = folder
        return found

    def synvid_runs(self) -> list[str]:
        return [s.name for s in self.runs() if s.kind == "synvid" and s.status == "finished"]

    def table(self) -> pd.DataFrame:
        rows = []
        for state in self.runs():
            done, total = self.progress(state.name)
            last_loss = None
            if state.kind != "synvid":
                metrics = read_metrics(self.run_dir(state.name), state.kind)
                if len(metrics):
                    last_loss = round(float(metrics[metrics["series"].str.endswith("student/loss")]["loss"].iloc[-1])
                                      if metrics["series"].str.endswith("student/loss").any()
                                      else float(metrics["loss"].iloc[-1]), 6)
            student = f"run:{state.name}" if state.kind != "synvid" and state.status == "finished" else ""
            rows.append({"name": state.name, "kind": state.kind, "status": state.status,
                         "progress": f"{done}/{total}", "last_loss": last_loss, "student": student,
                         "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(state.started)),
                         "command": state.command})
        return pd.DataFrame(rows, columns=TABLE_COLUMNS)

    def save_table(self) -> pd.DataFrame:
        """Write RUNS_DIR/runs.csv (a readable index; job.json files stay the source of truth)."""
        from accvideo.training.checkpoint import atomic_write_text

        table = self.table()
        atomic_write_text(self.runs_dir / TABLE_FILE, table.to_csv(index=False))
        return table
