"""ProcBench rows against one reference, cached as JSON: what the ablations and `reproduce` score with.

A row is one model (at a step count, or its own sampling defaults) on one split: its
ProcBench scores, PSNR agreement with the reference (the teacher at its own step count) on
the same prompts and seeds, seconds per video and the latents' high-frequency energy. Beside
each row's JSON, its per-video reads (`<row>.reads.npz`), so two rows pair up later
(`Scorer.paired`: the difference with its paired interval) without generating a video again.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch

from accvideo.eval.dimensions import Reads, load_reads, paired_difference, save_reads, with_cis
from accvideo.eval.procbench import _load, benchmark_prompts, generate_videos, read_videos, world_of_model
from accvideo.generation import resolve_sampling
from accvideo.models.registry import load_model
from accvideo.training.methods.gpd import high_frequency_ratio
from accvideo.util.io import atomic_write_bytes, atomic_write_text

log = logging.getLogger("accvideo.eval.scorer")


def _rounded(value, digits: int = 4):
    """A score or a [lo, hi] interval, rounded for the JSON row."""
    if isinstance(value, list | tuple):
        return [round(float(v), digits) for v in value]
    return round(float(value), digits)


class Scorer:
    """ProcBench rows against one reference (the teacher at its own step count), cached as JSON.

    The reference videos are generated once per scorer and reused for every row's PSNR, so
    scoring k rows costs k generations, not 2k (the reference row itself reuses them). A row
    whose JSON exists is read, not rescored. Every model is scored against real clips of its
    own world (`world_of_model`), with bootstrap 95% intervals (`<name>_ci`).

    `agreement=False` leaves out the reference and what needs it (`psnr`, `motion_ratio`; neither is
    in the total): a row then costs only its own videos, not the teacher's many-step ones.
    """

    def __init__(self, teacher, cache: str | Path, split: str = "train", num_videos: int = 32,
                 teacher_steps: int | None = None, agreement: bool = True):
        self.teacher, self.split, self.num_videos, self.agreement = teacher, split, num_videos, agreement
        self.teacher_steps = teacher_steps or resolve_sampling(load_model(teacher)).num_steps
        self.cache = Path(cache)
        self.cache.mkdir(parents=True, exist_ok=True)
        self._reference: tuple[list, list] | None = None
        self._saved: list | None = None  # the reference videos another scorer saved

    def reference_videos(self) -> list:
        """The reference's videos of the scorer's (prompt, seed) pairs (uint8 (T, H, W, 3) each).

        Kept beside the rows (`reference-<split>-n<N>.npz`), so a second scorer on the same cache,
        in another process, reuses them instead of sampling the teacher's many steps again."""
        if self._reference is None and self._saved is None and self._reference_file.exists():
            try:
                with np.load(self._reference_file) as saved:
                    videos = list(saved["videos"])
                if len(videos) == self.num_videos:
                    self._saved = videos  # read once per scorer
            except (OSError, ValueError, KeyError) as e:  # a cache: a damaged one is made again
                log.warning("reference videos %s unreadable (%s); sampling them again", self._reference_file, e)
        if self._reference is None and self._saved is not None:
            return self._saved
        return self._reference_run()[0]

    @property
    def _reference_file(self) -> Path:
        return self.cache / f"reference-{self.split}-n{self.num_videos}.npz"

    def _reference_run(self) -> tuple[list, list]:
        if self._reference is None:
            pairs = benchmark_prompts(self.split, self.num_videos)
            self._reference = generate_videos(_load(self.teacher)[0], pairs, self.teacher_steps, desc="reference")
            videos = np.stack(self._reference[0])
            atomic_write_bytes(self._reference_file, lambda f: np.savez(f, videos=videos))
        return self._reference

    def score(self, label: str, model, num_steps: int | None = None, num_videos: int | None = None) -> dict:
        """One row: ProcBench of `model` (at `num_steps`, or its own defaults), PSNR vs the reference,
        on the first `num_videos` (default the scorer's, at most that) benchmark pairs."""
        num_videos = self.num_videos if num_videos is None else num_videos
        if not 1 <= num_videos <= self.num_videos:
            raise ValueError(f"`num_videos` must be 1 to the scorer's {self.num_videos} but is {num_videos}.")
        path = self._path(label, num_videos)
        if path.exists():
            return json.loads(path.read_text())
        pairs = benchmark_prompts(self.split, num_videos)
        loaded = _load(model)[0]
        is_reference = self.agreement and model == self.teacher and num_steps == self.teacher_steps
        if is_reference:
            videos, results = (x[:num_videos] for x in self._reference_run())
        else:
            videos, results = generate_videos(loaded, pairs, num_steps, desc=f"procbench {label}")
        reads, _ = read_videos(videos, [p for p, _ in pairs], [s for _, s in pairs],
                               None if is_reference or not self.agreement else self.reference_videos()[:num_videos],
                               world=world_of_model(loaded))
        scores = with_cis(reads)
        first = results[0]
        hf = high_frequency_ratio(torch.cat([r.latents for r in results])).mean().item()
        row = {"row": label, "model": str(model), "split": self.split, "steps": first.num_steps, "nfe": first.nfe,
               "num_videos": num_videos, "total": round(scores["total"], 2),
               **{k: _rounded(v) for k, v in scores.items() if k != "total"},
               "seconds_per_video": round(float(sum(r.timings["total"] for r in results) / len(results)), 4),
               "hf_energy": round(hf, 5)}
        save_reads(reads, path.with_suffix(".reads.npz"))  # before the row: a row implies its reads
        atomic_write_text(path, json.dumps(row, indent=2))
        log.info("%s: ProcBench %s total %.2f %s", label, self.split, row["total"], row.get("total_ci"))
        return row

    def _path(self, label: str, num_videos: int) -> Path:
        suffix = "" if num_videos == self.num_videos else f"-n{num_videos}"
        return self.cache / f"{self.split}-{label.replace('/', '_').replace(' ', '_')}{suffix}.json"

    def reads(self, label: str, num_videos: int | None = None) -> Reads | None:
        """The per-video reads behind a scored row (None: not scored, or cached before reads were kept)."""
        path = self._path(label, self.num_videos if num_videos is None else num_videos).with_suffix(".reads.npz")
        return load_reads(path) if path.exists() else None

    def paired(self, label_a: str, label_b: str) -> dict | None:
        """`paired_difference` of two scored rows (A - B on the same prompts and seeds, with its 95%
        interval), from their cached reads; None when either row has none."""
        a, b = self.reads(label_a), self.reads(label_b)
        return None if a is None or b is None else paired_difference(a, b)
