"""Text-to-video generation with per-stage timing, over Wan and HunyuanVideo diffusers pipelines.

`generate` reads as the stages a diffusers pipeline has (resolve and check the sampling
settings, encode prompt, prepare noise, denoise, decode) but runs our own sampler loop (Euler,
or diffusers' flow UniPC solver: `SamplingSpec.sampler`), so it can time each stage, report
progress, stop on request and return the whole trajectory. With the same seed, steps and
guidance it gives what `WanPipeline.__call__` and `HunyuanVideoPipeline.__call__` give with
the matching scheduler (tested). What differs per family (text encoders,
guidance embedding, latent scaling) lives in `models/families.py`.

`resolve_sampling` is the one place a model's sampling settings are worked out: the saved
defaults of the model, the caller's overrides, and the model's own size rules, into a frozen
`SamplingSpec`. SynVid, the trainers, the evaluators and the app all read settings from it.
`teacher_rollout` runs the same stages for a batch of seeds and keeps chosen states (SynVid).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from accvideo.core.sampling import euler_sample
from accvideo.core.schedules import sigma_schedule
from accvideo.core.unipc import unipc_sample, unipc_sigma_schedule
from accvideo.models.families import Conditioning, family_of
from accvideo.models.memory import execution_device
from accvideo.models.registry import LoadedModel
from accvideo.models.tiny import PromptCheck, check_prompt_words

# Wan's cross-attention sees the zero padding, so the padded length is part of the model.
DEFAULT_MAX_SEQUENCE_LENGTH = {"wan": 512, "hunyuan": 256}
DEFAULT_EMBEDDED_GUIDANCE = 6.0  # HunyuanVideo's pipeline default
MAX_SEED = 2**63 - 1  # torch.Generator.manual_seed takes a signed 64-bit seed
SAMPLERS = ("euler", "unipc")


@dataclass(frozen=True)
class SamplingSpec:
    """Every setting one sampling run needs, resolved. sigmas: the schedule, num_steps + 1 values
    from 1 down to 0 (a student's saved key-step schedule, or `sigma_schedule(num_steps, shift)`
    for Euler, `unipc_sigma_schedule(num_steps, shift)` for UniPC). sampler: "euler" (ours) or
    "unipc" (diffusers' flow-matching UniPC, as the AccVideo-Wan authors sample)."""

    num_steps: int
    sigmas: tuple[float, ...]
    shift: float
    guidance_scale: float
    embedded_guidance_scale: float | None
    num_frames: int
    height: int
    width: int
    max_sequence_length: int
    negative_prompt: str = ""
    sampler: str = "euler"

    @property
    def use_cfg(self) -> bool:
        return self.guidance_scale > 1.0

    @property
    def nfe(self) -> int:
        """Transformer calls per video: two per step under classifier-free guidance."""
        return self.num_steps * (2 if self.use_cfg else 1)

    def sigma_tensor(self) -> torch.Tensor:
        return torch.tensor(self.sigmas, dtype=torch.float64)


@dataclass
class GenerationResult:
    """video: uint8 frames (T, H, W, 3); latents: final normalised latents (1, C, T', H', W');
    timings: seconds per stage ('text_encoder', 'denoising', 'vae_decode', 'total');
    trajectory: (num_steps + 1, 1, C, T', H', W') when requested."""

    video: np.ndarray
    latents: torch.Tensor
    prompt: str
    seed: int
    num_steps: int
    guidance_scale: float
    nfe: int
    sigmas: torch.Tensor
    timings: dict[str, float] = field(default_factory=dict)
    trajectory: torch.Tensor | None = None
    embedded_guidance_scale: float | None = None
    sampler: str = "euler"


def _is_int(value) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


def default_shift(pipe, sampling: dict) -> float:
    """The model's own schedule shift: its sampling defaults, else its scheduler's (`shift` for
    FlowMatchEuler configs, `flow_shift` for the UniPC configs of the Wan2.1 -Diffusers repos)."""
    if sampling.get("shift") is not None:
        return float(sampling["shift"])
    config = pipe.scheduler.config
    return float(config["flow_shift"] if config.get("flow_shift") is not None else config.get("shift", 1.0))


def resolve_sampling(model: LoadedModel, *, num_steps: int | None = None, guidance_scale: float | None = None,
                     shift: float | None = None, num_frames: int | None = None, height: int | None = None,
                     width: int | None = None, sigmas: Sequence[float] | torch.Tensor | None = None,
                     negative_prompt: str | None = None, max_sequence_length: int | None = None,
                     embedded_guidance_scale: float | None = None, sampler: str | None = None) -> SamplingSpec:
    """The model's saved sampling defaults with the given overrides, checked against the model.

    `sigmas` (shape (n + 1,)) overrides the schedule built from `num_steps` and `shift`. With
    none of the three given, a distilled student samples on its own saved key-step schedule.
    `negative_prompt` and `sampler` default to the saved ones (Wan's own negative prompt for the
    real Wan teachers; "" and "euler" otherwise).
    Raises ValueError naming the argument, the rule and the value. Frame counts and sizes follow
    the model: frames are `ft * k + 1` for the VAE's temporal factor ft (4 for Wan2.1 and
    HunyuanVideo), sizes multiples of the VAE's spatial factor times the transformer's patch size
    (8 x 2 = 16 for both real families).
    """
    pipe, saved = model.pipe, model.sampling
    family = family_of(pipe)
    if sigmas is None and num_steps is None and shift is None and saved.get("sigmas"):
        sigmas = saved["sigmas"]  # a distilled student samples on its own key-step schedule
    if sigmas is not None:
        sigmas = torch.as_tensor(sigmas, dtype=torch.float64)
        num_steps = len(sigmas) - 1
    num_steps = num_steps if num_steps is not None else saved.get("num_steps", 50)
    guidance_scale = guidance_scale if guidance_scale is not None else saved.get("guidance_scale", 1.0)
    shift = shift if shift is not None else default_shift(pipe, saved)
    num_frames = num_frames if num_frames is not None else saved.get("num_frames", 9)
    height = height if height is not None else saved.get("height", 32)
    width = width if width is not None else saved.get("width", 32)
    guidance_embedded = family.name == "hunyuan" and pipe.transformer.config.guidance_embeds
    if embedded_guidance_scale is None and guidance_embedded:
        embedded_guidance_scale = saved.get("embedded_guidance_scale", DEFAULT_EMBEDDED_GUIDANCE)
    max_len = max_sequence_length or saved.get("max_sequence_length", DEFAULT_MAX_SEQUENCE_LENGTH[family.name])
    negative_prompt = negative_prompt if negative_prompt is not None else saved.get("negative_prompt", "")
    sampler = sampler if sampler is not None else saved.get("sampler", "euler")

    if not _is_int(num_steps) or num_steps < 1:
        raise ValueError(f"`num_steps` must be an integer >= 1 but is {num_steps!r}.")
    ft, fs = family.scale_factors(pipe)
    if not _is_int(num_frames) or num_frames < 1 or (num_frames - 1) % ft != 0:
        raise ValueError(f"`num_frames` must be {ft}k + 1 (for example {2 * ft + 1}) but is {num_frames!r}.")
    factor = fs * family.patch_size(pipe)
    for name, value in (("height", height), ("width", width)):
        if not _is_int(value) or value < factor or value % factor != 0:
            raise ValueError(f"`{name}` must be a positive multiple of {factor} for this model but is {value!r}.")
    most = family.max_latent_size(pipe)
    if most is not None:
        for name, value, limit in (("num_frames", num_frames, ft * (most - 1) + 1), ("height", height, factor * most),
                                   ("width", width, factor * most)):
            if value > limit:
                raise ValueError(f"`{name}` must be at most {limit} for this model (its position embedding covers "
                                 f"{most} latent positions per axis) but is {value!r}.")
    if not _is_number(guidance_scale) or not math.isfinite(guidance_scale) or guidance_scale < 0:
        raise ValueError(f"`guidance_scale` must be a finite number >= 0 but is {guidance_scale!r}.")
    if not _is_number(shift) or not math.isfinite(shift) or shift <= 0:
        raise ValueError(f"`shift` must be a finite number > 0 but is {shift!r}.")
    if embedded_guidance_scale is not None:
        if not guidance_embedded:
            raise ValueError(f"`embedded_guidance_scale` must be None for a model without a guidance embedding "
                             f"({type(pipe.transformer).__name__}) but is {embedded_guidance_scale!r}.")
        if not _is_number(embedded_guidance_scale) or not math.isfinite(embedded_guidance_scale) \
                or embedded_guidance_scale < 0:
            raise ValueError(f"`embedded_guidance_scale` must be a finite number >= 0 but is "
                             f"{embedded_guidance_scale!r}.")
    if not isinstance(negative_prompt, str):
        raise ValueError(f"`negative_prompt` must be a string but is {negative_prompt!r}.")
    if sampler not in SAMPLERS:
        raise ValueError(f"`sampler` must be one of {list(SAMPLERS)} but is {sampler!r}.")
    if sigmas is None:
        sigmas = unipc_sigma_schedule(num_steps, shift) if sampler == "unipc" else sigma_schedule(num_steps, shift)
    return SamplingSpec(
        num_steps=int(num_steps), sigmas=tuple(float(s) for s in sigmas), shift=float(shift),
        guidance_scale=float(guidance_scale), num_frames=int(num_frames), height=int(height), width=int(width),
        embedded_guidance_scale=None if embedded_guidance_scale is None else float(embedded_guidance_scale),
        max_sequence_length=int(max_len), negative_prompt=negative_prompt, sampler=sampler,
    )


# ----------------------------------------------------------------------------- the stages


def encode(model: LoadedModel, prompt: str | list[str], spec: SamplingSpec) -> Conditioning:
    """Text conditioning for one prompt or a list (B rows), with the negative rows under CFG."""
    family = family_of(model.pipe)
    negative = spec.negative_prompt if spec.use_cfg else None
    return family.encode(model.pipe, prompt, negative, spec.max_sequence_length, model.sampling)


def check_prompt(model: LoadedModel, prompt: str) -> PromptCheck:
    """The words of `prompt` this model cannot read (its tokenizer is word-level: the bundled tiny
    family) or that its sequence length cuts; empty for real models, which take free text."""
    tokenizer = getattr(model.pipe, "tokenizer", None)
    if tokenizer is None:
        return PromptCheck()
    return check_prompt_words(tokenizer, prompt, model.sampling.get("max_sequence_length"))


def latent_shape(pipe, num_frames: int, height: int, width: int) -> tuple[int, ...]:
    """(1, C, T', H', W') of the latents of one video."""
    ft, fs = family_of(pipe).scale_factors(pipe)
    return (1, pipe.transformer.config.in_channels, (num_frames - 1) // ft + 1, height // fs, width // fs)


def initial_noise(pipe, seed: int, num_frames: int, height: int, width: int) -> torch.Tensor:
    """The seeded starting noise (1, C, T', H', W'), drawn exactly as `WanPipeline.prepare_latents`
    (and the HunyuanVideo pipeline) draw it from a CPU generator: the same video on any device."""
    generator = torch.Generator("cpu").manual_seed(int(seed))
    return torch.randn(latent_shape(pipe, num_frames, height, width), generator=generator, dtype=torch.float32)


def prepare_noise(model: LoadedModel, seeds: Sequence[int], spec: SamplingSpec) -> torch.Tensor:
    """One seeded noise per seed, stacked: (B, C, T', H', W') on the model's execution device."""
    noise = [initial_noise(model.pipe, seed, spec.num_frames, spec.height, spec.width) for seed in seeds]
    return torch.cat(noise).to(execution_device(model.pipe))


def denoise(model: LoadedModel, conditioning: Conditioning, x: torch.Tensor, spec: SamplingSpec, **sample_kwargs):
    """Integrate from noise `x` (B, C, T', H', W') along `spec.sigmas` with `spec.sampler`; `conditioning`
    has B rows (or 1, broadcast). Keyword arguments go to `euler_sample` / `unipc_sample` (callback,
    interrupt, trajectory). Either way the model is called only through `Family.velocity`."""
    if conditioning.cond and next(iter(conditioning.cond.values())).shape[0] != x.shape[0]:
        conditioning = conditioning.select(torch.zeros(x.shape[0], dtype=torch.long))
    family = family_of(model.pipe)
    velocity = family.velocity(model.pipe, conditioning, spec.guidance_scale, spec.embedded_guidance_scale)
    sample = unipc_sample if spec.sampler == "unipc" else euler_sample
    return sample(velocity, x, spec.sigma_tensor(), **sample_kwargs)


def decode(model: LoadedModel, latents: torch.Tensor) -> np.ndarray:
    """Normalised latents (1, C, T', H', W') -> uint8 frames (T, H, W, 3)."""
    frames = family_of(model.pipe).decode(model.pipe, latents)
    video = ((frames[0].float().permute(1, 2, 3, 0).clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return video.cpu().numpy()


@torch.inference_mode()
def generate(model: LoadedModel, prompt: str, seed: int = 0, *, spec: SamplingSpec | None = None,
             callback: Callable | None = None, interrupt: Callable[[], bool] | None = None,
             return_trajectory: bool = False, decode_video: bool = True, **overrides) -> GenerationResult:
    """Generate one video. `spec` (from `resolve_sampling`) or the `overrides` it takes (num_steps,
    guidance_scale, shift, sigmas, num_frames, height, width, negative_prompt, max_sequence_length,
    embedded_guidance_scale, sampler); unset ones take the model's saved defaults. `guidance_scale` > 1 is
    real classifier-free guidance (2 NFE per step); `embedded_guidance_scale` is HunyuanVideo's
    guidance embedding (1 NFE per step; None for Wan)."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError(f"`prompt` must be a non-empty string but is {prompt!r}.")
    if not _is_int(seed) or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"`seed` must be an integer in [0, {MAX_SEED}] but is {seed!r}.")
    spec = spec if spec is not None else resolve_sampling(model, **overrides)
    device = execution_device(model.pipe)
    timings: dict[str, float] = {}
    t_all = _now(device)

    t = _now(device)
    conditioning = encode(model, prompt, spec)
    timings["text_encoder"] = _now(device) - t

    x = prepare_noise(model, [seed], spec)

    t = _now(device)
    sample = denoise(model, conditioning, x, spec, callback=callback, interrupt=interrupt,
                     return_trajectory=return_trajectory)
    timings["denoising"] = _now(device) - t

    video = np.zeros((0,), dtype=np.uint8)
    if decode_video:
        t = _now(device)
        video = decode(model, sample.x_0)
        timings["vae_decode"] = _now(device) - t
    timings["total"] = _now(device) - t_all
    trajectory = sample.trajectory.cpu() if sample.trajectory is not None else None
    return GenerationResult(
        video=video, latents=sample.x_0.cpu(), prompt=prompt, seed=int(seed), num_steps=spec.num_steps,
        guidance_scale=spec.guidance_scale, nfe=spec.nfe, sigmas=spec.sigma_tensor(), timings=timings,
        trajectory=trajectory, embedded_guidance_scale=spec.embedded_guidance_scale, sampler=spec.sampler,
    )


@torch.inference_mode()
def teacher_rollout(model: LoadedModel, conditioning: Conditioning, seeds: Sequence[int], spec: SamplingSpec,
                    keep: Sequence[int] = (), keep_dtype: torch.dtype = torch.float32
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the sampler for a batch of seeds (B = len(seeds)) of one conditioning, as `generate` does.

    Returns (states, x_0): the states at step indices `keep` (0 is the noise, num_steps the
    result), shape (B, len(keep), C, T', H', W') in `keep_dtype` on the CPU, and the final
    latents (B, C, T', H', W') on the device. States leave the device as they are made: a real
    teacher's full trajectory (51 states of a 720p latent) need never sit in accelerator memory.
    With B = 1 the result is bit-identical to `generate` (tested).
    """
    wanted = set(keep)
    x = prepare_noise(model, seeds, spec)
    kept = [x.to(keep_dtype).cpu()] if 0 in wanted else []

    def collect(i: int, num_steps: int, sigma_next: float, state: torch.Tensor) -> None:
        if i + 1 in wanted:
            kept.append(state.to(keep_dtype).cpu())

    result = denoise(model, conditioning, x, spec, callback=collect)
    states = torch.stack(kept, dim=1) if kept else torch.empty((len(seeds), 0, *x.shape[1:]), dtype=keep_dtype)
    return states, result.x_0


def _now(device: torch.device) -> float:
    # GPU work is asynchronous: wait for it, or a stage's time lands in the next stage
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()
