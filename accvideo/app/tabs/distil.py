"""The Distil tab: job forms built from the job specs, launch, stop, resume, the selected job's view."""

from __future__ import annotations

import gradio as gr

from ..jobs import TABLE_FILE, JobManager, local_gpus
from ..services.compare import MAX_STUDENTS
from ..services.job_views import (
    SMALL_SYNVID,
    FormField,
    accvideo_notice,
    distil_snapshot,
    job_form,
    launch_docstring,
    launch_job,
    launch_signature,
)
from ..services.models import available_students
from .common import gradio_errors, named_inputs, refusal, student_choices

REFRESH_SECONDS = 2.0  # how often the Distil tab re-reads the runs folder
READ_ONLY = "training is disabled on this public Space."
# the log box opens at its newest line: scrolled to the end on every change and when the tab is
# shown (a change while the tab is hidden scrolls nothing, so the box would open at its top)
SCROLL_LOG_TO_END = """() => { setTimeout(() => { const box = document.querySelector('#job-log textarea');
    if (box) { box.scrollTop = box.scrollHeight; } }, 50); }"""


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


def _launch_endpoint(ui_launch, kind: str, manager: JobManager):
    """`ui_launch(kind, ...)` as a function whose parameters are the form's field names, with a
    docstring: what `view_api()` shows, and the keywords a gradio_client caller may use."""
    def launch(*values):
        return ui_launch(kind, *values)

    launch.__signature__ = launch_signature(kind, manager)
    launch.__doc__ = launch_docstring(kind, manager)
    launch.__name__ = launch.__qualname__ = f"launch_{kind}"
    return launch


def distil_tab(manager: JobManager, can_train: bool, students: gr.Dropdown, tabs: gr.Tabs) -> None:
    def refuse_if_read_only():
        if not can_train:
            raise refusal(READ_ONLY)

    def ui_launch(kind, *values):
        names = [f.name for f in fields[kind]]
        state = gradio_errors(launch_job)(manager, kind, **dict(zip(names, values)))
        gr.Info(f"launched {state.name}")
        names = [s.name for s in manager.runs()]
        return state.command, gr.update(choices=names, value=state.name)

    def stop_job(name):
        """Stop a running job (SIGTERM to its process group; its last checkpoint stays).

        Args:
            name: the run's name

        Returns:
            the job's command
        """
        refuse_if_read_only()
        return gradio_errors(manager.stop)(name).command

    def resume_job(name):
        """Resume a stopped or failed job from its last checkpoint, with the same command.

        Args:
            name: the run's name

        Returns:
            the job's command
        """
        refuse_if_read_only()
        return gradio_errors(manager.resume)(name).command

    def load_student(name, selected):
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
        return student_choices(manager, selected), gr.Tabs(selected="compare")

    def refresh(name, shown_clip):
        # reads only: the table is rebuilt from the job.json files; runs.csv is the manager's to write
        snap = gradio_errors(distil_snapshot)(manager, name)
        notice = accvideo_notice(snap.synvid_runs)
        clip = snap.view.watchdog_clip
        # the same clip is not sent again every tick (the player would restart)
        video = gr.skip() if clip == shown_clip and clip is not None else clip
        return (snap.view.log, snap.view.progress, snap.view.figure, video, snap.view.watchdog_note, clip, snap.table,
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
    with gr.Row():
        watchdog_clip = gr.Video(label="Watchdog: latest validation clip", autoplay=True, loop=True, height=200,
                                 elem_id="watchdog-clip", interactive=False)
        watchdog_flags = gr.Markdown(elem_id="watchdog-flags")
    shown_clip = gr.State(None)
    runs_table = gr.Dataframe(manager.table(), label=f"Runs ({manager.runs_dir / TABLE_FILE})",
                              interactive=False, elem_id="runs-table")
    for kind, button in buttons.items():
        button.click(_launch_endpoint(ui_launch, kind, manager), forms[kind], [command, job_name],
                     api_name=f"launch_{kind}", concurrency_id="jobs")
    view_outputs = [job_log, job_progress, loss_plot, watchdog_clip, watchdog_flags, shown_clip, runs_table,
                    *synvid_inputs, job_name, needs_synvid, make_synvid]
    synvid_form = {f.name: component for f, component in zip(fields["synvid"], forms["synvid"])}
    make_synvid.click(ui_make_synvid, None, [job_tabs, *[synvid_form[name] for name in SMALL_SYNVID]],
                      api_name=False, queue=False)
    job_name.change(refresh, [job_name, shown_clip], view_outputs, api_name=False, concurrency_id="jobs")
    stop_button.click(stop_job, [job_name], [command], api_name="stop_job", concurrency_id="jobs")
    resume_button.click(resume_job, [job_name], [command], api_name="resume_job", concurrency_id="jobs")
    load_button.click(load_student, [job_name, students], [students, tabs], api_name="load_student",
                      concurrency_id="jobs")
    gr.Timer(REFRESH_SECONDS).tick(refresh, [job_name, shown_clip], view_outputs, api_name=False, concurrency_id="jobs",
                                   show_progress="hidden")
    job_log.change(None, None, None, js=SCROLL_LOG_TO_END, api_name=False, queue=False)
