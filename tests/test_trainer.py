"""The loop itself, on a one-layer method: the non-finite check stops before backward, the
method is closed also on error, the EMA hook averages what the step trained, micro-batches."""

import numpy as np
import pytest
import torch
from torch import nn

from accvideo.training.hooks import EMA
from accvideo.training.trainer import TrainerConfig, run_training


class LinearMethod:
    """y = W x fitted to 2 x; the loss turns NaN at step `nan_at` (if given)."""

    name = "linear"
    all_phases = ["fit"]
    rng_stream = None

    def __init__(self, nan_at: int | None = None):
        torch.manual_seed(0)
        self.model = nn.Linear(3, 3, bias=False)
        self.nan_at, self.closed, self.batches = nan_at, 0, 0

    def to(self, device):
        return self

    def close(self):
        self.closed += 1

    def trainable(self):
        return {"model": self.model}

    def phases(self, step):
        return ["fit"]

    def phase_modules(self, phase):
        return ["model"]

    def lr(self, phase, base_lr):
        return base_lr

    def batch(self, rng: np.random.Generator, batch_size: int) -> dict:
        self.batches += 1
        return {"x": torch.from_numpy(rng.standard_normal((batch_size, 3))).float()}

    def loss(self, phase, batch, wrapped, step):
        loss = ((wrapped["model"](batch["x"]) - 2 * batch["x"]) ** 2).mean()
        if step == self.nan_at:
            loss = loss * float("nan")
        return loss, {}


def config(**kw):
    return TrainerConfig(**{"steps": 3, "batch_size": 4, "log_every": 1, "checkpoint_every": 10, "warmup_steps": 1,
                            "lr": 0.1, **kw})


def test_non_finite_loss_stops_before_backward_and_closes_the_method(tmp_path):
    method = LinearMethod(nan_at=1)
    ema = EMA("model", 0.5)
    seen = {}

    original = ema.after_step

    def record(trained, modules):
        original(trained, modules)
        seen["weight"] = method.model.weight.detach().clone()
        seen["ema"] = ema.model.weight.detach().clone()

    ema.after_step = record
    with pytest.raises(RuntimeError, match="fit loss became nan at step 1"):
        run_training(method, config(), config(), tmp_path, hooks=[ema])
    assert method.closed == 1
    # the NaN never reached the gradients, the weights or the average: all as after step 0
    assert method.model.weight.grad is None
    assert torch.equal(method.model.weight, seen["weight"]) and torch.equal(ema.model.weight, seen["ema"])
    assert torch.isfinite(method.model.weight).all()


def test_ema_hook_averages_each_step(tmp_path):
    method = LinearMethod()
    ema = EMA("model", 0.75)
    start = method.model.weight.detach().clone()
    summary = run_training(method, config(steps=1), config(steps=1), tmp_path, hooks=[ema])
    assert method.closed == 1 and summary["steps"] == 1 and "fit/grad_norm" in summary["final"]
    expected = start + 0.25 * (method.model.weight.detach() - start)
    assert torch.allclose(ema.model.weight, expected)
    state = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=False)
    assert torch.equal(state["hooks"]["ema"]["weight"], ema.model.weight)
    with pytest.raises(ValueError, match="`EMA.module` must name a trainable"):
        run_training(LinearMethod(), config(), config(), tmp_path / "bad", hooks=[EMA("student", 0.9)])


def test_ema_warmup_follows_the_step_count_and_resumes(tmp_path):
    """With warm-up, update n uses min(decay, (1 + n) / (10 + n)): 0.1 at the first step, so the
    average moves 90% of the way instead of 0.1%; the counter is checkpointed and restored."""
    method = LinearMethod()
    ema = EMA("model", 0.999, warmup=True)
    start = method.model.weight.detach().clone()
    run_training(method, config(steps=1), config(steps=1), tmp_path, hooks=[ema])
    assert torch.allclose(ema.model.weight, start + 0.9 * (method.model.weight.detach() - start))
    state = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=False)["hooks"]["ema"]
    again = EMA("model", 0.999, warmup=True)
    again.setup({"model": LinearMethod().model})
    again.load_state_dict(state)
    assert again.updates == 1 and torch.equal(again.model.weight, ema.model.weight)
    plain = EMA("model", 0.999)
    plain.setup({"model": LinearMethod().model})
    with pytest.raises(ValueError, match="trained without the EMA warm-up"):
        again.load_state_dict({k: v for k, v in state.items() if k != EMA.UPDATES})
    plain.load_state_dict(state)  # a warm-up state loads into a plain EMA: the counter is dropped


def test_micro_batches_accumulate(tmp_path):
    method = LinearMethod()
    run_training(method, config(steps=2, grad_accum=3), config(), tmp_path)
    assert method.batches == 6


def test_compile_trains_as_eager_and_leaves_the_module_plain(tmp_path):
    """`trainer.compile`: the trainables run compiled during the run (the EMA's copy is not),
    train to the same weights as without, and are plain again after it: a model the run borrowed
    (GPD's teacher, a cached pipeline) goes back to its other users as it came."""
    eager = LinearMethod()
    run_training(eager, config(), config(), tmp_path / "eager")
    method, seen = LinearMethod(), []
    ema = EMA("model", 0.5)
    original_loss = method.loss

    def loss(phase, batch, wrapped, step):
        seen.append((wrapped["model"]._compiled_call_impl is not None, ema.model._compiled_call_impl is not None))
        return original_loss(phase, batch, wrapped, step)

    method.loss = loss
    run_training(method, config(compile=True), config(), tmp_path / "compiled", hooks=[ema])
    assert seen == [(True, False)] * 3
    assert torch.allclose(method.model.weight, eager.model.weight, atol=1e-5)
    assert method.model._compiled_call_impl is None
