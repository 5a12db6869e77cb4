"""``judgekit compare``: put the runs of a sweep side by side and test their differences.

Collects finished judgekit runs from MLflow (a sweep, explicit run ids, or the whole
experiment), labels each by what varies between them (``prompt=v2``), tabulates the logged
agreement statistics with their bootstrap intervals, and compares every run with a baseline by a
paired bootstrap over the examples both scored
(:func:`judgekit.stats.bootstrap.paired_comparison`). A preference score (``kind: preference`` in
the runs' ``resolved_config.json``) is compared on its own statistics, ``accuracy``,
``accuracy_with_ties`` and ``kappa`` (:func:`judgekit.stats.pairwise.paired_pairwise_comparison`);
a range score on the pointwise ones. A judge panel's members (tag ``judgekit.panel_members``,
artifact ``members.parquet``) join as runs of their own right after the panel
(:mod:`judgekit.compare.members`); runs made with ``runner.samples`` > 1 bring their
agreement-vs-draws curves, overlaid when two or more have one.
:mod:`judgekit.compare.report` prints the result, writes it to ``--out`` and logs it as a
summary run (tag ``judgekit.kind=comparison``), which later comparisons leave out.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from judgekit.compare.records import ComparedRun, Comparison, score_kind
from judgekit.errors import JudgekitError

__all__ = [
    "DEFAULT_STATISTICS",
    "PREFERENCE_STATISTICS",
    "ComparedRun",
    "Comparison",
    "collect_runs",
    "compare",
    "curves",
    "label_runs",
    "load_artifacts",
    "score_kind",
    "with_members",
]

DEFAULT_STATISTICS = (
    *("pearson", "spearman", "kendall", "mae", "rmse"),
    *("exact_agreement", "within1_agreement", "qwk"),
)
"""Statistics compared by default for a range (pointwise) score."""
PREFERENCE_STATISTICS = ("accuracy", "accuracy_with_ties", "kappa")
"""Statistics compared by default, and the only ones comparable, for a preference score
(:data:`judgekit.stats.pairwise.PAIRED_PAIRWISE_STATISTICS`)."""
KIND_TAG, SWEEP_TAG, JOB_TAG = "judgekit.kind", "judgekit.sweep_id", "judgekit.sweep_job"
NOT_RUNS = {
    "comparison": "a comparison summary",
    "optimization": "a judgekit optimize search (its test runs are judgekit runs)",
    "optimization_candidate": "a candidate of a judgekit optimize search",
    "estimate": "a judgekit estimate summary (human-scale estimates of another run)",
    "alt_test": "a judgekit alt-test summary (the alt-test of another run)",
    "audit": "a judgekit audit (its effects are not agreement statistics)",
    "audit_variant": "a variant of a judgekit audit (no run directory of its own)",
}
"""Runs with these ``judgekit.kind`` tags have no judged rows of their own: never compared."""
LABEL_TAGS = {
    "judge": "judgekit.judge",
    "model": "judgekit.judge_model",
    "prompt": "judgekit.prompt",
    "score": "judgekit.score",
    "dataset": "judgekit.dataset",
}
"""Short label key → the tag it is read from, in the order labels use them."""
CURVE_FILE = "agreement_vs_samples.csv"
"""A run's agreement-vs-draws curve (``runner.samples`` > 1), overlaid across runs."""
CONNECTION_KEYS = frozenset({"judge.api_base", "judge.api_key_env", "judge.timeout_s"})
"""Overrides that say how a judge was reached, not what it was: used in labels last."""


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
    from judgekit.compare.members import PANEL_TAG

    if len(runs) < 2 and not runs[0].tags.get(PANEL_TAG):  # a panel is compared with its members
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
    if run.tags.get(KIND_TAG) in NOT_RUNS:
        what = NOT_RUNS[run.tags[KIND_TAG]]
        raise fail(f"run {run_id!r} is {what}, not a judgekit run")
    return run


def _experiment_runs(client: Any, experiment: str) -> list[ComparedRun]:
    """The FINISHED judgekit runs of ``experiment`` (comparison summaries and optimisation
    searches left out)."""
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
    runs = [r for r in runs if r.tags.get(KIND_TAG) not in NOT_RUNS]
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
    """Download each run's ``results.parquet``, declared score ranges and kinds, and its
    agreement-vs-draws curve (None/{} if absent)."""
    for run in runs:
        table = _download(client, run.run_id, "results.parquet", dst)
        run.results = pd.read_parquet(table) if table else None
        curve = _download(client, run.run_id, CURVE_FILE, dst)
        run.curve = pd.read_csv(curve) if curve else None
        config = _download(client, run.run_id, "resolved_config.json", dst)
        specs = json.loads(config.read_text())["score"]["scores"] if config else []
        run.ranges = {
            s["name"]: (float(s["minimum"]), float(s["maximum"]))
            for s in specs
            if s.get("minimum") is not None and s.get("maximum") is not None
        }
        run.integer = {s["name"]: bool(s["integer"]) for s in specs if s.get("integer") is not None}
        run.kinds = {s["name"]: str(s["kind"]) for s in specs if s.get("kind")}


def with_members(client: Any, runs: list[ComparedRun], dst: Path) -> list[ComparedRun]:
    """``runs`` with each judge panel's members as runs right after it
    (:mod:`judgekit.compare.members`)."""
    from judgekit.compare.members import MEMBERS_FILE, add_members, member_names

    tables = {}
    for run in runs:
        path = _download(client, run.run_id, MEMBERS_FILE, dst) if member_names(run) else None
        if path is not None:
            tables[run.run_id] = pd.read_parquet(path)
    return add_members(runs, tables)


def curves(runs: list[ComparedRun]) -> pd.DataFrame | None:
    """The agreement-vs-draws curves of every run that has one, labelled by ``run`` (and
    ``run_id``); None when fewer than two runs have one (nothing to overlay)."""
    having = [run for run in runs if run.curve is not None and not run.curve.empty]
    if len(having) < 2:
        return None
    parts = [r.curve.assign(run=r.label, run_id=r.run_id) for r in having if r.curve is not None]
    table = pd.concat(parts, ignore_index=True)
    return table[["run", "run_id", *(c for c in table.columns if c not in ("run", "run_id"))]]


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
    statistics: Sequence[str] | None = None,
    resamples: int = 1000,
    confidence: float = 0.95,
    min_shared: int = 10,
) -> Comparison:
    """Collect, label and load the runs, then build both tables (see the module docstring).

    ``statistics`` None compares each score on the defaults of its kind:
    :data:`DEFAULT_STATISTICS` for a range score, :data:`PREFERENCE_STATISTICS` for a preference
    score. Given names are used for each score they are valid for; a name valid for none of the
    chosen scores is an error. A run whose data differ from the baseline's (dataset digest), or
    that shares fewer than ``min_shared`` scored examples with it, is ``not comparable``: no
    verdict.
    """
    from judgekit.compare.tables import metrics_table, paired_table

    runs, base, sweep_id = collect_runs(
        client, experiment, sweep=sweep, run_ids=run_ids, baseline=baseline
    )
    label_runs(runs)
    chosen = _choose_scores(runs, scores)
    with tempfile.TemporaryDirectory(prefix="judgekit-compare-") as tmp:
        load_artifacts(client, runs, Path(tmp))
        runs = with_members(client, runs, Path(tmp))
    per_score = _statistics_per_score(chosen, [score_kind(runs, s) for s in chosen], statistics)
    stats = list(dict.fromkeys(name for names in per_score.values() for name in names))
    table = metrics_table(runs, base, chosen, per_score)
    paired = paired_table(
        runs,
        base,
        chosen,
        per_score,
        resamples=resamples,
        confidence=confidence,
        min_shared=min_shared,
    )
    return Comparison(
        runs, base, table, paired, stats, resamples, confidence, sweep_id, per_score, curves(runs)
    )


def _statistics_per_score(
    scores: list[str], kinds: list[str], wanted: Sequence[str] | None
) -> dict[str, list[str]]:
    """Each score's statistics: the defaults of its kind, or the given names valid for it."""
    from judgekit.stats.bootstrap import COMPARABLE

    valid = {"pointwise": COMPARABLE, "preference": PREFERENCE_STATISTICS}
    if wanted is None:
        defaults = {"pointwise": DEFAULT_STATISTICS, "preference": PREFERENCE_STATISTICS}
        return {s: list(defaults[k]) for s, k in zip(scores, kinds, strict=True)}
    usable = [name for kind in dict.fromkeys(kinds) for name in valid[kind]]
    unusable = [name for name in wanted if name not in usable]
    if unusable or not wanted:
        chosen = ", ".join(f"{s} ({k})" for s, k in zip(scores, kinds, strict=True))
        raise fail(
            f"--statistics: {', '.join(unusable) or 'none given'} cannot be compared for the "
            f"chosen scores {chosen}; choose from {', '.join(usable)}"
        )
    return {
        s: [name for name in wanted if name in valid[k]] for s, k in zip(scores, kinds, strict=True)
    }


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
