"""Model names -> local pipeline folders, and validated, cached loading.

Nothing here downloads. A name resolves to a bundled folder under `assets/` or, for real
checkpoints, to a local folder; a folder may be a pipeline folder (holding
`model_index.json`) or a training run folder holding `pipeline/`.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from safetensors import safe_open

ASSETS = Path(__file__).resolve().parents[2] / "assets"
SAMPLING_FILE = "accvideo_sampling.json"

# Bundled tiny models (trained by this repo's own pipeline; see assets/*/provenance).
BUNDLED: dict[str, str] = {
    "tiny-teacher": "tiny-teacher",
    "tiny-accvideo": "tiny-accvideo",
}


def known_models() -> list[str]:
    return sorted(BUNDLED)


def resolve_model(name_or_dir: str | Path) -> Path:
    """Return the pipeline folder for a model name or a folder; ValueError when neither fits."""
    if not isinstance(name_or_dir, str | Path) or not str(name_or_dir).strip():
        raise ValueError(f"`model` must be a model name or a folder but is {name_or_dir!r}.")
    path = Path(name_or_dir).expanduser()
    if path.is_dir():
        if (path / "model_index.json").exists():
            return path
        if (path / "pipeline" / "model_index.json").exists():
            return path / "pipeline"
        raise ValueError(
            f"`model` folder {str(path)!r} is not a pipeline folder: it has no model_index.json "
            "(nor pipeline/model_index.json)."
        )
    name = str(name_or_dir)
    if name in BUNDLED:
        folder = ASSETS / BUNDLED[name]
        if not (folder / "model_index.json").exists():
            raise ValueError(
                f"`model` {name!r} is a bundled model but {str(folder)!r} is missing or incomplete; "
                "restore assets/ from git or rebuild it with `python -m accvideo train-teacher`."
            )
        return folder
    raise ValueError(f"`model` must be a known model name {known_models()} or an existing folder but is {name!r}.")


def _check_component(folder: Path, component: str) -> None:
    sub = folder / component
    if not sub.is_dir():
        raise ValueError(f"model folder {str(folder)!r} is missing component {component!r} (no {component}/ folder).")
    configs = [p for p in ("config.json", "scheduler_config.json", "tokenizer_config.json") if (sub / p).exists()]
    if not configs:
        raise ValueError(f"model component {component!r} in {str(folder)!r} has no config file.")
    for name in configs:
        try:
            json.loads((sub / name).read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"model component {component!r}: {name} is corrupt ({err}).") from err
    weights = sorted(sub.glob("*.safetensors"))
    if component in ("transformer", "vae", "text_encoder"):
        if not weights:
            raise ValueError(f"model component {component!r} in {str(folder)!r} has no .safetensors weights.")
        for w in weights:
            try:
                with safe_open(str(w), framework="pt") as f:
                    for key in f.keys():
                        f.get_slice(key)  # touches the header entry; a truncated file fails here or below
            except Exception as err:
                raise ValueError(f"model component {component!r}: weights file {w.name} is corrupt ({err}).") from err
            if w.stat().st_size < 16:
                raise ValueError(f"model component {component!r}: weights file {w.name} is truncated.")


def validate_folder(folder: Path) -> dict:
    """Check model_index.json and every listed component; returns the parsed index."""
    try:
        index = json.loads((folder / "model_index.json").read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"model folder {str(folder)!r}: model_index.json is unreadable or corrupt ({err}).") from err
    components = [k for k, v in index.items() if not k.startswith("_") and isinstance(v, list) and v[0] is not None]
    for component in components:
        _check_component(folder, component)
    return index


def read_sampling_defaults(folder: Path) -> dict:
    """Per-model sampling defaults saved beside the pipeline (steps, guidance, shift, size)."""
    path = folder / SAMPLING_FILE
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"model folder {str(folder)!r}: {SAMPLING_FILE} is corrupt ({err}).") from err


_cache: dict[tuple[str, float], object] = {}
_lock = threading.Lock()


def load_pipeline(name_or_dir: str | Path):
    """Load (once; cached by folder and modification time) a validated diffusers pipeline."""
    from diffusers import DiffusionPipeline

    folder = resolve_model(name_or_dir).resolve()
    key = (str(folder), (folder / "model_index.json").stat().st_mtime)
    with _lock:
        if key not in _cache:
            validate_folder(folder)
            try:
                pipe = DiffusionPipeline.from_pretrained(str(folder), local_files_only=True)
            except Exception as err:
                raise ValueError(f"model folder {str(folder)!r} could not be loaded: {err}") from err
            pipe.set_progress_bar_config(disable=True)
            for component in pipe.components.values():
                if hasattr(component, "requires_grad_"):
                    component.requires_grad_(False)  # loaded models are frozen; trainers unfreeze copies
            pipe.accvideo_sampling = read_sampling_defaults(folder)
            pipe.accvideo_folder = folder
            _cache[key] = pipe
        return _cache[key]
