"""How ProcBench's shape detector reads each prompted shape in a model's videos: for every model
named, `--num-videos` train-split videos (combination i mod the split, seed i; VAE-decoded by
`generate`), the count of videos whose voted shape (`detectors.detect`) is the prompted one.

    OMP_NUM_THREADS=1 python scripts/shape_reads.py tiny-accvideo tiny-teacher@5 tiny-teacher@50

Prints one line per model, e.g. `tiny-teacher@50  circle 33/33  square 17/33  triangle 30/30`.
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
    from accvideo.generation import generate
    from accvideo.models.registry import load_model
    from accvideo.world import SHAPES, SPLITS, prompt_for

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", help="NAME_OR_DIR[@STEPS]")
    parser.add_argument("--num-videos", type=int, default=96)
    args = parser.parse_args(argv)
    if args.num_videos < 1:
        parser.error(f"--num-videos must be >= 1 but is {args.num_videos}")
    torch.set_num_threads(1)
    combos = SPLITS["train"]
    for spec in args.models:
        name, _, steps = spec.partition("@")
        model = load_model(name)
        right, seen = collections.Counter(), collections.Counter()
        for i in range(args.num_videos):
            combo = combos[i % len(combos)]
            video = generate(model, prompt_for(*combo), seed=i, **({"num_steps": int(steps)} if steps else {})).video
            seen[combo[1]] += 1
            right[combo[1]] += detect(video).shape == combo[1]
        print(spec, "  ".join(f"{s} {right[s]}/{seen[s]}" for s in SHAPES if seen[s]), flush=True)


if __name__ == "__main__":
    main()
