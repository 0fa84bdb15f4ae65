"""SynVid -> the in-memory key-step tensors a distillation method trains on."""

from __future__ import annotations

from pathlib import Path

from accvideo.core.schedules import key_steps
from accvideo.synvid import open_synvid


def load_key_states(synvid_dir: str | Path, num_key_steps: int) -> dict:
    """Key-step states of every stored trajectory, with each prompt's text conditioning.

    Returns, for N trajectories and m = `num_key_steps` key steps k_0 < ... < k_m of n steps:
        latents: (N, m + 1, C, T', H', W') float32, `latents[:, j]` the state at `sigmas[k_j]`
        cond: {name: (N, ...) float32}: the teacher family's `Conditioning.cond` per trajectory,
            ready for `Family.transformer_call(model, x, sigma, cond)`. Wan: encoder_hidden_states
            (N, L, D); HunyuanVideo: also encoder_attention_mask (N, L) and pooled_projections (N, D_pool)
        text: cond["encoder_hidden_states"] (N, L, D), the same tensor (the AccVideo method reads it
            until it moves to `cond`)
        sigmas: (n + 1,) float64, the teacher's full schedule; num_steps: n
        prompts: list of N strings
        embedded_guidance_scale: HunyuanVideo's embedded guidance the teacher ran with (None for Wan)
        family: "wan" | "hunyuan"; config: the generation config (config.json)
    The tiny preset holds a few hundred trajectories, so everything fits in memory; the
    checksum of every shard is verified on the way in.
    """
    ds = open_synvid(synvid_dir)
    if not ds.complete:
        raise ValueError(f"`synvid` folder {str(synvid_dir)!r} is incomplete ({len(ds)} of "
                         f"{ds.config['num_samples']} samples); rerun `python -m accvideo synvid` to finish it.")
    keys = key_steps(ds.num_steps, num_key_steps)
    missing = [k for k in keys if k not in ds.stored_steps]
    if missing:
        raise ValueError(f"`synvid` folder {str(synvid_dir)!r} stores steps {ds.stored_steps} but "
                         f"{num_key_steps} key steps need {keys} (missing {missing}); regenerate with `--store all`.")
    positions = [ds.stored_steps.index(k) for k in keys]
    tensors = ds.to_tensors(positions=positions)
    cond = {name: v.float() for name, v in tensors["cond"].items()}
    return {"latents": tensors["latents"].float(), "cond": cond,
            "sigmas": ds.sigmas, "num_steps": ds.num_steps, "prompts": tensors["prompts"],
            "embedded_guidance_scale": ds.embedded_guidance_scale, "family": ds.family, "config": ds.config}
