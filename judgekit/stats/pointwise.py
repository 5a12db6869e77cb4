"""Agreement between a judge and human raters, and summaries of judge scores without labels.

Inputs are aligned 1-D float arrays with one entry per row (example). A non-finite judge value is
a row the judge failed on (call error or unparseable answer); a non-finite human value is a row
without a human label. Such rows are counted and excluded, never scored as zero.

Conventions used by every statistic here and in :mod:`judgekit.stats.bootstrap`:

- Rounding to a score level is half up (``2.5 -> 3``), not numpy's half-to-even.
- The *scale* is the declared range ``minimum..maximum``. It is an integer scale when both bounds
  are whole numbers, unless the caller says otherwise (``integer=False``: a continuous 0.0–1.0).
- ``qwk`` is quadratic weighted Cohen's kappa over every level of the declared integer scale:
  category distances are score distances, so a level nobody used still keeps its neighbours
  apart (unlike a labels-seen-only computation, which re-indexes the levels seen). Values that
  are not levels (a mean of annotators, 2.333) enter at their level rounded half up. It is NaN
  on a scale that is not an integer scale.
- ``exact_agreement`` and ``within1_agreement`` compare levels rounded half up; within-1 is
  defined on an integer scale only: on any other scale :func:`agreement` leaves it out.
- Krippendorff's alpha is for two coders and pairs with both values: ``1 - D_o / D_e`` with
  squared differences of values (interval) or of pooled midranks (ordinal; this equals
  Krippendorff's ordinal metric).
- A statistic that is undefined (a constant rater, no scored row, no expected disagreement) is
  NaN and :class:`JudgekitStatsWarning` says why; scipy's own warnings never leak.
"""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Sequence
from types import FrameType
from typing import Any, Literal

import numpy as np

__all__ = [
    "STATISTICS",
    "JudgekitStatsWarning",
    "aggregate",
    "agreement",
    "krippendorff_alpha",
    "integer_scale",
    "percentiles",
    "round_half_up",
]

STATISTICS = (
    "pearson",
    "spearman",
    "kendall",
    "mae",
    "rmse",
    "exact_agreement",
    "within1_agreement",
    "qwk",
    "krippendorff_alpha_ordinal",
    "krippendorff_alpha_interval",
    "judge_mean",
    "judge_std",
    "human_mean",
    "human_std",
)
"""Names of the statistics :func:`agreement` returns after its counts, in order."""

_NEED_VARIATION = (
    "pearson",
    "spearman",
    "kendall",
    "qwk",
    "krippendorff_alpha_ordinal",
    "krippendorff_alpha_interval",
)


class JudgekitStatsWarning(UserWarning):
    """A statistic came out undefined (NaN) for a reason the data explains."""


def round_half_up(values: np.ndarray) -> np.ndarray:
    """Round scores to the nearest integer level, halves upwards (``2.5 -> 3``)."""
    return np.floor(np.asarray(values, dtype=float) + 0.5)


def percentiles(values: np.ndarray, qs: Sequence[float] = (25, 50, 75, 90)) -> dict[str, float]:
    """Summarise finite values by percentiles keyed ``"p25"``, ``"p50"``, ...; NaN when empty."""
    finite = _finite(values)
    keys = [f"p{q:g}" for q in qs]
    if finite.size == 0:
        return dict.fromkeys(keys, math.nan)
    return {k: float(v) for k, v in zip(keys, np.percentile(finite, qs), strict=True)}


def aggregate(
    values: np.ndarray,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    integer: bool | None = None,
) -> dict[str, Any]:
    """Summarise judge scores that have no human labels to compare with.

    Returns ``count`` (finite values), ``n_failed`` (non-finite values), ``mean``, ``std``
    (ddof=1), ``min``, ``max``, ``p25``, ``p50``, ``p75``, ``p90`` and ``histogram``: for an
    integer range whose scores are all whole numbers, ``{"0": count, ..., "4": count}`` over
    every level of ``minimum..maximum``; otherwise (a continuous range, or scores such as 2.5 or
    0.37 that are not levels) ``{"edges": [...], "counts": [...]}`` with 10 equal bins over the
    range (over the data when the range is not given). ``integer=False`` says the range is
    continuous although its bounds are whole numbers.
    """
    x = _column(values, "values")
    finite = x[np.isfinite(x)]
    mean, std = _mean_std(finite)
    empty = finite.size == 0
    return {
        "count": int(finite.size),
        "n_failed": int(x.size - finite.size),
        "mean": mean,
        "std": std,
        "min": math.nan if empty else float(finite.min()),
        "max": math.nan if empty else float(finite.max()),
        **percentiles(finite),
        "histogram": _histogram(finite, minimum, maximum, integer),
    }


def agreement(
    human: np.ndarray,
    judge: np.ndarray,
    *,
    minimum: float,
    maximum: float,
    integer: bool | None = None,
) -> dict[str, float]:
    """Measure how well a judge's scores agree with human scores on the same rows.

    Args:
        human: Human score per row; NaN where the row has no label.
        judge: Judge score per row; NaN where the judge call or parse failed.
        minimum: Lowest score of the declared scale (used by ``qwk``).
        maximum: Highest score of the declared scale.
        integer: Whether the scale's levels are the whole numbers ``minimum..maximum``; None
            infers it from the bounds. False for a continuous scale with whole bounds.

    Returns:
        ``n_total``, ``n_failed`` (judge NaN), ``n_scored`` (both finite), ``coverage`` (judge
        finite / n_total), then every name in :data:`STATISTICS` computed over the scored pairs,
        except ``within1_agreement`` on a scale that is not an integer scale.
    """
    h, j = _column(human, "human"), _column(judge, "judge")
    _same_length(h, j)
    judged = np.isfinite(j)
    scored = judged & np.isfinite(h)
    counts = {
        "n_total": h.size,
        "n_failed": int(h.size - judged.sum()),
        "n_scored": int(scored.sum()),
        "coverage": float(judged.mean()) if h.size else math.nan,
    }
    stats = _pair_statistics(
        h[scored], j[scored], minimum=minimum, maximum=maximum, integer=integer
    )
    if not integer_scale(minimum, maximum, integer):
        del stats["within1_agreement"]
    return counts | stats


def krippendorff_alpha(
    human: np.ndarray,
    judge: np.ndarray,
    *,
    level: Literal["ordinal", "interval"],
    minimum: float | None = None,
    maximum: float | None = None,
) -> float:
    """Measure the reliability of two coders (judge and human) with Krippendorff's alpha.

    Only rows where both are finite count. ``minimum``/``maximum`` are accepted for the same call
    shape as :func:`agreement` but do not change alpha: a level nobody used has frequency 0 and
    adds nothing to either disagreement. NaN (with a warning) when all values are equal.
    """
    h, j = _column(human, "human"), _column(judge, "judge")
    _same_length(h, j)
    both = np.isfinite(h) & np.isfinite(j)
    alpha = _alpha(h[both], j[both], level)
    if math.isnan(alpha):
        _warn(f"krippendorff_alpha ({level}) is undefined (NaN): {_why(h[both], j[both])}")
    return alpha


def _pair_statistics(
    h: np.ndarray,
    j: np.ndarray,
    *,
    minimum: float,
    maximum: float,
    integer: bool | None = None,
    warn: bool = True,
) -> dict[str, float]:
    """Compute every statistic in :data:`STATISTICS` for already-aligned finite pairs
    (``qwk`` and ``within1_agreement`` NaN on a scale that is not an integer scale)."""
    on_levels = integer_scale(minimum, maximum, integer)
    out = dict.fromkeys(STATISTICS, math.nan)
    out["judge_mean"], out["judge_std"] = _mean_std(j)
    out["human_mean"], out["human_std"] = _mean_std(h)
    if h.size:
        diff, level_gap = j - h, np.abs(round_half_up(j) - round_half_up(h))
        out["mae"] = float(np.mean(np.abs(diff)))
        out["rmse"] = float(np.sqrt(np.mean(diff**2)))
        out["exact_agreement"] = float(np.mean(level_gap == 0))
        out["within1_agreement"] = float(np.mean(level_gap <= 1)) if on_levels else math.nan
        out |= _correlations(h, j)
        out["qwk"] = _qwk(h, j, minimum, maximum, warn=warn) if on_levels else math.nan
        out["krippendorff_alpha_ordinal"] = _alpha(h, j, "ordinal")
        out["krippendorff_alpha_interval"] = _alpha(h, j, "interval")
    if warn:
        _warn_undefined(out, h, j, minimum, maximum, on_levels)
    return out


def integer_scale(minimum: float, maximum: float, integer: bool | None = None) -> bool:
    """Whether ``minimum..maximum`` is an integer scale: whole bounds, unless ``integer`` is
    False (None infers it from the bounds)."""
    return _integer_range(minimum, maximum) and integer is not False


def _warn_undefined(
    out: dict[str, float],
    h: np.ndarray,
    j: np.ndarray,
    minimum: float,
    maximum: float,
    on_levels: bool,
) -> None:
    """Warn once, naming the statistics that need variation and came out NaN, and why."""
    qwk_applies = on_levels and _in_range(h, j, minimum, maximum)
    undefined = [k for k in _NEED_VARIATION if math.isnan(out[k]) and (k != "qwk" or qwk_applies)]
    if undefined:
        _warn(f"{', '.join(undefined)} undefined (NaN): {_why(h, j)}")


def _correlations(h: np.ndarray, j: np.ndarray) -> dict[str, float]:
    """Pearson, Spearman and Kendall tau-b by scipy; NaN when either rater is constant."""
    if _constant(h) or _constant(j):
        return {"pearson": math.nan, "spearman": math.nan, "kendall": math.nan}
    from scipy import stats as sps  # seconds to import: only on first use

    return {
        "pearson": float(sps.pearsonr(h, j).statistic),
        "spearman": float(sps.spearmanr(h, j).statistic),
        "kendall": float(sps.kendalltau(h, j).statistic),  # variant "b" (ties corrected)
    }


def _qwk(h: np.ndarray, j: np.ndarray, minimum: float, maximum: float, *, warn: bool) -> float:
    """Quadratic weighted kappa over every level of the declared range (see module docstring)."""
    if not _integer_range(minimum, maximum):
        return math.nan
    if not _in_range(h, j, minimum, maximum):
        if warn:
            _warn(f"qwk is NaN: scores outside the declared range {minimum:g}..{maximum:g}")
        return math.nan
    k = int(maximum - minimum) + 1
    rows, cols = (round_half_up(x).astype(int) - int(minimum) for x in (h, j))
    observed = np.bincount(rows * k + cols, minlength=k * k).reshape(k, k) / h.size
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0))
    levels = np.arange(k)
    weights = (levels[:, None] - levels[None, :]) ** 2 / max(k - 1, 1) ** 2
    expected_disagreement = float((weights * expected).sum())
    if expected_disagreement == 0:
        return math.nan
    return 1.0 - float((weights * observed).sum()) / expected_disagreement


def _alpha(h: np.ndarray, j: np.ndarray, level: str) -> float:
    """Krippendorff's alpha for two coders on finite pairs: ``1 - D_o / D_e``."""
    if level not in ("ordinal", "interval"):
        raise ValueError(f"level: {level!r} is not valid; use 'ordinal' or 'interval'")
    pooled = np.concatenate([h, j])
    if pooled.size < 2 or _constant(pooled):
        return math.nan
    if level == "ordinal":  # ordinal distance = difference of midranks among pooled values
        from scipy.stats import rankdata  # seconds to import: only on first use

        pooled = rankdata(pooled)
        h, j = pooled[: h.size], pooled[h.size :]
    observed = np.mean((h - j) ** 2)  # each unit gives the pairs (h, j) and (j, h)
    expected = 2 * np.sum((pooled - pooled.mean()) ** 2) / (pooled.size - 1)
    return float(1 - observed / expected)


def _histogram(
    finite: np.ndarray, minimum: float | None, maximum: float | None, integer: bool | None
) -> dict:
    """Count scores per level of an integer range, or in 10 equal bins otherwise."""
    whole = bool(np.all(finite == np.round(finite)))
    if (
        minimum is not None
        and maximum is not None
        and integer_scale(minimum, maximum, integer)
        and whole
    ):
        if not _in_range(finite, finite, minimum, maximum):
            _warn(f"histogram leaves out scores outside {minimum:g}..{maximum:g}")
        levels = range(int(minimum), int(maximum) + 1)
        return {str(v): int(np.sum(finite == v)) for v in levels}
    bounds = None if minimum is None or maximum is None else (minimum, maximum)
    counts, edges = np.histogram(finite, bins=10, range=bounds)
    return {"edges": edges.tolist(), "counts": counts.tolist()}


def _why(h: np.ndarray, j: np.ndarray) -> str:
    """Explain in words why a statistic needing variation is undefined."""
    if h.size == 0:
        return "no row has both a human and a judge score"
    if h.size == 1:
        return "only 1 row has both a human and a judge score"
    constant = [f"{who} scores are all {x[0]:g}" for who, x in (("human", h), ("judge", j))]
    reasons = [c for c, x in zip(constant, (h, j), strict=True) if _constant(x)]
    return f"{' and '.join(reasons) or 'no variation in rounded scores'} over {h.size} scored rows"


def _mean_std(x: np.ndarray) -> tuple[float, float]:
    """Mean (NaN if empty) and sample standard deviation (ddof=1; NaN below 2 values)."""
    mean = float(np.mean(x)) if x.size else math.nan
    std = float(np.std(x, ddof=1)) if x.size >= 2 else math.nan
    return mean, std


def _column(values: np.ndarray, name: str) -> np.ndarray:
    """Return ``values`` as a 1-D float array, or raise naming the argument."""
    x = np.asarray(values, dtype=float)
    if x.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array of scores, got shape {x.shape}")
    return x


def _same_length(*columns: np.ndarray) -> None:
    """Raise unless all columns have one entry per row of the same table."""
    if len({c.size for c in columns}) > 1:
        raise ValueError(f"score arrays must be aligned; got lengths {[c.size for c in columns]}")


def _finite(values: np.ndarray) -> np.ndarray:
    x = np.asarray(values, dtype=float).ravel()
    return x[np.isfinite(x)]


def _constant(x: np.ndarray) -> bool:
    return bool(x.size == 0 or np.all(x == x[0]))


def _integer_range(minimum: float, maximum: float) -> bool:
    return float(minimum).is_integer() and float(maximum).is_integer() and minimum <= maximum


def _in_range(h: np.ndarray, j: np.ndarray, minimum: float, maximum: float) -> bool:
    rounded = round_half_up(np.concatenate([h, j]))
    return bool(np.all((rounded >= minimum) & (rounded <= maximum)))


def _warn(message: str) -> None:
    """Warn with JudgekitStatsWarning, pointing at the first caller outside judgekit.stats.pointwise*."""
    frame: FrameType | None = sys._getframe(0)
    level = 1
    while frame is not None and frame.f_globals.get("__name__", "").startswith(
        "judgekit.stats.pointwise"
    ):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, JudgekitStatsWarning, stacklevel=level)
