"""``judgekit compare``: the command line of :mod:`judgekit.compare`."""

from __future__ import annotations

import argparse
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from judgekit.cli.errors import Parser, report
from judgekit.compare.runs import DEFAULT_STATISTICS, PREFERENCE_STATISTICS, compare, fail
from judgekit.errors import JudgekitError

__all__ = ["main"]


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="judgekit compare",
        description="Compare judgekit runs (by default the latest sweep's jobs) with a baseline: "
        "agreement with intervals, paired bootstrap differences and a forest plot, printed, "
        "written to --out and logged to MLflow as a summary run.",
    )
    p.add_argument(
        "--tracking-uri",
        metavar="URI",
        default="sqlite:///mlflow.db",
        help="MLflow store (default: %(default)s)",
    )
    p.add_argument(
        "--experiment",
        metavar="NAME",
        default="judgekit",
        help="experiment of the runs (default: %(default)s)",
    )
    which = p.add_mutually_exclusive_group()
    which.add_argument(
        "--sweep",
        metavar="SWEEP_ID",
        help="a sweep id (the sweep directory) or 'latest'; default: the latest sweep if any "
        "run has one, else every FINISHED run of the experiment",
    )
    which.add_argument("--runs", nargs="+", metavar="ID", help="compare exactly these run ids")
    p.add_argument(
        "--baseline", metavar="RUN_ID", help="default: job 0 of the sweep, else the earliest run"
    )
    p.add_argument("--score", metavar="NAMES", type=_names, help="comma-separated; default: all")
    p.add_argument(
        "--statistics",
        metavar="NAMES",
        type=_names,
        help=f"comma-separated; each score uses those valid for its kind (default: "
        f"{','.join(DEFAULT_STATISTICS)} for a range score, {','.join(PREFERENCE_STATISTICS)} "
        "for a preference score)",
    )
    p.add_argument(
        "--resamples",
        metavar="N",
        type=int,
        default=1000,
        help="paired bootstrap resamples (default: %(default)s)",
    )
    p.add_argument(
        "--confidence",
        metavar="LEVEL",
        type=float,
        default=0.95,
        help="confidence level of the intervals (default: %(default)s)",
    )
    p.add_argument(
        "--min-shared",
        metavar="N",
        type=int,
        default=10,
        help="fewest examples both runs scored for a verdict; fewer: not comparable "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--out", metavar="DIR", type=Path, help="output directory (default: compare/<timestamp>)"
    )
    p.add_argument("--no-log", action="store_true", help="do not log the summary run to MLflow")
    return p


def _check_options(args: argparse.Namespace) -> None:
    from judgekit.stats.bootstrap import COMPARABLE

    known = [*COMPARABLE, *PREFERENCE_STATISTICS]
    unknown = [s for s in args.statistics or [] if s not in known]
    if unknown or args.statistics == []:
        raise fail(
            f"--statistics: {', '.join(unknown) or 'none given'} cannot be compared; "
            f"choose from {', '.join(COMPARABLE)} (range scores) or "
            f"{', '.join(PREFERENCE_STATISTICS)} (preference scores)"
        )
    if args.resamples < 1:
        raise fail(f"--resamples: {args.resamples} is not valid; use 1 or more")
    if not 0 < args.confidence < 1:
        raise fail(f"--confidence: {args.confidence} is not valid; use a value in (0, 1)")
    if args.min_shared < 1:
        raise fail(f"--min-shared: {args.min_shared} is not valid; use 1 or more")


def _client(uri: str) -> Any:
    """An MLflow client on ``uri``; a SQLite store must exist (MLflow would create an empty one)
    and be a database, a server must answer (:func:`judgekit.tracking.store.check_store`)."""
    from judgekit.tracking.store import bound_http_retries, check_store

    if uri.startswith("sqlite:///"):
        path = Path(uri[len("sqlite:///") :])
        if not path.exists():
            raise fail(
                f"--tracking-uri: no MLflow store at {path.resolve()} ({uri}); run judgekit "
                "from that directory first, or point --tracking-uri at the store"
            )
    bound_http_retries()
    check_store(uri, "--tracking-uri")
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def _run(args: argparse.Namespace) -> int:
    from mlflow.exceptions import MlflowException

    from judgekit.compare.report import format_text, log_summary, write_outputs

    _check_options(args)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    try:
        comparison = compare(
            _client(args.tracking_uri),
            args.experiment,
            sweep=args.sweep,
            run_ids=args.runs,
            baseline=args.baseline,
            scores=args.score,
            statistics=args.statistics,
            resamples=args.resamples,
            confidence=args.confidence,
            min_shared=args.min_shared,
        )
        out = args.out or Path("compare") / datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
        paths = write_outputs(comparison, out)
        print(format_text(comparison))
        print(f"outputs: {out}")
        if not args.no_log:
            run_id = log_summary(comparison, paths, args.tracking_uri, args.experiment)
            print(
                f"mlflow: summary run {run_id} in experiment {args.experiment!r} ({args.tracking_uri})"
            )
    except MlflowException as err:
        lines = str(err.message).strip().splitlines()
        raise fail(f"mlflow: {lines[0] if lines else type(err).__name__}") from None
    return 0


def main(argv: list[str]) -> int:
    """``judgekit compare ARGS``: 0 when the comparison is written, 2 for a problem to fix."""
    from judgekit.logs import quiet_third_party_loggers

    quiet_third_party_loggers()
    try:
        return _run(_parser().parse_args(argv))
    except JudgekitError as err:
        return report(err)
    except SystemExit as exit:  # --help
        return int(exit.code or 0)
