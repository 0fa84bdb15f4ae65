"""`python -m accvideo world-probe`: what a model loses at few steps on its world's detail.

For one model and several step counts (the first is the reference, normally the teacher's
50), generate the ProcBench videos of a split (same prompts and seeds for every row) and
report per row:

- ProcBench `total` (with real clips of the model's own world: `world_of_model`);
- `psnr` to the reference row's videos (same prompt and seed), with a bootstrap 95% CI;
- `hf_share` and `hf_ratio` (against real clips of the same prompts and seeds);
- `blobs_drawn` (small objects clearly drawn, per frame) and `distractor_recall` = that over the
  truth (the mean distractor count of the real clips' specs), with a CI; `blobs_faint` and
  `blob_peak` (how brightly what is there is drawn).

Two more rows: `real` (the real clips themselves: the detectors' ceiling) and, with
`vae=True`, `vae` (the real clips after the model's VAE round trip: the ceiling of anything
decoded through it). See `detail.py` for the measures and docs/WORLD.md for results.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import time

import numpy as np
import pandas as pd
import torch

from accvideo.eval.detail import bootstrap_ci, detail_stats
from accvideo.eval.detectors import to_uint8
from accvideo.eval.metrics import psnr
from accvideo.eval.procbench import (
    _REAL_STREAM,
    _load,
    benchmark_prompts,
    generate_videos,
    score_videos,
    world_of_model,
)
from accvideo.world import parse_prompt, render, sample_spec

log = logging.getLogger(__name__)

REAL_PER_VIDEO = 2  # real clips per prompt and seed for the detail reference (distinct from FD's)


def _real_clips(pairs, world, per_video: int = REAL_PER_VIDEO):
    """Real clips of each (prompt, seed) as uint8 videos and their specs (a stream apart from
    ProcBench's Frechet references)."""
    videos, specs = [], []
    for prompt, seed in pairs:
        for k in range(per_video):
            spec = sample_spec(np.random.default_rng([_REAL_STREAM + 2, seed, k]), world, combo=parse_prompt(prompt))
            specs.append(spec)
            videos.append(render(spec, world))
    return videos, specs


def _detail_row(label: str, videos: list[np.ndarray], truth: float, real_hf: float,
                reference: list[np.ndarray] | None = None) -> tuple[dict, pd.DataFrame]:
    per_video = pd.DataFrame([detail_stats(v) for v in videos])
    row = {"row": label, "num_videos": len(videos)}
    for key in ("blobs_drawn", "blobs_faint", "blob_peak", "hf_share"):
        row[key] = float(per_video[key].mean())
    recall = per_video.blobs_drawn / truth
    row["distractor_recall"] = float(recall.mean()) if truth > 0 else float("nan")
    row["distractor_recall_ci"] = list(bootstrap_ci(recall)) if truth > 0 else None
    row["hf_ratio"] = row["hf_share"] / real_hf if real_hf > 0 else float("nan")
    if reference is not None:
        per_video["psnr"] = [psnr(v, r) for v, r in zip(videos, reference)]
        row["psnr"] = float(per_video.psnr.mean())
        row["psnr_ci"] = list(bootstrap_ci(per_video.psnr))
    return row, per_video


@torch.no_grad()
def reference_rows(pairs, world, vae=None) -> tuple[list[dict], list[torch.Tensor], float, float]:
    """The `real` row and, with a `vae`, its round-trip row for the (prompt, seed) pairs.
    Returns (rows, real clips (3, T, H, W) in [-1, 1], truth distractors per clip, real hf_share)."""
    real, specs = _real_clips(pairs, world)
    truth = float(np.mean([len(s.distractors) for s in specs]))
    real_u8 = [to_uint8(v) for v in real]
    real_row, _ = _detail_row("real", real_u8, truth, 1.0)
    real_hf = real_row["hf_share"]
    real_row["hf_ratio"] = 1.0
    rows = [real_row]
    if vae is not None:
        decoded = [vae.decode(vae.encode(v[None]).latent_dist.mode(), return_dict=False)[0][0] for v in real]
        row, _ = _detail_row("vae", [to_uint8(v) for v in decoded], truth, real_hf, reference=real_u8)
        rows.append(row)
    return rows, real, truth, real_hf


def run_vae_probe(vae_dir, world: str = "v2", split: str = "train", num_videos: int = 24, base_seed: int = 0
                  ) -> dict:
    """Only the `real` and `vae` rows, for a VAE folder (a run's stages/vae, before its
    transformer exists) on a named world of `WORLDS`."""
    from diffusers import AutoencoderKLWan

    from accvideo.world import world_preset

    vae = AutoencoderKLWan.from_pretrained(vae_dir).eval()
    pairs = benchmark_prompts(split, num_videos, base_seed)
    config = world_preset(world)
    rows, _, truth, _ = reference_rows(pairs, config, vae)
    return {"model": f"{vae_dir} (VAE only)", "split": split, "num_videos": num_videos, "base_seed": base_seed,
            "guidance_scale": None, "truth_distractors": truth, "world": dataclasses.asdict(config), "rows": rows}


@torch.no_grad()
def run_world_probe(model, steps: tuple[int, ...] = (50, 5, 2), split: str = "train", num_videos: int = 24,
                    base_seed: int = 0, guidance_scale: float | None = None, vae: bool = True) -> dict:
    """Rows as described in the module docstring; returns a JSON-ready dict
    (`rows`: list of dicts, `truth_distractors`: mean per clip, `world`, `model`, ...)."""
    if not steps or any(not isinstance(s, int) or s < 1 for s in steps):
        raise ValueError(f"`steps` must be a non-empty list of integers >= 1 but is {steps!r}.")
    pipe, label = _load(model)
    world = world_of_model(pipe)
    pairs = benchmark_prompts(split, num_videos, base_seed)
    prompts, seeds = [p for p, _ in pairs], [s for _, s in pairs]
    rows, _, truth, real_hf = reference_rows(pairs, world, pipe.vae if vae else None)
    reference = None
    for n in steps:
        t = time.perf_counter()
        videos, results = generate_videos(pipe, pairs, num_steps=n, guidance_scale=guidance_scale,
                                          desc=f"world-probe {n} steps")
        wall = time.perf_counter() - t
        reference = videos if reference is None else reference
        row, _ = _detail_row(f"{n} steps", videos, truth, real_hf, reference=reference)
        scores, _ = score_videos(videos, prompts, seeds, world=world)
        # ProcBench's own dimensions and the total's interval (its `distractor_recall` is ProcBench's
        # 4-clip reference; this probe's own column above uses its 2-clip one)
        row.update(steps=n, nfe=results[0].nfe, total=scores["total"], total_ci=scores["total_ci"],
                   **{k: scores[k] for k in ("semantic", "temporal", "fidelity", "detail", "motion_fidelity",
                                             "diversity") if k in scores},
                   seconds_per_video=float(np.mean([r.timings["total"] for r in results])), wall_s=wall)
        rows.append(row)
        log.info("%d steps: total %.2f, psnr %.2f, recall %.3f", n, row["total"], row.get("psnr", 0),
                 row["distractor_recall"])
    return {"model": label, "split": split, "num_videos": num_videos, "base_seed": base_seed,
            "reference_steps": steps[0], "guidance_scale": results[0].guidance_scale,
            "truth_distractors": truth, "world": dataclasses.asdict(world), "rows": rows}


_COLUMNS = (("total", "{:.2f}"), ("detail", "{:.3f}"), ("motion_fidelity", "{:.3f}"), ("diversity", "{:.3f}"),
            ("psnr", "{:.2f}"), ("distractor_recall", "{:.3f}"), ("blobs_drawn", "{:.2f}"),
            ("blobs_faint", "{:.2f}"), ("blob_peak", "{:.3f}"), ("hf_share", "{:.4f}"), ("hf_ratio", "{:.3f}"),
            ("seconds_per_video", "{:.3f}"))


def format_table(result: dict) -> str:
    """The probe as a Markdown table (blank where a row has no such figure)."""
    lines = [f"world-probe  model {result['model']}  split {result['split']}  videos {result['num_videos']}  "
             f"guidance {result['guidance_scale']}  truth distractors per clip {result['truth_distractors']:.2f}",
             "| row | " + " | ".join(c for c, _ in _COLUMNS) + " |", "|---" * (len(_COLUMNS) + 1) + "|"]
    for row in result["rows"]:
        cells = []
        for key, fmt in _COLUMNS:
            value = row.get(key)
            cell = "" if value is None or (isinstance(value, float) and not np.isfinite(value)) else fmt.format(value)
            if value is not None and row.get(f"{key}_ci"):
                lo, hi = row[f"{key}_ci"]
                cell += f" [{fmt.format(lo)}, {fmt.format(hi)}]"
            cells.append(cell)
        lines.append(f"| {row['row']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def cmd_world_probe(args: argparse.Namespace) -> int:
    steps = tuple(int(s) for s in args.steps.split(",") if s.strip())
    if args.num_videos < 1:
        raise ValueError(f"`--num-videos` must be an integer >= 1 but is {args.num_videos}.")
    if (args.model is None) == (args.vae_dir is None):
        raise ValueError(f"give exactly one of `--model` and `--vae-dir` but got {args.model!r} and {args.vae_dir!r}.")
    if args.vae_dir is not None:
        result = run_vae_probe(args.vae_dir, args.world, args.split, args.num_videos, args.seed)
    else:
        result = run_world_probe(args.model, steps, args.split, args.num_videos, args.seed, args.guidance,
                                 vae=not args.no_vae)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2, default=str)
    print(json.dumps(result, default=str) if args.json else format_table(result))
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("world-probe", help="detail lost at few steps: ProcBench, PSNR to the first step count, "
                                           "distractor recall, high-frequency ratio")
    p.add_argument("--model", default=None, help="model name or pipeline folder")
    p.add_argument("--vae-dir", default=None, help="instead of --model: only the real and VAE round-trip rows "
                                                   "of this VAE folder (e.g. RUN/stages/vae) on --world")
    p.add_argument("--world", default="v2", help="named world for --vae-dir (v1, v2)")
    p.add_argument("--steps", default="50,5,2", help="comma-separated step counts; the first is the reference")
    p.add_argument("--split", default="train")
    p.add_argument("--num-videos", type=int, default=24)
    p.add_argument("--seed", type=int, default=0, help="base seed: video i uses seed SEED + i")
    p.add_argument("--guidance", type=float, default=None, help="guidance scale (default: the model's own)")
    p.add_argument("--no-vae", action="store_true", help="skip the VAE round-trip row")
    p.add_argument("--out", default=None, help="also write the JSON here")
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    p.set_defaults(func=cmd_world_probe)
