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
import torch

from accvideo.training.methods.gpd import high_frequency_ratio
from accvideo.training.recipes.distill import AccVideoDistillConfig, run_accvideo
from accvideo.util.config import apply_overrides
from accvideo.util.io import atomic_write_text

log = logging.getLogger("accvideo.experiments.ablation")


class Scorer:
    """ProcBench rows against one reference (the teacher at its own step count), cached as JSON.

    The reference videos are generated once per scorer and reused for every row's PSNR, so
    scoring k rows costs k generations, not 2k. A row whose JSON exists is read, not rescored.
    """

    def __init__(self, teacher, cache: str | Path, split: str = "train", num_videos: int = 32,
                 teacher_steps: int | None = None):
        from accvideo.models.registry import load_model

        self.teacher, self.split, self.num_videos = teacher, split, num_videos
        self.teacher_steps = teacher_steps or load_model(teacher).sampling.get("num_steps", 50)
        self.cache = Path(cache)
        self.cache.mkdir(parents=True, exist_ok=True)
        self._reference: list | None = None

    def reference_videos(self) -> list:
        if self._reference is None:
            from accvideo.eval.procbench import _load, benchmark_prompts, generate_videos

            pairs = benchmark_prompts(self.split, self.num_videos)
            self._reference, _ = generate_videos(_load(self.teacher)[0], pairs, self.teacher_steps, desc="reference")
        return self._reference

    def score(self, label: str, model, num_steps: int | None = None) -> dict:
        """One row: ProcBench of `model` (at `num_steps`, or its own defaults), PSNR vs the reference."""
        from accvideo.eval.procbench import _load, benchmark_prompts, generate_videos, score_videos

        path = self.cache / f"{self.split}-{label.replace('/', '_').replace(' ', '_')}.json"
        if path.exists():
            return json.loads(path.read_text())
        pairs = benchmark_prompts(self.split, self.num_videos)
        is_reference = model == self.teacher and num_steps == self.teacher_steps
        videos, results = generate_videos(_load(model)[0], pairs, num_steps, desc=f"procbench {label}")
        scores, _ = score_videos(videos, [p for p, _ in pairs], [s for _, s in pairs],
                                 None if is_reference else self.reference_videos())
        first = results[0]
        hf = high_frequency_ratio(torch.cat([r.latents for r in results])).mean().item()
        row = {"row": label, "model": str(model), "split": self.split, "steps": first.num_steps, "nfe": first.nfe,
               "total": round(scores["total"], 2),
               **{k: round(v, 4) for k, v in scores.items() if k != "total"},
               "seconds_per_video": round(float(sum(r.timings["total"] for r in results) / len(results)), 4),
               "hf_energy": round(hf, 5)}
        atomic_write_text(path, json.dumps(row, indent=2))
        log.info("%s: ProcBench %s total %.2f", label, self.split, row["total"])
        return row


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

    rows = [scorer.score(f"teacher@{teacher_steps}", teacher, teacher_steps),
            scorer.score(f"teacher@{num_key_steps}", teacher, num_key_steps)]
    if trajectory_only:
        traj = student(num_key_steps, 0.0, f"traj-m{num_key_steps}", steps)
        rows.append(scorer.score("+ trajectory loss", str(traj)))
    full = student(num_key_steps, None, f"full-m{num_key_steps}", steps)
    rows.append(scorer.score("+ adversarial", str(full)))
    for m in frontier:
        if m == num_key_steps:
            continue
        rows.append(scorer.score(f"teacher@{m}", teacher, m))
        path = student(m, None, f"full-m{m}", frontier_steps or steps)
        rows.append(scorer.score(f"student m={m}", str(path)))
    table = add_bench(pd.DataFrame(rows), bench_repeats)
    table.to_csv(out / "ablation.csv", index=False)
    atomic_write_text(out / "ablation.md", markdown_table(table[table_columns(table)]))
    plot_ablation(table, out)
    return table


def run_gpd_ablation(teacher: str, out: str | Path, schedule: tuple[int, ...] = (48, 24, 12, 6),
                     stage_steps: tuple[int, ...] = (400, 400, 600), split: str = "train", num_videos: int = 24,
                     overrides: list[str] | None = None, full_run: str | Path | None = None,
                     scorer: Scorer | None = None, one_jump_steps: int | None = None,
                     bench_repeats: int = 3) -> pd.DataFrame:
    """GPD with and without the frequency loss, and with and without progressive stages.

    Rows: the teacher at `schedule[0]` and at `schedule[-1]` steps; the full GPD student
    (`full_run` if given, e.g. the one `reproduce` trained, else trained here); the same without
    the frequency loss; one jump schedule[0] -> schedule[-1] with `one_jump_steps` optimiser steps
    (default: as many as all progressive stages together; one jump step costs more forward
    passes, since its guide takes schedule[0] / schedule[-1] guided steps per target).
    `hf_energy` is the share of latent spectral energy above the cutoff; `hf_vs_teacher` divides
    it by the teacher's at schedule[0] steps (1 = as sharp)."""
    from accvideo.training.recipes.distill import GPDDistillConfig, run_gpd

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
    rows = [scorer.score(f"teacher@{schedule[0]}", teacher, schedule[0]),
            scorer.score(f"teacher@{schedule[-1]}", teacher, schedule[-1]),
            scorer.score("GPD: progressive + frequency loss", str(full)),
            scorer.score("GPD without the frequency loss",
                         str(student("no-freq", schedule, stage_steps, ["method.lambda_freq=0"]))),
            scorer.score(f"GPD one jump {schedule[0]} -> {schedule[-1]}",
                         str(student("one-jump", (schedule[0], schedule[-1]), (jump_steps,), [])))]
    table = add_bench(pd.DataFrame(rows), bench_repeats)
    table["hf_vs_teacher"] = (table["hf_energy"] / table["hf_energy"].iloc[0]).round(3)
    table.to_csv(out / "gpd_ablation.csv", index=False)
    atomic_write_text(out / "gpd_ablation.md", markdown_table(table[table_columns(table)]))
    return table


def table_columns(table: pd.DataFrame) -> list[str]:
    """The columns a ProcBench row table shows, in order, where present."""
    columns = ("row", "split", "steps", "nfe", "total", "semantic", "color", "shape", "motion", "temporal", "fidelity",
               "psnr", "end_to_end_s", "speedup", "hf_energy", "hf_vs_teacher")
    return [c for c in columns if c in table.columns]


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub markdown table of a DataFrame (no extra dependency)."""
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join("" if pd.isna(v) else str(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def add_bench(table: pd.DataFrame, repeats: int = 3) -> pd.DataFrame:
    """Time every row's model in one interleaved `bench` run (the first row is the baseline) and
    add `end_to_end_s` (median seconds per video) and `speedup`. ProcBench's own per-video
    seconds come from runs that may share the CPU with training; these are measured together."""
    from accvideo.eval.bench import run_speed_bench

    if repeats < 1:
        return table
    specs = [f"{r.model}@{int(r.steps)}" if str(r.row).startswith("teacher@") else str(r.model)
             for r in table.itertuples()]
    unique = list(dict.fromkeys(specs))
    result = run_speed_bench(unique, repeats=repeats, warmup=1)
    seconds = dict(zip(result.rows.model, result.rows.total_s))
    table = table.copy()
    table["end_to_end_s"] = [round(float(seconds[s]), 4) for s in specs]
    table["speedup"] = (table["end_to_end_s"].iloc[0] / table["end_to_end_s"]).round(2)
    return table


def _kind(row: str) -> str:
    if row.startswith("teacher@"):
        return "teacher"
    return "gpd" if row.lower().startswith("gpd") else "accvideo"


def plot_frontier(table: pd.DataFrame, path: Path, seconds: str = "end_to_end_s") -> None:
    """ProcBench total and PSNR to the reference against end-to-end seconds (log), one curve for
    the undistilled teacher at fewer steps and one per student family; labels are step counts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    table = table[table["row"] != "+ trajectory loss"].dropna(subset=[seconds]).copy()
    table["kind"] = table["row"].map(_kind)
    styles = {"teacher": ("o-", "gray", "teacher, fewer steps (no distillation)"),
              "accvideo": ("s-", "#C44E52", "AccVideo students"), "gpd": ("D", "#4C72B0", "GPD student")}
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, metric, label in ((axes[0], "total", "ProcBench total"), (axes[1], "psnr", "PSNR to the reference (dB)")):
        for kind, (style, color, name) in styles.items():
            data = table[table["kind"] == kind].dropna(subset=[metric]).sort_values("steps")
            if data.empty:
                continue
            ax.plot(data[seconds], data[metric], style, color=color, label=name)
            for _, r in data.iterrows():
                ax.annotate(str(int(r["steps"])), (r[seconds], r[metric]), fontsize=7, textcoords="offset points",
                            xytext=(4, 4))
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%.2g"))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("seconds per video, end to end (log scale)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="lower right")
    fig.suptitle("Speed-quality frontier (numbers: denoising steps)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_ablation(table: pd.DataFrame, out: Path) -> None:
    """ablation.png: ProcBench total per row; frontier.png: see `plot_frontier`."""
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
    plot_frontier(table, out / "frontier.png",
                  "end_to_end_s" if "end_to_end_s" in table.columns else "seconds_per_video")
