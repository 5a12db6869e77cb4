"""``judgekit compare``: put the runs of a sweep side by side and test their differences.

Collects finished judgekit runs from MLflow (a sweep, explicit run ids, or the whole
experiment), labels each by what varies between them (``prompt=v2``), tabulates the logged
agreement statistics with their bootstrap intervals, and compares every run with a baseline by a
paired bootstrap over the examples both scored
(:func:`judgekit.stats_bootstrap.paired_comparison`). :mod:`judgekit.compare_report` prints the
result, writes it to ``--out`` and logs it as a summary run (tag ``judgekit.kind=comparison``),
which later comparisons leave out.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from judgekit.errors import JudgekitError

__all__ = [
    "ComparedRun",
    "Comparison",
    "collect_runs",
    "compare",
    "label_runs",
    "load_artifacts",
    "main",
]

DEFAULT_STATISTICS = (
    *("pearson", "spearman", "kendall", "mae", "rmse"),
    *("exact_agreement", "within1_agreement", "qwk"),
)
KIND_TAG, SWEEP_TAG, JOB_TAG = "judgekit.kind", "judgekit.sweep_id", "judgekit.sweep_job"
LABEL_TAGS = {
    "judge": "judgekit.judge",
    "model": "judgekit.judge_model",
    "prompt": "judgekit.prompt",
    "score": "judgekit.score",
    "dataset": "judgekit.dataset",
}
"""Short label key → the tag it is read from, in the order labels use them."""
CONNECTION_KEYS = frozenset({"judge.api_base", "judge.api_key_env", "judge.timeout_s"})
"""Overrides that say how a judge was reached, not what it was: used in labels last."""


@dataclass
class ComparedRun:
    """One judgekit run as the comparison sees it: its MLflow record and its results table."""

    run_id: str
    name: str
    tags: dict[str, str]
    metrics: dict[str, float]
    params: dict[str, str]
    start_time: int
    label: str = ""
    """What sets this run apart from the others (``prompt=v2``); set by :func:`label_runs`."""
    results: pd.DataFrame | None = None
    """Its ``results.parquet``; None when the run has none."""
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    """Declared (minimum, maximum) per score, from its ``resolved_config.json``."""

    @classmethod
    def from_mlflow(cls, run: Any) -> ComparedRun:
        """Wrap an ``mlflow.entities.Run``."""
        data, info = run.data, run.info
        name = info.run_name or data.tags.get("mlflow.runName", info.run_id)
        return cls(info.run_id, name, data.tags, data.metrics, data.params, info.start_time or 0)

    @property
    def scores(self) -> list[str]:
        """Scores with agreement figures (human labels), in the order they were logged."""
        names = [key[: -len("/n_scored")] for key in self.metrics if key.endswith("/n_scored")]
        # <score>_preference is derived from pairs of rows, not a per-example score: not paired here.
        return [n for n in names if not (n.endswith("_preference") and n[:-11] in names)]


@dataclass
class Comparison:
    """Runs side by side (``table``) and each run against the baseline (``paired``)."""

    runs: list[ComparedRun]
    baseline: ComparedRun
    table: pd.DataFrame
    """One row per (run, score): statistics with ``_ci_low``/``_ci_high``, coverage, usage."""
    paired: pd.DataFrame
    """One row per (run, score, statistic) for every run but the baseline."""
    statistics: list[str]
    resamples: int
    confidence: float
    sweep_id: str | None = None


def fail(message: str) -> JudgekitError:
    """A user-facing error of the compare command (printed on one line, exit code 2)."""
    return JudgekitError(message)


# --- collecting runs -------------------------------------------------------------------------


def collect_runs(
    client: Any,
    experiment: str,
    *,
    sweep: str | None = None,
    run_ids: list[str] | None = None,
    baseline: str | None = None,
) -> tuple[list[ComparedRun], ComparedRun, str | None]:
    """The runs to compare in order, the baseline among them, and the sweep id they come from."""
    sweep_id = None
    if run_ids:
        runs = [_get_run(client, run_id) for run_id in dict.fromkeys(run_ids)]
    else:
        runs, sweep_id = _select_sweep(_experiment_runs(client, experiment), sweep, experiment)
    runs = _order(runs)
    base = next((r for r in runs if r.run_id == baseline), None) if baseline else runs[0]
    if base is None:
        base = _get_run(client, str(baseline))
        runs = [base, *runs]
    if len(runs) < 2:
        where = f"sweep {sweep_id}" if sweep_id else f"experiment {experiment!r}"
        raise fail(
            f"only 1 run to compare in {where} ({runs[0].run_id}); compare needs 2 or more: "
            "pass --runs ID ID ... or --baseline RUN_ID"
        )
    return runs, base, sweep_id


def _get_run(client: Any, run_id: str) -> ComparedRun:
    from mlflow.exceptions import MlflowException

    try:
        run = ComparedRun.from_mlflow(client.get_run(run_id))
    except MlflowException:
        raise fail(f"run {run_id!r} not found in {client.tracking_uri}") from None
    if run.tags.get(KIND_TAG) == "comparison":
        raise fail(f"run {run_id!r} is a comparison summary, not a judgekit run")
    return run


def _experiment_runs(client: Any, experiment: str) -> list[ComparedRun]:
    """The FINISHED judgekit runs of ``experiment`` (comparison summaries left out)."""
    found = client.get_experiment_by_name(experiment)
    if found is None:
        names = ", ".join(e.name for e in client.search_experiments()) or "none"
        raise fail(
            f"--experiment: no experiment {experiment!r} in {client.tracking_uri}; "
            f"experiments there: {names}"
        )
    runs, token = [], None
    while True:
        page = client.search_runs(
            [found.experiment_id], "attributes.status = 'FINISHED'", page_token=token
        )
        runs += [ComparedRun.from_mlflow(r) for r in page]
        token = page.token
        if not token:
            break
    runs = [r for r in runs if r.tags.get(KIND_TAG) != "comparison"]
    if not runs:
        raise fail(f"no FINISHED judgekit runs in experiment {experiment!r}; run judgekit first")
    return runs


def _select_sweep(
    runs: list[ComparedRun], sweep: str | None, experiment: str
) -> tuple[list[ComparedRun], str | None]:
    """The runs of one sweep (``latest`` = that of the newest run with a sweep id)."""
    swept = [r for r in runs if r.tags.get(SWEEP_TAG)]
    if sweep is None and not swept:
        return runs, None
    if not swept:
        raise fail(
            f"--sweep {sweep}: no run in experiment {experiment!r} has a {SWEEP_TAG} tag "
            "(runs of `judgekit -m ...` do); pass --runs ID ID ... instead"
        )
    ids = [r.tags[SWEEP_TAG] for r in sorted(swept, key=lambda r: r.start_time)]
    if sweep in (None, "latest"):
        chosen: str | None = ids[-1]
    else:  # the tag value, or the sweep directory as given on the command line
        chosen = next((s for s in (sweep, str(Path(sweep).resolve())) if s in ids), None)
    if chosen is None:
        known = ", ".join(dict.fromkeys(reversed(ids)))
        raise fail(f"--sweep {sweep}: no run has this sweep id; sweeps (newest first): {known}")
    return [r for r in swept if r.tags[SWEEP_TAG] == chosen], chosen


def _order(runs: list[ComparedRun]) -> list[ComparedRun]:
    """By job number when all runs are jobs of one sweep, else by start time."""
    one_sweep = len({r.tags.get(SWEEP_TAG) for r in runs}) == 1
    if one_sweep and all(r.tags.get(JOB_TAG, "").isdigit() for r in runs):
        return sorted(runs, key=lambda r: int(r.tags[JOB_TAG]))
    return sorted(runs, key=lambda r: r.start_time)


# --- labels ----------------------------------------------------------------------------------


def _facts(run: ComparedRun) -> dict[str, str]:
    """What a run was: its judgekit tags, then the overrides of its command line."""
    facts = {short: run.tags[tag] for short, tag in LABEL_TAGS.items() if tag in run.tags}
    for override in run.tags.get("judgekit.overrides", "").split():
        key, sep, value = override.lstrip("+~").partition("=")
        if sep and key not in facts:
            facts[key] = value.replace("\\", "")
    return facts


def _distinct(facts: list[dict[str, str]], keys: list[str]) -> int:
    """How many different runs ``keys`` tell apart."""
    return len({tuple(f.get(k, "-") for k in keys) for f in facts})


def label_runs(runs: list[ComparedRun]) -> None:
    """Label each run by the fewest facts that tell the runs apart (``prompt=v2``).

    Facts are taken in order (judge, model, prompt, score, dataset, then overrides) and one is
    kept only when it separates runs the kept ones do not. Runs that nothing separates are
    labelled by run name; a label still shared gets the start of the run id.
    """
    facts = [_facts(r) for r in runs]
    keys: list[str] = []
    candidates = dict.fromkeys(k for f in facts for k in f)
    for key in sorted(candidates, key=lambda k: k in CONNECTION_KEYS):  # stable: order kept
        if _distinct(facts, [*keys, key]) > _distinct(facts, keys):
            keys.append(key)
    labels = [
        ",".join(f"{k}={f.get(k, '-')}" for k in keys) or r.name
        for r, f in zip(runs, facts, strict=True)
    ]
    counts = Counter(labels)
    for run, label in zip(runs, labels, strict=True):
        run.label = label if counts[label] == 1 else f"{label} [{run.run_id[:8]}]"


# --- artifacts -------------------------------------------------------------------------------


def load_artifacts(client: Any, runs: list[ComparedRun], dst: Path) -> None:
    """Download each run's ``results.parquet`` and declared score ranges (None/{} if absent)."""
    for run in runs:
        table = _download(client, run.run_id, "results.parquet", dst)
        run.results = pd.read_parquet(table) if table else None
        config = _download(client, run.run_id, "resolved_config.json", dst)
        specs = json.loads(config.read_text())["score"]["scores"] if config else []
        run.ranges = {
            s["name"]: (float(s["minimum"]), float(s["maximum"]))
            for s in specs
            if s.get("minimum") is not None and s.get("maximum") is not None
        }


def _download(client: Any, run_id: str, name: str, dst: Path) -> Path | None:
    target = dst / run_id
    target.mkdir(parents=True, exist_ok=True)
    try:
        return Path(client.download_artifacts(run_id, name, str(target)))
    except Exception:  # MlflowException or OSError: the run simply has no such artifact
        return None


# --- the command -----------------------------------------------------------------------------


def compare(
    client: Any,
    experiment: str = "judgekit",
    *,
    sweep: str | None = None,
    run_ids: list[str] | None = None,
    baseline: str | None = None,
    scores: list[str] | None = None,
    statistics: tuple[str, ...] | list[str] = DEFAULT_STATISTICS,
    resamples: int = 1000,
    confidence: float = 0.95,
    min_shared: int = 10,
) -> Comparison:
    """Collect, label and load the runs, then build both tables (see the module docstring).

    A run whose data differ from the baseline's (dataset digest), or that shares fewer than
    ``min_shared`` scored examples with it, is ``not comparable``: no verdict.
    """
    from judgekit.compare_tables import metrics_table, paired_table

    runs, base, sweep_id = collect_runs(
        client, experiment, sweep=sweep, run_ids=run_ids, baseline=baseline
    )
    label_runs(runs)
    chosen = _choose_scores(runs, scores)
    with tempfile.TemporaryDirectory(prefix="judgekit-compare-") as tmp:
        load_artifacts(client, runs, Path(tmp))
    stats = list(statistics)
    table = metrics_table(runs, base, chosen, stats)
    paired = paired_table(
        runs, base, chosen, stats, resamples=resamples, confidence=confidence, min_shared=min_shared
    )
    return Comparison(runs, base, table, paired, stats, resamples, confidence, sweep_id)


def _choose_scores(runs: list[ComparedRun], wanted: list[str] | None) -> list[str]:
    available = list(dict.fromkeys(s for run in runs for s in run.scores))
    if not available:
        raise fail("none of the runs has agreement figures (a score with human labels) to compare")
    unknown = [s for s in wanted or [] if s not in available]
    if unknown:
        raise fail(
            f"--score: {', '.join(unknown)} not logged by these runs; "
            f"scores with agreement figures: {', '.join(available)}"
        )
    return list(wanted) if wanted else available


class _Parser(argparse.ArgumentParser):
    """Argument errors become one ``judgekit: error:`` line, like every other error."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        raise fail(f"{message} (see judgekit compare --help)")


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
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
        default=list(DEFAULT_STATISTICS),
        help=f"comma-separated (default: {','.join(DEFAULT_STATISTICS)})",
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
    from judgekit.stats_bootstrap import COMPARABLE

    unknown = [s for s in args.statistics if s not in COMPARABLE]
    if unknown or not args.statistics:
        raise fail(
            f"--statistics: {', '.join(unknown) or 'none given'} cannot be compared; "
            f"choose from {', '.join(COMPARABLE)}"
        )
    if args.resamples < 1:
        raise fail(f"--resamples: {args.resamples} is not valid; use 1 or more")
    if not 0 < args.confidence < 1:
        raise fail(f"--confidence: {args.confidence} is not valid; use a value in (0, 1)")
    if args.min_shared < 1:
        raise fail(f"--min-shared: {args.min_shared} is not valid; use 1 or more")


def _client(uri: str) -> Any:
    """An MLflow client on ``uri``; a SQLite store must exist (MLflow would create an empty one)
    and be a database, a server must answer (:func:`judgekit.tracking_store.check_store`)."""
    from judgekit.tracking_store import bound_http_retries, check_store

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

    from judgekit.compare_report import format_text, log_summary, write_outputs

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
    from judgekit.cli import quiet_third_party_loggers

    quiet_third_party_loggers()
    try:
        return _run(_parser().parse_args(argv))
    except JudgekitError as err:
        print(f"judgekit: error: {err}", file=sys.stderr)
        return err.exit_code
    except SystemExit as exit:  # --help
        return int(exit.code or 0)
