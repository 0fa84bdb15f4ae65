"""Analytic detectors for the procedural world: colour, shape and motion of the one object.

A video here is uint8 frames (T, H, W, 3), as `generate` returns them. The procedural world
draws one coloured shape on black, so no learned model is needed to read a clip back:

- foreground: per frame, the brightness `b = max(R, G, B)`; the background level is the
  frame's median brightness (the object covers ~5-15% of a frame) and the object's level is
  the 99th percentile. A pixel is foreground when it is above the midpoint of the two, and a
  frame holds an object only when that contrast is at least `MIN_CONTRAST`.
- colour: the hue of the mean foreground colour minus the background colour. Generated
  videos are often blurred and desaturated (mixed with black or grey), which scales or
  offsets the colour but keeps its hue, so we compare chroma directions (the RGB vector
  minus its own mean, in the plane orthogonal to grey) by cosine with the palette's.
- shape: the object coverage's fill of its soft bounding box (square ~1.0, circle ~0.785,
  triangle ~0.5) and the triangle's top-vs-bottom width asymmetry (it points up).
- motion: a least-squares line through the per-frame centroids; its dominant axis and sign.

Per-frame decisions are combined by majority vote, so a few bad frames do not flip a video.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from accvideo.world import COLORS, DIRECTIONS

MIN_CONTRAST = 40.0  # uint8 levels between background and object; below it a frame has no object
MIN_AREA = 12.0  # pixels in the largest foreground blob; real objects cover 32-115
MIN_BOX_FILL = 0.35  # a blob filling less of its box is ragged (noise), not a shape (triangle ~0.5)
MIN_FRAMES = 3  # frames with an object needed before a video counts as having one

# Shape decision: triangles are wider at the bottom than at the top; of the symmetric shapes,
# squares fill their box, circles ~pi/4 of it, triangles ~1/2.
# Measured over all frames of 216 real clips (circle / square / triangle; min..max):
#   sharp:                   fill .78-.84 / .98-1.0 / .63-.72   asymmetry |.20| / |.16| / .39-.78
#   blur 1 px + noise 8/255: fill .80-.87 / .93-1.0 / .72-.82   asymmetry |.22| / |.25| / .26-.63
# (frames are then combined by vote, so a borderline frame rarely decides a video).
TRIANGLE_ASYMMETRY = 0.3
SQUARE_FILL = 0.9
CIRCLE_FILL = 0.7
COVERAGE_FLOOR = 0.15  # coverage below this is background noise, not object


def _chroma(rgb: np.ndarray) -> np.ndarray:
    """RGB (..., 3) minus its grey component, unit length (zero stays zero)."""
    c = rgb - rgb.mean(axis=-1, keepdims=True)
    norm = np.linalg.norm(c, axis=-1, keepdims=True)
    return c / np.maximum(norm, 1e-8)


_PALETTE_NAMES = list(COLORS)
_PALETTE_CHROMA = _chroma(np.array([COLORS[c] for c in _PALETTE_NAMES], dtype=np.float64))


@dataclass
class FrameDetection:
    """What one frame shows. `mask` (H, W) bool; `centroid` (x, y) in pixels; NaN-free only when `found`."""

    found: bool
    background: float = 0.0
    contrast: float = 0.0
    mask: np.ndarray | None = None
    area: float = 0.0
    centroid: tuple[float, float] = (float("nan"), float("nan"))
    rgb: np.ndarray | None = None  # mean foreground colour minus background, (3,)
    color: str | None = None
    fill: float = 0.0
    asymmetry: float = 0.0
    shape: str | None = None


@dataclass
class Detection:
    """What a whole video shows: voted colour and shape, fitted motion, and the per-frame reads."""

    found: bool
    color: str | None
    shape: str | None
    direction: str | None
    velocity: tuple[float, float]  # (vx, vy) pixels per frame, y down
    frames: list[FrameDetection] = field(default_factory=list)

    @property
    def num_found(self) -> int:
        return sum(f.found for f in self.frames)


def nearest_color(rgb: np.ndarray) -> str | None:
    """Palette colour whose chroma direction is closest (cosine) to `rgb` (3,); None for grey."""
    rgb = np.asarray(rgb, dtype=np.float64)
    c = rgb - rgb.mean()
    if np.linalg.norm(c) < 1e-6:
        return None
    return _PALETTE_NAMES[int(np.argmax(_PALETTE_CHROMA @ _chroma(rgb)))]


def classify_shape(fill: float, asymmetry: float) -> str:
    if asymmetry > TRIANGLE_ASYMMETRY:
        return "triangle"
    if fill >= SQUARE_FILL:
        return "square"
    if fill >= CIRCLE_FILL:
        return "circle"
    return "triangle"


def _shape_stats(coverage: np.ndarray) -> tuple[float, float]:
    """Fill of the soft bounding box and (bottom width - top width) / max width.

    `coverage` (H, W) in [0, 1] is how much of each pixel the object covers. The box's width
    is the sum over columns of each column's largest coverage (and the height likewise), so
    anti-aliased or blurred edges count fractionally instead of as whole pixels: on real clips
    this gives circle 0.79 +- 0.02, square 0.99+, triangle ~0.58, and blur moves them little.
    """
    width, height = coverage.max(axis=0).sum(), coverage.max(axis=1).sum()
    fill = float(coverage.sum() / max(width * height, 1e-8))
    rows = np.flatnonzero(coverage.max(axis=1) > 0.5)
    if len(rows) == 0:
        return fill, 0.0
    widths = coverage.sum(axis=1)[rows[0] : rows[-1] + 1]
    third = max(1, len(widths) // 3)
    asymmetry = float((widths[-third:].mean() - widths[:third].mean()) / max(widths.max(), 1e-8))
    return fill, asymmetry


def components(mask: np.ndarray) -> np.ndarray:
    """4-connected blobs of a bool mask (H, W): int labels (H, W), 0 outside the mask, one
    distinct positive label per blob (not consecutive).

    Labels spread by taking the neighbourhood maximum inside the mask until nothing changes
    (at most a blob's diameter in iterations; 32 x 32 frames make that cheap)."""
    labels = np.where(mask, np.arange(1, mask.size + 1).reshape(mask.shape), 0)
    while mask.any():
        padded = np.pad(labels, 1)
        spread = np.maximum.reduce([labels, padded[:-2, 1:-1], padded[2:, 1:-1], padded[1:-1, :-2], padded[1:-1, 2:]])
        spread = np.where(mask, spread, 0)
        if np.array_equal(spread, labels):
            break
        labels = spread
    return labels


def _largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 4-connected blob of a bool mask (H, W): stray bright pixels are not the object."""
    if not mask.any():
        return mask
    labels = components(mask)
    values, counts = np.unique(labels[mask], return_counts=True)
    return labels == values[np.argmax(counts)]


def _smooth(image: np.ndarray) -> np.ndarray:
    """Separable [1, 2, 1] / 4 binomial filter (edge-replicated) of a 2-D array."""
    padded = np.pad(image, 1, mode="edge")
    rows = (padded[:-2] + 2 * padded[1:-1] + padded[2:]) / 4
    return (rows[:, :-2] + 2 * rows[:, 1:-1] + rows[:, 2:]) / 4


def _box_window(mask: np.ndarray, margin: int) -> np.ndarray:
    """1 inside the mask's bounding box grown by `margin` pixels, 0 elsewhere: background noise
    far from the object must not widen the soft box (a column's max would pick it up)."""
    window = np.zeros(mask.shape, dtype=np.float64)
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    window[max(rows[0] - margin, 0) : rows[-1] + margin + 1, max(cols[0] - margin, 0) : cols[-1] + margin + 1] = 1.0
    return window


def detect_frame(frame: np.ndarray) -> FrameDetection:
    """Read one uint8 frame (H, W, 3)."""
    rgb = frame.astype(np.float64)
    brightness = rgb.max(axis=-1)
    background = float(np.median(brightness))
    peak = float(np.percentile(brightness, 99))
    contrast = peak - background
    if contrast < MIN_CONTRAST:
        return FrameDetection(False, background, contrast)
    mask = _largest_component(brightness > background + contrast / 2)
    area = float(mask.sum())
    if area < MIN_AREA or area < MIN_BOX_FILL * _box_window(mask, margin=0).sum():
        return FrameDetection(False, background, contrast)
    # soft weights (how far above background) give a sub-pixel centroid for smooth motion
    weight = np.clip(brightness - background, 0, None) * mask
    ys, xs = np.mgrid[0 : frame.shape[0], 0 : frame.shape[1]]
    total = weight.sum()
    centroid = (float((weight * xs).sum() / total) + 0.5, float((weight * ys).sum() / total) + 0.5)
    bg_rgb = np.median(rgb[~mask], axis=0) if (~mask).any() else np.zeros(3)
    fg_rgb = rgb[mask].mean(axis=0) - bg_rgb
    # shape statistics read a lightly smoothed brightness: pixel noise on a blurred edge would
    # otherwise poke above the floor and widen the soft box (squares then read as circles)
    coverage = np.clip((_smooth(brightness) - background) / contrast, 0.0, 1.0)
    coverage = coverage * (coverage > COVERAGE_FLOOR) * _box_window(mask, margin=1)
    fill, asymmetry = _shape_stats(coverage)
    return FrameDetection(True, background, contrast, mask, area, centroid, fg_rgb, nearest_color(fg_rgb),
                          fill, asymmetry, classify_shape(fill, asymmetry))


def _vote(values: list[str | None]) -> str | None:
    values = [v for v in values if v is not None]
    if not values:
        return None
    return Counter(values).most_common(1)[0][0]


def direction_of(velocity: tuple[float, float]) -> str | None:
    """Dominant axis and sign of (vx, vy) as a direction name; None when not moving."""
    vx, vy = velocity
    if not np.isfinite(vx) or not np.isfinite(vy) or max(abs(vx), abs(vy)) < 1e-6:
        return None
    return max(DIRECTIONS, key=lambda d: DIRECTIONS[d][0] * vx + DIRECTIONS[d][1] * vy)


def detect(video: np.ndarray) -> Detection:
    """Read a uint8 video (T, H, W, 3): colour and shape by vote over frames, motion by a line fit."""
    video = np.asarray(video)
    if video.ndim != 4 or video.shape[-1] != 3:
        raise ValueError(f"`video` must have shape (T, H, W, 3) but has shape {video.shape}.")
    frames = [detect_frame(f) for f in video]
    found = [(t, f) for t, f in enumerate(frames) if f.found]
    if len(found) < MIN_FRAMES:
        return Detection(False, None, None, None, (float("nan"), float("nan")), frames)
    t = np.array([i for i, _ in found], dtype=np.float64)
    xy = np.array([f.centroid for _, f in found])
    slope = np.polyfit(t, xy, 1)[0]  # (2,): pixels per frame in x and y
    velocity = (float(slope[0]), float(slope[1]))
    return Detection(True, _vote([f.color for _, f in found]), _vote([f.shape for _, f in found]),
                     direction_of(velocity), velocity, frames)


def to_uint8(video) -> np.ndarray:
    """A procedural clip (3, T, H, W) float in [-1, 1] (torch or numpy) -> uint8 (T, H, W, 3),
    rounded exactly as `generate` rounds decoded frames."""
    array = video.detach().cpu().numpy() if hasattr(video, "detach") else np.asarray(video)
    array = np.clip(array, -1.0, 1.0)
    return np.round((array.transpose(1, 2, 3, 0) + 1.0) * 127.5).astype(np.uint8)

