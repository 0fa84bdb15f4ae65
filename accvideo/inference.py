"""Text-to-video generation with per-stage timing, over any Wan-family diffusers pipeline.

`generate` reads as the stages a diffusers pipeline has (check inputs, encode prompt,
prepare latents, denoise, decode) but runs our own Euler sampler, so it can time each
stage, report progress, stop on request and return the whole trajectory (SynVid needs it).
With the same seed, steps and guidance it gives what `WanPipeline.__call__` gives (tested).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from .models.vae import denormalize_latents
from .sampling import euler_sample
from .schedules import sigma_schedule


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


def _is_int(value) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def check_inputs(pipe, prompt, seed, num_steps, num_frames, height, width, guidance_scale) -> None:
    """Raise ValueError naming the argument, the rule and the value."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError(f"`prompt` must be a non-empty string but is {prompt!r}.")
    if not _is_int(seed):
        raise ValueError(f"`seed` must be an integer but is {seed!r}.")
    if not _is_int(num_steps) or num_steps < 1:
        raise ValueError(f"`num_steps` must be an integer >= 1 but is {num_steps!r}.")
    ft = pipe.vae.config.scale_factor_temporal
    if not _is_int(num_frames) or num_frames < 1 or (num_frames - 1) % ft != 0:
        raise ValueError(f"`num_frames` must be {ft}k + 1 (for example {2 * ft + 1}) but is {num_frames!r}.")
    factor = pipe.vae.config.scale_factor_spatial * pipe.transformer.config.patch_size[1]
    for name, value in (("height", height), ("width", width)):
        if not _is_int(value) or value < factor or value % factor != 0:
            raise ValueError(f"`{name}` must be a positive multiple of {factor} for this model but is {value!r}.")
    if not isinstance(guidance_scale, int | float) or guidance_scale < 0:
        raise ValueError(f"`guidance_scale` must be a number >= 0 but is {guidance_scale!r}.")


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


def latent_shape(pipe, num_frames: int, height: int, width: int) -> tuple[int, ...]:
    ft, fs = pipe.vae.config.scale_factor_temporal, pipe.vae.config.scale_factor_spatial
    return (1, pipe.transformer.config.in_channels, (num_frames - 1) // ft + 1, height // fs, width // fs)


def initial_noise(pipe, seed: int, num_frames: int, height: int, width: int) -> torch.Tensor:
    """The seeded starting noise, drawn exactly as `WanPipeline.prepare_latents` draws it."""
    generator = torch.Generator("cpu").manual_seed(int(seed))
    return torch.randn(latent_shape(pipe, num_frames, height, width), generator=generator, dtype=torch.float32)


@torch.inference_mode()
def generate(pipe, prompt: str, seed: int = 0, num_steps: int | None = None, guidance_scale: float | None = None,
             shift: float | None = None, num_frames: int | None = None, height: int | None = None,
             width: int | None = None, sigmas: torch.Tensor | None = None, negative_prompt: str = "",
             callback: Callable | None = None, interrupt: Callable[[], bool] | None = None,
             return_trajectory: bool = False, decode: bool = True,
             max_sequence_length: int | None = None) -> GenerationResult:
    """Generate one video. Unset arguments take the model's saved sampling defaults.

    `sigmas` (shape (n + 1,)) overrides the schedule built from `num_steps` and `shift`
    (students sample on their distilled key-step schedule).
    """
    defaults = getattr(pipe, "accvideo_sampling", {}) or {}
    if sigmas is None and num_steps is None and shift is None and defaults.get("sigmas"):
        sigmas = defaults["sigmas"]  # a distilled student samples on its own key-step schedule
    num_steps = num_steps if num_steps is not None else defaults.get("num_steps", 50)
    guidance_scale = guidance_scale if guidance_scale is not None else defaults.get("guidance_scale", 1.0)
    shift = shift if shift is not None else defaults.get("shift", pipe.scheduler.config.get("shift", 1.0))
    num_frames = num_frames if num_frames is not None else defaults.get("num_frames", 9)
    height = height if height is not None else defaults.get("height", 32)
    width = width if width is not None else defaults.get("width", 32)
    if sigmas is not None:
        sigmas = torch.as_tensor(sigmas, dtype=torch.float64)
        num_steps = len(sigmas) - 1
    check_inputs(pipe, prompt, seed, num_steps, num_frames, height, width, guidance_scale)
    if sigmas is None:
        sigmas = sigma_schedule(num_steps, shift)
    timings: dict[str, float] = {}
    t_all = time.perf_counter()

    t = time.perf_counter()
    use_cfg = guidance_scale > 1.0
    # Wan's cross-attention sees the zero padding, so the padded length is part of the model.
    max_len = max_sequence_length or defaults.get("max_sequence_length", 512)
    text, negative = pipe.encode_prompt(prompt, negative_prompt if use_cfg else None,
                                        do_classifier_free_guidance=use_cfg, max_sequence_length=max_len)
    timings["text_encoder"] = time.perf_counter() - t

    x = initial_noise(pipe, seed, num_frames, height, width)

    t = time.perf_counter()
    velocity = make_velocity(pipe, text, negative if use_cfg else None, guidance_scale)
    sample = euler_sample(velocity, x, sigmas, callback=callback, interrupt=interrupt,
                          return_trajectory=return_trajectory)
    timings["denoising"] = time.perf_counter() - t

    video = np.zeros((0,), dtype=np.uint8)
    if decode:
        t = time.perf_counter()
        frames = pipe.vae.decode(denormalize_latents(pipe.vae, sample.x_0), return_dict=False)[0]
        video = ((frames[0].permute(1, 2, 3, 0).clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
        timings["vae_decode"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t_all
    return GenerationResult(
        video=video, latents=sample.x_0, prompt=prompt, seed=int(seed), num_steps=num_steps,
        guidance_scale=float(guidance_scale), nfe=num_steps * (2 if use_cfg else 1), sigmas=sigmas,
        timings=timings, trajectory=sample.trajectory,
    )


def upscale(video: np.ndarray, size: int = 256) -> np.ndarray:
    """Nearest-neighbour upscale of (T, H, W, 3) uint8 frames so the long side is about `size`."""
    factor = max(1, size // max(video.shape[1], video.shape[2]))
    return video.repeat(factor, axis=1).repeat(factor, axis=2)


def write_mp4(video: np.ndarray, path, fps: int = 8, size: int = 256) -> None:
    """Write (T, H, W, 3) uint8 frames as an H.264 mp4 that browsers play (yuv420p)."""
    import imageio.v2 as imageio

    frames = upscale(video, size)
    with imageio.get_writer(str(path), fps=fps, codec="libx264", quality=8, pixelformat="yuv420p",
                            macro_block_size=1, ffmpeg_log_level="error") as writer:
        for frame in frames:
            writer.append_data(frame)
