"""Bundle a trained run into `assets/NAME`: the pipeline folder, provenance and a sample grid."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from accvideo.generation import generate
from accvideo.models.registry import ASSETS, load_model, resolve_model
from accvideo.util.io import atomic_write_text
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


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def bundle_run(run_dir: str | Path, name: str, command: str, dest_root: Path = ASSETS,
               extra: dict | None = None) -> Path:
    """Copy `run_dir`'s pipeline into `dest_root/name` with provenance.json (plus `extra`) and samples.png."""
    run_dir = Path(run_dir)
    source = resolve_model(run_dir)
    dest = dest_root / name
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(source, dest)
    summary = json.loads((run_dir / "summary.json").read_text()) if (run_dir / "summary.json").exists() else {}
    provenance = {
        "name": name,
        "command": command,
        "bundled_at_commit": git_commit(),
        "seed": summary.get("config", {}).get("seed"),
        "wall_s": summary.get("wall_s"),
        "world_size": summary.get("world_size"),
        "num_params": summary.get("num_params"),
        "final_losses": {k: summary[k]["final"].get("loss") for k in ("vae", "transformer") if k in summary},
        "config": summary.get("config"),
        **(extra or {}),
    }
    atomic_write_text(dest / "provenance.json", json.dumps(provenance, indent=2))
    if (run_dir / "summary.json").exists():  # the full training summary (losses, wall time, config)
        shutil.copy(run_dir / "summary.json", dest / "training_summary.json")
    comparison_grid([(name, dest, None)], dest / "samples.png", scale=4)
    return dest
