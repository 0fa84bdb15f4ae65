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
    model = args.model
    if args.decoder is not None:  # the model with the chosen decoder, then scored as usual
        from accvideo.models.registry import load_model

        model = load_model(args.model, decoder=args.decoder)
    result = run_procbench(model, num_steps=args.steps, split=args.split, num_videos=args.num_videos,
                           guidance_scale=args.guidance, base_seed=args.seed, reference=args.reference,
                           reference_steps=args.reference_steps)
    versus = difference = None
    if args.versus is not None:  # the same prompts and seeds, so the two score sets pair up video by video
        from accvideo.eval.bench import parse_model_spec
        from accvideo.eval.dimensions import paired_difference

        name, steps = parse_model_spec(args.versus)
        versus = run_procbench(name, num_steps=steps, split=args.split, num_videos=args.num_videos,
                               base_seed=args.seed)
        difference = paired_difference(result.reads, versus.reads)
    if args.csv:
        _write_csv(result.videos, args.csv)
    if args.plot:
        plot_procbench(result, args.plot)
    if args.json:
        out = result.to_dict()
        if versus is not None:
            out.update(versus=versus.to_dict(), difference=difference)
        print(json.dumps(_json_safe(out), default=str))
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
    if versus is not None:
        print(f"\nversus {versus.model} ({versus.num_steps} steps, NFE {versus.nfe}) on the same prompts and seeds; "
              "difference = model - versus, paired bootstrap 95% CI (excludes 0: the two are separated)")
        print(f"{'dimension':<18}{'model':>10}{'versus':>10}{'difference':>12}  95% CI")
        for key in _SCORE_ORDER:
            if key in difference:
                lo, hi = difference[f"{key}_ci"]
                print(f"{key:<18}{_fmt(result.scores[key]):>10}{_fmt(versus.scores[key]):>10}"
                      f"{difference[key]:>+12.4f}  [{lo:+.4f}, {hi:+.4f}]")
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
                             guidance_scale=args.guidance, decoder=args.decoder, dtype=args.dtype,
                             device=args.device)
    if args.csv:
        _write_csv(result.rows, args.csv)
    if args.markdown:
        Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
        Path(args.markdown).write_text(result.to_markdown())
    if args.plot:
        plot_bench(result, args.plot)
    if args.json:
        print(json.dumps(_json_safe(result.to_dict())))
        return 0
    print(f"bench  prompt {result.prompt!r}  seed {result.seed}  warm-up {result.warmup}  repeats {result.repeats} "
          f"(interleaved; medians; speedup vs {result.baseline})")
    width = max(8, *(len(m) for m in result.rows.model)) + 2
    header = f"{'model':<{width}}{'steps':>6}{'NFE':>6}{'skipped':>8}{'decoder':>8}{'text_enc s':>12}{'denoise s':>12}"
    print(header + f"{'decode s':>10}{'total s':>10}{'end-to-end':>11}{'denoise-only':>13}")
    for row in result.rows.itertuples():
        print(f"{row.model:<{width}}{row.steps:>6}{row.nfe:>6}{row.skipped:>8g}{row.decoder:>8}{row.text_encoder_s:>12.4f}"
              f"{row.denoising_s:>12.4f}{row.vae_decode_s:>10.4f}{row.total_s:>10.4f}{row.speedup:>10.2f}x"
              f"{row.denoise_speedup:>12.2f}x")
    if args.csv:
        print(f"wrote {args.csv}")
    if args.plot:
        print(f"wrote {args.plot}")
    if args.markdown:
        print(f"wrote {args.markdown}")
    return 0


def cmd_decoder_check(args: argparse.Namespace) -> int:
    from accvideo.eval.decoder import check_decoder

    report = check_decoder(args.model, args.decoder, num_videos=args.num_videos, repeats=args.repeats,
                           num_steps=args.steps)
    print(json.dumps(report, indent=None if args.json else 2))
    return 0


def cmd_cache_sweep(args: argparse.Namespace) -> int:
    from accvideo.eval.cache_sweep import cache_variants, run_cache_sweep
    from accvideo.eval.tables import markdown_table

    def thresholds(text: str, name: str) -> list[float]:
        try:
            values = [float(t) for t in text.split(",") if t.strip()]
        except ValueError:
            values = [-1.0]
        if any(not v > 0 for v in values):
            raise ValueError(f"`{name}` must be comma-separated numbers > 0 but is {text!r}.")
        return values

    variants = cache_variants(args.model, thresholds(args.fbcache, "--fbcache"),
                              thresholds(args.magcache, "--magcache"))
    extra = [m.strip() for m in args.extra.split(",") if m.strip()]
    table = run_cache_sweep(args.model, variants, num_videos=args.num_videos, split=args.split,
                            repeats=args.repeats, extra=extra)
    if args.csv:
        _write_csv(table, args.csv)
    print(table.to_json(orient="records") if args.json else markdown_table(table.round(4)))
    return 0


def cmd_magcache_calibrate(args: argparse.Namespace) -> int:
    from accvideo.generation import calibrate_magcache, resolve_sampling
    from accvideo.models.cache import calibration_path
    from accvideo.models.registry import load_model

    model = load_model(args.model)
    spec = resolve_sampling(model, num_steps=args.steps, guidance_scale=args.guidance)
    entry = calibrate_magcache(model, spec)
    print(json.dumps({"path": str(calibration_path(model.folder)), "num_steps": spec.num_steps,
                      "cond": entry["cond"], "uncond": entry["uncond"]}))
    return 0


DECODER_HELP = ("tiny (the model's distilled decoder), full (its VAE) or a decoder folder (default: as the model "
                "name says)")


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
    p.add_argument("--decoder", default=None, help=DECODER_HELP)
    p.add_argument("--versus", default=None,
                   help="NAME_OR_DIR[@STEPS]: also score this model on the same prompts and seeds, and print "
                        "MODEL minus it with paired bootstrap 95%% intervals (e.g. tiny-teacher@5)")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("bench", help="time the teacher and students interleaved, per stage, with speedups")
    p.add_argument("--models", default=None,
                   help="comma-separated NAME_OR_DIR[@STEPS][+tinydecoder|+fbcache@T|+magcache[@T]]; the first "
                        "is the baseline (default: tiny-teacher and every bundled student present)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--prompt", default="a red circle moving left")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--guidance", type=float, default=None, help="guidance scale for all (default: each model's own)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument("--csv", default=None, help="write one row per model to this CSV file")
    p.add_argument("--plot", default=None, help="write a stage-time chart (.png/.svg/.pdf or .html)")
    p.add_argument("--markdown", default=None, help="write the table (both speedups) as GitHub markdown")
    p.add_argument("--decoder", default=None, help=DECODER_HELP + "; for every model")
    p.add_argument("--dtype", default="fp32", choices=["fp32", "bf16", "fp16"], help="every model's weights")
    p.add_argument("--device", default=None, help="cpu (default), cuda or cuda:N")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("decoder-check", help="a lightweight decoder against its VAE: PSNR and decode time")
    p.add_argument("--model", default="tiny-teacher", help="model whose samples are decoded")
    p.add_argument("--decoder", default="tiny", help="tiny (found by the VAE's hash) or a decoder folder")
    p.add_argument("--num-videos", type=int, default=8)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--steps", type=int, default=None, help="sampling steps (default: the model's own)")
    p.add_argument("--json", action="store_true", help="one line of JSON")
    p.set_defaults(func=cmd_decoder_check)

    p = sub.add_parser("cache-sweep", help="training-free caches over thresholds: speedups and ProcBench")
    p.add_argument("--model", default="tiny-teacher", help="the base model (and the speed and PSNR baseline)")
    p.add_argument("--fbcache", default="0.05,0.1,0.2", help="first-block cache thresholds")
    p.add_argument("--magcache", default="0.06,0.12,0.25", help="MagCache error thresholds")
    p.add_argument("--extra", default="", help="more models in the same run, e.g. tiny-accvideo,tiny-teacher@5")
    p.add_argument("--num-videos", type=int, default=12)
    p.add_argument("--split", default="train")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--csv", default=None)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_cache_sweep)

    p = sub.add_parser("magcache-calibrate", help="record a model's MagCache magnitude ratios for its schedule")
    p.add_argument("--model", default="tiny-teacher")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--guidance", type=float, default=None)
    p.set_defaults(func=cmd_magcache_calibrate)

    from accvideo.eval.world_probe import add_parser as add_world_probe  # world v2 detail: what few steps lose

    add_world_probe(sub)
