"""Real (tiny) teacher training runs: checkpoints, resume after a crash, 2-process torchrun."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import accvideo.training.recipes.teacher as teacher
import accvideo.training.trainer as trainer
from accvideo.training.checkpoint import load_checkpoint
from accvideo.util.config import apply_overrides
from tests.helpers.ports import free_port

FAST = ["vae.steps=2", "vae.batch_size=2", "vae.stats_clips=8", "transformer.steps=4", "transformer.batch_size=4",
        "transformer.num_clips=16", "transformer.warmup_steps=1", "log_every=1", "checkpoint_every=2"]
REPO = Path(__file__).resolve().parents[1]


def fast_config(*extra):
    return apply_overrides(teacher.TeacherTrainConfig(), FAST + list(extra))


def test_training_run_writes_pipeline_checkpoints_and_metrics(tmp_path):
    summary = teacher.train_teacher(fast_config(), tmp_path)
    assert (tmp_path / "pipeline" / "model_index.json").exists()
    assert (tmp_path / "config.yaml").exists() and (tmp_path / "summary.json").exists()
    state = load_checkpoint(tmp_path / "checkpoints" / "transformer.pt")
    assert state["step"] == 4
    assert {"modules", "optimizers", "hooks", "rng", "config"} <= set(state) and state["method"] == "flow_matching"
    assert state["config"]["transformer"]["steps"] == 4
    # the EMA is a loop hook, checkpointed beside the transformer it averages
    assert state["hooks"]["ema"].keys() == state["modules"]["transformer"].keys()
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines if r["stage"] == "transformer"] == [1, 2, 3, 4]
    assert all(torch.isfinite(torch.tensor(r[f"{r['stage']}/loss"])) for r in lines)
    # the trained transformer differs from its initialisation
    from diffusers import WanPipeline

    init = WanPipeline.from_pretrained(tmp_path / "stages" / "init").transformer.state_dict()
    final = WanPipeline.from_pretrained(tmp_path / "pipeline").transformer.state_dict()
    assert any(not torch.equal(init[k], final[k]) for k in init)
    # the VAE's latent statistics were measured, not left at identity
    vae_cfg = json.loads((tmp_path / "pipeline" / "vae" / "config.json").read_text())
    assert vae_cfg["latents_std"] != [1.0] * 16
    assert summary["transformer"]["resumed_from"] == 0
    assert "transformer/diffusion_pytorch_model.safetensors" in json.loads(
        (tmp_path / "pipeline" / "sha256.json").read_text())


@pytest.mark.slow
def test_resume_after_crash_equals_uninterrupted_run(tmp_path, monkeypatch):
    teacher.train_teacher(fast_config(), tmp_path / "straight")

    original = trainer._step_rng

    def crash_at_step_3(seed, step, micro, rank, stream=None):
        if stream == 2 and step == 3:  # the transformer stage
            raise KeyboardInterrupt("simulated kill")
        return original(seed, step, micro, rank, stream)

    monkeypatch.setattr(trainer, "_step_rng", crash_at_step_3)
    with pytest.raises(KeyboardInterrupt):
        teacher.train_teacher(fast_config(), tmp_path / "crashed")
    assert load_checkpoint(tmp_path / "crashed" / "checkpoints" / "transformer.pt")["step"] == 2
    assert not (tmp_path / "crashed" / "pipeline").exists()
    monkeypatch.setattr(trainer, "_step_rng", original)
    summary = teacher.train_teacher(fast_config(), tmp_path / "crashed")
    assert summary["transformer"]["resumed_from"] == 2

    a = load_checkpoint(tmp_path / "straight" / "checkpoints" / "transformer.pt")
    b = load_checkpoint(tmp_path / "crashed" / "checkpoints" / "transformer.pt")
    for key in a["modules"]["transformer"]:
        assert torch.allclose(a["modules"]["transformer"][key], b["modules"]["transformer"][key], atol=1e-6), key
    for key in a["hooks"]["ema"]:
        assert torch.allclose(a["hooks"]["ema"][key], b["hooks"]["ema"][key], atol=1e-6), key


@pytest.mark.slow
def test_checkpoint_of_the_old_teacher_loop_resumes(tmp_path, monkeypatch):
    """A run killed under the teacher's own loop (checkpoint {model, optimizer, ema}) resumes."""
    teacher.train_teacher(fast_config(), tmp_path / "straight")
    original = trainer._step_rng

    def crash_at_step_3(seed, step, micro, rank, stream=None):
        if stream == 2 and step == 3:
            raise KeyboardInterrupt("simulated kill")
        return original(seed, step, micro, rank, stream)

    monkeypatch.setattr(trainer, "_step_rng", crash_at_step_3)
    with pytest.raises(KeyboardInterrupt):
        teacher.train_teacher(fast_config(), tmp_path / "old")
    monkeypatch.setattr(trainer, "_step_rng", original)
    path = tmp_path / "old" / "checkpoints" / "transformer.pt"
    new = load_checkpoint(path)
    old = {"model": {f"transformer.{k}": v for k, v in new["modules"]["transformer"].items()},
           "optimizer": new["optimizers"]["transformer"], "ema": new["hooks"]["ema"], "step": new["step"],
           "rng": new["rng"], "config": new["config"]}
    torch.save(old, path)
    # the old loop wrote no sha256 sidecar: one left from the new loop would (rightly) call this file corrupt
    path.with_name(path.name + ".sha256").unlink()
    summary = teacher.train_teacher(fast_config(), tmp_path / "old")
    assert summary["transformer"]["resumed_from"] == 2
    a = load_checkpoint(tmp_path / "straight" / "checkpoints" / "transformer.pt")
    b = load_checkpoint(path)
    for part, name in (("modules", "transformer"), ("hooks", "ema")):
        for key in a[part][name]:
            assert torch.allclose(a[part][name][key], b[part][name][key], atol=1e-6), key


def test_corrupt_checkpoint_is_named(tmp_path):
    (tmp_path / "checkpoints").mkdir(parents=True)
    bad = tmp_path / "checkpoints" / "vae.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="vae.pt.*corrupt"):
        teacher.train_teacher(fast_config(), tmp_path)


def test_bad_config_is_named():
    with pytest.raises(ValueError, match="`vae.num_frames` must be 4k \\+ 1"):
        teacher.train_teacher(fast_config("vae.num_frames=6"), "/nonexistent")


@pytest.mark.slow
def test_cli_dry_run_and_resume_never(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "accvideo", "train-teacher", "--out", str(tmp_path), "--dry-run"]
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert '"dry_run": true' in done.stdout
    (tmp_path / "checkpoints").mkdir()
    cmd[-1] = "--resume=never"
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "already holds a run" in done.stderr


@pytest.mark.slow
def test_torchrun_two_processes_gloo(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={free_port()}",
           "-m", "accvideo", "train-teacher", "--out", str(tmp_path)]
    for item in FAST:
        cmd += ["--set", item]
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["world_size"] == 2
    assert (tmp_path / "pipeline" / "model_index.json").exists()
    # only rank 0 logs: one metrics line per step, not two
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines if r["stage"] == "transformer"] == [1, 2, 3, 4]


def test_v2_world_and_model_config_reach_the_pipeline_and_snapshot(tmp_path):
    """`model.*` overrides shape the teacher; its world is recorded for the evaluators; a
    snapshot of the last checkpoint is the finished pipeline when the run is done."""
    from accvideo.eval.procbench import world_of_model
    from accvideo.models.registry import load_model
    from accvideo.training.snapshot import export_snapshot

    # with the EMA warm-up (as the v2 teacher trains): its update count sits in the EMA state
    cfg = fast_config("model.world.num_distractors=2,3", "model.num_layers=1", "model.head_dim=16",
                      "transformer.ema_warmup=true")
    teacher.train_teacher(cfg, tmp_path)
    pipe = load_model(tmp_path / "pipeline")
    assert pipe.transformer.config.num_layers == 1 and pipe.transformer.config.attention_head_dim == 16
    assert world_of_model(pipe).num_distractors == (2, 3)
    snap = export_snapshot(tmp_path)
    assert snap.name == "pipeline-step4"
    final, snapped = pipe.transformer.state_dict(), load_model(snap).transformer.state_dict()
    assert all(torch.equal(final[k], snapped[k]) for k in final)
    assert json.loads((snap / "accvideo_sampling.json").read_text())["snapshot_step"] == 4
    raw = export_snapshot(tmp_path, weights="raw")
    assert raw.name == "pipeline-step4-raw"
    trained = load_model(raw).transformer.state_dict()
    assert not all(torch.equal(final[k], trained[k]) for k in final)  # the EMA lags the trained weights
    with pytest.raises(ValueError, match="run"):
        export_snapshot(tmp_path / "missing")
    with pytest.raises(ValueError, match="weights"):
        export_snapshot(tmp_path, weights="best")
