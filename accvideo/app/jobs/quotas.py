"""Resource limits of the launcher: how many jobs run at once, and the disk a job will need.

Six SynVid jobs at the largest settings a form allows once ran side by side, about 19 GB each, on
a 2-core machine. So a launch (and a resume) is refused, before anything is written, when the
machine already runs `max_jobs` jobs (default: one per GPU, one on a CPU-only machine; env
`ACCVIDEO_MAX_JOBS`), or when the job's estimated disk use exceeds the free space of the runs
folder less a reserve.

The estimates are upper bounds from the teacher's saved configs, never from loading it:
- SynVid: samples x (stored states x latent elements + text conditioning) x 4 bytes (float32);
- AccVideo: the student pipeline it exports plus two kept checkpoints (student and discriminator
  weights with AdamW's two moments: 8 x the transformer's weights each);
- GPD: that, once per stage.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from accvideo.world import SPLITS  # lower layer: the prompt presets

from .specs import JobSpec

RESERVE_BYTES = 1 << 30  # left free for logs, metrics and the system
GB = 1e9


def default_max_jobs(gpus: int) -> int:
    """`ACCVIDEO_MAX_JOBS` when set (an integer >= 1), else one job per GPU, or one on the CPU."""
    text = os.environ.get("ACCVIDEO_MAX_JOBS")
    if text is None:
        return max(1, gpus)
    if not text.strip().isdigit() or int(text) < 1:
        raise ValueError(f"`ACCVIDEO_MAX_JOBS` must be an integer >= 1 but is {text!r}.")
    return int(text)


def _teacher_folder(teacher: str) -> Path:
    from accvideo.models.registry import resolve_model  # lower layer; imports diffusers

    return resolve_model(teacher)


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _synvid_sample_bytes(folder: Path, num_steps: int, store: str) -> int:
    """Bytes of one stored trajectory: latents (states, C, T', H', W') plus the text conditioning."""
    from accvideo.models.registry import read_sampling_defaults  # lower layer

    sampling = read_sampling_defaults(folder)
    transformer = json.loads((folder / "transformer" / "config.json").read_text())
    channels = int(transformer.get("in_channels", 16))
    # the VAEs we use compress 4x in time and 8x in space (Wan, HunyuanVideo)
    frames = (int(sampling.get("num_frames", 81)) - 1) // 4 + 1
    latent = channels * frames * (int(sampling.get("height", 480)) // 8) * (int(sampling.get("width", 832)) // 8)
    text = int(sampling.get("max_sequence_length", 512)) * int(transformer.get("text_dim", 4096))
    states = num_steps + 1 if store == "all" else int(store.split(":")[1]) + 1
    return 4 * (states * latent + text)


def estimate_disk_bytes(spec: JobSpec) -> int:
    """An upper bound of what `spec`'s job writes into its run folder, in bytes."""
    folder = _teacher_folder(spec.teacher)
    if spec.kind == "synvid":
        samples = len(SPLITS[spec.preset]) * spec.samples_per_prompt
        return samples * _synvid_sample_bytes(folder, spec.num_steps, spec.store)
    transformer = _folder_bytes(folder / "transformer")
    per_run = _folder_bytes(folder) + 2 * 8 * transformer
    stages = len(spec.schedule.split(",")) - 1 if spec.kind == "gpd" else 1
    return stages * per_run + (per_run if spec.kind == "gpd" else 0)  # GPD copies its last stage's pipeline


def check_quotas(spec: JobSpec, runs_dir: Path, running: list[str], max_jobs: int) -> None:
    """ValueError naming the limit, its value and what is asked, when `spec` may not start now."""
    if len(running) >= max_jobs:
        raise ValueError(f"`max_jobs` allows {max_jobs} job(s) at once on this machine (env ACCVIDEO_MAX_JOBS) "
                         f"but {len(running)} run now ({', '.join(running)}); wait for one to end or stop it "
                         f"before starting {spec.name!r}.")
    need, free = estimate_disk_bytes(spec), shutil.disk_usage(runs_dir).free
    if need > free - RESERVE_BYTES:
        raise ValueError(f"`disk` must have room for job {spec.name!r}: it needs about {need / GB:.2f} GB but "
                         f"{str(runs_dir)!r} has {free / GB:.2f} GB free ({RESERVE_BYTES / GB:.1f} GB kept in "
                         "reserve); free space or choose smaller settings.")
