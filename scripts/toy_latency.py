"""Toy latency per control: warm the caches as the app does at start, then time `services.toy.toy_update`
for one change of each control of the Toy tab in turn (run from the repository root:
`OMP_NUM_THREADS=1 python scripts/toy_latency.py`). Every change is a value the process has not seen,
except where the label says so, so it is answered by computing, not from the cache of an earlier call."""

import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from a checkout

from accvideo.app.services import toy as service  # noqa: E402

# (label, (M, noise_mismatch, lower, upper, num_points)): one control changes per row.
CHANGES = (
    ("M 1 -> 1.35 (a new M)", (1.35, False, -1.0, 1.0, 1000)),
    ("M 1.35 -> 2 (a Fig. 2f M)", (2.0, False, -1.0, 1.0, 1000)),
    ("noise switch on", (2.0, True, -1.0, 1.0, 1000)),
    ("lower -1 -> -1.5", (2.0, True, -1.5, 1.0, 1000)),
    ("upper 1 -> 1.5", (2.0, True, -1.5, 1.5, 1000)),
    ("sample count 1000 -> 2000", (2.0, True, -1.5, 1.5, 2000)),
    ("M 2 -> 0.65 (new positions and count)", (0.65, True, -1.5, 1.5, 2000)),
    ("noise switch off (new positions and count)", (0.65, False, -1.5, 1.5, 2000)),
    ("lower -1.5 -> -0.3 (typed)", (0.65, False, -0.3, 1.5, 2000)),
    ("upper 1.5 -> 2.9 (typed)", (0.65, False, -0.3, 2.9, 2000)),
    ("sample count 2000 -> 5000", (0.65, False, -0.3, 2.9, 5000)),
    ("sample count 5000 -> 200", (0.65, False, -0.3, 2.9, 200)),
)

if __name__ == "__main__":
    print(f"torch threads: {torch.get_num_threads()}")
    start = time.perf_counter()
    # what app.py runs at start (older checkouts warmed only the default sliders)
    warm = getattr(service, "warm_up_toy", None) or __import__("toy.api", fromlist=["warm_up"]).warm_up
    warm()
    print(f"warm-up {time.perf_counter() - start:.1f} s")
    service.toy_update(1.0, False, -1.0, 1.0, 1000)  # the tab's first draw
    for label, args in CHANGES:
        start = time.perf_counter()
        service.toy_update(*args)
        print(f"{label}: {time.perf_counter() - start:.2f} s")
