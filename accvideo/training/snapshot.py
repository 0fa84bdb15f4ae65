"""A teacher pipeline from an unfinished run: the weights of its last transformer checkpoint.

A long teacher run can be evaluated while it trains (or when it must stop early) without
touching it: `python -m accvideo teacher-snapshot --run DIR` writes DIR/pipeline-stepN, a
pipeline folder that `generate`, `eval` and `world-probe` load like a finished one.

`weights="ema"` (default) is what the finished run ships. Early in a run the EMA is still
mostly its initialisation (decay 0.999 keeps 0.999^N of it: 33% at step 1100, 9% at 2400,
measured as noise-like videos here), so `weights="raw"` exports the trained weights themselves.
"""

from __future__ import annotations

import json
from pathlib import Path

from accvideo.models.registry import SAMPLING_FILE
from accvideo.training.checkpoint import load_checkpoint
from accvideo.training.hooks import EMA
from accvideo.training.recipes.teacher import TeacherTrainConfig, sampling_defaults
from accvideo.util.config import load_config
from accvideo.util.io import atomic_write_text


def export_snapshot(run: str | Path, dest: str | Path | None = None, weights: str = "ema") -> Path:
    """Assemble `run`'s init pipeline, trained VAE and last transformer checkpoint (`weights`:
    "ema" or "raw") into `dest` (default RUN/pipeline-step<N>, with a -raw suffix for raw
    weights); returns the folder."""
    if weights not in ("ema", "raw"):
        raise ValueError(f"`weights` must be 'ema' or 'raw' but is {weights!r}.")
    from diffusers import AutoencoderKLWan, WanPipeline

    run = Path(run)
    ckpt, vae_dir = run / "checkpoints" / "transformer.pt", run / "stages" / "vae"
    for path in (run / "config.yaml", vae_dir / "config.json", ckpt):
        if not path.exists():
            raise ValueError(f"`run` {str(run)!r} has no {path.relative_to(run)} yet: the transformer stage "
                             "must have saved a checkpoint.")
    cfg = load_config(TeacherTrainConfig, run / "config.yaml")
    state = load_checkpoint(ckpt)
    pipe = WanPipeline.from_pretrained(run / "stages" / "init")
    pipe.vae = AutoencoderKLWan.from_pretrained(vae_dir)
    if "modules" in state:  # the trainer loop's checkpoint: {modules, optimizers, hooks}
        ema, raw = state["hooks"]["ema"], state["modules"]["transformer"]
    else:  # a checkpoint of the teacher's own loop before it: the FlowMatchingLoss module and its EMA
        ema, raw = state["ema"], {k.removeprefix("transformer."): v for k, v in state["model"].items()}
    # an EMA with warm-up keeps its update count beside the weights (`EMA.UPDATES`); not a weight
    ema = {k: v for k, v in ema.items() if k != EMA.UPDATES}
    pipe.transformer.load_state_dict(ema if weights == "ema" else raw)
    suffix = "" if weights == "ema" else "-raw"
    dest = Path(dest) if dest is not None else run / f"pipeline-step{state['step']}{suffix}"
    pipe.save_pretrained(dest)
    sampling = {**sampling_defaults(cfg), "snapshot_step": state["step"], "total_steps": cfg.transformer.steps,
                "snapshot_weights": weights}
    atomic_write_text(dest / SAMPLING_FILE, json.dumps(sampling, indent=2))
    return dest


def add_parser(sub) -> None:
    p = sub.add_parser("teacher-snapshot", help="a pipeline from an unfinished teacher run's last checkpoint (EMA)")
    p.add_argument("--run", required=True, help="the train-teacher --out folder")
    p.add_argument("--out", default=None, help="pipeline folder to write (default RUN/pipeline-stepN[-raw])")
    p.add_argument("--weights", default="ema", choices=["ema", "raw"],
                   help="ema (what a finished run ships) or raw (the trained weights; early in a run the "
                        "EMA is still mostly the initialisation)")
    p.set_defaults(func=lambda args: print(export_snapshot(args.run, args.out, args.weights)) or 0)
