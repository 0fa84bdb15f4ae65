"""SynVid -> the in-memory key-step tensors a distillation method trains on."""

from __future__ import annotations

from pathlib import Path

from accvideo.core.schedules import key_steps
from accvideo.synvid import open_synvid


def load_key_states(synvid_dir: str | Path, num_key_steps: int) -> dict:
    """Key-step states of every stored trajectory.

    Returns {"latents": (N, m + 1, C, T, H, W) float32, "text": (N, L, D) float32,
    "sigmas": (n + 1,) float64, "num_steps": n, "prompts": [N], "config": generation config}.
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
    tensors = ds.to_tensors()
    positions = [ds.stored_steps.index(k) for k in keys]
    return {"latents": tensors["latents"][:, positions].float(), "text": tensors["text_embeds"].float(),
            "sigmas": ds.sigmas, "num_steps": ds.num_steps, "prompts": tensors["prompts"], "config": ds.config}
