"""Does each student beat the teacher at its own step count, and how far is it from the full
teacher? ProcBench on the same prompts and seeds for every model named in PAIRS (each model is
generated and read once), then per pair: both totals with their bootstrap 95% intervals, and the
paired difference A - B with its interval (`dimensions.paired_difference`; excluding 0 separates them).

    PAIRS=tiny-accvideo:tiny-teacher@5,tiny-accvideo:tiny-teacher@50
    PAIRS=$PAIRS,tiny-gpd:tiny-teacher@6,tiny-gpd:tiny-teacher@48
    OMP_NUM_THREADS=1 python scripts/separation.py --num-videos 384 --pairs $PAIRS --json runs/separation.json

Prints a markdown table (the one in docs/RESULTS.md); `--json` also writes every score.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from a checkout

from accvideo.eval.bench import parse_model_spec  # noqa: E402
from accvideo.eval.dimensions import paired_difference  # noqa: E402
from accvideo.eval.procbench import run_procbench  # noqa: E402


def parse_pairs(text: str) -> list[tuple[str, str]]:
    pairs = []
    for item in text.split(","):
        a, sep, b = item.strip().partition(":")
        if not sep or not a or not b:
            raise ValueError(f"`--pairs` entries must be A:B (model specs NAME_OR_DIR[@STEPS]) but one is {item!r}.")
        pairs.append((a, b))
    return pairs


def _ci(scores: dict, key: str = "total") -> str:
    lo, hi = scores[f"{key}_ci"]
    return f"{scores[key]:.2f} [{lo:.2f}, {hi:.2f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", required=True, help="comma-separated A:B, each a NAME_OR_DIR[@STEPS]")
    parser.add_argument("--num-videos", type=int, default=384)
    parser.add_argument("--split", default="train")
    parser.add_argument("--json", default=None, help="also write every score and difference here")
    args = parser.parse_args()
    pairs = parse_pairs(args.pairs)
    results = {}
    for spec in dict.fromkeys(m for pair in pairs for m in pair):  # each model once, in order
        name, steps = parse_model_spec(spec)
        results[spec] = run_procbench(name, num_steps=steps, split=args.split, num_videos=args.num_videos)
        print(f"{spec}: {_ci(results[spec].scores)}", file=sys.stderr)
    rows = []
    print("| A | B | A total | B total | A - B (paired) | separated |\n|---|---|---|---|---|---|")
    for a, b in pairs:
        diff = paired_difference(results[a].reads, results[b].reads)
        lo, hi = diff["total_ci"]
        verdict = "A higher" if lo > 0 else "B higher" if hi < 0 else "no"
        print(f"| {a} | {b} | {_ci(results[a].scores)} | {_ci(results[b].scores)} | "
              f"{diff['total']:+.2f} [{lo:+.2f}, {hi:+.2f}] | {verdict} |")
        rows.append({"a": a, "b": b, "difference": diff})
    if args.json:
        out = {"num_videos": args.num_videos, "split": args.split,
               "models": {k: v.to_dict() for k, v in results.items()}, "pairs": rows}
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
