"""Pairwise verdicts against human preferences: accuracy, kappa, position bias, the human ceiling.

A verdict is a float, the value of a preference score's label: ``0.0`` = A (the first response
of the pair as the dataset gives it), ``1.0`` = B, ``0.5`` = tie, NaN = no verdict (the judge
failed, or the row has no human label). Rows with NaN are excluded from a statistic and counted,
never scored.

Conventions:

- ``accuracy`` leaves out every row where the human label or the judge verdict is a tie, as in
  MT-Bench's "without ties" setup (Zheng et al. 2023): it asks "when both pick a side, do they
  pick the same one?". A judge that says tie often is not rewarded by it, because
  ``accuracy_with_ties`` (all scored rows, three categories) and ``tie_rate`` sit beside it.
- ``kappa`` is Cohen's kappa over the three categories A, tie, B (unweighted).
- With both orders judged, ``second`` is the verdict on the swapped pair mapped back to the
  original orientation, so a position-consistent judge has ``first == second`` (a tie in both
  orders counts as consistent). ``first_position_rate`` pools every non-tie verdict of both
  orders and counts those for the response shown first: A in the original order, B (original
  orientation) in the swapped one. 0.5 means no position bias.
- The majority of several annotators is the label more than half of those present gave; without
  one (a three-way split, or 1-1 between two) it is a tie.

The bootstrap: each row is reduced to its *kind*, the tuple of its verdict codes (at most 4^4 for
human, judge, first, second), and every statistic is a function of how many rows there are of
each kind. The point estimate and each resample go through the same code: a resample's counts
are a multinomial draw over the kinds (rows resampled) or the sum of the drawn clusters' counts
(clusters resampled). All rows are resampled, failed and unlabelled ones too, so the number of
scored rows varies between resamples as it would between datasets. Intervals are percentile
intervals; a statistic undefined in more than half the resamples gets ``(nan, nan)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import combinations
from typing import Any

import numpy as np

from judgekit.stats.bootstrap import (
    _BUDGET,
    _check,
    _compare,
    _percentile_interval,
    _unit_counts,
    _units,
)
from judgekit.stats.pointwise import _column, _same_length, _warn

__all__ = [
    "CEILING_STATISTICS",
    "PAIRED_PAIRWISE_STATISTICS",
    "PAIRWISE_STATISTICS",
    "SWAP_STATISTICS",
    "human_ceiling",
    "majority_verdict",
    "paired_pairwise_comparison",
    "pairwise_agreement",
    "preference_from_pointwise",
]

PAIRWISE_STATISTICS = ("accuracy", "accuracy_with_ties", "kappa", "tie_rate")
"""Statistics of :func:`pairwise_agreement` that get bootstrap intervals."""
PAIRED_PAIRWISE_STATISTICS = ("accuracy", "accuracy_with_ties", "kappa")
"""Statistics :func:`paired_pairwise_comparison` compares (higher is better for each)."""
SWAP_STATISTICS = ("position_consistency", "first_position_rate")
"""Further statistics with intervals when both orders of each pair were judged."""
CEILING_STATISTICS = (
    "human_kappa",
    "human_accuracy",
    "human_accuracy_with_ties",
    "human_loo_accuracy",
)
"""Statistics of :func:`human_ceiling` that get bootstrap intervals."""

A, TIE, B, MISSING = 0, 1, 2, 3
"""Verdict codes: value * 2 for A (0.0), tie (0.5), B (1.0); MISSING for NaN."""
_CODES = 4
Counts = np.ndarray
"""Rows of each kind: shape (resamples, kinds); one row of counts for the observed data."""


def pairwise_agreement(
    human: np.ndarray,
    judge: np.ndarray,
    *,
    first: np.ndarray | None = None,
    second: np.ndarray | None = None,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    clusters: np.ndarray | None = None,
) -> dict[str, float]:
    """Measure how often a pairwise judge picks the response the humans preferred.

    Args:
        human: Human verdict per row (0.0 A, 1.0 B, 0.5 tie; NaN = no label).
        judge: The judge's combined verdict per row (NaN = failed).
        first: The verdict with the pair in its original order; give with ``second``.
        second: The verdict with the pair swapped, mapped back to the original orientation.
        resamples: Bootstrap resamples; 0 leaves the ``_ci_low``/``_ci_high`` keys out.
        confidence: Confidence level of the intervals, in (0, 1).
        seed: Seed of the random generator; the same seed gives the same intervals.
        clusters: Optional group id per row (e.g. the prompt); whole groups are resampled.

    Returns:
        ``n_total``, ``n_failed`` (judge NaN), ``n_scored`` (human and judge present),
        ``coverage`` (judge present / n_total), the :data:`PAIRWISE_STATISTICS` (``tie_rate``
        over every row the judge answered), and with ``first``/``second``: ``n_both_orders``
        (rows with both verdicts), ``n_inconsistent`` and the :data:`SWAP_STATISTICS`; then
        ``<statistic>_ci_low`` and ``<statistic>_ci_high`` for each statistic.
    """
    if (first is None) != (second is None):
        raise ValueError("first and second: give both (the two orders of each pair) or neither")
    named = {"human": human, "judge": judge}
    swap = first is not None and second is not None
    if first is not None and second is not None:
        named |= {"first": first, "second": second}
    codes = _code_columns(named)
    _check_bootstrap(resamples, confidence)
    kinds, observed, draws = _count_kinds(codes, clusters, resamples, seed)
    point = _agreement_statistics(kinds, observed, swap=swap)
    out: dict[str, float] = _agreement_counts(kinds, observed[0], swap=swap)
    out |= {name: float(values[0]) for name, values in point.items()}
    _warn_agreement(out)
    if draws is not None:
        out |= _intervals(_agreement_statistics(kinds, draws, swap=swap), confidence)
    return out


def paired_pairwise_comparison(
    human: np.ndarray,
    judge_a: np.ndarray,
    judge_b: np.ndarray,
    *,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    clusters: np.ndarray | None = None,
    statistics: Sequence[str] = PAIRED_PAIRWISE_STATISTICS,
) -> list[dict[str, Any]]:
    """Compare two pairwise judges (e.g. prompt v1 and v2) against the same human verdicts.

    The pairwise counterpart of :func:`judgekit.stats.bootstrap.paired_comparison`, with the same
    result: only rows where human, ``judge_a`` and ``judge_b`` are all present are used; both
    judges are scored on the same resamples (each row's kind holds all three verdicts), and the
    verdict, interval and p-value read ``difference = b - a`` as there. Higher is better for
    every statistic here.

    Args:
        human: Human verdict per row (0.0 A, 1.0 B, 0.5 tie; NaN = no label).
        judge_a: Verdict per row of the baseline judge (NaN = failed).
        judge_b: Verdict per row of the judge compared with it.
        resamples: Bootstrap resamples, 1 or more.
        confidence, seed, clusters: As for :func:`pairwise_agreement`.
        statistics: Names from :data:`PAIRED_PAIRWISE_STATISTICS`, in the order of the result.

    Returns:
        One dict per statistic: ``statistic``, ``a``, ``b``, ``difference``, ``ci_low``,
        ``ci_high``, ``p_value``, ``verdict``, ``n_common``, ``n_dropped`` and ``scheme``.
    """
    unknown = sorted(set(statistics) - set(PAIRED_PAIRWISE_STATISTICS))
    if unknown:
        raise ValueError(
            f"statistics: {unknown} cannot be compared for pairwise verdicts; "
            f"use {list(PAIRED_PAIRWISE_STATISTICS)}"
        )
    codes = _code_columns({"human": human, "judge_a": judge_a, "judge_b": judge_b})
    _check(codes[:, 0], resamples=resamples, confidence=confidence)
    common = np.asarray((codes < MISSING).all(axis=1))
    units = _units(clusters, common)  # cluster index of each common row, or None
    kinds, observed, draws = _count_kinds(codes[common], units, resamples, seed)
    assert draws is not None  # resamples >= 1
    point_a, point_b = (_paired_statistics(kinds, observed, judge) for judge in (1, 2))
    draws_a, draws_b = (_paired_statistics(kinds, draws, judge) for judge in (1, 2))
    shared = {
        "n_common": int(common.sum()),
        "n_dropped": int(common.size - common.sum()),
        "scheme": "rows" if clusters is None else "clusters",
    }
    return [
        _compare(
            name,
            float(point_a[name][0]),
            float(point_b[name][0]),
            draws_b[name] - draws_a[name],
            confidence,
        )
        | shared
        for name in statistics
    ]


def _paired_statistics(kinds: np.ndarray, counts: Counts, judge: int) -> dict[str, np.ndarray]:
    """Accuracy (no ties), accuracy with ties and kappa of column ``judge`` against column 0."""
    t = _table(kinds, counts, 0, judge)
    return {
        "accuracy": _accuracy(t),
        "accuracy_with_ties": _accuracy_with_ties(t),
        "kappa": _kappa(t),
    }


def human_ceiling(
    annotators: np.ndarray,
    *,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    clusters: np.ndarray | None = None,
) -> dict[str, float]:
    """Measure how well the human annotators agree with each other: the ceiling for a judge.

    Args:
        annotators: Verdicts of shape (rows, annotators), at least two annotators; NaN where an
            annotator gave no label.
        resamples, confidence, seed, clusters: As for :func:`pairwise_agreement`.

    Returns:
        ``n_rows``, ``n_annotators``; ``human_kappa``, ``human_accuracy`` (no ties) and
        ``human_accuracy_with_ties``: the mean over annotator pairs (of the pairs where the
        statistic is defined) on the rows both labelled; ``human_loo_accuracy``: each annotator
        against the majority of the *other* annotators (no ties), averaged over annotators, the
        fair comparison for a judge scored against the majority; plus ``_ci_low``/``_ci_high``.
    """
    votes = np.asarray(annotators, dtype=float)
    if votes.ndim != 2 or votes.shape[1] < 2:
        raise ValueError(
            f"annotators: expected shape (rows, annotators) with 2 or more annotators, "
            f"got shape {votes.shape}"
        )
    m = votes.shape[1]
    codes = _code_columns({f"annotators[:, {i}]": votes[:, i] for i in range(m)})
    others = [_majority_codes(np.delete(codes, i, axis=1)) for i in range(m)]
    _check_bootstrap(resamples, confidence)
    kinds, observed, draws = _count_kinds(
        np.column_stack([codes, *others]), clusters, resamples, seed
    )
    out: dict[str, float] = {"n_rows": int(votes.shape[0]), "n_annotators": m}
    out |= {name: float(v[0]) for name, v in _ceiling_statistics(kinds, observed, m).items()}
    if math.isnan(out["human_kappa"]):
        _warn("human_kappa undefined (NaN): no pair of annotators varies on rows both labelled")
    if draws is not None:
        out |= _intervals(_ceiling_statistics(kinds, draws, m), confidence)
    return out


def majority_verdict(annotators: np.ndarray) -> np.ndarray:
    """The majority verdict per row: the label more than half the present annotators gave.

    A row without a strict majority (a three-way split, 1-1) is a tie (0.5); a row without any
    label is NaN. PandaLM's adapter applies the same rule.
    """
    votes = np.asarray(annotators, dtype=float)
    if votes.ndim != 2:
        raise ValueError(f"annotators: expected shape (rows, annotators), got {votes.shape}")
    codes = _code_columns({f"annotators[:, {i}]": votes[:, i] for i in range(votes.shape[1])})
    return _values(_majority_codes(codes))


def preference_from_pointwise(
    values: np.ndarray, groups: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Turn pointwise scores of paired responses into a preference verdict per pair.

    Consecutive rows with the same group id (the prompt) form a pair, as in HelpSteer2, whose
    rows 1-2, 3-4, ... share a prompt; a run of one row or of three or more is left out.

    Args:
        values: Score per row (higher is better; NaN = no score).
        groups: Group id per row, aligned with ``values``.

    Returns:
        The group id of each pair, and its verdict: 0.0 when the first row scores higher,
        1.0 when the second does, 0.5 when they are equal, NaN when either is NaN.
    """
    x = _column(values, "values")
    ids = np.asarray(groups)
    if ids.shape != x.shape:
        raise ValueError(f"groups: expected one id per row ({x.size}), got shape {ids.shape}")
    if x.size == 0:
        return ids[:0], np.empty(0)
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    lengths = np.diff(np.r_[starts, x.size])
    pairs = starts[lengths == 2]
    a, b = x[pairs], x[pairs + 1]
    verdicts = np.where(a > b, 0.0, np.where(a < b, 1.0, 0.5))
    verdicts[~(np.isfinite(a) & np.isfinite(b))] = math.nan
    return ids[pairs], verdicts


def _code_columns(named: dict[str, np.ndarray]) -> np.ndarray:
    """Aligned verdict columns as one (rows, columns) array of codes A, TIE, B, MISSING."""
    columns = {name: _column(values, name) for name, values in named.items()}
    _same_length(*columns.values())
    return np.column_stack([_codes(x, name) for name, x in columns.items()]).astype(np.int64)


def _codes(x: np.ndarray, name: str) -> np.ndarray:
    finite = np.isfinite(x)
    bad = np.flatnonzero(finite & ~np.isin(x, (0.0, 0.5, 1.0)))
    if bad.size:
        raise ValueError(
            f"{name}: row {bad[0]} is {x[bad[0]]:g}; verdicts are 0.0 (A), 1.0 (B), "
            "0.5 (tie) or NaN (none)"
        )
    codes = np.full(x.size, MISSING, dtype=np.int64)
    codes[finite] = np.rint(x[finite] * 2).astype(np.int64)
    return codes


def _values(codes: np.ndarray) -> np.ndarray:
    return np.where(codes == MISSING, math.nan, codes / 2)


def _majority_codes(codes: np.ndarray) -> np.ndarray:
    """Per row, the code more than half of the present voters gave; TIE without one."""
    counts = np.stack([(codes == c).sum(axis=1) for c in (A, TIE, B)], axis=1)
    present = counts.sum(axis=1)
    winner = np.where(counts.max(axis=1) * 2 > present, counts.argmax(axis=1), TIE)
    return np.where(present == 0, MISSING, winner)


def _check_bootstrap(resamples: int, confidence: float) -> None:
    if resamples < 0:
        raise ValueError(f"resamples: {resamples} is not valid; use 0 (no intervals) or more")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence: {confidence} is not valid; use a value in (0, 1)")


def _count_kinds(
    codes: np.ndarray, clusters: np.ndarray | None, resamples: int, seed: int
) -> tuple[np.ndarray, Counts, Counts | None]:
    """The distinct kinds of row, their observed counts and their counts in each resample."""
    n = codes.shape[0]
    units = _units(clusters, np.ones(n, dtype=bool))
    kinds, inverse = np.unique(codes, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    observed = np.bincount(inverse, minlength=len(kinds)).astype(float)[None, :]
    if resamples == 0:
        return kinds, observed, None
    if n == 0:
        return kinds, observed, np.zeros((resamples, 0))
    rng = np.random.default_rng(seed)
    if units is None:
        draws = rng.multinomial(n, observed[0] / n, size=resamples).astype(float)
    else:
        n_units = int(units.max()) + 1
        per_unit = np.zeros((n_units, len(kinds)))
        np.add.at(per_unit, (units, inverse), 1.0)
        step = max(1, _BUDGET // n_units)  # bounds the (resamples, clusters) draw in memory
        draws = np.concatenate(
            [
                _unit_counts(n_units, min(step, resamples - start), rng=rng) @ per_unit
                for start in range(0, resamples, step)
            ]
        )
    return kinds, observed, draws


def _table(kinds: np.ndarray, counts: Counts, a: int, b: int) -> np.ndarray:
    """Rows per (code of column a, code of column b): shape (resamples, 4, 4)."""
    cells = np.zeros((len(kinds), _CODES * _CODES))
    cells[np.arange(len(kinds)), kinds[:, a] * _CODES + kinds[:, b]] = 1.0
    return (counts @ cells).reshape(-1, _CODES, _CODES)


def _margin(kinds: np.ndarray, counts: Counts, a: int) -> np.ndarray:
    """Rows per code of column a: shape (resamples, 4)."""
    return _table(kinds, counts, a, a).sum(axis=2)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, numerator / denominator, math.nan)


def _accuracy(t: np.ndarray) -> np.ndarray:
    """Agreement on rows where neither verdict is a tie (nor missing)."""
    agree = t[:, A, A] + t[:, B, B]
    return _ratio(agree, agree + t[:, A, B] + t[:, B, A])


def _accuracy_with_ties(t: np.ndarray) -> np.ndarray:
    core = t[:, :3, :3]
    return _ratio(np.trace(core, axis1=1, axis2=2), core.sum(axis=(1, 2)))


def _kappa(t: np.ndarray) -> np.ndarray:
    """Cohen's kappa over A, tie, B: (p_o - p_e) / (1 - p_e); NaN when p_e = 1 or no rows."""
    core = t[:, :3, :3]
    n = core.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        observed = np.trace(core, axis1=1, axis2=2) / n
        expected = (core.sum(axis=2) * core.sum(axis=1)).sum(axis=1) / n**2
        kappa = (observed - expected) / (1 - expected)
    return np.where((n > 0) & (expected < 1 - 1e-12), kappa, math.nan)


def _agreement_statistics(
    kinds: np.ndarray, counts: Counts, *, swap: bool
) -> dict[str, np.ndarray]:
    """Every statistic with an interval, per row of ``counts``; columns human, judge[, 1st, 2nd]."""
    t = _table(kinds, counts, 0, 1)
    judged = _margin(kinds, counts, 1)
    out = {
        "accuracy": _accuracy(t),
        "accuracy_with_ties": _accuracy_with_ties(t),
        "kappa": _kappa(t),
        "tie_rate": _ratio(judged[:, TIE], judged[:, :3].sum(axis=1)),
    }
    if swap:
        out["position_consistency"] = _accuracy_with_ties(_table(kinds, counts, 2, 3))
        one, two = _margin(kinds, counts, 2), _margin(kinds, counts, 3)
        shown_first = one[:, A] + two[:, B]  # the swapped order shows the original B first
        decided = one[:, A] + one[:, B] + two[:, A] + two[:, B]
        out["first_position_rate"] = _ratio(shown_first, decided)
    return out


def _agreement_counts(kinds: np.ndarray, counts: np.ndarray, *, swap: bool) -> dict[str, float]:
    """Row counts of the observed data (``counts`` of shape (kinds,))."""
    present = kinds < MISSING
    n_total = int(counts.sum())
    n_judged = int(counts[present[:, 1]].sum())
    out: dict[str, float] = {
        "n_total": n_total,
        "n_failed": n_total - n_judged,
        "n_scored": int(counts[present[:, 0] & present[:, 1]].sum()),
        "coverage": n_judged / n_total if n_total else math.nan,
    }
    if swap:
        both = present[:, 2] & present[:, 3]
        out["n_both_orders"] = int(counts[both].sum())
        out["n_inconsistent"] = int(counts[both & (kinds[:, 2] != kinds[:, 3])].sum())
    return out


def _warn_agreement(out: dict[str, float]) -> None:
    if math.isnan(out["kappa"]):
        why = (
            "no row has both a human label and a judge verdict"
            if out["n_scored"] == 0
            else "human and judge give the same single verdict on every scored row"
        )
        _warn(f"kappa undefined (NaN): {why}")
    if math.isnan(out["accuracy"]) and out["n_scored"] > 0:
        _warn("accuracy undefined (NaN): no scored row where both human and judge pick A or B")


def _ceiling_statistics(kinds: np.ndarray, counts: Counts, m: int) -> dict[str, np.ndarray]:
    """Columns 0..m-1: each annotator; m..2m-1: the majority of the others, per annotator."""
    pairs = [_table(kinds, counts, i, j) for i, j in combinations(range(m), 2)]
    alone = [_table(kinds, counts, i, m + i) for i in range(m)]
    return {
        "human_kappa": _mean_defined([_kappa(t) for t in pairs]),
        "human_accuracy": _mean_defined([_accuracy(t) for t in pairs]),
        "human_accuracy_with_ties": _mean_defined([_accuracy_with_ties(t) for t in pairs]),
        "human_loo_accuracy": _mean_defined([_accuracy(t) for t in alone]),
    }


def _mean_defined(parts: list[np.ndarray]) -> np.ndarray:
    """Mean over the parts that are defined (not NaN), per resample; NaN when none is."""
    stacked = np.stack(parts)
    defined = np.isfinite(stacked)
    return _ratio(np.where(defined, stacked, 0.0).sum(axis=0), defined.sum(axis=0))


def _intervals(draws: dict[str, np.ndarray], confidence: float) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, values in draws.items():
        (low, high), _ = _percentile_interval(values, confidence)
        out[f"{name}_ci_low"], out[f"{name}_ci_high"] = low, high
    return out
