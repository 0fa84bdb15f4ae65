"""Content hashes of weight files: a flipped byte inside a tensor keeps every header valid and the
file size unchanged, and only a recorded sha256 tells it apart.

A folder we write (an exported or bundled pipeline) gets `sha256.json`: {relative path: hex
digest} for every weights file under it. Loading verifies the files it lists.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from accvideo.util.io import atomic_write_text

HASH_FILE = "sha256.json"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


def file_sha256(path: str | Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def weight_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in WEIGHT_SUFFIXES)


def write_hashes(folder: str | Path) -> dict[str, str]:
    """Record the sha256 of every weights file under `folder` in `folder/sha256.json`."""
    folder = Path(folder)
    hashes = {p.relative_to(folder).as_posix(): file_sha256(p) for p in weight_files(folder)}
    atomic_write_text(folder / HASH_FILE, json.dumps(hashes, indent=2, sort_keys=True) + "\n")
    return hashes


def verify_hashes(folder: str | Path) -> int:
    """Check the files `folder/sha256.json` lists; returns how many were checked (0 without the file).

    Raises ValueError naming the first file that is missing or whose content changed."""
    folder = Path(folder)
    path = folder / HASH_FILE
    if not path.exists():
        return 0
    try:
        recorded = json.loads(path.read_text())
        if not isinstance(recorded, dict):
            raise TypeError(f"a JSON object was expected, not {type(recorded).__name__}")
    except (OSError, json.JSONDecodeError, TypeError) as err:
        raise ValueError(f"folder {str(folder)!r}: {HASH_FILE} is unreadable or corrupt ({err}).") from err
    for name, digest in sorted(recorded.items()):
        file = folder / name
        if not file.is_file():
            raise ValueError(f"folder {str(folder)!r}: weights file {name} listed in {HASH_FILE} is missing.")
        actual = file_sha256(file)
        if actual != digest:
            raise ValueError(f"folder {str(folder)!r}: weights file {name} does not match its recorded sha256 "
                             f"(recorded {digest[:12]}..., now {actual[:12]}...): the file is corrupt; restore it "
                             "or export the model again.")
    return len(recorded)
