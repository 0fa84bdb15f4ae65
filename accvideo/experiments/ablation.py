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

import logging
from pathlib import Path

import pandas as pd

from accvideo.eval.plots import plot_ablation
from accvideo.eval.scorer import Scorer
from accvideo.eval.tables import add_bench, markdown_table, table_columns
from accvideo.training.methods.gpd import GPDConfig
from accvideo.training.recipes.accvideo import AccVideoDistillConfig, run_accvideo
from accvideo.training.recipes.gpd import GPDDistillConfig, run_gpd
from accvideo.util.config import apply_overrides
from accvideo.util.io import atomic_write_text

log = logging.getLogger("accvideo.experiments.ablation")

# The ablation's row labels and run folders. They key the score cache, so `reproduce`'s report
# rows name them through these functions, never by hand.
TRAJECTORY_ROW = "+ trajectory loss"
ADVERSARIAL_ROW = "+ adversarial"


def teacher_row(steps: int) -> str:
    """The undistilled teacher sampled at `steps` steps."""
    return f"teacher@{steps}"


def student_row(m: int) -> str:
    """A full (trajectory + adversarial) frontier student of `m` steps."""
    return f"student m={m}"


def student_run(m: int, adversarial: bool = True) -> str:
    """The run folder, under the ablation's `out`, of the `m`-step student (full or trajectory-only)."""
    return f"{'full' if adversarial else 'traj'}-m{m}"


def run_ablation(teacher: str, synvid: str, out: str | Path, num_key_steps: int = 5, frontier: tuple[int, ...] = (),
                 steps: int | None = None, split: str = "train", num_videos: int = 32,
                 overrides: list[str] | None = None, frontier_steps: int | None = None,
                 scorer: Scorer | None = None, bench_repeats: int = 3, trajectory_only: bool = True) -> pd.DataFrame:
    """Train the ablation's students (resumable) and score every row; writes out/ablation.md, .csv, .png.

    `trajectory_only=False` leaves out the trajectory-loss-only student (`reproduce` does, to fit
    its time budget; the `ablation` command keeps it).

    `frontier_steps`: optimiser steps of the frontier students (default `steps`); their
    adversarial phase then starts at a quarter of it. `scorer`: share a reference and a score
    cache with other rows (default: one under out/scores)."""
    out = Path(out)
    scorer = scorer or Scorer(teacher, out / "scores", split, num_videos)
    teacher_steps = scorer.teacher_steps

    def student(m: int, lambda_adv: float | None, name: str, train_steps: int | None) -> Path:
        extra = [f"method.num_key_steps={m}"] + ([f"method.lambda_adv={lambda_adv}"] if lambda_adv is not None else [])
        if train_steps is not None:
            extra.append(f"trainer.steps={train_steps}")
            if train_steps != steps:
                extra.append(f"method.adv_start={train_steps // 4}")
        cfg = apply_overrides(AccVideoDistillConfig(), list(overrides or []) + extra)
        run_accvideo(teacher, synvid, out / name, cfg, resume=True)
        return out / name / "pipeline"

    rows = [scorer.score(teacher_row(teacher_steps), teacher, teacher_steps),
            scorer.score(teacher_row(num_key_steps), teacher, num_key_steps)]
    if trajectory_only:
        traj = student(num_key_steps, 0.0, student_run(num_key_steps, adversarial=False), steps)
        rows.append(scorer.score(TRAJECTORY_ROW, str(traj)))
    full = student(num_key_steps, None, student_run(num_key_steps), steps)
    rows.append(scorer.score(ADVERSARIAL_ROW, str(full)))
    for m in frontier:
        if m == num_key_steps:
            continue
        rows.append(scorer.score(teacher_row(m), teacher, m))
        path = student(m, None, student_run(m), frontier_steps or steps)
        rows.append(scorer.score(student_row(m), str(path)))
    table = add_bench(pd.DataFrame(rows), bench_repeats)
    table.to_csv(out / "ablation.csv", index=False)
    atomic_write_text(out / "ablation.md", markdown_table(table[table_columns(table)]))
    plot_ablation(table, out)
    return table


def add_paired(scorer: Scorer, rows: list[dict], against: str) -> None:
    """Add `minus_full_paired` to every row: its total minus the `against` row's (the full student) on the same prompts
    and seeds, with the paired 95% interval (blank for that row itself, and for a row scored
    before reads were kept). At 96 videos the rows' own intervals overlap where this one need not."""
    key = "minus_full_paired"
    for row in rows:
        diff = None if row["row"] == against else scorer.paired(row["row"], against)
        row[key] = "" if diff is None else "{:+.2f} [{:+.2f}, {:+.2f}]".format(diff["total"], *diff["total_ci"])


def run_gpd_ablation(teacher: str, out: str | Path, schedule: tuple[int, ...] = (48, 24, 12, 6),
                     stage_steps: tuple[int, ...] = (400, 400, 600), split: str = "train", num_videos: int = 24,
                     overrides: list[str] | None = None, full_run: str | Path | None = None,
                     scorer: Scorer | None = None, one_jump_steps: int | None = None,
                     bench_repeats: int = 3, paper: bool = True) -> pd.DataFrame:
    """GPD with and without the frequency loss, and with and without progressive stages.

    Rows: the teacher at `schedule[0]` and at `schedule[-1]` steps; the full GPD student
    (`full_run` if given, e.g. the one `reproduce` trained, else trained here); the same without
    the frequency loss; one jump schedule[0] -> schedule[-1] with `one_jump_steps` optimiser steps
    (default: as many as all progressive stages together; one jump step costs more forward
    passes, since its guide takes schedule[0] / schedule[-1] guided steps per target).
    `hf_energy` is the share of latent spectral energy above the cutoff; `hf_vs_teacher` divides
    it by the teacher's at schedule[0] steps (1 = as sharp). With `paper`, one more row: the paper
    variant of a secondary description (`GPDConfig.variant`), its stages sharing the same total
    of optimiser steps as the progressive stages."""
    out = Path(out)
    scorer = scorer or Scorer(teacher, out / "scores", split, num_videos)

    def student(name: str, counts: tuple[int, ...], steps: tuple[int, ...], extra: list[str]) -> Path:
        cfg = apply_overrides(GPDDistillConfig(), list(overrides or []) + [
            f"method.teacher_steps={counts[0]}", f"method.schedule=[{','.join(map(str, counts[1:]))}]",
            f"method.stage_steps=[{','.join(map(str, steps))}]", *extra])
        run_gpd(teacher, out / name, cfg, resume=True)
        return out / name / "pipeline"

    jump_steps = one_jump_steps or sum(stage_steps)
    full = Path(full_run) / "pipeline" if full_run else student("full", schedule, stage_steps, [])
    rows = [scorer.score(teacher_row(schedule[0]), teacher, schedule[0]),
            scorer.score(teacher_row(schedule[-1]), teacher, schedule[-1]),
            scorer.score("GPD: progressive + frequency loss", str(full)),
            scorer.score("GPD without the frequency loss",
                         str(student("no-freq", schedule, stage_steps, ["method.lambda_freq=0"]))),
            scorer.score(f"GPD one jump {schedule[0]} -> {schedule[-1]}",
                         str(student("one-jump", (schedule[0], schedule[-1]), (jump_steps,), [])))]
    if paper:
        counts = GPDConfig(teacher_steps=schedule[0], schedule=(schedule[-1],), variant="paper").stage_counts()
        per_stage = [max(1, sum(stage_steps) // len(counts))] * len(counts)
        rows.append(scorer.score("GPD paper variant (secondary source)", str(student(
            "paper", (schedule[0], schedule[-1]), tuple(per_stage), ["method.variant=paper"]))))
    add_paired(scorer, rows, "GPD: progressive + frequency loss")
    table = add_bench(pd.DataFrame(rows), bench_repeats)
    table["hf_vs_teacher"] = (table["hf_energy"] / table["hf_energy"].iloc[0]).round(3)
    table.to_csv(out / "gpd_ablation.csv", index=False)
    atomic_write_text(out / "gpd_ablation.md", markdown_table(table[table_columns(table)]))
    return table
