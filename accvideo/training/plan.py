"""A memory plan before launch: the estimated peak per GPU of a SynVid, AccVideo or GPD run, part
by part, and whether it fits (`python -m accvideo plan CONFIG --gpus N --gpu-mem GB`).

Parts, in bytes per GPU (P: transformer parameters; N: ranks sharing it under FSDP2, else 1):
- weights: fp32 master weights 4P/N; under FSDP2 also the gathered compute copy of the root and
  of two blocks (the one running and the one prefetched); DDP holds all 4P.
- gradients: fp32, 4P/N (FSDP2, plus one gathered block's) or 2 x 4P (DDP: gradients + buckets).
- optimizer: AdamW's two fp32 moments, 8P/N.
- teacher: the frozen copy a method keeps on every rank (AccVideo's feature teacher, GPD's guide),
  fp32 as the recipes load it; SynVid's whole pipeline (transformer, text encoders, VAE).
- discriminator: AccVideo's heads, weights + gradients + moments (16 bytes per parameter).
- activations: measured per block and token for this architecture (`calibrate.py`), times
  blocks, tokens and the samples in one micro-batch: the student's forward with grad, AccVideo's
  teacher features with grad into x_hat (all teacher blocks run), and the backward's scratch.
  Reported with and without gradient checkpointing; the total takes the configured one.
The verdict allows 10 % for the CUDA caching allocator's fragmentation and 1.5 GB for the CUDA
context and kernels' workspaces: fits when 1.1 x peak + 1.5 GB <= the GPU's memory. 1 GB = 1e9 B.
`tests/test_plan.py` checks the estimate against the measured peak of a small CPU run.
"""

from __future__ import annotations

import functools
import inspect
import json
from dataclasses import dataclass, replace
from pathlib import Path

from accvideo.training.calibrate import BLOCK_KEYS, build, calibration

FRAGMENTATION = 0.10
CUDA_CONTEXT = 1.5e9
GB = 1e9


@dataclass(frozen=True)
class Arch:
    """What the plan needs of a model: its transformer (class and config), the other components'
    parameters, the VAE's (temporal, spatial) compression and the default sampling size."""

    class_name: str
    config: dict
    text_encoders: float  # parameters
    vae: float
    vae_factors: tuple[int, int]
    frames: int
    height: int
    width: int
    text_len: int


def arch_of(teacher: str) -> Arch:
    """A real model's name (no weights needed) or a pipeline folder (its config files)."""
    from accvideo.models.real import ARCHITECTURES, REAL_MODELS

    if teacher in ARCHITECTURES:
        a, sampling = ARCHITECTURES[teacher], REAL_MODELS[teacher].sampling
        family = REAL_MODELS[teacher].family
        cls = "WanTransformer3DModel" if family == "wan" else "HunyuanVideoTransformer3DModel"
        return Arch(cls, a["transformer"], a["text_encoders_b"] * 1e9, a["vae_b"] * 1e9, a["vae_factors"],
                    sampling["num_frames"], sampling["height"], sampling["width"], sampling["max_sequence_length"])
    folder = Path(teacher)
    if not (folder / "model_index.json").is_file():
        raise ValueError(f"`teacher` must be a real model name ({sorted(ARCHITECTURES)}) or a pipeline folder "
                         f"with model_index.json but is {teacher!r}.")
    config = json.loads((folder / "transformer" / "config.json").read_text())
    vae = json.loads((folder / "vae" / "config.json").read_text())
    sampling = json.loads((folder / "accvideo_sampling.json").read_text())

    def weights(sub: str) -> float:  # parameters, from the stored files (fp32 for our folders)
        return sum(f.stat().st_size for f in (folder / sub).glob("*.safetensors")) / 4

    factors = (vae.get("scale_factor_temporal", 4), vae.get("scale_factor_spatial", 8))
    return Arch(config["_class_name"], config, weights("text_encoder"), weights("vae"), factors,
                sampling["num_frames"], sampling["height"], sampling["width"], sampling["max_sequence_length"])


def tokens(arch: Arch, frames: int, height: int, width: int) -> int:
    """Latent tokens of one clip after the VAE and the transformer's patching."""
    patch = arch.config.get("patch_size", 2)
    pt, ph, pw = patch if isinstance(patch, (list, tuple)) else (arch.config.get("patch_size_t", 1), patch, patch)
    vt, vs = arch.vae_factors
    return ((frames - 1) // vt + 1) // pt * (height // vs // ph) * (width // vs // pw)


def param_counts(arch: Arch) -> tuple[int, int, int]:
    """(all, outside the blocks, the largest block) parameters, counted on the meta device."""
    return _counts(arch.class_name, json.dumps(arch.config, sort_keys=True))


@functools.lru_cache(maxsize=16)
def _counts(class_name: str, config: str) -> tuple[int, int, int]:
    model = build(class_name, json.loads(config))
    blocks = [b for name in ("blocks", "transformer_blocks", "single_transformer_blocks")
              for b in (getattr(model, name, None) or [])]
    sizes = [sum(p.numel() for p in b.parameters()) for b in blocks]
    total = sum(p.numel() for p in model.parameters())
    return total, total - sum(sizes), max(sizes)


def _pass_bytes(cal: dict, mode: str, arch: Arch, n_tokens: int, samples: int) -> tuple[float, float]:
    """(held after the forward, extra peak in backward) for `samples` clips in one micro-batch."""
    row = cal[mode]
    per_sample = row["rest_tok"] * n_tokens + row["rest"]
    for key in BLOCK_KEYS[arch.class_name]:
        count = arch.config.get(key, _default(arch.class_name, key))
        per_sample += count * (row[f"block_tok:{key}"] * n_tokens + row[f"block:{key}"])
    return samples * max(per_sample, 0.0), samples * max(row["peak_tok"] * n_tokens + row["peak"], 0.0)


def _default(class_name: str, key: str):
    """A config key's default in the transformer class (HunyuanVideo's published config is the default)."""
    import diffusers

    return inspect.signature(getattr(diffusers, class_name).__init__).parameters[key].default


def estimate(kind: str, arch: Arch, cfg, gpus: int, *, frames: int | None = None, height: int | None = None,
             width: int | None = None, recalibrate: bool = False) -> dict:
    """The plan of one run: `kind` "accvideo" | "gpd" (cfg: the recipe's config dataclass) or
    "synvid" (cfg: a SynVidConfig). Returns {"parts_gb", "peak_gb", "tokens", ...} (see module)."""
    frames, height, width = frames or arch.frames, height or arch.height, width or arch.width
    n_tokens = tokens(arch, frames, height, width)
    total, root, block = param_counts(arch)
    parts: dict[str, float] = {}
    if kind == "synvid":
        bf16 = getattr(cfg, "compute_dtype", "fp32") == "bf16"
        wbytes = 2 if bf16 else 4
        cal = calibration(arch.class_name, arch.config, "bf16" if bf16 else "fp32", arch.text_len, recalibrate)
        parts["teacher"] = wbytes * (total + arch.text_encoders) + 4 * arch.vae  # Wan's VAE stays fp32
        parts["activations"] = _pass_bytes(cal, "inference", arch, n_tokens, cfg.batch_size)[1]
        peak = sum(parts.values())
        return _result(kind, arch, gpus, n_tokens, (frames, height, width), parts, peak, {})
    t, m = cfg.trainer, cfg.method
    sharded = t.parallel == "fsdp2" and gpus > 1
    bf16 = t.mixed_precision == "bf16"
    cb = 2 if bf16 else 4
    n = gpus if sharded else 1
    parts["weights"] = 4 * total / n + (cb * (root + 2 * block) if sharded else 0)
    parts["gradients"] = 4 * total / n + (cb + 4) * block if sharded else 8 * total if gpus > 1 else 4 * total
    parts["optimizer"] = 8 * total / n
    parts["teacher"] = 4 * total  # the frozen feature teacher / guide, replicated, fp32
    student_cal = calibration(arch.class_name, arch.config, "bf16" if bf16 else "fp32", arch.text_len, recalibrate)
    samples = t.batch_size * (m.num_key_steps if kind == "accvideo" and m.segments == "all" else 1)
    acts = {}
    for ckpt in (False, True):
        held, scratch = _pass_bytes(student_cal, "train_ckpt" if ckpt else "train", arch, n_tokens, samples)
        if kind == "accvideo" and m.lambda_adv > 0:
            # the teacher computes in fp32 under FSDP2 (no autocast there), else in the compute dtype
            t_dtype = "fp32" if sharded or not bf16 else "bf16"
            t_cal = calibration(arch.class_name, arch.config, t_dtype, arch.text_len, recalibrate)
            t_held, t_scratch = _pass_bytes(t_cal, "frozen_ckpt" if ckpt else "frozen", arch, n_tokens, t.batch_size)
            held, scratch = held + t_held, max(scratch, t_scratch)
        acts[ckpt] = held + scratch
    parts["activations_without_checkpointing"] = acts[False]
    parts["activations_with_checkpointing"] = acts[True]
    if kind == "accvideo":
        width_ = arch.config["num_attention_heads"] * arch.config["attention_head_dim"]
        blocks = len(m.feature_blocks) or 2
        heads = m.num_key_steps * blocks * (2 * width_ + width_ * m.head_hidden + 2 * m.head_hidden + 1)
        parts["discriminator"] = 16 * heads
    peak = sum(v for k, v in parts.items() if not k.startswith("activations")) + acts[t.gradient_checkpointing]
    return _result(kind, arch, gpus, n_tokens, (frames, height, width), parts, peak,
                   {"gradient_checkpointing": t.gradient_checkpointing})


def _result(kind, arch, gpus, n_tokens, size, parts, peak, extra) -> dict:
    return {"kind": kind, "gpus": gpus, "frames": size[0], "height": size[1], "width": size[2], "tokens": n_tokens,
            "parts_gb": {k: round(v / GB, 3) for k, v in parts.items()}, "peak_gb": round(peak / GB, 3), **extra}


def needed_gb(peak_gb: float) -> float:
    """GPU memory a peak of `peak_gb` needs, with the allocator and CUDA context allowance."""
    return peak_gb * (1 + FRAGMENTATION) + CUDA_CONTEXT / GB


# What to change when a run does not fit, in the order tried (each keeps the earlier ones):
# (setting as written on the command line, how to apply it to the config), cheapest first.
def _changes(kind: str, cfg, arch: Arch) -> list[tuple[str, object]]:
    if kind == "synvid":
        dtype = [("--compute-dtype bf16", lambda c: replace(c, compute_dtype="bf16"))] \
            if hasattr(cfg, "compute_dtype") else []
        return dtype + [("batch_size=1", lambda c: replace(c, batch_size=1))]
    steps = [("trainer.gradient_checkpointing=true",
              lambda c: replace(c, trainer=replace(c.trainer, gradient_checkpointing=True)))]
    if kind == "accvideo":
        steps.append(("method.segments=one", lambda c: replace(c, method=replace(c.method, segments="one"))))
    steps += [("trainer.batch_size=1 (raise trainer.grad_accum to keep the batch)",
               lambda c: replace(c, trainer=replace(c.trainer, batch_size=1))),
              ("trainer.parallel=fsdp2", lambda c: replace(c, trainer=replace(c.trainer, parallel="fsdp2")))]
    return steps


def plan(kind: str, arch: Arch, cfg, gpus: int, gpu_mem: float, recalibrate: bool = False, **size) -> dict:
    """`estimate` plus the verdict: fits, and if not, the settings that make it fit by the same
    estimate (tried cumulatively in `_changes` order, then fewer frames), or none."""
    if gpus < 1:
        raise ValueError(f"`--gpus` must be >= 1 but is {gpus}.")
    if not gpu_mem > 0:
        raise ValueError(f"`--gpu-mem` must be > 0 (GB) but is {gpu_mem}.")
    size = {k: v for k, v in size.items() if v}
    result = estimate(kind, arch, cfg, gpus, recalibrate=recalibrate, **size)
    result.update(gpu_mem_gb=gpu_mem, needed_gb=round(needed_gb(result["peak_gb"]), 3))
    result["fits"] = result["needed_gb"] <= gpu_mem
    result["change"] = None
    if not result["fits"]:
        changed, names = cfg, []
        for name, apply in _changes(kind, cfg, arch):
            after = apply(changed)
            if estimate(kind, arch, after, gpus, **size) == estimate(kind, arch, changed, gpus, **size):
                continue  # already so: changes nothing
            changed, names = after, names + [name]
            trial = estimate(kind, arch, changed, gpus, **size)
            if needed_gb(trial["peak_gb"]) <= gpu_mem:
                result["change"] = {"settings": names, "peak_gb": trial["peak_gb"]}
                break
        else:
            frames = size.get("frames") or arch.frames
            while frames > 1 + arch.vae_factors[0]:
                frames = (frames - 1) // 2 // arch.vae_factors[0] * arch.vae_factors[0] + 1
                trial = estimate(kind, arch, changed, gpus, **{**size, "frames": frames})
                if needed_gb(trial["peak_gb"]) <= gpu_mem:
                    result["change"] = {"settings": names + [f"num_frames={frames} (the clip length: SynVid "
                                                             f"--frames, the data AccVideo / GPD train on)"],
                                        "peak_gb": trial["peak_gb"]}
                    break
    return result


def plan_config(path: str, gpus: int, gpu_mem: float, teacher: str | None = None, overrides: list[str] = (),
                root: Path | None = None, recalibrate: bool = False) -> dict:
    """`plan` for a config file: a SynVid config (it names its teacher) or an AccVideo / GPD
    distillation config (the teacher from `teacher`, else the config's folder name when that is a
    real model, as for configs/wan2.1-t2v-1.3b/). Returns the plan with "config" and "teacher"."""
    import yaml

    from accvideo.models.real import ARCHITECTURES
    from accvideo.synvid import SynVidConfig
    from accvideo.training.recipes.accvideo import AccVideoDistillConfig
    from accvideo.training.recipes.gpd import GPDDistillConfig
    from accvideo.util.config import load_config

    file = (root or Path.cwd()) / path
    if not file.is_file():
        raise ValueError(f"`CONFIG` must be a YAML file but {path!r} is not one.")
    raw = yaml.safe_load(file.read_text()) or {}
    method = raw.get("method") or {}
    if "store" in raw or "prompts" in raw and "trainer" not in raw:
        kind, cls = "synvid", SynVidConfig
    elif "num_key_steps" in method or "lambda_adv" in method:
        kind, cls = "accvideo", AccVideoDistillConfig
    elif "teacher_steps" in method or "schedule" in method:
        kind, cls = "gpd", GPDDistillConfig
    else:
        raise ValueError(f"`CONFIG` {path!r} must be a SynVid config (with `store`) or an AccVideo / GPD config "
                         f"(with `method.num_key_steps` / `method.teacher_steps`) but has keys {sorted(raw)}.")
    cfg = load_config(cls, file, list(overrides))
    if kind == "synvid":
        teacher = cfg.teacher
    else:
        teacher = teacher or (file.parent.name if file.parent.name in ARCHITECTURES else None)
        if teacher is None:
            raise ValueError(f"`--teacher` is required for {path!r}: its folder {file.parent.name!r} is not a real "
                             f"model name ({sorted(ARCHITECTURES)}).")
    arch = arch_of(teacher)
    size = {k: getattr(cfg, f, None) for k, f in (("frames", "num_frames"), ("height", "height"), ("width", "width"))}
    result = plan(kind, arch, cfg, gpus, gpu_mem, recalibrate=recalibrate, **size)
    return {"config": str(path), "teacher": teacher, **result}
