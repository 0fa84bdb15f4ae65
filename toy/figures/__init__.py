"""Figures of the toy: plotly for the app (and HTML), matplotlib for the PNGs in ``docs/``.

Both sets draw the same four panels from a ``ToyResult``:
``trajectories`` (Fig. 2a-b), ``distribution_matching`` (Fig. 2c-d),
``useless_vs_M`` (Fig. 2e) and ``student_results`` (Fig. 2f).
:mod:`~toy.figures.data` prepares what both draw, :mod:`~toy.figures.interactive`
draws it in plotly, :mod:`~toy.figures.png` in matplotlib (imported only when a PNG is
written).
"""

from toy.figures.data import FIGURE_FILES
from toy.figures.interactive import plotly_figures, prepare_layouts, write_html
from toy.figures.png import write_pngs

__all__ = ["FIGURE_FILES", "plotly_figures", "prepare_layouts", "write_html", "write_pngs"]
