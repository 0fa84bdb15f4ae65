"""Run a tiny SynVid, AccVideo or GPD job in this process and SIGKILL it at a chosen point.

`python -m tests.helpers.killed_run SPEC.json`, where SPEC = {kind, out, teacher, kill, ...}:
- synvid: {prompts, config (SynVidConfig fields), kill: {"shard": k}}: killed half-way through
  writing shard k's temp file, which stays behind as a killed run leaves it;
- accvideo / gpd: {synvid (accvideo), overrides, kill: {"seed": s, "step": n, "when": "step" | "saving"}}:
  killed when the trainer draws the batch of step n for seed s ("step"), or inside the save after
  step n, once the new checkpoint's temp file is complete and before it takes its name ("saving").

A real `kill -9` of the process itself: no `finally`, no `except`, no atexit runs, so what is
left on disk is exactly what a power cut or an OOM kill leaves.
"""

from __future__ import annotations

import json
import os
import signal
import sys


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def run(spec: dict) -> None:
    import torch

    torch.set_num_threads(1)
    kill = spec["kill"]
    if spec["kind"] == "synvid":
        import accvideo.synvid.writer as writer
        from accvideo.synvid import SynVidConfig, generate_synvid
        from accvideo.synvid.format import shard_name

        real = writer.atomic_write_bytes

        def half_then_die(path, write):
            if os.path.basename(str(path)) == shard_name(kill["shard"]):
                def partial(f):
                    import io

                    buffer = io.BytesIO()
                    write(buffer)
                    f.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
                    f.flush()
                    _die()
                return real(path, partial)
            return real(path, write)

        writer.atomic_write_bytes = half_then_die
        generate_synvid(SynVidConfig(**spec["config"]), spec["out"], progress=False)
        return

    import accvideo.training.checkpoint as checkpoint
    import accvideo.training.trainer as trainer
    from accvideo.util.config import apply_overrides

    if kill["when"] == "step":
        real_rng = trainer._step_rng

        def rng_or_die(seed, step, micro, rank, stream=None):
            if seed == kill["seed"] and step == kill["step"]:
                _die()
            return real_rng(seed, step, micro, rank, stream)

        trainer._step_rng = rng_or_die
    else:
        real_hash = checkpoint.file_sha256
        saves = []

        def hash_or_die(path):  # called on the complete temp file, before any rename
            saves.append(path)
            if len(saves) == kill["step"]:
                _die()
            return real_hash(path)

        checkpoint.file_sha256 = hash_or_die
    if spec["kind"] == "accvideo":
        from accvideo.training.recipes.accvideo import AccVideoDistillConfig, run_accvideo

        run_accvideo(spec["teacher"], spec["synvid"], spec["out"],
                     apply_overrides(AccVideoDistillConfig(), spec["overrides"]))
    else:
        from accvideo.training.recipes.gpd import GPDDistillConfig, run_gpd

        run_gpd(spec["teacher"], spec["out"], apply_overrides(GPDDistillConfig(), spec["overrides"]))


def killed(spec: dict, repo, timeout: int = 300):
    """Run `spec` in a subprocess; returns the CompletedProcess (returncode -9 when the kill came)."""
    import subprocess
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(spec, f)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    try:
        return subprocess.run([sys.executable, "-m", "tests.helpers.killed_run", f.name], cwd=repo, env=env,
                              capture_output=True, text=True, timeout=timeout)
    finally:
        os.unlink(f.name)


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        run(json.load(f))
