"""The training side is family-generic: a tiny HunyuanVideo student distils: SynVid, then
AccVideo on its key states, then GPD.

HunyuanVideo differs from Wan in everything a trainer used to spell out: two text encoders
(token states, attention mask, pooled vector), an embedded guidance scale passed to every
call, and two block stacks. Each method runs a few real steps through the one loop and
exports a pipeline that `generate` samples at the student's own step count.
"""


import pytest
import torch

from accvideo.generation import generate
from accvideo.models.registry import load_model
from accvideo.synvid import SynVidConfig, generate_synvid
from accvideo.training.data import load_key_states
from accvideo.training.methods.accvideo import AccVideoConfig, AccVideoMethod
from accvideo.training.parallel import transformer_blocks
from accvideo.training.recipes.accvideo import AccVideoDistillConfig
from accvideo.training.recipes.gpd import GPDDistillConfig, run_gpd
from accvideo.training.trainer import TrainerConfig, run_training
from accvideo.util.config import apply_overrides
from tests.helpers.tiny_hunyuan import save_tiny_hunyuan

NUM_STEPS, M = 4, 2
PROMPTS = ["a red circle moving left", "a blue square moving up"]


@pytest.fixture(scope="module")
def hunyuan_dir(tmp_path_factory):
    return save_tiny_hunyuan(tmp_path_factory.mktemp("hy") / "pipe")


def _differs(a: dict, b: dict) -> bool:
    return any(not torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def hunyuan_synvid(hunyuan_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("hy-synvid")
    prompts = root / "prompts.txt"
    prompts.write_text("\n".join(PROMPTS) + "\n")
    cfg = SynVidConfig(teacher=str(hunyuan_dir), prompts=str(prompts), num_steps=NUM_STEPS, shard_size=2,
                       store="all")
    assert generate_synvid(cfg, root / "data", progress=False).complete
    return root / "data"


def test_synvid_then_accvideo_distils_a_hunyuan_student(hunyuan_dir, hunyuan_synvid, tmp_path):
    teacher = load_model(hunyuan_dir, cached=False)  # as run_accvideo loads it: a copy the method may hook
    data = load_key_states(hunyuan_synvid, M)
    assert data["family"] == "hunyuan" and data["embedded_guidance_scale"] == 6.0
    assert set(data["cond"]) == {"encoder_hidden_states", "encoder_attention_mask", "pooled_projections"}
    method = AccVideoMethod(AccVideoConfig(num_key_steps=M, adv_start=1), teacher.transformer, data)
    assert method.features.blocks == (0, 1)  # one dual-stream and one single-stream block
    before = {k: v.clone() for k, v in method.student.state_dict().items()}
    cfg = TrainerConfig(steps=3, batch_size=2, log_every=1, checkpoint_every=3, warmup_steps=1, lr=1e-3)
    summary = run_training(method, cfg, AccVideoDistillConfig(trainer=cfg), tmp_path, hunyuan_dir)
    final = summary["final"]
    assert {"student/loss", "discriminator/loss", "student/g"} <= set(final)
    assert all(torch.isfinite(torch.tensor(v)) for k, v in final.items() if k.endswith("/loss"))
    # the trainer closed the method: no feature hook is left on the teacher
    assert not any(block._forward_hooks for block in transformer_blocks(teacher.transformer))
    student = load_model(tmp_path / "pipeline")
    assert _differs(before, student.transformer.state_dict())
    result = generate(student, PROMPTS[0], seed=0)
    assert result.num_steps == M and result.nfe == M and result.embedded_guidance_scale == 6.0
    assert result.video.shape == (9, 32, 32, 3)


def test_gpd_distils_a_hunyuan_student_with_guidance(hunyuan_dir, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("\n".join(PROMPTS) + "\n")
    # real CFG in the guide (stage 1): the empty prompt's mask and pooled vector are used too
    cfg = apply_overrides(GPDDistillConfig(), [
        "trainer.steps=2", "trainer.batch_size=2", "trainer.log_every=1", "trainer.checkpoint_every=2",
        "trainer.warmup_steps=1", "trainer.lr=1e-3", "method.teacher_steps=4", "method.schedule=[2,1]",
        "method.guidance_scale=2.0", f"method.prompts={prompts}"])
    summary = run_gpd(str(hunyuan_dir), tmp_path / "run", cfg)
    assert [s["student_steps"] for s in summary["stage_runs"]] == [2, 1] and summary["guidance_baked_in"] == 2.0
    for run in summary["stage_runs"]:
        assert torch.isfinite(torch.tensor(run["final"]["student/loss"]))
    student = load_model(tmp_path / "run" / "pipeline")
    assert _differs(load_model(hunyuan_dir).transformer.state_dict(), student.transformer.state_dict())
    result = generate(student, PROMPTS[1], seed=1)
    assert result.num_steps == 1 and result.nfe == 1 and torch.isfinite(result.latents).all()
