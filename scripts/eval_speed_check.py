"""Does sampling ProcBench's videos in batches change them, and how much faster is it? The same
(prompt, seed) pairs through `procbench.generate_videos` one at a time and `--batch` at a time:
seconds for each, the largest pixel difference between the two sets, and both ProcBench totals.
Also the seconds of reading each set: the first read renders and reads the real clips, the second
finds them kept (`procbench.real_clip_reads`), as every later row of a scorer does.

    OMP_NUM_THREADS=1 python scripts/eval_speed_check.py --model tiny-teacher --steps 50 --num-videos 48

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from a checkout

import numpy as np  # noqa: E402

from accvideo.eval.dimensions import with_cis  # noqa: E402
from accvideo.eval.procbench import EVAL_BATCH, benchmark_prompts, generate_videos, read_videos, world_of_model  # noqa: E402
from accvideo.models.registry import load_model  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny-teacher")
    parser.add_argument("--steps", type=int, default=None, help="default: the model's own")
    parser.add_argument("--num-videos", type=int, default=48)
    parser.add_argument("--batch", type=int, default=EVAL_BATCH)
    parser.add_argument("--split", default="train")
    args = parser.parse_args()
    model = load_model(args.model)
    pairs = benchmark_prompts(args.split, args.num_videos)
    prompts, seeds = [p for p, _ in pairs], [s for _, s in pairs]
    out: dict = {"model": args.model, "steps": args.steps, "num_videos": args.num_videos, "batch": args.batch}
    videos = {}
    for name, batch in (("one_at_a_time", 1), ("batched", args.batch)):
        start = time.perf_counter()
        videos[name], _ = generate_videos(model, pairs, args.steps, batch_size=batch, desc=name)
        out[f"{name}_s"] = round(time.perf_counter() - start, 2)
        start = time.perf_counter()
        reads, _ = read_videos(videos[name], prompts, seeds, world=world_of_model(model))
        out[f"{name}_read_s"] = round(time.perf_counter() - start, 2)
        out[f"{name}_total"] = round(with_cis(reads)["total"], 3)
    out["speedup"] = round(out["one_at_a_time_s"] / out["batched_s"], 2)
    out["max_pixel_difference"] = max(int(np.abs(a.astype(int) - b.astype(int)).max())
                                      for a, b in zip(videos["one_at_a_time"], videos["batched"]))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
