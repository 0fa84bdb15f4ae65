"""Training-free caches around a Wan transformer: first-block cache and MagCache, our own code.

Both skip work across the steps of one sampling run by reusing a residual of the transformer's
block stack. `CachedWanTransformer` is called exactly like `WanTransformer3DModel` (by
`Family.transformer_call`) and runs the model's own submodules in the order its `forward` does
(patch and condition embedding, blocks, output norm and unpatchify), so nothing is hooked on
the shared pipeline: one wrapper per sampling run and guidance branch holds the state, and at
a threshold that never skips it returns exactly what the transformer returns (tested).

- First-block cache (`fbcache@T`): run block 0; r1 = its output minus its input (B, L, D). If
  mean|r1 - r1_prev| / mean|r1_prev| < T, where r1_prev is r1 at the last *computed* step, the
  other blocks are skipped and their cached residual (output of the last block minus output of
  block 0, at that step) is added instead. Drift accumulates against r1_prev, so a run of small
  changes still ends in a recompute.
- MagCache (`magcache@T`): the norm of the whole stack's residual changes by a ratio per step
  that hardly depends on the prompt or seed; a calibration run records these ratios
  (`magnitude_ratios`: per step, the token-mean of |res_i| / |res_{i-1}|). While sampling,
  after the first `retention_ratio` of the steps, each step multiplies the ratios since the
  last computed step; the estimated error sum |1 - product| accumulates, and the step reuses
  the cached residual while the error stays below T and at most `max_skip_steps` are skipped
  in a row.
Calibrations are stored per transformer content hash in `$ACCVIDEO_CACHE_DIR/magcache/`
(default ~/.cache/accvideo): bundled model folders stay untouched.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path

import torch

from accvideo.models.fingerprint import component_sha256
from accvideo.models.variants import CacheSpec
from accvideo.util.io import atomic_write_text


def _prologue(t, x: torch.Tensor, timestep: torch.Tensor, context: torch.Tensor):
    """WanTransformer3DModel.forward up to its blocks: tokens (B, L, D), the blocks' extra
    arguments, the time embedding and the latent grid (B, T', H'/p, W'/p)."""
    p_t, p_h, p_w = t.config.patch_size
    b, _, f, h, w = x.shape
    rotary = t.rope(x)
    tokens = t.patch_embedding(x).flatten(2).transpose(1, 2).contiguous()
    temb, proj, context, _ = t.condition_embedder(timestep, context, None, timestep_seq_len=None)
    return tokens, (context, proj.unflatten(1, (6, -1)), rotary), temb, (b, f // p_t, h // p_h, w // p_w)


def _epilogue(t, tokens: torch.Tensor, temb: torch.Tensor, grid: tuple[int, ...]) -> torch.Tensor:
    """WanTransformer3DModel.forward after its blocks: tokens (B, L, D) -> velocity (B, C, T', H', W')."""
    shift, scale = (t.scale_shift_table.to(temb.device) + temb.unsqueeze(1)).chunk(2, dim=1)
    tokens = (t.norm_out(tokens.float()) * (1 + scale) + shift).type_as(tokens)
    tokens = t.proj_out(tokens)
    p_t, p_h, p_w = t.config.patch_size
    b, f, h, w = grid
    out = tokens.reshape(b, f, h, w, p_t, p_h, p_w, -1).permute(0, 7, 1, 4, 2, 5, 3, 6)
    return out.flatten(6, 7).flatten(4, 5).flatten(2, 3)


class CachedWanTransformer:
    """A `WanTransformer3DModel` with a cache policy, for one sampling run and one guidance branch.

    `spec`: the policy (None: compute everything, e.g. to calibrate). `num_steps`: the run's
    steps (MagCache's retention). `ratios`: MagCache's calibrated ratios, one per step.
    `record`: keep the magnitude ratios of this run (`recorded`). Counts: `computed`, `skipped`.
    """

    def __init__(self, transformer, spec: CacheSpec | None, num_steps: int, ratios: list[float] | None = None,
                 record: bool = False):
        name = type(transformer).__name__
        if name != "WanTransformer3DModel":
            raise ValueError(f"`cache` works on WanTransformer3DModel only, but the model's transformer is {name}; "
                             "drop the +fbcache / +magcache modifier.")
        if spec is not None and spec.kind == "magcache" and (ratios is None or len(ratios) != num_steps):
            raise ValueError(f"`ratios` must hold one MagCache ratio per step ({num_steps}) but holds "
                             f"{None if ratios is None else len(ratios)}.")
        self.transformer, self.spec, self.num_steps, self.ratios, self.record = transformer, spec, num_steps, ratios, \
            record
        self.config, self.dtype = transformer.config, transformer.dtype
        self.step = self.computed = self.skipped = 0
        self.tail: torch.Tensor | None = None  # cached residual of the skippable blocks (B, L, D)
        self.first: torch.Tensor | None = None  # fbcache: block 0's residual at the last computed step
        self.acc_ratio, self.acc_err, self.acc_steps = 1.0, 0.0, 0
        self.previous_norm: torch.Tensor | None = None
        self.recorded: list[float] = []

    def __call__(self, hidden_states: torch.Tensor, timestep: torch.Tensor, encoder_hidden_states: torch.Tensor,
                 return_dict: bool = False, **unsupported) -> tuple[torch.Tensor]:
        if unsupported or timestep.ndim != 1:
            raise ValueError(f"`CachedWanTransformer` takes a (B,) timestep and text states only but got timestep "
                             f"of shape {tuple(timestep.shape)} and {sorted(unsupported)}.")
        t = self.transformer
        tokens, extra, temb, grid = _prologue(t, hidden_states, timestep, encoder_hidden_states)
        kind = self.spec.kind if self.spec is not None else None
        if kind == "fbcache":
            after_first = t.blocks[0](tokens, *extra)
            residual = after_first - tokens
            if self._fb_reuse(residual):
                out = after_first + self.tail
            else:
                out = self._run(t.blocks[1:], after_first, extra)
                self.first = residual
        elif kind == "magcache" and self._mag_reuse():
            out = tokens + self.tail
        else:
            out = self._run(t.blocks, tokens, extra)
        self.step += 1
        return (_epilogue(t, out, temb, grid),)

    def _run(self, blocks, start: torch.Tensor, extra: tuple) -> torch.Tensor:
        h = start
        for block in blocks:
            h = block(h, *extra)
        self.tail = h - start
        self.computed += 1
        if self.record:
            norm = self.tail.float().norm(dim=-1)  # (B, L)
            ratio = 1.0 if self.previous_norm is None else float((norm / self.previous_norm).mean())
            self.recorded.append(ratio)
            self.previous_norm = norm
        return h

    def _fb_reuse(self, residual: torch.Tensor) -> bool:
        if self.first is None or self.tail is None:
            return False
        change = float((residual - self.first).abs().mean() / self.first.abs().mean().clamp_min(1e-12))
        if change < self.spec.threshold:
            self.skipped += 1
            return True
        return False

    def _mag_reuse(self) -> bool:
        if self.tail is None or self.step < math.ceil(self.spec.retention_ratio * self.num_steps):
            return False
        self.acc_ratio *= self.ratios[self.step]
        self.acc_steps += 1
        self.acc_err += abs(1.0 - self.acc_ratio)
        if self.acc_err < self.spec.threshold and self.acc_steps <= self.spec.max_skip_steps:
            self.skipped += 1
            return True
        self.acc_ratio, self.acc_err, self.acc_steps = 1.0, 0.0, 0
        return False


# ----------------------------------------------------------------------------- MagCache calibrations


def cache_dir() -> Path:
    return Path(os.environ.get("ACCVIDEO_CACHE_DIR") or Path.home() / ".cache" / "accvideo")


def calibration_key(sigmas: tuple[float, ...], use_cfg: bool) -> str:
    """Ratios depend on the schedule and the guidance branches, not on the prompt: key by both."""
    digest = hashlib.sha256(json.dumps([round(s, 8) for s in sigmas]).encode()).hexdigest()[:12]
    return f"{len(sigmas) - 1}steps-{'cfg' if use_cfg else 'nocfg'}-{digest}"


def calibration_path(model_folder: str | Path) -> Path:
    """Where a model's MagCache calibrations live: one JSON per transformer content hash."""
    return cache_dir() / "magcache" / f"{component_sha256(model_folder, 'transformer')[:16]}.json"


def read_calibration(model_folder: str | Path, key: str) -> dict | None:
    """{"cond": [ratio per step], "uncond": [...] or None, ...} or None when not calibrated."""
    path = calibration_path(model_folder)
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text()).get(key)
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"MagCache calibration {str(path)!r} is corrupt ({err}); delete it to calibrate "
                         "again.") from err


def write_calibration(model_folder: str | Path, key: str, entry: dict) -> Path:
    path = calibration_path(model_folder)
    data = json.loads(path.read_text()) if path.exists() else {}
    data[key] = entry
    atomic_write_text(path, json.dumps(data, indent=1) + "\n")
    return path
