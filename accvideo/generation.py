"""Text-to-video generation with per-stage timing, over Wan and HunyuanVideo diffusers pipelines.

`generate` reads as the stages a diffusers pipeline has (check inputs, encode prompt,
prepare latents, denoise, decode) but runs our own Euler sampler, so it can time each
stage, report progress, stop on request and return the whole trajectory (SynVid needs it).
With the same seed, steps and guidance it gives what `WanPipeline.__call__` and
`HunyuanVideoPipeline.__call__` give (tested). What differs per family (text encoders,
guidance embedding, latent scaling) lives in `models/families.py`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from accvideo.core.sampling import euler_sample
from accvideo.core.schedules import sigma_schedule
from accvideo.models.families import family_of
from accvideo.models.memory import execution_device


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


def _is_int(value) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def check_inputs(pipe, prompt, seed, num_steps, num_frames, height, width, guidance_scale,
                 embedded_guidance_scale=None) -> None:
    """Raise ValueError naming the argument, the rule and the value.

    Frame counts and sizes follow the model: frames are `ft * k + 1` for the VAE's temporal
    factor ft (4 for Wan2.1 and HunyuanVideo), sizes multiples of the VAE's spatial factor
    times the transformer's patch size (8 x 2 = 16 for both real families)."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError(f"`prompt` must be a non-empty string but is {prompt!r}.")
    if not _is_int(seed):
        raise ValueError(f"`seed` must be an integer but is {seed!r}.")
    if not _is_int(num_steps) or num_steps < 1:
        raise ValueError(f"`num_steps` must be an integer >= 1 but is {num_steps!r}.")
    family = family_of(pipe)
    ft, fs = family.scale_factors(pipe)
    if not _is_int(num_frames) or num_frames < 1 or (num_frames - 1) % ft != 0:
        raise ValueError(f"`num_frames` must be {ft}k + 1 (for example {2 * ft + 1}) but is {num_frames!r}.")
    factor = fs * family.patch_size(pipe)
    for name, value in (("height", height), ("width", width)):
        if not _is_int(value) or value < factor or value % factor != 0:
            raise ValueError(f"`{name}` must be a positive multiple of {factor} for this model but is {value!r}.")
    if not isinstance(guidance_scale, int | float) or guidance_scale < 0:
        raise ValueError(f"`guidance_scale` must be a number >= 0 but is {guidance_scale!r}.")
    if embedded_guidance_scale is not None:
        if family.name != "hunyuan" or not pipe.transformer.config.guidance_embeds:
            raise ValueError(f"`embedded_guidance_scale` must be None for a model without a guidance embedding "
                             f"({type(pipe.transformer).__name__}) but is {embedded_guidance_scale!r}.")
        if isinstance(embedded_guidance_scale, bool) or not isinstance(embedded_guidance_scale, int | float) \
                or embedded_guidance_scale < 0:
            raise ValueError(f"`embedded_guidance_scale` must be a number >= 0 but is {embedded_guidance_scale!r}.")


def make_velocity(pipe, text: torch.Tensor, negative: torch.Tensor | None, guidance_scale: float):
    """The guided velocity callable `v(x, sigma)` of a Wan transformer.

    With guidance > 1 it makes two transformer calls per step (conditional, unconditional),
    as `WanPipeline` does: 2 NFE per step. Students are guidance-distilled: 1 NFE.
    """
    transformer = pipe.transformer

    def velocity(x: torch.Tensor, sigma: float) -> torch.Tensor:
        t = torch.full((x.shape[0],), sigma * 1000.0, dtype=x.dtype, device=x.device)
        v = transformer(x, timestep=t, encoder_hidden_states=text, return_dict=False)[0]
        if negative is not None:
            v_uncond = transformer(x, timestep=t, encoder_hidden_states=negative, return_dict=False)[0]
            v = v_uncond + guidance_scale * (v - v_uncond)
        return v

    return velocity


def default_shift(pipe) -> float:
    """The model's own schedule shift: its sampling defaults, else its scheduler's (`shift` for
    FlowMatchEuler configs, `flow_shift` for the UniPC configs of the Wan2.1 -Diffusers repos)."""
    defaults = getattr(pipe, "accvideo_sampling", {}) or {}
    if defaults.get("shift") is not None:
        return float(defaults["shift"])
    config = pipe.scheduler.config
    return float(config["flow_shift"] if config.get("flow_shift") is not None else config.get("shift", 1.0))


def latent_shape(pipe, num_frames: int, height: int, width: int) -> tuple[int, ...]:
    ft, fs = family_of(pipe).scale_factors(pipe)
    return (1, pipe.transformer.config.in_channels, (num_frames - 1) // ft + 1, height // fs, width // fs)


def initial_noise(pipe, seed: int, num_frames: int, height: int, width: int) -> torch.Tensor:
    """The seeded starting noise, drawn exactly as `WanPipeline.prepare_latents` (and the
    HunyuanVideo pipeline) draw it from a CPU generator: the same video on any device."""
    generator = torch.Generator("cpu").manual_seed(int(seed))
    return torch.randn(latent_shape(pipe, num_frames, height, width), generator=generator, dtype=torch.float32)


@torch.inference_mode()
def generate(pipe, prompt: str, seed: int = 0, num_steps: int | None = None, guidance_scale: float | None = None,
             shift: float | None = None, num_frames: int | None = None, height: int | None = None,
             width: int | None = None, sigmas: torch.Tensor | None = None, negative_prompt: str = "",
             callback: Callable | None = None, interrupt: Callable[[], bool] | None = None,
             return_trajectory: bool = False, decode: bool = True,
             max_sequence_length: int | None = None,
             embedded_guidance_scale: float | None = None) -> GenerationResult:
    """Generate one video. Unset arguments take the model's saved sampling defaults.

    `sigmas` (shape (n + 1,)) overrides the schedule built from `num_steps` and `shift`
    (students sample on their distilled key-step schedule). `guidance_scale` > 1 is real
    classifier-free guidance (2 NFE per step); `embedded_guidance_scale` is HunyuanVideo's
    guidance embedding (1 NFE per step; None for Wan).
    """
    defaults = getattr(pipe, "accvideo_sampling", {}) or {}
    family = family_of(pipe)
    if sigmas is None and num_steps is None and shift is None and defaults.get("sigmas"):
        sigmas = defaults["sigmas"]  # a distilled student samples on its own key-step schedule
    num_steps = num_steps if num_steps is not None else defaults.get("num_steps", 50)
    guidance_scale = guidance_scale if guidance_scale is not None else defaults.get("guidance_scale", 1.0)
    shift = shift if shift is not None else default_shift(pipe)
    num_frames = num_frames if num_frames is not None else defaults.get("num_frames", 9)
    height = height if height is not None else defaults.get("height", 32)
    width = width if width is not None else defaults.get("width", 32)
    if embedded_guidance_scale is None and family.name == "hunyuan" and pipe.transformer.config.guidance_embeds:
        embedded_guidance_scale = defaults.get("embedded_guidance_scale", 6.0)
    if sigmas is not None:
        sigmas = torch.as_tensor(sigmas, dtype=torch.float64)
        num_steps = len(sigmas) - 1
    check_inputs(pipe, prompt, seed, num_steps, num_frames, height, width, guidance_scale, embedded_guidance_scale)
    if sigmas is None:
        sigmas = sigma_schedule(num_steps, shift)
    device = execution_device(pipe)
    timings: dict[str, float] = {}
    t_all = _now(device)

    t = _now(device)
    use_cfg = guidance_scale > 1.0
    # Wan's cross-attention sees the zero padding, so the padded length is part of the model.
    default_len = 256 if family.name == "hunyuan" else 512
    max_len = max_sequence_length or defaults.get("max_sequence_length", default_len)
    conditioning = family.encode(pipe, prompt, negative_prompt if use_cfg else None, max_len, defaults)
    timings["text_encoder"] = _now(device) - t

    x = initial_noise(pipe, seed, num_frames, height, width).to(device)

    t = _now(device)
    velocity = family.velocity(pipe, conditioning, guidance_scale, embedded_guidance_scale)
    sample = euler_sample(velocity, x, sigmas, callback=callback, interrupt=interrupt,
                          return_trajectory=return_trajectory)
    timings["denoising"] = _now(device) - t

    video = np.zeros((0,), dtype=np.uint8)
    if decode:
        t = _now(device)
        frames = family.decode(pipe, sample.x_0)
        video = ((frames[0].float().permute(1, 2, 3, 0).clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        video = video.cpu().numpy()
        timings["vae_decode"] = _now(device) - t
    timings["total"] = _now(device) - t_all
    latents = sample.x_0.cpu()
    trajectory = sample.trajectory.cpu() if sample.trajectory is not None else None
    return GenerationResult(
        video=video, latents=latents, prompt=prompt, seed=int(seed), num_steps=num_steps,
        guidance_scale=float(guidance_scale), nfe=num_steps * (2 if use_cfg else 1), sigmas=sigmas,
        timings=timings, trajectory=trajectory,
        embedded_guidance_scale=None if embedded_guidance_scale is None else float(embedded_guidance_scale),
    )


def _now(device: torch.device) -> float:
    # GPU work is asynchronous: wait for it, or a stage's time lands in the next stage
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()
