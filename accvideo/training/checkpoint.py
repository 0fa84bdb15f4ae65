"""Atomic checkpoints holding model, optimizer, step, RNG state and config."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from accvideo.util.io import atomic_write_bytes, atomic_write_text


def rng_state() -> dict[str, Any]:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


def save_checkpoint(path: str | Path, **payload: Any) -> None:
    payload.setdefault("rng", rng_state())
    atomic_write_bytes(path, lambda f: torch.save(payload, f))


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # a corrupt file must name itself
        raise ValueError(f"checkpoint {str(path)!r} is unreadable or corrupt: {err}") from err


class MetricsLog:
    """Append-only JSONL metrics file (one object per logged step); rank 0 writes."""

    def __init__(self, path: str | Path, enabled: bool = True):
        self.path = Path(path)
        self.enabled = enabled
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def truncate(self, keep) -> None:
        """Drop records for which `keep(record)` is False (on resume: steps after the checkpoint),
        so a resumed run's log is continuous, with no step logged twice."""
        if not self.enabled or not self.path.exists():
            return
        kept = [line for line in self.path.read_text().splitlines() if line.strip() and keep(json.loads(line))]
        atomic_write_text(self.path, "".join(line + "\n" for line in kept))

    def write(self, **record: Any) -> None:
        if self.enabled:
            with open(self.path, "a") as f:
                f.write(json.dumps(record) + "\n")
