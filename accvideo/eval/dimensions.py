"""ProcBench's set-level dimensions from per-video reads, and their bootstrap 95% CIs.

`score_videos` (procbench.py) reads every generated video and its real reference clips once
into a `Reads` (arrays over videos); `aggregate` turns any resample of the videos into the
scores, so a bootstrap over videos (`with_cis`) gives an interval for every dimension and the
total without reading a video twice.

Dimensions, each in [0, 1]:

- v1: `color`, `shape`, `motion` accuracies (mean `semantic`), `flicker` and `consistency`
  (mean `temporal`), `fidelity` = exp(-FD / 100) on the hand-made features;
- `detail` (worlds with distractors): the mean of `distractor_recall` = small blobs clearly
  drawn per frame over the truth (the real clips' distractor count), capped at 1, and
  `blob_contrast` = the drawn blobs' peak contrast over the real clips', capped at 1. Few Euler
  steps drop, dim and merge small objects (docs/WORLD.md), which lowers both;
- `motion_fidelity`: the object's speed against the truth: r = mean speed / the real clips'
  mean speed, scored min(r, 1/r) (slowed or frozen motion, and runaway motion, both lose).
  A video without a detected object counts as still. `dynamic` is the mean absolute frame
  difference (/255); with a reference model, `motion_ratio` = the video's dynamic degree over
  the reference's at the same seed (reported, not in the total);
- `diversity`: the spread across seeds of what the prompt leaves free (mean position x and y,
  area, speed), as the standard deviation within each direction, pooled, over the real clips'
  (REAL_PER_VIDEO clips of the same prompt and seed), each capped at 1, averaged. A model that
  collapses to one video per prompt scores near 0.

Totals: v1 worlds keep the v1 total (0.5 semantic + 0.25 temporal + 0.25 fidelity), so the
figures of v1 models do not move; worlds with distractors use `WEIGHTS_V2`. Both are x 100.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from accvideo.eval.features import frechet_distance

SEMANTIC = ("color", "shape", "motion")
TEMPORAL = ("flicker", "consistency")
WEIGHTS_V1 = {"semantic": 0.5, "temporal": 0.25, "fidelity": 0.25}
WEIGHTS_V2 = {"semantic": 0.3, "temporal": 0.15, "fidelity": 0.15, "detail": 0.2, "motion_fidelity": 0.1,
              "diversity": 0.1}
FD_SCALE = 100.0  # FD of real vs real clips is ~1; mildly blurred/desaturated ~15; noise ~7000
FREE_ATTRIBUTES = ("x", "y", "area", "speed")  # what a prompt leaves to the seed (diversity)
NUM_RESAMPLES = 1000
STD_FLOOR = 1e-6


@dataclass
class Reads:
    """Per-video reads of N generated videos, each with K real clips of its prompt and seed.

    `ok`: (N, 3) colour/shape/motion right; `temporal`: (N, 2) flicker, consistency;
    `features` (N, F) and `real_features` (N, K, F) for the Frechet distance; `gen` and `real`:
    dicts of (N,) and (N, K) arrays: `blobs` (drawn small blobs per frame), `peak` (their mean
    peak contrast /255, NaN when none), `speed` (px/frame, 0 without an object), `x`, `y`,
    `area` (NaN without an object), `dynamic`, `hf`; `real["truth"]` (N, K) distractor counts.
    `group` (N,) the prompt's direction index; `reference_dynamic` (N,) or None."""

    ok: np.ndarray
    temporal: np.ndarray
    features: np.ndarray
    real_features: np.ndarray
    gen: dict[str, np.ndarray]
    real: dict[str, np.ndarray]
    group: np.ndarray
    has_distractors: bool
    reference_dynamic: np.ndarray | None = None
    psnr: np.ndarray | None = None


_ARRAYS = ("ok", "temporal", "features", "real_features", "group", "reference_dynamic", "psnr")


def save_reads(reads: Reads, path) -> None:
    """Write `reads` to one .npz file (atomically), so a later `paired_difference` needs no video."""
    from accvideo.util.io import atomic_write_bytes

    arrays = {k: getattr(reads, k) for k in _ARRAYS if getattr(reads, k) is not None}
    arrays.update({f"gen.{k}": v for k, v in reads.gen.items()})
    arrays.update({f"real.{k}": v for k, v in reads.real.items()})
    arrays["has_distractors"] = np.array(reads.has_distractors)
    atomic_write_bytes(path, lambda f: np.savez(f, **arrays))


def load_reads(path) -> Reads:
    """The `Reads` that `save_reads` wrote to `path`; a file that is not one is a ValueError naming it."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        return Reads(**{k: arrays.get(k) for k in _ARRAYS},
                     gen={k[4:]: v for k, v in arrays.items() if k.startswith("gen.")},
                     real={k[5:]: v for k, v in arrays.items() if k.startswith("real.")},
                     has_distractors=bool(arrays["has_distractors"]))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"`{path}` must be ProcBench reads written by `save_reads` but could not be read: {e}") from e


def _ratio(a: float, b: float) -> float:
    return float(a / b) if b > 0 else float("nan")


def _pooled_std(values: np.ndarray, group: np.ndarray) -> float:
    """Standard deviation within groups, pooled (NaNs dropped). `values` (n,), `group` (n,)."""
    keep = np.isfinite(values)
    values, group = values[keep], group[keep]
    squares, dof = 0.0, 0
    for g in np.unique(group):
        v = values[group == g]
        if len(v) >= 2:
            squares += float(((v - v.mean()) ** 2).sum())
            dof += len(v) - 1
    return float(np.sqrt(squares / dof)) if dof else float("nan")


def aggregate(reads: Reads, idx: np.ndarray | None = None) -> dict[str, float]:
    """Scores of the videos `idx` (default all, repeats allowed) of `reads`."""
    idx = np.arange(len(reads.ok)) if idx is None else idx
    g = {k: v[idx] for k, v in reads.gen.items()}
    r = {k: v[idx] for k, v in reads.real.items()}
    s: dict[str, float] = {}
    for j, k in enumerate(SEMANTIC):
        s[k] = float(reads.ok[idx, j].mean())
    for j, k in enumerate(TEMPORAL):
        s[k] = float(reads.temporal[idx, j].mean())
    feats, real = reads.features[idx], reads.real_features[idx].reshape(-1, reads.features.shape[1])
    # one video has no covariance: compare means only (documented in EVAL.md)
    s["frechet_distance"] = frechet_distance(feats if len(feats) >= 2 else np.concatenate([feats, feats]), real)
    s["fidelity"] = float(np.exp(-s["frechet_distance"] / FD_SCALE))
    s["semantic"] = float(np.mean([s[k] for k in SEMANTIC]))
    s["temporal"] = float(np.mean([s[k] for k in TEMPORAL]))

    s["speed_ratio"] = _ratio(g["speed"].mean(), r["speed"].mean())
    ratio = s["speed_ratio"]
    s["motion_fidelity"] = float(min(ratio, 1 / ratio)) if np.isfinite(ratio) and ratio > 0 else 0.0
    s["dynamic"] = float(g["dynamic"].mean())
    if reads.reference_dynamic is not None:
        s["motion_ratio"] = _ratio(s["dynamic"], reads.reference_dynamic[idx].mean())
    group, real_group = reads.group[idx], np.repeat(reads.group[idx], r["x"].shape[1])
    spreads = []
    for k in FREE_ATTRIBUTES:
        real_std = _pooled_std(r[k].reshape(-1), real_group)
        gen_std = _pooled_std(g[k], group)
        spreads.append(min(1.0, gen_std / max(real_std, STD_FLOOR)) if np.isfinite(gen_std) else 0.0)
    s["diversity"] = float(np.mean(spreads))

    s["hf_ratio"] = _ratio(g["hf"].mean(), r["hf"].mean())
    if reads.has_distractors:
        s["distractor_recall"] = _ratio(g["blobs"].mean(), r["truth"].mean())
        peak, real_peak = np.nanmean(g["peak"]) if np.isfinite(g["peak"]).any() else 0.0, np.nanmean(r["peak"])
        s["blob_contrast"] = _ratio(peak, real_peak)
        s["detail"] = 0.5 * (min(1.0, s["distractor_recall"]) + min(1.0, s["blob_contrast"]))
    if reads.psnr is not None:
        s["psnr"] = float(reads.psnr[idx].mean())
    s["total"] = total_score(s, reads.has_distractors)
    return s


def total_score(scores: dict[str, float], has_distractors: bool = False) -> float:
    """The documented weighted total in [0, 100] from per-dimension scores in [0, 1]: the v1
    weights, or `WEIGHTS_V2` for a world with distractors."""
    parts = dict(scores)
    parts.setdefault("semantic", float(np.mean([scores[k] for k in SEMANTIC])))
    parts.setdefault("temporal", float(np.mean([scores[k] for k in TEMPORAL])))
    weights = WEIGHTS_V2 if has_distractors else WEIGHTS_V1
    return 100.0 * sum(w * parts[k] for k, w in weights.items())


UNIT_SCORES = (*SEMANTIC, *TEMPORAL, "semantic", "temporal", "fidelity", "detail", "motion_fidelity", "diversity")


def _interval(values: np.ndarray, point: float, name: str) -> list[float]:
    """Normal-approximation 95% interval: `point` +- 1.96 bootstrap standard deviations, clipped
    to the score's range ([0, 1] for dimensions, [0, 100] for the total, >= 0 for ratios).

    Not percentiles of the resamples: a resample repeats videos, which shrinks the feature
    covariance and lifts every resample's Frechet distance above the full set's, so the
    percentile interval of `fidelity` can miss its own point estimate (measured on real clips)."""
    half = _half_width(values, point)
    if not np.isfinite(half):
        return [float("nan"), float("nan")]
    upper = 1.0 if name in UNIT_SCORES else 100.0 if name == "total" else np.inf
    lower = -np.inf if name == "psnr" else 0.0
    return [float(max(lower, point - half)), float(min(upper, point + half))]


def _half_width(values: np.ndarray, point: float) -> float:
    """1.96 bootstrap standard deviations of the finite `values` (NaN with fewer than 2, or no point)."""
    values = values[np.isfinite(values)]
    return 1.959964 * float(values.std(ddof=1)) if len(values) >= 2 and np.isfinite(point) else float("nan")


def with_cis(reads: Reads, num_resamples: int = NUM_RESAMPLES, seed: int = 0) -> dict[str, float | list]:
    """`aggregate` over all videos plus `<name>_ci` = [lo, hi], the bootstrap 95% interval of each
    score (`_interval`) over `num_resamples` resamples of the videos (seeded, so reruns agree)."""
    scores = aggregate(reads)
    n = len(reads.ok)
    rng = np.random.default_rng(seed)
    draws = [aggregate(reads, rng.integers(n, size=n)) for _ in range(num_resamples)]
    out: dict[str, float | list] = dict(scores)
    for k in scores:
        out[f"{k}_ci"] = _interval(np.array([d[k] for d in draws], dtype=np.float64), scores[k], k)
    return out


def paired_difference(a: Reads, b: Reads, num_resamples: int = NUM_RESAMPLES, seed: int = 0) -> dict[str, float | list]:
    """Score of `a` minus score of `b` for every score both have, and `<name>_ci`, the bootstrap
    95% interval of that difference (`_interval`'s normal approximation, not clipped).

    `a` and `b` are two models' reads of the same prompts and seeds, video i against video i, so
    one resample draws the same videos from both: what the prompts and seeds share cancels, and
    the interval is narrower than the two separate intervals suggest. An interval that excludes 0
    separates the two models."""
    n = len(a.ok)
    if len(b.ok) != n:
        raise ValueError(f"`b` must hold the same {n} videos as `a` (the same prompts and seeds) but holds "
                         f"{len(b.ok)}.")
    if not np.array_equal(a.group, b.group) or not np.array_equal(a.real["truth"], b.real["truth"]):
        raise ValueError("`a` and `b` must be reads of the same prompts and seeds (their real clips differ).")
    sa, sb = aggregate(a), aggregate(b)
    keys = [k for k in sa if k in sb]
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(num_resamples):
        idx = rng.integers(n, size=n)
        da, db = aggregate(a, idx), aggregate(b, idx)
        draws.append([da[k] - db[k] for k in keys])
    draws = np.array(draws, dtype=np.float64)
    out: dict[str, float | list] = {}
    for j, k in enumerate(keys):
        point = sa[k] - sb[k]
        half = _half_width(draws[:, j], point)
        out[k] = float(point)
        out[f"{k}_ci"] = [float(point - half), float(point + half)]
    return out
