"""World v2 detail: small unprompted objects ("distractors") beside the prompted one.

A distractor is a `ClipSpec` of its own (colour, shape, direction, radius, speed, start) that
the prompt does not name: a few Euler steps average over the many layouts a prompt allows,
so they drop, dim or merge these objects while the 50-step teacher draws them
(docs/WORLD.md). The prompted object keeps the v1 rules and is drawn on top.

Rules, all drawn from the clip's own generator after its v1 draws:
- count uniform in `world.num_distractors` (inclusive);
- colour from the palette minus the prompted colour (the detectors read the prompted
  object's colour, so no distractor may share it); shape and direction uniform;
- radius in `world.distractor_radius_range` (smaller than the prompted object's, so the
  largest blob of a frame is still the prompted object), speed in `world.speed_range`;
- start so the distractor stays inside the frame for the whole clip, and, by rejection
  (`_TRIES` draws), at least `world.distractor_gap` pixels from every earlier object in every
  frame, so objects never touch; a distractor that finds no free place is left out.
"""

from __future__ import annotations

import numpy as np
import torch

from accvideo.world import COLORS, DIRECTIONS, SHAPES, SUPERSAMPLE, ClipSpec, WorldConfig, _coverage, draw_start

_TRIES = 20


def _check_world(world: WorldConfig) -> None:
    lo, hi = world.num_distractors
    if not 0 <= lo <= hi:
        raise ValueError(f"`num_distractors` must be a range (lo, hi) with 0 <= lo <= hi but is {(lo, hi)}.")
    rlo, rhi = world.distractor_radius_range
    if not 0 < rlo <= rhi:
        raise ValueError(f"`distractor_radius_range` must be (lo, hi) with 0 < lo <= hi but is {(rlo, rhi)}.")


def _clear(candidate: ClipSpec, placed: list[ClipSpec], world: WorldConfig) -> bool:
    """True when `candidate` keeps `distractor_gap` pixels from every placed object in every frame
    (bounding circles: the triangle's apex is at distance r, everything else closer)."""
    path = candidate.centers(world.num_frames)
    for other in placed:
        dist = np.linalg.norm(path - other.centers(world.num_frames), axis=1)
        if np.any(dist < candidate.radius + other.radius + world.distractor_gap):
            return False
    return True


def add_distractors(spec: ClipSpec, rng: np.random.Generator, world: WorldConfig) -> ClipSpec:
    """`spec` with its distractors drawn from `rng` (the clip's generator, after the v1 draws)."""
    _check_world(world)
    lo, hi = world.num_distractors
    count = int(rng.integers(lo, hi + 1))
    colors = [c for c in COLORS if c != spec.color]
    placed, distractors = [spec], []
    for _ in range(count):
        color = colors[int(rng.integers(len(colors)))]
        shape = SHAPES[int(rng.integers(len(SHAPES)))]
        direction = list(DIRECTIONS)[int(rng.integers(len(DIRECTIONS)))]
        radius = float(rng.uniform(*world.distractor_radius_range))
        speed = float(rng.uniform(*world.speed_range))
        for _ in range(_TRIES):
            start = draw_start(rng, world, direction, radius, speed)
            if start is None:
                break
            candidate = ClipSpec(color, shape, direction, radius, speed, start)
            if _clear(candidate, placed, world):
                placed.append(candidate)
                distractors.append(candidate)
                break
    return ClipSpec(spec.color, spec.shape, spec.direction, spec.radius, spec.speed, spec.start,
                    distractors=tuple(distractors))


def coverages(spec: ClipSpec, world: WorldConfig) -> np.ndarray:
    """Anti-aliased coverage of each object, float32 (1 + D, T, H, W) in [0, 1]: the prompted
    object first, then its D distractors in drawing order (not occluded: see `render_layers`)."""
    s = SUPERSAMPLE
    ys, xs = np.mgrid[0 : world.height * s, 0 : world.width * s]
    px, py = (xs + 0.5) / s, (ys + 0.5) / s
    objects = (spec, *spec.distractors)
    out = np.empty((len(objects), world.num_frames, world.height, world.width), dtype=np.float32)
    for k, obj in enumerate(objects):
        for t, (cx, cy) in enumerate(obj.centers(world.num_frames)):
            inside = _coverage(obj.shape, px, py, cx, cy, obj.radius).astype(np.float32)
            out[k, t] = inside.reshape(world.height, s, world.width, s).mean(axis=(1, 3))
    return out


def render_layers(spec: ClipSpec, world: WorldConfig) -> torch.Tensor:
    """Render a clip with distractors: black, then the distractors in order, then the prompted
    object on top (alpha = coverage). Returns float32 (3, num_frames, height, width) in [-1, 1]."""
    cov = coverages(spec, world)
    video = np.zeros((3, world.num_frames, world.height, world.width), dtype=np.float32)
    for obj, alpha in zip((*spec.distractors, spec), (*cov[1:], cov[0])):
        color = np.asarray(COLORS[obj.color], dtype=np.float32)[:, None, None, None]
        video = alpha[None] * color + (1.0 - alpha[None]) * video
    return torch.from_numpy(video * 2.0 - 1.0)


def distractor_masks(spec: ClipSpec, world: WorldConfig) -> torch.Tensor:
    """Visible coverage of each distractor (what objects drawn above leave of it), float32
    (D, num_frames, height, width) in [0, 1]; D = 0 gives shape (0, T, H, W)."""
    cov = coverages(spec, world)
    visible = np.empty_like(cov[1:])
    above = cov[0].copy()  # the prompted object covers everything
    for k in range(len(spec.distractors) - 1, -1, -1):  # last drawn is highest
        visible[k] = cov[k + 1] * (1.0 - above)
        above = 1.0 - (1.0 - above) * (1.0 - cov[k + 1])
    return torch.from_numpy(visible)
