"""SynVid's on-disk format: names, config, sample numbering, shard bytes and the manifest.

AccVideo distils on points that lie on the teacher's sampling paths, never on
forward-diffused data. `generate_synvid` runs the teacher from seeded noise for every
(prompt, seed) pair and stores the states `x_{s_i}` at every step (or at chosen steps),
the prompt, its text embedding, the seed and the sigma schedule (`writer.generate_synvid`);
`reader.SynVidDataset` streams the result back, checking every shard's sha256. This module is
what both sides agree on.

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
    shard-00000.safetensors  latents (S, num_stored, C, T', H', W'); the prompt's text conditioning
                             `cond.<name>` (S, ...) for every tensor of `Conditioning.cond` (Wan:
                             cond.encoder_hidden_states (S, L, D); HunyuanVideo: also
                             cond.encoder_attention_mask (S, L) and cond.pooled_projections (S, D_pool));
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
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from safetensors.torch import save as save_safetensors

from accvideo.core.schedules import key_steps
from accvideo.util.io import atomic_write_text
from accvideo.world import SPLITS, prompt_for

FORMAT = "accvideo-synvid"
# 2: the whole text conditioning of the prompt as `cond.<name>` tensors (any family), instead of
# Wan's `text_embeds` alone. Readers refuse other versions by name (`check_format`).
FORMAT_VERSION = 2
COND_PREFIX = "cond."  # shard tensor `cond.encoder_hidden_states` is Conditioning.cond["encoder_hidden_states"]
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


# ----------------------------------------------------------------------------- names and inputs


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


COMPUTE_DTYPES = ("fp32", "bf16")  # the teacher's compute precision (`load_model(dtype=)`)


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
    compute_dtype: str = "fp32"  # the teacher's weights and arithmetic: fp32 or bf16 (TF32 matmuls on CUDA)
    shard_size: int = 16
    guidance_scale: float | None = None
    shift: float | None = None
    num_frames: int | None = None
    height: int | None = None
    width: int | None = None
    negative_prompt: str | None = None  # None: the teacher's (Wan's own negative prompt for real Wan)
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
        if self.compute_dtype not in COMPUTE_DTYPES:
            raise ValueError(f"`compute_dtype` must be one of {list(COMPUTE_DTYPES)} but is {self.compute_dtype!r}.")
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
    from accvideo.models.families import family_of

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
        "family": family_of(model.pipe).name,  # which `Family` adapter the stored `cond` tensors are for
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
        "negative_prompt": spec.negative_prompt,
        # only when not Euler, so the configs of datasets made before UniPC existed still match
        **({"sampler": spec.sampler} if spec.sampler != "euler" else {}),
        # likewise only when not fp32: a bf16 teacher makes other trajectories, so another dataset
        **({"compute_dtype": cfg.compute_dtype} if cfg.compute_dtype != "fp32" else {}),
        "store": str(cfg.store).strip().lower().replace(" ", ""),
        "stored_steps": parse_store(cfg.store, num_steps),
        "sigmas": list(spec.sigmas),
        "dtype": cfg.dtype,
        "videos": bool(cfg.videos),
        "batch_size": cfg.batch_size,
    }


def check_same_config(out: Path, config: dict[str, Any]) -> None:
    """Refuse to mix datasets: an existing `config.json` must equal `config` key by key, and shards
    without a `config.json` are refused (nothing says which config made them)."""
    path = out / CONFIG_FILE
    if not path.exists():
        orphans = sorted(p.name for p in out.glob("shard-*")) if out.is_dir() else []
        if orphans:
            raise ValueError(f"`out` {str(out)!r} holds SynVid shards ({orphans[0]}, ...) but no {CONFIG_FILE}, so "
                             "nothing says which config made them; choose a new folder, or restore its "
                             f"{CONFIG_FILE}.")
        return
    try:
        old = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"`out` {str(out)!r}: {CONFIG_FILE} is unreadable or corrupt ({err}).") from err
    old.setdefault("batch_size", 1)  # datasets from before batching were generated one sample at a time
    # the format first: another version is not a settings mismatch, and its message says so
    check_format(old, f"`out` {str(out)!r}")
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


def check_format(config: dict[str, Any], where: str) -> None:
    """ValueError unless `config` (a dataset's config.json) is this package's format and version."""
    if config.get("format") != FORMAT:
        raise ValueError(f"{where} is not a SynVid dataset: {CONFIG_FILE} `format` must be {FORMAT!r} but is "
                         f"{config.get('format')!r}.")
    version = config.get("format_version")
    if version != FORMAT_VERSION:
        raise ValueError(f"{where} holds a SynVid dataset of another format version: `format_version` must be "
                         f"{FORMAT_VERSION} for this reader and writer but is {version!r} (version 1 stored only "
                         "Wan's text embedding); regenerate it into a new folder with `python -m accvideo synvid`.")


@dataclass
class Trajectory:
    """One teacher run. states: (num_stored, C, T', H', W'); cond: the prompt's `Conditioning.cond` row,
    one tensor per name without the batch dimension (Wan: encoder_hidden_states (L, D); HunyuanVideo:
    also encoder_attention_mask (L,) and pooled_projections (D_pool,)); video: (T, H, W, 3) uint8."""

    states: torch.Tensor
    cond: dict[str, torch.Tensor]
    video: Any = None


def sampling_spec(config: dict[str, Any]):
    """The `SamplingSpec` a dataset's `config.json` was generated with."""
    from accvideo.generation import SamplingSpec

    return SamplingSpec(num_steps=config["num_steps"], sigmas=tuple(config["sigmas"]), shift=config["shift"],
                        guidance_scale=config["guidance_scale"],
                        embedded_guidance_scale=config.get("embedded_guidance_scale"),
                        num_frames=config["num_frames"], height=config["height"], width=config["width"],
                        max_sequence_length=config["max_sequence_length"],
                        negative_prompt=config["negative_prompt"], sampler=config.get("sampler", "euler"))


def shard_bytes(k: int, indices: Sequence[int], plan: ShardPlan, trajectories: Sequence[Trajectory],
                config: dict[str, Any]) -> bytes:
    """Serialise one shard. Deterministic: no time, rank or host in it; one metadata key, so the
    header's key order cannot vary (safetensors keeps metadata in a hash map). Every trajectory of a
    shard has the same `cond` names (one teacher)."""
    names = sorted(trajectories[0].cond)
    tensors = {
        "latents": torch.stack([t.states for t in trajectories]),
        **{COND_PREFIX + name: torch.stack([t.cond[name] for t in trajectories]) for name in names},
        "seeds": torch.tensor([plan.sample(i)[1] for i in indices], dtype=torch.int64),
        "sample_index": torch.tensor(list(indices), dtype=torch.int64),
    }
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "shard": k,
            "prompts": [plan.sample(i)[0] for i in indices], "stored_steps": config["stored_steps"],
            "sigmas": config["sigmas"]}
    return save_safetensors(tensors, metadata={"synvid": json.dumps(meta, sort_keys=True)})


def shard_is_complete(out: Path, k: int, verify: bool = False) -> dict | None:
    """The sidecar record of shard k when its file and sidecar agree (size; with `verify`, also the
    sha256, which a flipped byte keeping the size fails), else None."""
    side, path = out / sidecar_name(k), out / shard_name(k)
    if not side.exists() or not path.exists():
        return None
    try:
        record = json.loads(side.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if not isinstance(record, dict) or record.get("bytes") != path.stat().st_size:
        return None
    if verify:
        with open(path, "rb") as f:
            if hashlib.file_digest(f, "sha256").hexdigest() != record.get("sha256"):
                return None
    return record


def write_manifest(out: Path, num_shards: int) -> pd.DataFrame:
    """Collect the sidecars of complete shards into `manifest.csv` (atomically); returns it."""
    rows = [{"shard": k, **{c: r[c] for c in MANIFEST_COLUMNS if c != "shard"}}
            for k in range(num_shards) if (r := shard_is_complete(out, k)) is not None]
    frame = pd.DataFrame(rows, columns=MANIFEST_COLUMNS)
    atomic_write_text(out / MANIFEST_FILE, frame.to_csv(index=False, lineterminator="\n"))
    publish(out / MANIFEST_FILE)
    return frame


def publish(path: Path) -> None:
    """Give a file written through a temp file (created 0600) the usual permissions, so a shared
    dataset folder is readable by others."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)


def read_manifest(out: Path) -> pd.DataFrame:
    path = out / MANIFEST_FILE
    if not path.exists():
        return pd.DataFrame(columns=MANIFEST_COLUMNS)
    return pd.read_csv(path)
