"""Training-free caches swept over thresholds: speed and ProcBench per threshold, beside the model.

For a base model (the teacher) and a list of cache variants (`tiny-teacher+fbcache@0.05`, ...),
one interleaved `bench` run times the base and every variant (both speedups against the base),
then ProcBench scores each on the same prompts and seeds, with PSNR agreement against the base.

    python -m accvideo cache-sweep --model tiny-teacher --fbcache 0.05,0.1,0.2 --magcache 0.06,0.12,0.25
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from accvideo.eval.bench import parse_model_spec, run_speed_bench
from accvideo.eval.procbench import run_procbench

SWEEP_COLUMNS = ["model", "steps", "nfe", "skipped", "total_s", "denoising_s", "speedup", "denoise_speedup",
                 "procbench", "psnr_db"]


def cache_variants(model: str, fbcache: Sequence[float] = (), magcache: Sequence[float] = ()) -> list[str]:
    """Model names of the sweep: `MODEL+fbcache@T` per FBCache threshold, `MODEL+magcache@T` per MagCache one."""
    return [f"{model}+fbcache@{t:g}" for t in fbcache] + [f"{model}+magcache@{t:g}" for t in magcache]


def run_cache_sweep(model: str, variants: Sequence[str], num_videos: int = 12, split: str = "train",
                    repeats: int = 3, extra: Sequence[str] = ()) -> pd.DataFrame:
    """One row per model: the base `model`, its cache `variants` and `extra` models (students) with
    bench seconds, both speedups against `model`, the median skipped passes per video, ProcBench
    total on `split` (`num_videos` videos) and PSNR to the base's videos."""
    specs = [model, *variants, *extra]
    bench = run_speed_bench(specs, repeats=repeats, warmup=1).rows.set_index("model")
    rows = []
    base, base_steps = parse_model_spec(model)
    for spec in specs:
        name, steps = parse_model_spec(spec)
        result = run_procbench(name, num_steps=steps, split=split, num_videos=num_videos,
                               reference=None if spec == model else base, reference_steps=base_steps)
        b = bench.loc[spec]
        rows.append({"model": spec, "steps": int(b.steps), "nfe": int(b.nfe), "skipped": float(b.skipped),
                     "total_s": float(b.total_s), "denoising_s": float(b.denoising_s), "speedup": float(b.speedup),
                     "denoise_speedup": float(b.denoise_speedup), "procbench": float(result.total),
                     "psnr_db": float(result.scores["psnr"]) if "psnr" in result.scores else None})
    return pd.DataFrame(rows, columns=SWEEP_COLUMNS)
