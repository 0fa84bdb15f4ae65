"""What every tab shares: refusals as gr.Error, checked named inputs, the students selector's choices."""

from __future__ import annotations

import logging

import gradio as gr

from ..jobs import JobManager
from ..services.models import available_students

log = logging.getLogger("accvideo.app")


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


def student_choices(manager: JobManager, selected=None) -> dict:
    choices = list(available_students(manager))
    value = [s for s in (selected if selected is not None else choices[:2]) if s in choices]
    return gr.update(choices=choices, value=value)
