"""The real models: HunyuanVideo, the AccVideo HunyuanVideo student, Wan2.1 and AccVideo-Wan.

Nothing is downloaded here. A name resolves, in order, to
1. `$ACCVIDEO_MODELS_DIR/<name>` (default `~/.cache/accvideo/models/<name>`) when it holds a
   diffusers pipeline (`model_index.json`); converted students are written there;
2. the Hugging Face cache (`$HF_HUB_CACHE`), looked up with `local_files_only=True` (teachers
   only: students ship in their authors' format and must be converted first).
A model that is in neither place is a ValueError holding the exact `hf download` command.

Sampling defaults are the authors' documented settings (sources in docs/GPU.md): AccVideo-Wan
samples with UniPC (`"sampler": "unipc"`), as its authors do; every other model with our Euler.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

SAMPLING_FILE = "accvideo_sampling.json"

# Wan2.1's own default negative prompt (`wan_shared_cfg.sample_neg_prompt` in the Wan2.1 repo's
# wan/configs/shared_config.py), which Wan's generate.py and AccVideo's sample_wanx_t2v.py use under
# CFG. diffusers' Wan docs show an English paraphrase; the models were tuned with this string.
WAN_NEGATIVE_PROMPT = (
    "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，"
    "JPEG压缩残留，丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，"
    "手指融合，静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走"
)
WAN_SHIFT = 5.0  # Wan2.1's generate.py and AccVideo's scripts (the -Diffusers configs say flow_shift 3.0)


@dataclass(frozen=True)
class RealModel:
    """One real checkpoint.

    repo_id: the Hub repo to download. For a teacher it holds a diffusers pipeline; for a
        student it holds the authors' original-format transformer (`checkpoint`, a file path
        inside the repo, or "" for the repo's top-level *.safetensors shards).
    params_b: transformer parameters in billions, for the memory estimates of docs/GPU.md.
    memory: default memory options (`MemoryOptions` fields) the caller may override; HunyuanVideo
        decodes with VAE tiling, as diffusers' `HunyuanVideoPipeline` example does
        (`pipe.vae.enable_tiling()`): the untiled decode of a 720p clip is its memory peak.
    """

    name: str
    family: str  # "hunyuan" | "wan"
    repo_id: str
    pipeline_class: str
    sampling: dict = field(default_factory=dict)
    params_b: float = 0.0
    teacher: str | None = None
    checkpoint: str | None = None
    description: str = ""
    memory: dict = field(default_factory=dict)

    @property
    def is_student(self) -> bool:
        return self.teacher is not None


REAL_MODELS: dict[str, RealModel] = {m.name: m for m in [
    RealModel(
        name="hunyuanvideo", family="hunyuan", repo_id="hunyuanvideo-community/HunyuanVideo",
        pipeline_class="HunyuanVideoPipeline", params_b=12.82,
        # HunyuanVideo is guidance-distilled: guidance enters as an embedding, one NFE per step.
        sampling={"role": "teacher", "num_steps": 50, "shift": 7.0, "guidance_scale": 1.0,
                  "embedded_guidance_scale": 6.0, "num_frames": 129, "height": 720, "width": 1280,
                  "max_sequence_length": 256},
        description="HunyuanVideo T2V (the AccVideo teacher), diffusers format", memory={"vae_tiling": True},
    ),
    RealModel(
        name="accvideo-hunyuan-5step", family="hunyuan", repo_id="aejion/AccVideo",
        pipeline_class="HunyuanVideoPipeline", params_b=12.82, teacher="hunyuanvideo",
        checkpoint="accvideo-t2v-5-steps/diffusion_pytorch_model.pt",
        # the authors' README: --num_inference_steps 5 --guidance_scale 1 --embedded_cfg_scale 6
        # --flow_shift 7, 544x960, 93 frames
        sampling={"role": "student", "num_steps": 5, "shift": 7.0, "guidance_scale": 1.0,
                  "embedded_guidance_scale": 6.0, "num_frames": 93, "height": 544, "width": 960,
                  "max_sequence_length": 256},
        description="AccVideo 5-step student of HunyuanVideo (original-format .pt, converted here)",
        memory={"vae_tiling": True},
    ),
    RealModel(
        name="wan2.1-t2v-1.3b", family="wan", repo_id="Wan-AI/Wan2.1-T2V-1.3B-Diffusers",
        pipeline_class="WanPipeline", params_b=1.42,
        # shift 5.0, not the -Diffusers scheduler_config.json's flow_shift 3.0: Wan's and AccVideo's scripts
        sampling={"role": "teacher", "num_steps": 50, "shift": WAN_SHIFT, "guidance_scale": 5.0, "num_frames": 81,
                  "height": 480, "width": 832, "max_sequence_length": 512, "negative_prompt": WAN_NEGATIVE_PROMPT},
        description="Wan2.1 T2V 1.3B (GPD teacher), diffusers format",
    ),
    RealModel(
        name="wan2.1-t2v-14b", family="wan", repo_id="Wan-AI/Wan2.1-T2V-14B-Diffusers",
        pipeline_class="WanPipeline", params_b=14.29,
        sampling={"role": "teacher", "num_steps": 50, "shift": WAN_SHIFT, "guidance_scale": 5.0, "num_frames": 81,
                  "height": 720, "width": 1280, "max_sequence_length": 512, "negative_prompt": WAN_NEGATIVE_PROMPT},
        description="Wan2.1 T2V 14B (AccVideo-Wan teacher), diffusers format",
    ),
    RealModel(
        name="accvideo-wan-t2v-14b", family="wan", repo_id="aejion/AccVideo-WanX-T2V-14B",
        pipeline_class="WanPipeline", params_b=14.29, teacher="wan2.1-t2v-14b", checkpoint="",
        # the authors' sample_wanx_t2v.py: --sample_steps 10, shift 5.0 (its default), no CFG
        # for the few-step model, 832*480, 81 frames, Wan's flow UniPC solver (its default)
        sampling={"role": "student", "num_steps": 10, "shift": WAN_SHIFT, "guidance_scale": 1.0, "num_frames": 81,
                  "height": 480, "width": 832, "max_sequence_length": 512, "sampler": "unipc",
                  "negative_prompt": WAN_NEGATIVE_PROMPT},
        description="AccVideo 10-step student of Wan2.1 T2V 14B (original Wan format, converted here)",
    ),
]}


# The published transformer configs (the -Diffusers repos' transformer/config.json; HunyuanVideo's is
# diffusers' default), and the other components' parameter counts in billions (counted on the meta
# device, docs/GPU.md), for the memory plan of a model that is not on this machine.
_WAN = {"patch_size": [1, 2, 2], "attention_head_dim": 128, "in_channels": 16, "out_channels": 16, "text_dim": 4096,
        "freq_dim": 256, "cross_attn_norm": True, "qk_norm": "rms_norm_across_heads", "eps": 1e-6,
        "rope_max_seq_len": 1024}
_WAN_1_3B = {**_WAN, "num_attention_heads": 12, "ffn_dim": 8960, "num_layers": 30}
_WAN_14B = {**_WAN, "num_attention_heads": 40, "ffn_dim": 13824, "num_layers": 40}
ARCHITECTURES: dict[str, dict] = {
    "hunyuanvideo": {"transformer": {}, "text_encoders_b": 7.51 + 0.12, "vae_b": 0.25, "vae_factors": (4, 8)},
    "wan2.1-t2v-1.3b": {"transformer": _WAN_1_3B, "text_encoders_b": 5.68, "vae_b": 0.13, "vae_factors": (4, 8)},
    "wan2.1-t2v-14b": {"transformer": _WAN_14B, "text_encoders_b": 5.68, "vae_b": 0.13, "vae_factors": (4, 8)},
}
ARCHITECTURES["accvideo-hunyuan-5step"] = ARCHITECTURES["hunyuanvideo"]
ARCHITECTURES["accvideo-wan-t2v-14b"] = ARCHITECTURES["wan2.1-t2v-14b"]


def models_dir() -> Path:
    """Where named real models live and converted students are written (read at call time)."""
    return Path(os.environ.get("ACCVIDEO_MODELS_DIR", "~/.cache/accvideo/models")).expanduser()


def original_dir(name: str) -> Path:
    """Where a student's original-format download goes (`<models dir>/<name>-original`)."""
    return models_dir() / f"{name}-original"


def _hf_cache_snapshot(repo_id: str) -> Path | None:
    """The cached snapshot folder of `repo_id`, never touching the network."""
    from huggingface_hub import constants, snapshot_download

    cache = os.environ.get("HF_HUB_CACHE") or constants.HF_HUB_CACHE
    try:
        return Path(snapshot_download(repo_id, cache_dir=cache, local_files_only=True))
    except Exception:  # LocalEntryNotFoundError and friends: not cached
        return None


def download_commands(name: str) -> list[str]:
    """The shell commands that put `name` where `resolve_real` looks."""
    model = REAL_MODELS[name]
    if not model.is_student:
        return [f"hf download {model.repo_id} --local-dir {models_dir() / name}"]
    commands = [] if _teacher_folder(model) is not None else download_commands(model.teacher)
    files = f" {model.checkpoint}" if model.checkpoint else ""
    if _student_checkpoint(model) is None:
        commands.append(f"hf download {model.repo_id}{files} --local-dir {original_dir(name)}")
    commands.append(f"python -m accvideo convert --model {name}")
    return commands


def _teacher_folder(model: RealModel) -> Path | None:
    try:
        return resolve_real(model.teacher)
    except ValueError:
        return None


def _student_checkpoint(model: RealModel) -> Path | None:
    for root in (original_dir(model.name), _hf_cache_snapshot(model.repo_id)):
        if root is None:
            continue
        path = root / model.checkpoint if model.checkpoint else root
        if (path.is_file() if model.checkpoint else any(path.glob("*.safetensors"))):
            return path
    return None


def resolve_real(name: str) -> Path:
    """The pipeline folder of real model `name`; ValueError with download commands if absent."""
    if name not in REAL_MODELS:
        raise ValueError(f"`model` must be one of the real models {sorted(REAL_MODELS)} but is {name!r}.")
    model = REAL_MODELS[name]
    local = models_dir() / name
    if (local / "model_index.json").is_file():
        return local
    if not model.is_student:
        snapshot = _hf_cache_snapshot(model.repo_id)
        if snapshot is not None and (snapshot / "model_index.json").is_file():
            return snapshot
    steps = "\n".join(f"  {c}" for c in download_commands(name))
    where = (f"neither {str(local)!r} (set ACCVIDEO_MODELS_DIR to change it) nor the Hugging Face cache holds it"
             if not model.is_student else f"no converted pipeline at {str(local)!r}")
    raise ValueError(f"`model` {name!r} ({model.description}) is not on this machine: {where}. Nothing is "
                     f"downloaded at run time; run:\n{steps}\nthen try again (see docs/GPU.md for sizes).")


def real_model_of(folder: Path) -> RealModel | None:
    """The real model a folder holds, recognised by folder name or Hub repo id, else None."""
    folder = Path(folder)
    for model in REAL_MODELS.values():
        hub_name = "models--" + model.repo_id.replace("/", "--")
        if folder.name == model.name or hub_name in folder.parts:
            return model
    return None


def real_defaults(folder: Path) -> dict:
    """Sampling defaults of the real model a folder holds (by folder name or Hub repo id), else {}."""
    model = real_model_of(folder)
    return {} if model is None else {**model.sampling, "family": model.family}


def real_memory_defaults(folder: Path) -> dict:
    """Default memory options of the real model a folder holds (e.g. {"vae_tiling": True}), else {}."""
    model = real_model_of(folder)
    return {} if model is None else dict(model.memory)


def model_status() -> list[dict]:
    """One row per real model: name, family, role, available, path, download commands.

    What the app's Models tab shows; never downloads, never raises for a missing model.
    """
    rows = []
    for name, model in REAL_MODELS.items():
        try:
            path, available, commands = str(resolve_real(name)), True, []
        except ValueError:
            path, available, commands = None, False, download_commands(name)
        rows.append({"name": name, "family": model.family, "role": model.sampling.get("role"),
                     "repo_id": model.repo_id, "available": available, "path": path,
                     "download": commands, "description": model.description})
    return rows


def prepare_student(name: str, checkpoint: str | Path | None = None) -> Path:
    """Convert a released student into a pipeline folder `<models dir>/<name>`.

    The folder holds the converted transformer plus links to its teacher's other components
    (text encoders, tokenizers, VAE, scheduler): a student shares them all with its teacher,
    so nothing large is copied. `accvideo_sampling.json` records the student's defaults.
    """
    from accvideo.models.convert import convert_checkpoint

    if name not in REAL_MODELS or not REAL_MODELS[name].is_student:
        students = sorted(n for n, m in REAL_MODELS.items() if m.is_student)
        raise ValueError(f"`model` must be a released student {students} but is {name!r}.")
    model = REAL_MODELS[name]
    teacher = resolve_real(model.teacher)  # ValueError with the teacher's download command
    source = Path(checkpoint) if checkpoint is not None else _student_checkpoint(model)
    if source is None:
        files = f" {model.checkpoint}" if model.checkpoint else ""
        raise ValueError(f"`checkpoint` of {name!r} is not on this machine; run\n  hf download {model.repo_id}{files} "
                         f"--local-dir {original_dir(name)}\nor pass `--checkpoint PATH`.")
    out = models_dir() / name
    out.mkdir(parents=True, exist_ok=True)
    convert_checkpoint(model.family, source, teacher / "transformer", out / "transformer")
    index = json.loads((teacher / "model_index.json").read_text())
    for component, value in index.items():
        if component.startswith("_") or component == "transformer" or not isinstance(value, list):
            continue
        link = out / component
        if not link.exists():
            link.symlink_to((teacher / component).resolve(), target_is_directory=True)
    # the text encoders are the teacher's, so are the settings that belong to them
    teacher_file = teacher / SAMPLING_FILE
    inherited = json.loads(teacher_file.read_text()) if teacher_file.is_file() else {}
    inherited = {k: inherited[k] for k in ("prompt_template", "max_sequence_length") if k in inherited}
    (out / SAMPLING_FILE).write_text(json.dumps({**model.sampling, **inherited, "family": model.family,
                                                 "converted_from": str(source)}, indent=2))
    # written last: its presence is what marks the folder as a finished pipeline
    (out / "model_index.json").write_text(json.dumps(index, indent=2))
    return out
