"""The Compare tab: one prompt, the teacher, the naive few-step teacher and the students, timed."""

from __future__ import annotations

import gradio as gr

from ..jobs import JobManager
from ..services.compare import (
    EXAMPLE_PROMPTS,
    NUM_SLOTS,
    compare_models_gpu,
    naive_default_steps,
    size_note,
    speedup_note,
    teacher_default_steps,
)
from ..services.models import RealModelOptions, available_students, available_teachers
from ..services.prompts import BUILDER_CHOICES, EXAMPLE_COMBOS, GRAMMAR, build_prompt, prompt_warning
from .common import gradio_errors, named_inputs, refusal, student_choices


def compare_tab(manager: JobManager, default_teacher: str, options: RealModelOptions | None = None):
    """The Compare tab; returns the students dropdown (the Distil tab loads a student into it).
    `default_teacher`: the default teacher (app.py's `--model`); the dropdown also offers the bundled and
    the real teachers found on disk. `options`: how real checkpoints load (device, dtype, ...)."""
    teachers = available_teachers(default_teacher)

    def compare(prompt, seed, teacher_steps, students, naive_steps, teacher=default_teacher,
                progress=gr.Progress(track_tqdm=True)):
        """Generate one prompt with the teacher, the teacher at few steps and each chosen student, timed per stage.

        Args:
            prompt: the text prompt, like "a red circle moving left"
            seed: the noise seed (-1: a random one, returned)
            teacher_steps: the teacher's sampling steps (1 to 200); students use their own saved steps
            students: student names: bundled students, finished runs as "run:NAME" and real students on disk
            naive_steps: the teacher again at this many steps, without distillation (0: left out)
            teacher: the teacher: the app's own, a bundled one or a real teacher on disk

        Returns:
            one video per slot in order teacher, naive teacher, students (None when unused), the timing
            table, its plot, the seed used, the speedup note, and the slots' labels
        """
        if teacher not in teachers:  # the dropdown refuses it first; a direct call lands here
            raise refusal(f"`teacher` must be chosen from {list(teachers)} but is {teacher!r}.")
        result = gradio_errors(compare_models_gpu)(prompt, seed, teacher_steps, students, naive_steps,
                                                   teacher=teachers[teacher], manager=manager, options=options)
        # plain paths keep the API's answer clean; labels and visibility follow in `show_slots`
        paths = [path for _, path in result.videos] + [None] * (NUM_SLOTS - len(result.videos))
        labels = [label for label, _ in result.videos]
        # the warning leads the note, so an API caller reads it too (the page also shows it live)
        note = "\n\n".join(filter(None, [result.warning, speedup_note(result.table), size_note(result)]))
        return (*paths, result.table, result.figure, result.seed, note, labels)

    def ui_warning(prompt, students, teacher_model):
        known = available_students(manager)
        models = {teacher_model: teachers.get(teacher_model, default_teacher),
                  **{s: known[s] for s in students or [] if s in known}}
        text = prompt_warning(prompt, models)
        return gr.update(value=text, visible=bool(text))

    def show_slots(labels):
        return [gr.update(label=labels[i], visible=True) if i < len(labels) else gr.update(visible=False)
                for i in range(NUM_SLOTS)]

    with gr.Row():
        with gr.Column(scale=1):
            initial = student_choices(manager)
            # the builder writes the grammar's prompt into the free-text box; real models take any text
            gr.Markdown(f"The bundled tiny models know only *{GRAMMAR}*: build one here, or type free text "
                        "below (real models take any text).", elem_id="prompt-grammar")
            first = dict(zip(("color", "shape", "direction"), EXAMPLE_COMBOS[0]))
            with gr.Row():
                builder = [gr.Dropdown(BUILDER_CHOICES[key], value=first[key], label=label, elem_id=f"prompt-{key}",
                                       min_width=90)
                           for key, label in (("color", "Colour"), ("shape", "Shape"), ("direction", "Direction"))]
            prompt = gr.Textbox(value=EXAMPLE_PROMPTS[0], label="Prompt", elem_id="prompt")
            warning = gr.Markdown(visible=False, elem_id="prompt-warning")
            gr.Examples(EXAMPLE_PROMPTS, inputs=prompt)
            seed = gr.Number(value=0, step=1, label="Seed (-1: random)")  # not rounded: checked by name
            teacher_model = gr.Dropdown(list(teachers), value=default_teacher, label="Teacher", elem_id="teacher")
            teacher_steps = gr.Slider(1, 200, value=teacher_default_steps(default_teacher), step=1,
                                      label="Teacher steps")
            # by default the teacher also runs at the first student's step count: the naive
            # few-step baseline that distillation has to beat, side by side with the students
            naive_steps = gr.Slider(0, 200, value=naive_default_steps(initial["value"], manager), step=1,
                                    label="Naive teacher steps (0: off)")
            # custom values allowed so an API caller can name a run finished after the page
            # was built; compare_models checks every name against the students found
            students = gr.Dropdown(label="Students", multiselect=True, allow_custom_value=True, elem_id="students",
                                   choices=initial["choices"], value=initial["value"])
            compare_button = gr.Button("Compare", variant="primary")
        with gr.Column(scale=3):
            with gr.Row():
                video_slots = [gr.Video(label="teacher", autoplay=True, loop=True, height=256)]
                video_slots += [gr.Video(label=f"slot {i + 2}", autoplay=True, loop=True, height=256,
                                         visible=False) for i in range(NUM_SLOTS - 1)]
            speedup = gr.Markdown(elem_id="speedup")
            timing_table = gr.Dataframe(label="Time per stage (s, medians of 3 runs), NFE and speedup",
                                        elem_id="timing")
            timing_plot = gr.Plot(label="Timing", elem_id="timing-plot")
            used_seed = gr.Number(label="Seed used", precision=0, interactive=False)
    slot_labels = gr.State([])
    for dropdown in builder:
        dropdown.input(gradio_errors(build_prompt), builder, prompt, api_name=False, queue=False)
    for trigger in (prompt.change, students.change, teacher_model.change):
        trigger(ui_warning, [prompt, students, teacher_model], warning, api_name=False, queue=False,
                show_progress="hidden")
    # another teacher starts at its own saved steps
    teacher_model.input(lambda name: gr.update(value=teacher_default_steps(teachers.get(name, default_teacher))),
                        teacher_model, teacher_steps, api_name=False, queue=False)
    compare_button.click(compare, named_inputs(prompt=prompt, seed=seed, teacher_steps=teacher_steps,
                                                  students=students, naive_steps=naive_steps,
                                                  teacher=teacher_model),
                         [*video_slots, timing_table, timing_plot, used_seed, speedup, slot_labels],
                         api_name="compare", concurrency_limit=1, concurrency_id="generate"
                         ).then(show_slots, slot_labels, video_slots, api_name=False, queue=False)
    return students
