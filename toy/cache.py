"""Distribution matching per data spacing, cached in memory and on disk.

Distribution matching (300 Adam steps of an MMD loss) is the toy's one computation too slow to
redo on every change of the data positions (seconds on this 2-core machine, against a 1 s target).
Two facts make it cacheable:

* Its target is a fixed number of teacher samples (``NUM_SAMPLES``, from the config's seed), not the
  app's sample count, so the sample-count slider never retrains it.
* With the exact teacher the whole problem is translation invariant (the velocity for points
  ``(a + c, b + c)`` at ``x + (1 - sigma) c`` is the velocity for ``(a, b)`` at ``x`` minus ``c``,
  and the MMD kernels see only differences), so it is trained once per *spacing* ``b - a``, centred
  on 0, and shifted to the midpoint. The app's position sliders (step 0.1) give 59 spacings;
  ``warm_up(spacings=...)`` fills them, from ``CACHE_DIR`` when an earlier process saved them.

The MLP teacher has no such symmetry: its runs are keyed by the whole teacher config.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
from pathlib import Path

import torch

from toy import distill
from toy.teacher import TeacherConfig, get_teacher

__all__ = ["CACHE_DIR", "NUM_SAMPLES", "distribution_matching"]

logger = logging.getLogger("toy")

# Gitignored; ACCVIDEO_TOY_CACHE moves it (an empty value turns the disk cache off).
CACHE_DIR = os.environ.get("ACCVIDEO_TOY_CACHE", str(Path(__file__).resolve().parents[1] / ".cache" / "toy"))
NUM_SAMPLES = 1000
# Bump when distribution matching or the teacher changes what they compute: old files are then unused.
VERSION = 1
_MEMORY: dict[str, distill.DistributionMatching] = {}
_SHIFTED = ("x_teacher", "x_init", "x_final", "samples")


def _canonical(config: TeacherConfig) -> tuple[TeacherConfig, float]:
    """The config whose run is stored, and the shift that turns its run into this config's."""
    if config.kind != "exact":
        return config, 0.0
    lower, upper = config.positions
    half = round(0.5 * (upper - lower), 6)  # slider values like 1.5 - (-1.0) should share one entry
    return dataclasses.replace(config, positions=(-half, half)), 0.5 * (lower + upper)


def _compute(config: TeacherConfig, seed: int) -> distill.DistributionMatching:
    teacher = get_teacher(config)
    eps = torch.randn(NUM_SAMPLES, generator=torch.Generator().manual_seed(seed))  # the trajectories' noise
    return distill.train_distribution_matching(teacher, teacher.solve(eps, torch.ones_like(eps)), seed)


def _path(key: str) -> Path | None:
    if not CACHE_DIR:
        return None
    return Path(CACHE_DIR) / f"dm-{hashlib.sha1(key.encode()).hexdigest()[:20]}.pt"


def _load(path: Path | None) -> distill.DistributionMatching | None:
    if path is None or not path.exists():
        return None
    try:
        return distill.DistributionMatching(**torch.load(path, weights_only=True))
    except Exception as error:  # noqa: BLE001 - a torn or stale file is recomputed, not fatal
        logger.warning("ignoring the toy cache file %s: %s", path, error)
        return None


def _save(path: Path | None, matching: distill.DistributionMatching) -> None:
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".tmp{os.getpid()}")
        torch.save(dataclasses.asdict(matching), temporary)
        os.replace(temporary, path)  # atomic: a reader never sees half a file
    except OSError as error:  # a read-only checkout still works, only slower
        logger.warning("could not write the toy cache file %s: %s", path, error)


def distribution_matching(config: TeacherConfig, seed: int) -> distill.DistributionMatching:
    """Distribution matching against ``NUM_SAMPLES`` samples of the teacher for ``config``.

    Fields as in ``distill.DistributionMatching`` ((K,) on the noise grid, (NUM_SAMPLES,) samples).
    """
    canonical, shift = _canonical(config)
    key = repr((VERSION, canonical, seed, NUM_SAMPLES))
    if key not in _MEMORY:
        path = _path(key)
        matching = _load(path)
        if matching is None:
            matching = _compute(canonical, seed)
            _save(path, matching)
        _MEMORY[key] = matching
    matching = _MEMORY[key]
    if shift == 0.0:
        return matching
    return dataclasses.replace(matching, **{name: getattr(matching, name) + shift for name in _SHIFTED})
