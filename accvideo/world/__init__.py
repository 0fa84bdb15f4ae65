"""The procedural video world: captioned clips of one coloured shape moving on black.

Every clip is fully described by a `ClipSpec` (colour, shape, direction, size, speed, start)
and rendered deterministically from it, so a prompt's ground truth is always known. A clip
drawn with `sample_spec(rng, ...)` depends only on the generator's seed.

Grammar: "a {color} {shape} moving {direction}", 6 colours x 3 shapes x 4 directions = 72
combinations. `HELDOUT_COMBOS` (6 of them, one per colour) are never used for training;
every colour, shape and direction still appears in the train split, so a model tested on
the held-out split meets familiar words in unseen combinations.

Videos are float32 tensors in [-1, 1] of shape (3, num_frames, height, width) (channels
first, as diffusers video models take them).
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass

import numpy as np
import torch

COLORS: dict[str, tuple[float, float, float]] = {
    "red": (0.95, 0.10, 0.10),
    "green": (0.10, 0.85, 0.15),
    "blue": (0.15, 0.30, 1.00),
    "yellow": (0.95, 0.90, 0.10),
    "magenta": (0.90, 0.15, 0.90),
    "cyan": (0.10, 0.90, 0.95),
}
SHAPES = ("circle", "square", "triangle")
DIRECTIONS: dict[str, tuple[float, float]] = {  # (dx, dy) in image coordinates, y down
    "left": (-1.0, 0.0),
    "right": (1.0, 0.0),
    "up": (0.0, -1.0),
    "down": (0.0, 1.0),
}
VOCABULARY = ["a", "moving", *COLORS, *SHAPES, *DIRECTIONS]

ALL_COMBOS: list[tuple[str, str, str]] = list(itertools.product(COLORS, SHAPES, DIRECTIONS))
HELDOUT_COMBOS: list[tuple[str, str, str]] = [
    (color, SHAPES[i % len(SHAPES)], list(DIRECTIONS)[i % len(DIRECTIONS)]) for i, color in enumerate(COLORS)
]
TRAIN_COMBOS: list[tuple[str, str, str]] = [c for c in ALL_COMBOS if c not in HELDOUT_COMBOS]
SPLITS = {"train": TRAIN_COMBOS, "heldout": HELDOUT_COMBOS, "all": ALL_COMBOS}

SUPERSAMPLE = 4  # render at 4x and average: anti-aliased edges, so sub-pixel motion is smooth


def prompt_for(color: str, shape: str, direction: str) -> str:
    return f"a {color} {shape} moving {direction}"


def parse_prompt(prompt: str) -> tuple[str, str, str]:
    """Inverse of `prompt_for`; raises ValueError naming the prompt when it is off-grammar."""
    words = prompt.strip().lower().split()
    if len(words) != 5 or words[0] != "a" or words[3] != "moving":
        raise ValueError(f"`prompt` must read 'a <color> <shape> moving <direction>' but is {prompt!r}.")
    color, shape, direction = words[1], words[2], words[4]
    for name, value, allowed in (("color", color, COLORS), ("shape", shape, SHAPES),
                                 ("direction", direction, DIRECTIONS)):
        if value not in allowed:
            raise ValueError(f"`prompt` {name} must be one of {list(allowed)} but is {value!r}.")
    return color, shape, direction


@dataclass(frozen=True)
class WorldConfig:
    """Size of the rendered clips. 4k + 1 frames, as Wan-style causal VAEs need."""

    height: int = 32
    width: int = 32
    num_frames: int = 9
    radius_range: tuple[float, float] = (4.5, 6.0)
    speed_range: tuple[float, float] = (1.25, 2.0)  # pixels per frame
    # v2 detail: small objects the prompt does not name (see `WORLDS` and docs/WORLD.md).
    # (0, 0) draws none and no random numbers, so v1 clips stay bit-identical.
    num_distractors: tuple[int, int] = (0, 0)  # inclusive range per clip
    distractor_radius_range: tuple[float, float] = (2.0, 3.0)
    distractor_gap: float = 1.0  # min pixels between a distractor and any earlier object, every frame


# Named worlds. v1: one object on black (the bundled models' world, kept small for fast tests).
# v2: v1 plus 2-3 small unprompted objects, detail that few Euler steps drop or merge
# (measured in docs/WORLD.md).
WORLDS: dict[str, WorldConfig] = {
    "v1": WorldConfig(),
    "v2": WorldConfig(num_distractors=(2, 3)),
}


def world_preset(name: str) -> WorldConfig:
    """The named world of `WORLDS`; raises ValueError naming the allowed names."""
    if name not in WORLDS:
        raise ValueError(f"`world` must be one of {list(WORLDS)} but is {name!r}.")
    return WORLDS[name]


@dataclass(frozen=True)
class ClipSpec:
    color: str
    shape: str
    direction: str
    radius: float
    speed: float
    start: tuple[float, float]  # (x, y) of the centre in pixels at frame 0
    # v2: unprompted objects, drawn under the prompted one in this order (each is a ClipSpec
    # whose own `distractors` is empty); empty in v1.
    distractors: tuple[ClipSpec, ...] = ()

    @property
    def prompt(self) -> str:
        return prompt_for(self.color, self.shape, self.direction)

    def centers(self, num_frames: int) -> np.ndarray:
        """Centre positions, shape (num_frames, 2) as (x, y)."""
        dx, dy = DIRECTIONS[self.direction]
        t = np.arange(num_frames, dtype=np.float64)[:, None]
        return np.asarray(self.start)[None, :] + t * self.speed * np.array([dx, dy])[None, :]


def draw_start(rng: np.random.Generator, world: WorldConfig, direction: str, radius: float, speed: float
               ) -> tuple[float, float] | None:
    """A start (x, y) that keeps the whole shape inside the frame for the whole clip, x drawn before
    y; None (after the draws made so far) when the frame is too small on an axis."""
    travel = speed * (world.num_frames - 1)
    dx, dy = DIRECTIONS[direction]
    margin = radius + 1.0
    start = []
    for d, size in ((dx, world.width), (dy, world.height)):
        low, high = margin, size - margin
        if d > 0:
            high -= travel
        elif d < 0:
            low += travel
        if high < low:
            return None
        start.append(float(rng.uniform(low, high)))
    return start[0], start[1]


def sample_spec(rng: np.random.Generator, world: WorldConfig = WorldConfig(), split: str = "train",
                combo: tuple[str, str, str] | None = None) -> ClipSpec:
    """Draw a clip: a combination from `split` (or the given `combo`), then size, speed, start.

    The start is drawn so the whole shape stays inside the frame for the whole clip.
    """
    if combo is None:
        if split not in SPLITS:
            raise ValueError(f"`split` must be one of {list(SPLITS)} but is {split!r}.")
        combos = SPLITS[split]
        combo = combos[int(rng.integers(len(combos)))]
    color, shape, direction = combo
    radius = float(rng.uniform(*world.radius_range))
    speed = float(rng.uniform(*world.speed_range))
    start = draw_start(rng, world, direction, radius, speed)
    if start is None:
        travel = speed * (world.num_frames - 1)
        raise ValueError(f"`world` is too small for radius {radius:.1f} and travel {travel:.1f}: {world}")
    spec = ClipSpec(color, shape, direction, radius, speed, start)
    if world.num_distractors[1] > 0:  # after every v1 draw, so v1 clips keep their numbers
        from .distractors import add_distractors

        spec = add_distractors(spec, rng, world)
    return spec


def _coverage(shape: str, px: np.ndarray, py: np.ndarray, cx: float, cy: float, r: float) -> np.ndarray:
    """Boolean inside-mask of a shape centred at (cx, cy) over pixel-centre grids px, py."""
    x, y = px - cx, py - cy
    if shape == "circle":
        return x * x + y * y <= r * r
    if shape == "square":
        half = 0.85 * r  # about the circle's area
        return (np.abs(x) <= half) & (np.abs(y) <= half)
    if shape == "triangle":  # pointing up: apex at (0, -r), base at y = 0.8 r
        top, base = -r, 0.8 * r
        frac = (y - top) / (base - top)  # 0 at the apex, 1 at the base
        return (y >= top) & (y <= base) & (np.abs(x) <= frac * r)
    raise ValueError(f"`shape` must be one of {list(SHAPES)} but is {shape!r}.")


def render(spec: ClipSpec, world: WorldConfig = WorldConfig()) -> torch.Tensor:
    """Render a clip. Returns float32 (3, num_frames, height, width) in [-1, 1]."""
    if spec.distractors:
        from .distractors import render_layers

        return render_layers(spec, world)
    s = SUPERSAMPLE
    ys, xs = np.mgrid[0 : world.height * s, 0 : world.width * s]
    px, py = (xs + 0.5) / s, (ys + 0.5) / s
    color = np.asarray(COLORS[spec.color], dtype=np.float32)
    frames = np.empty((world.num_frames, world.height, world.width), dtype=np.float32)
    for t, (cx, cy) in enumerate(spec.centers(world.num_frames)):
        inside = _coverage(spec.shape, px, py, cx, cy, spec.radius).astype(np.float32)
        frames[t] = inside.reshape(world.height, s, world.width, s).mean(axis=(1, 3))
    video = color[:, None, None, None] * frames[None]  # (3, T, H, W) in [0, 1]
    return torch.from_numpy(video * 2.0 - 1.0)


def object_masks(spec: ClipSpec, world: WorldConfig = WorldConfig()) -> torch.Tensor:
    """Fractional coverage of the prompted object per pixel, shape (num_frames, height, width) in
    [0, 1]. It is drawn on top, so its distractors do not change it."""
    color = torch.tensor(COLORS[spec.color])
    video = (render(dataclasses.replace(spec, distractors=()), world) + 1) / 2
    return video.max(dim=0).values / color.max()


def make_batch(seed: int, batch_size: int, world: WorldConfig = WorldConfig(), split: str = "train"
               ) -> tuple[torch.Tensor, list[ClipSpec]]:
    """`batch_size` clips from one seed: videos (B, 3, T, H, W) and their specs."""
    rng = np.random.default_rng(seed)
    specs = [sample_spec(rng, world, split) for _ in range(batch_size)]
    return torch.stack([render(s, world) for s in specs]), specs
