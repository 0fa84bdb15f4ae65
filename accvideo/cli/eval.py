"""`python -m accvideo eval` (ProcBench) and `python -m accvideo bench` (speed), registered on
the main parser by `add_parsers(sub)`."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from accvideo.eval.plots import plot_bench, plot_procbench

_SCORE_ORDER = ("color", "shape", "motion", "semantic", "flicker", "consistency", "temporal",
                "frechet_distance", "fidelity", "distractor_recall", "blob_contrast", "detail", "speed_ratio",
                "motion_fidelity", "motion_ratio", "diversity", "hf_ratio", "psnr", "total")


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1000 else f"{value:.1f}"
    return str(value)


def _write_csv(frame, path: str) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)


def _json_safe(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    return obj


def cmd_eval(args: argparse.Namespace) -> int:
    from accvideo.eval.procbench import run_procbench

    if args.num_videos < 1:
        raise ValueError(f"`--num-videos` must be an integer >= 1 but is {args.num_videos}.")
    if args.steps is not None and args.steps < 1:
        raise ValueError(f"`--steps` must be an integer >= 1 but is {args.steps}.")
    result = run_procbench(args.model, num_steps=args.steps, split=args.split, num_videos=args.num_videos,
                           guidance_scale=args.guidance, base_seed=args.seed, reference=args.reference,
                           reference_steps=args.reference_steps)
    if args.csv:
        _write_csv(result.videos, args.csv)
    if args.plot:
        plot_procbench(result, args.plot)
    if args.json:
        print(json.dumps(_json_safe(result.to_dict()), default=str))
        return 0
    print(f"ProcBench  model {result.model}  split {result.split}  videos {result.num_videos} "
          f"(seeds {result.base_seed}..{result.base_seed + result.num_videos - 1})")
    print(f"steps {result.num_steps}  NFE {result.nfe}  guidance {result.guidance_scale}"
          + (f"  reference {result.reference}" if result.reference else ""))
    print(f"{'dimension':<18}{'score':>10}  95% CI (bootstrap over videos)")
    for key in _SCORE_ORDER:
        if key in result.scores:
            ci = result.scores.get(f"{key}_ci")
            print(f"{key:<18}{_fmt(result.scores[key]):>10}" + (f"  [{_fmt(ci[0])}, {_fmt(ci[1])}]" if ci else ""))
    t = result.timings
    print(f"mean seconds per video: text encoder {t['text_encoder']:.4f}  denoising {t['denoising']:.4f}  "
          f"VAE decode {t['vae_decode']:.4f}  total {t['total']:.4f}")
    if args.csv:
        print(f"wrote {args.csv}")
    if args.plot:
        print(f"wrote {args.plot}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from accvideo.eval.bench import run_speed_bench

    models = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else None
    result = run_speed_bench(models, repeats=args.repeats, warmup=args.warmup, prompt=args.prompt, seed=args.seed,
                             guidance_scale=args.guidance)
    if args.csv:
        _write_csv(result.rows, args.csv)
    if args.plot:
        plot_bench(result, args.plot)
    if args.json:
        print(json.dumps(_json_safe(result.to_dict())))
        return 0
    print(f"bench  prompt {result.prompt!r}  seed {result.seed}  warm-up {result.warmup}  repeats {result.repeats} "
          f"(interleaved; medians; speedup vs {result.baseline})")
    width = max(8, *(len(m) for m in result.rows.model)) + 2
    header = f"{'model':<{width}}{'steps':>6}{'NFE':>6}{'text_enc s':>12}{'denoise s':>12}{'vae s':>10}"
    print(header + f"{'total s':>10}{'speedup':>9}")
    for row in result.rows.itertuples():
        print(f"{row.model:<{width}}{row.steps:>6}{row.nfe:>6}{row.text_encoder_s:>12.4f}{row.denoising_s:>12.4f}"
              f"{row.vae_decode_s:>10.4f}{row.total_s:>10.4f}{row.speedup:>8.2f}x")
    if args.csv:
        print(f"wrote {args.csv}")
    if args.plot:
        print(f"wrote {args.plot}")
    return 0


def add_parsers(sub) -> None:
    """Add the `eval` and `bench` commands to the main parser's subparsers."""
    p = sub.add_parser("eval", help="ProcBench: score a model's videos on the procedural world")
    p.add_argument("--model", default="tiny-teacher", help="model name or pipeline folder")
    p.add_argument("--steps", type=int, default=None, help="denoising steps (default: the model's own)")
    p.add_argument("--split", default="train", help="train (seen combinations) or heldout (unseen ones)")
    p.add_argument("--num-videos", type=int, default=12)
    p.add_argument("--guidance", type=float, default=None, help="guidance scale (default: the model's own)")
    p.add_argument("--seed", type=int, default=0, help="base seed: video i uses seed SEED + i")
    p.add_argument("--reference", default=None, help="model to measure PSNR agreement against (the teacher)")
    p.add_argument("--reference-steps", type=int, default=None, help="steps of the reference (default: its own)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument("--csv", default=None, help="write the per-video rows to this CSV file")
    p.add_argument("--plot", default=None, help="write a bar chart (.png/.svg/.pdf by matplotlib, .html by plotly)")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("bench", help="time the teacher and students interleaved, per stage, with speedups")
    p.add_argument("--models", default=None,
                   help="comma-separated NAME_OR_DIR[@STEPS]; the first is the baseline "
                        "(default: tiny-teacher and every bundled student present)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--prompt", default="a red circle moving left")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--guidance", type=float, default=None, help="guidance scale for all (default: each model's own)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument("--csv", default=None, help="write one row per model to this CSV file")
    p.add_argument("--plot", default=None, help="write a stage-time chart (.png/.svg/.pdf or .html)")
    p.set_defaults(func=cmd_bench)

    from accvideo.eval.world_probe import add_parser as add_world_probe  # world v2 detail: what few steps lose

    add_world_probe(sub)
