"""The Models tab: a narrow table of the models this app can use and the selected row's details."""

from __future__ import annotations

import gradio as gr

from ..jobs import JobManager
from ..services.models import list_models, model_details, models_overview
from .common import gradio_errors


def models_view(manager: JobManager, name=None) -> tuple:
    """The Models tab's narrow table and the details of model `name` (default: the first row)."""
    models = list_models(manager)
    name = name if name in set(models["model"]) else models["model"].iloc[0]
    return models_overview(models), model_details(models, name)


def models_tab(manager: JobManager):
    """The Models tab: a narrow table (model, role, steps, ProcBench) and the selected row's details."""

    def models():
        """The models this app can use: bundled, finished runs and real checkpoints.

        Returns:
            the table of models (model, role, steps, ProcBench) and the first model's details
        """
        return models_view(manager)

    def ui_select(evt: gr.SelectData):
        return gradio_errors(model_details)(list_models(manager), evt.row_value[0])

    gr.Markdown("Models this app can use. Bundled tiny models ship in `assets/` (no download); finished runs "
                "appear as `run:NAME`; real checkpoints show where they were found (a local folder or the "
                "Hugging Face cache) or what to download. Select a row for its provenance, path and command.")
    overview, details = models_view(manager)
    with gr.Row():
        with gr.Column(scale=1):
            models_table = gr.Dataframe(overview, label="Models", interactive=False, elem_id="models-table",
                                        wrap=True)
            refresh = gr.Button("Refresh", size="sm")
        with gr.Column(scale=1):
            model_info = gr.Markdown(details, elem_id="model-details")
    refresh.click(models, None, [models_table, model_info], api_name="models")
    models_table.select(ui_select, None, [model_info], api_name=False, queue=False)
    return models_table, model_info
