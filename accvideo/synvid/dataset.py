"""SynVid: a dataset of the teacher's own ODE trajectories, and its reader.

AccVideo distils on points that lie on the teacher's sampling paths, never on
forward-diffused data. `generate_synvid` runs the teacher from seeded noise for every
(prompt, seed) pair and stores the states `x_{s_i}` at every step (or at chosen steps),
the prompt, its text embedding, the seed and the sigma schedule. `SynVidDataset` streams
the result back, one shard in memory at a time, checking every shard's sha256.

Sample numbering is fixed by the config alone, never by who runs it:

- sample i = (prompt i // K, seed base_seed + i) for K samples per prompt;
- shard k holds samples [k * S, (k + 1) * S) for shard size S, file `shard-{k:05d}.safetensors`;
- under `torchrun`, shard k is written by rank k % world_size.

Every sample is seeded by its own number, and a shard's batches (up to `batch_size`
consecutive samples of one prompt) depend on the config alone, so a 2-process run writes the
same bytes as a 1-process run (tested), and a rerun regenerates exactly what a killed run had
not finished. `batch_size=1` reproduces `generate` bit for bit; larger batches agree with it to
float rounding (the batched matmuls sum in another order) and run several times faster on
tiny models, whose batch-1 forward is mostly overhead.

Folder layout::

    config.json              the generation config (a rerun with another config is refused)
    shard-00000.safetensors  latents (S, num_stored, C, T', H', W'), text_embeds (S, L, D),
                             seeds (S,), sample_index (S,); metadata: prompts, stored steps, sigmas
    shard-00000.json         sidecar: sha256 and size, written after the shard (marks it complete)
    manifest.csv             one row per complete shard: file, sample range, sha256, bytes
    videos/sample-000123.mp4 optional decoded videos

Shard tensors keep the sampler's layout: `latents[b, j]` is the state at sigma
`sigmas[stored_steps[j]]`, with `stored_steps[0] = 0` the noise when stored.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import operator
import os
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from accvideo.core.schedules import key_steps
from accvideo.util import distributed
from accvideo.util.io import atomic_write_bytes, atomic_write_text
from accvideo.world import SPLITS, prompt_for

logger = logging.getLogger(__name__)

FORMAT = "accvideo-synvid"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
MANIFEST_FILE = "manifest.csv"
MANIFEST_COLUMNS = ["shard", "file", "first_sample", "num_samples", "sha256", "bytes"]
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
PRESETS = tuple(SPLITS)  # "train", "heldout", "all": the procedural world's splits
VIDEO_DIR = "videos"


def shard_name(k: int) -> str:
    return f"shard-{k:05d}.safetensors"


def sidecar_name(k: int) -> str:
    return f"shard-{k:05d}.json"


def video_name(i: int) -> str:
    return f"sample-{i:06d}.mp4"


# ----------------------------------------------------------------------------- inputs


def load_prompts(source: str | Path) -> list[str]:
    """Prompts from a preset (`train`, `heldout`, `all`: the procedural world's splits) or a
    text file with one prompt per line. Blank lines are ignored; a file without prompts is an error.
    An existing file wins over a preset of the same name."""
    path = Path(str(source)).expanduser()
    if path.is_file():
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as err:
            raise ValueError(f"`prompts` file {str(path)!r} is unreadable ({err}).") from err
        prompts = [line.strip() for line in lines if line.strip()]
        if not prompts:
            raise ValueError(f"`prompts` file {str(path)!r} must hold at least one non-blank line but holds none.")
        return prompts
    if str(source) in SPLITS:
        return [prompt_for(*combo) for combo in SPLITS[str(source)]]
    raise ValueError(f"`prompts` must be a preset {list(PRESETS)} or an existing text file but is {str(source)!r}.")


def parse_store(spec: str, num_steps: int) -> list[int]:
    """Which trajectory states to keep, as sorted indices into `sigmas` (shape (n + 1,)).

    `all`: every state 0..n; `key:M`: the M + 1 key states `key_steps(n, M)` AccVideo trains on;
    `0,10,50`: an explicit, strictly increasing list of indices in [0, n].
    """
    rule = f"'all', 'key:M' with 1 <= M <= num_steps={num_steps}, or increasing step indices in [0, {num_steps}]"
    text = str(spec).strip().lower().replace(" ", "")
    if text == "all":
        return list(range(num_steps + 1))
    try:
        if text.startswith("key:"):
            m = int(text[4:])
            if not 1 <= m <= num_steps:
                raise ValueError
            return key_steps(num_steps, m)
        steps = [int(x) for x in text.split(",")]
    except ValueError:
        raise ValueError(f"`store` must be {rule} but is {spec!r}.") from None
    if not steps or any(not 0 <= s <= num_steps for s in steps) or any(b <= a for a, b in zip(steps, steps[1:])):
        raise ValueError(f"`store` must be {rule} but is {spec!r}.")
    return steps


@dataclass
class SynVidConfig:
    """What to generate. `None` fields take the teacher's saved sampling defaults
    (`accvideo_sampling.json`) when the teacher is loaded; `resolve` records the values used."""

    teacher: str = "tiny-teacher"
    prompts: str = "train"
    num_steps: int = 50
    samples_per_prompt: int = 1
    base_seed: int = 0
    store: str = "all"
    dtype: str = "float32"
    shard_size: int = 16
    guidance_scale: float | None = None
    shift: float | None = None
    num_frames: int | None = None
    height: int | None = None
    width: int | None = None
    negative_prompt: str = ""
    videos: bool = False
    batch_size: int = 1  # seeds of one prompt run together (see the module docstring)

    def check(self) -> None:
        """Cheap checks that need no model; ValueError naming the argument, rule and value."""
        for name in ("num_steps", "samples_per_prompt", "shard_size", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"`{name}` must be an integer >= 1 but is {value!r}.")
        if not isinstance(self.base_seed, int) or self.base_seed < 0:
            raise ValueError(f"`base_seed` must be an integer >= 0 but is {self.base_seed!r}.")
        if self.dtype not in DTYPES:
            raise ValueError(f"`dtype` must be one of {list(DTYPES)} but is {self.dtype!r}.")
        parse_store(self.store, self.num_steps)
        load_prompts(self.prompts)


@dataclass
class ShardPlan:
    """The fixed sample numbering of one dataset (see the module docstring)."""

    prompts: list[str]
    samples_per_prompt: int
    base_seed: int
    shard_size: int

    @property
    def num_samples(self) -> int:
        return len(self.prompts) * self.samples_per_prompt

    @property
    def num_shards(self) -> int:
        return math.ceil(self.num_samples / self.shard_size)

    def sample(self, i: int) -> tuple[str, int]:
        """(prompt, seed) of sample i."""
        return self.prompts[i // self.samples_per_prompt], self.base_seed + i

    def shard_range(self, k: int) -> range:
        return range(k * self.shard_size, min((k + 1) * self.shard_size, self.num_samples))

    def shards_of_rank(self, rank: int, world_size: int) -> list[int]:
        return list(range(rank, self.num_shards, world_size))

    def batches(self, k: int, batch_size: int) -> list[range]:
        """Shard k's samples in runs of at most `batch_size` consecutive samples of one prompt."""
        out: list[range] = []
        shard = self.shard_range(k)
        start = shard.start
        while start < shard.stop:
            prompt_end = (start // self.samples_per_prompt + 1) * self.samples_per_prompt
            stop = min(shard.stop, prompt_end, start + batch_size)
            out.append(range(start, stop))
            start = stop
        return out


def resolve_config(cfg: SynVidConfig, model) -> dict[str, Any]:
    """The full generation config as stored in `config.json`: every default filled in from the
    teacher (a LoadedModel) by `resolve_sampling`, the prompt list fingerprinted (editing the
    prompt file changes the dataset)."""
    from accvideo.generation import resolve_sampling

    prompts = load_prompts(cfg.prompts)
    source = str(cfg.prompts)
    if Path(source).expanduser().is_file():
        source = str(Path(source).expanduser().resolve())
    spec = resolve_sampling(model, num_steps=cfg.num_steps, guidance_scale=cfg.guidance_scale, shift=cfg.shift,
                            num_frames=cfg.num_frames, height=cfg.height, width=cfg.width,
                            negative_prompt=cfg.negative_prompt)
    num_steps = cfg.num_steps
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "teacher": str(model.folder if model.folder is not None else cfg.teacher),
        "prompts_source": source,
        "prompts_sha256": hashlib.sha256("\n".join(prompts).encode()).hexdigest(),
        "num_prompts": len(prompts),
        "samples_per_prompt": cfg.samples_per_prompt,
        "base_seed": cfg.base_seed,
        "num_samples": len(prompts) * cfg.samples_per_prompt,
        "shard_size": cfg.shard_size,
        "num_shards": math.ceil(len(prompts) * cfg.samples_per_prompt / cfg.shard_size),
        "num_steps": num_steps,
        "guidance_scale": spec.guidance_scale,
        "embedded_guidance_scale": spec.embedded_guidance_scale,
        "shift": spec.shift,
        "num_frames": spec.num_frames,
        "height": spec.height,
        "width": spec.width,
        "max_sequence_length": spec.max_sequence_length,
        "negative_prompt": cfg.negative_prompt,
        "store": str(cfg.store).strip().lower().replace(" ", ""),
        "stored_steps": parse_store(cfg.store, num_steps),
        "sigmas": list(spec.sigmas),
        "dtype": cfg.dtype,
        "videos": bool(cfg.videos),
        "batch_size": cfg.batch_size,
    }


def check_same_config(out: Path, config: dict[str, Any]) -> None:
    """Refuse to mix datasets: an existing `config.json` must equal `config` key by key."""
    path = out / CONFIG_FILE
    if not path.exists():
        return
    try:
        old = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"`out` {str(out)!r}: {CONFIG_FILE} is unreadable or corrupt ({err}).") from err
    old.setdefault("batch_size", 1)  # datasets from before batching were generated one sample at a time
    for key in sorted(set(old) | set(config)):
        if old.get(key) != config.get(key):
            raise ValueError(
                f"`out` {str(out)!r} holds a SynVid dataset made with another config: `{key}` is "
                f"{_short(old.get(key))} there but {_short(config.get(key))} now; choose a new folder or the same "
                "settings."
            )


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# ----------------------------------------------------------------------------- generation


@dataclass
class Trajectory:
    """One teacher run. states: (num_stored, C, T', H', W'); text_embeds: (L, D); video: (T, H, W, 3) uint8."""

    states: torch.Tensor
    text_embeds: torch.Tensor
    video: Any = None


def sampling_spec(config: dict[str, Any]):
    """The `SamplingSpec` a dataset's `config.json` was generated with."""
    from accvideo.generation import SamplingSpec

    return SamplingSpec(num_steps=config["num_steps"], sigmas=tuple(config["sigmas"]), shift=config["shift"],
                        guidance_scale=config["guidance_scale"],
                        embedded_guidance_scale=config.get("embedded_guidance_scale"),
                        num_frames=config["num_frames"], height=config["height"], width=config["width"],
                        max_sequence_length=config["max_sequence_length"],
                        negative_prompt=config["negative_prompt"])


@torch.inference_mode()
def encode_text(model, prompt: str, config: dict[str, Any]):
    """The teacher's conditioning of one prompt (a `Conditioning`), as `generate` makes it."""
    from accvideo.generation import encode

    return encode(model, prompt, sampling_spec(config))


@torch.inference_mode()
def teacher_trajectories(model, prompt: str, seeds: Sequence[int], config: dict[str, Any],
                         text=None) -> list[Trajectory]:
    """Run the guided teacher from `initial_noise(seed)` for each seed of one prompt, as one batch
    (B = len(seeds)), and keep the states at `config['stored_steps']`: the shared generation
    stages (`accvideo.generation.teacher_rollout`), which the tests compare with `generate`.
    `text`: the prompt's `Conditioning`, reusable across a prompt's seeds."""
    from accvideo.generation import decode, teacher_rollout

    conditioning = text if text is not None else encode_text(model, prompt, config)
    dtype = DTYPES[config["dtype"]]
    states, x_0 = teacher_rollout(model, conditioning, seeds, sampling_spec(config), keep=config["stored_steps"],
                                  keep_dtype=dtype)
    embeds = conditioning.cond["encoder_hidden_states"][0].to(dtype).cpu().contiguous()
    trajectories = []
    for j in range(len(seeds)):
        video = decode(model, x_0[j:j + 1]) if config["videos"] else None
        trajectories.append(Trajectory(states=states[j].contiguous(), text_embeds=embeds, video=video))
    return trajectories


def shard_bytes(k: int, indices: Sequence[int], plan: ShardPlan, trajectories: Sequence[Trajectory],
                config: dict[str, Any]) -> bytes:
    """Serialise one shard. Deterministic: no time, rank or host in it; one metadata key, so the
    header's key order cannot vary (safetensors keeps metadata in a hash map)."""
    tensors = {
        "latents": torch.stack([t.states for t in trajectories]),
        "text_embeds": torch.stack([t.text_embeds for t in trajectories]),
        "seeds": torch.tensor([plan.sample(i)[1] for i in indices], dtype=torch.int64),
        "sample_index": torch.tensor(list(indices), dtype=torch.int64),
    }
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "shard": k,
            "prompts": [plan.sample(i)[0] for i in indices], "stored_steps": config["stored_steps"],
            "sigmas": config["sigmas"]}
    return save_safetensors(tensors, metadata={"synvid": json.dumps(meta, sort_keys=True)})


def shard_is_complete(out: Path, k: int) -> dict | None:
    """The sidecar record of shard k when its file and sidecar agree (size), else None."""
    side, path = out / sidecar_name(k), out / shard_name(k)
    if not side.exists() or not path.exists():
        return None
    try:
        record = json.loads(side.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if record.get("bytes") != path.stat().st_size:
        return None
    return record


def _remove_stale_temps(out: Path, shards: Sequence[int]) -> None:
    """Temp files a killed run left behind (`atomic_write_bytes` names them `.NAME.*.tmp`)."""
    for k in shards:
        for name in (shard_name(k), sidecar_name(k)):
            for tmp in out.glob(f".{name}.*.tmp"):
                tmp.unlink(missing_ok=True)


def write_manifest(out: Path, num_shards: int) -> pd.DataFrame:
    """Collect the sidecars of complete shards into `manifest.csv` (atomically); returns it."""
    rows = [{"shard": k, **{c: r[c] for c in MANIFEST_COLUMNS if c != "shard"}}
            for k in range(num_shards) if (r := shard_is_complete(out, k)) is not None]
    frame = pd.DataFrame(rows, columns=MANIFEST_COLUMNS)
    atomic_write_text(out / MANIFEST_FILE, frame.to_csv(index=False, lineterminator="\n"))
    _publish(out / MANIFEST_FILE)
    return frame


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
    `model` (a LoadedModel) may be passed preloaded (tests, the app); otherwise `cfg.teacher` is loaded.
    """
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
        model = model if model is not None else load_model(cfg.teacher)
        config = resolve_config(cfg, model)
        # Every rank checks (same files, same answer), so all ranks fail together, none hangs in a barrier.
        check_same_config(out, config)
        out.mkdir(parents=True, exist_ok=True)
        if info.is_main and not (out / CONFIG_FILE).exists():
            atomic_write_text(out / CONFIG_FILE, json.dumps(config, indent=2, sort_keys=True) + "\n")
            _publish(out / CONFIG_FILE)
        plan = ShardPlan(load_prompts(cfg.prompts), cfg.samples_per_prompt, cfg.base_seed, cfg.shard_size)
        considered = plan.num_shards if limit_shards is None else min(limit_shards, plan.num_shards)
        mine = [k for k in plan.shards_of_rank(info.rank, info.world_size) if k < considered]
        _remove_stale_temps(out, mine)
        todo = [k for k in mine if shard_is_complete(out, k) is None]
        skipped = len(mine) - len(todo)
        if skipped:
            logger.info("rank %d: %d of its %d shards already complete, kept", info.rank, skipped, len(mine))

        model.pipe.to(info.device)
        trajectory_fn = trajectory_fn or teacher_trajectories
        generated, t_gen = 0, time.perf_counter()
        bar = _progress(sum(len(plan.shard_range(k)) for k in todo), progress and info.is_main)
        text_cache: dict[str, tuple] = {}
        for k in todo:
            indices = plan.shard_range(k)
            trajectories = []
            for batch in plan.batches(k, cfg.batch_size):
                prompt = plan.sample(batch.start)[0]
                if prompt not in text_cache:  # K samples per prompt share one text-encoder call
                    text_cache = {prompt: encode_text(model, prompt, config)}
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
            _publish(out / shard_name(k))
            # The sidecar is written last: a shard without one is incomplete and is regenerated.
            record = {"file": shard_name(k), "first_sample": indices.start, "num_samples": len(indices),
                      "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
            atomic_write_text(out / sidecar_name(k), json.dumps(record, sort_keys=True) + "\n")
            _publish(out / sidecar_name(k))
        bar.close()
        gen_s = _max_across_ranks(time.perf_counter() - t_gen, info)
        generated_all = int(_sum_across_ranks(generated, info))
        distributed.barrier(info)
        if info.is_main:
            write_manifest(out, plan.num_shards)
        distributed.barrier(info)
        manifest = _read_manifest_quiet(out)
        wall = time.perf_counter() - t_start
        complete_samples = int(manifest["num_samples"].sum()) if len(manifest) else 0
        total_bytes = float(manifest["bytes"].sum()) if len(manifest) else 0.0
        summary = SynVidSummary(
            out=str(out), num_samples=plan.num_samples, complete_samples=complete_samples, generated=generated_all,
            skipped_shards=int(_sum_across_ranks(skipped, info)), wall_s=wall, generation_s=gen_s,
            trajectories_per_min=60.0 * generated_all / gen_s if gen_s > 0 else 0.0,
            bytes_per_trajectory=total_bytes / complete_samples if complete_samples else 0.0,
            num_stored=len(config["stored_steps"]), dtype=config["dtype"], world_size=info.world_size,
            config=config,
        )
        return summary
    finally:
        if owns_group:
            distributed.cleanup(info)


def _sum_across_ranks(value: float, info) -> float:
    return distributed.mean_across_ranks(float(value), info) * info.world_size


def _max_across_ranks(value: float, info) -> float:
    if not info.distributed:
        return value
    t = torch.tensor([value], dtype=torch.float64)
    torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
    return float(t.item())


def _publish(path: Path) -> None:
    """Give a file written through a temp file (created 0600) the usual permissions, so a shared
    dataset folder is readable by others."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)


def _read_manifest_quiet(out: Path) -> pd.DataFrame:
    path = out / MANIFEST_FILE
    if not path.exists():
        return pd.DataFrame(columns=MANIFEST_COLUMNS)
    return pd.read_csv(path)


# ----------------------------------------------------------------------------- reader


class SynVidCorruptError(ValueError):
    """A shard is missing, truncated or fails its checksum; the message names the file."""


@dataclass
class ShardInfo:
    shard: int
    file: str
    first_sample: int
    num_samples: int
    sha256: str
    bytes: int


class SynVidDataset(torch.utils.data.Dataset):
    """Read a SynVid folder: streaming iteration (one shard in memory), random access, checksums.

    A sample is a dict:
        latents: (num_stored, C, T', H', W') in the stored dtype; `latents[j]` is the state at
            `sigmas[stored_steps[j]]` (for `--store key:M`, the key states `x_{k_j}` in order)
        text_embeds: (L, D); prompt: str; seed: int; index: int (the global sample index)

    Dataset-level: `stored_steps` (list of indices into the n + 1 states), `sigmas` (n + 1,)
    float64, `stored_sigmas` (num_stored,), `num_steps` n, `config` (the generation config).

    Every shard is sha256-checked when loaded (`verify=True`). A missing, truncated or corrupt
    shard raises `SynVidCorruptError` naming the file; with `skip_corrupt=True` it is logged,
    recorded in `self.skipped`, and iteration goes on with the other shards.

    Use: `for sample in dataset` or `iter_samples(shuffle=True, seed=epoch)` stream with one shard in
    memory; under DDP pass `shards=range(rank, len(dataset.shards), world_size)`. It is also a map-style
    `torch.utils.data.Dataset` (`dataset[i]`, a DataLoader with the default collate); in-order access
    reads each shard once, fully random access reloads a shard per jump, so for a small dataset
    `to_tensors()` (all in memory) is the better fit for random batches.
    """

    def __init__(self, root: str | Path, *, verify: bool = True, skip_corrupt: bool = False):
        self.root = Path(root)
        self.verify = verify
        self.skip_corrupt = skip_corrupt
        self.skipped: list[str] = []
        if not (self.root / CONFIG_FILE).exists() or not (self.root / MANIFEST_FILE).exists():
            raise ValueError(f"`root` {str(self.root)!r} is not a SynVid folder: it needs {CONFIG_FILE} and "
                             f"{MANIFEST_FILE} (made by `python -m accvideo synvid`).")
        try:
            self.config: dict[str, Any] = json.loads((self.root / CONFIG_FILE).read_text())
            frame = pd.read_csv(self.root / MANIFEST_FILE, dtype={"sha256": str, "file": str})
        except Exception as err:
            raise ValueError(f"SynVid folder {str(self.root)!r}: config or manifest is corrupt ({err}).") from err
        if self.config.get("format") != FORMAT:
            raise ValueError(f"SynVid folder {str(self.root)!r}: {CONFIG_FILE} has format "
                             f"{self.config.get('format')!r}, expected {FORMAT!r}.")
        self.shards = [ShardInfo(**{k: (int(v) if k in ("shard", "first_sample", "num_samples", "bytes") else v)
                                    for k, v in row.items()}) for row in frame.to_dict("records")]
        self.stored_steps: list[int] = list(self.config["stored_steps"])
        self.sigmas = torch.tensor(self.config["sigmas"], dtype=torch.float64)
        self.stored_sigmas = self.sigmas[self.stored_steps]
        self.num_steps: int = int(self.config["num_steps"])
        self._starts = [s.first_sample for s in self.shards]
        self._cache: tuple[int, dict] | None = None
        if not self.complete:
            logger.warning("SynVid folder %s is incomplete: %d of %d samples; rerun the generator to finish it",
                           self.root, len(self), self.config["num_samples"])

    # -- sizes
    def __len__(self) -> int:
        return sum(s.num_samples for s in self.shards)

    @property
    def num_samples(self) -> int:
        return len(self)

    @property
    def complete(self) -> bool:
        return len(self) == int(self.config["num_samples"])

    # -- shards
    def load_shard(self, position: int) -> dict[str, Any]:
        """Tensors of the `position`-th listed shard (checked), plus `prompts` from its metadata."""
        info = self.shards[position]
        path = self.root / info.file
        if not path.exists():
            raise SynVidCorruptError(f"SynVid shard {info.file} is missing from {str(self.root)!r}.")
        data = path.read_bytes()
        if len(data) != info.bytes:
            raise SynVidCorruptError(f"SynVid shard {info.file} is truncated or altered: {len(data)} bytes, "
                                     f"the manifest says {info.bytes}.")
        if self.verify and hashlib.sha256(data).hexdigest() != info.sha256:
            raise SynVidCorruptError(f"SynVid shard {info.file} is corrupt: its sha256 does not match the manifest.")
        try:
            tensors = load_safetensors(data)
            tensors["prompts"] = _shard_metadata(data)["prompts"]
        except Exception as err:
            raise SynVidCorruptError(f"SynVid shard {info.file} is unreadable ({err}).") from err
        return tensors

    def _try_load(self, position: int) -> dict[str, Any] | None:
        try:
            return self.load_shard(position)
        except SynVidCorruptError as err:
            if not self.skip_corrupt:
                raise
            logger.warning("skipping: %s", err)
            if self.shards[position].file not in self.skipped:
                self.skipped.append(self.shards[position].file)
            return None

    def check(self) -> list[str]:
        """Verify every shard; return one message per bad shard (empty when all are good)."""
        problems = []
        for position in range(len(self.shards)):
            try:
                self.load_shard(position)
            except SynVidCorruptError as err:
                problems.append(str(err))
        return problems

    # -- samples
    @staticmethod
    def _sample(tensors: dict[str, Any], b: int) -> dict[str, Any]:
        return {"latents": tensors["latents"][b], "text_embeds": tensors["text_embeds"][b],
                "prompt": tensors["prompts"][b], "seed": int(tensors["seeds"][b]),
                "index": int(tensors["sample_index"][b])}

    def iter_samples(self, shuffle: bool = False, seed: int = 0,
                     shards: Sequence[int] | None = None) -> Iterator[dict[str, Any]]:
        """Samples shard by shard, one shard in memory. `shuffle` permutes shard order and the order
        within each shard (seeded); `shards` restricts to those listed positions (e.g. one rank's share)."""
        order = list(range(len(self.shards)) if shards is None else shards)
        rng = random.Random(seed)
        if shuffle:
            rng.shuffle(order)
        for position in order:
            tensors = self._try_load(position)
            if tensors is None:
                continue
            inner = list(range(len(tensors["prompts"])))
            if shuffle:
                rng.shuffle(inner)
            for b in inner:
                yield self._sample(tensors, b)
            del tensors

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self.iter_samples()

    def __getitem__(self, index: int) -> dict[str, Any]:
        """Sample by position 0..len-1 in manifest order (equal to the sample index for a complete
        dataset). Keeps the last loaded shard, so in-order access reads each shard once."""
        try:
            index = operator.index(index)
        except TypeError:
            raise IndexError(f"`index` must be an integer in [0, {len(self)}) but is {index!r}.") from None
        if not -len(self) <= index < len(self):
            raise IndexError(f"`index` must be an integer in [0, {len(self)}) but is {index!r}.")
        index %= len(self)
        position, offset = 0, index
        while offset >= self.shards[position].num_samples:
            offset -= self.shards[position].num_samples
            position += 1
        if self._cache is None or self._cache[0] != position:
            self._cache = None
            self._cache = (position, self.load_shard(position))
        return self._sample(self._cache[1], offset)

    def to_tensors(self) -> dict[str, Any]:
        """Everything in memory at once (small datasets only): latents (N, num_stored, C, T', H', W'),
        text_embeds (N, L, D), seeds (N,), index (N,), prompts list."""
        parts: dict[str, list] = {"latents": [], "text_embeds": [], "seeds": [], "sample_index": [], "prompts": []}
        for position in range(len(self.shards)):
            tensors = self._try_load(position)
            if tensors is not None:
                for key in parts:
                    parts[key].append(tensors[key])
        return {"latents": torch.cat(parts["latents"]), "text_embeds": torch.cat(parts["text_embeds"]),
                "seeds": torch.cat(parts["seeds"]), "index": torch.cat(parts["sample_index"]),
                "prompts": [p for ps in parts["prompts"] for p in ps]}


def _shard_metadata(data: bytes) -> dict[str, Any]:
    """The JSON metadata of a serialised shard (safetensors header: 8-byte length, then JSON)."""
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + size])
    return json.loads(header["__metadata__"]["synvid"])


def open_synvid(root: str | Path, *, verify: bool = True, skip_corrupt: bool = False) -> SynVidDataset:
    """Open a SynVid folder for reading (see `SynVidDataset`)."""
    return SynVidDataset(root, verify=verify, skip_corrupt=skip_corrupt)

