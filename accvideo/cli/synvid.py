"""`python -m accvideo synvid ...` and `python -m accvideo synvid-check DIR` (registered by `accvideo.cli`)."""

from __future__ import annotations

import argparse
import os


def cmd_synvid(args: argparse.Namespace) -> int:
    from accvideo.synvid import SynVidConfig, generate_synvid

    cfg = SynVidConfig(
        teacher=args.teacher, prompts=args.prompts, num_steps=args.num_steps,
        samples_per_prompt=args.samples_per_prompt, base_seed=args.base_seed, store=args.store, dtype=args.dtype,
        compute_dtype=args.compute_dtype, shard_size=args.shard_size, batch_size=args.batch_size,
        guidance_scale=args.guidance, shift=args.shift,
        num_frames=args.frames, height=args.height, width=args.width, negative_prompt=args.negative_prompt,
        videos=args.videos,
    )
    if args.config:
        # the YAML preset, with every flag given on the command line (any value other than
        # the flag's default) taking precedence
        import dataclasses

        from accvideo.util.config import load_config

        preset, default = load_config(SynVidConfig, args.config), SynVidConfig()
        for f in dataclasses.fields(SynVidConfig):
            if getattr(cfg, f.name) != getattr(default, f.name):
                setattr(preset, f.name, getattr(cfg, f.name))
        cfg = preset
    from accvideo.cli.distill import world_size
    from accvideo.training.preflight import check_plan

    # before the teacher loads; every rank holds the whole teacher, so the plan is per rank
    check_plan("synvid", cfg.teacher, cfg, world_size(), args.gpu_mem, check=not args.no_plan_check,
               size={"frames": cfg.num_frames, "height": cfg.height, "width": cfg.width})
    summary = generate_synvid(cfg, args.out, limit_shards=args.limit_shards, progress=not args.no_progress)
    if int(os.environ.get("RANK", "0")) == 0:
        print(summary.line())
    return 0


def cmd_synvid_check(args: argparse.Namespace) -> int:
    from accvideo.synvid import open_synvid

    dataset = open_synvid(args.dir)
    problems = dataset.check()
    for problem in problems:
        print(problem)
    state = "complete" if dataset.complete else f"incomplete ({dataset.config['num_samples']} expected)"
    print(f"{args.dir}: {len(dataset.shards)} shards, {len(dataset)} samples, {state}, "
          f"{len(problems)} bad shard(s)")
    return 1 if problems else 0


def add_parser(sub) -> None:
    """Register the SynVid commands on the `python -m accvideo` subparsers."""
    p = sub.add_parser("synvid", help="generate a SynVid dataset: the teacher's own trajectories (resumable)")
    p.add_argument("--teacher", default="tiny-teacher", help="teacher model name or pipeline folder")
    p.add_argument("--prompts", default="train",
                   help="preset train | heldout | all (procedural world splits) or a text file, one prompt a line")
    p.add_argument("--num-steps", type=int, default=50, help="teacher Euler steps n (AccVideo: 50)")
    p.add_argument("--samples-per-prompt", type=int, default=1, help="K; sample i = (prompt i // K, base_seed + i)")
    p.add_argument("--base-seed", type=int, default=0)
    p.add_argument("--store", default="all",
                   help="states to keep: all (n + 1) | key:M (the M + 1 key states) | explicit list like 0,10,50")
    p.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"],
                   help="storage dtype of latents and text embeddings")
    p.add_argument("--compute-dtype", default="fp32", choices=["fp32", "bf16"],
                   help="the teacher's weights and arithmetic (bf16: half the memory; on CUDA fp32 uses TF32 "
                        "matmuls either way)")
    p.add_argument("--shard-size", type=int, default=16, help="samples per shard file")
    p.add_argument("--batch-size", type=int, default=1,
                   help="seeds of one prompt generated together (1: bit-exact with `generate`; more: faster)")
    p.add_argument("--guidance", type=float, default=None, help="guidance scale (default: the teacher's own)")
    p.add_argument("--shift", type=float, default=None, help="schedule shift (default: the teacher's own)")
    p.add_argument("--frames", type=int, default=None)
    p.add_argument("--height", type=int, default=None)
    p.add_argument("--width", type=int, default=None)
    p.add_argument("--negative-prompt", default=None,
                   help="negative prompt under CFG (default: the teacher's own; Wan's default for real Wan teachers)")
    p.add_argument("--videos", action="store_true", help="also decode and write videos/sample-NNNNNN.mp4")
    p.add_argument("--limit-shards", type=int, default=None,
                   help="only shards 0..N-1 in this run (a partial run; rerun without it to finish)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--out", required=True, help="dataset folder (rerun into it to resume)")
    p.add_argument("--config", default=None, help="YAML with SynVidConfig fields (e.g. configs/*/synvid.yaml)")
    from accvideo.cli.distill import add_plan_arguments

    add_plan_arguments(p)
    p.set_defaults(func=cmd_synvid)

    p = sub.add_parser("synvid-check", help="verify every shard of a SynVid folder against its manifest")
    p.add_argument("dir")
    p.set_defaults(func=cmd_synvid_check)
