"""ProcBench: exact, offline quality scores of a video model on the procedural world.

For a model, a step count and a prompt split, generate N videos from fixed (prompt, seed)
pairs and score them:

- semantic: colour, shape and motion direction read back by `detectors.detect` vs the prompt
  (accuracy; a video without a detectable object is wrong on all three);
- temporal: VBench flicker and object consistency (`metrics`);
- fidelity: Frechet distance to real procedural clips of the same prompts in the feature
  space of `features` ("FVD-like on our features"), mapped to [0, 1] by `exp(-FD / FD_SCALE)`;
- agreement (optional): PSNR between the model's and a reference model's video (the teacher)
  from the same prompt and seed.

- ProcBench v2 (`dimensions`): detail (small objects drawn, against the truth), motion
  fidelity (speed against the truth) and diversity (spread across seeds against the real
  clips'), and a bootstrap 95% interval `<name>_ci` for every score.

On a v1 world, total = 100 * (0.5 * semantic + 0.25 * temporal + 0.25 * fidelity), where
semantic is the mean of the three accuracies and temporal the mean of flicker and
consistency; on a world with distractors the total also weighs detail, motion fidelity and
diversity (`dimensions.WEIGHTS_V2`). Agreement is reported beside the total, not in it: it
measures distillation, not video quality.

Video i of a split has seed `base_seed + i` and the i-th prompt of `benchmark_prompts(split)`,
a fixed order that cycles through the split's combinations balancing colours, shapes and
directions, so every model is scored on the same prompts and the same initial noise.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from accvideo.eval.detail import detail_stats
from accvideo.eval.detectors import detect, to_uint8
from accvideo.eval.dimensions import NUM_RESAMPLES, Reads, aggregate, with_cis
from accvideo.eval.features import video_features
from accvideo.eval.metrics import flicker_score, object_consistency, psnr
from accvideo.world import DIRECTIONS, SPLITS, ClipSpec, WorldConfig, parse_prompt, prompt_for, render, sample_spec

log = logging.getLogger(__name__)

REAL_PER_VIDEO = 4  # real reference clips per generated video for the Frechet distance
CHANCE = {"color": 1 / 6, "shape": 1 / 3, "motion": 1 / 4}
_REAL_STREAM = 0x5EA1  # seeds the real reference clips apart from any generation seed


def _balanced_order(combos: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """Greedy order of combinations: each next one has the least-used colour + shape + direction
    so far (ties by list order), so any prefix covers the attributes about evenly."""
    remaining, counts, order = list(combos), Counter(), []
    while remaining:
        best = min(remaining, key=lambda c: sum(counts[(k, v)] for k, v in enumerate(c)))
        remaining.remove(best)
        order.append(best)
        counts.update(enumerate(best))
    return order


def check_split(split: str) -> list[tuple[str, str, str]]:
    if split not in SPLITS:
        raise ValueError(f"`split` must be one of {list(SPLITS)} but is {split!r}.")
    return SPLITS[split]


def benchmark_prompts(split: str = "train", num_videos: int = 12, base_seed: int = 0) -> list[tuple[str, int]]:
    """The fixed (prompt, seed) pairs of a split: prompt i cycles through the split's combos."""
    combos = _balanced_order(check_split(split))
    if not isinstance(num_videos, int) or isinstance(num_videos, bool) or num_videos < 1:
        raise ValueError(f"`num_videos` must be an integer >= 1 but is {num_videos!r}.")
    return [(prompt_for(*combos[i % len(combos)]), base_seed + i) for i in range(num_videos)]


def real_clips(prompt: str, seed: int, count: int = REAL_PER_VIDEO, world: WorldConfig = WorldConfig()
               ) -> tuple[list[np.ndarray], list[ClipSpec]]:
    """`count` real clips of `prompt` as uint8 (T, H, W, 3) and their specs (the truth), drawn
    from a stream keyed by `seed`."""
    combo = parse_prompt(prompt)
    specs = [sample_spec(np.random.default_rng([_REAL_STREAM, seed, k]), world, combo=combo) for k in range(count)]
    return [to_uint8(render(spec, world)) for spec in specs], specs


_REAL_READS: dict[tuple, tuple[list, list, list]] = {}
_REAL_READS_MAX = 50_000  # entries of about 1 KB (features and reads of `count` clips)


def real_clip_reads(prompt: str, seed: int, count: int, world: WorldConfig) -> tuple[list, list, list]:
    """What ProcBench reads from `real_clips(prompt, seed, count, world)`: their features, their
    `_read` dicts and their distractor counts. The clips depend on nothing but these arguments,
    and every row of a benchmark reads the same ones, so they are kept per process: a scorer's
    later rows render and read only their own videos (the real clips were about 90% of a row's
    reading). Treat the lists as read-only."""
    key = (prompt, int(seed), count, repr(world))
    found = _REAL_READS.get(key)
    if found is None:
        clips, specs = real_clips(prompt, seed, count, world)
        detections = [detect(c) for c in clips]
        found = ([video_features(c, d) for c, d in zip(clips, detections)],
                 [_read(c, d) for c, d in zip(clips, detections)], [len(spec.distractors) for spec in specs])
        if len(_REAL_READS) >= _REAL_READS_MAX:
            _REAL_READS.clear()
        _REAL_READS[key] = found
    return found


def real_videos(prompt: str, seed: int, count: int = REAL_PER_VIDEO, world: WorldConfig = WorldConfig()
                ) -> list[np.ndarray]:
    """`count` real clips of `prompt` as uint8 (T, H, W, 3), drawn from a stream keyed by `seed`."""
    return real_clips(prompt, seed, count, world)[0]


@dataclass
class ProcBenchResult:
    """Scores of one model on one split. `scores`: per-dimension scores in [0, 1] (accuracies,
    flicker, consistency, fidelity), their group means `semantic` and `temporal`, the raw
    `frechet_distance`, `total` in [0, 100] and, with a reference, `psnr` in dB.
    `videos`: one row per video (prompt, seed, truth, detection, per-video scores)."""

    model: str
    split: str
    num_steps: int | None
    nfe: int | None
    guidance_scale: float | None
    num_videos: int
    base_seed: int
    scores: dict[str, float]
    videos: pd.DataFrame = field(repr=False)
    reference: str | None = None
    timings: dict[str, float] = field(default_factory=dict)  # mean seconds per video and stage
    reads: Reads | None = field(default=None, repr=False)  # for `dimensions.paired_difference`

    @property
    def total(self) -> float:
        return self.scores["total"]

    def to_dict(self) -> dict:
        """JSON-ready summary (without the per-video rows)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in ("videos", "reads")}
        out["total"] = self.total
        out["total_ci"] = self.scores.get("total_ci")
        return out


def _read(video: np.ndarray, detection) -> dict[str, float]:
    """The per-video reads of the v2 dimensions (see `dimensions.Reads`) of a uint8 video (T, H, W, 3)."""
    stats = detail_stats(video)
    found = [f for f in detection.frames if f.found]
    frames = np.asarray(video, dtype=np.float64)
    return {"blobs": stats["blobs_drawn"], "peak": stats["blob_peak"], "hf": stats["hf_share"],
            "speed": float(np.hypot(*detection.velocity)) if detection.found else 0.0,
            "x": float(np.mean([f.centroid[0] for f in found])) if detection.found else float("nan"),
            "y": float(np.mean([f.centroid[1] for f in found])) if detection.found else float("nan"),
            "area": float(np.mean([f.area for f in found])) if detection.found else float("nan"),
            "dynamic": float(np.abs(np.diff(frames, axis=0)).mean()) / 255.0 if len(frames) > 1 else 0.0}


def score_videos(videos: list[np.ndarray], prompts: list[str], seeds: list[int] | None = None,
                 reference_videos: list[np.ndarray] | None = None, real_per_video: int = REAL_PER_VIDEO,
                 world: WorldConfig | None = None, num_resamples: int = NUM_RESAMPLES
                 ) -> tuple[dict[str, float], pd.DataFrame]:
    """Score uint8 videos (each (T, H, W, 3)) against their prompts.

    `seeds` key the real reference clips (default 0, 1, ...); `reference_videos` (same prompts
    and seeds, e.g. the teacher's) add PSNR agreement and `motion_ratio`. `world` (default v1)
    is the world of the real clips; its size follows the videos'. Returns (scores, per-video
    DataFrame); the scores hold every dimension of `dimensions.py` and, with
    `num_resamples` > 0, its bootstrap 95% interval as `<name>_ci`.
    """
    reads, table = read_videos(videos, prompts, seeds, reference_videos, real_per_video, world)
    return (with_cis(reads, num_resamples) if num_resamples > 0 else aggregate(reads)), table


def read_videos(videos: list[np.ndarray], prompts: list[str], seeds: list[int] | None = None,
                reference_videos: list[np.ndarray] | None = None, real_per_video: int = REAL_PER_VIDEO,
                world: WorldConfig | None = None) -> tuple[Reads, pd.DataFrame]:
    """The per-video reads behind `score_videos` (same arguments): (Reads, per-video DataFrame).
    Two models' reads on the same prompts and seeds pair up in `dimensions.paired_difference`."""
    if len(videos) != len(prompts) or len(videos) < 1:
        raise ValueError(f"`videos` and `prompts` must be equally long and non-empty but have lengths "
                         f"{len(videos)} and {len(prompts)}.")
    seeds = list(range(len(videos))) if seeds is None else list(seeds)
    if reference_videos is not None and len(reference_videos) != len(videos):
        raise ValueError(f"`reference_videos` must hold {len(videos)} videos but holds {len(reference_videos)}.")
    rows, features, real_features, real_reads, truth = [], [], [], [], []
    directions = list(DIRECTIONS)
    for i, (video, prompt, seed) in enumerate(zip(videos, prompts, seeds)):
        color, shape, direction = parse_prompt(prompt)
        found = detect(video)
        features.append(video_features(video, found))
        clip_features, clip_reads, clip_truth = real_clip_reads(prompt, seed, real_per_video, _world_of(video, world))
        real_features.append(clip_features)
        real_reads.append(clip_reads)
        truth.append(clip_truth)
        row = {"index": i, "prompt": prompt, "seed": seed, "color": color, "shape": shape, "direction": direction,
               "found": found.found, "detected_color": found.color, "detected_shape": found.shape,
               "detected_direction": found.direction,
               "color_ok": found.found and found.color == color, "shape_ok": found.found and found.shape == shape,
               "motion_ok": found.found and found.direction == direction,
               "flicker": flicker_score(video), "consistency": object_consistency(detection=found),
               "group": directions.index(direction), **_read(video, found)}
        if reference_videos is not None:
            row["psnr"] = psnr(video, reference_videos[i])
            row["reference_dynamic"] = _read(reference_videos[i], detect(reference_videos[i]))["dynamic"]
        rows.append(row)
    table = pd.DataFrame(rows)
    keys = list(real_reads[0][0])
    real = {k: np.array([[r[k] for r in clip_reads] for clip_reads in real_reads]) for k in keys}
    real["truth"] = np.array(truth, dtype=np.float64)
    reads = Reads(ok=table[["color_ok", "shape_ok", "motion_ok"]].to_numpy(dtype=np.float64),
                  temporal=table[["flicker", "consistency"]].to_numpy(dtype=np.float64),
                  features=np.stack(features), real_features=np.array(real_features),
                  gen={k: table[k].to_numpy(dtype=np.float64) for k in keys}, real=real,
                  group=table.group.to_numpy(), has_distractors=bool(real["truth"].sum() > 0),
                  reference_dynamic=table.reference_dynamic.to_numpy() if reference_videos is not None else None,
                  psnr=table.psnr.to_numpy() if reference_videos is not None else None)
    return reads, table


def _world_of(video: np.ndarray, world: WorldConfig | None = None) -> WorldConfig:
    """`world` (default v1) at the size of a generated video, so real references have its shape."""
    t, h, w = np.asarray(video).shape[:3]
    return dataclasses.replace(world or WorldConfig(), height=h, width=w, num_frames=t)


def world_of_model(model) -> WorldConfig:
    """The world a model (a LoadedModel) was trained on: `world` in its sampling defaults (v2
    teachers and their students record it), else v1 (the bundled models predate the field)."""
    from accvideo.util.config import from_dict

    recorded = model.sampling.get("world")
    return from_dict(WorldConfig, recorded) if recorded else WorldConfig()


def _check_steps(num_steps) -> None:
    if num_steps is not None and (not isinstance(num_steps, int) or isinstance(num_steps, bool) or num_steps < 1):
        raise ValueError(f"`steps` must be an integer >= 1 but is {num_steps!r}.")


def _load(model):
    """A model name / folder -> (LoadedModel, label); a LoadedModel passes through."""
    if isinstance(model, str | Path):
        from accvideo.models.registry import load_model

        return load_model(model), str(model)
    return model, model.label


EVAL_BATCH = 8  # videos per sampler call: 1.55x the videos per second of one at a time (eval_speed_check.py)


def generate_videos(model, pairs: list[tuple[str, int]], num_steps: int | None = None,
                    guidance_scale: float | None = None, sigmas: torch.Tensor | None = None,
                    desc: str = "generate", batch_size: int = EVAL_BATCH) -> tuple[list[np.ndarray], list]:
    """Generate one video per (prompt, seed) with `model` (a LoadedModel). Unset arguments take the
    model's sampling defaults (a student's saved `sigmas` schedule too; see `resolve_sampling`).

    `batch_size` pairs go through the sampler together: each keeps its own prompt and seed's noise,
    so a video matches the one `generate` makes alone up to float rounding (a pixel level at most,
    tested). Timings are the batch's split evenly over its videos. A model with a cache policy
    is sampled one video at a time (its skip decisions are per call)."""
    from accvideo.generation import generate, resolve_sampling

    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive integer but is {batch_size!r}.")
    spec = resolve_sampling(model, num_steps=num_steps, guidance_scale=guidance_scale, sigmas=sigmas)
    if model.cache is not None:
        batch_size = 1
    videos, results = [], []
    with tqdm(total=len(pairs), desc=desc, leave=False) as bar:
        for i in range(0, len(pairs), batch_size):
            chunk = pairs[i:i + batch_size]
            done = [generate(model, *chunk[0], spec=spec)] if len(chunk) == 1 else _generate_batch(model, chunk, spec)
            results += done
            videos += [r.video for r in done]
            bar.update(len(chunk))
    return videos, results


@torch.inference_mode()
def _generate_batch(model, chunk: list[tuple[str, int]], spec) -> list:
    """`generate` for B (prompt, seed) pairs in one sampler run: B results, timings split evenly."""
    from accvideo.generation import GenerationResult, decode, denoise, encode, prepare_noise

    start = time.perf_counter()
    conditioning = encode(model, [prompt for prompt, _ in chunk], spec)
    text_s = time.perf_counter() - start
    x_0 = denoise(model, conditioning, prepare_noise(model, [seed for _, seed in chunk], spec), spec).x_0
    denoise_s = time.perf_counter() - start - text_s
    videos = [decode(model, x_0[j:j + 1]) for j in range(len(chunk))]
    total_s = time.perf_counter() - start
    share = {"text_encoder": text_s, "denoising": denoise_s, "vae_decode": total_s - text_s - denoise_s,
             "total": total_s}
    return [GenerationResult(video=video, latents=x_0[j:j + 1].cpu(), prompt=prompt, seed=int(seed),
                             num_steps=spec.num_steps, guidance_scale=spec.guidance_scale, nfe=spec.nfe,
                             sigmas=spec.sigma_tensor(), timings={k: v / len(chunk) for k, v in share.items()},
                             embedded_guidance_scale=spec.embedded_guidance_scale, sampler=spec.sampler,
                             decoder="tiny" if model.decoder is not None else "full")
            for j, (video, (prompt, seed)) in enumerate(zip(videos, chunk))]


def run_procbench(model, num_steps: int | None = None, split: str = "train", num_videos: int = 12,
                  guidance_scale: float | None = None, base_seed: int = 0, reference=None,
                  reference_steps: int | None = None, sigmas: torch.Tensor | None = None,
                  real_per_video: int = REAL_PER_VIDEO) -> ProcBenchResult:
    """Generate `num_videos` videos of `model` (a name, a folder or a LoadedModel) on `split`
    and score them. `reference` (the teacher) adds PSNR agreement from the same prompts and
    seeds, sampled with its own defaults (or `reference_steps`)."""
    _check_steps(num_steps)
    _check_steps(reference_steps)
    pairs = benchmark_prompts(split, num_videos, base_seed)
    loaded, label = _load(model)
    videos, results = generate_videos(loaded, pairs, num_steps, guidance_scale, sigmas, desc=f"procbench {split}")
    reference_videos, reference_label = None, None
    if reference is not None:
        ref_model, reference_label = _load(reference)
        reference_videos, _ = generate_videos(ref_model, pairs, reference_steps, desc="reference")
    t = time.perf_counter()
    reads, table = read_videos(videos, [p for p, _ in pairs], [s for _, s in pairs], reference_videos,
                               real_per_video, world_of_model(loaded))
    scores = with_cis(reads)
    log.info("scored %d videos in %.1fs: total %.1f", len(videos), time.perf_counter() - t, scores["total"])
    first = results[0]
    timings = {k: float(np.mean([r.timings[k] for r in results])) for k in first.timings}
    return ProcBenchResult(model=label, split=split, num_steps=first.num_steps, nfe=first.nfe,
                           guidance_scale=first.guidance_scale, num_videos=num_videos, base_seed=base_seed,
                           scores=scores, videos=table, reference=reference_label, timings=timings, reads=reads)


@torch.no_grad()
def vae_roundtrip(vae, split: str = "train", num_videos: int = 24, base_seed: int = 0
                  ) -> tuple[dict[str, float], pd.DataFrame]:
    """Score real clips of the benchmark prompts after encode -> decode by `vae`: the ceiling
    that any generator decoding through this VAE can reach. `psnr` is against the originals."""
    pairs = benchmark_prompts(split, num_videos, base_seed)
    clips = [render(sample_spec(np.random.default_rng([_REAL_STREAM + 1, seed]), combo=parse_prompt(prompt)))
             for prompt, seed in pairs]
    decoded = [vae.decode(vae.encode(clip[None]).latent_dist.mode(), return_dict=False)[0][0] for clip in clips]
    return score_videos([to_uint8(v) for v in decoded], [p for p, _ in pairs], [s for _, s in pairs],
                        reference_videos=[to_uint8(c) for c in clips])
