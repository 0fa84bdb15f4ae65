"""Model variants: the same loaded pipeline with another decoder or a training-free cache.

A model name may carry `+` modifiers after the base name (and its `@STEPS`, which the bench
and grid read): `tiny-accvideo+tinydecoder`, `tiny-teacher+fbcache@0.1`,
`tiny-teacher+magcache`, `tiny-teacher+magcache@0.12`, combinations such as
`tiny-teacher+fbcache@0.1+tinydecoder`. The modifiers:

- `tinydecoder`: decode with the model's lightweight decoder (`tiny_decoder.find_decoder`).
- `fbcache@T`: first-block cache with threshold T > 0 (see `models/cache.py`).
- `magcache[@T]`: MagCache with error threshold T (default `MAGCACHE_THRESHOLD`), using the
  model's calibration (made on first use, see `cache.py`).

A variant shares the cached pipeline: nothing is hooked or moved; the decoder and the cache
policy travel beside it in `LoadedModel` and `generation` applies them per call.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

MAGCACHE_THRESHOLD = 0.06  # MagCache's own default for Wan2.1
MAGCACHE_MAX_SKIP = 3  # consecutive skipped steps at most
MAGCACHE_RETENTION = 0.2  # the first 20% of steps are always computed: they set the layout
MODIFIERS = ("tinydecoder", "fbcache@T", "magcache[@T]")


@dataclass(frozen=True)
class CacheSpec:
    """A training-free cache policy. kind: "fbcache" | "magcache"; threshold: FBCache's relative
    change of the first block's residual, or MagCache's accumulated error budget."""

    kind: str
    threshold: float
    max_skip_steps: int = MAGCACHE_MAX_SKIP
    retention_ratio: float = MAGCACHE_RETENTION

    @property
    def label(self) -> str:
        return f"{self.kind}@{self.threshold:g}"


@dataclass(frozen=True)
class Variant:
    """What the `+` modifiers of a name ask for. decoder: None (the model's VAE) or "tiny"."""

    decoder: str | None = None
    cache: CacheSpec | None = None

    @property
    def suffix(self) -> str:
        cache = self.cache
        default = cache is not None and cache.kind == "magcache" and cache.threshold == MAGCACHE_THRESHOLD
        parts = ([cache.kind if default else cache.label] if cache else []) + \
            (["tinydecoder"] if self.decoder == "tiny" else [])
        return "".join(f"+{p}" for p in parts)


def _threshold(text: str, spec: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"model {spec!r}: the cache threshold must be a number > 0 but is {text!r}.")
    return value


def split_variant(name: str | Path) -> tuple[str | Path, Variant]:
    """'BASE+mod+mod' -> (BASE, Variant). A Path, an existing folder or a name without '+' is a
    plain model. Raises ValueError naming the modifier and the accepted ones."""
    if isinstance(name, Path) or "+" not in str(name) or Path(str(name)).expanduser().is_dir():
        return name, Variant()
    base, *mods = str(name).split("+")
    decoder, cache = None, None
    for mod in mods:
        kind, sep, value = mod.partition("@")
        if kind == "tinydecoder" and not sep and decoder is None:
            decoder = "tiny"
        elif kind == "fbcache" and sep and cache is None:
            cache = CacheSpec("fbcache", _threshold(value, str(name)))
        elif kind == "magcache" and cache is None:
            cache = CacheSpec("magcache", _threshold(value, str(name)) if sep else MAGCACHE_THRESHOLD)
        else:
            raise ValueError(f"model {str(name)!r}: modifier {mod!r} must be one of {list(MODIFIERS)}, each at most "
                             "once and one cache at most.")
    if not base:
        raise ValueError(f"model {str(name)!r} must start with a model name or folder before '+'.")
    return base, Variant(decoder=decoder, cache=cache)
