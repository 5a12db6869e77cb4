"""Correlation with humans at the levels meta-evaluation papers report: per group and per system.

Both take aligned per-row arrays (human, judge, a unit id per row) and use only rows where human
and judge are both finite.

``group`` level (a group is e.g. one dialogue context or one source document, ``fields.group``)
    Pearson, Spearman and Kendall tau-b between human and judge computed within each group, then
    averaged (unweighted) over the groups with at least two distinct human values *and* at least
    two distinct judge values; a group where either rater is constant has no correlation and is
    left out of the average (counted out of ``n_groups``, the groups that entered it).
``system`` level (a system is the model that wrote the responses, ``fields.system``)
    The correlation across systems of each system's mean judge score with its mean human score.
    With fewer than 3 systems it is NaN (two points always correlate ±1), with the reason.

Intervals are percentile bootstrap intervals over the units: the groups that entered the average
(resp. the systems) are drawn with replacement, ``resamples`` times, from a generator seeded with
``seed``; a resample's group-level figure is the mean over the drawn groups (with multiplicity) of
their fixed within-group correlations, and its system-level figure the correlation over the drawn
systems' mean points (a system drawn twice counts twice; fewer than 3 distinct systems drawn is
undefined). As in :mod:`judgekit.stats.bootstrap`, undefined resamples are left out and with fewer
than half defined the interval is ``(nan, nan)``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from judgekit.stats.bootstrap import _BUDGET, _percentile_interval, _unit_counts
from judgekit.stats.pointwise import JudgekitStatsWarning, _column, _same_length

__all__ = [
    "LEVEL_STATISTICS",
    "MIN_SYSTEMS",
    "LevelCorrelation",
    "group_correlation",
    "system_correlation",
]

LEVEL_STATISTICS = ("pearson", "spearman", "kendall")
"""The correlations computed at each level; metrics are ``<level>_<statistic>``."""
MIN_SYSTEMS = 3
"""Fewest systems for a system-level correlation: two points always correlate ±1."""


@dataclass(frozen=True)
class LevelCorrelation:
    """Correlations of judge with human at one level, their intervals and how many units."""

    level: Literal["group", "system"]
    values: dict[str, float]
    """``pearson``, ``spearman``, ``kendall``; NaN when undefined (see ``note``)."""
    n_units: int
    """Groups that entered the average, or systems with at least one scored row."""
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    """``(low, high)`` per statistic; empty when no bootstrap was drawn."""
    note: str | None = None
    """Why the correlations are NaN, when they are."""


def group_correlation(
    human: np.ndarray,
    judge: np.ndarray,
    groups: np.ndarray,
    *,
    resamples: int = 0,
    confidence: float = 0.95,
    seed: int = 0,
) -> LevelCorrelation:
    """Average within-group correlation of judge with human (module docstring).

    Args:
        human: Human score per row (NaN = no label).
        judge: Judge score per row (NaN = failed).
        groups: Group id per row.
        resamples: Bootstrap resamples of the groups (0: no intervals).
        confidence: Confidence level of the intervals, in (0, 1).
        seed: Seed of the random generator; the same seed gives the same intervals.
    """
    h, j, units = _scored(human, judge, groups)
    per_group = [_correlations(x, y) for x, y in _split(h, j, units)]
    kept = np.array([row for row in per_group if row is not None]).reshape(-1, 3)
    n = kept.shape[0]
    if n == 0:
        why = (
            "no group has two distinct human values and two distinct judge values among its "
            f"scored rows ({_n_units(units)} groups with scored rows)"
        )
        return _undefined("group", 0, why)
    values = dict(zip(LEVEL_STATISTICS, kept.mean(axis=0).tolist(), strict=True))
    intervals = {}
    if resamples > 0:
        draws = np.concatenate(
            [counts @ kept / n for counts in _draws(n, resamples, seed)], axis=0
        ).reshape(-1, 3)
        intervals = _intervals(draws, confidence)
    return LevelCorrelation("group", values, n, intervals)


def system_correlation(
    human: np.ndarray,
    judge: np.ndarray,
    systems: np.ndarray,
    *,
    resamples: int = 0,
    confidence: float = 0.95,
    seed: int = 0,
) -> LevelCorrelation:
    """Correlation across systems of mean judge score with mean human score (module docstring).

    Args:
        human: Human score per row (NaN = no label).
        judge: Judge score per row (NaN = failed).
        systems: System id per row.
        resamples, confidence, seed: As for :func:`group_correlation`, resampling systems.
    """
    h, j, units = _scored(human, judge, systems)
    n = _n_units(units)
    rows = np.bincount(units, minlength=n)
    mean_h = np.bincount(units, weights=h, minlength=n) / np.maximum(rows, 1)
    mean_j = np.bincount(units, weights=j, minlength=n) / np.maximum(rows, 1)
    if n < MIN_SYSTEMS:
        why = (
            f"{n} system(s) with scored rows; a system-level correlation needs at least "
            f"{MIN_SYSTEMS} (two points always correlate ±1)"
        )
        return _undefined("system", n, why)
    point = _correlations(mean_h, mean_j)
    if point is None:
        return _undefined(
            "system", n, f"the per-system means are constant ({_constant(mean_h, mean_j)})"
        )
    values = dict(zip(LEVEL_STATISTICS, point, strict=True))
    intervals = {}
    if resamples > 0:
        draws = [
            _system_draw(mean_h, mean_j, weights)
            for counts in _draws(n, resamples, seed)
            for weights in counts
        ]
        intervals = _intervals(np.array(draws, dtype=float), confidence)
    return LevelCorrelation("system", values, n, intervals)


def _system_draw(mean_h: np.ndarray, mean_j: np.ndarray, weights: np.ndarray) -> list[float]:
    """The correlations over one resample's systems, each drawn ``weights[s]`` times; NaN when
    fewer than :data:`MIN_SYSTEMS` distinct systems were drawn, or the drawn means are constant."""
    picked = weights >= 1
    if picked.sum() < MIN_SYSTEMS:
        return [math.nan] * len(LEVEL_STATISTICS)
    x, y = (np.repeat(m[picked], weights[picked]) for m in (mean_h, mean_j))
    return _correlations(x, y) or [math.nan] * len(LEVEL_STATISTICS)


def _scored(
    human: np.ndarray, judge: np.ndarray, ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The scored rows' human and judge values and unit index (0..U-1, in order of first id)."""
    h, j = _column(human, "human"), _column(judge, "judge")
    keys = np.asarray(ids, dtype=object)
    _same_length(h, j, keys)
    scored = np.isfinite(h) & np.isfinite(j)
    codes, _ = pd.factorize(pd.Series(keys[scored], dtype=object), sort=False)
    return h[scored], j[scored], codes.astype(int)


def _split(h: np.ndarray, j: np.ndarray, units: np.ndarray) -> Iterator[tuple[np.ndarray, ...]]:
    """Each unit's human and judge values, unit by unit (one sort, not a scan per unit)."""
    order = np.argsort(units, kind="stable")
    bounds = np.flatnonzero(np.diff(units[order])) + 1
    for rows in np.split(order, bounds) if units.size else []:
        yield h[rows], j[rows]


def _n_units(units: np.ndarray) -> int:
    return int(units.max()) + 1 if units.size else 0


def _correlations(h: np.ndarray, j: np.ndarray) -> list[float] | None:
    """Pearson, Spearman and Kendall tau-b by scipy; None when either side has one value."""
    if np.unique(h).size < 2 or np.unique(j).size < 2:
        return None
    from scipy import stats as sps  # seconds to import: only on first use

    return [
        float(sps.pearsonr(h, j).statistic),
        float(sps.spearmanr(h, j).statistic),
        float(sps.kendalltau(h, j).statistic),  # variant "b" (ties corrected)
    ]


def _constant(mean_h: np.ndarray, mean_j: np.ndarray) -> str:
    sides = [f"{who} means are all {m[0]:g}" for who, m in (("human", mean_h), ("judge", mean_j))]
    return " and ".join(
        s for s, m in zip(sides, (mean_h, mean_j), strict=True) if np.unique(m).size < 2
    )


def _draws(n_units: int, resamples: int, seed: int) -> Iterator[np.ndarray]:
    """Chunks of (size, n_units) counts: how often each unit is drawn in each resample."""
    rng = np.random.default_rng(seed)
    step = max(1, _BUDGET // max(n_units, 1))
    for start in range(0, resamples, step):
        yield _unit_counts(n_units, min(step, resamples - start), rng=rng)


def _intervals(draws: np.ndarray, confidence: float) -> dict[str, tuple[float, float]]:
    return {
        name: _percentile_interval(draws[:, k], confidence)[0]
        for k, name in enumerate(LEVEL_STATISTICS)
    }


def _undefined(level: Literal["group", "system"], n: int, why: str) -> LevelCorrelation:
    """NaN correlations with the reason, said once as a :class:`JudgekitStatsWarning` too."""
    note = f"{level}-level correlations are NaN: {why}"
    warnings.warn(note, JudgekitStatsWarning, stacklevel=3)
    return LevelCorrelation(level, dict.fromkeys(LEVEL_STATISTICS, math.nan), n, note=note)
