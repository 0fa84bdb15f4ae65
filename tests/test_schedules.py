import numpy as np
import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler

from accvideo.core.sampling import SamplingInterrupted, euler_sample
from accvideo.core.schedules import key_sigmas, key_steps, shift_sigmas, sigma_schedule


def test_shift_formula_exact_values():
    s = torch.tensor([0.0, 0.25, 0.5, 1.0], dtype=torch.float64)
    got = shift_sigmas(s, 3.0)
    # k s / (1 + (k - 1) s) by hand: 0, 0.75 / 1.5, 1.5 / 2, 3 / 3
    assert torch.allclose(got, torch.tensor([0.0, 0.5, 0.75, 1.0], dtype=torch.float64))
    assert torch.equal(shift_sigmas(s, 1.0), s)


@pytest.mark.parametrize("shift", [1.0, 3.0, 7.0])
def test_schedule_matches_diffusers_scheduler(shift):
    # diffusers' default spacing ends its evaluated sigmas at 1/1000; given our unshifted grid
    # linspace(1, 0, n + 1) it must apply the same shift and append the same final 0.
    scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=shift)
    scheduler.set_timesteps(sigmas=np.linspace(1.0, 0.0, 51)[:-1])
    ours = sigma_schedule(50, shift)
    assert ours.shape == (51,)
    assert ours[0] == 1.0 and ours[-1] == 0.0
    assert torch.allclose(ours.float(), scheduler.sigmas.float(), atol=1e-6)


def test_key_steps_50_to_5_every_tenth():
    assert key_steps(50, 5) == [0, 10, 20, 30, 40, 50]
    assert key_steps(48, 6) == [0, 8, 16, 24, 32, 40, 48]
    assert key_steps(7, 7) == list(range(8))
    sigmas = sigma_schedule(50, 7.0)
    assert torch.equal(key_sigmas(sigmas, 5), sigmas[[0, 10, 20, 30, 40, 50]])


@pytest.mark.parametrize("bad", [0, -3, 2.5, "5"])
def test_bad_step_counts_are_named(bad):
    with pytest.raises(ValueError, match="num_steps"):
        sigma_schedule(bad)


def test_key_steps_rejects_more_keys_than_steps():
    with pytest.raises(ValueError, match="num_key_steps"):
        key_steps(5, 6)


def test_constant_velocity_lands_exactly():
    # dx/dsigma = v constant: x(0) = x(1) - v, whatever the schedule.
    x_1 = torch.randn(2, 3, dtype=torch.float64)
    v = torch.randn(2, 3, dtype=torch.float64)
    for sigmas in (sigma_schedule(1), sigma_schedule(7, 3.0), sigma_schedule(50, 7.0)):
        result = euler_sample(lambda x, s: v, x_1, sigmas)
        assert torch.allclose(result.x_0, x_1 - v, atol=1e-12)


def test_rectified_flow_straight_path_recovers_data():
    # For a single data point x_0 the exact velocity is (x - x_0) / sigma; Euler is exact on it.
    x_0 = torch.tensor([0.3, -1.2], dtype=torch.float64)
    eps = torch.tensor([1.0, 0.5], dtype=torch.float64)
    result = euler_sample(lambda x, s: (x - x_0) / s, eps, sigma_schedule(5, 3.0), return_trajectory=True)
    assert torch.allclose(result.x_0, x_0, atol=1e-12)
    # each stored state lies on the straight line (1 - s) x_0 + s eps
    for s, state in zip(result.sigmas, result.trajectory):
        assert torch.allclose(state, (1 - s) * x_0 + s * eps, atol=1e-12)


def test_trajectory_callback_and_interrupt():
    seen = []
    result = euler_sample(lambda x, s: torch.ones_like(x), torch.zeros(4), sigma_schedule(6),
                          callback=lambda i, n, s, x: seen.append((i, n)), return_trajectory=True)
    assert result.trajectory.shape == (7, 4)
    assert seen == [(i, 6) for i in range(6)]
    calls = []

    def interrupt():
        calls.append(1)
        return len(calls) > 3

    with pytest.raises(SamplingInterrupted, match="before step 4 of 6"):
        euler_sample(lambda x, s: x, torch.zeros(2), sigma_schedule(6), interrupt=interrupt)


def test_sigmas_must_decrease():
    with pytest.raises(ValueError, match="strictly decreasing"):
        euler_sample(lambda x, s: x, torch.zeros(1), torch.tensor([0.0, 1.0]))
