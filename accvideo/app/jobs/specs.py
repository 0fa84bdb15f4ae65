"""Job specs: the three jobs the app launches, their validation, and the argv a user would type.

A spec is a dataclass whose fields are the job's form: each field's metadata holds its `label`,
its `help`, its `choices` (a tuple, or the name of a list the app knows only at run time:
`"teachers"`, `"synvid_runs"`) and, for numbers, the range `validate` enforces (`low`, `high`;
`high` may be a function, such as the number of processes this machine can run). The Distil tab
builds its forms from `dataclasses.fields` of these classes, so a default, a label or a range is
written once, here.

No field ever reaches a shell: `build_command` returns an argv list, after `validate` has checked
every field (ranges, choices, the schedule's form, a sanitised run name).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path

from accvideo.util.checks import check_choice, check_int, check_number, check_run_name
from accvideo.world import SPLITS  # lower layer: the procedural world's prompt presets

KINDS = ("synvid", "accvideo", "gpd")


def default_runs_dir() -> Path:
    return Path(os.environ.get("ACCVIDEO_RUNS_DIR", "runs/app"))


def local_gpus() -> int:
    """Number of CUDA devices torch sees (0 on a CPU-only machine)."""
    import torch  # here, not at the top: the specs are read by tools that never touch a tensor

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def max_processes() -> int:
    """Upper bound for `nproc`: one process per GPU, or per CPU core with gloo."""
    return local_gpus() or max(1, os.cpu_count() or 1)


def teacher_models() -> list[str]:
    """Bundled models whose saved sampling role is not `student` (the teachers a job may use)."""
    from accvideo.models.registry import ASSETS, BUNDLED, read_sampling_defaults  # lower layer; loads diffusers

    names = []
    for name, folder in BUNDLED.items():
        try:
            role = read_sampling_defaults(ASSETS / folder).get("role", "teacher")
        except ValueError:
            continue
        if role != "student" and (ASSETS / folder / "model_index.json").exists():
            names.append(name)
    return sorted(names)


def parse_schedule(text) -> list[int]:
    """'48,24,12,6' -> [48, 24, 12, 6]: the teacher's steps, then each stage's; each divides the one before."""
    rule = "the teacher's steps then each stage's, decreasing, each dividing the previous one, like 48,24,12,6"
    if not isinstance(text, str) or not re.fullmatch(r"\s*\d{1,4}(\s*,\s*\d{1,4}){1,7}\s*", text):
        raise ValueError(f"`schedule` must list {rule}, but is {text!r}.")
    counts = [int(c) for c in text.split(",")]
    if counts[-1] < 1 or counts[0] > 1000 or any(b >= a or a % b for a, b in zip(counts, counts[1:])):
        raise ValueError(f"`schedule` must list {rule}, but is {text!r}.")
    return counts


# --------------------------------------------------------------------------- form fields


def _form(default=MISSING, *, label: str, help: str = "", choices=None, low=None, high=None):
    """A spec field with its form metadata; `low` / `high` are the range `validate` checks."""
    return field(default=default, metadata={"label": label, "help": help, "choices": choices,
                                            "low": low, "high": high})


def _name():
    return _form(label="Run name", help="1-64 characters from A-Z, a-z, 0-9, _ and -; the run's folder")


def _teacher():
    return _form("tiny-teacher", label="Teacher", choices="teachers")


def _nproc():
    return _form(1, label="Processes", help="torchrun workers: one per GPU, or per CPU core with gloo",
                 low=1, high=max_processes)


def _lr(default: float):
    return _form(default, label="Learning rate", low=1e-7, high=1e-1)


def _watchdog():
    # on for the app's jobs (all tiny: the teachers are the bundled ones), off in the CLI by default
    return _form(25, label="Watchdog every (steps)", low=0, high=100_000,
                 help="render a validation clip every N steps and flag collapse (solid, noise, static, "
                      "exploding); 0: off")


def _watchdog_stop():
    return _form("no", label="Stop on a collapse flag", choices=("no", "yes"),
                 help="end the job at the first flagged clip (its last checkpoint stays)")


def _watchdog_args(spec) -> list[str]:
    return (["--watchdog", str(spec.watchdog)] if spec.watchdog else []) + \
        (["--watchdog-stop"] if spec.watchdog_stop == "yes" else [])


def _batch_size():
    return _form(8, label="Batch size", help="samples per optimiser step, over all processes", low=1, high=256)


def bounds(spec, name: str) -> tuple[float | None, float | None]:
    """The (low, high) range of field `name` of a spec or spec class, with a callable `high` resolved."""
    meta = spec.__dataclass_fields__[name].metadata
    high = meta.get("high")
    return meta.get("low"), high() if callable(high) else high


def _check_field(spec, name: str, high=None):
    """Check field `name` against its metadata range (an int or a float field by its default's type)."""
    low, field_high = bounds(spec, name)
    high = field_high if high is None else high
    value = getattr(spec, name)
    if isinstance(spec.__dataclass_fields__[name].default, float):
        return check_number(value, name, low, high)
    return check_int(value, name, low, high)


def form_fields(kind: str) -> list:
    """The `dataclasses.Field`s of a `kind` job a form shows, in the order of the spec (and of argv)."""
    return [f for f in fields(spec_class(kind)) if f.init]


def form_default(kind: str, f) -> object:
    """A field's form value: its default, or `<kind>-1` for the run name (which has none)."""
    return f"{kind}-1" if f.default is MISSING else f.default


# --------------------------------------------------------------------------- job specs


@dataclass
class SynVidJob:
    """`python -m accvideo synvid`: the teacher's trajectories for a prompt preset, into RUNS_DIR/name."""

    name: str = _name()
    teacher: str = _teacher()
    preset: str = _form("train", label="Preset (prompts)", choices=tuple(SPLITS))
    num_steps: int = _form(50, label="Teacher steps n", help="Euler steps of each trajectory", low=2, high=200)
    samples_per_prompt: int = _form(1, label="Samples per prompt", low=1, high=64)
    store: str = _form("all", label="Stored states", choices=("all", "key:5", "key:10"),
                       help="every state, or only the m key states (key:M)")
    nproc: int = _nproc()
    kind: str = field(default="synvid", init=False)

    def validate(self, runs_dir: Path) -> None:
        check_run_name(self.name)
        check_choice(self.teacher, "teacher", teacher_models())
        check_choice(self.preset, "preset", list(SPLITS))
        self.num_steps = _check_field(self, "num_steps")
        self.samples_per_prompt = _check_field(self, "samples_per_prompt")
        # any key:M is valid (the form offers three); M is checked against the steps just below
        if not isinstance(self.store, str) or not re.fullmatch(r"all|key:\d{1,3}", self.store):
            raise ValueError(f"`store` must be 'all' or 'key:M' but is {self.store!r}.")
        if self.store != "all":
            check_int(int(self.store[4:]), "store key:M", 1, self.num_steps)
        self.nproc = _check_field(self, "nproc")

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


def synvid_steps(runs_dir: Path, name: str) -> int:
    """The teacher steps of the finished SynVid run `name`, a folder inside `runs_dir` (not a link out
    of it), with a readable config and every sample in its manifest; ValueError naming `synvid_run`."""
    run = runs_dir / name
    if run.is_symlink() or run.resolve().parent != runs_dir.resolve():
        raise ValueError(f"`synvid_run` must be a run folder inside the runs folder {str(runs_dir)!r} but "
                         f"{name!r} leads to {str(run.resolve())!r}.")
    if not (run / "config.json").is_file():
        raise ValueError(f"`synvid_run` must name a SynVid run in {str(runs_dir)!r} but {name!r} "
                         "has no SynVid there (launch a SynVid job first).")
    try:
        config = json.loads((run / "config.json").read_text())
        num_steps, num_samples = config["num_steps"], config["num_samples"]
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in (num_steps, num_samples)):
            raise TypeError(f"num_steps {num_steps!r} and num_samples {num_samples!r} must be integers >= 1")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, AttributeError) as err:
        raise ValueError(f"`synvid_run` must name a SynVid run with a valid config.json but that of {name!r} is "
                         f"unreadable or malformed ({type(err).__name__}: {err}).") from err
    done = 0
    if (run / "manifest.csv").is_file():  # written when a SynVid run ends: one line per complete shard
        lines = (run / "manifest.csv").read_text().splitlines()[1:]
        done = sum(int(line.split(",")[3]) for line in lines if line.count(",") >= 5 and
                   line.split(",")[3].isdigit())
    if done < num_samples:
        raise ValueError(f"`synvid_run` must name a finished SynVid run but {name!r} holds {done} of its "
                         f"{num_samples} samples (still running, stopped or failed: resume it first).")
    return num_steps


@dataclass
class AccVideoJob:
    """`python -m accvideo distill accvideo`: an m-step student from the SynVid of run `synvid_run`."""

    name: str = _name()
    synvid_run: str = _form("", label="SynVid run", choices="synvid_runs", help="a finished SynVid job's name")
    teacher: str = _teacher()
    steps: int = _form(800, label="Steps", help="optimiser steps", low=1, high=100_000)
    # the upper bound is the SynVid run's own number of teacher steps, read in `validate`
    m: int = _form(5, label="Student steps m", help="1 to the SynVid run's teacher steps", low=1)
    lr: float = _lr(2e-4)
    batch_size: int = _batch_size()
    nproc: int = _nproc()
    watchdog: int = _watchdog()
    watchdog_stop: str = _watchdog_stop()
    kind: str = field(default="accvideo", init=False)

    def validate(self, runs_dir: Path) -> None:
        check_run_name(self.name)
        if self.synvid_run is None or (isinstance(self.synvid_run, str) and not self.synvid_run.strip()):
            # the form's dropdown is empty until a SynVid job has finished: say what to do, not the name rule
            raise ValueError(f"`synvid_run` must name a finished SynVid run in {str(runs_dir)!r} but is "
                             f"{self.synvid_run!r}: an AccVideo student learns from a SynVid run's teacher "
                             "trajectories, so make one first (Distil > SynVid), then pick it here.")
        check_run_name(self.synvid_run, "synvid_run")
        if self.synvid_run == self.name:
            raise ValueError(f"`synvid_run` must be another run than `name` but both are {self.name!r}.")
        num_steps = synvid_steps(runs_dir, self.synvid_run)
        check_choice(self.teacher, "teacher", teacher_models())
        self.steps = _check_field(self, "steps")
        self.m = _check_field(self, "m", high=num_steps)
        self.lr = _check_field(self, "lr")
        self.batch_size = _check_field(self, "batch_size")
        self.nproc = _check_field(self, "nproc")
        self.watchdog = _check_field(self, "watchdog")
        check_choice(self.watchdog_stop, "watchdog_stop", ("no", "yes"))

    def cli_args(self, runs_dir: Path) -> list[str]:
        return ["distill", "accvideo", "--teacher", self.teacher, "--synvid", str(runs_dir / self.synvid_run),
                "--out", str(runs_dir / self.name), *_trainer_overrides(self.steps, self.batch_size, self.lr),
                "--set", f"method.num_key_steps={self.m}", "--resume", "auto", *_watchdog_args(self)]

    def total_steps(self) -> int:
        return self.steps


@dataclass
class GPDJob:
    """`python -m accvideo distill gpd`: progressive stages of the schedule, `steps` optimiser steps each."""

    name: str = _name()
    schedule: str = _form("48,24,12,6", label="Schedule (teacher steps, then each stage's)",
                          help="each count divides the one before, like 48,24,12,6")
    teacher: str = _teacher()
    steps: int = _form(300, label="Steps per stage", help="optimiser steps of each stage", low=1, high=100_000)
    lr: float = _lr(1e-4)
    batch_size: int = _batch_size()
    nproc: int = _nproc()
    watchdog: int = _watchdog()
    watchdog_stop: str = _watchdog_stop()
    kind: str = field(default="gpd", init=False)

    def validate(self, runs_dir: Path) -> None:
        check_run_name(self.name)
        self.schedule = ",".join(str(c) for c in parse_schedule(self.schedule))
        check_choice(self.teacher, "teacher", teacher_models())
        self.steps = _check_field(self, "steps")
        self.lr = _check_field(self, "lr")
        self.batch_size = _check_field(self, "batch_size")
        self.nproc = _check_field(self, "nproc")
        self.watchdog = _check_field(self, "watchdog")
        check_choice(self.watchdog_stop, "watchdog_stop", ("no", "yes"))

    def cli_args(self, runs_dir: Path) -> list[str]:
        return ["distill", "gpd", "--teacher", self.teacher, "--schedule", self.schedule,
                "--out", str(runs_dir / self.name), *_trainer_overrides(self.steps, self.batch_size, self.lr),
                "--resume", "auto", *_watchdog_args(self)]

    def total_steps(self) -> int:
        return self.steps * (len(self.schedule.split(",")) - 1)


JobSpec = SynVidJob | AccVideoJob | GPDJob
SPEC_CLASSES = {"synvid": SynVidJob, "accvideo": AccVideoJob, "gpd": GPDJob}


def spec_class(kind: str) -> type[JobSpec]:
    cls = SPEC_CLASSES.get(kind)
    if cls is None:
        raise ValueError(f"`kind` must be one of {list(KINDS)} but is {kind!r}.")
    return cls


def make_spec(kind: str, **values) -> JobSpec:
    """A spec of `kind` from form values; unknown fields are an error (no field reaches a shell)."""
    cls = spec_class(kind)
    known = {f.name for f in fields(cls) if f.init}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown {kind} job fields {unknown}; known fields are {sorted(known)}.")
    if "name" not in values:
        raise ValueError(f"`name` must be given for a {kind} job but is missing.")
    return cls(**values)


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
