"""The Toy tab: the paper's 1D toy (Fig. 2) behind sliders."""

from __future__ import annotations

import gradio as gr

from ..services.toy import LOWER_RANGE, POINTS_RANGE, POINTS_STEP, POSITION_STEP, UPPER_RANGE, toy_update
from .common import gradio_errors, named_inputs

# A slider's number box fires `release` (the toy's event) on blur, and nothing on Enter (gradio 6.31:
# keydown is not handled): Enter blurs the box, so a typed value applies on Enter as on Tab.
ENTER_APPLIES = """() => {
  if (window.toyEnterApplies) return;
  window.toyEnterApplies = true;
  document.addEventListener('keydown', (event) => {
    const box = event.target;
    if (event.key === 'Enter' && box instanceof HTMLInputElement && box.type === 'number'
        && box.closest('#toy-controls')) box.blur();
  });
}"""


def toy_tab(tab: gr.Tab) -> None:
    """The Toy tab; `tab` is the tab itself (selecting it draws the figures)."""
    def toy(M, noise_mismatch, lower, upper, num_points):
        """The paper's 1D toy (Fig. 2) for these settings.

        Args:
            M: dataset mismatch between the student's data and the teacher's (0 to 5)
            noise_mismatch: pair data with random Gaussian noise instead of the teacher's own
            lower: the lower data point (-3 to -0.1)
            upper: the upper data point (0.1 to 3)
            num_points: the number of noises drawn (200 to 5000); each gives 5 distillation points

        Returns:
            four figures (trajectories, useless points vs M, students, distribution matching) and a summary
        """
        figures, summary = gradio_errors(toy_update)(M, noise_mismatch, lower, upper, num_points)
        return (figures["trajectories"], figures["useless_vs_M"], figures["student_results"],
                figures["distribution_matching"], summary)

    gr.Markdown("The paper's Fig. 2 in 1D: a flow-matching teacher on two data points. Knowledge distillation "
                "by forward diffusion makes *useless* points once the student's data mismatches the teacher's "
                "(M) or noise is paired at random; the teacher's own trajectories never do.")
    with gr.Row(elem_id="toy-controls"):
        toy_M = gr.Slider(0, 5, value=1.0, step=0.05, label="Dataset mismatch M")
        toy_noise = gr.Checkbox(value=False, label="Gaussian-noise mismatch")
        toy_lower = gr.Slider(*LOWER_RANGE, value=-1.0, step=POSITION_STEP, label="Data position (lower)")
        toy_upper = gr.Slider(*UPPER_RANGE, value=1.0, step=POSITION_STEP, label="Data position (upper)")
        # "1000 of 5000 points" puzzled users: say what is counted (the summary says it again, with numbers)
        toy_points = gr.Slider(*POINTS_RANGE, value=1000, step=POINTS_STEP, label="Sample count",
                               info="noises drawn; each gives one distillation point at each of the 5 key steps, "
                                    "so 1000 noises make 5000 points per method. Type a value and press Enter.")
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
    tab.select(None, None, None, js=ENTER_APPLIES, api_name=False, queue=False)
    gr.Button("Update toy", size="sm").click(toy, inputs, outputs, api_name="toy", concurrency_id="toy")
