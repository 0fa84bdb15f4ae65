"""The Distil tab's domain side: the forms' fields from the job specs, launching a job from form
values, and what the tab shows of the runs (one job's log, progress and loss; the runs table).

Everything here that the refresh timer calls (`distil_snapshot`) only reads the runs folder.
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass, field

import pandas as pd
import plotly.graph_objects as go

from .. import jobs
from ..jobs import JobManager, JobState
from ..jobs.runs import METRIC_COLUMNS
from ..jobs.specs import bounds, spec_class


def training_allowed() -> bool:
    """On a public Space (SPACE_ID set) the Distil tab is read-only unless ACCVIDEO_ENABLE_TRAINING=1."""
    return not os.environ.get("SPACE_ID") or os.environ.get("ACCVIDEO_ENABLE_TRAINING") == "1"


# --------------------------------------------------------------------------- forms


@dataclass(frozen=True)
class FormField:
    """One input of a job form, resolved for this app: `widget` is text, choice, integer or number;
    `choices` are the current ones; `source` names the run-time list they come from, if any."""

    name: str
    label: str
    help: str
    value: object
    widget: str
    choices: tuple = ()
    source: str = ""  # "teachers" or "synvid_runs": lists that change while the app runs
    custom: bool = False  # values beyond `choices` allowed (a SynVid run finished after the page was built)


def _range_help(cls, f) -> str:
    low, high = bounds(cls, f.name)
    if low is None:
        return ""
    if isinstance(f.default, float):
        return f"{low:g} to {high:g}"
    return f"{low} to {high}" if high is not None else ""  # a bound known only at launch: the help says it


def choice_list(source: str, manager: JobManager) -> list[str]:
    """The current values of a run-time choice list."""
    if source == "teachers":
        return jobs.teacher_models() or ["tiny-teacher"]
    if source == "synvid_runs":
        return manager.synvid_runs()
    raise ValueError(f"`source` must be 'teachers' or 'synvid_runs' but is {source!r}.")


def job_form(kind: str, manager: JobManager) -> list[FormField]:
    """The form of a `kind` job, one FormField per spec field, in the spec's (and the API's) order."""
    cls = spec_class(kind)
    form = []
    for f in jobs.form_fields(kind):
        meta = f.metadata
        value = jobs.form_default(kind, f)
        help_text = "; ".join(t for t in (meta.get("help", ""), _range_help(cls, f)) if t)
        choices, source = meta.get("choices"), ""
        if isinstance(choices, str):  # a run-time list
            source, choices = choices, choice_list(choices, manager)
        if choices is not None:
            if value not in choices:
                value = choices[0] if choices else None
            form.append(FormField(f.name, meta["label"], help_text, value, "choice", tuple(choices), source,
                                  custom=source == "synvid_runs"))
        else:
            widget = "text" if isinstance(value, str) else "number" if isinstance(value, float) else "integer"
            form.append(FormField(f.name, meta["label"], help_text, value, widget))
    return form


def launch_job(manager: JobManager, kind: str, **values) -> JobState:
    """Validate the form values of a `kind` job and start it; ValueError names a bad field."""
    if not training_allowed():
        raise ValueError("training is disabled on this public Space (set ACCVIDEO_ENABLE_TRAINING=1 to allow it).")
    return manager.launch(jobs.make_spec(kind, **values))


NEEDS_SYNVID = ("**AccVideo needs a finished SynVid run**, and there is none yet: an AccVideo student learns "
                "from a SynVid run's teacher trajectories. Make one first in the SynVid form (the smallest "
                "settings take a minute or two on a CPU); it appears under *SynVid run* when it has finished.")


# what "Make a SynVid run" fills in: the held-out preset (6 prompts), few teacher steps, enough for m <= 10
SMALL_SYNVID = {"preset": "heldout", "num_steps": 10, "samples_per_prompt": 1}


def accvideo_notice(synvid_runs: list[str]) -> str:
    """What the AccVideo form says above its fields: that it needs a SynVid run, when there is none."""
    return "" if synvid_runs else NEEDS_SYNVID


def launch_signature(kind: str, manager: JobManager) -> inspect.Signature:
    """The `/launch_<kind>` endpoint's signature: one named parameter per form field, in the form's order,
    so the API shows the fields' names (not `param_0..param_N`) and takes them as keywords."""
    return inspect.Signature([inspect.Parameter(f.name, inspect.Parameter.POSITIONAL_OR_KEYWORD)
                              for f in job_form(kind, manager)])


def launch_docstring(kind: str, manager: JobManager) -> str:
    """The `/launch_<kind>` endpoint's docstring (the API page's description), Google style: what the
    job runs, then each field's label, help and range."""
    summary = (spec_class(kind).__doc__ or kind).strip().splitlines()[0]
    lines = [f"Launch a {kind} job: {summary}", "", "Args:"]
    for f in job_form(kind, manager):
        lines.append(f"    {f.name}: {f.label}" + (f" ({f.help})" if f.help else ""))
    lines += ["", "Returns:", "    the command the job runs, and the job selector set to the new run"]
    return "\n".join(lines)


# --------------------------------------------------------------------------- views


def loss_figure(metrics: pd.DataFrame, name: str = "") -> go.Figure:
    """Loss against step, one line per series (GPD: one per stage)."""
    fig = go.Figure()
    for series, group in metrics.groupby("series", sort=False):
        fig.add_scatter(x=group["step"], y=group["loss"], mode="lines+markers", name=series)
    fig.update_layout(title=f"loss {name}".strip(), xaxis_title="step", yaxis_title="loss", height=320,
                      margin=dict(l=40, r=10, t=30, b=30))
    return fig


@dataclass
class JobView:
    """What the Distil tab shows of one job."""

    log: str
    progress: str
    figure: go.Figure
    status: str
    command: str
    watchdog_clip: str | None = None  # the latest validation clip (mp4 path), None before the first
    watchdog_note: str = ""


def watchdog_note(record: dict) -> str:
    """Markdown of the watchdog's latest record: its step and its flags, or that it saw no collapse."""
    if not record:
        return "Watchdog: no validation clip yet (every N steps when the job's *Watchdog every* is on)."
    where = f"step {record.get('step')}" + (f" ({record['stage']})" if record.get("stage") else "")
    flags = record.get("flags") or []
    if not flags:
        return f"Watchdog, {where}: no collapse seen."
    stats = ", ".join(f"{k} {v}" for k, v in (record.get("stats") or {}).items())
    return f"⚠️ **Watchdog, {where}: {', '.join(flags)}** ({stats})."


def job_view(manager: JobManager, name) -> JobView:
    """Log tail, progress text, loss plot and status of one run."""
    if not name:
        return JobView("", "no job selected", loss_figure(pd.DataFrame(columns=METRIC_COLUMNS)), "", "")
    state = manager.state(name)
    done, total = manager.progress(name)
    status = next((s.status for s in manager.runs() if s.name == name), state.status)
    unit = "samples" if state.kind == "synvid" else "steps"
    pct = 100 * done / total if total else 0
    bar = "█" * round(pct / 5) + "░" * (20 - round(pct / 5))
    progress = f"**{name}** ({state.kind}) {status}: `{bar}` {done}/{total} {unit} ({pct:.0f} %)"
    metrics = jobs.read_metrics(manager.run_dir(name), state.kind) if state.kind != "synvid" else \
        pd.DataFrame(columns=METRIC_COLUMNS)
    record = jobs.read_watchdog(manager.run_dir(name)) if state.kind != "synvid" else {}
    return JobView(manager.log_tail(name), progress, loss_figure(metrics, name), status, state.command,
                   record.get("clip"), watchdog_note(record) if state.kind != "synvid" else "")


@dataclass
class DistilSnapshot:
    """The Distil tab at one moment: the selected job's view, the runs table and the run lists."""

    view: JobView
    table: pd.DataFrame
    run_names: list[str] = field(default_factory=list)
    synvid_runs: list[str] = field(default_factory=list)


def distil_snapshot(manager: JobManager, name) -> DistilSnapshot:
    """Everything the refresh timer shows, read from the runs folder; it writes nothing (runs.csv is
    rewritten by the manager on state changes only). A name that is not a run shows no job."""
    states = manager.runs()
    names = [s.name for s in states]
    view = job_view(manager, name if name in names else None)
    synvid = [s.name for s in states if s.kind == "synvid" and s.status == "finished"]
    return DistilSnapshot(view, manager.table(), names, synvid)
