"""The Python half of `scripts/gpu_check.sh` (issue 16): the real Wan2.1-1.3B architecture with
random weights, the tiny models' CUDA timings, and the figures table.

Subcommands (run from the repository root):
    build DIR [--cpu-smoke]       a random-init pipeline folder of the Wan2.1-T2V-1.3B architecture
    synvid --teacher DIR --out DIR --steps N
                                  one SynVid trajectory; wall time and peak GPU memory
    distill METHOD --teacher DIR --out DIR --steps N [--synvid DIR] [--torchrun]
                                  a few steps of `accvideo distill METHOD` with the Wan preset
                                  (configs/wan2.1-t2v-1.3b/METHOD.yaml); step times and peak memory
    tiny [--repeats N]            the bundled tiny models in bf16 on CUDA, timed as `bench` times them
    report DIR                    every part's output (DIR/*.out) as one table and DIR/figures.json
Each command but `report` and `cpu-smoke` prints one JSON object (and writes it to --json PATH if given).
    cpu-smoke DIR                 build at a small size, then synvid and one step of each method, on CPU

Nothing downloads: the weights are random, the text encoder is a one-layer UMT5 stand-in with
the real output width (4096), the VAE a narrow `AutoencoderKLWan` with the real latent channels
(16) and compression (4 in time, 8 in space). Only the transformer, which sets the time and the
memory the plan estimates, is the real architecture (`ARCHITECTURES` in accvideo/models/real.py).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PRESETS = REPO / "configs" / "wan2.1-t2v-1.3b"
PROMPT = "a red circle moving left"  # words of the tiny tokenizer's vocabulary: no unknown tokens
# SynVid steps: AccVideo's preset trains on m = 5 key segments (`store: key:5`), so 5 teacher steps
# is the fewest that hold them; the real 50 would take ten times as long for the same memory.
SYNVID_STEPS = 5

# Distillation overrides on top of the preset. Why each one:
#   steps / checkpoint_every: a few steps and one save at the end (a save writes ~17 GB at real size);
#   grad_accum=1: accumulation sums into the same gradient buffers, so the peak is that of one
#     micro-batch; 4 micro-batches per step would only multiply the time;
#   log_every=1: one metrics line (elapsed time, peak memory) per step;
#   AccVideo adv_start=0: the adversarial phase (discriminator heads) from the first step, the peak;
#   GPD schedule=[24]: the preset's first stage (48 -> 24) only; the later stages are smaller.
COMMON_SETS = ["trainer.grad_accum=1", "trainer.log_every=1", "trainer.warmup_steps=1"]
METHOD_SETS = {"accvideo": ["method.adv_start=0"], "gpd": ["method.schedule=[24]"]}
# CPU smoke: the small pipeline's sampling defaults (5 frames = 2 latent frames, 32x32) and
# settings that keep one step within seconds on a busy CPU
SMOKE_SETS = {"accvideo": ["trainer.parallel=ddp", "method.head_hidden=16"],
              "gpd": ["trainer.parallel=ddp", "method.teacher_steps=4", "method.schedule=[2]",
                      f"method.prompts={PRESETS / 'prompts.txt'}"]}

WAN = "wan2.1-t2v-1.3b"


def build(out: Path, cpu_smoke: bool = False, seed: int = 0) -> Path:
    """Write a random-init WanPipeline folder with the Wan2.1-1.3B transformer (or, for the CPU
    smoke, the same classes at a small width and depth) and its sampling defaults."""
    import torch
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanPipeline, WanTransformer3DModel
    from transformers import UMT5Config, UMT5EncoderModel

    from accvideo.models.real import ARCHITECTURES, REAL_MODELS
    from accvideo.models.registry import SAMPLING_FILE
    from accvideo.models.tiny import build_tokenizer

    arch = dict(ARCHITECTURES[WAN]["transformer"])
    sampling = dict(REAL_MODELS[WAN].sampling)
    if cpu_smoke:  # the same classes and the real text width, at a size a CPU runs in seconds
        arch.update(num_attention_heads=2, attention_head_dim=32, ffn_dim=128, num_layers=2)
        sampling.update(num_frames=5, height=32, width=32, max_sequence_length=16)
    torch.manual_seed(seed)
    tokenizer = build_tokenizer(sampling["max_sequence_length"])
    # Only the output width must be real (the transformer's `text_dim`, 4096 for UMT5-XXL): one
    # narrow layer keeps the 5.7 B-parameter encoder out of a check that measures the transformer.
    text_encoder = UMT5EncoderModel(UMT5Config(
        vocab_size=len(tokenizer), d_model=arch["text_dim"], d_kv=16, d_ff=64, num_layers=1, num_heads=2,
        relative_attention_num_buckets=8, relative_attention_max_distance=16, dropout_rate=0.0,
        feed_forward_proj="gated-gelu", pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)).eval()
    # Wan2.1's VAE config but 8 channels wide and one residual block per level (the real one:
    # base_dim 96, two blocks): the same 16 latent channels, 4x8x8 compression and latent statistics
    vae = AutoencoderKLWan(base_dim=8, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                           temperal_downsample=[False, True, True], scale_factor_temporal=4, scale_factor_spatial=8)
    # Built on the GPU when there is one: initialising 1.4 B parameters on one CPU core takes minutes
    device = "cuda" if torch.cuda.is_available() and not cpu_smoke else "cpu"
    with torch.device(device):
        transformer = WanTransformer3DModel(**arch)
    # the -Diffusers repos' scheduler (GPD's `shift: null` reads its flow_shift, as on the real folder)
    scheduler = UniPCMultistepScheduler(num_train_timesteps=1000, prediction_type="flow_prediction",
                                        use_flow_sigmas=True, flow_shift=3.0)
    pipe = WanPipeline(tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, transformer=transformer.cpu(),
                       scheduler=scheduler)
    out.mkdir(parents=True, exist_ok=True)
    pipe.save_pretrained(out)
    (out / SAMPLING_FILE).write_text(json.dumps(sampling, indent=2, ensure_ascii=False) + "\n")
    return out


def _cuda_peak_gb() -> float | None:
    import torch

    return torch.cuda.max_memory_allocated() / 1e9 if torch.cuda.is_available() else None


def synvid(teacher: Path, out: Path, steps: int = SYNVID_STEPS) -> dict:
    """One teacher trajectory with the preset's SynVid settings (bf16 compute, key:5 stored)."""
    import torch

    from accvideo.synvid import SynVidConfig, generate_synvid
    from accvideo.util.config import load_config

    cfg = load_config(SynVidConfig, str(PRESETS / "synvid.yaml"))
    prompts = out.parent / f"{out.name}-prompts.txt"
    prompts.parent.mkdir(parents=True, exist_ok=True)
    prompts.write_text(PROMPT + "\n")
    cfg.teacher, cfg.prompts, cfg.num_steps, cfg.compute_dtype = str(teacher), str(prompts), steps, "bf16"
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    generate_synvid(cfg, out, progress=False)
    seconds = time.perf_counter() - t0
    sampling = json.loads((teacher / "accvideo_sampling.json").read_text())
    nfe = steps * (2 if sampling.get("guidance_scale", 1.0) > 1 else 1)
    return {"what": "synvid", "steps": steps, "nfe": nfe, "seconds_with_load": seconds,
            "frames": sampling["num_frames"], "height": sampling["height"], "width": sampling["width"],
            "peak_gpu_memory_gb": _cuda_peak_gb()}


def distill_argv(method: str, teacher: Path, out: Path, steps: int, synvid_dir: Path | None,
                 cpu_smoke: bool = False) -> list[str]:
    """`python -m accvideo` arguments of a few steps of METHOD with the Wan preset."""
    sets = [f"trainer.steps={steps}", f"trainer.checkpoint_every={steps}", *COMMON_SETS, *METHOD_SETS[method],
            *(SMOKE_SETS[method] if cpu_smoke else [])]
    argv = ["distill", method, "--teacher", str(teacher), "--out", str(out),
            "--config", str(PRESETS / f"{method}.yaml")]
    if method == "accvideo":
        argv += ["--synvid", str(synvid_dir)]
    return argv + [x for s in sets for x in ("--set", s)]


def run_figures(run: Path) -> dict:
    """Step times and peak memory from a trainer run's metrics.jsonl (GPD: its one stage)."""
    files = sorted(run.glob("**/metrics.jsonl"))
    if not files:
        raise ValueError(f"`run` {str(run)!r} holds no metrics.jsonl: the distillation did not log a step.")
    records = [json.loads(line) for f in files for line in f.read_text().splitlines() if line.strip()]
    elapsed = [r["elapsed_s"] for r in records]
    step_s = [b - a for a, b in zip([0.0, *elapsed], elapsed, strict=False)]
    losses = {k: v for k, v in records[-1].items() if k.endswith("/loss")}
    return {"steps": len(records), "step_s": step_s,
            # the first step also pays for CUDA kernels' first launch and the allocator's growth
            "steady_step_s": statistics.median(step_s[1:]) if len(step_s) > 1 else step_s[0],
            "peak_gpu_memory_gb": max((r.get("peak_gpu_memory_gb") or 0.0 for r in records), default=None) or None,
            "final_losses": losses}


def distill(method: str, teacher: Path, out: Path, steps: int, synvid_dir: Path | None, torchrun: bool,
            cpu_smoke: bool = False) -> dict:
    argv = distill_argv(method, teacher, out, steps, synvid_dir, cpu_smoke)
    if torchrun:
        # one process that still starts the process group (NCCL on a GPU) and shards with FSDP2
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "1",
               "-m", "accvideo", *argv]
        env = {**os.environ, "ACCVIDEO_PROCESS_GROUP": "1"}
        # its stdout (the run summary) goes to stderr: this command's stdout is its one JSON result
        done = subprocess.run(cmd, cwd=REPO, env=env, stdout=sys.stderr)
        if done.returncode != 0:
            raise RuntimeError(f"`accvideo distill {method}` failed with exit status {done.returncode}.")
    else:
        from accvideo.cli.main import main

        if main(argv) != 0:
            raise RuntimeError(f"`accvideo distill {method}` failed (see the error above).")
    return {"what": f"distill-{method}", "torchrun": torchrun, **run_figures(out)}


def tiny(repeats: int = 3) -> dict:
    """The bundled models in bf16 on CUDA, interleaved after a warm-up, medians per stage: what
    `accvideo bench` measures, which has no --device / --dtype (its loader lives in accvideo/eval)."""
    import torch

    from accvideo.generation import generate
    from accvideo.models.registry import BUNDLED, load_model

    device = "cuda" if torch.cuda.is_available() else None
    models = {name: load_model(name, dtype="bf16", device=device) for name in sorted(BUNDLED)}
    samples: dict[str, list[dict]] = {name: [] for name in models}
    for r in range(1 + repeats):
        for name, model in models.items():
            if device:
                torch.cuda.reset_peak_memory_stats()
            result = generate(model, PROMPT, seed=0)
            if r:
                samples[name].append({**result.timings, "peak_gpu_memory_gb": _cuda_peak_gb(), "nfe": result.nfe})
    rows = {}
    for name, runs in samples.items():
        rows[name] = {k: statistics.median(s[k] for s in runs) for k in runs[0] if runs[0][k] is not None}
    return {"what": "tiny-bf16", "device": device or "cpu", "repeats": repeats, "models": rows}


def report(folder: Path) -> dict:
    """Collect what every part of the check printed (`DIR/<part>.out`: one JSON object, or a line of
    text) into DIR/figures.json, and print the figures as a markdown table."""
    figures = {}
    for path in sorted(folder.glob("*.out")):
        text = path.read_text().strip()
        try:
            figures[path.stem] = json.loads(text)
        except json.JSONDecodeError:  # e.g. SynVid's one summary line, or an empty file from a failed part
            figures[path.stem] = {"text": text.splitlines()[-1] if text else "(no output: see the .log)"}
    (folder / "figures.json").write_text(json.dumps(figures, indent=2, default=str) + "\n")
    print("| figure | value |\n| --- | --- |")
    for key, fig in figures.items():
        for name, value in _flatten(fig):
            print(f"| {key}.{name} | {value} |")
    return figures


def _flatten(value, prefix=""):
    keep = ("seconds", "step_s", "peak", "nfe", "total", "denoising", "vae_decode", "text_encoder", "loss", "fits",
            "peak_gb", "needed_gb", "device", "tokens", "steps", "text", "fits", "parts_gb", "num_layers")
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _flatten(v, f"{prefix}{k}.")
    elif isinstance(value, list) and value and isinstance(value[0], dict):  # GPD's stage_runs
        for i, v in enumerate(value):
            yield from _flatten(v, f"{prefix}{i}.")
    elif any(k in prefix for k in keep):
        yield prefix[:-1], round(value, 4) if isinstance(value, float) else value


def cpu_smoke(work: Path) -> dict:
    """The GPU path at a small size on the CPU: build, one SynVid trajectory, one step of each method."""
    teacher = build(work / "pipeline", cpu_smoke=True)
    figures = {"synvid": synvid(teacher, work / "synvid")}
    for method in ("accvideo", "gpd"):
        figures[method] = distill(method, teacher, work / method, 1, work / "synvid", torchrun=False, cpu_smoke=True)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("build")
    p.add_argument("out", type=Path)
    p.add_argument("--cpu-smoke", action="store_true", help="small width and depth, 5x32x32 clips")
    p = sub.add_parser("synvid")
    p.add_argument("--teacher", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--steps", type=int, default=SYNVID_STEPS)
    p.add_argument("--json", type=Path, default=None, help="also write the result here")
    p = sub.add_parser("distill")
    p.add_argument("method", choices=sorted(METHOD_SETS))
    p.add_argument("--teacher", type=Path, required=True)
    p.add_argument("--synvid", type=Path, default=None)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--torchrun", action="store_true", help="one torchrun process with a process group (FSDP2)")
    p.add_argument("--json", type=Path, default=None, help="also write the result here")
    p = sub.add_parser("tiny")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", type=Path, default=None, help="also write the result here")
    p = sub.add_parser("report")
    p.add_argument("folder", type=Path)
    p = sub.add_parser("cpu-smoke")
    p.add_argument("work", type=Path)
    args = parser.parse_args(argv)

    if args.command == "report":
        report(args.folder)
        return 0
    if args.command == "cpu-smoke":
        print(json.dumps(cpu_smoke(args.work), indent=2, default=str))
        return 0
    if args.command == "distill" and args.method == "accvideo" and args.synvid is None:
        parser.error("`--synvid` is required for `distill accvideo` (the folder `synvid` wrote).")
    if args.command == "build":
        t0 = time.perf_counter()
        folder = build(args.out, args.cpu_smoke)
        result = {"what": "build", "folder": str(folder), "seconds": time.perf_counter() - t0,
                  "transformer": json.loads((folder / "transformer" / "config.json").read_text())}
    elif args.command == "synvid":
        result = synvid(args.teacher, args.out, args.steps)
    elif args.command == "distill":
        result = distill(args.method, args.teacher, args.out, args.steps, args.synvid, args.torchrun)
    else:
        result = tiny(args.repeats)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))  # `python scripts/gpu_check_real.py` from anywhere imports this checkout
    sys.exit(main())
