"""Command line: `python -m accvideo <command> ...` (also under `torchrun` for training)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path


def _setup_logging() -> None:
    rank = int(os.environ.get("RANK", "0"))
    logging.basicConfig(level=logging.INFO if rank == 0 else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    for noisy in ("diffusers", "transformers", "httpx"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


def cmd_train_teacher(args: argparse.Namespace) -> int:
    from accvideo.training.recipes.teacher import TeacherTrainConfig, train_teacher
    from accvideo.util.config import load_config

    overrides = list(args.set or [])
    if args.preset:
        overrides.append(f"preset={args.preset}")
    cfg = load_config(TeacherTrainConfig, args.config, overrides)
    out = Path(args.out)
    if args.resume == "never" and (out / "checkpoints").exists():
        raise ValueError(f"`--out` {str(out)!r} already holds a run; pass `--resume auto` or choose a new folder.")
    summary = train_teacher(cfg, out, resume=args.resume == "auto", dry_run=args.dry_run)
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps({k: v for k, v in summary.items() if k != "config"}, indent=2, default=str))
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from accvideo.generation import generate
    from accvideo.media import write_mp4
    from accvideo.models.registry import load_model
    from accvideo.models.tiny import check_prompt

    if args.out is not None:  # checked before any work: a wrong path must not cost a generation
        if Path(args.out).suffix.lower() != ".mp4":
            raise ValueError(f"`--out` must be a path ending in .mp4 but is {args.out!r}.")
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    pipe = load_model(args.model, dtype=args.dtype, device=args.device, offload=args.offload,
                      vae_tiling=args.vae_tiling, decoder=args.decoder)
    words = check_prompt(pipe, args.prompt)
    if not words.ok:  # a warning, not an error: the video is still made, but the user should know why it is off
        print(f"warning: {words.message(f'model {args.model!r}')}", file=sys.stderr)
    import torch

    on_gpu = torch.cuda.is_available()
    if on_gpu:  # the peak of this generation alone, for the memory figures of docs/GPU.md
        torch.cuda.reset_peak_memory_stats()
    result = generate(pipe, args.prompt, seed=args.seed, num_steps=args.steps, guidance_scale=args.guidance,
                      num_frames=args.frames, height=args.height, width=args.width,
                      embedded_guidance_scale=args.embedded_guidance, sampler=args.sampler)
    peak_gb = torch.cuda.max_memory_allocated() / 1e9 if on_gpu else None
    if args.out:
        write_mp4(result.video, args.out, size=args.size)
    t = result.timings
    if args.json:
        print(json.dumps({"model": str(pipe.folder), "prompt": result.prompt, "seed": result.seed,
                          "steps": result.num_steps, "nfe": result.nfe, "guidance_scale": result.guidance_scale,
                          "embedded_guidance_scale": result.embedded_guidance_scale, "sampler": result.sampler,
                          "decoder": result.decoder, "cache": result.cache, "cache_stats": result.cache_stats,
                          "peak_gpu_memory_gb": peak_gb,
                          "timings_s": t, "out": args.out}))
    else:
        print(f"model {pipe.folder}  prompt {result.prompt!r}  seed {result.seed}")
        print(f"steps {result.num_steps}  NFE {result.nfe}  guidance {result.guidance_scale}")
        print(f"{'stage':<14}{'seconds':>10}{'share':>9}")
        print(f"decoder {result.decoder}" + (f"  cache {result.cache} {result.cache_stats}" if result.cache else ""))
        for stage in ("text_encoder", "denoising", "vae_decode"):
            print(f"{stage:<14}{t[stage]:>10.4f}{100 * t[stage] / t['total']:>8.1f}%")
        print(f"{'total':<14}{t['total']:>10.4f}")
        if args.out:
            print(f"wrote {args.out}")
    return 0


def cmd_bundle(args: argparse.Namespace) -> int:
    from accvideo.experiments.bundle import bundle_decoder, bundle_run

    if (Path(args.run) / "decoder" / "decoder_info.json").exists():  # a `distill decoder` run
        command = args.command_line or f"python -m accvideo distill decoder --out {args.run}"
        dest = bundle_decoder(args.run, command, name=args.name)
        print(f"bundled {args.run}/decoder as {dest} (provenance.json)")
        return 0

    command = args.command_line or f"python -m accvideo train-teacher --preset tiny --out {args.run}"
    dest = bundle_run(args.run, args.name, command)
    print(f"bundled {args.run} as {dest} (provenance.json, samples.png)")
    return 0


def cmd_ablation(args: argparse.Namespace) -> int:
    from accvideo.experiments.ablation import run_ablation, run_gpd_ablation

    def counts(text: str, name: str) -> tuple[int, ...]:
        parts = [c.strip() for c in text.split(",") if c.strip()]
        if not all(c.isdigit() for c in parts):
            raise ValueError(f"`{name}` must be comma-separated integers but is {text!r}.")
        return tuple(int(c) for c in parts)

    if args.method == "gpd":
        table = run_gpd_ablation(args.teacher, args.out, counts(args.schedule, "--schedule"),
                                 counts(args.stage_steps, "--stage-steps"), split=args.split,
                                 num_videos=args.num_videos, overrides=args.set, full_run=args.full_run,
                                 one_jump_steps=args.one_jump_steps)
        report = Path(args.out) / "gpd_ablation.md"
    else:
        if not args.synvid:
            raise ValueError("`--synvid` is required for `ablation --method accvideo`.")
        table = run_ablation(args.teacher, args.synvid, args.out, num_key_steps=args.m,
                             frontier=counts(args.frontier, "--frontier"), steps=args.steps, split=args.split,
                             num_videos=args.num_videos, overrides=args.set, frontier_steps=args.frontier_steps)
        report = Path(args.out) / "ablation.md"
    print(report.read_text())
    if args.json:
        print(table.to_json(orient="records"))
    return 0


def cmd_grid(args: argparse.Namespace) -> int:
    from accvideo.eval.bench import parse_model_spec
    from accvideo.eval.grid import comparison_grid

    specs = [s.strip() for s in args.models.split(",") if s.strip()]
    if not specs:
        raise ValueError(f"`--models` must list at least one NAME_OR_DIR[@STEPS] but is {args.models!r}.")
    columns = []
    for spec in specs:
        name, steps = parse_model_spec(spec)
        columns.append((spec if steps is None else f"{name}, {steps} steps", name, steps))
    print(comparison_grid(columns, args.out, seed=args.seed))
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    from accvideo.experiments.reproduce import StageLog, run_reproduce

    only = tuple(s.strip() for s in args.stages.split(",") if s.strip()) if args.stages else ()
    command = "python -m accvideo " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["reproduce"] else ""
    data = run_reproduce(args.out, args.preset, args.results, args.bundle_dir, only, command, jobs=args.jobs,
                         side=args.side_process, compile=args.compile)
    walls = {s: v.get("wall_s") for s, v in data["stages"].items()}
    print(json.dumps({"stages_wall_s": walls, "pipeline_wall_s": round(StageLog(Path(args.out)).pipeline_wall(), 1)},
                     indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m accvideo", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train-teacher", help="train the tiny teacher (VAE, then transformer by flow matching)")
    p.add_argument("--preset", default="tiny")
    p.add_argument("--out", required=True, help="run folder; the pipeline lands in OUT/pipeline")
    p.add_argument("--config", help="YAML file with TeacherTrainConfig fields")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="dotted override, e.g. transformer.steps=100")
    p.add_argument("--resume", choices=["auto", "never"], default="auto")
    p.add_argument("--dry-run", action="store_true", help="build everything, then exit")
    p.set_defaults(func=cmd_train_teacher)

    p = sub.add_parser("generate", help="generate one video and print per-stage timing")
    p.add_argument("--model", default="tiny-teacher", help="model name or pipeline folder")
    p.add_argument("--prompt", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=None, help="denoising steps (default: the model's own)")
    p.add_argument("--guidance", type=float, default=None)
    p.add_argument("--frames", type=int, default=None)
    p.add_argument("--height", type=int, default=None)
    p.add_argument("--width", type=int, default=None)
    p.add_argument("--size", type=int, default=256, help="long side of the written mp4 in pixels")
    p.add_argument("--out", default=None, help="mp4 path")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument("--embedded-guidance", type=float, default=None, help="HunyuanVideo's embedded guidance scale")
    p.add_argument("--sampler", default=None, choices=["euler", "unipc"],
                   help="ODE solver (default: the model's own; AccVideo-Wan's authors sample with unipc)")
    # memory options for real models on a GPU (docs/GPU.md)
    p.add_argument("--dtype", default="fp32", choices=["fp32", "bf16", "fp16"])
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--offload", default="none", choices=["none", "model", "sequential"])
    p.add_argument("--vae-tiling", action=argparse.BooleanOptionalAction, default=None,
                   help="decode in tiles (default: the model's own; on for the real HunyuanVideo models)")
    p.add_argument("--decoder", default=None, help="tiny (the model's distilled decoder), full (its VAE) or a "
                   "decoder folder (default: as the model name says, e.g. NAME+tinydecoder)")
    p.set_defaults(func=cmd_generate)
    p = sub.add_parser("bundle", help="copy a trained run into assets/NAME with provenance and a sample grid")
    p.add_argument("--run", required=True, help="training run folder (holding pipeline/ and summary.json)")
    p.add_argument("--name", required=True, help="bundled model name, e.g. tiny-teacher")
    p.add_argument("--command-line", default=None, help="the command that produced the run (for provenance)")
    p.set_defaults(func=cmd_bundle)

    p = sub.add_parser("ablation", help="AccVideo ablation (teacher@m, + trajectory, + adversarial) and frontier; "
                       "GPD ablation (frequency loss, progressive stages)")
    p.add_argument("--method", choices=["accvideo", "gpd"], default="accvideo")
    p.add_argument("--teacher", default="tiny-teacher")
    p.add_argument("--synvid", default=None, help="accvideo: SynVid folder holding the key states")
    p.add_argument("--out", required=True)
    p.add_argument("--m", type=int, default=5, help="accvideo: student steps of the main ablation")
    p.add_argument("--frontier", default="", help="accvideo: other student step counts, e.g. 2,3,4")
    p.add_argument("--steps", type=int, default=None, help="accvideo: distillation steps per student")
    p.add_argument("--frontier-steps", type=int, default=None, help="accvideo: steps of each frontier student")
    p.add_argument("--schedule", default="48,24,12,6", help="gpd: teacher steps, then each stage's")
    p.add_argument("--stage-steps", default="400,400,600", help="gpd: optimiser steps per stage")
    p.add_argument("--one-jump-steps", type=int, default=None, help="gpd: optimiser steps of the one-jump row "
                   "(default: the sum of --stage-steps)")
    p.add_argument("--full-run", default=None, help="gpd: reuse this finished GPD run as the full row")
    p.add_argument("--split", default="train", choices=["train", "heldout"])
    p.add_argument("--num-videos", type=int, default=32)
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override for every student's config")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_ablation)

    p = sub.add_parser("grid", help="one PNG: the same prompts and seed through several models, side by side")
    p.add_argument("--models", required=True, help="comma-separated NAME_OR_DIR[@STEPS]")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="PNG path")
    p.set_defaults(func=cmd_grid)

    p = sub.add_parser("reproduce", help="the whole pipeline: teacher, SynVid, students, decoder, eval, bench, toy, "
                       "report")
    p.add_argument("--preset", default="tiny-v2", help="tiny-v2 (the bundled world v2 models), tiny (the world v1 "
                   "bundle of docs/world-v1/) or smoke (a one-minute check)")
    p.add_argument("--out", required=True, help="work folder; rerun into it to resume")
    p.add_argument("--results", default=None, help="where RESULTS.md goes (default OUT/RESULTS.md), "
                   "its figures in a sibling results/ folder, e.g. docs/RESULTS.md")
    p.add_argument("--bundle-dir", default=None, help="also bundle tiny-teacher, tiny-accvideo, tiny-gpd and "
                   "tiny-decoder here (assets to replace the bundled models)")
    p.add_argument("--stages", default="", help="run only these stages (comma-separated), e.g. report")
    p.add_argument("--jobs", type=int, default=1, help="2: gpd, decoder and the teacher's own ProcBench rows "
                   "(teacher-eval) in a second process beside synvid and accvideo, one torch thread each")
    p.add_argument("--compile", action="store_true", help="the teacher's transformer stage and GPD under "
                   "torch.compile (docs/DISTILL.md has what it buys on a CPU)")
    p.add_argument("--side-process", action="store_true", help=argparse.SUPPRESS)  # what --jobs 2 starts
    p.set_defaults(func=cmd_reproduce)

    from accvideo.cli.distill import add_parser as add_distill

    add_distill(sub)

    from accvideo.cli.synvid import add_parser as add_synvid_parsers

    add_synvid_parsers(sub)

    from accvideo.training.snapshot import add_parser as add_snapshot_parser  # teacher-snapshot

    add_snapshot_parser(sub)

    from accvideo.cli.eval import add_parsers as add_eval_parsers  # eval (ProcBench), bench, world-probe

    add_eval_parsers(sub)

    from accvideo.cli.models import add_parsers as add_model_parsers  # models, convert, lora-export

    add_model_parsers(sub)

    from accvideo.cli.plan import add_parser as add_plan_parser  # plan (memory per GPU)

    add_plan_parser(sub)

    from accvideo.cli.launch import add_parser as add_launch_parser  # launch-command (multi-node torchrun)

    add_launch_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    _setup_logging()
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
