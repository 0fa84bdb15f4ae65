"""FSDP2 (`trainer.parallel=fsdp2`) on CPU: two gloo processes under torchrun shard the tiny
student, train, checkpoint full state dicts, resume, and export a loadable pipeline. The same
code runs NCCL on GPUs; the CUDA tests run only where a GPU is present."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from accvideo.models.registry import load_model
from accvideo.training.trainer import TrainerConfig, shard_fsdp2
from tests.helpers.ports import free_port

REPO = Path(__file__).resolve().parents[1]
FAST = ["trainer.steps=2", "trainer.batch_size=2", "trainer.log_every=1", "trainer.checkpoint_every=1",
        "trainer.warmup_steps=1", "trainer.lr=1e-3", "method.teacher_steps=4", "method.schedule=[2,1]",
        "trainer.parallel=fsdp2"]


def _torchrun(args, port):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    head = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={port}", "-m",
            "accvideo"]
    return subprocess.run(head + args, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)


def _sets(items):
    return [x for item in items for x in ("--set", item)]


def test_config_is_validated():
    with pytest.raises(ValueError, match="`trainer.parallel` must be 'ddp' or 'fsdp2' but is 'zero3'"):
        TrainerConfig(parallel="zero3").validate()
    with pytest.raises(ValueError, match="`trainer.mixed_precision` must be 'no' or 'bf16' but is 'fp8'"):
        TrainerConfig(mixed_precision="fp8").validate()


@pytest.mark.slow
def test_gpd_two_processes_fsdp2_gloo(tiny_pipeline_dir, tmp_path):
    base = ["distill", "gpd", "--teacher", str(tiny_pipeline_dir), "--out", str(tmp_path / "run")]
    done = _torchrun(base + _sets(FAST), port=free_port())
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    runs = summary["stage_runs"]
    assert [r["parallel"] for r in runs] == ["fsdp2", "fsdp2"] and runs[0]["world_size"] == 2
    # checkpoints hold the full, gathered student (not a rank's shard)
    state = torch.load(tmp_path / "run" / "stages" / "stage-2" / "checkpoints" / "last.pt", weights_only=False)
    teacher = load_model(tiny_pipeline_dir).transformer.state_dict()
    student = state["modules"]["student"]
    assert student.keys() == teacher.keys() and all(student[k].shape == teacher[k].shape for k in teacher)
    assert any(not torch.equal(student[k], teacher[k]) for k in teacher)  # it trained
    exported = load_model(tmp_path / "run" / "pipeline").transformer.state_dict()
    assert all(torch.equal(exported[k], student[k]) for k in teacher)
    # resume: one more step per stage from the full checkpoints, resharded on load
    for stage in ("stage-1", "stage-2"):
        (tmp_path / "run" / "stages" / stage / "pipeline" / "model_index.json").unlink()
    done = _torchrun(base + _sets(FAST + ["trainer.steps=3"]), port=free_port())
    assert done.returncode == 0, done.stderr[-3000:]
    runs = json.loads((tmp_path / "run" / "summary.json").read_text())["stage_runs"]
    assert [r["resumed_from"] for r in runs] == [2, 2] and [r["steps"] for r in runs] == [3, 3]


def test_shard_fsdp2_units_on_cpu(tiny_pipeline_dir, tmp_path):
    """One process, world size 1 (gloo): the wrapping itself, unit per block, forward matches."""
    import copy

    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import FSDPModule

    if dist.is_initialized():
        pytest.skip("a process group is already initialised in this test process")
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        model = copy.deepcopy(load_model(tiny_pipeline_dir).transformer)
        ref = copy.deepcopy(model)
        sharded = shard_fsdp2(model, init_device_mesh("cpu", (1,)))
        assert isinstance(sharded, FSDPModule) and all(isinstance(b, FSDPModule) for b in sharded.blocks)
        x, t, text = torch.randn(1, 16, 3, 8, 8), torch.tensor([500.0]), torch.randn(1, 8, 32)
        with torch.no_grad():
            a = sharded(x, timestep=t, encoder_hidden_states=text, return_dict=False)[0]
            b = ref(x, timestep=t, encoder_hidden_states=text, return_dict=False)[0]
        assert torch.allclose(a, b, atol=1e-6)
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (one distillation step in bf16)")
def test_one_gpd_step_on_cuda_bf16(tiny_pipeline_dir, tmp_path):
    from accvideo.training.recipes.gpd import GPDDistillConfig, run_gpd
    from accvideo.util.config import apply_overrides

    cfg = apply_overrides(GPDDistillConfig(), [f for f in FAST if "parallel" not in f]
                          + ["trainer.steps=1", "trainer.mixed_precision=bf16"])
    summary = run_gpd(str(tiny_pipeline_dir), tmp_path, cfg)
    assert all(torch.isfinite(torch.tensor(r["final"]["student/loss"])) for r in summary["stage_runs"])


@pytest.fixture
def one_process_group(tmp_path):
    """A world-size-1 gloo group in this process (FSDP2's hooks run as in a real run)."""
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh

    if dist.is_initialized():
        pytest.skip("a process group is already initialised in this test process")
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        yield init_device_mesh("cpu", (1,))
    finally:
        dist.destroy_process_group()


def test_bf16_fsdp2_keeps_the_timestep_fp32(tiny_pipeline_dir, one_process_group):
    """FSDP2's bf16 policy would cast t = 999 to 1000; the transformer must see 999.0 in fp32."""
    import copy

    model = copy.deepcopy(load_model(tiny_pipeline_dir).transformer)
    ref = copy.deepcopy(model)
    seen = []
    model.condition_embedder.register_forward_pre_hook(lambda m, args: seen.append(args[0].clone()))
    sharded = shard_fsdp2(model, one_process_group, "bf16")
    x, t, text = torch.randn(1, 16, 3, 8, 8), torch.tensor([999.0]), torch.randn(1, 8, 32)
    with torch.no_grad():
        a = sharded(x, timestep=t, encoder_hidden_states=text, return_dict=False)[0]
        b = ref(x, timestep=t, encoder_hidden_states=text, return_dict=False)[0]
    assert seen[0].dtype == torch.float32 and seen[0].item() == 999.0
    assert a.dtype == torch.bfloat16 and torch.allclose(a.float(), b, atol=0.1)


def test_frozen_restores_requires_grad_on_fsdp2_shards(one_process_group):
    """AccVideo's student phase runs the FSDP2-wrapped heads under `frozen`; the next
    discriminator phase must train them again ("element 0 of tensors does not require grad")."""
    from torch.distributed.fsdp import fully_shard

    from accvideo.training.methods.accvideo import KeyStepHeads, frozen

    heads = fully_shard(KeyStepHeads(num_heads=2, num_layers=1, dim=8, hidden=4), mesh=one_process_group)
    features, index = [torch.randn(2, 5, 8)], torch.tensor([0, 1])
    heads(features, index).sum().backward()  # discriminator phase
    grads = [p.grad.clone() for p in heads.parameters()]
    x = torch.randn(2, 5, 8, requires_grad=True)
    with frozen(heads):  # student phase: gradients into the input only, backward after the block
        score = heads([x], index).sum()
    score.backward()
    assert x.grad is not None and all(torch.equal(p.grad, g) for p, g in zip(heads.parameters(), grads))
    heads.reshard()
    assert all(p.requires_grad for p in heads.parameters())
    assert heads(features, index).requires_grad  # the next discriminator phase has a graph
