"""``judgekit estimate`` and ``judgekit alt-test``: the command lines of :mod:`judgekit.humanscale`."""

from __future__ import annotations

import argparse
import os
from datetime import datetime
from pathlib import Path

from judgekit.cli.errors import Parser, report
from judgekit.errors import JudgekitError

__all__ = ["main"]


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN_ID_OR_DIR", help="a finished run's directory or MLflow id")
    p.add_argument(
        "--tracking-uri",
        metavar="URI",
        default="sqlite:///mlflow.db",
        help="MLflow store: where a run id is found and the summary run is logged "
        "(default: %(default)s)",
    )
    p.add_argument("--score", metavar="NAMES", type=_names, help="comma-separated; default: all")
    p.add_argument("--out", metavar="DIR", type=Path, help="output directory")
    p.add_argument(
        "--experiment", metavar="NAME", help="experiment of the summary run (default: the run's)"
    )
    p.add_argument("--no-log", action="store_true", help="do not log the summary run to MLflow")


def _estimate_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="judgekit estimate",
        description="The prediction-powered (PPI++) estimate of the mean human score (a "
        "preference score: the human win rate) of a finished run, from its rows with a human "
        "label and the judge's scores of the rest, beside the judge-only and human-only means; "
        "per system when the rows name one; printed, written to --out and logged to MLflow.",
    )
    _common(p)
    p.add_argument(
        "--labels",
        metavar="N",
        type=int,
        help="keep a seeded N of the labelled rows as labelled; the other labels are hidden "
        "from the estimates and give the truth to compare them with",
    )
    p.add_argument("--seed", metavar="S", type=int, default=0, help="for --labels (default: 0)")
    p.add_argument(
        "--width",
        metavar="W",
        type=float,
        help="report how many labelled rows the PPI++ interval needs to be W wide, from the "
        "variances measured",
    )
    return p


def _alt_test_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="judgekit alt-test",
        description="The alternative annotator test (Calderon et al. 2025) of a finished run "
        "whose examples carry each annotator's label: can the judge replace a rater? With the "
        "human ceiling of a pointwise score; printed, written to --out and logged to MLflow.",
    )
    _common(p)
    p.add_argument(
        "--epsilon",
        metavar="E",
        type=float,
        help="the cost-benefit margin (default: the run's stats.alt_test_epsilon, 0.2)",
    )
    return p


def _run(name: str, args: argparse.Namespace) -> int:
    from judgekit.humanscale.runs import load_run, log_summary

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    run = load_run(args.run, args.tracking_uri)
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    if name == "estimate":
        from judgekit.humanscale.estimate import estimate, format_estimates, write_estimates

        found = estimate(
            run, labels=args.labels, seed=args.seed, width=args.width, scores=args.score
        )
        out = args.out or Path("estimate") / stamp
        paths, text, metrics = write_estimates(found, out), format_estimates(found), found.metrics()
        params = {"labels": str(args.labels), "seed": str(args.seed), "width": str(args.width)}
        kind = "estimate"
    else:
        from judgekit.humanscale.alttest import alt_test_run, format_alt_test, write_alt_test

        tested = alt_test_run(run, epsilon=args.epsilon, scores=args.score)
        out = args.out or Path("alt_test") / stamp
        paths, text, metrics = (
            write_alt_test(tested, out),
            format_alt_test(tested),
            tested.metrics(),
        )
        params, kind = {"epsilon": str(tested.epsilon)}, "alt_test"
    print(text)
    print(f"outputs: {out}")
    if not args.no_log:
        run_id = log_summary(
            kind,
            run,
            params=params,
            metrics=metrics,
            paths=paths,
            uri=args.tracking_uri,
            experiment=args.experiment,
        )
        print(f"mlflow: summary run {run_id} ({args.tracking_uri})")
    return 0


def main(name: str, argv: list[str]) -> int:
    """``judgekit estimate|alt-test ARGS``: 0 when the figures are written, 2 for a problem."""
    from judgekit.logs import quiet_third_party_loggers

    quiet_third_party_loggers()
    parser = _estimate_parser() if name == "estimate" else _alt_test_parser()
    try:
        return _run(name, parser.parse_args(argv))
    except JudgekitError as err:
        return report(err)
    except SystemExit as exit:  # --help
        return int(exit.code or 0)
