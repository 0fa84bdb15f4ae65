"""Speed benchmark: the teacher and its students timed in one process, interleaved, per stage.

Every model is loaded once, then all are run in turn (A B C A B C ...) for `warmup` untimed
rounds and `repeats` timed rounds, so slow drift of the machine (another job, thermal
throttling) hits every model alike. Per model we report the median seconds of each stage of
`generate` (text encoder, denoising, VAE decode, total) and two speedups against the
baseline (the first model, the teacher by default), measured in the same run, side by side:
`speedup` = median total of the baseline / the model's (end to end, what a user waits) and
`denoise_speedup` = the same for the denoising stage alone (what papers headline).

A model is `NAME_OR_DIR` or `NAME_OR_DIR@STEPS`; `@STEPS` times it at another step count
(`tiny-teacher@5` is the naive few-step baseline a student has to beat). `+` modifiers follow
(`models/variants.py`): `tiny-accvideo+tinydecoder`, `tiny-teacher+fbcache@0.1`,
`tiny-teacher@20+magcache`; `decoder` and `cache` columns say what each row ran with, and
`skipped` the median transformer passes a cache skipped per video.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

log = logging.getLogger(__name__)

STAGES = ("text_encoder", "denoising", "vae_decode", "total")
TEACHER = "tiny-teacher"
STUDENTS = ("tiny-accvideo", "tiny-gpd")  # bundled students, once they exist
DEFAULT_PROMPT = "a red circle moving left"
COLUMNS = ["model", "steps", "nfe", "guidance_scale", "decoder", "cache", "skipped", *(f"{s}_s" for s in STAGES),
           "speedup", "denoise_speedup"]


def parse_model_spec(spec: str) -> tuple[str, int | None]:
    """'NAME_OR_DIR[@STEPS][+MODIFIER...]' -> (name_or_dir with its modifiers, steps or None).
    The modifiers (`+tinydecoder`, `+fbcache@T`, `+magcache`) are checked when the model loads."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"`models` entries must be NAME_OR_DIR or NAME_OR_DIR@STEPS but one is {spec!r}.")
    spec = spec.strip()
    base, plus, modifiers = spec.partition("+")
    if Path(spec).expanduser().is_dir():  # a folder whose name holds '+' or '@'
        base, plus, modifiers = spec, "", ""
    name, sep, steps = base.rpartition("@")
    if not sep:
        return spec, None
    if not steps.isdigit() or int(steps) < 1 or not name:
        raise ValueError(f"`models` entry {spec!r} must be NAME_OR_DIR@STEPS with STEPS an integer >= 1 (modifiers "
                         "such as +fbcache@0.1 come after the steps).")
    return name + plus + modifiers, int(steps)


def default_models() -> list[str]:
    """The teacher plus every bundled student whose folder resolves; unresolvable ones are skipped."""
    from accvideo.models.registry import known_models, resolve_model

    names = [TEACHER] + sorted(set(known_models()) - {TEACHER})
    found = []
    for name in names:
        try:
            resolve_model(name)
        except ValueError as err:
            log.info("bench: skipping %s (%s)", name, err)
            continue
        found.append(name)
    if not found:
        raise ValueError(f"`models` default found no bundled model folder among {names}; pass `--models` "
                         "with model names or pipeline folders.")
    return found


@dataclass
class BenchResult:
    """`rows`: one row per model (columns `COLUMNS`, seconds are medians over repeats);
    `samples`: every timed run (model, repeat, stage seconds)."""

    rows: pd.DataFrame
    samples: pd.DataFrame = field(repr=False)
    prompt: str = DEFAULT_PROMPT
    seed: int = 0
    repeats: int = 5
    warmup: int = 1
    baseline: str = TEACHER

    def to_dict(self) -> dict:
        return {"prompt": self.prompt, "seed": self.seed, "repeats": self.repeats, "warmup": self.warmup,
                "baseline": self.baseline, "models": self.rows.to_dict(orient="records")}

    def to_markdown(self) -> str:
        """The rows as a GitHub table, both speedups side by side."""
        head = ["model", "steps", "NFE", "skipped", "decoder", "cache", "text enc s", "denoise s", "decode s",
                "total s", "end to end", "denoise only"]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in self.rows.itertuples():
            cache = r.cache if isinstance(r.cache, str) else ""  # pandas reads a missing one as NaN
            cells = [r.model, r.steps, r.nfe, f"{r.skipped:g}", r.decoder, cache, f"{r.text_encoder_s:.4f}",
                     f"{r.denoising_s:.4f}", f"{r.vae_decode_s:.4f}", f"{r.total_s:.4f}", f"{r.speedup:.2f}x",
                     f"{r.denoise_speedup:.2f}x"]
            lines.append("| " + " | ".join(str(c) for c in cells) + " |")
        return "\n".join(lines) + "\n"


def run_speed_bench(models: Sequence[str] | None = None, repeats: int = 5, warmup: int = 1,
                    prompt: str = DEFAULT_PROMPT, seed: int = 0, guidance_scale: float | None = None,
                    decoder: str | None = None, dtype: str = "fp32", device: str | None = None) -> BenchResult:
    """Time `models` (default: `default_models()`) interleaved; the first is the speedup baseline.
    `decoder`: "tiny" or "full" for every model (None: as each name says; see `load_model`).
    `dtype`, `device`: every model's memory options (`load_model`; e.g. "bf16", "cuda")."""
    from accvideo.generation import generate
    from accvideo.models.registry import load_model

    for name, value, low in (("repeats", repeats, 1), ("warmup", warmup, 0)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ValueError(f"`{name}` must be an integer >= {low} but is {value!r}.")
    specs = list(models) if models else default_models()
    if not specs:
        raise ValueError(f"`models` must name at least one model but is {models!r}.")
    if len(set(specs)) != len(specs):
        raise ValueError(f"`models` must not repeat an entry but is {specs}.")
    loaded = []
    for spec in specs:
        name, steps = parse_model_spec(spec)
        # loaded once, before any timing
        loaded.append((spec, load_model(name, decoder=decoder, dtype=dtype, device=device), steps))

    samples = []
    rounds = warmup + repeats
    with tqdm(total=rounds * len(loaded), desc="bench", leave=False) as bar:
        for r in range(rounds):
            for spec, pipe, steps in loaded:
                result = generate(pipe, prompt, seed=seed, num_steps=steps, guidance_scale=guidance_scale)
                if r >= warmup:
                    samples.append({"model": spec, "repeat": r - warmup, "steps": result.num_steps,
                                    "nfe": result.nfe, "guidance_scale": result.guidance_scale,
                                    "decoder": result.decoder, "cache": result.cache,
                                    "skipped": result.cache_stats.get("skipped", 0),
                                    **{f"{s}_s": result.timings[s] for s in STAGES}})
                bar.update(1)
    samples = pd.DataFrame(samples)
    rows = []
    for spec, _, _ in loaded:
        runs = samples[samples.model == spec]
        row = {"model": spec, "steps": int(runs.steps.iloc[0]), "nfe": int(runs.nfe.iloc[0]),
               "guidance_scale": float(runs.guidance_scale.iloc[0]), "decoder": runs.decoder.iloc[0],
               "cache": runs.cache.iloc[0], "skipped": float(np.median(runs.skipped))}
        row.update({f"{s}_s": float(np.median(runs[f"{s}_s"])) for s in STAGES})
        rows.append(row)
    table = pd.DataFrame(rows)
    table["speedup"] = table.total_s.iloc[0] / table.total_s
    table["denoise_speedup"] = table.denoising_s.iloc[0] / table.denoising_s
    return BenchResult(rows=table[COLUMNS], samples=samples, prompt=prompt, seed=seed, repeats=repeats,
                       warmup=warmup, baseline=specs[0])
