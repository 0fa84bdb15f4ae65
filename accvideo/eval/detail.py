"""Detail measures for world v2: high-frequency share and small objects ("distractors").

A video here is uint8 frames (T, H, W, 3), as `generate` returns them. World v2 draws 2-3
small unprompted objects beside the prompted one (`data/distractors.py`); few Euler steps
drop, dim or merge them and blur edges. These measures read that back without a model:

- `hf_share`: the share of a frame's spectral power (grey, mean removed) beyond half the
  Nyquist radius, averaged over frames. Blur lowers it.
- `small_blobs`: per frame, the 4-connected blobs brighter than the frame's median by at least
  a threshold, minus the largest (the prompted object, drawn bigger than every distractor).
  Their count per frame against the clip's truth (`len(spec.distractors)`) says how many
  distractors were drawn; their peak contrast says how brightly. A distractor merged into a
  neighbour is one blob fewer, a dimmed one falls under the threshold or lowers the peak.
"""

from __future__ import annotations

import numpy as np

from accvideo.eval.detectors import components

DRAWN_CONTRAST = 96.0  # uint8 levels above the median: a distractor clearly drawn (real ones ~230)
FAINT_CONTRAST = 32.0  # a trace of one (dimmed, but still there)
MIN_BLOB_AREA = 2  # pixels; a distractor of radius 2 covers about 12
HF_CUTOFF = 0.25  # cycles per pixel: half the Nyquist frequency


def binomial_blur(video: np.ndarray, passes: int = 2) -> np.ndarray:
    """[1, 2, 1] / 4 binomial blur over H and W of a video (T, H, W, C), `passes` times (about a
    Gaussian of sigma 0.7 * sqrt(passes)), edges replicated; float64 out. Evaluator tests and
    `scripts/procbench_ceiling.py` degrade real clips with it on purpose."""
    out = np.asarray(video, dtype=np.float64)
    for _ in range(passes):
        for axis in (1, 2):
            padded = np.pad(out, [(1, 1) if a == axis else (0, 0) for a in range(4)], mode="edge")
            lo, mid, hi = (np.take(padded, range(k, k + out.shape[axis]), axis=axis) for k in range(3))
            out = (lo + 2 * mid + hi) / 4
    return out


def hf_share(video: np.ndarray, cutoff: float = HF_CUTOFF) -> float:
    """Share of spectral power beyond `cutoff` cycles/pixel (radius), grey frames with their mean
    removed, averaged over frames; 0 for a flat video. `video`: uint8 (T, H, W, 3)."""
    grey = np.asarray(video, dtype=np.float64).mean(axis=-1) / 255.0  # (T, H, W)
    grey = grey - grey.mean(axis=(1, 2), keepdims=True)
    power = np.abs(np.fft.fft2(grey)) ** 2
    fy = np.fft.fftfreq(grey.shape[1])[:, None]
    fx = np.fft.fftfreq(grey.shape[2])[None, :]
    high = np.sqrt(fx**2 + fy**2) > cutoff
    totals = power.sum(axis=(1, 2))
    shares = np.where(totals > 0, power[:, high].sum(axis=1) / np.maximum(totals, 1e-12), 0.0)
    return float(shares.mean())


def small_blobs(frame: np.ndarray, threshold: float) -> list[tuple[int, float]]:
    """(area in pixels, peak contrast in uint8 levels) of each blob of a uint8 frame (H, W, 3)
    at least `threshold` levels above the median brightness, the largest blob left out."""
    brightness = np.asarray(frame, dtype=np.float64).max(axis=-1)
    contrast = brightness - np.median(brightness)
    labels = components(contrast >= threshold)
    values, counts = np.unique(labels[labels > 0], return_counts=True)
    if len(values) == 0:
        return []
    keep = [k for k in range(len(values)) if k != int(np.argmax(counts)) and counts[k] >= MIN_BLOB_AREA]
    return [(int(counts[k]), float(contrast[labels == values[k]].max())) for k in keep]


def detail_stats(video: np.ndarray) -> dict[str, float]:
    """Per-video detail figures of a uint8 video (T, H, W, 3):
    `blobs_drawn` / `blobs_faint`: small blobs per frame at `DRAWN_CONTRAST` / `FAINT_CONTRAST`;
    `blob_peak`: mean peak contrast (/255) of the faint-threshold blobs (NaN when none);
    `hf_share`: see `hf_share`."""
    video = np.asarray(video)
    drawn = [small_blobs(f, DRAWN_CONTRAST) for f in video]
    faint = [small_blobs(f, FAINT_CONTRAST) for f in video]
    peaks = [peak for blobs in faint for _, peak in blobs]
    return {"blobs_drawn": float(np.mean([len(b) for b in drawn])),
            "blobs_faint": float(np.mean([len(b) for b in faint])),
            "blob_peak": float(np.mean(peaks)) / 255.0 if peaks else float("nan"),
            "hf_share": hf_share(video)}


def bootstrap_ci(values, num_resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile 95% interval of the mean of `values` (1-D, NaNs dropped) over resamples."""
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return float("nan"), float("nan")
    idx = np.random.default_rng(seed).integers(len(x), size=(num_resamples, len(x)))
    means = x[idx].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))
