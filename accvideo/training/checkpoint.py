"""Atomic checkpoints holding model, optimizer, step, RNG state and config, each with its sha256.

A flipped byte inside a tensor keeps the file's size and its zip structure: it loads, and the run
goes NaN later. So every checkpoint `X.pt` has a sidecar `X.pt.sha256`, checked before it is
loaded, and the one before it is kept as `X.pt.prev` (with `X.pt.prev.sha256`): a resume whose
latest checkpoint is corrupt falls back to it and says so.
"""

from __future__ import annotations

import json
import logging
import os
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from accvideo.util.hashes import file_sha256
from accvideo.util.io import atomic_write_text

log = logging.getLogger("accvideo.train")


def rng_state() -> dict[str, Any]:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


def hash_path(path: Path) -> Path:
    """The sidecar holding the sha256 of checkpoint `path` (one hex digest and a newline)."""
    return path.with_name(path.name + ".sha256")


def previous_path(path: Path) -> Path:
    """Where the checkpoint before `path` is kept (not `*.pt`, so no glob for checkpoints finds it)."""
    return path.with_name(path.name + ".prev")


def save_checkpoint(path: str | Path, **payload: Any) -> None:
    """Write `payload` (plus the RNG state) to `path` with its sha256 sidecar, keeping the checkpoint
    it replaces as `previous_path(path)`.

    The order keeps one verifiable checkpoint at every instant, whatever kills the process: the new
    file is complete under a temp name before anything moves; the old sidecar is copied before the
    old file is renamed onto it; the new sidecar is written before the new file takes its name."""
    path = Path(path)
    payload.setdefault("rng", rng_state())
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        digest = file_sha256(tmp)
        prev, side = previous_path(path), hash_path(path)
        if path.exists():
            if side.exists():
                atomic_write_text(hash_path(prev), side.read_text())
            else:  # a checkpoint from before sidecars: it stays loadable, unverified
                hash_path(prev).unlink(missing_ok=True)
            os.replace(path, prev)
        atomic_write_text(side, digest + "\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def remove_stale_temps(path: str | Path) -> None:
    """Temp files a killed `save_checkpoint` left beside `path` (never read; they only take space)."""
    path = Path(path)
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        tmp.unlink(missing_ok=True)


def verify_checkpoint(path: str | Path) -> bool:
    """True when `path` matches its recorded sha256; False without a sidecar (written before they
    existed). Raises ValueError naming the file when it is missing or its content changed."""
    path = Path(path)
    side = hash_path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint {str(path)!r} is missing.")
    if not side.exists():
        return False
    recorded = side.read_text().strip()
    actual = file_sha256(path)
    if actual != recorded:
        raise ValueError(f"checkpoint {str(path)!r} is corrupt: its sha256 ({actual[:12]}...) does not match the "
                         f"recorded one ({recorded[:12]}...) in {side.name}.")
    return True


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint at `path`, its sha256 checked first when recorded; ValueError naming the file."""
    path = Path(path)
    verify_checkpoint(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # a corrupt file must name itself
        raise ValueError(f"checkpoint {str(path)!r} is unreadable or corrupt: {err}") from err


def load_latest_checkpoint(path: str | Path) -> tuple[dict[str, Any], Path] | None:
    """The newest good checkpoint of `path` for a resume: `path` itself, or, when it is corrupt or a
    kill left it missing, the previous one (with a warning naming the bad file). None when there is
    neither; ValueError naming both files when both are bad."""
    path = Path(path)
    remove_stale_temps(path)
    prev = previous_path(path)
    candidates = [p for p in (path, prev) if p.exists()]
    if not candidates:
        return None
    problems = []
    for candidate in candidates:
        try:
            state = load_checkpoint(candidate)
        except ValueError as err:
            problems.append(str(err))
            continue
        if candidate != path:
            why = problems[0] if problems else f"checkpoint {str(path)!r} is missing (a run killed while saving)."
            log.warning("%s Resuming from the previous checkpoint %r (step %s) instead.", why, str(candidate),
                        state.get("step"))
        return state, candidate
    raise ValueError(" ".join(problems) + " No good checkpoint is left to resume from; move the run folder "
                     "aside and start again.")


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
