"""Run folders know their kind and config, so no command writes into the wrong one.

Every command that writes a run folder (train-teacher, synvid, distill accvideo / gpd) calls
`claim_run(out, kind, config)` before it writes anything. The first claim records
`run.json` = {kind, config}. A later claim is refused, naming both, when the folder holds a run of
another kind, or the same kind made with another config (resuming with a changed setting would
otherwise crash half-way, or silently mix two configs in one run). Folders written before
`run.json` existed are recognised by their files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from accvideo.util.io import atomic_write_text

RUN_FILE = "run.json"
KINDS = ("teacher", "synvid", "accvideo", "gpd", "decoder")
# Free to differ on resume: `threads` changes how fast a run goes, never what it computes, and a
# larger `steps` trains the same run longer (its checkpoints stay valid).
RUNTIME_ONLY = {"threads", "steps"}


def infer_kind(out: Path) -> str | None:
    """The kind of a run folder from the files it holds (for folders without run.json)."""
    record = out / RUN_FILE
    if record.exists():
        return read_run(out)["kind"]
    if (out / "config.json").exists() or any(out.glob("shard-*.safetensors")):
        return "synvid"
    summary = out / "summary.json"
    if summary.exists():
        try:
            method = json.loads(summary.read_text()).get("method")
        except (OSError, json.JSONDecodeError, AttributeError):
            method = None
        if method in ("accvideo", "gpd", "decoder"):
            return method
        return "teacher" if (out / "stages").exists() else None
    if (out / "stages").exists():
        return "gpd" if any((out / "stages").glob("stage-*")) else "teacher"
    if (out / "checkpoints").exists():
        return "accvideo" if (out / "checkpoints" / "last.pt").exists() else None
    return None


def read_run(out: Path) -> dict:
    try:
        record = json.loads((out / RUN_FILE).read_text())
        if not isinstance(record, dict) or record.get("kind") not in KINDS:
            raise ValueError(f"no known `kind` in {record!r:.80}")
        return record
    except (OSError, json.JSONDecodeError, ValueError) as err:
        raise ValueError(f"`out` {str(out)!r}: {RUN_FILE} is unreadable or corrupt ({err}); move the folder "
                         "aside or choose a new one.") from err


def _strip(config: Any) -> Any:
    if isinstance(config, dict):
        return {k: _strip(v) for k, v in config.items() if k not in RUNTIME_ONLY}
    return config


def _first_difference(old: Any, new: Any, where: str = "") -> str | None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            found = _first_difference(old.get(key), new.get(key), f"{where}.{key}" if where else key)
            if found:
                return found
        return None
    return None if old == new else f"`{where}` is {_short(old)} there but {_short(new)} now"


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def claim_run(out: str | Path, kind: str, config: dict, write: bool = True) -> None:
    """Refuse (ValueError naming both) to write a `kind` run with `config` into `out` when `out` holds
    a run of another kind or one made with another config; else record run.json (rank 0 only:
    `write=False` checks without writing). Call before anything is written into `out`."""
    if kind not in KINDS:
        raise ValueError(f"`kind` must be one of {list(KINDS)} but is {kind!r}.")
    out = Path(out)
    config = json.loads(json.dumps(config, default=str))  # the JSON form is what is compared and kept
    if out.exists() and not out.is_dir():
        raise ValueError(f"`out` {str(out)!r} is a file, not a run folder.")
    found = infer_kind(out) if out.exists() else None
    if found is not None and found != kind:
        raise ValueError(f"`out` {str(out)!r} holds a {found} run, and this command writes a {kind} run: it would "
                         f"replace that run's files. Choose a new folder.")
    if (out / RUN_FILE).exists():
        difference = _first_difference(_strip(read_run(out).get("config")), _strip(config))
        if difference:
            raise ValueError(f"`out` {str(out)!r} holds a {kind} run made with another config: {difference}. "
                             "Resume with the same settings, or choose a new folder.")
        return
    if write:
        atomic_write_text(out / RUN_FILE, json.dumps({"kind": kind, "config": config}, indent=2, sort_keys=True)
                          + "\n")
