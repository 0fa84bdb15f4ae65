"""The memory plan of a job before the launcher starts it (`training.preflight`).

A job's plan is that of the command it runs: the config its argv builds (the CLI's `--set`
overrides, `--steps`, GPD's `--schedule`), its teacher, its processes as GPUs, and for AccVideo
the clip size of the SynVid run it trains on. The launcher refuses a job that does not fit before
anything is written, with the plan's sentence (the setting to change).
"""

from __future__ import annotations

from pathlib import Path

from accvideo.training.preflight import check_plan, synvid_size  # lower layer: the plan, no weights loaded

from .specs import JobSpec


def plan_overrides(argv: list[str]) -> list[str]:
    """The config overrides a job's CLI arguments amount to (`--set K=V`, `--steps N`, `--schedule a,b,c`)."""
    overrides = []
    for flag, value in zip(argv, argv[1:]):
        if flag == "--set":
            overrides.append(value)
        elif flag == "--steps":
            overrides.append(f"trainer.steps={value}")
        elif flag == "--schedule":
            first, *rest = value.split(",")
            overrides += [f"method.teacher_steps={first}", f"method.schedule=[{','.join(rest)}]"]
    return overrides


def job_config(spec: JobSpec, runs_dir: Path):
    """The config dataclass the job's command builds (the same defaults and overrides)."""
    from accvideo.synvid import SynVidConfig
    from accvideo.training.recipes.accvideo import AccVideoDistillConfig
    from accvideo.training.recipes.gpd import GPDDistillConfig
    from accvideo.util.config import load_config

    if spec.kind == "synvid":
        return SynVidConfig(teacher=spec.teacher, prompts=spec.preset, num_steps=spec.num_steps,
                            samples_per_prompt=spec.samples_per_prompt, store=spec.store)
    cls = AccVideoDistillConfig if spec.kind == "accvideo" else GPDDistillConfig
    return load_config(cls, None, plan_overrides(spec.cli_args(runs_dir)))


def check_job_plan(spec: JobSpec, runs_dir: Path, gpu_mem: float | None, check: bool = True) -> dict | None:
    """Refuse (`PlanRefusal`, a ValueError) a validated job whose plan exceeds `gpu_mem` GB per GPU
    (None: the CUDA GPU's memory for a real teacher, else unchecked); the plan, or None."""
    size = synvid_size(runs_dir / spec.synvid_run) if spec.kind == "accvideo" else None
    return check_plan(spec.kind, spec.teacher, job_config(spec, runs_dir), spec.nproc, gpu_mem, size=size,
                      check=check)  # the budget is app.py's `--gpu-mem`
