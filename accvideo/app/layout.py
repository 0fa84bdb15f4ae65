"""The Gradio layout: `build_app` builds the Compare, Toy, Distil and Models tabs and wires them.

Only components and wiring live here: no tensor code and no domain rule. The handlers call the
services (`services.compare`, `services.toy`, `services.job_views`, `services.models`), which
raise `ValueError` naming the argument, the rule and the value; `gradio_errors` turns those into
`gr.Error` with the same sentence. The job forms are built from the job specs' fields, so their
defaults, labels and help are written once, in `jobs.specs`.

Heavy work (generation) goes through one queue with `concurrency_limit=1` (plus the services'
lock), so concurrent requests wait instead of fighting for the cores.
"""

from __future__ import annotations

import logging
from pathlib import Path

import gradio as gr

from .jobs import TABLE_FILE, JobManager, local_gpus
from .services.compare import (
    EXAMPLE_PROMPTS,
    MAX_STUDENTS,
    NUM_SLOTS,
    compare_models_gpu,
    naive_default_steps,
    speedup_note,
    teacher_default_steps,
)
from .services.job_views import (
    SMALL_SYNVID,
    FormField,
    accvideo_notice,
    distil_snapshot,
    job_form,
    launch_docstring,
    launch_job,
    launch_signature,
    training_allowed,
)
from .services.models import available_students, list_models, model_details, models_overview
from .services.toy import toy_update

log = logging.getLogger("accvideo.app")
REFRESH_SECONDS = 2.0  # how often the Distil tab re-reads the runs folder
READ_ONLY = "training is disabled on this public Space."
# the log box opens at its newest line: scrolled to the end on every change and when the tab is
# shown (a change while the tab is hidden scrolls nothing, so the box would open at its top)
SCROLL_LOG_TO_END = """() => { setTimeout(() => { const box = document.querySelector('#job-log textarea');
    if (box) { box.scrollTop = box.scrollHeight; } }, 50); }"""


def refusal(message: str) -> gr.Error:
    """The gr.Error the page shows for a refused input, after one line in the server log: a refusal is
    the user's to fix, not a fault of the server, so no traceback (gr.Error prints one by default)."""
    log.warning("refused: %s", " ".join(str(message).split()))
    return gr.Error(str(message), print_exception=False)


def gradio_errors(fn):
    """`fn` with a ValueError turned into gr.Error with its sentence (what the page shows)."""
    def call(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ValueError as err:
            raise refusal(str(err)) from err
    return call


def named_inputs(**components: gr.components.Component) -> list[gr.components.Component]:
    """The components, in order, each refusing what its own check rejects (a slider's range, a
    dropdown's choices, a value it cannot read) with a gr.Error naming the API parameter (the
    keyword): Gradio's own sentence names no field, and an exception it does not expect becomes
    "the upstream app raised an exception"."""
    for name, component in components.items():
        def checked(payload, preprocess=component.preprocess, name=name):
            try:
                return preprocess(payload)
            except Exception as err:
                reason = (err.message if isinstance(err, gr.Error) and err.message else
                          f"must be a value this input can read but is {payload!r}")
                raise refusal(f"`{name}`: {reason}") from None
        component.preprocess = checked
    return list(components.values())


def form_component(kind: str, f: FormField) -> gr.components.Component:
    """The Gradio input for one job-form field (elem_id `<kind>-<field>`, underscores as dashes)."""
    common = dict(label=f.label, info=f.help or None, elem_id=f"{kind}-{f.name.replace('_', '-')}")
    if f.widget == "choice":
        return gr.Dropdown(list(f.choices), value=f.value, allow_custom_value=f.custom, **common)
    if f.widget == "integer":
        # no `precision`: Gradio would round 2.5 to 2 unseen; the spec's check refuses it by name
        return gr.Number(f.value, step=1, **common)
    if f.widget == "number":
        return gr.Number(f.value, **common)
    return gr.Textbox(f.value, **common)


def _student_choices(manager: JobManager, selected=None) -> dict:
    choices = list(available_students(manager))
    value = [s for s in (selected if selected is not None else choices[:2]) if s in choices]
    return gr.update(choices=choices, value=value)


def _compare_tab(manager: JobManager, teacher: str):
    """The Compare tab; returns the students dropdown (the Distil tab loads a student into it)."""

    def ui_compare(prompt, seed, teacher_steps, students, naive_steps, progress=gr.Progress(track_tqdm=True)):
        """Generate one prompt with the teacher, the teacher at few steps and each chosen student, timed per stage.

        Args:
            prompt: the text prompt, like "a red circle moving left"
            seed: the noise seed (-1: a random one, returned)
            teacher_steps: the teacher's sampling steps (1 to 200); students use their own saved steps
            students: student names: bundled students and finished runs as "run:NAME"
            naive_steps: the teacher again at this many steps, without distillation (0: left out)

        Returns:
            one video per slot in order teacher, naive teacher, students (None when unused), the timing
            table, its plot, the seed used, the speedup note, and the slots' labels
        """
        result = gradio_errors(compare_models_gpu)(prompt, seed, teacher_steps, students, naive_steps,
                                                   teacher=teacher, manager=manager)
        # plain paths keep the API's answer clean; labels and visibility follow in `show_slots`
        paths = [path for _, path in result.videos] + [None] * (NUM_SLOTS - len(result.videos))
        labels = [label for label, _ in result.videos]
        return (*paths, result.table, result.figure, result.seed, speedup_note(result.table), labels)

    def show_slots(labels):
        return [gr.update(label=labels[i], visible=True) if i < len(labels) else gr.update(visible=False)
                for i in range(NUM_SLOTS)]

    with gr.Row():
        with gr.Column(scale=1):
            initial = _student_choices(manager)
            prompt = gr.Textbox(value=EXAMPLE_PROMPTS[0], label="Prompt")
            gr.Examples(EXAMPLE_PROMPTS, inputs=prompt)
            seed = gr.Number(value=0, step=1, label="Seed (-1: random)")  # not rounded: checked by name
            teacher_steps = gr.Slider(1, 200, value=teacher_default_steps(teacher), step=1, label="Teacher steps")
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
    compare_button.click(ui_compare, named_inputs(prompt=prompt, seed=seed, teacher_steps=teacher_steps,
                                                  students=students, naive_steps=naive_steps),
                         [*video_slots, timing_table, timing_plot, used_seed, speedup, slot_labels],
                         api_name="compare", concurrency_limit=1, concurrency_id="generate"
                         ).then(show_slots, slot_labels, video_slots, api_name=False, queue=False)
    return students


def _toy_tab(toy_tab: gr.Tab) -> None:
    def ui_toy(M, noise_mismatch, lower, upper, num_points):
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
        toy_points = gr.Slider(200, 5000, value=1000, step=100, label="Sample count")
    toy_summary = gr.Markdown(elem_id="toy-summary")
    # one figure per row: the toy's multi-panel figures need the width
    toy_traj = gr.Plot(label="Teacher trajectories and distillation points", elem_id="toy-traj")
    toy_useless = gr.Plot(label="Useless points vs M")
    toy_students = gr.Plot(label="Students")
    toy_dm = gr.Plot(label="Distribution matching")
    inputs = named_inputs(M=toy_M, noise_mismatch=toy_noise, lower=toy_lower, upper=toy_upper, num_points=toy_points)
    outputs = [toy_traj, toy_useless, toy_students, toy_dm, toy_summary]
    for slider in (toy_M, toy_lower, toy_upper, toy_points):
        slider.release(ui_toy, inputs, outputs, api_name=False, concurrency_id="toy", trigger_mode="always_last")
    toy_noise.change(ui_toy, inputs, outputs, api_name=False, concurrency_id="toy")
    toy_tab.select(ui_toy, inputs, outputs, api_name=False, concurrency_id="toy")
    gr.Button("Update toy", size="sm").click(ui_toy, inputs, outputs, api_name="toy", concurrency_id="toy")


def _launch_endpoint(ui_launch, kind: str, manager: JobManager):
    """`ui_launch(kind, ...)` as a function whose parameters are the form's field names, with a
    docstring: what `view_api()` shows, and the keywords a gradio_client caller may use."""
    def launch(*values):
        return ui_launch(kind, *values)

    launch.__signature__ = launch_signature(kind, manager)
    launch.__doc__ = launch_docstring(kind, manager)
    launch.__name__ = launch.__qualname__ = f"launch_{kind}"
    return launch


def _distil_tab(manager: JobManager, can_train: bool, students: gr.Dropdown, tabs: gr.Tabs) -> None:
    def refuse_if_read_only():
        if not can_train:
            raise refusal(READ_ONLY)

    def ui_launch(kind, *values):
        names = [f.name for f in fields[kind]]
        state = gradio_errors(launch_job)(manager, kind, **dict(zip(names, values)))
        gr.Info(f"launched {state.name}")
        names = [s.name for s in manager.runs()]
        return state.command, gr.update(choices=names, value=state.name)

    def ui_stop(name):
        """Stop a running job (SIGTERM to its process group; its last checkpoint stays).

        Args:
            name: the run's name

        Returns:
            the job's command
        """
        refuse_if_read_only()
        return gradio_errors(manager.stop)(name).command

    def ui_resume(name):
        """Resume a stopped or failed job from its last checkpoint, with the same command.

        Args:
            name: the run's name

        Returns:
            the job's command
        """
        refuse_if_read_only()
        return gradio_errors(manager.resume)(name).command

    def ui_load_student(name, selected):
        """Add a finished run's student to the Compare tab's students and switch to Compare.

        Args:
            name: the finished distillation run's name
            selected: the students selected now

        Returns:
            the students selector and the selected tab
        """
        label = f"run:{name}" if name else ""
        if label not in available_students(manager):
            raise refusal(f"`run` must be a finished distillation run with a student but is {name!r}.")
        selected = [s for s in (selected or []) if s != label][: MAX_STUDENTS - 1] + [label]
        return _student_choices(manager, selected), gr.Tabs(selected="compare")

    def refresh(name):
        # reads only: the table is rebuilt from the job.json files; runs.csv is the manager's to write
        snap = gradio_errors(distil_snapshot)(manager, name)
        notice = accvideo_notice(snap.synvid_runs)
        return (snap.view.log, snap.view.progress, snap.view.figure, snap.table,
                *[gr.update(choices=snap.synvid_runs) for _ in synvid_inputs], gr.update(choices=snap.run_names),
                gr.update(value=notice, visible=bool(notice)), gr.update(visible=bool(notice)))

    def ui_make_synvid():
        # the SynVid form, filled with the smallest settings an AccVideo run can learn from
        return gr.Tabs(selected="synvid"), *[gr.update(value=v) for v in SMALL_SYNVID.values()]

    gpus = local_gpus()
    gr.Markdown(f"Launch the same command a user would type. This machine: **{gpus} GPU(s)**"
                + ("" if gpus else ", so jobs run on the CPU (several processes use gloo)")
                + f". Runs live in `{manager.runs_dir}`."
                + ("" if can_train else "\n\n**Read-only on this public Space**: set "
                   "`ACCVIDEO_ENABLE_TRAINING=1` to launch jobs."))
    fields = {kind: job_form(kind, manager) for kind in ("synvid", "accvideo", "gpd")}
    forms: dict[str, list] = {}
    buttons = {}
    notice = accvideo_notice(manager.synvid_runs())
    with gr.Tabs() as job_tabs:
        for kind, title in (("synvid", "SynVid"), ("accvideo", "AccVideo"), ("gpd", "GPD")):
            with gr.Tab(title, id=kind):
                if kind == "accvideo":
                    with gr.Row():
                        needs_synvid = gr.Markdown(notice, visible=bool(notice), elem_id="accvideo-needs-synvid")
                        make_synvid = gr.Button("Make a SynVid run", size="sm", visible=bool(notice),
                                                elem_id="make-synvid")
                forms[kind] = named_inputs(**{f.name: form_component(kind, f) for f in fields[kind]})
                buttons[kind] = gr.Button(f"Launch {title}", interactive=can_train)
    # inputs whose choices are the finished SynVid runs: the refresh keeps them current
    synvid_inputs = [component for kind in forms for f, component in zip(fields[kind], forms[kind])
                     if f.source == "synvid_runs"]
    command = gr.Textbox(label="Command", interactive=False, elem_id="job-command")
    with gr.Row():
        job_name, = named_inputs(name=gr.Dropdown([s.name for s in manager.runs()], label="Job",
                                                  elem_id="job-select", allow_custom_value=True))
        stop_button = gr.Button("Stop", interactive=can_train)
        resume_button = gr.Button("Resume", interactive=can_train)
        load_button = gr.Button("Load student into Compare", variant="primary")
    job_progress = gr.Markdown(elem_id="job-progress")
    with gr.Row():
        job_log = gr.Textbox(label="Log (tail, newest line last)", lines=14, max_lines=14, autoscroll=True,
                             elem_id="job-log")
        loss_plot = gr.Plot(label="Loss")
    runs_table = gr.Dataframe(manager.table(), label=f"Runs ({manager.runs_dir / TABLE_FILE})",
                              interactive=False, elem_id="runs-table")
    for kind, button in buttons.items():
        button.click(_launch_endpoint(ui_launch, kind, manager), forms[kind], [command, job_name],
                     api_name=f"launch_{kind}", concurrency_id="jobs")
    view_outputs = [job_log, job_progress, loss_plot, runs_table, *synvid_inputs, job_name, needs_synvid,
                    make_synvid]
    synvid_form = {f.name: component for f, component in zip(fields["synvid"], forms["synvid"])}
    make_synvid.click(ui_make_synvid, None, [job_tabs, *[synvid_form[name] for name in SMALL_SYNVID]],
                      api_name=False, queue=False)
    job_name.change(refresh, [job_name], view_outputs, api_name=False, concurrency_id="jobs")
    stop_button.click(ui_stop, [job_name], [command], api_name="stop_job", concurrency_id="jobs")
    resume_button.click(ui_resume, [job_name], [command], api_name="resume_job", concurrency_id="jobs")
    load_button.click(ui_load_student, [job_name, students], [students, tabs], api_name="load_student",
                      concurrency_id="jobs")
    gr.Timer(REFRESH_SECONDS).tick(refresh, [job_name], view_outputs, api_name=False, concurrency_id="jobs",
                                   show_progress="hidden")
    job_log.change(None, None, None, js=SCROLL_LOG_TO_END, api_name=False, queue=False)


def _models_view(manager: JobManager, name=None) -> tuple:
    """The Models tab's narrow table and the details of model `name` (default: the first row)."""
    models = list_models(manager)
    name = name if name in set(models["model"]) else models["model"].iloc[0]
    return models_overview(models), model_details(models, name)


def _models_tab(manager: JobManager):
    """The Models tab: a narrow table (model, role, steps, ProcBench) and the selected row's details."""

    def ui_models():
        """The models this app can use: bundled, finished runs and real checkpoints.

        Returns:
            the table of models (model, role, steps, ProcBench) and the first model's details
        """
        return _models_view(manager)

    def ui_select(evt: gr.SelectData):
        return gradio_errors(model_details)(list_models(manager), evt.row_value[0])

    gr.Markdown("Models this app can use. Bundled tiny models ship in `assets/` (no download); finished runs "
                "appear as `run:NAME`; real checkpoints show where they were found (a local folder or the "
                "Hugging Face cache) or what to download. Select a row for its provenance, path and command.")
    overview, details = _models_view(manager)
    with gr.Row():
        with gr.Column(scale=1):
            models_table = gr.Dataframe(overview, label="Models", interactive=False, elem_id="models-table",
                                        wrap=True)
            refresh = gr.Button("Refresh", size="sm")
        with gr.Column(scale=1):
            model_info = gr.Markdown(details, elem_id="model-details")
    refresh.click(ui_models, None, [models_table, model_info], api_name="models")
    models_table.select(ui_select, None, [model_info], api_name=False, queue=False)
    return models_table, model_info


def build_app(default_model: str = "tiny-teacher", runs_dir: str | Path | None = None,
              max_queue: int = 32) -> gr.Blocks:
    """The four-tab app. `default_model` is the teacher of Compare; jobs live in `runs_dir`."""
    manager = JobManager(runs_dir)
    with gr.Blocks(title="AccVideo Workbench") as demo:
        gr.Markdown("# AccVideo Workbench\nFew-step video diffusion, real and explorable: a slow teacher and its "
                    "distilled few-step students side by side, the paper's 1D toy, and the distillation backend.")
        with gr.Tabs() as tabs:
            with gr.Tab("Compare", id="compare"):
                students = _compare_tab(manager, default_model)
            with gr.Tab("Toy", id="toy") as toy_tab:
                _toy_tab(toy_tab)
            with gr.Tab("Distil", id="distil") as distil_tab:
                _distil_tab(manager, training_allowed(), students, tabs)
            distil_tab.select(None, None, None, js=SCROLL_LOG_TO_END, api_name=False, queue=False)
            with gr.Tab("Models", id="models"):
                models_table, model_info = _models_tab(manager)
        demo.load(lambda: (_student_choices(manager), *_models_view(manager)), None,
                  [students, models_table, model_info], api_name=False)
    demo.queue(max_size=max_queue, default_concurrency_limit=1)
    return demo
