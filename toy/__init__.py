"""The AccVideo 1D toy (paper Fig. 2): why distilling on forward-diffused points under dataset
or noise mismatch gives unreliable guidance, and why the teacher's own trajectories do not.

App entry points: ``run_toy(config) -> ToyResult`` (plotly figures and pandas tables),
``useless_table(config)`` (the Fig. 2e table), ``warm_up()`` (fill the caches at start)
and ``benchmark()``. CLI: ``python -m toy``.
The time convention is written once, in :mod:`toy.teacher`.
"""

from toy.api import ToyConfig, ToyResult, benchmark, run_toy, useless_table, warm_up

__all__ = ["ToyConfig", "ToyResult", "benchmark", "run_toy", "useless_table", "warm_up"]
