"""Content hashes of a model folder's components: what a derived artefact (a distilled decoder, a
MagCache calibration) records, so it is never used with weights it was not made from."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from accvideo.util.hashes import HASH_FILE, file_sha256

_hashes: dict[tuple, str] = {}


def weight_files(folder: Path, component: str) -> list[Path]:
    sub = Path(folder) / component
    return sorted(sub.glob("*.safetensors")) or sorted(sub.glob("*.bin"))


def component_sha256(folder: str | Path, component: str) -> str:
    """The sha256 of `folder/component`'s weights: the digest `sha256.json` records for a single
    file (load checks it), else computed once per file, size and modification time; several
    shards hash to the sha256 of their digests in name order."""
    folder = Path(folder)
    files = weight_files(folder, component)
    if not files:
        raise ValueError(f"model folder {str(folder)!r} has no {component} weights ({component}/*.safetensors or "
                         f"{component}/*.bin).")
    recorded = json.loads((folder / HASH_FILE).read_text()) if (folder / HASH_FILE).exists() else {}
    digests = []
    for f in files:
        stat = f.stat()
        key = (str(f.resolve()), stat.st_mtime, stat.st_size)
        if key not in _hashes:
            _hashes[key] = recorded.get(f.relative_to(folder).as_posix()) or file_sha256(f)
        digests.append(_hashes[key])
    return digests[0] if len(digests) == 1 else hashlib.sha256("".join(digests).encode()).hexdigest()
