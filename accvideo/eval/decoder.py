"""The lightweight decoder against the VAE it was distilled from: agreement and decode time.

`check_decoder(model, decoder)` samples latents with `model` (its own sampling defaults) on the
ProcBench prompts, decodes each with the VAE and with the decoder, and reports the PSNR of the
decoder's uint8 frames against the VAE's (mean and worst video) and the median decode seconds
of both, timed interleaved (VAE, decoder, VAE, ...) so machine drift hits both alike.

    python -m accvideo decoder-check --model tiny-accvideo --num-videos 16
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from accvideo.eval.metrics import psnr
from accvideo.eval.procbench import benchmark_prompts

GOAL_SPEEDUP, GOAL_PSNR = 4.0, 30.0  # issue 20's bar for bundling a decoder


@torch.inference_mode()
def check_decoder(model: str | Path, decoder: str | Path = "tiny", num_videos: int = 8, repeats: int = 5,
                  split: str = "train", num_steps: int | None = None) -> dict:
    """PSNR (dB) of `decoder` ("tiny" or a decoder folder) against `model`'s VAE on latents `model`
    samples, and median decode seconds of each (per video, over `repeats` interleaved rounds)."""
    from accvideo.generation import decode, generate, resolve_sampling
    from accvideo.models.registry import load_model, with_variant
    from accvideo.models.variants import Variant

    for name, value in (("num_videos", num_videos), ("repeats", repeats)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"`{name}` must be an integer >= 1 but is {value!r}.")
    full = load_model(model)
    tiny = with_variant(full, Variant(), decoder=decoder)
    spec = resolve_sampling(full, num_steps=num_steps)
    latents = [generate(full, prompt, seed=seed, spec=spec, decode_video=False).latents
               for prompt, seed in benchmark_prompts(split, num_videos)]
    scores = [psnr(decode(tiny, z), decode(full, z)) for z in latents]
    seconds: dict[str, list[float]] = {"vae": [], "tiny": []}
    for _ in range(repeats):
        for name, which in (("vae", full), ("tiny", tiny)):
            t = time.perf_counter()
            for z in latents:
                decode(which, z)
            seconds[name].append((time.perf_counter() - t) / len(latents))
    vae_s, tiny_s = float(np.median(seconds["vae"])), float(np.median(seconds["tiny"]))
    return {"model": str(model), "decoder": str(decoder), "num_videos": num_videos, "steps": spec.num_steps,
            "psnr_db": round(float(np.mean(scores)), 3), "psnr_min_db": round(float(np.min(scores)), 3),
            "vae_decode_s": round(vae_s, 5), "tiny_decode_s": round(tiny_s, 5),
            "decode_speedup": round(vae_s / tiny_s, 2),
            "meets_goals": bool(vae_s / tiny_s >= GOAL_SPEEDUP and float(np.mean(scores)) >= GOAL_PSNR)}


def record_check(teacher: str | Path, run_dir: str | Path, num_videos: int = 8) -> dict:
    """`check_decoder` of a `distill decoder` run's decoder on `teacher`'s samples, also written into
    RUN/summary.json (so the check travels with the run, and into a bundle)."""
    from accvideo.util.io import atomic_write_text

    run_dir = Path(run_dir)
    check = check_decoder(teacher, run_dir / "decoder", num_videos=num_videos)
    summary_file = run_dir / "summary.json"
    atomic_write_text(summary_file, json.dumps({**json.loads(summary_file.read_text()), "check": check}, indent=2,
                                               default=str))
    return check
