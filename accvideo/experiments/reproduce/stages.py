"""The stages of `reproduce` that compute (teacher to toy, and bundle), where they write
(`Paths`) and when they finished (`StageLog`, OUT/stages.json)."""

from __future__ import annotations

import fcntl
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from accvideo.eval.bench import run_speed_bench
from accvideo.eval.scorer import Scorer
from accvideo.experiments.ablation import run_ablation, student_run
from accvideo.experiments.bundle import bundle_decoder, bundle_run
from accvideo.experiments.reproduce.presets import Preset, synvid_store
from accvideo.experiments.reproduce.rows import SPLITS, bench_specs, procbench_rows, report_rows

# synvid, training and world are reworked elsewhere: this module imports them here only
from accvideo.synvid import SynVidConfig, generate_synvid
from accvideo.training.recipes.decoder import DecoderDistillConfig, run_decoder_distill
from accvideo.training.recipes.gpd import GPDDistillConfig, run_gpd
from accvideo.training.recipes.teacher import TeacherTrainConfig, train_teacher
from accvideo.util.config import apply_overrides, load_config, to_dict
from accvideo.util.io import atomic_write_text
from accvideo.world import SPLITS as WORLD_SPLITS
from accvideo.world import prompt_for

STAGES = ("teacher", "teacher-eval", "synvid", "accvideo", "gpd", "decoder", "eval", "bench", "toy", "report",
          "bundle")


@dataclass
class Paths:
    """Where every stage writes, under OUT (the figures beside RESULTS.md)."""

    out: Path
    results: Path  # the RESULTS.md file; its figures go to a sibling folder `results/`
    bundle_dir: Path | None = None
    teacher_run: Path = field(init=False)
    teacher: Path = field(init=False)
    synvid: Path = field(init=False)
    accvideo: Path = field(init=False)
    gpd: Path = field(init=False)
    decoder: Path = field(init=False)  # a `distill decoder` run: the decoder in decoder/decoder
    scores: Path = field(init=False)
    figures: Path = field(init=False)

    def __post_init__(self):
        self.teacher_run = self.out / "teacher"
        self.teacher = self.teacher_run / "pipeline"
        self.synvid = self.out / "synvid"
        self.accvideo = self.out / "accvideo"
        self.gpd = self.out / "gpd"
        self.decoder = self.out / "decoder"
        self.scores = self.out / "scores"
        self.figures = self.results.parent / "results"

    def student(self, m: int, adversarial: bool = True) -> Path:
        return self.accvideo / student_run(m, adversarial) / "pipeline"


class StageLog:
    """OUT/stages.json: when each stage finished and how long it took (summed over resumed runs).

    With `reproduce --jobs 2` a second process writes it too: every write reloads the file under
    a lock and changes only its own stage, and `done` reads the file again."""

    def __init__(self, out: Path):
        self.path = out / "stages.json"
        self.data = self._read()

    def _read(self) -> dict:
        return json.loads(self.path.read_text()) if self.path.exists() else {"stages": {}}

    def done(self, stage: str) -> bool:
        self.data = self._read()
        return stage in self.data["stages"] and self.data["stages"][stage].get("finished") is not None

    def _update(self, change) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            self.data = self._read()
            change(self.data)
            atomic_write_text(self.path, json.dumps(self.data, indent=2))

    @staticmethod
    def _add(data: dict, stage: str, seconds: float) -> dict:
        entry = data["stages"].setdefault(stage, {"wall_s": 0.0, "finished": None})
        entry["wall_s"] = round(entry["wall_s"] + seconds, 1)
        return entry

    def add_partial(self, stage: str, seconds: float) -> None:
        self._update(lambda data: self._add(data, stage, seconds))

    def finish(self, stage: str, seconds: float, **extra) -> None:
        def change(data):
            entry = self._add(data, stage, seconds)
            entry["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
            entry.update(extra)

        self._update(change)

    def add_join_wait(self, seconds: float) -> None:
        """Time the main process waited at the end of its branch for the side process (`--jobs 2`)."""
        def change(data):
            data["join_wait_s"] = round(data.get("join_wait_s", 0.0) + seconds, 1)

        self._update(change)

    def wall(self, stage: str) -> float:
        return float(self.data["stages"].get(stage, {}).get("wall_s", 0.0))

    def pipeline_wall(self) -> float:
        """The pipeline's wall time: its computing stages, not `report` and `bundle`, which only
        write out what the others measured (and rerun on every call). Stages of the side process
        (`--jobs 2`) ran beside the main process's: they count only through the main process's
        wait for them."""
        main = [s for s in STAGES if s not in ("report", "bundle")
                and self.data["stages"].get(s, {}).get("process") != "side"]
        return sum(self.wall(s) for s in main) + float(self.data.get("join_wait_s", 0.0))


def fmt_seconds(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


# ----------------------------------------------------------------------------- stages


def stage_teacher(p: Paths, preset: Preset) -> dict:
    summary_file = p.teacher_run / "summary.json"
    if (p.teacher / "model_index.json").exists() and summary_file.exists():
        # finished before (e.g. by the same `train-teacher` command): rerunning would only
        # overwrite its summary, so read it instead
        return {"teacher_wall_s": json.loads(summary_file.read_text()).get("wall_s")}
    compiled = ["transformer.compile=true"] if preset.compile else []
    cfg = load_config(TeacherTrainConfig, preset.teacher_config, ["preset=tiny", *preset.teacher_overrides, *compiled])
    summary = train_teacher(cfg, p.teacher_run, resume=True)
    return {"teacher_wall_s": summary.get("wall_s")}


def stage_synvid(p: Paths, preset: Preset) -> dict:
    prompts = "train"
    if preset.synvid_num_prompts is not None:
        p.out.mkdir(parents=True, exist_ok=True)
        source = p.out / "synvid-prompts.txt"
        source.write_text("\n".join(prompt_for(*c) for c in WORLD_SPLITS["train"][: preset.synvid_num_prompts]) + "\n")
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
    overrides = [*preset.gpd_overrides, *(["trainer.compile=true"] if preset.compile else []),
                 f"method.stage_steps=[{','.join(map(str, preset.gpd_stage_steps))}]",
                 f"method.teacher_steps={preset.gpd_schedule[0]}",
                 f"method.schedule=[{','.join(str(n) for n in preset.gpd_schedule[1:])}]"]
    cfg = apply_overrides(GPDDistillConfig(), overrides)
    summary = run_gpd(str(p.teacher), p.gpd, cfg, resume=True)
    return {"stages": len(summary["stage_runs"])}


def decoder_config(preset: Preset) -> DecoderDistillConfig:
    """The decoder stage's config (checked: `run_reproduce` builds it before the first stage)."""
    cfg = apply_overrides(DecoderDistillConfig(), [*preset.decoder_overrides, f"trainer.steps={preset.decoder_steps}"])
    cfg.method.validate()
    return cfg


def stage_decoder(p: Paths, preset: Preset) -> dict:
    """The lightweight decoder of the teacher's VAE: `distill decoder` (its recipe function) on the
    teacher, then the CLI's check against the VAE on the teacher's samples, into OUT/decoder. With
    `method.source=synvid` it learns the final states of the `synvid` stage's trajectories."""
    from accvideo.eval.decoder import record_check

    cfg = decoder_config(preset)
    synvid = str(p.synvid) if cfg.method.source == "synvid" else None
    summary_file = p.decoder / "summary.json"
    summary = json.loads(summary_file.read_text()) if summary_file.exists() else {}
    trained = (p.decoder / "decoder" / "decoder_info.json").exists() and \
        summary.get("config") == json.loads(json.dumps(to_dict(cfg), default=str))
    if not trained:  # else finished before, killed in its check or before the stage log: no retraining
        summary = run_decoder_distill(str(p.teacher), p.decoder, cfg, synvid=synvid, resume=True)
    if preset.decoder_check_videos > 0 and "check" not in summary:
        summary["check"] = record_check(str(p.teacher), p.decoder, num_videos=preset.decoder_check_videos)
    check = summary.get("check") or {}
    return {"heldout_psnr_db": summary.get("heldout_psnr_db"), "decoder_params": summary.get("decoder_params"),
            **{k: check[k] for k in ("psnr_db", "decode_speedup") if k in check}}


def _scorers(p: Paths, preset: Preset) -> tuple[dict[str, Scorer], Scorer | None]:
    """The `num_videos` scorer of each split, and the separation scorer (None: the preset has none).

    The separation one scores totals only: each student against the teacher at its own steps
    again, on more videos; both are cheap (few steps), and their difference is what the headline
    claims. Without agreement it needs no 50-step reference videos."""
    scorers = {split: Scorer(str(p.teacher), p.scores, split, preset.num_videos) for split in SPLITS}
    wide = None
    if preset.separation_videos > preset.num_videos:
        wide = Scorer(str(p.teacher), p.scores / f"n{preset.separation_videos}", "train", preset.separation_videos,
                      agreement=False)
    return scorers, wide


def _separation_rows(report) -> list:
    """The report rows of each student with a `versus` and of the teacher at its steps, once each,
    in row order."""
    by_label = {row.label: row for row in report}
    labels = dict.fromkeys(label for row in report if row.versus for label in (row.label, row.versus[0]))
    return [by_label[label] for label in labels]


def stage_teacher_eval(p: Paths, preset: Preset) -> dict:
    """The teacher's own rows, at every step count, on both splits and on the separation videos
    (and so the reference videos every later row's PSNR needs). None needs a student: with
    `--jobs 2` the side process scores them while the main one trains, and `eval` reads them."""
    scorers, wide = _scorers(p, preset)
    report = report_rows(p, preset)
    rows = [scorers[split].score(row.label, str(row.model), row.steps)
            for split, row in procbench_rows(report) if row.model == p.teacher]
    if wide is not None:
        rows += [wide.score(row.label, str(row.model), row.steps)
                 for row in _separation_rows(report) if row.model == p.teacher]
    return {"rows": len(rows)}


def stage_eval(p: Paths, preset: Preset) -> dict:
    scorers, wide = _scorers(p, preset)
    report = report_rows(p, preset)  # once: it loads the teacher to read its step count
    rows = [scorers[split].score(row.label, str(row.model), row.steps) for split, row in procbench_rows(report)]
    table = pd.DataFrame(rows)
    table.to_csv(p.out / "procbench.csv", index=False)
    pairs = separation_rows(scorers["train"], report, [r for r in rows if r["split"] == "train"])
    if wide is not None:
        scored = [wide.score(row.label, str(row.model), row.steps) for row in _separation_rows(report)]
        pairs += separation_rows(wide, report, scored, own_steps_only=True)
    pd.DataFrame(pairs).to_csv(p.out / "separation.csv", index=False)
    return {"rows": len(rows), "pairs": len(pairs)}


def separation_rows(scorer: Scorer, rows, scored: list[dict], own_steps_only: bool = False) -> list[dict]:
    """Each student against its `versus` rows (`own_steps_only`: the first, the teacher at the
    student's steps) on the same prompts and seeds: both totals with their own 95% intervals,
    whether those overlap, and A - B with its paired 95% interval (an interval that excludes 0
    separates them even where the separate intervals overlap). A pair whose rows have no cached
    reads (scored before reads were kept) is left out."""
    totals = {r["row"]: r for r in scored}
    out = []
    for row in rows:
        for other in row.versus[:1] if own_steps_only else row.versus:
            diff = scorer.paired(row.label, other)
            if diff is None:
                continue
            (a_lo, a_hi), (b_lo, b_hi) = totals[row.label]["total_ci"], totals[other]["total_ci"]
            lo, hi = diff["total_ci"]
            out.append({"A": row.headline or row.label, "B": other, "videos": scorer.num_videos,
                        "A total": totals[row.label]["total"],
                        "A 95% CI": f"[{a_lo:.2f}, {a_hi:.2f}]", "B total": totals[other]["total"],
                        "B 95% CI": f"[{b_lo:.2f}, {b_hi:.2f}]", "intervals overlap": a_lo <= b_hi and b_lo <= a_hi,
                        "A - B (paired)": round(diff["total"], 2), "paired 95% CI": f"[{lo:+.2f}, {hi:+.2f}]",
                        "separated": "A higher" if lo > 0 else "B higher" if hi < 0 else "no"})
    return out


def stage_bench(p: Paths, preset: Preset) -> dict:
    specs = bench_specs(report_rows(p, preset))
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


def stage_bundle(p: Paths, preset: Preset, stages: StageLog, command: str) -> dict:
    if p.bundle_dir is None:
        return {"skipped": "no --bundle-dir"}
    procbench = pd.read_csv(p.out / "procbench.csv")
    bench = pd.read_csv(p.out / "bench.csv")

    def scores(row: str) -> dict:
        rows = procbench[procbench["row"] == row]
        return {f"procbench_{r['split']}": float(r["total"]) for _, r in rows.iterrows()}

    seconds = dict(zip(bench["name"], bench["total_s"]))
    made = []
    reproduce = {"command": command, "out": str(p.out), "pipeline_wall_s": round(stages.pipeline_wall(), 1),
                 "stage_walls_s": {s: v.get("wall_s") for s, v in stages.data["stages"].items()}}
    for row in report_rows(p, preset):
        if row.bundle is None:
            continue
        extra = {"reproduce": reproduce, "scores": {**scores(row.label), "bench_total_s": seconds.get(row.bench)}}
        made.append(str(bundle_run(row.run, row.bundle, command, dest_root=p.bundle_dir, extra=extra)))
    made.append(str(bundle_decoder(p.decoder, command, dest_root=p.bundle_dir, name="tiny-decoder",
                                   extra={"reproduce": reproduce})))
    return {"bundled": made}
