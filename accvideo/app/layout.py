"""The Gradio UI: Compare, Toy, Distil and Models tabs. It holds no tensor code.

Handlers are plain functions (`compare_models`, `toy_update`, `launch_job`, `list_models`, ...)
that call what the CLI calls (`inference.generate`, `toy.api.run_toy`, `jobs.build_command`)
and raise `ValueError` naming the argument, the rule and the value; thin `_ui_*` wrappers
turn those into `gr.Error` sentences and gradio updates. Heavy work (generation) goes through
one queue with `concurrency_limit=1` plus a lock, so concurrent requests wait, not fight for
the cores; every request writes its own output files.
"""

from __future__ import annotations

import math
import os
import random
import tempfile
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr
import pandas as pd
import plotly.graph_objects as go
from tqdm.auto import tqdm

from accvideo.data.procedural import TRAIN_COMBOS, prompt_for
from accvideo.inference import generate, write_mp4
from accvideo.models import registry
from accvideo.models.registry import ASSETS, BUNDLED, load_pipeline, read_sampling_defaults, resolve_model

from . import jobs

OUTPUT_DIR = Path(tempfile.gettempdir()) / "accvideo-outputs"
EXAMPLE_PROMPTS = [prompt_for(*c) for c in TRAIN_COMBOS[::11]]
STAGES = ("text_encoder", "denoising", "vae_decode")
MAX_STUDENTS = 3  # video slots beside the teacher's
MAX_SEED = 2**32 - 1
_generate_lock = threading.Lock()  # one generation at a time: the queue does the waiting


# --------------------------------------------------------------------------- input checks


def _check_seed(seed) -> int:
    """An integer in [0, 2**32 - 1], or -1 for a random one."""
    try:
        value = float(seed)
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value) or value != int(value) or not -1 <= value <= MAX_SEED:
        raise ValueError(f"`seed` must be an integer in [0, {MAX_SEED}] (or -1 for a random one) but is {seed!r}.")
    return random.randint(0, 2**31 - 1) if int(value) == -1 else int(value)


def _check_int(value, name: str, low: int, high: int) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number) or number != int(number) or not low <= number <= high:
        raise ValueError(f"`{name}` must be an integer in [{low}, {high}] but is {value!r}.")
    return int(number)


def _check_prompt(prompt) -> str:
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError(f"`prompt` must be a non-empty string but is {prompt!r}.")
    return prompt.strip()


def training_allowed() -> bool:
    """On a public Space (SPACE_ID set) the Distil tab is read-only unless ACCVIDEO_ENABLE_TRAINING=1."""
    return not os.environ.get("SPACE_ID") or os.environ.get("ACCVIDEO_ENABLE_TRAINING") == "1"


# --------------------------------------------------------------------------- single generation


def generate_video(model: str, prompt: str, seed, steps, guidance) -> tuple[str, pd.DataFrame, int]:
    """One model, one video: returns (mp4 path, timing table, seed). Raises ValueError on bad input."""
    if seed is None or float(seed) != int(float(seed)):
        raise ValueError(f"`seed` must be an integer but is {seed!r}.")
    if steps is None or float(steps) != int(float(steps)):
        raise ValueError(f"`steps` must be an integer but is {steps!r}.")
    pipe = load_pipeline(model)
    with _generate_lock:
        result = generate(pipe, prompt, seed=int(float(seed)), num_steps=int(float(steps)),
                          guidance_scale=float(guidance))
    path = _output_path(model, result.seed)
    write_mp4(result.video, path)
    t = result.timings
    table = pd.DataFrame([{"stage": s, "seconds": round(t[s], 4), "share %": round(100 * t[s] / t["total"], 1)}
                          for s in (*STAGES, "total")])
    return str(path), table, result.seed


def _output_path(label: str, seed: int) -> Path:
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in str(label))[-48:]
    return OUTPUT_DIR / f"{safe}-{seed}-{uuid.uuid4().hex[:10]}.mp4"  # every request its own file


# --------------------------------------------------------------------------- compare


def available_students(manager: jobs.JobManager | None = None) -> dict[str, str]:
    """Student label -> model reference: bundled models whose sampling role is `student`
    (tiny-accvideo, tiny-gpd once bundled, ...) plus finished distillation runs ('run:NAME')."""
    found: dict[str, str] = {}
    for name, folder in sorted(BUNDLED.items()):
        try:
            defaults = read_sampling_defaults(ASSETS / folder)
        except ValueError:
            continue
        if defaults.get("role") == "student" and (ASSETS / folder / "model_index.json").exists():
            found[name] = name
    if manager is not None:
        found.update({label: str(folder) for label, folder in manager.students().items()})
    return found


@dataclass
class CompareResult:
    """videos: (label, mp4 path) teacher first; table: one row per model with per-stage seconds,
    NFE and speedup (teacher total / model total); figure: plotly stacked bar of the stages."""

    videos: list[tuple[str, str]] = field(default_factory=list)
    table: pd.DataFrame | None = None
    figure: go.Figure | None = None
    seed: int = 0


def _timed_video(model_ref: str, label: str, prompt: str, seed: int, steps: int | None) -> tuple[dict, str]:
    pipe = load_pipeline(model_ref)
    defaults = pipe.accvideo_sampling
    num_steps = steps if steps is not None else len(defaults["sigmas"]) - 1 if defaults.get("sigmas") \
        else defaults.get("num_steps", 50)
    bar = tqdm(total=num_steps, desc=label, leave=False)  # gr.Progress(track_tqdm=True) shows this bar

    def step(i, n, sigma_next, x):
        bar.update(1)

    try:
        result = generate(pipe, prompt, seed=seed, num_steps=steps, callback=step)
    finally:
        bar.close()
    path = _output_path(label, seed)
    write_mp4(result.video, path)
    row = {"model": label, "steps": result.num_steps, "nfe": result.nfe,
           **{f"{s}_s": round(result.timings[s], 4) for s in (*STAGES, "total")}}
    return row, str(path)


def timing_figure(table: pd.DataFrame) -> go.Figure:
    """Stacked bars: seconds per stage for each model."""
    fig = go.Figure()
    for stage in STAGES:
        fig.add_bar(name=stage.replace("_", " "), x=table["model"], y=table[f"{stage}_s"])
    fig.update_layout(barmode="stack", yaxis_title="seconds", height=320, margin=dict(l=40, r=10, t=30, b=30),
                      title="Time per stage")
    return fig


def compare_models(prompt, seed, teacher_steps, students, teacher: str = "tiny-teacher",
                   manager: jobs.JobManager | None = None) -> CompareResult:
    """Run the teacher at `teacher_steps` and each chosen student at its own saved steps, on one prompt
    and seed. Raises ValueError for an empty prompt, a bad seed or step count, or an unknown student."""
    prompt = _check_prompt(prompt)
    seed = _check_seed(seed)
    teacher_steps = _check_int(teacher_steps, "teacher_steps", 1, 200)
    students = list(students or [])
    known = available_students(manager)
    for name in students:
        if name not in known:
            raise ValueError(f"`students` must be chosen from {sorted(known)} but include {name!r}.")
    if len(students) > MAX_STUDENTS:
        raise ValueError(f"`students` must hold at most {MAX_STUDENTS} models but holds {len(students)}.")
    resolve_model(teacher)  # a missing teacher fails before any work
    rows, videos = [], []
    with _generate_lock:
        for label, ref, steps in [(f"{Path(str(teacher)).name} (teacher)", teacher, teacher_steps),
                                  *[(name, known[name], None) for name in students]]:
            row, path = _timed_video(ref, label, prompt, seed, steps)
            rows.append(row)
            videos.append((f"{label}: {row['steps']} steps, {row['total_s']:.2f} s", path))
    table = pd.DataFrame(rows)
    table["speedup"] = (table["total_s"].iloc[0] / table["total_s"]).round(2)
    return CompareResult(videos=videos, table=table, figure=timing_figure(table), seed=seed)


try:  # on a ZeroGPU Space, generation runs inside a GPU slot (the tiny models also run on its CPU)
    import spaces

    compare_models_gpu = spaces.GPU(duration=120)(compare_models)
except ImportError:
    compare_models_gpu = compare_models


# --------------------------------------------------------------------------- toy


def toy_update(M, noise_mismatch, lower, upper, num_points) -> tuple[dict, str]:
    """Run the 1D toy (paper Fig. 2) for the slider values: (plotly figures by name, summary markdown)."""
    from toy.api import ToyConfig, run_toy

    config = ToyConfig(M=float(M), noise_mismatch=bool(noise_mismatch), positions=(float(lower), float(upper)),
                       num_points=_check_int(num_points, "num_points", 50, 20_000))
    result = run_toy(config)
    s = result.summary
    summary = (f"**M = {s['M']:g}**, noise mismatch {'on' if s['noise_mismatch'] else 'off'}: "
               f"{100 * s['useless_forward_diffusion']:.1f} % of forward-diffusion distillation points are useless "
               f"({s['num_useless_forward_diffusion']} of {s['num_distillation_points']}), "
               f"{100 * s['useless_trajectory']:.1f} % of teacher-trajectory points. ({result.seconds:.2f} s)")
    return result.figures, summary


# --------------------------------------------------------------------------- models


def list_models(manager: jobs.JobManager | None = None) -> pd.DataFrame:
    """Models this app can use: bundled tiny models with their folders and provenance, finished runs,
    and real checkpoints when the registry reports them (local or Hugging Face cache, else what to download)."""
    rows = []
    for name, folder in sorted(BUNDLED.items()):
        path = ASSETS / folder
        try:
            defaults = read_sampling_defaults(path)
        except ValueError as err:
            defaults = {"role": f"broken: {err}"}
        provenance = read_provenance(path)
        rows.append({"model": name, "source": "bundled", "role": defaults.get("role", "teacher"),
                     "steps": defaults.get("num_steps"), "available": (path / "model_index.json").exists(),
                     "where": str(path), "how to get it": provenance.get("command") or "in git (assets/)",
                     "provenance": provenance_line(provenance)})
    if manager is not None:
        for label, folder in manager.students().items():
            defaults = read_sampling_defaults(folder)
            rows.append({"model": label, "source": "run", "role": "student", "steps": defaults.get("num_steps"),
                         "available": True, "where": str(folder), "how to get it": "Distil tab"})
    rows += _real_model_rows()
    # provenance before the long columns, so it shows without scrolling the table sideways
    return pd.DataFrame(rows, columns=["model", "source", "role", "steps", "available", "provenance", "where",
                                       "how to get it"]).fillna({"provenance": ""})


def read_provenance(folder: Path) -> dict:
    """A bundled model's provenance.json ({} when absent or unreadable: the table still lists it)."""
    import json

    try:
        return json.loads((folder / "provenance.json").read_text())
    except (OSError, ValueError):
        return {}


def provenance_line(provenance: dict) -> str:
    """One line from provenance.json: commit, the stage's wall time, scores and bench time."""
    parts = []
    if provenance.get("bundled_at_commit"):
        parts.append(f"commit {provenance['bundled_at_commit'][:10]}")
    pipeline_wall = (provenance.get("reproduce") or {}).get("pipeline_wall_s")
    if pipeline_wall:
        parts.append(f"reproduce run {pipeline_wall / 60:.1f} min in all")
    if provenance.get("wall_s"):
        parts.append(f"trained in {provenance['wall_s'] / 60:.1f} min")
    scores = provenance.get("scores") or {}
    if "procbench_train" in scores:
        held = f" (held out {scores['procbench_heldout']:.2f})" if "procbench_heldout" in scores else ""
        parts.append(f"ProcBench {scores['procbench_train']:.2f}{held}")
    if scores.get("bench_total_s"):
        parts.append(f"{scores['bench_total_s']:.3f} s per video")
    if provenance.get("seed") is not None:
        parts.append(f"seed {provenance['seed']}")
    return "; ".join(parts)


def _real_model_rows() -> list[dict]:
    """Real checkpoints from the registry's `model_status()` / `real_models()` when it has them."""
    status = getattr(registry, "model_status", None) or getattr(registry, "real_models", None)
    if status is None:  # the real-model registry may live beside registry.py, in models/real.py
        try:
            import importlib

            real = importlib.import_module("accvideo.models.real")
            status = getattr(real, "model_status", None) or getattr(real, "real_models", None)
        except ImportError:
            status = None
    if status is None:
        return []
    try:
        found = status()
    except Exception as err:  # a registry problem must not take the tab down
        return [{"model": "real checkpoints", "source": "registry", "role": "", "steps": None,
                 "available": False, "where": "", "how to get it": f"registry error: {err}"}]
    if isinstance(found, pd.DataFrame):
        found = found.to_dict("records")
    elif isinstance(found, dict):
        found = [{"name": k, **(v if isinstance(v, dict) else {"status": v})} for k, v in found.items()]
    rows = []
    for item in found or []:
        item = item if isinstance(item, dict) else vars(item) if hasattr(item, "__dict__") else {"name": str(item)}
        where = item.get("path") or item.get("local_path") or item.get("where") or ""
        available = bool(item.get("available", item.get("present", bool(where))))
        download = item.get("download") or item.get("download_command") or item.get("hint", "")
        if isinstance(download, list | tuple):
            download = "; ".join(download)
        rows.append({"model": item.get("name") or item.get("model", "?"), "source": "real",
                     "role": item.get("role", ""), "steps": item.get("num_steps"), "available": available,
                     "where": str(where), "how to get it": "" if available else download})
    return rows


# --------------------------------------------------------------------------- jobs


def launch_job(manager: jobs.JobManager, kind: str, **fields) -> jobs.JobState:
    """Validate the form fields of a `kind` job and start it; ValueError names a bad field."""
    if not training_allowed():
        raise ValueError("training is disabled on this public Space (set ACCVIDEO_ENABLE_TRAINING=1 to allow it).")
    return manager.launch(jobs.make_spec(kind, **fields))


def loss_figure(metrics: pd.DataFrame, name: str = "") -> go.Figure:
    fig = go.Figure()
    for series, group in metrics.groupby("series", sort=False):
        fig.add_scatter(x=group["step"], y=group["loss"], mode="lines+markers", name=series)
    fig.update_layout(title=f"loss {name}".strip(), xaxis_title="step", yaxis_title="loss", height=320,
                      margin=dict(l=40, r=10, t=30, b=30))
    return fig


@dataclass
class JobView:
    log: str
    progress: str
    figure: go.Figure
    status: str
    command: str


def job_view(manager: jobs.JobManager, name) -> JobView:
    """Log tail, progress text, loss plot and status of one run."""
    if not name:
        return JobView("", "no job selected", loss_figure(pd.DataFrame(columns=["step", "series", "loss"])), "", "")
    state = manager.state(name)
    done, total = manager.progress(name)
    status = next((s.status for s in manager.runs() if s.name == name), state.status)
    unit = "samples" if state.kind == "synvid" else "steps"
    pct = 100 * done / total if total else 0
    bar = "█" * round(pct / 5) + "░" * (20 - round(pct / 5))
    progress = f"**{name}** ({state.kind}) {status}: `{bar}` {done}/{total} {unit} ({pct:.0f} %)"
    metrics = jobs.read_metrics(manager.run_dir(name), state.kind) if state.kind != "synvid" else \
        pd.DataFrame(columns=["step", "series", "loss"])
    return JobView(manager.log_tail(name), progress, loss_figure(metrics, name), status, state.command)


# --------------------------------------------------------------------------- the app


def _errors(fn):
    """Call `fn`; a ValueError becomes gr.Error with its sentence."""
    def call(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ValueError as err:
            raise gr.Error(str(err)) from err
    return call


def build_app(default_model: str = "tiny-teacher", runs_dir: str | Path | None = None,
              max_queue: int = 32) -> gr.Blocks:
    """The four-tab app. `default_model` is the teacher of Compare; jobs live in `runs_dir`."""
    manager = jobs.JobManager(runs_dir)
    try:
        teacher_default_steps = read_sampling_defaults(resolve_model(default_model)).get("num_steps", 50)
    except ValueError:
        teacher_default_steps = 50
    can_train = training_allowed()

    def student_update(selected=None):
        choices = list(available_students(manager))
        value = [s for s in (selected if selected is not None else choices[:2]) if s in choices]
        return gr.update(choices=choices, value=value)

    # ---- compare
    def ui_compare(prompt, seed, teacher_steps, students, progress=gr.Progress(track_tqdm=True)):
        result = _errors(compare_models_gpu)(prompt, seed, teacher_steps, students, teacher=default_model,
                                             manager=manager)
        # plain paths keep the API's answer clean; labels and visibility follow in `show_slots`
        paths = [path for _, path in result.videos] + [None] * (1 + MAX_STUDENTS - len(result.videos))
        labels = [label for label, _ in result.videos]
        speedups = ", ".join(f"{m}: **{s:.2f}x**" for m, s in zip(result.table["model"][1:],
                                                                    result.table["speedup"][1:]))
        note = f"Speedup over the teacher (end to end): {speedups}" if speedups else "No student chosen."
        return (*paths, result.table, result.figure, result.seed, note, labels)

    def show_slots(labels):
        return [gr.update(label=labels[i], visible=True) if i < len(labels) else gr.update(visible=False)
                for i in range(1 + MAX_STUDENTS)]

    # ---- toy
    def ui_toy(M, noise_mismatch, lower, upper, num_points):
        figures, summary = _errors(toy_update)(M, noise_mismatch, lower, upper, num_points)
        return (figures["trajectories"], figures["useless_vs_M"], figures["student_results"],
                figures["distribution_matching"], summary)

    # ---- distil
    def run_choices(selected=None):
        names = [s.name for s in manager.runs()]
        return gr.update(choices=names, value=selected if selected in names else (names[0] if names else None))

    def refresh(name):
        view = _errors(job_view)(manager, name) if name in [s.name for s in manager.runs()] or not name \
            else job_view(manager, None)
        return (view.log, view.progress, view.figure, manager.save_table(), gr.update(choices=manager.synvid_runs()),
                gr.update(choices=[s.name for s in manager.runs()]))

    def ui_launch(kind, *values):
        fields = dict(zip(FORM_FIELDS[kind], values))
        state = _errors(launch_job)(manager, kind, **fields)
        gr.Info(f"launched {state.name}")
        return state.command, run_choices(state.name)

    def ui_stop(name):
        if not can_train:
            raise gr.Error("training is disabled on this public Space.")
        state = _errors(manager.stop)(name)
        return state.command

    def ui_resume(name):
        if not can_train:
            raise gr.Error("training is disabled on this public Space.")
        state = _errors(manager.resume)(name)
        return state.command

    def ui_load_student(name, selected):
        label = f"run:{name}" if name else ""
        if label not in available_students(manager):
            raise gr.Error(f"`run` must be a finished distillation run with a student but is {name!r}.")
        selected = [s for s in (selected or []) if s != label][: MAX_STUDENTS - 1] + [label]
        return student_update(selected), gr.Tabs(selected="compare")

    with gr.Blocks(title="AccVideo Workbench") as demo:
        gr.Markdown("# AccVideo Workbench\nFew-step video diffusion, real and explorable: a slow teacher and its "
                    "distilled few-step students side by side, the paper's 1D toy, and the distillation backend.")
        with gr.Tabs() as tabs:
            with gr.Tab("Compare", id="compare"):
                with gr.Row():
                    with gr.Column(scale=1):
                        prompt = gr.Textbox(value=EXAMPLE_PROMPTS[0], label="Prompt")
                        gr.Examples(EXAMPLE_PROMPTS, inputs=prompt)
                        seed = gr.Number(value=0, precision=0, label="Seed (-1: random)")
                        teacher_steps = gr.Slider(1, 200, value=teacher_default_steps, step=1,
                                                  label="Teacher steps")
                        # custom values allowed so an API caller can name a run finished after the page
                        # was built; compare_models checks every name against the students found
                        students = gr.Dropdown(label="Students", multiselect=True, allow_custom_value=True,
                                               elem_id="students", **{
                                                   k: v for k, v in student_update().items()
                                                   if k in ("choices", "value")})
                        compare_button = gr.Button("Compare", variant="primary")
                    with gr.Column(scale=3):
                        with gr.Row():
                            video_slots = [gr.Video(label="teacher", autoplay=True, loop=True, height=256)]
                            video_slots += [gr.Video(label=f"student {i + 1}", autoplay=True, loop=True,
                                                     height=256, visible=False) for i in range(MAX_STUDENTS)]
                        speedup_note = gr.Markdown(elem_id="speedup")
                        timing_table = gr.Dataframe(label="Time per stage (s), NFE and speedup", elem_id="timing")
                        timing_plot = gr.Plot(label="Timing", elem_id="timing-plot")
                        used_seed = gr.Number(label="Seed used", precision=0, interactive=False)
                slot_labels = gr.State([])
                compare_button.click(ui_compare, [prompt, seed, teacher_steps, students],
                                     [*video_slots, timing_table, timing_plot, used_seed, speedup_note, slot_labels],
                                     api_name="compare", concurrency_limit=1, concurrency_id="generate"
                                     ).then(show_slots, slot_labels, video_slots, api_name=False, queue=False)

            with gr.Tab("Toy", id="toy") as toy_tab:
                gr.Markdown("The paper's Fig. 2 in 1D: a flow-matching teacher on two data points. Knowledge "
                            "distillation by forward diffusion makes *useless* points once the student's data "
                            "mismatches the teacher's (M) or noise is paired at random; the teacher's own "
                            "trajectories never do.")
                with gr.Row():
                    toy_M = gr.Slider(0, 5, value=1.0, step=0.05, label="Dataset mismatch M")
                    toy_noise = gr.Checkbox(value=False, label="Gaussian-noise mismatch")
                    toy_lower = gr.Slider(-3, -0.1, value=-1.0, step=0.1, label="Data position (lower)")
                    toy_upper = gr.Slider(0.1, 3, value=1.0, step=0.1, label="Data position (upper)")
                    toy_points = gr.Slider(200, 5000, value=1000, step=100, label="Sample count")
                toy_summary = gr.Markdown(elem_id="toy-summary")
                # one figure per row: the toy's multi-panel figures need the width
                toy_traj = gr.Plot(label="Teacher trajectories and distillation points", elem_id="toy-traj")
                toy_useless = gr.Plot(label="Useless points vs M")
                toy_students = gr.Plot(label="Students")
                toy_dm = gr.Plot(label="Distribution matching")
                toy_inputs = [toy_M, toy_noise, toy_lower, toy_upper, toy_points]
                toy_outputs = [toy_traj, toy_useless, toy_students, toy_dm, toy_summary]
                for slider in (toy_M, toy_lower, toy_upper, toy_points):
                    slider.release(ui_toy, toy_inputs, toy_outputs, api_name=False, concurrency_id="toy",
                                   trigger_mode="always_last")
                toy_noise.change(ui_toy, toy_inputs, toy_outputs, api_name=False, concurrency_id="toy")
                toy_tab.select(ui_toy, toy_inputs, toy_outputs, api_name=False, concurrency_id="toy")
                toy_button = gr.Button("Update toy", size="sm")
                toy_button.click(ui_toy, toy_inputs, toy_outputs, api_name="toy", concurrency_id="toy")

            with gr.Tab("Distil", id="distil"):
                gpus = jobs.local_gpus()
                gr.Markdown(f"Launch the same command a user would type. This machine: **{gpus} GPU(s)**"
                            + ("" if gpus else ", so jobs run on the CPU (several processes use gloo)")
                            + f". Runs live in `{manager.runs_dir}`."
                            + ("" if can_train else "\n\n**Read-only on this public Space**: set "
                               "`ACCVIDEO_ENABLE_TRAINING=1` to launch jobs."))
                teachers = jobs.teacher_models() or ["tiny-teacher"]
                nproc_max = jobs.max_processes()
                forms: dict[str, list] = {}
                buttons = {}
                with gr.Tabs():
                    with gr.Tab("SynVid"):
                        forms["synvid"] = [
                            gr.Textbox("synvid-1", label="Run name", elem_id="synvid-name"),
                            gr.Dropdown(teachers, value=teachers[0], label="Teacher"),
                            gr.Dropdown(["train", "heldout", "all"], value="train", label="Preset (prompts)"),
                            gr.Number(50, precision=0, label="Teacher steps n"),
                            gr.Number(1, precision=0, label="Samples per prompt"),
                            gr.Dropdown(["all", "key:5", "key:10"], value="all", label="Stored states"),
                            gr.Number(1, precision=0, label=f"Processes (1-{nproc_max})"),
                        ]
                        buttons["synvid"] = gr.Button("Launch SynVid", interactive=can_train)
                    with gr.Tab("AccVideo"):
                        forms["accvideo"] = [
                            gr.Textbox("accvideo-1", label="Run name", elem_id="accvideo-name"),
                            gr.Dropdown(manager.synvid_runs(), label="SynVid run", allow_custom_value=True),
                            gr.Dropdown(teachers, value=teachers[0], label="Teacher"),
                            gr.Number(800, precision=0, label="Steps"),
                            gr.Number(5, precision=0, label="Student steps m"),
                            gr.Number(2e-4, label="Learning rate"),
                            gr.Number(8, precision=0, label="Batch size"),
                            gr.Number(1, precision=0, label=f"Processes (1-{nproc_max})"),
                        ]
                        buttons["accvideo"] = gr.Button("Launch AccVideo", interactive=can_train)
                    with gr.Tab("GPD"):
                        forms["gpd"] = [
                            gr.Textbox("gpd-1", label="Run name", elem_id="gpd-name"),
                            gr.Textbox("48,24,12,6", label="Schedule (teacher steps, then each stage's)",
                                       elem_id="gpd-schedule"),
                            gr.Dropdown(teachers, value=teachers[0], label="Teacher"),
                            gr.Number(300, precision=0, label="Steps per stage", elem_id="gpd-steps"),
                            gr.Number(1e-4, label="Learning rate"),
                            gr.Number(8, precision=0, label="Batch size", elem_id="gpd-batch"),
                            gr.Number(1, precision=0, label=f"Processes (1-{nproc_max})"),
                        ]
                        buttons["gpd"] = gr.Button("Launch GPD", interactive=can_train)
                command = gr.Textbox(label="Command", interactive=False, elem_id="job-command")
                with gr.Row():
                    job_name = gr.Dropdown([s.name for s in manager.runs()], label="Job", elem_id="job-select",
                                           allow_custom_value=True)
                    stop_button = gr.Button("Stop", interactive=can_train)
                    resume_button = gr.Button("Resume", interactive=can_train)
                    load_button = gr.Button("Load student into Compare", variant="primary")
                job_progress = gr.Markdown(elem_id="job-progress")
                with gr.Row():
                    job_log = gr.Textbox(label="Log (tail)", lines=14, max_lines=14, autoscroll=True)
                    loss_plot = gr.Plot(label="Loss")
                runs_table = gr.Dataframe(manager.table(), label=f"Runs ({manager.runs_dir / jobs.TABLE_FILE})",
                                          interactive=False, elem_id="runs-table")
                for kind, button in buttons.items():
                    button.click(lambda *v, kind=kind: ui_launch(kind, *v), forms[kind], [command, job_name],
                                 api_name=f"launch_{kind}", concurrency_id="jobs")
                view_outputs = [job_log, job_progress, loss_plot, runs_table, forms["accvideo"][1], job_name]
                job_name.change(refresh, [job_name], view_outputs, api_name=False, concurrency_id="jobs")
                stop_button.click(ui_stop, [job_name], [command], api_name="stop_job", concurrency_id="jobs")
                resume_button.click(ui_resume, [job_name], [command], api_name="resume_job", concurrency_id="jobs")
                load_button.click(ui_load_student, [job_name, students], [students, tabs], api_name="load_student",
                                  concurrency_id="jobs")
                timer = gr.Timer(2.0)
                timer.tick(refresh, [job_name], view_outputs, api_name=False, concurrency_id="jobs",
                           show_progress="hidden")

            with gr.Tab("Models", id="models"):
                gr.Markdown("Models this app can use. Bundled tiny models ship in `assets/` (no download); "
                            "finished runs appear as `run:NAME`; real checkpoints show where they were found "
                            "(a local folder or the Hugging Face cache) or what to download.")
                models_table = gr.Dataframe(list_models(manager), label="Models", interactive=False,
                                            elem_id="models-table", wrap=True)
                models_button = gr.Button("Refresh", size="sm")
                models_button.click(lambda: list_models(manager), None, [models_table], api_name="models")

        demo.load(lambda: (student_update(), list_models(manager)), None, [students, models_table], api_name=False)
    demo.queue(max_size=max_queue, default_concurrency_limit=1)
    return demo


FORM_FIELDS = {
    "synvid": ["name", "teacher", "preset", "num_steps", "samples_per_prompt", "store", "nproc"],
    "accvideo": ["name", "synvid_run", "teacher", "steps", "m", "lr", "batch_size", "nproc"],
    "gpd": ["name", "schedule", "teacher", "steps", "lr", "batch_size", "nproc"],
}
