"""ProcBench rows against one reference, cached as JSON: what the ablations and `reproduce` score with.

A row is one model (at a step count, or its own sampling defaults) on one split: its
ProcBench scores, PSNR agreement with the reference (the teacher at its own step count) on
the same prompts and seeds, seconds per video and the latents' high-frequency energy.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from accvideo.eval.procbench import _load, benchmark_prompts, generate_videos, score_videos
from accvideo.generation import resolve_sampling
from accvideo.models.registry import load_model
from accvideo.training.methods.gpd import high_frequency_ratio
from accvideo.util.io import atomic_write_text

log = logging.getLogger("accvideo.eval.scorer")


class Scorer:
    """ProcBench rows against one reference (the teacher at its own step count), cached as JSON.

    The reference videos are generated once per scorer and reused for every row's PSNR, so
    scoring k rows costs k generations, not 2k. A row whose JSON exists is read, not rescored.
    """

    def __init__(self, teacher, cache: str | Path, split: str = "train", num_videos: int = 32,
                 teacher_steps: int | None = None):
        self.teacher, self.split, self.num_videos = teacher, split, num_videos
        self.teacher_steps = teacher_steps or resolve_sampling(load_model(teacher)).num_steps
        self.cache = Path(cache)
        self.cache.mkdir(parents=True, exist_ok=True)
        self._reference: list | None = None

    def reference_videos(self) -> list:
        if self._reference is None:
            pairs = benchmark_prompts(self.split, self.num_videos)
            self._reference, _ = generate_videos(_load(self.teacher)[0], pairs, self.teacher_steps, desc="reference")
        return self._reference

    def score(self, label: str, model, num_steps: int | None = None) -> dict:
        """One row: ProcBench of `model` (at `num_steps`, or its own defaults), PSNR vs the reference."""
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
