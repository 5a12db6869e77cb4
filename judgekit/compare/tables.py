"""The two tables of a comparison: runs side by side, and each run against the baseline.

``metrics_table`` reads what each run logged (a statistic and its bootstrap interval), plus its
failures, tokens, cost and latency from ``results.parquet``. ``paired_table`` aligns each run's
rows with the baseline's by example id and compares the two judges on the rows both scored with
:func:`judgekit.stats.bootstrap.paired_comparison` (a paired bootstrap, clustered by prompt
when prompts repeat); a preference score, whose values are verdicts (0.0 A, 0.5 tie, 1.0 B), with
:func:`judgekit.stats.pairwise.paired_pairwise_comparison` on accuracy, accuracy_with_ties and
kappa. The statistics may differ by score (a mapping score → names), by its kind. Runs that
cannot be compared (no results, data with another digest, fewer
than ``min_shared`` examples scored by both, different human labels) get the verdict
``not comparable`` and a note saying why.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from judgekit.judge.pricing import list_price_usd

if TYPE_CHECKING:
    from judgekit.compare.records import ComparedRun

__all__ = ["PAIRED_COLUMNS", "align", "different_data", "metrics_table", "paired_table"]

Statistics = Sequence[str] | Mapping[str, Sequence[str]]
"""Statistic names for every score, or per score (score → names)."""


def _for_score(statistics: Statistics, score: str) -> list[str]:
    """The statistics of ``score``: its own when given per score, else the shared names."""
    if isinstance(statistics, Mapping):
        return list(statistics.get(score, ()))
    return list(statistics)


def _every(statistics: Statistics, scores: list[str]) -> list[str]:
    """Every statistic of any of ``scores``, in order of first use: the table's columns."""
    return list(dict.fromkeys(name for s in scores for name in _for_score(statistics, s)))


def metrics_table(
    runs: list[ComparedRun], baseline: ComparedRun, scores: list[str], statistics: Statistics
) -> pd.DataFrame:
    """One row per (run, score): each statistic with its logged interval, coverage and usage.

    A statistic that is not one of the score's own (when they differ by score) is NaN.
    """
    rows = []
    columns = _every(statistics, scores)
    for run in runs:
        usage = _usage(run)
        for score in scores:
            row: dict[str, Any] = {"label": run.label, "run_id": run.run_id, "score": score}
            row["baseline"] = run is baseline
            own = set(_for_score(statistics, score))
            for name in columns:
                for suffix in ("", "_ci_low", "_ci_high"):
                    key = f"{score}/{name}{suffix}"
                    row[name + suffix] = run.metrics.get(key, math.nan) if name in own else math.nan
            for name in ("coverage", "n_scored", "n_failed"):
                row[name] = run.metrics.get(f"{score}/{name}", math.nan)
            rows.append(row | usage)
    return pd.DataFrame(rows)


def _usage(run: ComparedRun) -> dict[str, float]:
    """Failures, tokens (one response per example, cached ones included), cost, mean latency."""
    failures = run.metrics.get("failures/total")
    if failures is None:
        failures = sum(v for k, v in run.metrics.items() if k.startswith("failures/"))
    usage = {"failures": float(failures)}
    if run.results is None:
        return usage | dict.fromkeys(("tokens", "cost_usd", "latency_s"), math.nan)
    calls = run.results.drop_duplicates("example_index")
    prompt, completion = (
        calls[c].astype(float).sum(min_count=1) for c in ("prompt_tokens", "completion_tokens")
    )
    sent = calls.loc[~calls["cached"].astype(bool), "latency_s"].astype(float)
    reported = not (math.isnan(prompt) and math.isnan(completion))
    usage["tokens"] = float(np.nansum([prompt, completion])) if reported else math.nan
    usage["cost_usd"] = list_price_usd(run.tags.get("judgekit.judge_model", ""), prompt, completion)
    usage["latency_s"] = float(sent.mean()) if sent.notna().any() else math.nan
    return usage


PAIRED_COLUMNS = [
    *("label", "run_id", "baseline_label", "baseline_run_id", "score", "statistic"),
    *("a", "b", "difference", "ci_low", "ci_high", "p_value", "verdict"),
    *("n_common", "n_dropped", "scheme", "note"),
]


def paired_table(
    runs: list[ComparedRun],
    baseline: ComparedRun,
    scores: list[str],
    statistics: Statistics,
    *,
    resamples: int,
    confidence: float,
    min_shared: int = 1,
) -> pd.DataFrame:
    """Every run but the baseline against it, per score and statistic (``b`` = the run).

    A pair gets no verdict (``not comparable``) when the runs' data differ, the runs declare
    the score with different kinds, or fewer than ``min_shared`` examples were scored by both.
    """
    rows = []
    for run, score in itertools.product([r for r in runs if r is not baseline], scores):
        head = {"label": run.label, "run_id": run.run_id, "score": score}
        head |= {"baseline_label": baseline.label, "baseline_run_id": baseline.run_id}
        names = _for_score(statistics, score)
        pairs = _pair(baseline, run, score, names, resamples, confidence, min_shared)
        rows += [head | pair for pair in pairs]
    return pd.DataFrame(rows, columns=PAIRED_COLUMNS)


def different_data(baseline: ComparedRun, run: ComparedRun) -> str | None:
    """Why two runs judged different data (their ``judgekit.dataset_digest`` tags differ)."""
    from judgekit.tracking.runs import DATASET_DIGEST_TAG

    digests = [r.tags.get(DATASET_DIGEST_TAG, "") for r in (baseline, run)]
    if not all(digests) or digests[0] == digests[1]:
        return None
    names = " vs ".join(r.tags.get("judgekit.dataset", "?") for r in (baseline, run))
    return (
        f"the runs judged different data (dataset digest {digests[0]} vs {digests[1]}, "
        f"dataset {names}): example ids do not pair"
    )


def _pair(
    baseline: ComparedRun,
    run: ComparedRun,
    score: str,
    statistics: list[str],
    resamples: int,
    confidence: float,
    min_shared: int = 1,
) -> list[dict[str, Any]]:
    from judgekit.stats.bootstrap import paired_comparison

    aligned, unmatched, problem = align(baseline, run, score)
    problem = different_data(baseline, run) or problem or _kind_differs(baseline, run, score)
    problem = problem or _too_few(aligned, min_shared)
    if problem:
        return [{"statistic": s, "verdict": "not comparable", "note": problem} for s in statistics]
    if _kind(baseline, run, score) == "preference":
        results = _pair_preference(aligned, statistics, resamples, confidence, _seed(baseline))
        return [r | {"n_dropped": r["n_dropped"] + unmatched, "note": ""} for r in results]
    low, high, note = _score_range(baseline, run, score, aligned)
    with warnings.catch_warnings():  # an undefined statistic shows as verdict "undefined"
        warnings.simplefilter("ignore")
        results = paired_comparison(
            aligned["human"].to_numpy(),
            aligned["judge_a"].to_numpy(),
            aligned["judge_b"].to_numpy(),
            minimum=low,
            maximum=high,
            resamples=resamples,
            confidence=confidence,
            seed=_seed(baseline),
            clusters=_clusters(aligned["group"]),
            statistics=statistics,
            integer=baseline.integer.get(score, run.integer.get(score)),
        )
    return [r | {"n_dropped": r["n_dropped"] + unmatched, "note": note} for r in results]


def _pair_preference(
    aligned: pd.DataFrame, statistics: list[str], resamples: int, confidence: float, seed: int
) -> list[dict[str, Any]]:
    """The pairwise comparison of the aligned verdicts of a preference score."""
    from judgekit.stats.pairwise import paired_pairwise_comparison

    return paired_pairwise_comparison(
        aligned["human"].to_numpy(dtype=float),
        aligned["judge_a"].to_numpy(dtype=float),
        aligned["judge_b"].to_numpy(dtype=float),
        resamples=resamples,
        confidence=confidence,
        seed=seed,
        clusters=_clusters(aligned["group"]),
        statistics=statistics,
    )


def _kind(baseline: ComparedRun, run: ComparedRun, score: str) -> str:
    """The score's kind as the baseline declares it, else as the run does (pointwise if neither)."""
    from judgekit.compare.records import score_kind

    return score_kind([baseline, run], score)


def _kind_differs(baseline: ComparedRun, run: ComparedRun, score: str) -> str | None:
    """Why the two runs cannot be compared on ``score``: both declare it, with different kinds."""
    from judgekit.compare.records import score_kind

    if not all(
        score in r.kinds or score.removesuffix("_expected") in r.kinds for r in (baseline, run)
    ):
        return None
    kinds = [score_kind([r], score) for r in (baseline, run)]
    if kinds[0] == kinds[1]:
        return None
    return f"the baseline declares score {score!r} {kinds[0]}, the run {kinds[1]}"


def align(
    baseline: ComparedRun, run: ComparedRun, score: str
) -> tuple[pd.DataFrame, int, str | None]:
    """The rows of ``score`` both runs have, by example id: human, judge_a, judge_b, group.

    Returns the aligned rows, how many rows only one of the runs has, and why the runs cannot
    be compared (None when they can).
    """
    empty = pd.DataFrame(columns=["human", "judge_a", "judge_b", "group"])
    base, other = _score_rows(baseline, score), _score_rows(run, score)
    for who, rows in (("baseline", base), ("run", other)):
        if rows is None:
            return empty, 0, f"the {who} has no results for score {score!r}"
    assert base is not None and other is not None
    merged = base.merge(other, on="example_id", suffixes=("_a", "_b"))
    unmatched = len(base) + len(other) - 2 * len(merged)
    if merged.empty:
        datasets = " vs ".join(r.tags.get("judgekit.dataset", "?") for r in (baseline, run))
        return empty, unmatched, f"no examples in common with the baseline (dataset {datasets})"
    labelled = merged[["human_a", "human_b"]].notna().all(axis=1)
    differ = labelled & (merged["human_a"] != merged["human_b"])
    if differ.any():
        problem = f"human labels differ on {int(differ.sum())} of {len(merged)} shared example ids"
        return empty, unmatched, problem + ": the runs used different data"
    columns = {"human_a": "human", "value_a": "judge_a", "value_b": "judge_b", "group_a": "group"}
    return merged.rename(columns=columns)[list(columns.values())], unmatched, None


def _too_few(aligned: pd.DataFrame, min_shared: int) -> str | None:
    """Why the examples both runs scored are too few to give a verdict."""
    both = int(aligned[["human", "judge_a", "judge_b"]].astype(float).notna().all(axis=1).sum())
    if both >= min_shared:
        return None
    return (
        f"only {both} examples scored by both runs (with a human label), fewer than "
        f"--min-shared {min_shared}"
    )


def _score_rows(run: ComparedRun, score: str) -> pd.DataFrame | None:
    """``example_id, group, human, value`` of one score; ``<s>_expected`` reads judge_expected."""
    if run.results is None:
        return None
    name, column = score, "judge"
    if score.endswith("_expected") and score not in set(run.results["score"]):
        name, column = score[: -len("_expected")], "judge_expected"
    rows = run.results[run.results["score"] == name]
    if rows.empty:
        return None
    return rows[["example_id", "group", "human", column]].rename(columns={column: "value"})


def _score_range(
    baseline: ComparedRun, run: ComparedRun, score: str, aligned: pd.DataFrame
) -> tuple[float, float, str]:
    """The declared range of the score; the observed range (and a note) when none was logged."""
    name = score.removesuffix("_expected")
    declared = baseline.ranges.get(name) or run.ranges.get(name)
    if declared:
        return declared[0], declared[1], ""
    values = aligned[["human", "judge_a", "judge_b"]].to_numpy(dtype=float)
    note = "no declared score range logged: qwk uses the observed range"
    return float(np.nanmin(values)), float(np.nanmax(values)), note


def _clusters(groups: pd.Series) -> np.ndarray | None:
    """Group codes for a clustered bootstrap when rows share a prompt; None when none do."""
    codes, uniques = pd.factorize(groups)
    return codes if len(uniques) < len(codes) else None


def _seed(run: ComparedRun) -> int:
    try:
        return int(run.params.get("runner.seed", 0))
    except ValueError:
        return 0
