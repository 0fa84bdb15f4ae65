"""`python -m accvideo reproduce`: every bundled model and every reported figure from nothing.

One command runs the whole pipeline in order, each stage resumable:

    teacher   procedural clips, VAE, flow-matching transformer (`train-teacher`)
    synvid    the teacher's guided trajectories, key states of every m stored (`synvid`)
    accvideo  the 5-step student (trajectory + adversarial loss) and students for the 2-4 step
              frontier, each scored by ProcBench (`ablation`, without its trajectory-only row)
    gpd       progressive 48 -> 24 -> 12 -> 6 student with online targets (`distill gpd`)
    eval      the remaining ProcBench rows (GPD, 48-step teacher, held-out split)
    bench     end-to-end timing of every model in one interleaved run (`bench`)
    toy       the 1D flow-matching toy figures (`python -m toy`)
    report    RESULTS.md with tables, the frontier plot, sample frames; its figures beside it
    bundle    (with --bundle-dir) the three models with provenance, e.g. into assets/

A finished stage leaves `OUT/stages.json` entries (wall time, end time) and its outputs; a
rerun skips it. A stage killed mid-way resumes through the resume of the command it wraps
(teacher and distillation checkpoints, complete SynVid shards, cached score rows).
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from accvideo.eval.plots import plot_frontier
from accvideo.eval.scorer import Scorer
from accvideo.eval.tables import markdown_table, table_columns
from accvideo.experiments.ablation import run_ablation
from accvideo.experiments.bundle import git_commit
from accvideo.util.config import apply_overrides
from accvideo.util.io import atomic_write_text

log = logging.getLogger("accvideo.experiments.reproduce")

STAGES = ("teacher", "synvid", "accvideo", "gpd", "eval", "bench", "toy", "report", "bundle")


@dataclass
class Preset:
    """Sizes of every stage. `tiny` makes the bundled models; `smoke` is the same path in about
    a minute, for tests (its models are not meant to be good)."""

    teacher_overrides: tuple[str, ...] = ()
    synvid_num_prompts: int | None = None  # None: every train prompt
    synvid_samples_per_prompt: int = 6
    synvid_steps: int = 50
    synvid_batch: int = 6  # a prompt's seeds per teacher batch (several times faster than one by one)
    accvideo_m: int = 5
    # The trajectory-loss-only row of the ablation (`ablation --method accvideo` has it); left
    # out here to fit the 90-minute budget.
    trajectory_only: bool = False
    accvideo_steps: int = 1600
    frontier: tuple[int, ...] = (2, 3, 4)
    frontier_steps: int = 300
    accvideo_overrides: tuple[str, ...] = ("trainer.lr=2e-4", "method.adv_start=200")
    gpd_schedule: tuple[int, ...] = (48, 24, 12, 6)
    # stage 1 also bakes the guidance in; 400/400/600 left this teacher's 6-step student at 88.8
    # against 90.9 for the 48-step teacher (runs of 2026-11-23, docs/RESULTS.md says which is bundled)
    gpd_stage_steps: tuple[int, ...] = (800, 800, 1200)
    gpd_overrides: tuple[str, ...] = ("trainer.lr=2e-4",)
    num_videos: int = 24
    bench_repeats: int = 5
    bench_warmup: int = 1
    toy_seeds: int | None = None  # None: the toy's default
    toy_points: int | None = None


PRESETS: dict[str, Preset] = {
    "tiny": Preset(),
    "smoke": Preset(
        teacher_overrides=("vae.steps=3", "vae.stats_clips=8", "transformer.steps=4", "transformer.num_clips=32",
                           "transformer.batch_size=4", "vae.batch_size=2", "checkpoint_every=2", "log_every=1"),
        synvid_num_prompts=2, synvid_samples_per_prompt=2, synvid_batch=2, synvid_steps=10,
        accvideo_m=5, accvideo_steps=2, frontier=(2,), frontier_steps=2,
        accvideo_overrides=("trainer.batch_size=2", "method.adv_start=1", "trainer.log_every=1"),
        gpd_schedule=(10, 5), gpd_stage_steps=(2,), gpd_overrides=("trainer.batch_size=2", "trainer.log_every=1"),
        num_videos=2, bench_repeats=1, bench_warmup=0, toy_seeds=1, toy_points=64,
    ),
}


@dataclass
class Paths:
    out: Path
    results: Path  # the RESULTS.md file; its figures go to a sibling folder `results/`
    bundle_dir: Path | None = None
    teacher_run: Path = field(init=False)
    teacher: Path = field(init=False)
    synvid: Path = field(init=False)
    accvideo: Path = field(init=False)
    gpd: Path = field(init=False)
    scores: Path = field(init=False)
    figures: Path = field(init=False)

    def __post_init__(self):
        self.teacher_run = self.out / "teacher"
        self.teacher = self.teacher_run / "pipeline"
        self.synvid = self.out / "synvid"
        self.accvideo = self.out / "accvideo"
        self.gpd = self.out / "gpd"
        self.scores = self.out / "scores"
        self.figures = self.results.parent / "results"

    def student(self, m: int) -> Path:
        return self.accvideo / f"full-m{m}" / "pipeline"


class StageLog:
    """OUT/stages.json: when each stage finished and how long it took (summed over resumed runs)."""

    def __init__(self, out: Path):
        self.path = out / "stages.json"
        self.data = json.loads(self.path.read_text()) if self.path.exists() else {"stages": {}}

    def done(self, stage: str) -> bool:
        return stage in self.data["stages"] and self.data["stages"][stage].get("finished") is not None

    def _add(self, stage: str, seconds: float) -> dict:
        entry = self.data["stages"].setdefault(stage, {"wall_s": 0.0, "finished": None})
        entry["wall_s"] = round(entry["wall_s"] + seconds, 1)
        return entry

    def add_partial(self, stage: str, seconds: float) -> None:
        self._add(stage, seconds)
        self._write()

    def finish(self, stage: str, seconds: float, **extra) -> None:
        entry = self._add(stage, seconds)
        entry["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        entry.update(extra)
        self._write()

    def wall(self, stage: str) -> float:
        return float(self.data["stages"].get(stage, {}).get("wall_s", 0.0))

    def pipeline_wall(self) -> float:
        """The pipeline's wall time: its computing stages, not `report` and `bundle`, which only
        write out what the others measured (and rerun on every call)."""
        return sum(self.wall(s) for s in STAGES if s not in ("report", "bundle"))

    def _write(self) -> None:
        atomic_write_text(self.path, json.dumps(self.data, indent=2))


# ----------------------------------------------------------------------------- stages


def stage_teacher(p: Paths, preset: Preset) -> dict:
    from accvideo.training.recipes.teacher import TeacherTrainConfig, train_teacher
    from accvideo.util.config import load_config

    summary_file = p.teacher_run / "summary.json"
    if (p.teacher / "model_index.json").exists() and summary_file.exists():
        # finished before (e.g. by the same `train-teacher` command): rerunning would only
        # overwrite its summary, so read it instead
        return {"teacher_wall_s": json.loads(summary_file.read_text()).get("wall_s")}
    cfg = load_config(TeacherTrainConfig, None, ["preset=tiny", *preset.teacher_overrides])
    summary = train_teacher(cfg, p.teacher_run, resume=True)
    return {"teacher_wall_s": summary.get("wall_s")}


def synvid_store(preset: Preset) -> str:
    """The stored states: the key states of the main student and of every frontier student."""
    from accvideo.core.schedules import key_steps

    keep = set()
    for m in (preset.accvideo_m, *preset.frontier):
        keep.update(key_steps(preset.synvid_steps, m))
    return ",".join(str(i) for i in sorted(keep))


def stage_synvid(p: Paths, preset: Preset) -> dict:
    from accvideo.synvid.dataset import SynVidConfig, generate_synvid
    from accvideo.world import SPLITS, prompt_for

    prompts = "train"
    if preset.synvid_num_prompts is not None:
        p.out.mkdir(parents=True, exist_ok=True)
        source = p.out / "synvid-prompts.txt"
        source.write_text("\n".join(prompt_for(*c) for c in SPLITS["train"][: preset.synvid_num_prompts]) + "\n")
        prompts = str(source)
    k = preset.synvid_samples_per_prompt
    # shards of whole prompts (about SynVid's default size), so every batch holds `synvid_batch`
    # seeds when K is a multiple of it
    cfg = SynVidConfig(teacher=str(p.teacher), prompts=prompts, num_steps=preset.synvid_steps,
                       samples_per_prompt=k, store=synvid_store(preset), batch_size=preset.synvid_batch,
                       shard_size=k * max(1, SynVidConfig.shard_size // k))
    summary = generate_synvid(cfg, p.synvid)
    return {"synvid": summary.line()}


def stage_accvideo(p: Paths, preset: Preset) -> dict:
    scorer = Scorer(str(p.teacher), p.scores, "train", preset.num_videos)
    table = run_ablation(str(p.teacher), str(p.synvid), p.accvideo, num_key_steps=preset.accvideo_m,
                         frontier=preset.frontier, steps=preset.accvideo_steps, split="train",
                         num_videos=preset.num_videos, overrides=list(preset.accvideo_overrides),
                         frontier_steps=preset.frontier_steps, scorer=scorer,
                         trajectory_only=preset.trajectory_only)
    return {"rows": len(table)}


def stage_gpd(p: Paths, preset: Preset) -> dict:
    from accvideo.training.recipes.distill import GPDDistillConfig, run_gpd

    overrides = [*preset.gpd_overrides, f"method.stage_steps=[{','.join(map(str, preset.gpd_stage_steps))}]",
                 f"method.teacher_steps={preset.gpd_schedule[0]}",
                 f"method.schedule=[{','.join(str(n) for n in preset.gpd_schedule[1:])}]"]
    cfg = apply_overrides(GPDDistillConfig(), overrides)
    summary = run_gpd(str(p.teacher), p.gpd, cfg, resume=True)
    return {"stages": len(summary["stage_runs"])}


def teacher_steps(p: Paths) -> int:
    """The teacher's own step count (its saved sampling default): the reference of every row."""
    from accvideo.models.registry import read_sampling_defaults

    return int(read_sampling_defaults(p.teacher).get("num_steps", 50))


def _rows(p: Paths, preset: Preset) -> list[tuple[str, str, str, int | None]]:
    """(split, label, model, steps) of every ProcBench row of the report, in display order."""
    t, n, m = str(p.teacher), teacher_steps(p), preset.accvideo_m
    gpd_teacher, gpd_steps = preset.gpd_schedule[0], preset.gpd_schedule[-1]
    rows = [("train", f"teacher@{n}", t, n), ("train", f"teacher@{m}", t, m)]
    if preset.trajectory_only:
        rows.append(("train", "+ trajectory loss", str(p.accvideo / f"traj-m{m}" / "pipeline"), None))
    rows.append(("train", "+ adversarial", str(p.student(m)), None))
    for k in preset.frontier:
        rows += [("train", f"teacher@{k}", t, k), ("train", f"student m={k}", str(p.student(k)), None)]
    rows += [("train", f"teacher@{gpd_teacher}", t, gpd_teacher), ("train", f"teacher@{gpd_steps}", t, gpd_steps),
             ("train", "gpd", str(p.gpd / "pipeline"), None),
             ("heldout", f"teacher@{n}", t, n), ("heldout", f"teacher@{m}", t, m),
             ("heldout", "+ adversarial", str(p.student(m)), None), ("heldout", "gpd", str(p.gpd / "pipeline"), None)]
    seen, unique = set(), []
    for row in rows:
        if row[:2] not in seen:
            seen.add(row[:2])
            unique.append(row)
    return unique


def stage_eval(p: Paths, preset: Preset) -> dict:
    scorers = {split: Scorer(str(p.teacher), p.scores, split, preset.num_videos) for split in ("train", "heldout")}
    rows = [scorers[split].score(label, model, steps) for split, label, model, steps in _rows(p, preset)]
    table = pd.DataFrame(rows)
    table.to_csv(p.out / "procbench.csv", index=False)
    return {"rows": len(rows)}


def bench_models(p: Paths, preset: Preset) -> dict[str, str]:
    """Display name -> bench spec (NAME_OR_DIR[@STEPS]); the first is the speedup baseline."""
    t, n, m = str(p.teacher), teacher_steps(p), preset.accvideo_m
    gpd_teacher, gpd_steps = preset.gpd_schedule[0], preset.gpd_schedule[-1]
    specs = {f"teacher@{n}": f"{t}@{n}", f"teacher@{gpd_teacher}": f"{t}@{gpd_teacher}",
             f"teacher@{gpd_steps}": f"{t}@{gpd_steps}", f"teacher@{m}": f"{t}@{m}"}
    for k in preset.frontier:
        specs[f"teacher@{k}"] = f"{t}@{k}"
    specs[f"accvideo m={m}"] = str(p.student(m))
    for k in preset.frontier:
        specs[f"accvideo m={k}"] = str(p.student(k))
    specs["gpd"] = str(p.gpd / "pipeline")
    return specs


def stage_bench(p: Paths, preset: Preset) -> dict:
    from accvideo.eval.bench import run_speed_bench

    specs = bench_models(p, preset)
    result = run_speed_bench(list(specs.values()), repeats=preset.bench_repeats, warmup=preset.bench_warmup)
    rows = result.rows.copy()
    rows.insert(0, "name", list(specs))
    rows.to_csv(p.out / "bench.csv", index=False)
    return {"baseline_total_s": float(rows.total_s.iloc[0])}


def stage_toy(p: Paths, preset: Preset) -> dict:
    from toy.api import ToyConfig, run_toy
    from toy.figures import write_pngs
    from toy.teacher import get_teacher

    values = {}
    if preset.toy_seeds is not None:
        values["num_seeds"] = preset.toy_seeds
    if preset.toy_points is not None:
        values["num_points"] = preset.toy_points
    config = ToyConfig.from_dict(values)
    result = run_toy(config)
    out = p.out / "toy"
    write_pngs(result, get_teacher(config.teacher_config), out)
    result.table.to_csv(out / "useless.csv", index=False)
    return {"figures": sorted(f.name for f in out.glob("*.png"))}


# ----------------------------------------------------------------------------- report


def _comparison_grid(p: Paths, preset: Preset, path: Path, seed: int = 0) -> None:
    from accvideo.eval.grid import comparison_grid

    n, m = teacher_steps(p), preset.accvideo_m
    comparison_grid([(f"teacher {n} steps", p.teacher, n), (f"teacher {m} steps", p.teacher, m),
                     (f"AccVideo {m} steps", p.student(m), None),
                     (f"GPD {preset.gpd_schedule[-1]} steps", p.gpd / "pipeline", None)], path, seed=seed)


def _frontier_plot(procbench: pd.DataFrame, bench: pd.DataFrame, path: Path, m: int) -> None:
    """The train rows with the bench run's end-to-end seconds, through `plot_frontier`."""
    seconds = dict(zip(bench["name"], bench["total_s"]))
    train = procbench[procbench["split"] == "train"].copy()
    train["end_to_end_s"] = train["row"].map(lambda r: seconds.get(_bench_name(r, m)))
    plot_frontier(train, path)


def _bench_name(row: str, m: int) -> str:
    """A ProcBench row label -> its bench display name (`m`: the main AccVideo student's steps)."""
    if row == "+ adversarial":
        return f"accvideo m={m}"
    if row.startswith("student m="):
        return "accvideo " + row.removeprefix("student ")
    return row


def _fmt_seconds(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def stage_report(p: Paths, preset: Preset, stages: StageLog, command: str) -> dict:
    procbench = pd.read_csv(p.out / "procbench.csv")
    bench = pd.read_csv(p.out / "bench.csv")
    n, m = teacher_steps(p), preset.accvideo_m
    gpd_teacher, gpd_steps = preset.gpd_schedule[0], preset.gpd_schedule[-1]
    bench_by_name = bench.set_index("name")
    p.figures.mkdir(parents=True, exist_ok=True)
    _frontier_plot(procbench, bench, p.figures / "frontier.png", m)
    _comparison_grid(p, preset, p.figures / "samples.png")
    if (p.accvideo / "ablation.png").exists():
        shutil.copy(p.accvideo / "ablation.png", p.figures / "ablation.png")
    toy_dir = p.out / "toy"
    for png in sorted(toy_dir.glob("*.png")):
        shutil.copy(png, p.figures / f"toy-{png.name}")

    train = procbench[procbench["split"] == "train"].set_index("row")
    heldout = procbench[procbench["split"] == "heldout"].set_index("row")

    def bench_row(name: str) -> pd.Series:
        return bench_by_name.loc[name]

    def headline(label: str, row: str, name: str, base: str) -> dict:
        b, base_s = bench_row(name), float(bench_row(base)["total_s"])
        r = train.loc[row]
        return {"model": label, "steps": int(b["steps"]), "NFE": int(b["nfe"]),
                "end to end s": round(float(b["total_s"]), 3), "speedup": f"{base_s / float(b['total_s']):.2f}x",
                "speedup vs": base, "ProcBench total": r["total"],
                "held-out total": heldout.loc[row, "total"] if row in heldout.index else "",
                "PSNR to teacher@50": "" if pd.isna(r.get("psnr")) else f"{r['psnr']:.2f} dB"}

    head = pd.DataFrame([
        headline(f"tiny-teacher, {n} steps", f"teacher@{n}", f"teacher@{n}", f"teacher@{n}"),
        headline(f"tiny-teacher, {m} steps (no distillation)", f"teacher@{m}", f"teacher@{m}", f"teacher@{n}"),
        headline(f"tiny-accvideo (m = {m})", "+ adversarial", f"accvideo m={m}", f"teacher@{n}"),
        headline(f"tiny-teacher, {gpd_teacher} steps", f"teacher@{gpd_teacher}", f"teacher@{gpd_teacher}",
                 f"teacher@{gpd_teacher}"),
        headline(f"tiny-teacher, {gpd_steps} steps (no distillation)", f"teacher@{gpd_steps}",
                 f"teacher@{gpd_steps}", f"teacher@{gpd_teacher}"),
        headline(f"tiny-gpd ({'->'.join(map(str, preset.gpd_schedule))})", "gpd", "gpd", f"teacher@{gpd_teacher}"),
    ])
    ablation = procbench[(procbench["split"] == "train") & procbench["row"].isin(
        [f"teacher@{n}", f"teacher@{m}", "+ trajectory loss", "+ adversarial"])]
    frontier_rows = ([f"teacher@{k}" for k in (*preset.frontier, m)] + [f"student m={k}" for k in preset.frontier]
                     + ["+ adversarial"])
    frontier = procbench[(procbench["split"] == "train") & procbench["row"].isin(frontier_rows)].copy()
    frontier["end to end s"] = frontier["row"].map(lambda r: round(float(bench_row(_bench_name(r, m))["total_s"]), 3))
    frontier = frontier.sort_values(["steps", "row"])
    stage_rows = pd.DataFrame([{"stage": s, "wall": _fmt_seconds(stages.wall(s)),
                                "finished": stages.data["stages"].get(s, {}).get("finished", "")}
                               for s in STAGES if s in stages.data["stages"]])
    bench_cols = ["name", "steps", "nfe", "text_encoder_s", "denoising_s", "vae_decode_s", "total_s", "speedup"]
    bench_table = bench[bench_cols].copy()
    for c in bench_cols[3:]:
        bench_table[c] = bench_table[c].map(lambda v: f"{v:.4f}" if not isinstance(v, str) else v)
    toy_table = pd.read_csv(toy_dir / "useless.csv").round(4) if (toy_dir / "useless.csv").exists() else None
    rel = p.figures.name

    text = [
        "# Results",
        "",
        "Everything on this page was measured by one command, on the machine and at the commit below.",
        "Rerun it to reproduce every model and figure; it resumes where it stopped.",
        "",
        "```bash",
        command,
        "```",
        "",
        f"- commit `{git_commit()}`, written {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- wall time of the pipeline (sum of the stages from teacher to toy): "
        f"**{_fmt_seconds(stages.pipeline_wall())}**",
        f"- Python {sys.version.split()[0]}, torch {_torch_version()}, {_cpu_line()}",
        "",
        "## Headline",
        "",
        "End-to-end seconds and speedups come from one interleaved `bench` run (medians of "
        f"{preset.bench_repeats} repeats); ProcBench from {preset.num_videos} videos per row on the train split "
        "and on the held-out split (combinations never trained on). PSNR is the agreement with the 50-step "
        "teacher on the same prompts and seeds.",
        "",
        markdown_table(head),
        "## AccVideo against the teacher at its step count",
        "",
        *([] if preset.trajectory_only else [
            "The trajectory-loss-only row of the ablation is left out of this command to fit its time "
            "budget; `python -m accvideo ablation --method accvideo` trains it (docs/DISTILL.md).", ""]),
        markdown_table(ablation[table_columns(ablation)]),
        f"![ablation]({rel}/ablation.png)",
        "",
        "## Speed-quality frontier",
        "",
        "Students distilled for m = " + ", ".join(map(str, (*preset.frontier, m))) +
        " steps against the undistilled teacher at the same step counts.",
        "",
        markdown_table(frontier[["row", "steps", "nfe", "total", "psnr", "end to end s"]]),
        f"![frontier]({rel}/frontier.png)",
        "",
        "## Same prompts, same seeds",
        "",
        "Every other frame of four train prompts and two held-out combinations (seed 0).",
        "",
        f"![samples]({rel}/samples.png)",
        "",
        "## Every ProcBench row",
        "",
        markdown_table(procbench[table_columns(procbench)]),
        "## Timing per stage of generation",
        "",
        markdown_table(bench_table),
    ]
    if toy_table is not None:
        text += ["## The 1D toy (Fig. 2)", "",
                 "Share of useless data points against the data mismatch M, forward diffusion against the "
                 "teacher's own trajectories (docs/TOY.md explains the toy).", "",
                 markdown_table(toy_table)]
        text += [f"![toy {f.stem}]({rel}/{f.name})" for f in sorted(p.figures.glob("toy-*.png"))] + [""]
    text += ["## Wall time per pipeline stage", "", markdown_table(stage_rows)]
    p.results.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(p.results, "\n".join(text))
    return {"results": str(p.results)}


def _torch_version() -> str:
    import torch

    return torch.__version__


def _cpu_line() -> str:
    import os

    return f"{os.cpu_count()} CPU cores"


def stage_bundle(p: Paths, preset: Preset, stages: StageLog, command: str) -> dict:
    from accvideo.experiments.bundle import bundle_run

    if p.bundle_dir is None:
        return {"skipped": "no --bundle-dir"}
    procbench = pd.read_csv(p.out / "procbench.csv")
    bench = pd.read_csv(p.out / "bench.csv")

    def scores(row: str) -> dict:
        rows = procbench[procbench["row"] == row]
        return {f"procbench_{r['split']}": float(r["total"]) for _, r in rows.iterrows()}

    n, m = teacher_steps(p), preset.accvideo_m
    seconds = dict(zip(bench["name"], bench["total_s"]))
    made = []
    reproduce = {"command": command, "out": str(p.out), "pipeline_wall_s": round(stages.pipeline_wall(), 1),
                 "stage_walls_s": {s: v.get("wall_s") for s, v in stages.data["stages"].items()}}
    for name, run, row, bench_name in (("tiny-teacher", p.teacher_run, f"teacher@{n}", f"teacher@{n}"),
                                       ("tiny-accvideo", p.accvideo / f"full-m{m}", "+ adversarial",
                                        f"accvideo m={m}"),
                                       ("tiny-gpd", p.gpd, "gpd", "gpd")):
        extra = {"reproduce": reproduce, "scores": {**scores(row), "bench_total_s": seconds.get(bench_name)}}
        made.append(str(bundle_run(run, name, command, dest_root=p.bundle_dir, extra=extra)))
    return {"bundled": made}


# ----------------------------------------------------------------------------- driver


def run_reproduce(out: str | Path, preset: str = "tiny", results: str | Path | None = None,
                  bundle_dir: str | Path | None = None, only: tuple[str, ...] = (), command: str = "") -> dict:
    """Run every stage not yet finished; returns OUT/stages.json's content."""
    if preset not in PRESETS:
        raise ValueError(f"`preset` must be one of {sorted(PRESETS)} but is {preset!r}.")
    unknown = [s for s in only if s not in STAGES]
    if unknown:
        raise ValueError(f"`stages` must be names from {list(STAGES)} but has {unknown}.")
    settings = PRESETS[preset]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    p = Paths(out, Path(results) if results else out / "RESULTS.md", Path(bundle_dir) if bundle_dir else None)
    stages = StageLog(out)
    command = command or f"python -m accvideo reproduce --preset {preset} --out {out}"
    runners = {
        "teacher": lambda: stage_teacher(p, settings),
        "synvid": lambda: stage_synvid(p, settings),
        "accvideo": lambda: stage_accvideo(p, settings),
        "gpd": lambda: stage_gpd(p, settings),
        "eval": lambda: stage_eval(p, settings),
        "bench": lambda: stage_bench(p, settings),
        "toy": lambda: stage_toy(p, settings),
        "report": lambda: stage_report(p, settings, stages, command),
        "bundle": lambda: stage_bundle(p, settings, stages, command),
    }
    todo = [s for s in STAGES if (not only or s in only)]
    with tqdm(total=len(todo), desc="reproduce", unit="stage") as bar:
        for stage in todo:
            always = stage in ("report", "bundle") or bool(only)  # cheap, and asked for again
            if stages.done(stage) and not always:
                bar.update(1)
                continue
            bar.set_postfix_str(stage)
            log.info("stage %s: starting", stage)
            start = time.perf_counter()
            try:
                info = runners[stage]()
            except BaseException:
                stages.add_partial(stage, time.perf_counter() - start)
                raise
            seconds = time.perf_counter() - start
            if stage == "teacher" and info.get("teacher_wall_s") and seconds < 0.5 * info["teacher_wall_s"]:
                seconds = float(info["teacher_wall_s"])  # trained earlier by the same command: its own clock
            stages.finish(stage, seconds, **info)
            log.info("stage %s: done in %s", stage, _fmt_seconds(seconds))
            bar.update(1)
    return stages.data
