"""The Gradio layout: `build_app` puts the Compare, Toy, Distil and Models tabs (`tabs/`) together.

Only components and wiring live here: no tensor code and no domain rule. The handlers call the
services (`services.compare`, `services.toy`, `services.job_views`, `services.models`), which
raise `ValueError` naming the argument, the rule and the value; `gradio_errors` turns those into
`gr.Error` with the same sentence. The job forms are built from the job specs' fields, so their
defaults, labels and help are written once, in `jobs.specs`.

Handlers are named as their endpoints (`compare`, `toy`, `stop_job`, ...): `python app.py --mcp`
serves them as MCP tools, and a tool is called by its function's name.

Heavy work (generation) goes through one queue with `concurrency_limit=1` (plus the services'
lock), so concurrent requests wait instead of fighting for the cores.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from .jobs import JobManager
from .services.job_views import training_allowed
from .services.models import RealModelOptions
from .tabs.common import gradio_errors, refusal, student_choices
from .tabs.compare import compare_tab
from .tabs.distil import SCROLL_LOG_TO_END, distil_tab
from .tabs.models import models_tab, models_view
from .tabs.toy import toy_tab

__all__ = ["build_app", "gradio_errors", "refusal"]


def build_app(default_model: str = "tiny-teacher", runs_dir: str | Path | None = None,
              max_queue: int = 32, options: RealModelOptions | None = None,
              gpu_mem: float | None = None, plan_check: bool = True) -> gr.Blocks:
    """The four-tab app. `default_model` is the default teacher of Compare; `options` load the real
    checkpoints (device, dtype, offload, VAE tiling); jobs live in `runs_dir`, and a launch is
    refused when its memory plan exceeds `gpu_mem` GB (None: the CUDA GPU's own memory, real
    models only; `plan_check=False` skips it; see `JobManager`)."""
    manager = JobManager(runs_dir, gpu_mem=gpu_mem, plan_check=plan_check)
    with gr.Blocks(title="AccVideo Workbench") as demo:
        gr.Markdown("# AccVideo Workbench\nFew-step video diffusion, real and explorable: a slow teacher and its "
                    "distilled few-step students side by side, the paper's 1D toy, and the distillation backend.")
        with gr.Tabs() as tabs:
            with gr.Tab("Compare", id="compare"):
                students = compare_tab(manager, default_model, options)
            with gr.Tab("Toy", id="toy") as toy:
                toy_tab(toy)
            with gr.Tab("Distil", id="distil") as distil:
                distil_tab(manager, training_allowed(), students, tabs)
            distil.select(None, None, None, js=SCROLL_LOG_TO_END, api_name=False, queue=False)
            with gr.Tab("Models", id="models"):
                models_table, model_info = models_tab(manager)
        demo.load(lambda: (student_choices(manager), *models_view(manager)), None,
                  [students, models_table, model_info], api_name=False)
    demo.queue(max_size=max_queue, default_concurrency_limit=1)
    return demo
