"""Collapse detectors: simple statistics that tell a rendered clip gone wrong from a real one.

Distillation runs collapse after hundreds of steps into a few recognisable failures; each has a
statistic that a real clip of the procedural world (one shape moving on black) keeps far from:

- exploding: the sampler's output latents are non-finite or huge (|x| > `MAX_LATENT`); the
  decoded uint8 frames then hide it (NaN casts to 0), so it is read from the latents;
- solid: every frame is one flat colour (per-channel spatial std below `SOLID_STD` levels of 255);
- noise: neighbouring pixels are as unlike each other as random pixels (`roughness`, the mean
  absolute difference of horizontal and vertical neighbours over the mean absolute deviation
  from the frame's mean: about 1.4 for white noise, well under 1 for smooth images);
- static: nothing moves (`motion`, the mean absolute change between consecutive frames over
  the frames' mean absolute deviation, is below `STATIC_MOTION`).

Thresholds were set from real clips of the bundled tiny models (teacher at 50, 5 and 2 steps,
tiny-accvideo, tiny-gpd; 6 prompts each, and free text): spatial std 29-62, roughness 0.15-0.28,
motion 0.25-0.41. `tests/test_watchdog.py` checks that such clips pass and clips made to fail
are flagged.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

MAX_LATENT = 1e3  # normalised latents are ~N(0, 1); a thousand means the sampler diverged
SOLID_STD = 3.0  # uint8 levels of spatial std, the largest over frames: a flat frame has ~0
NOISE_ROUGHNESS = 0.9  # white noise ~1.41; real tiny clips measured 0.15-0.28
STATIC_MOTION = 0.05  # real clips move 1.25-2 px a frame: measured 0.25-0.41
FLAGS = ("exploding", "solid", "noise", "static")


@dataclass
class CollapseReport:
    """flags: the failures found, in `FLAGS` order (empty for a healthy clip); stats: the numbers
    each decision read (rounded for the log)."""

    flags: list[str] = field(default_factory=list)
    stats: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.flags


def clip_stats(video: np.ndarray) -> dict[str, float]:
    """Statistics of uint8 frames (T, H, W, 3): `spatial_std` (the largest std over the pixels of
    one frame in one channel), `roughness` and `motion` (see the module docstring)."""
    if video.ndim != 4 or video.shape[-1] != 3 or video.shape[0] < 2:
        raise ValueError(f"`video` must be uint8 frames (T >= 2, H, W, 3) but has shape {video.shape}.")
    x = video.astype(np.float32)
    deviation = np.abs(x - x.mean(axis=(1, 2), keepdims=True)).mean()
    spread = max(float(deviation), 1e-6)  # a flat clip has none: its ratios are then ~0, not inf
    neighbours = (np.abs(np.diff(x, axis=1)).mean() + np.abs(np.diff(x, axis=2)).mean()) / 2
    return {"spatial_std": float(x.std(axis=(1, 2)).max()),  # per frame and channel: a flat colour is ~0
            "roughness": float(neighbours) / spread,
            "motion": float(np.abs(np.diff(x, axis=0)).mean()) / spread}


def detect_collapse(video: np.ndarray, latents=None) -> CollapseReport:
    """Flag `video` (uint8 (T, H, W, 3)) and, when given, the sampler's `latents` (any array or
    tensor) as exploding, solid, noise or static. A solid clip is not also called static."""
    stats: dict[str, float] = {}
    flags = []
    if latents is not None:
        values = np.asarray(latents.detach().cpu().float() if hasattr(latents, "detach") else latents,
                            dtype=np.float64)
        finite = np.isfinite(values)
        stats["latent_max_abs"] = float(np.abs(values[finite]).max()) if finite.any() else float("nan")
        if not finite.all() or stats["latent_max_abs"] > MAX_LATENT:
            flags.append("exploding")
    stats.update(clip_stats(video))
    if stats["spatial_std"] < SOLID_STD:
        flags.append("solid")
    else:  # roughness and motion are ratios to the spatial spread: meaningless on a flat clip
        if stats["roughness"] > NOISE_ROUGHNESS:
            flags.append("noise")
        if stats["motion"] < STATIC_MOTION:
            flags.append("static")
    return CollapseReport(flags=flags, stats={k: round(v, 4) for k, v in stats.items()})
