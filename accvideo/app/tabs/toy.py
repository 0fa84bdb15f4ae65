"""The Toy tab: the paper's 1D toy (Fig. 2) behind sliders."""

from __future__ import annotations

import gradio as gr

from ..services.toy import toy_update
from .common import gradio_errors, named_inputs


def toy_tab(tab: gr.Tab) -> None:
    """The Toy tab; `tab` is the tab itself (selecting it draws the figures)."""
    def toy(M, noise_mismatch, lower, upper, num_points):
        """The paper's 1D toy (Fig. 2) for these settings.

        Args:
            M: dataset mismatch between the student's data and the teacher's (0 to 5)
            noise_mismatch: pair data with random Gaussian noise instead of the teacher's own
            lower: the lower data point (-3 to -0.1)
            upper: the upper data point (0.1 to 3)
            num_points: the number of sampled points (200 to 5000)

        Returns:
            four figures (trajectories, useless points vs M, students, distribution matching) and a summary
        """
        figures, summary = gradio_errors(toy_update)(M, noise_mismatch, lower, upper, num_points)
        return (figures["trajectories"], figures["useless_vs_M"], figures["student_results"],
                figures["distribution_matching"], summary)

    gr.Markdown("The paper's Fig. 2 in 1D: a flow-matching teacher on two data points. Knowledge distillation "
                "by forward diffusion makes *useless* points once the student's data mismatches the teacher's "
                "(M) or noise is paired at random; the teacher's own trajectories never do.")
    with gr.Row():
        toy_M = gr.Slider(0, 5, value=1.0, step=0.05, label="Dataset mismatch M")
        toy_noise = gr.Checkbox(value=False, label="Gaussian-noise mismatch")
        toy_lower = gr.Slider(-3, -0.1, value=-1.0, step=0.1, label="Data position (lower)")
        toy_upper = gr.Slider(0.1, 3, value=1.0, step=0.1, label="Data position (upper)")
        # "1000 of 5000 points" puzzled users: say what is counted, and what a change costs
        toy_points = gr.Slider(200, 5000, value=1000, step=100, label="Sample count",
                               info="noises drawn; each gives 5 distillation points (the 5 key steps). Changing it "
                                    "or a data position retrains the teacher's students: seconds, not instant.")
    toy_summary = gr.Markdown(elem_id="toy-summary")
    # one figure per row: the toy's multi-panel figures need the width
    toy_traj = gr.Plot(label="Teacher trajectories and distillation points", elem_id="toy-traj")
    toy_useless = gr.Plot(label="Useless points vs M")
    toy_students = gr.Plot(label="Students")
    toy_dm = gr.Plot(label="Distribution matching")
    inputs = named_inputs(M=toy_M, noise_mismatch=toy_noise, lower=toy_lower, upper=toy_upper, num_points=toy_points)
    outputs = [toy_traj, toy_useless, toy_students, toy_dm, toy_summary]
    for slider in (toy_M, toy_lower, toy_upper, toy_points):
        slider.release(toy, inputs, outputs, api_name=False, concurrency_id="toy", trigger_mode="always_last")
    toy_noise.change(toy, inputs, outputs, api_name=False, concurrency_id="toy")
    tab.select(toy, inputs, outputs, api_name=False, concurrency_id="toy")
    gr.Button("Update toy", size="sm").click(toy, inputs, outputs, api_name="toy", concurrency_id="toy")
