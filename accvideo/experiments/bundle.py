"""Bundle a trained run into `assets/NAME`: the pipeline folder, provenance and a sample grid."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from accvideo.eval.grid import comparison_grid
from accvideo.models.registry import ASSETS, resolve_model
from accvideo.util.hashes import verify_hashes, write_hashes
from accvideo.util.io import atomic_write_text


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def bundle_run(run_dir: str | Path, name: str, command: str, dest_root: Path = ASSETS,
               extra: dict | None = None) -> Path:
    """Copy `run_dir`'s pipeline into `dest_root/name` with provenance.json (plus `extra`) and samples.png."""
    run_dir = Path(run_dir)
    source = resolve_model(run_dir)
    dest = dest_root / name
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(source, dest)
    verify_hashes(dest)  # a run's exported pipeline records its hashes: refuse to bundle a corrupt copy
    write_hashes(dest)
    summary = json.loads((run_dir / "summary.json").read_text()) if (run_dir / "summary.json").exists() else {}
    provenance = {
        "name": name,
        "command": command,
        "bundled_at_commit": git_commit(),
        "seed": summary.get("config", {}).get("seed"),
        "wall_s": summary.get("wall_s"),
        "world_size": summary.get("world_size"),
        "num_params": summary.get("num_params"),
        # `<stage>/loss` since the teacher's stages run in the one trainer loop; `loss` before
        "final_losses": {k: summary[k]["final"].get(f"{k}/loss", summary[k]["final"].get("loss"))
                         for k in ("vae", "transformer") if k in summary},
        "config": summary.get("config"),
        **(extra or {}),
    }
    atomic_write_text(dest / "provenance.json", json.dumps(provenance, indent=2))
    if (run_dir / "summary.json").exists():  # the full training summary (losses, wall time, config)
        shutil.copy(run_dir / "summary.json", dest / "training_summary.json")
    comparison_grid([(name, dest, None)], dest / "samples.png", scale=4)
    return dest


def bundle_decoder(run_dir: str | Path, command: str, dest_root: Path = ASSETS, name: str = "tiny-decoder",
                   check: dict | None = None, extra: dict | None = None) -> Path:
    """Copy a `distill decoder` run's decoder/ into `dest_root/name` with provenance.json (the run's
    summary and config, the command, the commit, the `check` of `eval.decoder.check_decoder`, plus
    `extra`)."""
    run_dir = Path(run_dir)
    source = run_dir / "decoder"
    if not (source / "decoder_info.json").exists():
        raise ValueError(f"`run` {str(run_dir)!r} holds no decoder/ (made by `python -m accvideo distill decoder`).")
    verify_hashes(source)  # refuse to bundle a corrupt copy
    dest = dest_root / name
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(source, dest)
    summary = json.loads((run_dir / "summary.json").read_text())
    provenance = {"name": name, "command": command, "bundled_at_commit": git_commit(),
                  "teacher": summary.get("teacher"), "vae_sha256": summary.get("vae_sha256"),
                  "source": summary.get("source"), "num_latents": summary.get("num_latents"),
                  "seconds": summary.get("seconds"), "heldout_psnr_db": summary.get("heldout_psnr_db"),
                  "final": summary.get("final"), "config": summary.get("config"),
                  "check": check or summary.get("check"), **(extra or {})}
    atomic_write_text(dest / "provenance.json", json.dumps(provenance, indent=2))
    return dest
