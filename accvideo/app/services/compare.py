"""Compare: the teacher and its students on one prompt and seed, with seconds per stage and speedup.

It calls what `python -m accvideo generate` calls (`generate`, `write_mp4`). Generation runs one
at a time under `GENERATE_LOCK` (the layout's queue does the waiting), and every request writes
its own mp4, so concurrent requests never overwrite each other's videos.

Every model of one comparison makes the same video size: the first chosen student's saved frames,
height and width (the teacher's own without a student), so the speedup compares like with like;
a real teacher's own default (129 x 720x1280 for HunyuanVideo) would otherwise time a far larger
video than its student's (93 x 544x960). Real checkpoints load with the app's `RealModelOptions`
(device, dtype, offload, VAE tiling); the tiny models stay on the CPU in fp32.
"""

from __future__ import annotations

import tempfile
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from tqdm.auto import tqdm

from accvideo.generation import generate, resolve_sampling
from accvideo.media import write_mp4
from accvideo.models.registry import load_model, read_sampling_defaults, resolve_model
from accvideo.util.checks import check_int, check_prompt, check_seed

from ..jobs import JobManager
from .models import RealModelOptions, available_students, is_real
from .prompts import EXAMPLE_PROMPTS, prompt_warning

OUTPUT_DIR = Path(tempfile.gettempdir()) / "accvideo-outputs"
__all__ = ["EXAMPLE_PROMPTS", "compare_models", "compare_models_gpu", "speedup_note"]
STAGES = ("text_encoder", "denoising", "vae_decode")
MAX_STUDENTS = 3  # student video slots beside the teacher's and the naive teacher's
NUM_SLOTS = 2 + MAX_STUDENTS
REPEATS = 3  # timed rounds per Compare, after one warm-up: one run's speedup varied 1.9x-18.3x
REAL_REPEATS = 1  # with a real model: one video takes minutes on a GPU, and the GPU is not shared
SIZE_KEYS = ("num_frames", "height", "width")
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
    NFE and speedup (teacher total / model total); figure: plotly stacked bar of the stages;
    warning: markdown naming the prompt's words a model cannot read ('' when it reads them all)."""

    videos: list[tuple[str, str]] = field(default_factory=list)
    table: pd.DataFrame | None = None
    figure: go.Figure | None = None
    seed: int = 0
    warning: str = ""  # the words of the prompt a model cannot read (`prompts.prompt_warning`), '' if none
    size: dict = field(default_factory=dict)  # {num_frames, height, width} of every video ({}: each its own)


def compare_size(students: list[str], known: dict[str, str]) -> dict:
    """The video size of a comparison: {num_frames, height, width} saved with the first of
    `students` ({} without one: every model its own, the teacher's). ValueError if unreadable."""
    if not students:
        return {}
    saved = read_sampling_defaults(resolve_model(known[students[0]]))
    return {k: int(saved[k]) for k in SIZE_KEYS if saved.get(k) is not None}


def _timed_runs(entries: list[tuple[str, str, int | None]], prompt: str, seed: int, repeats: int,
                size: dict | None = None, options: RealModelOptions | None = None) -> tuple[list[dict], list[str]]:
    """Time every (label, model, steps) of `entries`: one untimed warm-up each, then `repeats`
    interleaved rounds (each model once per round), so a load spike on the shared cores hits
    every model alike. Every model makes a video of `size` ({num_frames, height, width}; {}: its
    own); real models load with `options`. Rows hold the median seconds per stage, the total's
    min and max, and `ratios`: the teacher's (first entry's) total over this model's, one per
    round. Returns (rows, mp4 paths of the last round's videos)."""
    options = options or RealModelOptions()
    models = [(label, load_model(ref, **options.load_kwargs(ref))) for label, ref, _ in entries]
    # None: the model's saved steps (a student's schedule)
    specs = [resolve_sampling(model, num_steps=steps, **(size or {}))
             for (_, model), (_, _, steps) in zip(models, entries)]
    total = sum(spec.num_steps for spec in specs) * (repeats + 1)
    bar = tqdm(total=total, desc="compare", leave=False)  # gr.Progress(track_tqdm=True) shows this bar

    def step(i, n, sigma_next, x):
        bar.update(1)

    timings: list[list[dict]] = [[] for _ in entries]
    last = [None] * len(entries)  # each model's result of the last round: its video is shown
    try:
        for round_ in range(repeats + 1):  # round 0 warms up (first calls pay for allocation and caches)
            for k, ((_, model), spec) in enumerate(zip(models, specs)):
                last[k] = generate(model, prompt, seed=seed, spec=spec, callback=step)
                if round_:
                    timings[k].append(last[k].timings)
    finally:
        bar.close()
    rows, paths = [], []
    for (label, _, _), result, runs in zip(entries, last, timings):
        paths.append(str(output_path(label, seed)))
        write_mp4(result.video, paths[-1])
        rows.append({"model": label, "steps": result.num_steps, "nfe": result.nfe,
                     **{f"{s}_s": round(float(np.median([t[s] for t in runs])), 4) for s in (*STAGES, "total")},
                     "total_min_s": round(min(t["total"] for t in runs), 4),
                     "total_max_s": round(max(t["total"] for t in runs), 4),
                     "ratios": [a["total"] / b["total"] for a, b in zip(timings[0], runs)]})
    return rows, paths


def timing_figure(table: pd.DataFrame) -> go.Figure:
    """Stacked bars: seconds per stage for each model."""
    fig = go.Figure()
    for stage in STAGES:
        fig.add_bar(name=stage.replace("_", " "), x=table["model"], y=table[f"{stage}_s"])
    fig.update_layout(barmode="stack", yaxis_title="seconds", height=320, margin=dict(l=40, r=10, t=30, b=30),
                      title="Time per stage")
    return fig


def speedup_note(table: pd.DataFrame) -> str:
    """Markdown: each other row's end-to-end speedup over the teacher (the table's first row), the
    median of the interleaved rounds with their range."""
    rows = table.iloc[1:]
    speedups = ", ".join(f"{r.model}: **{r.speedup:.2f}x** ({r.speedup_min:.2f}-{r.speedup_max:.2f}x)"
                         for r in rows.itertuples())
    rounds = table.attrs.get("rounds", REPEATS)
    runs = f"Median of {rounds} interleaved runs after a warm-up, with their range in brackets." if rounds > 1 \
        else "One timed run after a warm-up."
    return f"Speedup over the teacher, end to end: {speedups}. {runs}" if speedups else "No student chosen."


def size_note(result: CompareResult) -> str:
    """Markdown: the one video size every model of the comparison made ('' when unknown)."""
    if not result.size:
        return ""
    return (f"Every model made {result.size['num_frames']} frames of {result.size['height']}x"
            f"{result.size['width']} (the first student's size).")


def compare_models(prompt, seed, teacher_steps, students, naive_steps=0, teacher: str = "tiny-teacher",
                   manager: JobManager | None = None, options: RealModelOptions | None = None) -> CompareResult:
    """Run the teacher at `teacher_steps`, the same teacher at `naive_steps` (no distillation; 0:
    left out) and each chosen student at its own saved steps, on one prompt and seed, every one
    at the first student's size (`compare_size`). The naive row is what a student must beat: the
    teacher simply sampled with as few steps. Real models load with `options` and are timed in
    `REAL_REPEATS` rounds, the tiny ones in `REPEATS`. Raises ValueError for an empty prompt, a
    bad seed or step count, or an unknown student."""
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
    name = Path(str(teacher)).name
    naive = [(f"{name} at {naive_steps} steps (no distillation)", teacher, naive_steps)] if naive_steps else []
    entries = [(f"{name} (teacher)", teacher, teacher_steps), *naive, *[(s, known[s], None) for s in students]]
    warning = prompt_warning(prompt, {name: teacher, **{s: known[s] for s in students}})
    size = compare_size(students, known)
    repeats = REAL_REPEATS if any(is_real(ref) for _, ref, _ in entries) else REPEATS
    with GENERATE_LOCK:
        rows, paths = _timed_runs(entries, prompt, seed, repeats, size, options)
    videos = [(f"{row['model']}: {row['steps']} steps, {row['total_s']:.2f} s", path) for row, path in zip(rows, paths)]
    ratios = [row.pop("ratios") for row in rows]
    table = pd.DataFrame(rows)
    # the speedup of each round (interleaved), summarised by its median and range
    table["speedup"] = [round(float(np.median(r)), 2) for r in ratios]
    table["speedup_min"] = [round(min(r), 2) for r in ratios]
    table["speedup_max"] = [round(max(r), 2) for r in ratios]
    table.attrs["rounds"] = repeats
    return CompareResult(videos=videos, table=table, figure=timing_figure(table), seed=seed, warning=warning,
                         size=size)


# ZeroGPU slot length: enough for every transformer call of a comparison, and no more (a long
# request waits longer in the Space's queue). A real Wan2.1-1.3B 81-frame 480x832 step takes about 1 s
# per call on an H200-class slot; other real models scale with their pixels and parameters (linear:
# a rough lower bound, attention grows faster), shorter clips with their frames. Tiny models take
# ~nothing (they stay on the CPU), so only their frames scale the estimate.
GPU_SECONDS_PER_CALL_81_FRAMES = 1.0
GPU_REFERENCE = {"height": 480, "width": 832, "params_b": 1.42}  # Wan2.1-T2V-1.3B, the reference above
GPU_BASE_SECONDS = 20  # loading onto the GPU, text encoding, the VAE decodes, the mp4s
GPU_MAX_SECONDS = 600


def gpu_duration(prompt, seed, teacher_steps, students, naive_steps=0, teacher: str = "tiny-teacher",
                 manager: JobManager | None = None, options: RealModelOptions | None = None) -> int:
    """Seconds to ask ZeroGPU for one `compare_models` call (same arguments): its transformer calls
    (teacher and naive teacher at 2 per step under CFG, students at 1 per saved step; a warm-up
    and `REPEATS` timed rounds, `REAL_REPEATS` with a real model) times the seconds per call at
    the comparison's size (`compare_size`: frames, and for real models pixels and the largest
    model's parameters), plus a base, clamped to [GPU_BASE_SECONDS, GPU_MAX_SECONDS]. Bad
    arguments give the base: the call itself then refuses them by name."""
    from accvideo.models.real import REAL_MODELS, real_model_of

    try:
        steps = int(teacher_steps) + int(naive_steps or 0)
        known = available_students(manager)
        chosen = [s for s in students or [] if s in known]
        student_steps = sum(int(read_sampling_defaults(resolve_model(known[s])).get("num_steps", 0)) for s in chosen)
        saved = read_sampling_defaults(resolve_model(teacher))
        size = compare_size(chosen, known) or {k: saved[k] for k in SIZE_KEYS if saved.get(k) is not None}
        refs = [teacher, *(known[s] for s in chosen)]
        real = [REAL_MODELS.get(str(ref)) or real_model_of(resolve_model(ref)) for ref in refs if is_real(ref)]
    except (TypeError, ValueError, KeyError):
        return GPU_BASE_SECONDS
    per_call = GPU_SECONDS_PER_CALL_81_FRAMES * int(size.get("num_frames", 81)) / 81
    if real:
        pixels = size.get("height", GPU_REFERENCE["height"]) * size.get("width", GPU_REFERENCE["width"])
        per_call *= pixels / (GPU_REFERENCE["height"] * GPU_REFERENCE["width"])
        per_call *= max(m.params_b for m in real) / GPU_REFERENCE["params_b"]
    calls = ((REAL_REPEATS if real else REPEATS) + 1) * (2 * steps + student_steps)
    seconds = GPU_BASE_SECONDS + calls * per_call
    return int(min(GPU_MAX_SECONDS, max(GPU_BASE_SECONDS, round(seconds))))


try:  # on a ZeroGPU Space, generation runs inside a GPU slot sized for this request
    import spaces

    compare_models_gpu = spaces.GPU(duration=gpu_duration)(compare_models)
except ImportError:
    compare_models_gpu = compare_models
