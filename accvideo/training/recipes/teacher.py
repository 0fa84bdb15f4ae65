"""Teacher training recipe for the tiny family: the VAE first, then the transformer by flow matching.

The config and the orchestration; both stages are trainer methods (`methods/vae.py`,
`methods/flow_matching.py`) run by the one loop (`trainer.py`), the EMA of the transformer a
loop hook. Runs the same under `python` and `torchrun --nproc_per_node=N` (DDP; gloo on CPU).
Only rank 0 logs and saves. Each stage checkpoints atomically (modules, optimizer, EMA, step,
RNG, config) and `resume="auto"` continues from the last checkpoint of the unfinished stage.

Output folder layout:
    DIR/config.yaml            resolved config
    DIR/metrics.jsonl          one JSON line per logged step (stage, step, <stage>/loss, ...)
    DIR/checkpoints/*.pt       per-stage training state (vae.pt, transformer.pt)
    DIR/stages/                finished stage outputs (init pipeline, trained VAE, latents)
    DIR/pipeline/              the final diffusers pipeline folder (what `generate` loads)
    DIR/summary.json           wall times, final losses, sizes
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from accvideo.models.families import family_of
from accvideo.models.registry import SAMPLING_FILE
from accvideo.models.tiny import TinyConfig, build_pipeline
from accvideo.models.vae import normalize_latents
from accvideo.training.checkpoint import load_checkpoint, save_checkpoint
from accvideo.training.hooks import EMA
from accvideo.training.methods.flow_matching import FlowMatchingMethod
from accvideo.training.methods.vae import VAEMethod
from accvideo.training.trainer import TrainerConfig, run_training
from accvideo.util import distributed
from accvideo.util.config import save_config, to_dict
from accvideo.util.hashes import write_hashes
from accvideo.util.io import atomic_write_bytes, atomic_write_text
from accvideo.util.runs import claim_run
from accvideo.world import SPLITS, WorldConfig, make_batch

log = logging.getLogger("accvideo.train")


@dataclass
class VAEStageConfig:
    # 1000 steps. A 500-step VAE round trip scored shape 0.42 on ProcBench against 0.92 after
    # 1000 steps (corners melt), and capped its teacher at 85.4. At about 0.71 s per VAE step and
    # 0.32 s per transformer step on 2 cores, 1000 + 5500 steps fit the 45-minute budget.
    steps: int = 1000
    batch_size: int = 8
    # Full clips: the causal cache a later 4-frame chunk sees differs from the first chunk's,
    # and a VAE trained on 5 frames only drifts in frames 6-9 (seen here).
    num_frames: int = 9
    lr: float = 1e-3
    warmup_steps: int = 50
    kl_weight: float = 1e-6
    foreground_weight: float = 4.0  # the object is ~10% of pixels; without this colours wash out
    stats_clips: int = 512


@dataclass
class TransformerStageConfig:
    steps: int = 5500
    batch_size: int = 32
    lr: float = 5e-4
    warmup_steps: int = 200
    weight_decay: float = 0.01
    caption_dropout: float = 0.1  # empty prompt this often, so classifier-free guidance works
    num_clips: int = 6000  # clips rendered and encoded once, then reused
    ema_decay: float = 0.999
    # decay min(ema_decay, (1 + n) / (10 + n)) at update n: off for the bundled v1 teacher (it
    # trained without), on for v2 (configs/teacher-world-v2.yaml; short runs' EMA was mostly init)
    ema_warmup: bool = False
    grad_clip: float = 1.0
    compile: bool = False  # torch.compile the transformer for this stage (`trainer.compile`)


@dataclass
class SamplingDefaults:
    num_steps: int = 50
    guidance_scale: float = 2.5  # chosen by ProcBench on the train split (docs/EVAL.md)
    shift: float = 3.0


@dataclass
class TeacherTrainConfig:
    preset: str = "tiny"
    seed: int = 0
    split: str = "train"
    log_every: int = 50
    checkpoint_every: int = 250
    threads: int = 0  # torch threads per process; 0 = leave torch's default
    vae: VAEStageConfig = field(default_factory=VAEStageConfig)
    transformer: TransformerStageConfig = field(default_factory=TransformerStageConfig)
    sampling: SamplingDefaults = field(default_factory=SamplingDefaults)
    # Architecture and world (`model.world`, e.g. `--set model.world.num_distractors=2,3` or
    # configs/teacher-world-v2.yaml). The defaults are the bundled v1 teacher's.
    model: TinyConfig = field(default_factory=TinyConfig)

    def validate(self) -> None:
        if self.preset != "tiny":
            raise ValueError(f"`preset` must be 'tiny' (real-model presets train with distill) but is {self.preset!r}.")
        if self.split not in SPLITS:
            raise ValueError(f"`split` must be one of {list(SPLITS)} but is {self.split!r}.")
        for name, value in (("vae.steps", self.vae.steps), ("transformer.steps", self.transformer.steps),
                            ("vae.batch_size", self.vae.batch_size),
                            ("transformer.batch_size", self.transformer.batch_size)):
            if value < 1:
                raise ValueError(f"`{name}` must be >= 1 but is {value}.")
        if (self.vae.num_frames - 1) % 4 != 0:
            raise ValueError(f"`vae.num_frames` must be 4k + 1 but is {self.vae.num_frames}.")


def sampling_defaults(cfg: TeacherTrainConfig) -> dict:
    """The teacher's `accvideo_sampling.json`: steps, guidance, shift, clip size and its world."""
    tiny = cfg.model
    return {"role": "teacher", **to_dict(cfg.sampling), "height": tiny.world.height, "width": tiny.world.width,
            "num_frames": tiny.world.num_frames, "max_sequence_length": tiny.max_sequence_length,
            "world": to_dict(tiny.world)}  # evaluators render real clips of this world


@torch.no_grad()
def _encode_clips(vae, world: WorldConfig, num_clips: int, seed: int, split: str, batch: int = 64):
    """Render `num_clips` seeded clips and encode them: raw latents (N, C, T', H', W'), prompts."""
    latents, prompts = [], []
    for i, start in enumerate(range(0, num_clips, batch)):
        videos, specs = make_batch(seed * 100_003 + i, min(batch, num_clips - start), world, split)
        latents.append(vae.encode(videos).latent_dist.mode())
        prompts += [s.prompt for s in specs]
    return torch.cat(latents), prompts


def _upgrade_checkpoint(path: Path, stage: str) -> None:
    """Rewrite a checkpoint of the teacher's own loop (before it ran in the trainer loop) in the
    loop's format, so a run killed then still resumes: {model, optimizer, ema} of the stage's
    loss module become {modules, optimizers, hooks} of its method. Rank 0 only; a no-op for
    a checkpoint already in the loop's format, or none."""
    if not path.exists():
        return
    state = load_checkpoint(path)
    if "model" not in state:
        return
    if stage == "vae":  # the loss module (VAELoss, keys "vae.*") is the trainable itself
        method, modules, hooks = "vae", {"vae": state["model"]}, {}
    else:  # FlowMatchingLoss held the transformer as "transformer.*"
        weights = {k.removeprefix("transformer."): v for k, v in state["model"].items()}
        method, modules, hooks = "flow_matching", {"transformer": weights}, {"ema": state["ema"]}
    save_checkpoint(path, method=method, step=state["step"], modules=modules,
                    optimizers={stage: state["optimizer"]}, hooks=hooks, config=state["config"], rng=state["rng"])
    log.info("%s: upgraded %s to the trainer loop's checkpoint format", stage, path)


def _stage_trainer(cfg: TeacherTrainConfig, steps: int, batch_size: int, lr: float, warmup_steps: int,
                   weight_decay: float, grad_clip: float) -> TrainerConfig:
    """One stage's loop settings: the stage's own, plus the run's seed, logging and checkpoints."""
    return TrainerConfig(steps=steps, batch_size=batch_size, lr=lr, warmup_steps=warmup_steps,
                         weight_decay=weight_decay, grad_clip=grad_clip, seed=cfg.seed, log_every=cfg.log_every,
                         checkpoint_every=cfg.checkpoint_every, threads=cfg.threads)


def train_teacher(cfg: TeacherTrainConfig, out: str | Path, resume: bool = True, dry_run: bool = False) -> dict:
    """Train the tiny teacher into `out`; returns the summary dict (also written to summary.json).

    Orchestration only: build the initial pipeline, stage 1 (VAE) through the trainer loop,
    measure the latent statistics, encode the training clips once, stage 2 (transformer by
    flow matching, with an EMA hook) through the loop, export the pipeline with the EMA weights.
    """
    cfg.validate()
    info = distributed.setup()
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    out = Path(out)
    stages = out / "stages"
    tiny = cfg.model
    t_start = time.perf_counter()
    summary: dict = {"config": to_dict(cfg), "world_size": info.world_size}
    try:
        claim_run(out, "teacher", to_dict(cfg), write=info.is_main)  # before anything is written into `out`
        if info.is_main:
            out.mkdir(parents=True, exist_ok=True)
            save_config(cfg, out / "config.yaml")
            if not (stages / "init" / "model_index.json").exists():
                build_pipeline(tiny, seed=cfg.seed).save_pretrained(stages / "init")
        distributed.barrier(info)
        from diffusers import AutoencoderKLWan, WanPipeline

        pipe = WanPipeline.from_pretrained(stages / "init")
        if dry_run:
            log.info("dry run: built the pipeline and the config; exiting before training")
            return {"dry_run": True, "out": str(out)}

        # ---- stage 1: VAE -------------------------------------------------------------
        vae_dir = stages / "vae"
        if not (vae_dir / "config.json").exists():
            v = cfg.vae
            vae_world = dataclasses.replace(tiny.world, num_frames=v.num_frames)
            method = VAEMethod(pipe.vae, vae_world, cfg.split, v.kl_weight, v.foreground_weight)
            torch.manual_seed(cfg.seed + info.rank)
            if resume and info.is_main:
                _upgrade_checkpoint(out / "checkpoints" / "vae.pt", "vae")
            distributed.barrier(info)
            summary["vae"] = run_training(method, _stage_trainer(cfg, v.steps, v.batch_size, v.lr, v.warmup_steps,
                                                                 0.0, 1.0), cfg, out, resume=resume, info=info,
                                          stage="vae")
            vae = pipe.vae.eval()
            raw, _ = _encode_clips(vae, tiny.world, v.stats_clips, cfg.seed + 7, cfg.split)
            mean = raw.mean(dim=(0, 2, 3, 4))
            std = raw.std(dim=(0, 2, 3, 4)).clamp_min(1e-3)
            vae.register_to_config(latents_mean=mean.tolist(), latents_std=std.tolist())
            if info.is_main:
                vae.save_pretrained(vae_dir)
            distributed.barrier(info)
        vae = AutoencoderKLWan.from_pretrained(vae_dir).eval().requires_grad_(False)
        pipe.vae = vae

        # ---- encode the training clips once ---------------------------------------------
        latents_file = stages / "latents.pt"
        if not latents_file.exists():
            if info.is_main:
                t = time.perf_counter()
                raw, prompts = _encode_clips(vae, tiny.world, cfg.transformer.num_clips, cfg.seed, cfg.split)
                payload = {"latents": normalize_latents(vae, raw), "prompts": prompts}
                atomic_write_bytes(latents_file, lambda f: torch.save(payload, f))
                log.info("encoded %d clips in %.1fs", len(prompts), time.perf_counter() - t)
            distributed.barrier(info)
        data = torch.load(latents_file, weights_only=False)
        x_all, prompts = data["latents"], data["prompts"]
        unique = sorted(set(prompts))
        with torch.no_grad():  # every prompt once, and the empty prompt last (caption dropout)
            cond = family_of(pipe).encode(pipe, unique + [""], None, tiny.max_sequence_length, {}).cond
        prompt_index = torch.tensor([unique.index(p) for p in prompts])

        # ---- stage 2: transformer by flow matching ----------------------------------------
        t = cfg.transformer
        method = FlowMatchingMethod(pipe.transformer, x_all, cond, prompt_index, len(unique), cfg.sampling.shift,
                                    t.caption_dropout)
        ema = EMA("transformer", t.ema_decay, warmup=t.ema_warmup)
        if resume and info.is_main:
            _upgrade_checkpoint(out / "checkpoints" / "transformer.pt", "transformer")
        distributed.barrier(info)
        summary["transformer"] = run_training(
            method, dataclasses.replace(_stage_trainer(cfg, t.steps, t.batch_size, t.lr, t.warmup_steps,
                                                       t.weight_decay, t.grad_clip), compile=t.compile),
            cfg, out, resume=resume, info=info, stage="transformer", hooks=[ema])

        # ---- assemble the pipeline --------------------------------------------------------
        if info.is_main:
            pipe.transformer = ema.model.eval()
            pipe.save_pretrained(out / "pipeline")
            atomic_write_text(out / "pipeline" / SAMPLING_FILE, json.dumps(sampling_defaults(cfg), indent=2))
            write_hashes(out / "pipeline")
            summary["wall_s"] = time.perf_counter() - t_start
            summary["num_params"] = {
                "transformer": sum(p.numel() for p in ema.model.parameters()),
                "vae": sum(p.numel() for p in vae.parameters()),
                "text_encoder": sum(p.numel() for p in pipe.text_encoder.parameters()),
            }
            atomic_write_text(out / "summary.json", json.dumps(summary, indent=2, default=str))
        distributed.barrier(info)
        return summary
    finally:
        distributed.cleanup(info)
