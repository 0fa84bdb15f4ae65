"""How much faster do the `reproduce` stages train under torch.compile (`trainer.compile`) on this
CPU? Each job runs twice, plain and compiled, the same short run of the real command. From the
runs' metrics.jsonl: the steady rate (steps per second after the first logged interval, which
holds the compile) and the first interval's extra seconds.

    python scripts/compile_check.py --jobs teacher,accvideo --threads 1 --out runs/compile-check/a &
    python scripts/compile_check.py --jobs gpd --threads 1 --out runs/compile-check/b

Prints one JSON row per job and writes them to OUT/compile_check.json. Run it on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _commands(job: str, out: Path, steps: int, threads: int, synvid: str) -> tuple[list[str], str, Path]:
    """(argv, the override that turns compile on, the folder holding metrics.jsonl files)."""
    py = [sys.executable, "-m", "accvideo"]
    if job == "teacher":
        return ([*py, "train-teacher", "--config", "configs/teacher-world-v2.yaml", "--out", str(out), "--resume",
                 "never", "--set", "vae.steps=10", "--set", "vae.stats_clips=64", "--set", "transformer.num_clips=512",
                 "--set", f"transformer.steps={steps}", "--set", "log_every=25", "--set", f"threads={threads}"],
                "transformer.compile=true", out)
    if job == "accvideo":
        return ([*py, "distill", "accvideo", "--teacher", "tiny-teacher", "--synvid", synvid, "--out", str(out),
                 "--resume", "never", "--set", f"trainer.steps={steps}", "--set", "trainer.log_every=10",
                 "--set", f"trainer.threads={threads}", "--set", "trainer.lr=2e-4",
                 "--set", f"method.adv_start={steps // 4}"], "trainer.compile=true", out)
    if job == "gpd":
        per_stage = max(10, steps // 3)
        return ([*py, "distill", "gpd", "--teacher", "tiny-teacher", "--schedule", "48,24,12,6", "--out", str(out),
                 "--resume", "never", "--set", f"method.stage_steps=[{per_stage},{per_stage},{per_stage}]",
                 "--set", "trainer.log_every=10", "--set", f"trainer.threads={threads}", "--set", "trainer.lr=2e-4"],
                "trainer.compile=true", out)
    raise ValueError(f"`--jobs` must name teacher, accvideo or gpd but has {job!r}.")


def _steady(folder: Path) -> tuple[float, float]:
    """(steady steps per second, extra seconds of the first interval) over every metrics.jsonl under
    `folder` (one per training stage): each file's records after its first."""
    steps, seconds, extra = 0, 0.0, 0.0
    for path in sorted(folder.rglob("metrics.jsonl")):
        by_stage: dict = {}
        for line in path.read_text().splitlines():
            record = json.loads(line)
            by_stage.setdefault(record.get("stage"), []).append(record)
        for records in by_stage.values():
            if len(records) < 3:
                continue
            rate = (records[-1]["step"] - records[0]["step"]) / (records[-1]["elapsed_s"] - records[0]["elapsed_s"])
            steps += records[-1]["step"] - records[0]["step"]
            seconds += records[-1]["elapsed_s"] - records[0]["elapsed_s"]
            extra += records[0]["elapsed_s"] - records[0]["step"] / rate
    if not steps:
        raise RuntimeError(f"no metrics.jsonl with 3 or more records under {folder}; raise `--steps`.")
    return steps / seconds, extra


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", default="teacher,accvideo,gpd")
    parser.add_argument("--steps", type=int, default=150, help="training steps per run (gpd: over its 3 stages)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--synvid", default="runs/repro-v3/synvid", help="the SynVid folder AccVideo trains on")
    parser.add_argument("--out", default="runs/compile-check")
    args = parser.parse_args()
    out = Path(args.out)
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "HF_HUB_OFFLINE": "1"}
    rows = []
    for job in args.jobs.split(","):
        row: dict = {"job": job, "threads": args.threads}
        for mode in ("plain", "compiled"):
            folder = out / f"{job}-{mode}"
            shutil.rmtree(folder, ignore_errors=True)
            argv, switch, metrics = _commands(job, folder, args.steps, args.threads, args.synvid)
            if mode == "compiled":
                argv += ["--set", switch]
            start = time.perf_counter()
            subprocess.run(argv, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            row[f"{mode}_wall_s"] = round(time.perf_counter() - start, 1)
            rate, extra = _steady(metrics)
            row[f"{mode}_steps_per_s"], row[f"{mode}_first_interval_extra_s"] = round(rate, 3), round(extra, 1)
        row["speedup"] = round(row["compiled_steps_per_s"] / row["plain_steps_per_s"], 2)
        print(json.dumps(row), flush=True)
        rows.append(row)
    out.mkdir(parents=True, exist_ok=True)
    (out / "compile_check.json").write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
