"""Fingerprints of the bundled models' videos: sha256 of the uint8 video and of the final latents for
4 prompts and seeds through each bundled model, on one thread (the VAE's float sums depend on the
thread count; the latents do not).

    python scripts/bundled_video_hashes.py            # print them
    python scripts/bundled_video_hashes.py --check    # compare with tests/data/bundled_video_hashes.json

A refactor must leave them unchanged; retraining the bundled models changes them, and then the
file is rewritten with `--write` in the same commit as the new assets.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "data" / "bundled_video_hashes.json"
MODELS = ("tiny-teacher", "tiny-accvideo", "tiny-gpd")
PROMPTS = ("a red circle moving left", "a blue square moving up", "a green triangle moving right",
           "a yellow circle moving down")


def fingerprints() -> dict[str, str]:
    sys.path.insert(0, str(ROOT))
    from accvideo.generation import generate
    from accvideo.models.registry import load_model

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = {}
        for name in MODELS:
            model = load_model(name)
            for seed, prompt in enumerate(PROMPTS):
                result = generate(model, prompt, seed=seed)
                video = hashlib.sha256(result.video.tobytes()).hexdigest()[:16]
                latents = hashlib.sha256(result.latents.numpy().tobytes()).hexdigest()[:16]
                out[f"{name}|{prompt}|{seed}"] = f"{video} {latents}"
        return out
    finally:
        torch.set_num_threads(threads)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    found = fingerprints()
    if args.write:
        GOLDEN.write_text(json.dumps(found, indent=1) + "\n")
    if args.check:
        golden = json.loads(GOLDEN.read_text())
        changed = sorted(k for k in golden if golden[k] != found.get(k))
        print(json.dumps({"checked": len(golden), "changed": changed}, indent=1))
        return 1 if changed else 0
    print(json.dumps(found, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
