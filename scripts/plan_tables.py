"""The memory-plan tables of docs/GPU.md: `python scripts/plan_tables.py [--recalibrate]`.

Prints one markdown table per preset (configs/wan2.1-t2v-1.3b/*.yaml) at 8 x 80 GB, and the
AccVideo preset at 24 GB. `--recalibrate` first measures the preset architecture and the bundled
tiny teacher's again on this CPU and rewrites accvideo/training/plan_calibration.json (about two
minutes on 2 cores). The tiny teacher's figures ship so that a launch checked against a memory
budget (`--gpu-mem`) does not first measure it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from accvideo.training.calibrate import CACHE, calibration  # noqa: E402
from accvideo.training.plan import arch_of, plan_config  # noqa: E402

PRESETS = REPO / "configs" / "wan2.1-t2v-1.3b"
RUNS = [("synvid.yaml", 8, 80), ("accvideo.yaml", 8, 80), ("gpd.yaml", 8, 80), ("accvideo.yaml", 8, 24)]


def table(result: dict) -> str:
    rows = [f"| {part} | {gb:.2f} |" for part, gb in result["parts_gb"].items()]
    change = result["change"]
    verdict = "fits" if result["fits"] else (
        f"does not fit; change {', '.join(f'`{c}`' for c in change['settings'])} (peak {change['peak_gb']:.2f} GB)"
        if change else "does not fit, and no setting the plan knows makes it fit")
    return "\n".join([f"`python -m accvideo plan {result['config']} --gpus {result['gpus']} --gpu-mem "
                      f"{result['gpu_mem_gb']:g}` ({result['frames']} x {result['height']}x{result['width']}, "
                      f"{result['tokens']:,} tokens per clip)", "", "| part | GB per GPU |", "| --- | --- |", *rows,
                      f"| **peak** | **{result['peak_gb']:.2f}** |",
                      f"| needed (x1.1 + 1.5 GB) | {result['needed_gb']:.2f} |", "", f"Verdict: {verdict}.", ""])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--recalibrate", action="store_true")
    args = parser.parse_args()
    if args.recalibrate:
        for arch in (arch_of("wan2.1-t2v-1.3b"), arch_of(str(REPO / "assets" / "tiny-teacher"))):
            for dtype in ("bf16", "fp32"):
                calibration(arch.class_name, arch.config, dtype, arch.text_len, recalibrate=True, store=CACHE)
    for name, gpus, mem in RUNS:
        print(table(plan_config(str((PRESETS / name).relative_to(REPO)), gpus, mem, root=REPO)))


if __name__ == "__main__":
    main()
