"""The Toy tab's domain side: the paper's 1D toy (Fig. 2) for the slider values, via `toy.api.run_toy`
(what `python -m toy` calls)."""

from __future__ import annotations

from accvideo.util.checks import check_int


def toy_update(M, noise_mismatch, lower, upper, num_points) -> tuple[dict, str]:
    """Run the 1D toy for the slider values: (plotly figures by name, summary markdown)."""
    from toy.api import ToyConfig, run_toy  # here: the toy package is imported when the tab is first used

    config = ToyConfig(M=float(M), noise_mismatch=bool(noise_mismatch), positions=(float(lower), float(upper)),
                       num_points=check_int(num_points, "num_points", 50, 20_000))
    result = run_toy(config)
    s = result.summary
    summary = (f"**M = {s['M']:g}**, noise mismatch {'on' if s['noise_mismatch'] else 'off'}: "
               f"{100 * s['useless_forward_diffusion']:.1f} % of forward-diffusion distillation points are useless "
               f"({s['num_useless_forward_diffusion']} of {s['num_distillation_points']}), "
               f"{100 * s['useless_trajectory']:.1f} % of teacher-trajectory points. ({result.seconds:.2f} s)")
    return result.figures, summary
