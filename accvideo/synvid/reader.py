"""SynVid's reader: `open_synvid` -> `SynVidDataset`, with checksums and named corruption."""

from __future__ import annotations

import hashlib
import json
import logging
import operator
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from safetensors import safe_open

from accvideo.synvid.format import COND_PREFIX, CONFIG_FILE, MANIFEST_FILE, check_format

logger = logging.getLogger(__name__)


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
    """Read a SynVid folder lazily: streaming iteration and random access read one sample's rows from
    memory-mapped shards (`safetensors.safe_open`), never a whole shard; checksums; named corruption.

    A sample is a dict:
        latents: (num_stored, C, T', H', W') in the stored dtype; `latents[j]` is the state at
            `sigmas[stored_steps[j]]` (for `--store key:M`, the key states `x_{k_j}` in order)
        cond: the prompt's text conditioning, `Conditioning.cond` of the teacher's family without
            the batch dimension, in the stored dtype: {"encoder_hidden_states": (L, D)} for Wan;
            HunyuanVideo adds "encoder_attention_mask" (L,) and "pooled_projections" (D_pool,)
        text_embeds: cond["encoder_hidden_states"] (the same tensor), kept while callers move to `cond`
        prompt: str; seed: int; index: int (the global sample index)

    Dataset-level: `stored_steps` (list of indices into the n + 1 states), `sigmas` (n + 1,)
    float64, `stored_sigmas` (num_stored,), `num_steps` n, `embedded_guidance_scale` (HunyuanVideo's
    guidance embedding the teacher ran with; None for Wan), `family`, `config` (the generation config).

    Every shard is sha256-checked (streamed) on the reader's first access to it (`verify=True`). A
    missing, truncated or corrupt shard raises `SynVidCorruptError` naming the file; with
    `skip_corrupt=True` it is logged, recorded in `self.skipped`, and iteration goes on with the others.

    Use: `for sample in dataset` or `iter_samples(shuffle=True, seed=epoch)` stream sample by sample;
    under DDP pass `shards=range(rank, len(dataset.shards), world_size)`. It is also a map-style
    `torch.utils.data.Dataset` (`dataset[i]`, a DataLoader with the default collate, workers too):
    random access costs one shard header and that sample's bytes. `to_tensors()` loads everything
    (small datasets, e.g. `training.data.load_key_states`).
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
        check_format(self.config, f"`root` {str(self.root)!r}")
        self.shards = [ShardInfo(**{k: (int(v) if k in ("shard", "first_sample", "num_samples", "bytes") else v)
                                    for k, v in row.items()}) for row in frame.to_dict("records")]
        self.stored_steps: list[int] = list(self.config["stored_steps"])
        self.sigmas = torch.tensor(self.config["sigmas"], dtype=torch.float64)
        self.stored_sigmas = self.sigmas[self.stored_steps]
        self.num_steps: int = int(self.config["num_steps"])
        self.embedded_guidance_scale: float | None = self.config.get("embedded_guidance_scale")
        self.family: str = self.config["family"]
        self._starts = [s.first_sample for s in self.shards]
        self._verified: set[int] = set()  # shard positions whose sha256 this reader has checked
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
    def _checked_path(self, position: int, force: bool = False) -> Path:
        """The `position`-th listed shard's file, after the size check (every time: a stat) and the
        sha256 check (`verify`: once per shard and reader, or again with `force`). The hash streams
        the file in chunks, so checking a shard never holds it in memory."""
        info = self.shards[position]
        path = self.root / info.file
        if not path.exists():
            raise SynVidCorruptError(f"SynVid shard {info.file} is missing from {str(self.root)!r}.")
        size = path.stat().st_size
        if size != info.bytes:
            raise SynVidCorruptError(f"SynVid shard {info.file} is truncated or altered: {size} bytes, "
                                     f"the manifest says {info.bytes}.")
        if self.verify and (force or position not in self._verified):
            with open(path, "rb") as f:
                digest = hashlib.file_digest(f, "sha256").hexdigest()
            if digest != info.sha256:
                raise SynVidCorruptError(f"SynVid shard {info.file} is corrupt: its sha256 does not match the "
                                         "manifest.")
            self._verified.add(position)
        return path

    def _open(self, position: int, force: bool = False) -> tuple[Any, list[str]]:
        """(safetensors handle, prompts) of a checked shard. The handle memory-maps the file: a
        tensor, or one sample's slice of it, is read only when asked for; the map is released with
        the handle (no file stays open in a reader, so it pickles into DataLoader workers)."""
        path = self._checked_path(position, force)
        try:
            handle = safe_open(str(path), framework="pt")
            prompts = json.loads(handle.metadata()["synvid"])["prompts"]
        except Exception as err:
            raise SynVidCorruptError(f"SynVid shard {self.shards[position].file} is unreadable ({err}).") from err
        return handle, prompts

    def load_shard(self, position: int, positions: Sequence[int] | None = None) -> dict[str, Any]:
        """Tensors of the `position`-th listed shard (checked), plus `prompts` from its metadata.
        `positions` (indices into `stored_steps`) reads only those states of `latents`."""
        handle, prompts = self._open(position)
        tensors: dict[str, Any] = {}
        for name in handle.keys():
            if name == "latents" and positions is not None:
                latents = handle.get_slice(name)
                tensors[name] = torch.cat([latents[:, j:j + 1] for j in positions], dim=1)
            else:
                tensors[name] = handle.get_tensor(name)
        tensors["prompts"] = prompts
        return tensors

    def _skip(self, position: int, err: SynVidCorruptError) -> None:
        if not self.skip_corrupt:
            raise err
        logger.warning("skipping: %s", err)
        if self.shards[position].file not in self.skipped:
            self.skipped.append(self.shards[position].file)

    def check(self) -> list[str]:
        """Verify every shard (sha256 and header, read again); one message per bad shard (empty when all
        are good)."""
        problems = []
        for position in range(len(self.shards)):
            try:
                self._open(position, force=True)
            except SynVidCorruptError as err:
                problems.append(str(err))
        return problems

    # -- samples
    @staticmethod
    def _sample(handle, prompts: list[str], b: int) -> dict[str, Any]:
        """Sample b of an open shard: only its rows are read from the file."""
        cond = {name[len(COND_PREFIX):]: handle.get_slice(name)[b] for name in handle.keys()
                if name.startswith(COND_PREFIX)}
        return {"latents": handle.get_slice("latents")[b], "cond": cond, "text_embeds": cond["encoder_hidden_states"],
                "prompt": prompts[b], "seed": int(handle.get_slice("seeds")[b]),
                "index": int(handle.get_slice("sample_index")[b])}

    def iter_samples(self, shuffle: bool = False, seed: int = 0,
                     shards: Sequence[int] | None = None) -> Iterator[dict[str, Any]]:
        """Samples shard by shard, one sample read at a time. `shuffle` permutes shard order and the
        order within each shard (seeded); `shards` restricts to those listed positions (e.g. one rank's
        share)."""
        order = list(range(len(self.shards)) if shards is None else shards)
        rng = random.Random(seed)
        if shuffle:
            rng.shuffle(order)
        for position in order:
            try:
                handle, prompts = self._open(position)
            except SynVidCorruptError as err:
                self._skip(position, err)
                continue
            inner = list(range(len(prompts)))
            if shuffle:
                rng.shuffle(inner)
            for b in inner:
                yield self._sample(handle, prompts, b)
            del handle

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self.iter_samples()

    def __getitem__(self, index: int) -> dict[str, Any]:
        """Sample by position 0..len-1 in manifest order (equal to the sample index for a complete
        dataset). Reads that sample's rows alone from the memory-mapped shard (its sha256 is checked on
        the first access to the shard)."""
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
        handle, prompts = self._open(position)
        return self._sample(handle, prompts, offset)

    def to_tensors(self, positions: Sequence[int] | None = None) -> dict[str, Any]:
        """Everything in memory at once (small datasets only): latents (N, num_stored, C, T', H', W'),
        cond {name: (N, ...)}, text_embeds = cond["encoder_hidden_states"] (N, L, D), seeds (N,),
        index (N,), prompts list. `positions` (indices into `stored_steps`) keeps only those states,
        shard by shard, so reading a few key states of a `--store all` dataset never holds all of it."""
        parts: dict[str, list] = {"latents": [], "seeds": [], "sample_index": [], "prompts": []}
        cond: dict[str, list] = {}
        for position in range(len(self.shards)):
            try:
                tensors = self.load_shard(position, positions)
            except SynVidCorruptError as err:
                self._skip(position, err)
                continue
            for key in parts:
                parts[key].append(tensors[key])
            for name, v in tensors.items():
                if name.startswith(COND_PREFIX):
                    cond.setdefault(name[len(COND_PREFIX):], []).append(v)
        stacked = {name: torch.cat(vs) for name, vs in cond.items()}
        return {"latents": torch.cat(parts["latents"]), "cond": stacked,
                "text_embeds": stacked["encoder_hidden_states"], "seeds": torch.cat(parts["seeds"]),
                "index": torch.cat(parts["sample_index"]), "prompts": [p for ps in parts["prompts"] for p in ps]}


def open_synvid(root: str | Path, *, verify: bool = True, skip_corrupt: bool = False) -> SynVidDataset:
    """Open a SynVid folder for reading (see `SynVidDataset`)."""
    return SynVidDataset(root, verify=verify, skip_corrupt=skip_corrupt)

