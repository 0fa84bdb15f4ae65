"""CLI: ``python -m toy --out docs/toy [--json] [--seeds N] [--M 0,0.25,...] [--bench] [--teacher mlp]``.

Writes the four figures as PNG and HTML into ``--out``; ``--json`` prints the Fig. 2e
table as one JSON object instead of the human summary; ``--bench`` prints the median
time of one parameter update at the given sizes.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from toy.api import ToyConfig, benchmark, run_toy

logger = logging.getLogger("toy")


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers but got {text!r}") from None


_PANELS = {"ab": "trajectories", "cd": "distribution_matching", "e": "useless_vs_M", "f": "student_results"}


def _figure_keys(text: str) -> set[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in _PANELS]
    if unknown or not names:
        raise ValueError(f"`--figures` must list some of {sorted(_PANELS)} but is {text!r}")
    return {_PANELS[name] for name in names}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m toy", description="The AccVideo 1D toy (paper Fig. 2).")
    parser.add_argument(
        "--out", default=None, help="folder for the PNG and HTML figures (none: write nothing)"
    )
    parser.add_argument("--json", action="store_true", help="print the Fig. 2e table as one JSON object")
    parser.add_argument("--bench", action="store_true", help="print the median time of one parameter update")
    parser.add_argument("--M", type=_floats, default=None, help="Fig. 2e values of M, e.g. 0,0.25,0.5,1")
    parser.add_argument("--current-M", type=float, default=ToyConfig.M, help="M of panels a-b")
    parser.add_argument("--fig2f-M", type=_floats, default=None, help="M values of the Fig. 2f students")
    parser.add_argument("--seeds", type=int, default=ToyConfig.num_seeds, help="seeds for the Fig. 2e bands")
    parser.add_argument("--seed", type=int, default=ToyConfig.seed)
    parser.add_argument("--positions", type=_floats, default=ToyConfig.positions, help="the two data points")
    parser.add_argument("--num-points", type=int, default=ToyConfig.num_points)
    parser.add_argument("--noise-mismatch", action="store_true", help="pair noise with data at random")
    parser.add_argument(
        "--teacher",
        choices=("exact", "mlp"),
        default=ToyConfig.teacher_kind,
        help="the closed-form velocity (default, what the app uses) or the MLP trained by flow matching",
    )
    parser.add_argument(
        "--figures",
        default="ab,cd,e,f",
        help="which panels to write: any of ab (trajectories), cd (distribution matching), e, f",
    )
    parser.add_argument("--inline-js", action="store_true", help="embed plotly.js in the HTML files")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    values = {
        "M": args.current_M,
        "num_seeds": args.seeds,
        "seed": args.seed,
        "positions": args.positions,
        "num_points": args.num_points,
        "noise_mismatch": args.noise_mismatch,
        "teacher_kind": args.teacher,
    }
    if args.M is not None:
        values["M_values"] = args.M
    if args.fig2f_M is not None:
        values["fig2f_M"] = args.fig2f_M
    try:
        config = ToyConfig.from_dict(values)
        keys = _figure_keys(args.figures)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    if args.bench:
        timing = benchmark(config=config)
        logger.info("cold call (teacher training + caches): %.2f s", timing["cold_seconds"])
        logger.info("updates: %s", ", ".join(f"{t:.3f}" for t in timing["update_seconds"]))
        print(f"median time of one parameter update: {timing['median_update_seconds']:.3f} s")
        return 0

    result = run_toy(config, with_figures=args.out is not None)
    if args.out is not None:
        from toy.figures import write_html, write_pngs
        from toy.teacher import get_teacher

        teacher = get_teacher(config.teacher_config)
        figures = {key: figure for key, figure in result.figures.items() if key in keys}
        paths = write_pngs(result, teacher, args.out, keys=keys) + write_html(
            figures, args.out, args.inline_js
        )
        for path in paths:
            logger.info("wrote %s", path)

    if args.json:
        rows = [
            {key: round(float(value), 6) for key, value in row.items()}
            for row in result.table.to_dict("records")
        ]
        print(
            json.dumps(
                {
                    "positions": list(config.positions),
                    "teacher": config.teacher_kind,
                    "num_seeds": config.num_seeds,
                    "num_points_per_seed": config.num_points * config.num_key_steps,
                    "M_parameterisation": "student data = teacher data + M * N(0, 1)",
                    "rows": rows,
                }
            )
        )
    else:
        print(result.table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
        print(result.students.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
        for key, value in result.summary.items():
            print(f"{key}: {value:.4f}" if isinstance(value, float) else f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
