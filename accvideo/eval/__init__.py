"""Evaluation: ProcBench (exact quality on the procedural world) and the speed benchmark.

Layers: `detectors` (read colour, shape, motion from a uint8 video) -> `metrics` (flicker,
consistency, PSNR) and `features` (hand-crafted feature map, Frechet distance) ->
`dimensions` (set-level scores and bootstrap CIs) ->
`procbench` (generate + score a model) and `bench` (interleaved per-stage timing) ->
`scorer` (cached ProcBench rows against a reference), `tables` (markdown, end-to-end seconds),
`plots` (figures, the frontier) and `grid` (the same prompts through several models) ->
`accvideo.experiments` and `cli`. Nothing here imports `accvideo.experiments`.

Names are imported lazily, so `python -m accvideo --help` does not pay for torch and pandas.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "bench": ("BenchResult", "default_models", "parse_model_spec", "run_speed_bench"),
    "detectors": ("Detection", "detect", "to_uint8"),
    "dimensions": ("WEIGHTS_V1", "WEIGHTS_V2", "total_score"),
    "features": ("FEATURE_NAMES", "frechet_distance", "video_features"),
    "grid": ("GRID_PROMPTS", "comparison_grid"),
    "metrics": ("flicker_score", "object_consistency", "psnr"),
    "procbench": ("CHANCE", "ProcBenchResult", "benchmark_prompts", "generate_videos", "real_videos",
                  "run_procbench", "score_videos", "vae_roundtrip"),
    "scorer": ("Scorer",),
    "tables": ("add_bench", "markdown_table", "table_columns"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
