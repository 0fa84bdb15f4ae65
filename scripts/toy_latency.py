"""Toy latency per control: warm the caches, then time `services.toy.toy_update` for one change of each
control in turn (run from the repository root: `python scripts/toy_latency.py`)."""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from a checkout

from accvideo.app.services.toy import toy_update  # noqa: E402
from toy.api import warm_up  # noqa: E402

CHANGES = (("M 1->2", (2.0, False, -1.0, 1.0, 1000)), ("noise on", (2.0, True, -1.0, 1.0, 1000)),
           ("lower -1->-1.5", (2.0, True, -1.5, 1.0, 1000)), ("upper 1->1.5", (2.0, True, -1.5, 1.5, 1000)),
           ("points 1000->2000", (2.0, True, -1.5, 1.5, 2000)))

if __name__ == "__main__":
    start = time.perf_counter()
    warm_up()
    print(f"warm-up {time.perf_counter() - start:.1f} s")
    toy_update(1.0, False, -1.0, 1.0, 1000)  # the tab's first draw
    for label, args in CHANGES:
        start = time.perf_counter()
        toy_update(*args)
        print(f"{label}: {time.perf_counter() - start:.2f} s")
