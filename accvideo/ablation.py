"""Ablations and the speed-quality frontier of AccVideo students (the paper's Fig. 7 logic).

Rows, all scored by ProcBench on the same prompts and seeds in one process:
    teacher @ n steps          the reference (and the PSNR reference of every other row)
    teacher @ m steps          few-step sampling without distillation: the baseline to beat
    + trajectory loss          AccVideo student with lambda_adv = 0
    + adversarial              the full AccVideo student
and, with `frontier`, full students and the undistilled teacher at other step counts m.
Every distillation run lives in its own folder under `out` and resumes; every score is
cached as JSON beside it, so an interrupted ablation continues where it stopped.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd

from .config import apply_overrides
from .distill.cli import AccVideoDistillConfig, run_accvideo
from .eval.procbench import run_procbench
from .training.checkpoint import atomic_write_text

log = logging.getLogger("accvideo.ablation")


def _score(cache: Path, label: str, model, num_steps, split: str, num_videos: int, teacher, teacher_steps) -> dict:
    path = cache / f"{label}.json"
    if path.exists():
        return json.loads(path.read_text())
    result = run_procbench(model, num_steps=num_steps, split=split, num_videos=num_videos,
                           reference=None if model == teacher and num_steps == teacher_steps else teacher,
                           reference_steps=teacher_steps)
    row = {"row": label, "model": str(model), "steps": result.num_steps, "nfe": result.nfe,
           "total": round(result.total, 2), **{k: round(v, 4) for k, v in result.scores.items() if k != "total"},
           "seconds_per_video": round(result.timings["total"], 4)}
    atomic_write_text(path, json.dumps(row, indent=2))
    return row


def run_ablation(teacher: str, synvid: str, out: str | Path, num_key_steps: int = 5, frontier: tuple[int, ...] = (),
                 steps: int | None = None, split: str = "train", num_videos: int = 32,
                 overrides: list[str] | None = None) -> pd.DataFrame:
    """Train the ablation's students (resumable) and score every row; writes out/ablation.md, .csv, .png."""
    from .models.registry import load_pipeline

    out = Path(out)
    cache = out / "scores"
    cache.mkdir(parents=True, exist_ok=True)
    teacher_steps = load_pipeline(teacher).accvideo_sampling.get("num_steps", 50)

    def student(m: int, lambda_adv: float | None, name: str) -> Path:
        extra = [f"method.num_key_steps={m}"] + ([f"method.lambda_adv={lambda_adv}"] if lambda_adv is not None else [])
        if steps is not None:
            extra.append(f"trainer.steps={steps}")
        cfg = apply_overrides(AccVideoDistillConfig(), list(overrides or []) + extra)
        run_accvideo(teacher, synvid, out / name, cfg, resume=True)
        return out / name / "pipeline"

    rows = [_score(cache, f"teacher@{teacher_steps}", teacher, teacher_steps, split, num_videos, teacher,
                   teacher_steps),
            _score(cache, f"teacher@{num_key_steps}", teacher, num_key_steps, split, num_videos, teacher,
                   teacher_steps)]
    traj = student(num_key_steps, 0.0, f"traj-m{num_key_steps}")
    rows.append(_score(cache, "+ trajectory loss", str(traj), None, split, num_videos, teacher, teacher_steps))
    full = student(num_key_steps, None, f"full-m{num_key_steps}")
    rows.append(_score(cache, "+ adversarial", str(full), None, split, num_videos, teacher, teacher_steps))
    for m in frontier:
        if m == num_key_steps:
            continue
        rows.append(_score(cache, f"teacher@{m}", teacher, m, split, num_videos, teacher, teacher_steps))
        path = student(m, None, f"full-m{m}")
        rows.append(_score(cache, f"student m={m}", str(path), None, split, num_videos, teacher, teacher_steps))
    table = pd.DataFrame(rows)
    table.to_csv(out / "ablation.csv", index=False)
    columns = [c for c in ("row", "steps", "nfe", "total", "semantic", "color", "shape", "motion", "temporal",
                           "fidelity", "psnr", "seconds_per_video") if c in table.columns]
    atomic_write_text(out / "ablation.md", markdown_table(table[columns]))
    plot_ablation(table, out)
    return table


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub markdown table of a DataFrame (no extra dependency)."""
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join("" if pd.isna(v) else str(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def plot_ablation(table: pd.DataFrame, out: Path) -> None:
    """ablation.png: ProcBench total per row; frontier.png: total vs seconds, students and teacher."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.barh(table["row"][::-1], table["total"][::-1], color="#4C72B0")
    for y, v in enumerate(table["total"][::-1]):
        ax.text(v + 0.5, y, f"{v:.1f}", va="center", fontsize=8)
    ax.set_xlabel("ProcBench total (0-100)")
    ax.set_xlim(0, 105)
    fig.tight_layout()
    fig.savefig(out / "ablation.png", dpi=120)
    plt.close(fig)

    teacher = table[table["row"].str.startswith("teacher@")].sort_values("seconds_per_video")
    students = table[~table["row"].str.startswith("teacher@") & (table["row"] != "+ trajectory loss")]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(teacher["seconds_per_video"], teacher["total"], "o-", color="gray", label="teacher, fewer steps")
    for _, r in teacher.iterrows():
        ax.annotate(f"{r['steps']} steps", (r["seconds_per_video"], r["total"]), fontsize=7,
                    textcoords="offset points", xytext=(4, -10))
    students = students.sort_values("seconds_per_video")
    ax.plot(students["seconds_per_video"], students["total"], "o-", color="#C44E52", label="AccVideo students")
    for _, r in students.iterrows():
        ax.annotate(f"{r['steps']} steps", (r["seconds_per_video"], r["total"]), fontsize=7,
                    textcoords="offset points", xytext=(4, 4))
    ax.set_xscale("log")
    ax.set_xlabel("seconds per video, end to end (log)")
    ax.set_ylabel("ProcBench total")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "frontier.png", dpi=120)
    plt.close(fig)
