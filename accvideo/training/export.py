"""Writing a trained student as a pipeline folder the rest of the package loads like any model.

`out/pipeline/` is a fresh copy of the teacher's pipeline with the trained transformer, and its
`accvideo_sampling.json` holds the teacher's sampling defaults updated with the student's own
schedule (`num_steps`, `sigmas`, `guidance_scale: 1.0`, ...), so `generate`, `eval` and `bench`
sample a student correctly without being told its step count. `sha256.json` records every
weights file, so loading (and bundling) refuses a corrupted copy.
"""

from __future__ import annotations

import json
from pathlib import Path

from torch import nn

from accvideo.models.registry import SAMPLING_FILE, read_sampling_defaults, resolve_model
from accvideo.util.config import to_dict
from accvideo.util.hashes import write_hashes
from accvideo.util.io import atomic_write_text


def export_student(method, modules: dict[str, nn.Module], teacher: str | Path, out: Path, summary: dict,
                   full_config) -> Path:
    """Rank 0 only: out/pipeline from the teacher's pipeline and `method.export`, with its
    sampling defaults and weights hashes, then out/summary.json ({**summary, "config": full_config}).
    Returns the pipeline folder. `modules`: the trained modules, or stand-ins holding their
    gathered state dicts."""
    from diffusers import DiffusionPipeline

    folder = resolve_model(teacher)
    student = DiffusionPipeline.from_pretrained(str(folder), local_files_only=True)
    sampling = method.export(student, modules)
    student.save_pretrained(out / "pipeline")
    defaults = read_sampling_defaults(folder)
    defaults.update(sampling)
    atomic_write_text(out / "pipeline" / SAMPLING_FILE, json.dumps(defaults, indent=2))
    write_hashes(out / "pipeline")
    atomic_write_text(out / "summary.json", json.dumps({**summary, "config": to_dict(full_config)},
                                                       indent=2, default=str))
    return out / "pipeline"
