"""Model names -> local pipeline folders, and validated, cached loading.

Nothing here downloads. A name resolves to a bundled folder under `assets/`, to a real
model (`REAL_MODELS`, see `real.py`) found in `$ACCVIDEO_MODELS_DIR/<name>` or the Hugging
Face cache, or is itself a folder; a folder may be a pipeline folder (holding
`model_index.json`) or a training run folder holding `pipeline/`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from safetensors import safe_open

from accvideo.models.memory import MemoryOptions
from accvideo.models.real import REAL_MODELS, real_defaults, real_memory_defaults, real_model_of, resolve_real
from accvideo.models.variants import Variant, split_variant
from accvideo.util.hashes import verify_hashes

logger = logging.getLogger(__name__)

ASSETS = Path(__file__).resolve().parents[2] / "assets"
SAMPLING_FILE = "accvideo_sampling.json"

# Bundled tiny models (trained by this repo's own pipeline; see assets/*/provenance).
BUNDLED: dict[str, str] = {
    "tiny-teacher": "tiny-teacher",
    "tiny-accvideo": "tiny-accvideo",
    "tiny-gpd": "tiny-gpd",
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
    if name in REAL_MODELS:
        return resolve_real(name)  # ValueError with the download command when it is not here
    raise ValueError(f"`model` must be a known model name {known_models() + sorted(REAL_MODELS)} or an existing "
                     f"folder but is {name!r}.")


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
            # diffusers and transformers load pickled `.bin` shards when a folder has no safetensors
            # (older Hub repos and `save_pretrained(safe_serialization=False)` write them)
            _check_bin_weights(folder, component, sorted(sub.glob("*.bin")))
            return
        for w in weights:
            try:
                with safe_open(str(w), framework="pt") as f:
                    for key in f.keys():
                        f.get_slice(key)  # touches the header entry; a truncated file fails here or below
            except Exception as err:
                raise ValueError(f"model component {component!r}: weights file {w.name} is corrupt ({err}).") from err
            if w.stat().st_size < 16:
                raise ValueError(f"model component {component!r}: weights file {w.name} is truncated.")


def _check_bin_weights(folder: Path, component: str, shards: list[Path]) -> None:
    """A component's `.bin` shards are torch zip archives whose central directory is intact (it is
    at the end of the file, so a truncated download fails here); nothing is unpickled."""
    if not shards:
        raise ValueError(f"model component {component!r} in {str(folder)!r} has no weights: neither .safetensors "
                         "nor .bin files.")
    for w in shards:
        try:
            with zipfile.ZipFile(w) as archive:
                archive.namelist()
        except (zipfile.BadZipFile, OSError) as err:
            raise ValueError(f"model component {component!r}: weights file {w.name} is corrupt or truncated (a .bin "
                             f"must be a torch zip archive: {err}).") from err


def validate_folder(folder: Path) -> dict:
    """Check model_index.json, every listed component and, where the folder records them
    (`sha256.json`, written by export and bundle), the content hashes of its weights.
    Returns the parsed index."""
    try:
        index = json.loads((folder / "model_index.json").read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"model folder {str(folder)!r}: model_index.json is unreadable or corrupt ({err}).") from err
    components = [k for k, v in index.items() if not k.startswith("_") and isinstance(v, list) and v[0] is not None]
    for component in components:
        _check_component(folder, component)
    verify_hashes(folder)
    return index


def read_sampling_defaults(folder: Path) -> dict:
    """Per-model sampling defaults saved beside the pipeline (steps, guidance, shift, size).

    A real model downloaded from the Hub has no such file: its defaults come from the
    registry (`real.py`), recognised by the folder's model name or Hub repo id.
    """
    path = folder / SAMPLING_FILE
    if not path.exists():
        defaults = real_defaults(folder)
        if not defaults:
            _warn_no_defaults(folder)
        return defaults
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"model folder {str(folder)!r}: {SAMPLING_FILE} is corrupt ({err}).") from err


_warned: set[str] = set()


def _warn_no_defaults(folder: Path) -> None:
    """Once per folder: a pipeline without saved or registry defaults samples at the tiny models'
    fallbacks, which for a real model is a useless 32x32 clip without CFG."""
    key = str(Path(folder).resolve())
    if key in _warned:
        return
    _warned.add(key)
    logger.warning("model folder %r has no %s and is not a known real model (%s, recognised by folder name or Hub "
                   "repo id): sampling falls back to 50 steps, 9 frames of 32x32, guidance 1.0 (no CFG) unless "
                   "given; pass the settings, or write them to %s in the folder.", key, SAMPLING_FILE,
                   ", ".join(sorted(REAL_MODELS)), SAMPLING_FILE)


@dataclass(frozen=True)
class LoadedModel:
    """A loaded diffusers pipeline and what we know about it, kept beside it instead of patched onto it.

    pipe: the diffusers pipeline (shared and cached: treat it as read-only; trainers ask for
    `load_model(..., cached=False)` and own their copy). sampling: the saved sampling defaults
    (`accvideo_sampling.json`, or the registry's for a real model; read them through
    `accvideo.generation.resolve_sampling`). folder: where it was loaded from (None for a
    pipeline built in memory). memory: the placement it was loaded with. decoder: a
    `TinyVideoDecoder` that replaces the VAE's decode (None: the VAE); cache: a
    `variants.CacheSpec` applied while denoising (None: every block computed); variant: the `+`
    suffix naming both (see `variants.py`).
    """

    pipe: Any
    sampling: dict = field(default_factory=dict)
    folder: Path | None = None
    memory: MemoryOptions = field(default_factory=MemoryOptions)
    decoder: Any = None
    cache: Any = None
    variant: str = ""

    @property
    def transformer(self):
        return self.pipe.transformer

    @property
    def vae(self):
        return self.pipe.vae

    @property
    def scheduler(self):
        return self.pipe.scheduler

    @property
    def label(self) -> str:
        """How results name this model: its folder, else its pipeline class."""
        return (str(self.folder) if self.folder is not None else type(self.pipe).__name__) + self.variant


_cache: dict[tuple, LoadedModel] = {}
_lock = threading.Lock()


def load_model(name_or_dir: str | Path, dtype: str = "fp32", device: str | None = None,
               offload: str = "none", vae_tiling: bool | None = None, cached: bool = True,
               decoder: str | Path | None = None) -> LoadedModel:
    """Load a validated pipeline, once per folder, modification time and memory options.

    Memory options (see `memory.py` and docs/GPU.md): `dtype` "fp32" | "bf16" | "fp16";
    `device` "cpu" | "cuda" | "cuda:N" (default cpu, as before); `offload` "none" | "model"
    (whole components move to the GPU one at a time) | "sequential" (layer by layer; lowest
    memory, slowest); `vae_tiling` decodes the video in overlapping tiles (None: the model's
    default, on for the real HunyuanVideo models, off otherwise). Loaded weights are
    frozen. `cached=False` returns a private copy that a trainer may move, hook and unfreeze
    without touching the copy the app and the evaluators share.

    A name may carry `+` modifiers (`tiny-accvideo+tinydecoder`, `tiny-teacher+fbcache@0.1`,
    `tiny-teacher+magcache`; see `variants.py`): the same cached pipeline, returned with the
    decoder or cache beside it. `decoder`: None or "full" (the VAE, unless the name says
    `+tinydecoder`), "tiny" (the model's distilled decoder) or a decoder folder.
    """
    name_or_dir, variant = split_variant(name_or_dir)
    model = _load_model(name_or_dir, dtype, device, offload, vae_tiling, cached)
    return with_variant(model, variant, decoder)


def with_variant(model: LoadedModel, variant: Variant, decoder: str | Path | None = None) -> LoadedModel:
    """`model` with the decoder and cache a `Variant` (and the `decoder` argument) ask for."""
    if decoder is not None and str(decoder) not in ("tiny", "full") and not Path(decoder).is_dir():
        raise ValueError(f"`decoder` must be 'tiny', 'full' or a decoder folder but is {str(decoder)!r}.")
    if variant.decoder == "tiny" and decoder is not None and str(decoder) == "full":
        raise ValueError("`decoder` is 'full' but the model name asks for '+tinydecoder'; drop one of the two.")
    choice = variant.decoder if decoder is None or str(decoder) == "full" else decoder
    if choice is None and variant.cache is None:
        return model
    loaded = None
    if choice is not None:
        from accvideo.models.tiny_decoder import find_decoder

        loaded = _decoder(find_decoder(model.folder, choice), model)
    suffix = Variant(decoder="tiny" if choice is not None else None, cache=variant.cache).suffix
    return dataclasses.replace(model, decoder=loaded, cache=variant.cache, variant=suffix)


_decoders: dict[tuple, Any] = {}


def _decoder(folder: Path, model: LoadedModel):
    """A decoder folder loaded once per folder, modification time and device (frozen, shared)."""
    from accvideo.models.memory import execution_device
    from accvideo.models.tiny_decoder import load_decoder

    device = execution_device(model.pipe)
    key = (str(folder.resolve()), (folder / "sha256.json").stat().st_mtime if (folder / "sha256.json").exists()
           else 0.0, str(device))
    with _lock:
        if key not in _decoders:
            _decoders[key] = load_decoder(folder).to(device)
        return _decoders[key]


def _load_model(name_or_dir, dtype: str, device: str | None, offload: str, vae_tiling: bool | None,
                cached: bool) -> LoadedModel:
    folder = resolve_model(name_or_dir)
    if vae_tiling is None:  # looked up before resolve(): a Hub snapshot is known by its unresolved path
        vae_tiling = bool(real_memory_defaults(folder).get("vae_tiling", False))
    options = MemoryOptions(dtype=dtype, device=device, offload=offload, vae_tiling=vae_tiling)
    options.validate()
    folder = folder.resolve()
    if not cached:
        return _load(folder, options)
    key = (str(folder), (folder / "model_index.json").stat().st_mtime, options)
    with _lock:
        if key not in _cache:
            _cache[key] = _load(folder, options)
        return _cache[key]


def _load(folder: Path, options: MemoryOptions) -> LoadedModel:
    from diffusers import DiffusionPipeline

    from accvideo.models.memory import apply_memory_options

    validate_folder(folder)
    try:
        pipe = DiffusionPipeline.from_pretrained(str(folder), local_files_only=True, dtype=options.torch_dtype)
    except Exception as err:
        raise ValueError(f"model folder {str(folder)!r} could not be loaded: {err}") from err
    pipe.set_progress_bar_config(disable=True)
    for component in pipe.components.values():
        if hasattr(component, "requires_grad_"):
            component.requires_grad_(False)  # loaded models are frozen; trainers unfreeze copies
    apply_memory_options(pipe, options)
    return LoadedModel(pipe=pipe, sampling=read_sampling_defaults(folder), folder=folder, memory=options)


def is_real_model(ref: str | Path) -> bool:
    """Whether model reference `ref` is a real checkpoint: a registry name, or a folder the registry
    recognises (by folder name or Hub repo id); False for the tiny models and unknown references."""
    if str(ref) in REAL_MODELS:
        return True
    try:
        return real_model_of(resolve_model(ref)) is not None
    except ValueError:
        return False
