"""`accvideo verify PATH` for any folder we write: a model, a run (teacher, AccVideo, GPD) or a
SynVid dataset. Every content hash the folder records is checked, and every problem is listed.

What is checked, wherever it appears under PATH:
- pipeline folders (`model_index.json`): components, headers, `sha256.json`;
- checkpoints (`checkpoints/*.pt` and the kept previous `*.pt.prev`): their `.sha256` sidecars;
- a SynVid dataset (`config.json` + `manifest.csv`): each listed shard's sha256 and header, and
  each shard with a sidecar against it (a shard not yet in the manifest, after a killed run).
"""

from __future__ import annotations

import json
from pathlib import Path

from accvideo.models.registry import resolve_model, validate_folder
from accvideo.synvid.format import CONFIG_FILE, MANIFEST_FILE, shard_is_complete
from accvideo.synvid.reader import open_synvid
from accvideo.training.checkpoint import verify_checkpoint
from accvideo.util.hashes import HASH_FILE
from accvideo.util.runs import infer_kind


def verify_folder(path: str | Path) -> dict:
    """Check `path` (a model name, or any folder above); returns the report
    {folder, kind, pipelines, hashed_files_checked, checkpoints_checked, checkpoints_unhashed,
    shards_checked, problems}: `problems` holds one sentence naming each bad file (empty: all good)."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        try:
            folder = resolve_model(path)  # a model name
        except ValueError as err:
            raise ValueError(f"`path` must be a model name, or a model, run or SynVid folder, but is {str(path)!r} "
                             f"({err})") from err
    report = {"folder": str(folder), "kind": None, "pipelines": 0, "hashed_files_checked": 0,
              "checkpoints_checked": 0, "checkpoints_unhashed": 0, "shards_checked": 0, "problems": []}
    problems = report["problems"]
    try:
        report["kind"] = infer_kind(folder)
    except ValueError as err:
        problems.append(str(err))
    pipelines = sorted(p.parent for p in folder.rglob("model_index.json"))
    for pipeline in pipelines:
        report["pipelines"] += 1
        try:
            validate_folder(pipeline)
            hashes = pipeline / HASH_FILE
            report["hashed_files_checked"] += len(json.loads(hashes.read_text())) if hashes.exists() else 0
        except ValueError as err:
            problems.append(str(err))
    for ckpt in sorted(p for d in folder.rglob("checkpoints") if d.is_dir() for p in d.iterdir()
                       if p.is_file() and (p.suffix == ".pt" or p.name.endswith(".pt.prev"))):
        try:
            hashed = verify_checkpoint(ckpt)
            report["checkpoints_checked" if hashed else "checkpoints_unhashed"] += 1
        except ValueError as err:
            problems.append(str(err))
    if (folder / CONFIG_FILE).exists() and (folder / MANIFEST_FILE).exists():
        try:
            dataset = open_synvid(folder)
            problems += dataset.check()
            report["shards_checked"] = len(dataset.shards)
            listed = {s.shard for s in dataset.shards}
            for side in sorted(folder.glob("shard-*.json")):
                k = int(side.stem.split("-")[1])
                if k not in listed and shard_is_complete(folder, k, verify=True) is None:
                    problems.append(f"SynVid shard {side.stem}.safetensors does not match its sidecar {side.name} "
                                    "(size or sha256); rerun the generator to regenerate it.")
        except ValueError as err:
            problems.append(str(err))
    if not (pipelines or report["checkpoints_checked"] or report["checkpoints_unhashed"] or report["shards_checked"]
            or problems):
        problems.append(f"`path` {str(folder)!r} holds nothing to verify: no pipeline, checkpoint or SynVid shard.")
    return report

