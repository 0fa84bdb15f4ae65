"""Evaluation: ProcBench (exact quality on the procedural world) and the speed benchmark.

Layers: `detectors` (read colour, shape, motion from a uint8 video) -> `metrics` (flicker,
consistency, PSNR) and `features` (hand-crafted feature map, Frechet distance) ->
`procbench` (generate + score a model) and `bench` (interleaved per-stage timing) -> `cli`.

Names are imported lazily, so `python -m accvideo --help` does not pay for torch and pandas.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "bench": ("BenchResult", "default_models", "parse_model_spec", "run_speed_bench"),
    "detectors": ("Detection", "detect", "to_uint8"),
    "features": ("FEATURE_NAMES", "frechet_distance", "video_features"),
    "metrics": ("flicker_score", "object_consistency", "psnr"),
    "procbench": ("CHANCE", "ProcBenchResult", "benchmark_prompts", "generate_videos", "real_videos",
                  "run_procbench", "score_videos", "total_score", "vae_roundtrip"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
