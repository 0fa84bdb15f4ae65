"""AccVideo distillation: real steps of each loss, alternation, export, resume."""

import json

import numpy as np
import pytest
import torch

from accvideo.core.schedules import key_steps
from accvideo.generation import generate
from accvideo.models.registry import load_model
from accvideo.training.methods.accvideo import AccVideoConfig, AccVideoMethod
from accvideo.training.recipes.accvideo import AccVideoDistillConfig
from accvideo.training.trainer import TrainerConfig, run_training
from tests.helpers.ports import free_port

NUM_STEPS, M = 6, 3


@pytest.fixture(scope="module")
def key_data(tiny_pipeline_dir):
    """Key states of a few real teacher trajectories (what SynVid stores), built in memory."""
    pipe = load_model(tiny_pipeline_dir)
    prompts = ["a red circle moving left", "a blue square moving up", "a green triangle moving down"]
    latents, texts = [], []
    for i, prompt in enumerate(prompts):
        r = generate(pipe, prompt, seed=i, num_steps=NUM_STEPS, return_trajectory=True, decode_video=False)
        latents.append(r.trajectory[key_steps(NUM_STEPS, M), 0])
        texts.append(pipe.pipe.encode_prompt(prompt, do_classifier_free_guidance=False, max_sequence_length=8)[0][0])
    return {"latents": torch.stack(latents), "cond": {"encoder_hidden_states": torch.stack(texts)},
            "sigmas": r.sigmas, "num_steps": NUM_STEPS, "prompts": prompts, "embedded_guidance_scale": None}


def make_method(pipe, data, **kw):
    cfg = AccVideoConfig(num_key_steps=M, adv_start=kw.pop("adv_start", 0), **kw)
    return AccVideoMethod(cfg, pipe.transformer, data)


def snapshot(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def changed(before, module):
    after = module.state_dict()
    return any(not torch.equal(before[k], after[k]) for k in before)


def test_trajectory_loss_matches_hand_computation(tiny_pipeline_dir, key_data):
    pipe = load_model(tiny_pipeline_dir)
    method = make_method(pipe, key_data, lambda_adv=0.0)
    batch = method.batch(np.random.default_rng(0), 2)
    loss, extra = method.loss("student", batch, method.trainable(), step=0)
    # by hand, segment by segment
    s = method.key_sigmas
    total = 0.0
    for j in range(M):
        x = batch["states"][:, j]
        t = torch.full((2,), float(s[j]) * 1000)
        v = method.student(x, timestep=t, encoder_hidden_states=batch["cond"]["encoder_hidden_states"],
                           return_dict=False)[0]
        x_hat = x + (s[j + 1] - s[j]) * v
        total += ((x_hat - batch["states"][:, j + 1]) ** 2).mean()
    assert torch.allclose(loss, total / M, rtol=1e-4)
    assert extra["traj"] == pytest.approx(loss.item())


def test_student_starts_as_teacher_and_teacher_stays_frozen(tiny_pipeline_dir, key_data):
    pipe = load_model(tiny_pipeline_dir)
    method = make_method(pipe, key_data)
    t, s = pipe.transformer.state_dict(), method.student.state_dict()
    assert all(torch.equal(t[k], s[k]) for k in t)
    assert not any(p.requires_grad for p in method.teacher.parameters())
    assert method.keys == [0, 2, 4, 6]


def test_one_step_of_each_loss_updates_in_turn(tiny_pipeline_dir, key_data, tmp_path):
    pipe = load_model(tiny_pipeline_dir)
    method = make_method(pipe, key_data, lambda_adv=0.5)
    assert method.phases(0) == ["discriminator", "student"]
    heads, student = snapshot(method.heads), snapshot(method.student)
    teacher = snapshot(method.teacher)
    batch = method.batch(np.random.default_rng(1), 3)
    d_opt = torch.optim.SGD(method.heads.parameters(), lr=0.1)
    d_loss, d_extra = method.loss("discriminator", batch, method.trainable(), step=0)
    assert torch.isfinite(d_loss) and {"d_real", "d_fake"} <= set(d_extra)
    d_opt.zero_grad()
    d_loss.backward()
    assert all(p.grad is None for p in method.student.parameters())  # D phase leaves the student alone
    d_opt.step()
    assert changed(heads, method.heads) and not changed(student, method.student)
    heads = snapshot(method.heads)
    d_opt.zero_grad(set_to_none=True)
    g_opt = torch.optim.SGD(method.student.parameters(), lr=0.1)
    g_loss, g_extra = method.loss("student", batch, method.trainable(), step=0)
    assert torch.isfinite(g_loss) and "g" in g_extra and g_loss.item() != pytest.approx(g_extra["traj"])
    g_opt.zero_grad()
    g_loss.backward()
    assert all(p.grad is None for p in method.heads.parameters())  # G phase leaves the heads alone
    g_opt.step()
    assert changed(student, method.student) and not changed(heads, method.heads)
    assert not changed(teacher, method.teacher)


def test_adversarial_phase_waits_for_adv_start(tiny_pipeline_dir, key_data):
    method = make_method(load_model(tiny_pipeline_dir), key_data, adv_start=5)
    assert method.phases(4) == ["student"] and method.phases(5) == ["discriminator", "student"]
    assert make_method(load_model(tiny_pipeline_dir), key_data, lambda_adv=0.0).phases(99) == ["student"]


@pytest.mark.parametrize("kw, match", [
    ({"gan_loss": "wasserstein"}, "gan_loss"),
    ({"lambda_adv": -1.0}, "lambda_adv"),
    ({"feature_blocks": (9,)}, "feature_blocks"),
])
def test_bad_method_config_is_named(tiny_pipeline_dir, key_data, kw, match):
    with pytest.raises(ValueError, match=match):
        make_method(load_model(tiny_pipeline_dir), key_data, **kw)


def test_training_exports_a_student_pipeline_that_reloads_identically(tiny_pipeline_dir, key_data, tmp_path):
    pipe = load_model(tiny_pipeline_dir)
    method = make_method(pipe, key_data, lambda_adv=0.1, adv_start=1)
    cfg = TrainerConfig(steps=3, batch_size=2, log_every=1, checkpoint_every=2, warmup_steps=1, lr=1e-3)
    summary = run_training(method, cfg, AccVideoDistillConfig(trainer=cfg), tmp_path, tiny_pipeline_dir)
    assert summary["steps"] == 3
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [1, 2, 3]
    assert "discriminator/loss" not in lines[0] and "discriminator/loss" in lines[1]
    sampling = json.loads((tmp_path / "pipeline" / "accvideo_sampling.json").read_text())
    assert sampling["num_steps"] == M and sampling["guidance_scale"] == 1.0
    # the exported weights are hashed, so a corrupted copy is refused on load
    hashes = json.loads((tmp_path / "pipeline" / "sha256.json").read_text())
    assert "transformer/diffusion_pytorch_model.safetensors" in hashes
    assert sampling["sigmas"] == pytest.approx([float(s) for s in method.key_sigmas])
    student = load_model(tmp_path / "pipeline")
    result = generate(student, "a red circle moving left", seed=0)
    assert result.num_steps == M and result.nfe == M  # no guidance: one call per step
    # the exported weights are the trained student's, and they reload bit for bit
    trained = method.student.state_dict()
    assert all(torch.equal(trained[k], v) for k, v in student.transformer.state_dict().items())
    again = generate(load_model(tmp_path / "pipeline"), "a red circle moving left", seed=0)
    assert np.array_equal(result.video, again.video)


# ---- through SynVid and the CLI ---------------------------------------------------------------

REPO = __import__("pathlib").Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def synvid_dir(tiny_pipeline_dir, tmp_path_factory):
    from accvideo.synvid import SynVidConfig, generate_synvid

    root = tmp_path_factory.mktemp("synvid")
    prompts = root / "prompts.txt"
    prompts.write_text("a red circle moving left\na blue square moving up\n")
    cfg = SynVidConfig(teacher=str(tiny_pipeline_dir), prompts=str(prompts), num_steps=NUM_STEPS,
                       samples_per_prompt=2, shard_size=2, store="all")
    generate_synvid(cfg, root / "data", progress=False)
    return root / "data"


CLI_FAST = ["trainer.steps=4", "trainer.batch_size=2", "trainer.log_every=1", "trainer.checkpoint_every=2",
            "trainer.warmup_steps=1", f"method.num_key_steps={M}", "method.adv_start=1"]


def _cli(args, env_extra=None, torchrun=False):
    import os
    import subprocess
    import sys

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", **(env_extra or {})}
    head = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={free_port()}", "-m",
            "accvideo"] if torchrun else [sys.executable, "-m", "accvideo"]
    return subprocess.run(head + args, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def _sets(items):
    return [x for item in items for x in ("--set", item)]


def test_key_states_come_from_synvid(synvid_dir, key_data):
    from accvideo.training.data import load_key_states

    data = load_key_states(synvid_dir, M)
    assert data["latents"].shape[:2] == (4, M + 1) and data["num_steps"] == NUM_STEPS
    assert set(data) == {"latents", "cond", "sigmas", "num_steps", "prompts", "embedded_guidance_scale",
                         "family", "config"}
    assert set(data["cond"]) == {"encoder_hidden_states"} and data["cond"]["encoder_hidden_states"].shape[0] == 4
    assert data["embedded_guidance_scale"] is None and data["family"] == "wan"
    # the first stored trajectory (prompt 0, seed 0) is the one generated in memory above
    assert torch.allclose(data["latents"][0], key_data["latents"][0], atol=1e-5)
    with pytest.raises(ValueError, match="num_key_steps"):
        load_key_states(synvid_dir, NUM_STEPS + 1)


@pytest.mark.slow
def test_cli_dry_run_and_two_processes(tiny_pipeline_dir, synvid_dir, tmp_path):
    base = ["distill", "accvideo", "--teacher", str(tiny_pipeline_dir), "--synvid", str(synvid_dir)]
    done = _cli(base + ["--out", str(tmp_path / "dry"), "--dry-run"] + _sets(CLI_FAST))
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)["key_steps"] == [0, 2, 4, 6]
    # two micro-batches per step: the first accumulates under DDP no_sync, the second all-reduces
    done = _cli(base + ["--out", str(tmp_path / "ddp")] + _sets(CLI_FAST + ["trainer.grad_accum=2"]), torchrun=True)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "ddp" / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["steps"] == 4
    lines = [json.loads(x) for x in (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [1, 2, 3, 4]  # rank 0 alone logs
    assert (tmp_path / "ddp" / "pipeline" / "accvideo_sampling.json").exists()


@pytest.mark.slow  # a subprocess and two tiny runs: about 12 s
def test_killed_run_resumes_to_the_same_end(tiny_pipeline_dir, synvid_dir, tmp_path, one_thread):
    """kill -9 at a step drawn after the first checkpoint (step 2), then resume: the same bytes."""
    import random

    from accvideo.training.recipes.accvideo import run_accvideo
    from accvideo.util.config import apply_overrides
    from tests.helpers.killed_run import killed

    cfg = apply_overrides(AccVideoDistillConfig(), CLI_FAST)
    run_accvideo(str(tiny_pipeline_dir), str(synvid_dir), tmp_path / "straight", cfg)
    step = random.Random(17).choice([2, 3])  # 0-based: after the checkpoint of step 2, before the end
    done = killed({"kind": "accvideo", "out": str(tmp_path / "killed"), "teacher": str(tiny_pipeline_dir),
                   "synvid": str(synvid_dir), "overrides": CLI_FAST,
                   "kill": {"when": "step", "seed": cfg.trainer.seed, "step": step}}, REPO)
    assert done.returncode == -9, done.stderr[-2000:]
    assert not (tmp_path / "killed" / "pipeline").exists()
    summary = run_accvideo(str(tiny_pipeline_dir), str(synvid_dir), tmp_path / "killed", cfg)
    assert summary["resumed_from"] == 2 and summary["steps"] == 4
    log = [json.loads(x) for x in (tmp_path / "killed" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3, 4]
    weights = "pipeline/transformer/diffusion_pytorch_model.safetensors"
    assert (tmp_path / "killed" / weights).read_bytes() == (tmp_path / "straight" / weights).read_bytes()


@pytest.mark.slow  # two torchrun processes: about 45 s on 2 busy cores
def test_two_processes_fsdp2_bf16_adversarial_from_step_0(tiny_pipeline_dir, synvid_dir, tmp_path):
    """FSDP2 shards the student and the heads; the student phase runs the sharded heads under
    `frozen`, and the next discriminator phase must still train them (issue 16: it crashed with
    "element 0 of tensors does not require grad" at the second step)."""
    base = ["distill", "accvideo", "--teacher", str(tiny_pipeline_dir), "--synvid", str(synvid_dir),
            "--out", str(tmp_path / "run")]
    sets = CLI_FAST + ["trainer.steps=3", "trainer.checkpoint_every=3", "method.adv_start=0", "method.lambda_adv=0.5",
                       "trainer.parallel=fsdp2", "trainer.mixed_precision=bf16"]
    done = _cli(base + _sets(sets), torchrun=True)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["parallel"] == "fsdp2"
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [1, 2, 3]
    assert all(np.isfinite(r["discriminator/loss"]) and np.isfinite(r["student/g"]) for r in lines)
    assert all(r["discriminator/grad_norm"] > 0 for r in lines)  # the heads get gradients every step
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=False)
    teacher = load_model(tiny_pipeline_dir).transformer.state_dict()
    student = state["modules"]["student"]
    assert student.keys() == teacher.keys() and any(not torch.equal(student[k], teacher[k]) for k in teacher)


def test_one_segment_per_sample_is_an_unbiased_estimate_of_the_trajectory_loss(tiny_pipeline_dir, key_data):
    """`method.segments=one`: each sample steps only its drawn segment; averaged over the m
    equally likely draws, the loss is exactly the all-segments loss (a mean over segments)."""
    pipe = load_model(tiny_pipeline_dir)
    full = make_method(pipe, key_data, lambda_adv=0.0)
    one = make_method(pipe, key_data, lambda_adv=0.0, segments="one")
    batch = full.batch(np.random.default_rng(3), 2)
    with torch.no_grad():
        exact = full.loss("student", batch, full.trainable(), step=0)[0]
        draws = [one.loss("student", {**batch, "segment": torch.full((2,), j)}, one.trainable(), step=0)[0]
                 for j in range(M)]
        mixed = one.loss("student", batch, one.trainable(), step=0)[0]  # segments (j_0, j_1) as drawn
    assert torch.allclose(torch.stack(draws).mean(), exact, rtol=1e-5)
    assert not torch.allclose(draws[0], exact, rtol=1e-3)  # one draw alone is not the full loss
    # by hand, for the drawn segments
    s, j = one.key_sigmas, batch["segment"]
    rows = torch.arange(2)
    x = batch["states"][rows, j]
    with torch.no_grad():
        v = one.student(x, timestep=s[j] * 1000, encoder_hidden_states=batch["cond"]["encoder_hidden_states"],
                        return_dict=False)[0]
    target = batch["states"][rows, j + 1]
    assert torch.allclose(mixed, ((x + (s[j + 1] - s[j]).view(-1, 1, 1, 1, 1) * v - target) ** 2).mean(), rtol=1e-4)
    with pytest.raises(ValueError, match="`method.segments` must be 'all' or 'one' but is 'two'"):
        make_method(pipe, key_data, segments="two")


def test_one_segment_adversarial_step_trains(tiny_pipeline_dir, key_data):
    method = make_method(load_model(tiny_pipeline_dir), key_data, lambda_adv=0.5, segments="one")
    batch = method.batch(np.random.default_rng(1), 3)
    d_loss, _ = method.loss("discriminator", batch, method.trainable(), step=0)
    g_loss, extra = method.loss("student", batch, method.trainable(), step=0)
    g_loss.backward()
    assert torch.isfinite(d_loss) and "g" in extra
    assert all(p.grad is not None for p in method.student.parameters() if p.requires_grad)
