"""Compare's speedup over several clicks: call `services.compare.compare_models` (the function the
Compare button calls) CLICKS times on the bundled tiny models with the tab's defaults (first example
prompt, seed 0, the teacher's saved steps, the first two bundled students, the naive teacher at the
first student's steps) and print each click's speedups (the median of the interleaved timed rounds
the UI shows, and their range), then per model the min / median / max of that median over the clicks.
Run from the repository root: `OMP_NUM_THREADS=1 python scripts/compare_spread.py [--clicks 5]`."""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from a checkout

from accvideo.app.services.compare import (  # noqa: E402
    EXAMPLE_PROMPTS,
    REPEATS,
    compare_models,
    naive_default_steps,
    teacher_default_steps,
)
from accvideo.app.services.models import available_students  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=5)
    parser.add_argument("--teacher", default="tiny-teacher")
    args = parser.parse_args()
    students = list(available_students())[:2]  # the tab's default selection (no runs folder)
    teacher_steps = teacher_default_steps(args.teacher)
    naive_steps = naive_default_steps(students)
    print(f"teacher {args.teacher} at {teacher_steps} steps, naive at {naive_steps}, students {students}, "
          f"prompt {EXAMPLE_PROMPTS[0]!r}, seed 0, {REPEATS} interleaved rounds per click; "
          f"load average at start {os.getloadavg()[0]:.2f}")
    per_model: dict[str, list[float]] = {}
    for click in range(1, args.clicks + 1):
        t0 = time.perf_counter()
        table = compare_models(EXAMPLE_PROMPTS[0], 0, teacher_steps, students, naive_steps, teacher=args.teacher).table
        seconds = time.perf_counter() - t0
        parts = []
        for row in table.itertuples():
            if "(teacher)" in row.model:
                continue
            per_model.setdefault(row.model, []).append(row.speedup)
            parts.append(f"{row.model}: {row.speedup:.2f}x ({row.speedup_min:.2f}-{row.speedup_max:.2f})")
        print(f"click {click} ({seconds:.1f} s, load {os.getloadavg()[0]:.2f}): " + "; ".join(parts), flush=True)
    print("\n| model | min | median | max |\n|---|---|---|---|")
    for model, values in per_model.items():
        print(f"| {model} | {min(values):.2f}x | {statistics.median(values):.2f}x | {max(values):.2f}x |")


if __name__ == "__main__":
    main()
