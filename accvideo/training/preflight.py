"""The memory plan before launch: `distill`, `synvid` and the app's job launcher refuse a run whose
plan (`plan.py`) does not fit the GPU, before any weights load, naming the setting to change.

When it runs (`budget`):
- an explicit budget (`--gpu-mem GB`, the app's `--gpu-mem`) checks every model, tiny ones too;
- else, on a machine with a CUDA GPU, the GPU's own memory checks the real models (a registry
  name, or a folder the registry recognises): the tiny models fit any GPU, and their plan would
  first measure their architecture (about 10 s of CPU), so they are not held up;
- else (a CPU run without `--gpu-mem`) nothing is checked.
`--no-plan-check` skips it with a warning. A refusal is a `PlanRefusal` (a ValueError): the CLI
prints it and exits 2, the app shows it as the form's error.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from accvideo.models.registry import is_real_model
from accvideo.training.plan import Arch, arch_of, plan

logger = logging.getLogger(__name__)

KINDS = ("synvid", "accvideo", "gpd")
SKIP_WARNING = ("the memory plan is skipped (`--no-plan-check`): a run that does not fit the GPU fails with CUDA "
                "out of memory after its weights load")


class PlanRefusal(ValueError):
    """A run whose memory plan does not fit the budget; the message names the setting to change."""


@dataclass(frozen=True)
class Budget:
    """GB of memory per GPU a run must fit, and where the figure comes from (for the message)."""

    gpu_mem: float
    source: str  # "`--gpu-mem`" or "the memory of cuda:0 (NVIDIA H200)"


def check_gpu_mem(gpu_mem, flag: str = "--gpu-mem") -> float:
    """`gpu_mem` as a float, or ValueError naming `flag` when it is not a number of GB > 0."""
    if isinstance(gpu_mem, bool) or not isinstance(gpu_mem, int | float) or not gpu_mem > 0:
        raise ValueError(f"`{flag}` must be a number of GB > 0 but is {gpu_mem!r}.")
    return float(gpu_mem)


def budget(teacher: str | Path, gpu_mem: float | None, flag: str = "--gpu-mem") -> Budget | None:
    """The budget a run of `teacher` must fit (see the module docstring), None when unchecked.
    ValueError naming `flag` for a budget that is not a number of GB > 0."""
    if gpu_mem is not None:
        return Budget(check_gpu_mem(gpu_mem, flag), f"`{flag}`")
    import torch

    if not torch.cuda.is_available() or not is_real_model(teacher):
        return None
    device = torch.cuda.current_device()
    props = torch.cuda.get_device_properties(device)
    return Budget(props.total_memory / 1e9, f"the memory of cuda:{device} ({props.name})")


def teacher_arch(teacher: str | Path) -> Arch:
    """The plan's view of `teacher`: a real model by name (no weights needed, so a model not yet
    downloaded is planned too), else its pipeline folder's config files."""
    from accvideo.models.real import ARCHITECTURES, real_model_of
    from accvideo.models.registry import resolve_model

    if str(teacher) in ARCHITECTURES:
        return arch_of(str(teacher))
    folder = resolve_model(teacher)
    real = real_model_of(folder)
    return arch_of(real.name if real is not None and real.name in ARCHITECTURES else str(folder))


SYNVID_FLAGS = {"batch_size": "--batch-size", "num_frames": "--frames"}


def _setting(kind: str, setting: str) -> str:
    """A plan setting as the flag to type: `trainer.batch_size=1 (...)` -> `--set trainer.batch_size=1` (...),
    SynVid's `batch_size=1` -> `--batch-size 1`; the clip length of a distillation stays as the plan says it."""
    text, _, why = setting.partition(" (")
    why = f" ({why}" if why else ""
    key, _, value = text.partition("=")
    if text.startswith("--") or (key == "num_frames" and kind != "synvid"):
        return f"`{text}`{why}"
    if kind == "synvid" and key in SYNVID_FLAGS:
        return f"`{SYNVID_FLAGS[key]} {value}`{why}"
    return f"`--set {text}`{why}"


def refusal_message(result: dict, source: str) -> str:
    """The refusal: the plan's figures against the budget, and the settings that make it fit."""
    head = (f"the {result['kind']} run does not fit: its memory plan needs {result['needed_gb']:.2f} GB per GPU "
            f"(peak {result['peak_gb']:.2f} GB plus the allocator's and the CUDA context's share) for "
            f"{result['frames']} frames of {result['height']}x{result['width']} on {result['gpus']} GPU(s), but "
            f"{source} is {result['gpu_mem_gb']:g} GB.")
    if result["change"]:
        settings = ", ".join(_setting(result["kind"], s) for s in result["change"]["settings"])
        fix = f" Change {settings} (the plan's peak is then {result['change']['peak_gb']:.2f} GB)"
    else:
        fix = (" No setting the plan knows makes it fit: use more GPUs (`torchrun --nproc-per-node`, `--nnodes`) "
               "or larger ones")
    return (f"{head}{fix}; `python -m accvideo plan` shows every part. To launch anyway, pass "
            "`--no-plan-check`.")


def check_plan(kind: str, teacher: str | Path, cfg, gpus: int, gpu_mem: float | None, *, size: dict | None = None,
               check: bool = True, flag: str = "--gpu-mem") -> dict | None:
    """Refuse (`PlanRefusal`) a `kind` run ("synvid" | "accvideo" | "gpd") of `cfg` on `gpus` GPUs
    whose plan exceeds the budget (`budget(teacher, gpu_mem)`); return the plan, or None when
    nothing was checked. `size`: {frames, height, width} of the clips (None: the teacher's own).
    `check=False` (`--no-plan-check`) logs a warning and checks nothing. Loads no weights."""
    if kind not in KINDS:
        raise ValueError(f"`kind` must be one of {list(KINDS)} but is {kind!r}.")
    if not check:
        logger.warning(SKIP_WARNING)
        return None
    limit = budget(teacher, gpu_mem, flag)
    if limit is None:
        return None
    result = plan(kind, teacher_arch(teacher), cfg, gpus, limit.gpu_mem, **{k: v for k, v in (size or {}).items() if v})
    if not result["fits"]:
        raise PlanRefusal(refusal_message(result, limit.source))
    logger.info("memory plan: %s needs %.2f GB per GPU of %g GB (%s): fits", kind, result["needed_gb"],
                limit.gpu_mem, limit.source)
    return result


def synvid_size(folder: str | Path | None) -> dict:
    """{frames, height, width} of a SynVid folder's clips (its config.json), {} when unreadable: an
    AccVideo run trains on them, not on the teacher's default size."""
    import json

    try:
        config = json.loads((Path(folder) / "config.json").read_text()) if folder else {}
    except (OSError, ValueError):
        return {}
    return {k: config.get(f) for k, f in (("frames", "num_frames"), ("height", "height"), ("width", "width"))
            if isinstance(config.get(f), int)}
