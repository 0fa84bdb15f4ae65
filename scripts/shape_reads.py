"""How ProcBench's shape detector reads each prompted shape in a model's videos: for every model
named, the first `--num-videos` ProcBench videos of the train split (`procbench.benchmark_prompts`,
made by `procbench.generate_videos`, VAE-decoded), the count whose voted shape (`detectors.detect`)
is the prompted one.

    OMP_NUM_THREADS=1 python scripts/shape_reads.py tiny-accvideo tiny-teacher@5 tiny-teacher@50

Prints one line per model, e.g. `tiny-teacher@50 circle 32/32  square 20/32  triangle 32/32`.
"""

from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path

import torch


def main(argv: list[str] | None = None) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from accvideo.eval.detectors import detect
    from accvideo.eval.procbench import benchmark_prompts, generate_videos
    from accvideo.models.registry import load_model
    from accvideo.world import SHAPES, parse_prompt

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", help="NAME_OR_DIR[@STEPS]")
    parser.add_argument("--num-videos", type=int, default=96)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    pairs = benchmark_prompts("train", args.num_videos)  # refuses a bad --num-videos by name
    for spec in args.models:
        name, _, steps = spec.partition("@")
        videos, _ = generate_videos(load_model(name), pairs, num_steps=int(steps) if steps else None, desc=spec)
        right, seen = collections.Counter(), collections.Counter()
        for video, (prompt, _) in zip(videos, pairs):
            shape = parse_prompt(prompt)[1]
            seen[shape] += 1
            right[shape] += detect(video).shape == shape
        print(spec, "  ".join(f"{s} {right[s]}/{seen[s]}" for s in SHAPES if seen[s]), flush=True)


if __name__ == "__main__":
    main()
