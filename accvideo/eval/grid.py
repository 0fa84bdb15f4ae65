"""The comparison grid: the same prompts and seed through several models, side by side, in one PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from accvideo.generation import generate
from accvideo.models.registry import load_model
from accvideo.world import HELDOUT_COMBOS, TRAIN_COMBOS, prompt_for

# Four train prompts covering every shape and direction, then two held-out combinations.
_GRID_TRAIN = [("red", "circle", "right"), ("green", "square", "up"), ("yellow", "triangle", "left"),
               ("cyan", "triangle", "down")]
assert all(c in TRAIN_COMBOS for c in _GRID_TRAIN)
GRID_PROMPTS = [prompt_for(*c) for c in _GRID_TRAIN] + [prompt_for(*c) for c in (HELDOUT_COMBOS[0], HELDOUT_COMBOS[2])]


def comparison_grid(columns: list[tuple[str, object, int | None]], path: str | Path,
                    prompts: list[str] = GRID_PROMPTS, seed: int = 0, scale: int = 3) -> Path:
    """A PNG with one row per prompt and one column group per model, all on the same seed:
    every other frame. `columns`: (title, model name, folder or loaded pipeline, steps or None
    for the model's own)."""
    blocks = []
    for title, model, steps in columns:
        pipe = load_model(model) if isinstance(model, str | Path) else model
        strips = []
        for prompt in prompts:
            video = generate(pipe, prompt, seed=seed, num_steps=steps).video[::2]
            frames = [np.kron(f, np.ones((scale, scale, 1), dtype=np.uint8)) for f in video]
            strips.append(np.concatenate([np.pad(f, ((1, 1), (1, 1), (0, 0)), constant_values=255) for f in frames],
                                         axis=1))
        block = np.concatenate(strips, axis=0)
        header = Image.new("RGB", (block.shape[1], 18), (255, 255, 255))
        ImageDraw.Draw(header).text((4, 3), title, fill=(0, 0, 0))
        blocks.append(np.concatenate([np.asarray(header), block], axis=0))
    height = blocks[0].shape[0]
    labels = Image.new("RGB", (190, height), (255, 255, 255))
    row_h = (height - 18) // len(prompts)
    for i, prompt in enumerate(prompts):
        ImageDraw.Draw(labels).text((4, 18 + i * row_h + row_h // 2 - 6), prompt, fill=(0, 0, 0))
    parts = [np.asarray(labels)]
    for block in blocks:
        parts += [np.full((height, 8, 3), 255, dtype=np.uint8), block]
    Image.fromarray(np.concatenate(parts, axis=1)).save(path)
    return Path(path)
