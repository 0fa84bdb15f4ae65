"""The Gradio UI. It holds no tensor code: handlers call the same functions as the CLI.

This first version generates with one model and shows per-stage timing; the full app
(compare, toy, distil, models tabs) builds on the same handler pattern.
"""

from __future__ import annotations

import tempfile
import threading
import uuid
from pathlib import Path

import gradio as gr
import pandas as pd

from .data.procedural import TRAIN_COMBOS, prompt_for
from .inference import generate, write_mp4
from .models.registry import load_pipeline

OUTPUT_DIR = Path(tempfile.gettempdir()) / "accvideo-outputs"
EXAMPLE_PROMPTS = [prompt_for(*c) for c in TRAIN_COMBOS[::11]]
_generate_lock = threading.Lock()  # one model, one request at a time: the queue does the waiting


def generate_video(model: str, prompt: str, seed, steps, guidance) -> tuple[str, pd.DataFrame, int]:
    """Handler: returns (mp4 path, timing table, seed). Raises ValueError on bad input."""
    if seed is None or float(seed) != int(float(seed)):
        raise ValueError(f"`seed` must be an integer but is {seed!r}.")
    if steps is None or float(steps) != int(float(steps)):
        raise ValueError(f"`steps` must be an integer but is {steps!r}.")
    pipe = load_pipeline(model)
    with _generate_lock:
        result = generate(pipe, prompt, seed=int(float(seed)), num_steps=int(float(steps)),
                          guidance_scale=float(guidance))
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUTPUT_DIR / f"{model.replace('/', '_')}-{result.seed}-{uuid.uuid4().hex[:8]}.mp4"
    write_mp4(result.video, path)
    t = result.timings
    table = pd.DataFrame([{"stage": s, "seconds": round(t[s], 4), "share %": round(100 * t[s] / t["total"], 1)}
                          for s in ("text_encoder", "denoising", "vae_decode", "total")])
    return str(path), table, result.seed


def _ui_generate(model, prompt, seed, steps, guidance, progress=gr.Progress(track_tqdm=True)):
    try:
        path, table, seed = generate_video(model, prompt, seed, steps, guidance)
    except ValueError as err:
        raise gr.Error(str(err)) from err
    return path, table, seed


def build_app(default_model: str = "tiny-teacher") -> gr.Blocks:
    with gr.Blocks(title="AccVideo Workbench") as demo:
        gr.Markdown("# AccVideo Workbench\nFew-step video diffusion, real and explorable. "
                    "Generate with the bundled tiny teacher (trained on this project's procedural world).")
        with gr.Row():
            with gr.Column():
                model = gr.Textbox(value=default_model, label="Model (name or folder)")
                prompt = gr.Textbox(value=EXAMPLE_PROMPTS[0], label="Prompt")
                gr.Examples(EXAMPLE_PROMPTS, inputs=prompt)
                seed = gr.Number(value=0, precision=0, label="Seed")
                steps = gr.Slider(1, 100, value=50, step=1, label="Denoising steps")
                guidance = gr.Slider(1.0, 8.0, value=4.0, step=0.5, label="Guidance scale")
                button = gr.Button("Generate", variant="primary")
            with gr.Column():
                video = gr.Video(label="Video", autoplay=True, loop=True)
                timing = gr.Dataframe(label="Time per stage")
                used_seed = gr.Number(label="Seed used", precision=0, interactive=False)
        button.click(_ui_generate, [model, prompt, seed, steps, guidance], [video, timing, used_seed],
                     api_name="generate", concurrency_limit=1)
    demo.queue(max_size=16)
    return demo
