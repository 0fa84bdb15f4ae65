"""ProcBench on real clips of a world, and on the same clips degraded on purpose: the ceiling of
every dimension and how far blur, slowed motion and collapse move each one (docs/EVAL.md).

    python scripts/procbench_ceiling.py --world v2 --num-videos 96 [--json]

Real clips come from a stream apart from the scorer's own references. Degradations: `blurred`
(a [1, 2, 1] / 4 blur over H and W, 4 passes), `slowed` (every frame shown twice: half the
speed), `frozen` (the first frame held), `collapsed` (one clip per direction for every seed).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a clone without installing

from accvideo.eval import benchmark_prompts, score_videos, to_uint8  # noqa: E402
from accvideo.eval.detail import binomial_blur  # noqa: E402
from accvideo.world import WORLDS, parse_prompt, render, sample_spec  # noqa: E402

SHOWN = ("total", "semantic", "temporal", "fidelity", "detail", "distractor_recall", "blob_contrast",
         "motion_fidelity", "speed_ratio", "diversity")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--world", default="v2", choices=list(WORLDS))
    parser.add_argument("--split", default="train")
    parser.add_argument("--num-videos", type=int, default=96)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    world = WORLDS[args.world]
    pairs = benchmark_prompts(args.split, args.num_videos)
    prompts, seeds = [p for p, _ in pairs], [s for _, s in pairs]
    real = [to_uint8(render(sample_spec(np.random.default_rng([77, s]), world, combo=parse_prompt(p)), world))
            for p, s in pairs]
    first: dict[str, np.ndarray] = {}
    variants = {
        "real": real,
        "blurred": [np.round(binomial_blur(v, passes=4)).astype(np.uint8) for v in real],
        "slowed": [v[np.arange(len(v)) // 2] for v in real],
        "frozen": [np.repeat(v[:1], len(v), axis=0) for v in real],
        "collapsed": [first.setdefault(parse_prompt(p)[2], v) for p, v in zip(prompts, real)],
    }
    rows = {name: score_videos(videos, prompts, seeds, world=world)[0] for name, videos in variants.items()}
    if args.json:
        print(json.dumps({"world": args.world, "num_videos": args.num_videos, "rows": rows}))
        return
    print(f"world {args.world}, split {args.split}, {args.num_videos} videos per row; 95% bootstrap intervals")
    print("| clips | " + " | ".join(SHOWN) + " |")
    print("|---" * (len(SHOWN) + 1) + "|")
    for name, s in rows.items():
        cells = []
        for k in SHOWN:
            if k not in s:
                cells.append("")
                continue
            lo, hi = s[f"{k}_ci"]
            digits = 1 if k == "total" else 3
            cells.append(f"{s[k]:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]")
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
