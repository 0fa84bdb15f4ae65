"""Tests of the 1D toy (paper Fig. 2): teacher, useless points, students, API, CLI."""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import pytest
import torch

from toy import distill
from toy.__main__ import main
from toy.api import ToyConfig, run_toy, useless_table
from toy.teacher import ExactVelocity, TeacherConfig, get_teacher, single_thread


@pytest.fixture(scope="module")
def teacher():
    return get_teacher(TeacherConfig())


# The trained MLP teacher (seconds of training): its tests are slow.
MLP = pytest.param("mlp", marks=pytest.mark.slow)


@pytest.fixture(scope="module")
def trajectories(teacher):
    return distill.teacher_noise_and_trajectories(teacher, 1000, seed=0)


def _wasserstein(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.sort().values - b.sort().values).abs().mean())


# --------------------------------------------------------------------------- teacher


@pytest.mark.parametrize("kind", ["exact", MLP])
@pytest.mark.parametrize("positions", [(-1.0, 1.0), (-0.5, 2.0)])
def test_teacher_ode_sends_lower_half_of_noise_to_lower_point(kind, positions):
    teacher = get_teacher(TeacherConfig(kind=kind, positions=positions))
    lower, upper = positions
    eps = torch.cat([torch.linspace(-3.0, -0.05, 60), torch.linspace(0.05, 3.0, 60)])
    x_0 = teacher.solve(eps, torch.ones_like(eps))
    below = eps < 0  # the median of N(0, 1)
    tolerance = 0.2 * (upper - lower)
    assert (x_0[below] - lower).abs().max() < tolerance
    assert (x_0[~below] - upper).abs().max() < tolerance


@pytest.mark.parametrize("kind", ["exact", MLP])
def test_separatrix_agrees_with_direct_ode_solve(kind):
    teacher = get_teacher(TeacherConfig(kind=kind))
    generator = torch.Generator().manual_seed(3)
    sigma = teacher.sigmas[torch.randint(0, teacher.config.num_steps, (3000,), generator=generator)]
    x = 1.5 * torch.randn(3000, generator=generator)
    ends_upper_direct = teacher.solve(x, sigma) > teacher.midpoint
    assert torch.equal(teacher.ends_upper(x, sigma), ends_upper_direct)


# The exact field is stiff as sigma -> 0 (the posterior sharpens), so 50 RK4 steps miss by more.
@pytest.mark.parametrize(("kind", "tolerance"), [("exact", 1e-2), pytest.param("mlp", 5e-3, marks=pytest.mark.slow)])
def test_teacher_solve_matches_a_fine_euler_solve(kind, tolerance):
    teacher = get_teacher(TeacherConfig(kind=kind))
    eps = torch.linspace(-2.5, 2.5, 10)
    x = eps.clone()
    num_steps = 1000
    with torch.no_grad(), single_thread():
        for i in range(num_steps):
            x = x - teacher.model(x, 1.0 - i / num_steps) / num_steps
    assert (teacher.solve(eps, torch.ones_like(eps)) - x).abs().max() < tolerance


def test_exact_teacher_ends_on_the_data_points(teacher):
    """The exact ODE sends noise below the median to the lower point and above it to the upper one."""
    eps = torch.cat([torch.linspace(-3.0, -0.05, 60), torch.linspace(0.05, 3.0, 60)])
    x_0 = teacher.solve(eps, torch.ones_like(eps))
    assert torch.allclose(x_0, torch.where(eps < 0, -1.0, 1.0), atol=1e-2)


@pytest.mark.parametrize("sigma", [0.9, 0.5, 0.2, 0.05])
def test_exact_velocity_is_the_monte_carlo_posterior_mean(sigma):
    """v(x, sigma) = E[eps - x_0 | x_sigma = x], estimated from many draws near each x."""
    positions = (-0.5, 2.0)
    generator = torch.Generator().manual_seed(0)
    x_0 = torch.tensor(positions)[torch.randint(0, 2, (4_000_000,), generator=generator)]
    eps = torch.randn(4_000_000, generator=generator)
    x_sigma = (1 - sigma) * x_0 + sigma * eps
    centres = torch.quantile(x_sigma[:100_000], torch.linspace(0.05, 0.95, 9))  # where the draws are (and 0.5)
    width = 0.002
    exact = ExactVelocity(positions)
    for centre in centres:
        near = (x_sigma - centre).abs() < width
        target = (eps - x_0)[near]
        assert target.numel() > 100
        # sampling error, plus the field's curvature across the bin (a linear field averages out)
        tolerance = 0.02 + 4 * float(target.std()) / target.numel() ** 0.5
        assert abs(float(target.mean()) - float(exact(centre.reshape(1), sigma))) < tolerance


@pytest.mark.slow
def test_the_mlp_teacher_learns_the_exact_velocity():
    mlp = get_teacher(TeacherConfig(kind="mlp"))
    exact = get_teacher(TeacherConfig(kind="exact"))
    eps = torch.linspace(-2.0, 2.0, 41)
    with torch.no_grad():
        for sigma in (0.9, 0.6, 0.3):
            x = torch.cat([(1 - sigma) * x_0 + sigma * eps for x_0 in (-1.0, 1.0)])  # where training data lies
            # typical points; the MLP is looser in the tails, where few training samples fall
            assert (mlp.model(x, sigma) - exact.model(x, sigma)).abs().median() < 0.1


# --------------------------------------------------------------------------- useless points


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_no_useless_points_without_any_mismatch(teacher, seed):
    eps, paths = distill.teacher_noise_and_trajectories(teacher, 1000, seed)
    points = distill.forward_diffusion_points(teacher, eps, paths[-1], 0.0, False, 5, seed)
    assert points.useless_fraction == 0.0


def test_useless_fraction_grows_with_M_over_seeds():
    M_values = (0.0, 0.5, 1.0, 2.0)
    table = useless_table(ToyConfig(M_values=M_values, num_seeds=3))
    mean, std = table["forward_diffusion"].to_numpy(), table["forward_diffusion_std"].to_numpy()
    assert mean[0] == 0.0
    assert all(later > earlier for earlier, later in zip(mean, mean[1:]))
    # Growth well beyond the spread over seeds from M = 0.5 on.
    assert all(mean[i + 1] - std[i + 1] > mean[i] + std[i] for i in range(1, len(M_values) - 1))
    assert mean[-1] > 0.1
    # Pairing noise at random makes many points useless even at M = 0, and more with M.
    noisy = table["forward_diffusion_noise_mismatch"].to_numpy()
    assert noisy[0] > 0.15 and noisy[-1] > noisy[0]


@pytest.mark.parametrize("noise_mismatch", [False, True])
def test_useless_fractions_of_the_sweep_are_those_of_the_points(teacher, trajectories, noise_mismatch):
    """The Fig. 2e sweep's one-pass fractions equal the points' own, M by M, exactly."""
    eps, paths = trajectories
    M_values = (0.0, 0.25, 0.65, 1.35, 2.0)
    swept = distill.forward_diffusion_useless(teacher, eps, paths[-1], M_values, noise_mismatch, 5, 4)
    one_by_one = [distill.forward_diffusion_points(teacher, eps, paths[-1], M, noise_mismatch, 5, 4).useless_fraction
                  for M in M_values]
    assert swept == one_by_one


def test_trajectory_points_are_never_useless():
    table = useless_table(ToyConfig(M_values=(0.0, 0.25, 1.0, 2.0, 4.0), num_seeds=3))
    assert (table["trajectory"] == 0.0).all() and (table["trajectory_std"] == 0.0).all()
    assert (table["forward_diffusion"].iloc[2:] > 0.0).all()


def test_trajectory_points_lie_on_teacher_trajectories(teacher, trajectories):
    _, paths = trajectories
    points = distill.trajectory_points(teacher, paths, 5)
    first = points.x.view(1000, 5)[0]
    assert torch.equal(first, paths[::10, 0][:-1])
    assert torch.equal(points.x_0.view(1000, 5)[:, 0], paths[-1])


# --------------------------------------------------------------------------- students


def test_trajectory_student_matches_teacher_and_forward_student_does_not(teacher, trajectories):
    eps, paths = trajectories
    held_out = torch.randn(2000, generator=torch.Generator().manual_seed(11))
    teacher_x_0 = teacher.solve(held_out, torch.ones_like(held_out))

    student = distill.train_student(distill.trajectory_points(teacher, paths, 5), seed=0)
    samples = distill.sample_student(student, held_out, 5)
    assert _wasserstein(samples, teacher_x_0) < 0.05
    assert float((samples - teacher_x_0).abs().mean()) < 0.06

    mismatched = distill.forward_diffusion_points(teacher, eps, paths[-1], 1.0, False, 5, 0)
    forward_student = distill.train_student(mismatched, seed=0)
    assert _wasserstein(distill.sample_student(forward_student, held_out, 5), teacher_x_0) > 0.2


def test_student_training_is_deterministic_given_a_seed(teacher, trajectories):
    _, paths = trajectories
    points = distill.trajectory_points(teacher, paths, 5)
    eps = torch.linspace(-2.0, 2.0, 9)
    first, second = (distill.sample_student(distill.train_student(points, 4, 30), eps, 5) for _ in range(2))
    other = distill.sample_student(distill.train_student(points, 5, 30), eps, 5)
    assert torch.equal(first, second) and not torch.equal(first, other)


def test_batched_students_follow_one_by_one_training(teacher, trajectories):
    eps, paths = trajectories
    points = [
        distill.trajectory_points(teacher, paths, 5),
        distill.forward_diffusion_points(teacher, eps, paths[-1], 1.0, False, 5, 0),
        distill.forward_diffusion_points(teacher, eps, paths[-1], 2.0, True, 5, 0),
    ]
    held_out = torch.linspace(-2.5, 2.5, 50)
    batched = distill.train_students(points, seed=3, num_train_steps=60)
    for student, one_points in zip(batched, points):
        alone = distill.train_student(one_points, seed=3, num_train_steps=60)
        # the same run up to the batched matmul's rounding
        assert torch.allclose(
            distill.sample_student(student, held_out, 5), distill.sample_student(alone, held_out, 5), atol=1e-4
        )
    # the students did not all learn the same thing
    first, second = (distill.sample_student(student, held_out, 5) for student in batched[:2])
    assert not torch.allclose(first, second)


def test_batched_gradient_and_adam_are_autograd_and_torch_adam_bit_for_bit(teacher, trajectories):
    """The batched students' hand-written backward pass and flat Adam (`toy.students`) are the same
    kernels in the same order as autograd and `torch.optim.Adam`: equal to the last bit."""
    from torch import nn

    from toy.students import _adam_step, _cosine_rates, _StackedNet
    from toy.teacher import VelocityMLP

    eps, paths = trajectories
    points = [distill.trajectory_points(teacher, paths, 5),
              distill.forward_diffusion_points(teacher, eps, paths[-1], 1.0, True, 5, 0)]
    rows = torch.stack([torch.stack([p.x, p.sigma, (p.x_next - p.x) / (p.sigma_next - p.sigma)], -1)[:256]
                        for p in points])  # (K, B, 3)
    torch.manual_seed(0)
    template = VelocityMLP(32, 3)
    with single_thread():
        net = _StackedNet(template, len(points))
        net.gradient(rows[..., :2], rows[..., 2:])
        leaves = [t.detach().clone().requires_grad_(True) for t in (*net.weights, *net.biases)]
        hidden = rows[..., :2]
        for i, (weight, bias) in enumerate(zip(leaves[:4], leaves[4:])):
            hidden = torch.baddbmm(bias, hidden, weight)
            hidden = nn.functional.silu(hidden) if i < 3 else hidden
        (hidden.squeeze(-1) - rows[..., 2]).pow(2).mean(dim=1).sum().backward()
        assert torch.equal(net.grad, torch.cat([leaf.grad.reshape(-1) for leaf in leaves]))

        # five steps of Adam under the cosine schedule, from the same gradients
        param = torch.randn(300, generator=torch.Generator().manual_seed(1))
        grads = torch.randn(5, 300, generator=torch.Generator().manual_seed(2))
        reference = param.clone().requires_grad_(True)
        optimizer = torch.optim.Adam([reference], lr=2e-2)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, 5)
        exp_avg, exp_avg_sq = torch.zeros(300), torch.zeros(300)
        for step, (grad, rate) in enumerate(zip(grads, _cosine_rates(2e-2, 5)), start=1):
            reference.grad = grad.clone()
            optimizer.step()
            schedule.step()
            _adam_step(param, grad, exp_avg, exp_avg_sq, step, rate)
            assert torch.equal(param, reference.detach())


@pytest.mark.slow
def test_distribution_matching_guidance_is_often_inaccurate(teacher, trajectories):
    _, paths = trajectories
    matching = distill.train_distribution_matching(teacher, paths[-1], seed=0)
    assert _wasserstein(matching.samples, paths[-1]) < 0.2
    assert matching.inaccurate_fraction > 0.3
    assert matching.inaccurate.shape == matching.eps.shape


# --------------------------------------------------------------------------- API, CLI, validation

SMALL = {
    "num_points": 200,
    "num_seeds": 2,
    "M_values": (0.0, 1.0),
    "fig2f_M": (0.0,),
    "student_train_steps": 50,
}


def test_run_toy_returns_figures_and_tables():
    result = run_toy({**SMALL, "M": 1.0})
    assert set(result.figures) == {"trajectories", "distribution_matching", "useless_vs_M", "student_results"}
    assert list(result.table["M"]) == [0.0, 1.0]
    assert list(result.students["M"]) == [0.0, 1.0]
    assert result.summary["useless_trajectory"] == 0.0
    assert result.summary["useless_forward_diffusion"] > 0.0
    assert result.samples["teacher"].shape == (200,)


@pytest.mark.slow
def test_cli_json_and_figures(tmp_path, capsys):
    assert (
        main(
            [
                "--json",
                "--out",
                str(tmp_path),
                "--seeds",
                "2",
                "--M",
                "0,1",
                "--fig2f-M",
                "0",
                "--num-points",
                "200",
            ]
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    rows = report["rows"]
    assert [row["M"] for row in rows] == [0.0, 1.0]
    assert rows[0]["forward_diffusion"] == 0.0 and rows[1]["forward_diffusion"] > 0.0
    assert all(row["trajectory"] == 0.0 for row in rows)
    for name in ("fig2e", "fig2f", "fig2ab_trajectories", "fig2cd_distribution_matching"):
        assert (tmp_path / f"{name}.png").stat().st_size > 1000
        assert (tmp_path / f"{name}.html").stat().st_size > 1000


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"M": -1.0}, "`M` must be >= 0 but is -1.0"),
        ({"M": math.nan}, "`M` must be >= 0"),
        ({"positions": (1.0, 1.0)}, "`positions` must be increasing"),
        ({"positions": (2.0, -1.0)}, "`positions` must be increasing"),
        ({"positions": (0.0,)}, "`positions` must hold exactly 2 numbers"),
        ({"positions": (0.0, math.inf)}, "`positions` must be finite"),
        ({"positions": ("a", 1.0)}, "`positions` must be two numbers"),
        ({"num_points": 5}, "`num_points` must be an integer in [50, 20000] but is 5"),
        ({"num_points": 100.0}, "`num_points` must be an integer"),
        ({"num_key_steps": 7}, "`num_key_steps` must divide"),
        ({"M_values": (0.0, -2.0)}, "`M_values` must be >= 0 but is -2.0"),
        ({"colour": "red"}, "unknown ToyConfig keys ['colour']"),
    ],
)
def test_bad_parameters_raise_value_errors(values, message):
    with pytest.raises(ValueError) as error:
        ToyConfig.from_dict(values)
    assert message in str(error.value)


def test_cli_reports_bad_parameters(capsys):
    assert main(["--current-M", "-1", "--json"]) == 2
    assert "`M` must be >= 0" in capsys.readouterr().err


# --------------------------------------------------------------------------- layering


def test_toy_reaches_the_package_only_through_toy_core():
    """The toy uses the package's flow-matching core and nothing else of it, all through one module."""
    toy_dir = Path(__file__).resolve().parents[1] / "toy"
    reached = {}
    for path in sorted(toy_dir.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            for name in names:
                if name.split(".")[0] == "accvideo":
                    reached.setdefault(path.relative_to(toy_dir).as_posix(), set()).add(name)
    assert set(reached) == {"core.py"}, reached
    assert all(name.split(".")[1] in {"core", "sampling", "schedules"} for name in reached["core.py"])
