"""Bundle a trained run into `assets/NAME`: the pipeline folder, provenance and a sample grid."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .data.procedural import HELDOUT_COMBOS, TRAIN_COMBOS, prompt_for
from .inference import generate
from .models.registry import ASSETS, load_pipeline, resolve_model
from .training.checkpoint import atomic_write_text

# Four train prompts covering every shape and direction, then two held-out combinations.
_GRID_TRAIN = [("red", "circle", "right"), ("green", "square", "up"), ("yellow", "triangle", "left"),
               ("cyan", "triangle", "down")]
assert all(c in TRAIN_COMBOS for c in _GRID_TRAIN)
GRID_PROMPTS = [prompt_for(*c) for c in _GRID_TRAIN] + [prompt_for(*c) for c in (HELDOUT_COMBOS[0], HELDOUT_COMBOS[2])]


def sample_grid(pipe, path: str | Path, prompts: list[str] = GRID_PROMPTS, seed: int = 0, scale: int = 4,
                **gen_kwargs) -> Path:
    """Write a PNG: one row per prompt (label, then every other frame), upscaled `scale` x."""
    rows = []
    for prompt in prompts:
        video = generate(pipe, prompt, seed=seed, **gen_kwargs).video  # (T, H, W, 3)
        frames = [np.kron(f, np.ones((scale, scale, 1), dtype=np.uint8)) for f in video[::2]]
        strip = np.concatenate([np.pad(f, ((2, 2), (2, 2), (0, 0)), constant_values=40) for f in frames], axis=1)
        label = Image.new("RGB", (200, strip.shape[0]), (255, 255, 255))
        ImageDraw.Draw(label).text((6, strip.shape[0] // 2 - 6), prompt, fill=(0, 0, 0))
        rows.append(np.concatenate([np.asarray(label), strip], axis=1))
    Image.fromarray(np.concatenate(rows, axis=0)).save(path)
    return Path(path)


def _git_commit() -> str:
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
        "bundled_at_commit": _git_commit(),
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
    sample_grid(load_pipeline(dest), dest / "samples.png")
    return dest
