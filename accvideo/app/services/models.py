"""The models the app can use: bundled tiny models (with their provenance), students from finished
distillation runs, and real checkpoints when the model registry reports them.

Students are discovered, not listed: every bundled model whose `accvideo_sampling.json` says
`"role": "student"`, every finished distillation run in the runs folder (`run:NAME`), and every
real student the registry finds on this machine (`accvideo-hunyuan-5step` once converted).
Teachers likewise: the bundled ones and the real teachers found on disk.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

# lower layer (its path may change with the layout step; keep it in this one block)
from accvideo.models import registry
from accvideo.models.memory import MemoryOptions
from accvideo.models.real import REAL_MODELS, resolve_real
from accvideo.models.registry import ASSETS, BUNDLED, read_sampling_defaults
from accvideo.models.registry import is_real_model as is_real  # the memory options apply to these only

from ..jobs import JobManager

MODEL_COLUMNS = ["model", "source", "role", "steps", "procbench", "available", "provenance", "where",
                 "how to get it"]
# the Models tab's table: narrow enough for a 1,280 px page; the rest is in the selected row's details
OVERVIEW_COLUMNS = {"model": "model", "role": "role", "steps": "steps", "procbench": "ProcBench"}


def _bundled(role: str) -> dict[str, str]:
    """Bundled models whose saved sampling role is `role` ("teacher" when unsaid): name -> name."""
    found: dict[str, str] = {}
    for name, folder in sorted(BUNDLED.items()):
        try:
            defaults = read_sampling_defaults(ASSETS / folder)
        except ValueError:
            continue
        if defaults.get("role", "teacher") == role and (ASSETS / folder / "model_index.json").exists():
            found[name] = name
    return found


# app.py's flags, by the MemoryOptions field each sets: errors name the flag the user typed
FLAGS = {"dtype": "--dtype", "device": "--device", "offload": "--offload", "vae_tiling": "--vae-tiling"}


@dataclass(frozen=True)
class RealModelOptions:
    """How the app loads the real checkpoints (`python app.py --device cuda --dtype bf16
    [--offload model|sequential] [--vae-tiling]`): the `registry.load_model` memory options.
    vae_tiling None: each model's own default (on for the real HunyuanVideo models). The tiny
    models (bundled and finished runs) ignore them and load on the CPU in fp32, as always."""

    dtype: str = "fp32"
    device: str | None = None
    offload: str = "none"
    vae_tiling: bool | None = None

    def validate(self) -> RealModelOptions:
        """ValueError naming the flag (`--device`, ...), the rule and the value; returns self."""
        try:
            MemoryOptions(self.dtype, self.device, self.offload, bool(self.vae_tiling)).validate()
        except ValueError as err:
            message = str(err)
            for name, flag in FLAGS.items():
                message = message.replace(f"`{name}`", f"`{flag}`").replace(f"{name} '", f"{flag} '")
            raise ValueError(message) from None
        return self

    def load_kwargs(self, ref: str) -> dict:
        """`load_model` keyword arguments for model reference `ref`: these options for a real model, none
        (the CPU, fp32) for a tiny one."""
        return dataclasses.asdict(self) if is_real(ref) else {}


def real_on_disk(role: str) -> dict[str, str]:
    """Real models of `role` ("teacher" | "student") that the registry finds on this machine
    (`$ACCVIDEO_MODELS_DIR/<name>`, or a teacher in the Hugging Face cache): name -> name.
    Never downloads; a model that is not here is simply not listed (the Models tab says how to get it)."""
    found: dict[str, str] = {}
    for name, model in REAL_MODELS.items():
        if model.is_student != (role == "student"):
            continue
        try:
            resolve_real(name)
        except ValueError:
            continue
        found[name] = name
    return found


def available_students(manager: JobManager | None = None) -> dict[str, str]:
    """Student label -> model reference: bundled models whose sampling role is `student`
    (tiny-accvideo, tiny-gpd once bundled, ...), finished distillation runs ('run:NAME') and the
    real students found on disk (by registry name, e.g. 'accvideo-hunyuan-5step')."""
    found = _bundled("student")
    if manager is not None:
        found.update({label: str(folder) for label, folder in manager.students().items()})
    found.update(real_on_disk("student"))
    return found


def available_teachers(default: str | None = None) -> dict[str, str]:
    """Teacher label -> model reference for Compare: `default` (the app's `--model`, a name or a
    folder) first, then the bundled teachers and the real teachers found on disk."""
    found = {default: default} if default else {}
    for name in {**_bundled("teacher"), **real_on_disk("teacher")}:
        found.setdefault(name, name)
    return found


def startup_models(teacher: str) -> list[str]:
    """What app.py loads before it launches: `teacher`, the tiny students, and the real students of
    `teacher` when it is a real model on disk. Other real checkpoints are listed but load on their
    first comparison: two 13-14 B models and their text encoders at once may not fit one GPU."""
    from accvideo.models.real import REAL_MODELS

    real = {name for name, model in REAL_MODELS.items() if model.is_student}
    own = {name for name in real if REAL_MODELS[name].teacher == str(teacher)}
    return [teacher, *(ref for name, ref in available_students().items() if name not in real or name in own)]


def list_models(manager: JobManager | None = None) -> pd.DataFrame:
    """Models this app can use: bundled tiny models with their folders and provenance, finished runs,
    and real checkpoints when the registry reports them (local or Hugging Face cache, else what to download)."""
    rows = []
    for name, folder in sorted(BUNDLED.items()):
        path = ASSETS / folder
        try:
            defaults = read_sampling_defaults(path)
        except ValueError as err:
            defaults = {"role": f"broken: {err}"}
        provenance = read_provenance(path)
        procbench = (provenance.get("scores") or {}).get("procbench_train")
        rows.append({"model": name, "source": "bundled", "role": defaults.get("role", "teacher"),
                     "steps": defaults.get("num_steps"), "procbench": procbench,
                     "available": (path / "model_index.json").exists(),
                     "where": str(path), "how to get it": provenance.get("command") or "in git (assets/)",
                     "provenance": provenance_line(provenance)})
    if manager is not None:
        for label, folder in manager.students().items():
            defaults = read_sampling_defaults(folder)
            rows.append({"model": label, "source": "run", "role": "student", "steps": defaults.get("num_steps"),
                         "available": True, "where": str(folder), "how to get it": "Distil tab"})
    rows += real_model_rows()
    # provenance before the long columns, so it shows without scrolling the table sideways
    return pd.DataFrame(rows, columns=MODEL_COLUMNS).fillna({"provenance": ""})


def models_overview(models) -> pd.DataFrame:
    """The narrow table the Models tab shows (model, role, steps, ProcBench) of `list_models`' rows."""
    overview = models[list(OVERVIEW_COLUMNS)].rename(columns=OVERVIEW_COLUMNS)
    overview["ProcBench"] = [f"{v:.1f}" if pd.notna(v) else "" for v in overview["ProcBench"]]
    overview["steps"] = [str(int(v)) if pd.notna(v) else "" for v in overview["steps"]]
    return overview


def model_details(models, name) -> str:
    """Markdown details of model `name` (a row of `list_models`): source, provenance, path, download command."""
    rows = models[models["model"] == name]
    if rows.empty:
        known = ", ".join(models["model"])
        raise ValueError(f"`model` must be one of the listed models ({known}) but is {name!r}.")
    row = rows.iloc[0]
    available = "yes" if row["available"] else "no"
    lines = [f"### {row['model']}", "",
             f"- **source**: {row['source']}; **role**: {row['role'] or '?'}; **available**: {available}",
             f"- **provenance**: {row['provenance'] or 'none recorded'}",
             f"- **path**: `{row['where']}`" if row["where"] else "- **path**: not on this machine"]
    how = row["how to get it"]
    if how:
        command = how if how.startswith(("python", "huggingface-cli", "hf ", "git ")) else ""
        lines.append(f"- **how to get it**:\n\n```bash\n{command}\n```" if command else f"- **how to get it**: {how}")
    return "\n".join(lines)


def read_provenance(folder: Path) -> dict:
    """A bundled model's provenance.json ({} when absent or unreadable: the table still lists it)."""
    try:
        return json.loads((folder / "provenance.json").read_text())
    except (OSError, ValueError):
        return {}


def provenance_line(provenance: dict) -> str:
    """One line from provenance.json: commit, the stage's wall time, scores and bench time."""
    parts = []
    if provenance.get("bundled_at_commit"):
        parts.append(f"commit {provenance['bundled_at_commit'][:10]}")
    pipeline_wall = (provenance.get("reproduce") or {}).get("pipeline_wall_s")
    if pipeline_wall:
        parts.append(f"reproduce run {pipeline_wall / 60:.1f} min in all")
    if provenance.get("wall_s"):
        parts.append(f"trained in {provenance['wall_s'] / 60:.1f} min")
    scores = provenance.get("scores") or {}
    if "procbench_train" in scores:
        held = f" (held out {scores['procbench_heldout']:.2f})" if "procbench_heldout" in scores else ""
        parts.append(f"ProcBench {scores['procbench_train']:.2f}{held}")
    if scores.get("bench_total_s"):
        parts.append(f"{scores['bench_total_s']:.3f} s per video")
    if provenance.get("seed") is not None:
        parts.append(f"seed {provenance['seed']}")
    return "; ".join(parts)


def _registry_status():
    """The registry's `model_status()` / `real_models()`, wherever it lives (registry.py or models/real.py),
    or None. Looked up at call time: the real-model registry is optional and its name not settled."""
    status = getattr(registry, "model_status", None) or getattr(registry, "real_models", None)
    if status is not None:
        return status
    try:
        real = importlib.import_module("accvideo.models.real")
    except ImportError:
        return None
    return getattr(real, "model_status", None) or getattr(real, "real_models", None)


def _as_records(found) -> list[dict]:
    # the registry may answer with a DataFrame, a {name: info} dict, or a list of dicts / objects
    if isinstance(found, pd.DataFrame):
        return found.to_dict("records")
    if isinstance(found, dict):
        return [{"name": k, **(v if isinstance(v, dict) else {"status": v})} for k, v in found.items()]
    return [item if isinstance(item, dict) else vars(item) if hasattr(item, "__dict__") else {"name": str(item)}
            for item in found or []]


def real_model_rows() -> list[dict]:
    """Real checkpoints from the registry, with where they were found or what to download."""
    status = _registry_status()
    if status is None:
        return []
    try:
        found = status()
    except Exception as err:  # a registry problem must not take the tab down
        return [{"model": "real checkpoints", "source": "registry", "role": "", "steps": None,
                 "available": False, "where": "", "how to get it": f"registry error: {err}"}]
    rows = []
    for item in _as_records(found):
        where = item.get("path") or item.get("local_path") or item.get("where") or ""
        available = bool(item.get("available", item.get("present", bool(where))))
        download = item.get("download") or item.get("download_command") or item.get("hint", "")
        if isinstance(download, list | tuple):
            download = "; ".join(download)
        rows.append({"model": item.get("name") or item.get("model", "?"), "source": "real",
                     "role": item.get("role", ""), "steps": item.get("num_steps"), "available": available,
                     "where": str(where), "how to get it": "" if available else download})
    return rows
