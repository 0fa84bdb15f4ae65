"""Does an exported LoRA reproduce its student? Export, then sample with and without it."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from accvideo.models.lora import REPORT_FILE, apply_lora, export_lora
from accvideo.models.memory import DTYPES
from accvideo.models.registry import LoadedModel, resolve_model


def export_checked_lora(student: str | Path, teacher: str | Path, out: str | Path, rank: int = 64,
                        check: bool = True, dtype: str = "fp32", prompt: str = "a red circle moving left",
                        seed: int = 0, check_size: dict | None = None) -> dict:
    """`export_lora`, then (with `check`) the teacher is loaded fresh, the LoRA applied, and
    `sample_errors` added to `lora_report.json`. Costly for real models (two pipelines); off with
    `--no-check`."""
    report = export_lora(student, teacher, out, rank=rank, dtype=dtype)
    if check:
        torch_dtype = None if dtype == "fp32" else DTYPES[dtype]
        report.update(sample_errors(resolve_model(student), resolve_model(teacher), Path(out), prompt, seed,
                                    check_size or {}, torch_dtype))
        (Path(out) / REPORT_FILE).write_text(json.dumps(report, indent=2))
    return report


def sample_errors(student_dir: Path, teacher_dir: Path, out: Path, prompt: str, seed: int, size: dict,
                  torch_dtype) -> dict:
    """How far the teacher plus the LoRA lands from the student: one video's final latents, same seed,
    the student's own sampling defaults (or `size` overrides such as {"num_frames": 9, "height": 32,
    "width": 32}). `sample_relative_error` = ||x_lora - x_student|| / ||x_student||, with and without
    the non-Linear part."""
    from diffusers import DiffusionPipeline

    from accvideo.generation import generate
    from accvideo.models.registry import read_sampling_defaults

    defaults = read_sampling_defaults(student_dir)

    def sample(folder: Path, lora: bool | None) -> torch.Tensor:
        pipe = DiffusionPipeline.from_pretrained(str(folder), local_files_only=True, dtype=torch_dtype)
        pipe.set_progress_bar_config(disable=True)
        if lora is not None:
            apply_lora(pipe, out, with_rest=lora)
        # the student's schedule and guidance for all three
        result = generate(LoadedModel(pipe, defaults, folder), prompt, seed=seed, decode_video=False, **size)
        return result.latents.float()

    x_student = sample(student_dir, None)
    norm = float(x_student.norm())
    with_rest = float((sample(teacher_dir, True) - x_student).norm()) / norm
    lora_only = float((sample(teacher_dir, False) - x_student).norm()) / norm
    teacher = float((sample(teacher_dir, None) - x_student).norm()) / norm
    return {"check": {"prompt": prompt, "seed": seed, **size},
            "sample_relative_error": with_rest, "sample_relative_error_lora_only": lora_only,
            "sample_relative_error_teacher_without_lora": teacher}
