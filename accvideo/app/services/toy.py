"""The Toy tab's domain side: the paper's 1D toy (Fig. 2) for the slider values, via `toy.api.run_toy`
(what `python -m toy` calls)."""

from __future__ import annotations

from accvideo.util.checks import check_int

# The Toy tab's slider ranges, here because the warm-up precomputes over them.
LOWER_RANGE, UPPER_RANGE, POSITION_STEP = (-3.0, -0.1), (0.1, 3.0), 0.1
POINTS_RANGE, POINTS_STEP = (200, 5000), 100
NUM_KEY_STEPS = 5  # the toy's students take 5 Euler steps: one distillation point per noise and step


def position_spacings() -> list[float]:
    """Every ``upper - lower`` the position sliders can give (0.2 to 6.0 by 0.1), nearest the default first."""
    lowest = round(UPPER_RANGE[0] - LOWER_RANGE[1], 1)
    highest = round(UPPER_RANGE[1] - LOWER_RANGE[0], 1)
    count = round((highest - lowest) / POSITION_STEP) + 1
    spacings = [round(lowest + i * POSITION_STEP, 1) for i in range(count)]
    return sorted(spacings, key=lambda spacing: abs(spacing - 2.0))  # the default is -1, 1: small moves first


def warm_up_toy() -> float:
    """Fill the toy's caches for the default sliders, then distribution matching for every position
    spacing (from the disk cache after the first start). For a thread at app start; returns seconds."""
    from toy.api import warm_up

    return warm_up(spacings=position_spacings())


def sample_count_note(num_points: int, num_distillation_points: int) -> str:
    """What the sample count counts, in one sentence for the summary."""
    return (f"Sample count {num_points}: {num_points} noises, each giving one distillation point at each of the "
            f"{NUM_KEY_STEPS} key steps, so {num_distillation_points} points per method; the students' "
            f"histograms (f) use {num_points} other noises.")


def toy_update(M, noise_mismatch, lower, upper, num_points) -> tuple[dict, str]:
    """Run the 1D toy for the slider values: (plotly figures by name, summary markdown)."""
    from toy.api import ToyConfig, run_toy  # here: the toy package is imported when the tab is first used

    config = ToyConfig(M=float(M), noise_mismatch=bool(noise_mismatch), positions=(float(lower), float(upper)),
                       num_points=check_int(num_points, "num_points", 50, 20_000))
    result = run_toy(config)
    s = result.summary
    total = s["num_distillation_points"]
    summary = (f"**M = {s['M']:g}**, noise mismatch {'on' if s['noise_mismatch'] else 'off'}: "
               f"{100 * s['useless_forward_diffusion']:.1f} % of forward-diffusion distillation points are useless "
               f"({s['num_useless_forward_diffusion']} of {total}), "
               f"{100 * s['useless_trajectory']:.1f} % of teacher-trajectory points "
               f"({s['num_useless_trajectory']} of {total}). ({result.seconds:.2f} s)\n\n"
               + sample_count_note(config.num_points, total))
    return result.figures, summary
