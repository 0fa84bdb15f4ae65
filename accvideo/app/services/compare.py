"""Compare: the teacher and its students on one prompt and seed, with seconds per stage and speedup.

It calls what `python -m accvideo generate` calls (`generate`, `write_mp4`). Generation runs one
at a time under `GENERATE_LOCK` (the layout's queue does the waiting), and every request writes
its own mp4, so concurrent requests never overwrite each other's videos.
"""

from __future__ import annotations

import tempfile
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
from tqdm.auto import tqdm

from accvideo.generation import generate, resolve_sampling
from accvideo.media import write_mp4
from accvideo.models.registry import load_model, read_sampling_defaults, resolve_model
from accvideo.util.checks import check_int, check_prompt, check_seed

# lower layers (their paths change with the layout step; keep them in this one block)
from accvideo.world import TRAIN_COMBOS, prompt_for

from ..jobs import JobManager
from .models import available_students

OUTPUT_DIR = Path(tempfile.gettempdir()) / "accvideo-outputs"
EXAMPLE_PROMPTS = [prompt_for(*c) for c in TRAIN_COMBOS[::11]]
STAGES = ("text_encoder", "denoising", "vae_decode")
MAX_STUDENTS = 3  # student video slots beside the teacher's and the naive teacher's
NUM_SLOTS = 2 + MAX_STUDENTS
GENERATE_LOCK = threading.Lock()  # one generation at a time: the cores are shared, the queue waits


def output_path(label: str, seed: int) -> Path:
    """A new mp4 path in OUTPUT_DIR for `label` and `seed`: every request its own file."""
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in str(label))[-48:]
    return OUTPUT_DIR / f"{safe}-{seed}-{uuid.uuid4().hex[:10]}.mp4"


def teacher_default_steps(model: str) -> int:
    """The saved sampling steps of `model` (the Compare tab's slider starts there), 50 when unreadable."""
    try:
        return read_sampling_defaults(resolve_model(model)).get("num_steps", 50)
    except ValueError:
        return 50


def naive_default_steps(students: list[str], manager: JobManager | None = None) -> int:
    """The saved steps of the first of `students` (the naive teacher's default in Compare), 0 without one."""
    known = available_students(manager)
    for name in students or []:
        if name in known:
            try:
                return int(read_sampling_defaults(resolve_model(known[name])).get("num_steps", 0))
            except ValueError:
                return 0
    return 0


def generate_video(model: str, prompt: str, seed, steps, guidance) -> tuple[str, pd.DataFrame, int]:
    """One model, one video: returns (mp4 path, timing table, seed). Raises ValueError on bad input."""
    if seed is None or float(seed) != int(float(seed)):
        raise ValueError(f"`seed` must be an integer but is {seed!r}.")
    if steps is None or float(steps) != int(float(steps)):
        raise ValueError(f"`steps` must be an integer but is {steps!r}.")
    pipe = load_model(model)
    with GENERATE_LOCK:
        result = generate(pipe, prompt, seed=int(float(seed)), num_steps=int(float(steps)),
                          guidance_scale=float(guidance))
    path = output_path(model, result.seed)
    write_mp4(result.video, path)
    t = result.timings
    table = pd.DataFrame([{"stage": s, "seconds": round(t[s], 4), "share %": round(100 * t[s] / t["total"], 1)}
                          for s in (*STAGES, "total")])
    return str(path), table, result.seed


@dataclass
class CompareResult:
    """videos: (label, mp4 path) teacher first; table: one row per model with per-stage seconds,
    NFE and speedup (teacher total / model total); figure: plotly stacked bar of the stages."""

    videos: list[tuple[str, str]] = field(default_factory=list)
    table: pd.DataFrame | None = None
    figure: go.Figure | None = None
    seed: int = 0


def _timed_video(model_ref: str, label: str, prompt: str, seed: int, steps: int | None) -> tuple[dict, str]:
    model = load_model(model_ref)
    spec = resolve_sampling(model, num_steps=steps)  # None: the model's saved steps (a student's schedule)
    bar = tqdm(total=spec.num_steps, desc=label, leave=False)  # gr.Progress(track_tqdm=True) shows this bar

    def step(i, n, sigma_next, x):
        bar.update(1)

    try:
        result = generate(model, prompt, seed=seed, spec=spec, callback=step)
    finally:
        bar.close()
    path = output_path(label, seed)
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


def speedup_note(table: pd.DataFrame) -> str:
    """Markdown: each other row's end-to-end speedup over the teacher (the table's first row)."""
    speedups = ", ".join(f"{m}: **{s:.2f}x**" for m, s in zip(table["model"][1:], table["speedup"][1:]))
    return f"Speedup over the teacher (end to end): {speedups}" if speedups else "No student chosen."


def compare_models(prompt, seed, teacher_steps, students, naive_steps=0, teacher: str = "tiny-teacher",
                   manager: JobManager | None = None) -> CompareResult:
    """Run the teacher at `teacher_steps`, the same teacher at `naive_steps` (no distillation; 0:
    left out) and each chosen student at its own saved steps, on one prompt and seed. The naive
    row is what a student must beat: the teacher simply sampled with as few steps. Raises
    ValueError for an empty prompt, a bad seed or step count, or an unknown student."""
    prompt = check_prompt(prompt)
    seed = check_seed(seed)
    teacher_steps = check_int(teacher_steps, "teacher_steps", 1, 200)
    naive_steps = check_int(0 if naive_steps is None else naive_steps, "naive_steps", 0, 200)
    students = list(students or [])
    known = available_students(manager)
    for name in students:
        if name not in known:
            raise ValueError(f"`students` must be chosen from {sorted(known)} but include {name!r}.")
    if len(students) > MAX_STUDENTS:
        raise ValueError(f"`students` must hold at most {MAX_STUDENTS} models but holds {len(students)}.")
    resolve_model(teacher)  # a missing teacher fails before any work
    rows, videos = [], []
    with GENERATE_LOCK:
        name = Path(str(teacher)).name
        naive = [(f"{name} at {naive_steps} steps (no distillation)", teacher, naive_steps)] if naive_steps else []
        for label, ref, steps in [(f"{name} (teacher)", teacher, teacher_steps), *naive,
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
