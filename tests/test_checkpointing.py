"""Gradient checkpointing (`trainer.gradient_checkpointing`): the same loss and gradients as
without it, for the Wan (tiny) and HunyuanVideo transformers, with the blocks really recomputed;
and the trainer applies it to the trainables and to the frozen teacher AccVideo backpropagates
through."""

import copy

import pytest
import torch

from accvideo.models.families import family_of
from accvideo.models.registry import load_model
from accvideo.training.parallel import enable_checkpointing, transformer_blocks
from accvideo.training.trainer import TrainerConfig, run_training
from tests.helpers.tiny_hunyuan import build_tiny_hunyuan


def _loss_and_grads(model, x, cond, guidance):
    """Loss of one velocity call and the gradients of every parameter and of the input;
    also how many times the blocks started (twice per block with checkpointing: forward, recompute;
    a pre-hook, since the recompute may stop early, before the block returns)."""
    calls = []
    handles = [b.register_forward_pre_hook(lambda *a: calls.append(1)) for b in transformer_blocks(model)]
    x = x.clone().requires_grad_(True)
    v = family_of(model).transformer_call(model, x, torch.tensor([0.9, 0.3]), cond, guidance)
    loss = (v ** 2).mean()
    loss.backward()
    for h in handles:
        h.remove()
    return loss.detach(), [p.grad for p in model.parameters() if p.grad is not None] + [x.grad], len(calls)


def _wan(tiny_pipeline_dir):
    model = copy.deepcopy(load_model(tiny_pipeline_dir).transformer).train().requires_grad_(True)
    return model, torch.randn(2, 16, 3, 8, 8), {"encoder_hidden_states": torch.randn(2, 8, 32)}, None


def _hunyuan(_):
    model = build_tiny_hunyuan().transformer.train()
    cond = {"encoder_hidden_states": torch.randn(2, 8, 16), "encoder_attention_mask": torch.ones(2, 8),
            "pooled_projections": torch.randn(2, 8)}
    return model, torch.randn(2, 4, 3, 8, 8), cond, 6.0


@pytest.mark.parametrize("build", [_wan, _hunyuan], ids=["wan", "hunyuan"])
def test_checkpointing_gives_the_same_loss_and_gradients(build, tiny_pipeline_dir):
    model, x, cond, guidance = build(tiny_pipeline_dir)
    plain = copy.deepcopy(model)
    assert enable_checkpointing(model)
    loss, grads, calls = _loss_and_grads(model, x, cond, guidance)
    ref_loss, ref_grads, ref_calls = _loss_and_grads(plain, x, cond, guidance)
    blocks = len(transformer_blocks(model))
    assert (calls, ref_calls) == (2 * blocks, blocks)  # recomputed in backward, so it is really on
    assert torch.allclose(loss, ref_loss, rtol=1e-6)
    assert len(grads) == len(ref_grads) > 1
    assert all(torch.allclose(g, r, atol=1e-6, rtol=1e-5) for g, r in zip(grads, ref_grads))


def test_modules_without_blocks_are_left_alone():
    assert not enable_checkpointing(torch.nn.Linear(2, 2))


def _accvideo_method(tiny_pipeline_dir):
    from accvideo.training.methods.accvideo import AccVideoConfig, AccVideoMethod

    g = torch.Generator().manual_seed(0)
    data = {"latents": torch.randn(3, 3, 16, 3, 8, 8, generator=g),
            "cond": {"encoder_hidden_states": torch.randn(3, 8, 32, generator=g)},
            "sigmas": torch.linspace(1, 0, 5), "num_steps": 4}
    torch.manual_seed(0)
    return AccVideoMethod(AccVideoConfig(num_key_steps=2, adv_start=0, lambda_adv=0.5),
                          copy.deepcopy(load_model(tiny_pipeline_dir).transformer), data)


def test_trainer_option_checkpoints_student_and_teacher_and_trains_the_same(tiny_pipeline_dir, tmp_path):
    results = {}
    for on in (False, True):
        method = _accvideo_method(tiny_pipeline_dir)
        cfg = TrainerConfig(steps=2, batch_size=2, log_every=1, checkpoint_every=10, warmup_steps=1, lr=1e-3,
                            gradient_checkpointing=on)
        summary = run_training(method, cfg, cfg, tmp_path / str(on))
        assert method.student.gradient_checkpointing == on and method.teacher.gradient_checkpointing == on
        results[on] = summary["final"], method.student.state_dict()
    (final, weights), (ref_final, ref_weights) = results[True], results[False]
    for key in ("student/loss", "student/g", "discriminator/loss"):
        assert final[key] == pytest.approx(ref_final[key], rel=1e-5)
    assert all(torch.allclose(weights[k], ref_weights[k], atol=1e-6) for k in weights)


def test_checkpointing_a_method_without_blocks_is_an_error(tmp_path):
    from tests.test_trainer import LinearMethod

    cfg = TrainerConfig(steps=1, batch_size=2, gradient_checkpointing=True)
    with pytest.raises(ValueError, match=r"`trainer.gradient_checkpointing` is true but no module of method 'linear'"):
        run_training(LinearMethod(), cfg, cfg, tmp_path)
