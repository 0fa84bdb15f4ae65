"""SynVid's writer: `generate_synvid`, resumable, sharded and runnable under `torchrun`.

The teacher runs through the shared generation stages (`accvideo.generation.encode`,
`teacher_rollout`, `decode`); this module only decides which samples to run, in what batches,
and writes their shards atomically (see `format` for the numbering and the layout).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from accvideo.synvid.format import (
    CONFIG_FILE,
    DTYPES,
    VIDEO_DIR,
    ShardPlan,
    SynVidConfig,
    Trajectory,
    check_same_config,
    load_prompts,
    publish,
    read_manifest,
    resolve_config,
    sampling_spec,
    shard_bytes,
    shard_is_complete,
    shard_name,
    sidecar_name,
    video_name,
    write_manifest,
)
from accvideo.util import distributed
from accvideo.util.io import atomic_write_bytes, atomic_write_text
from accvideo.util.runs import claim_run

logger = logging.getLogger(__name__)

@torch.inference_mode()
def teacher_trajectories(model, prompt: str, seeds: Sequence[int], config: dict[str, Any],
                         text=None) -> list[Trajectory]:
    """Run the guided teacher from `initial_noise(seed)` for each seed of one prompt, as one batch
    (B = len(seeds)), and keep the states at `config['stored_steps']`: the shared generation
    stages (`accvideo.generation.encode`, `teacher_rollout`, `decode`), which the tests compare
    with `generate`. `text`: the prompt's `Conditioning` (one row), reusable across its seeds."""
    # lazy, like every import of the generation stages here: they pull in diffusers (seconds, and
    # hundreds of MB), which a process that only reads a dataset (`import accvideo.synvid`) never needs
    from accvideo.generation import decode, encode, teacher_rollout

    spec = sampling_spec(config)
    conditioning = text if text is not None else encode(model, prompt, spec)
    dtype = DTYPES[config["dtype"]]
    states, x_0 = teacher_rollout(model, conditioning, seeds, spec, keep=config["stored_steps"], keep_dtype=dtype)
    # Every tensor the transformer is called with, not only Wan's token states, so a trainer of any
    # family can call `Family.transformer_call` with it. Floating ones take the storage dtype (the
    # HunyuanVideo mask is 0/1, exact in every one of them).
    cond = {name: (v[0].to(dtype) if v.is_floating_point() else v[0]).cpu().contiguous()
            for name, v in conditioning.cond.items()}
    trajectories = []
    for j in range(len(seeds)):
        video = decode(model, x_0[j:j + 1]) if config["videos"] else None
        trajectories.append(Trajectory(states=states[j].contiguous(), cond=cond, video=video))
    return trajectories


def _remove_stale_temps(out: Path, shards: Sequence[int]) -> None:
    """Temp files a killed run left behind (`atomic_write_bytes` names them `.NAME.*.tmp`)."""
    for k in shards:
        for name in (shard_name(k), sidecar_name(k)):
            for tmp in out.glob(f".{name}.*.tmp"):
                tmp.unlink(missing_ok=True)


@dataclass
class SynVidSummary:
    out: str
    num_samples: int  # in the dataset when complete
    complete_samples: int  # in complete shards after this run
    generated: int  # by this run, all ranks
    skipped_shards: int  # found complete and kept
    wall_s: float  # the whole call, teacher loading included
    generation_s: float  # the generation loop (slowest rank): what trajectories_per_min is measured over
    trajectories_per_min: float
    bytes_per_trajectory: float
    num_stored: int
    dtype: str
    world_size: int
    config: dict = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return self.complete_samples == self.num_samples

    def line(self) -> str:
        return (f"synvid: {self.generated} trajectories generated ({self.skipped_shards} shards already complete) "
                f"in {self.generation_s:.1f} s ({self.wall_s:.1f} s with loading) on {self.world_size} process(es): "
                f"{self.trajectories_per_min:.1f} "
                f"trajectories/min, {self.bytes_per_trajectory / 1e6:.3f} MB per trajectory "
                f"({self.num_stored} states, {self.dtype}); dataset {self.complete_samples}/{self.num_samples} "
                f"samples{'' if self.complete else ' (incomplete: rerun to finish)'} in {self.out}")


def _progress(total: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="synvid", unit="traj", disable=not enabled, dynamic_ncols=True)


def generate_synvid(cfg: SynVidConfig, out: str | Path, *, limit_shards: int | None = None,
                    model=None, progress: bool = True,
                    trajectory_fn: Callable[..., list[Trajectory]] | None = None) -> SynVidSummary:
    """Generate (or finish) a SynVid dataset in `out`. Works under `python` and `torchrun`.

    Complete shards are kept; missing or partial ones are (re)generated. `limit_shards` = N
    considers only shards 0..N-1 in this run (a deliberate partial run; rerun without it to finish).
    `model` (a LoadedModel) may be passed preloaded (tests, the app) and runs where it was placed;
    otherwise `cfg.teacher` is loaded onto this process's device (`load_model(..., device=)`).
    """
    from accvideo.generation import encode
    from accvideo.media import write_mp4
    from accvideo.models.registry import load_model

    cfg.check()
    if limit_shards is not None and (not isinstance(limit_shards, int) or limit_shards < 0):
        raise ValueError(f"`limit_shards` must be an integer >= 0 but is {limit_shards!r}.")
    out = Path(out)
    # A caller that already runs a process group (a trainer) keeps it; one we start, we end.
    owns_group = not torch.distributed.is_initialized()
    info = distributed.setup()
    t_start = time.perf_counter()
    try:
        if model is None:
            # Loaded onto this rank's device rather than moved there: the cached pipeline other
            # callers share (the app's teacher) is only read here, never moved or changed. On the
            # CPU this is the default cache entry, the one `generate` and the tests use.
            device = None if info.device.type == "cpu" else str(info.device)
            if info.device.type == "cuda":  # fp32 matmuls on tensor cores (10-bit mantissa): several times faster
                torch.backends.cuda.matmul.allow_tf32 = True
                torch.backends.cudnn.allow_tf32 = True
            model = load_model(cfg.teacher, device=device, dtype=cfg.compute_dtype)
        config = resolve_config(cfg, model)
        # Every rank checks (same files, same answer), so all ranks fail together, none hangs in a barrier.
        check_same_config(out, config)
        claim_run(out, "synvid", config, write=info.is_main)
        out.mkdir(parents=True, exist_ok=True)
        if info.is_main and not (out / CONFIG_FILE).exists():
            atomic_write_text(out / CONFIG_FILE, json.dumps(config, indent=2, sort_keys=True) + "\n")
            publish(out / CONFIG_FILE)
        # No rank writes a shard until every rank has checked the folder: a fast rank's first shard,
        # seen by a slower rank before rank 0 wrote config.json, reads as orphaned shards.
        distributed.barrier(info)
        plan = ShardPlan(load_prompts(cfg.prompts), cfg.samples_per_prompt, cfg.base_seed, cfg.shard_size)
        considered = plan.num_shards if limit_shards is None else min(limit_shards, plan.num_shards)
        mine = [k for k in plan.shards_of_rank(info.rank, info.world_size) if k < considered]
        _remove_stale_temps(out, mine)
        # sha256 as well as size: a flipped byte keeps the size, and a kept bad shard would be trained on
        todo = [k for k in mine if shard_is_complete(out, k, verify=True) is None]
        for k in todo:
            if (out / sidecar_name(k)).exists():
                logger.warning("%s does not match its sidecar %s (size or sha256): it is regenerated.",
                               out / shard_name(k), sidecar_name(k))
                (out / sidecar_name(k)).unlink()
        skipped = len(mine) - len(todo)
        if skipped:
            logger.info("rank %d: %d of its %d shards already complete, kept", info.rank, skipped, len(mine))

        trajectory_fn = trajectory_fn or teacher_trajectories
        generated, t_gen = 0, time.perf_counter()
        bar = _progress(sum(len(plan.shard_range(k)) for k in todo), progress and info.is_main)
        text_cache: dict[str, Any] = {}  # prompt -> its Conditioning
        spec = sampling_spec(config)
        for k in todo:
            indices = plan.shard_range(k)
            trajectories = []
            for batch in plan.batches(k, cfg.batch_size):
                prompt = plan.sample(batch.start)[0]
                if prompt not in text_cache:  # K samples per prompt share one text-encoder call
                    # inference mode as in `generate`: outside it the encoder picks other attention kernels
                    with torch.inference_mode():
                        text_cache = {prompt: encode(model, prompt, spec)}
                seeds = [plan.sample(i)[1] for i in batch]
                for i, trajectory in zip(batch, trajectory_fn(model, prompt, seeds, config,
                                                              text=text_cache[prompt]), strict=True):
                    if trajectory.video is not None:
                        video_path = out / VIDEO_DIR / video_name(i)
                        video_path.parent.mkdir(parents=True, exist_ok=True)
                        tmp = video_path.with_name(f".{video_path.stem}.tmp.mp4")
                        write_mp4(trajectory.video, tmp)
                        os.replace(tmp, video_path)
                        trajectory.video = None
                    trajectories.append(trajectory)
                generated += len(batch)
                bar.update(len(batch))
                bar.set_postfix_str(f"{60 * generated / max(time.perf_counter() - t_gen, 1e-9):.1f} traj/min"
                                    + (f" (rank 0 of {info.world_size})" if info.distributed else ""))
            data = shard_bytes(k, indices, plan, trajectories, config)
            atomic_write_bytes(out / shard_name(k), lambda f, data=data: f.write(data))
            publish(out / shard_name(k))
            # The sidecar is written last: a shard without one is incomplete and is regenerated.
            record = {"file": shard_name(k), "first_sample": indices.start, "num_samples": len(indices),
                      "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
            atomic_write_text(out / sidecar_name(k), json.dumps(record, sort_keys=True) + "\n")
            publish(out / sidecar_name(k))
        bar.close()
        gen_s = distributed.max_across_ranks(time.perf_counter() - t_gen, info)
        generated_all = int(distributed.sum_across_ranks(generated, info))
        distributed.barrier(info)
        if info.is_main:
            write_manifest(out, plan.num_shards)
        distributed.barrier(info)
        manifest = read_manifest(out)
        wall = time.perf_counter() - t_start
        complete_samples = int(manifest["num_samples"].sum()) if len(manifest) else 0
        total_bytes = float(manifest["bytes"].sum()) if len(manifest) else 0.0
        summary = SynVidSummary(
            out=str(out), num_samples=plan.num_samples, complete_samples=complete_samples, generated=generated_all,
            skipped_shards=int(distributed.sum_across_ranks(skipped, info)), wall_s=wall, generation_s=gen_s,
            trajectories_per_min=60.0 * generated_all / gen_s if gen_s > 0 else 0.0,
            bytes_per_trajectory=total_bytes / complete_samples if complete_samples else 0.0,
            num_stored=len(config["stored_steps"]), dtype=config["dtype"], world_size=info.world_size,
            config=config,
        )
        return summary
    finally:
        if owns_group:
            distributed.cleanup(info)
