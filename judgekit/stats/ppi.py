"""Human-scale estimates from a small labelled slice: prediction-powered inference (PPI++).

Building blocks for issue 18; nothing here is wired into a run yet.

With ``n`` items carrying both a human label ``Y`` and a judge score ``Yhat`` and ``N`` items with a
judge score only, PPI++ (Angelopoulos, Duchi & Zrnic 2023, through the ``ppi-python`` package)
estimates the mean human score as ``lam * mean(Yhat_unlabelled) + mean(Y - lam * Yhat)``: the judge
on many items, corrected by its error measured on the labelled ones, with ``lam`` tuned from the
data to minimise the variance (0 gives the human-only mean, 1 plain PPI). Beside it are the naive
judge-only mean (biased when the judge is) and the human-only mean of the labelled slice, each
with a t interval. Rows with a NaN are dropped and counted; an estimate that cannot be made is NaN
with a reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "MeanEstimate",
    "SystemEstimates",
    "b_win_indicator",
    "human_mean",
    "labels_needed",
    "naive_judge_mean",
    "ppi_by_system",
    "ppi_mean",
]


@dataclass(frozen=True)
class MeanEstimate:
    """A mean on the human scale with its confidence interval."""

    method: str
    """``ppi``, ``judge_only`` or ``human_only``."""
    value: float
    ci_low: float
    ci_high: float
    confidence: float
    n_labelled: int
    """Rows with both a human label and a judge score used (human-only: labelled rows)."""
    n_unlabelled: int
    """Judge-only rows used (the judge-only mean: every judged row; the human-only mean: 0)."""
    n_dropped: int
    """Rows left out for a NaN."""
    lam: float = math.nan
    """PPI++'s tuned power-tuning parameter (NaN for the other methods)."""
    reason: str | None = None
    """Why the estimate is NaN; None when it is defined."""


@dataclass(frozen=True)
class SystemEstimates:
    """One PPI estimate per system and the systems ranked by it (highest first; NaN last)."""

    estimates: dict[str, MeanEstimate]
    ranking: list[str]


def ppi_mean(
    human_labelled: np.ndarray,
    judge_labelled: np.ndarray,
    judge_unlabelled: np.ndarray,
    *,
    confidence: float = 0.95,
) -> MeanEstimate:
    """Estimate the mean human score by PPI++ (``ppi_py``'s mean interval and point estimate,
    with ``lam`` tuned exactly as their ``lam=None`` tunes it, so the numbers are the library's).

    Args:
        human_labelled: Human labels of the labelled items.
        judge_labelled: The judge's scores of the same items (aligned).
        judge_unlabelled: The judge's scores of the items without a human label.
        confidence: Two-sided coverage of the interval.

    Returns:
        The point estimate, its interval and the tuned ``lam`` (as ``ppi_py`` tunes it; 0 for a
        constant judge, which carries no information: the estimate is then the human mean).
    """
    y, yhat, unl, dropped = _ppi_inputs(human_labelled, judge_labelled, judge_unlabelled)
    counts = (int(y.size), int(unl.size), dropped)
    if y.size < 2 or unl.size < 2:
        why = f"PPI needs 2 or more labelled and unlabelled rows; got {y.size} and {unl.size}"
        return _undefined("ppi", confidence, counts, why)
    import ppi_py  # heavy: only on first use

    lam = _tuned_lam(y, yhat, unl)
    low, high = ppi_py.ppi_mean_ci(y, yhat, unl, alpha=1 - confidence, lam=lam)
    value = ppi_py.ppi_mean_pointestimate(y, yhat, unl, lam=lam)
    return MeanEstimate(
        "ppi", _scalar(value), _scalar(low), _scalar(high), confidence, *counts, lam=lam
    )


def _tuned_lam(y: np.ndarray, yhat: np.ndarray, unl: np.ndarray) -> float:
    """``lam`` as ``ppi_mean_ci(lam=None)`` tunes it: from gradients at the ``lam=1`` estimate.

    A constant judge makes the tuning 0/0; any ``lam`` then gives the same estimate and interval
    (the judge terms cancel), so 0 is returned: the labelled human mean.
    """
    if np.all(np.concatenate([yhat, unl]) == yhat[0]):
        return 0.0
    import ppi_py
    from ppi_py.ppi import _calc_lam_glm  # the library's own tuning, so the value matches

    theta = ppi_py.ppi_mean_pointestimate(y, yhat, unl, lam=1)
    grads = [(v - theta).reshape(-1, 1) for v in (y, yhat, unl)]
    return float(_calc_lam_glm(*grads, np.eye(1), clip=True))


def naive_judge_mean(judge: np.ndarray, *, confidence: float = 0.95) -> MeanEstimate:
    """The judge-only mean over every judged item, with a t interval (scipy)."""
    return _t_estimate("judge_only", judge, confidence, unlabelled=True)


def human_mean(human_labelled: np.ndarray, *, confidence: float = 0.95) -> MeanEstimate:
    """The human-only mean of the labelled slice, with a t interval (scipy)."""
    return _t_estimate("human_only", human_labelled, confidence, unlabelled=False)


def _t_estimate(
    method: str, values: np.ndarray, confidence: float, unlabelled: bool
) -> MeanEstimate:
    x = np.asarray(values, dtype=float).ravel()
    kept = x[np.isfinite(x)]
    n = int(kept.size)
    counts = (0, n, int(x.size - n)) if unlabelled else (n, 0, int(x.size - n))
    if n < 2:
        return _undefined(method, confidence, counts, f"a t interval needs 2 or more rows; got {n}")
    from scipy import stats as sps

    mean, sem = float(kept.mean()), float(sps.sem(kept))
    if sem == 0:  # constant values: the interval is the point
        return MeanEstimate(method, mean, mean, mean, confidence, *counts)
    low, high = sps.t.interval(confidence, n - 1, loc=mean, scale=sem)
    return MeanEstimate(method, mean, float(low), float(high), confidence, *counts)


def labels_needed(
    human_labelled: np.ndarray,
    judge_labelled: np.ndarray,
    judge_unlabelled_n: int,
    target_width: float,
    confidence: float = 0.95,
) -> float:
    """How many labelled items the PPI++ interval needs to be ``target_width`` wide.

    From the PPI++ variance of the mean (``ppi_py``'s, population variances, ``ddof=0``)::

        var(n) = var(Y - lam * Yhat) / n + lam**2 * var(Yhat) / N
        width(n) = 2 * z * sqrt(var(n)),  z = the normal quantile at (1 + confidence) / 2

    solved for ``n``: ``n = var(Y - lam * Yhat) / ((width / (2 z))**2 - lam**2 var(Yhat) / N)``,
    rounded up (at least 2). ``lam`` is PPI++'s variance-minimising value ``cov(Y, Yhat) / ((1 + n/N)
    var(Yhat))`` clipped to [0, 1], as ``ppi_py`` tunes it, but with ``var(Yhat)`` measured on
    the labelled judge scores (the unlabelled ones are not passed, only their number ``N``).
    The variances and ``lam`` measured now are held fixed as ``n`` grows: a planning figure.

    Returns:
        The number of labelled items (a whole number, as a float); NaN when it cannot be
        reached (``lam**2 var(Yhat) / N`` alone is wider than the target: more unlabelled items
        are needed, not labels) or cannot be measured (fewer than 2 labelled pairs, a constant
        judge, no unlabelled item, a target width that is not positive).
    """
    y, yhat, _, _ = _ppi_inputs(human_labelled, judge_labelled, np.zeros(0))
    n, big_n = y.size, judge_unlabelled_n
    if n < 2 or big_n < 1 or target_width <= 0 or float(np.var(yhat)) == 0:
        return math.nan
    from scipy import stats as sps

    cov = float(np.mean((y - y.mean()) * (yhat - yhat.mean())))
    lam = min(max(cov / ((1 + n / big_n) * float(np.var(yhat))), 0.0), 1.0)
    half = target_width / (2 * float(sps.norm.ppf((1 + confidence) / 2)))
    room = half**2 - lam**2 * float(np.var(yhat)) / big_n
    if room <= 0:
        return math.nan
    return float(max(2, math.ceil(float(np.var(y - lam * yhat)) / room)))  # PPI needs 2


def b_win_indicator(verdicts: np.ndarray) -> np.ndarray:
    """Map pairwise verdicts (0.0 = A wins, 0.5 = tie, 1.0 = B wins) to the B-win indicator.

    A tie counts half, so the mean of the indicator is the win rate of B with ties split, and
    :func:`ppi_mean` of human and judge indicators estimates the human win rate. NaN stays NaN;
    any other value is an error.
    """
    v = np.asarray(verdicts, dtype=float)
    bad = np.isfinite(v) & ~np.isin(v, (0.0, 0.5, 1.0))
    if bad.any():
        raise ValueError(f"verdicts: expected 0.0, 0.5 or 1.0 (or NaN), got {sorted(set(v[bad]))}")
    return v.copy()


def ppi_by_system(
    human: np.ndarray,
    judge: np.ndarray,
    systems: np.ndarray,
    *,
    confidence: float = 0.95,
) -> SystemEstimates:
    """One :func:`ppi_mean` per system, and the systems ranked by it.

    Args:
        human: Human label per row; NaN where the row is unlabelled.
        judge: Judge score per row; NaN where the judge failed (dropped and counted).
        systems: The system of each row.
        confidence: Two-sided coverage of each interval.
    """
    h, j, s = np.asarray(human, dtype=float), np.asarray(judge, dtype=float), np.asarray(systems)
    if not h.shape == j.shape == s.shape or h.ndim != 1:
        raise ValueError(f"human, judge, systems: expected aligned 1-D arrays, got {h.shape}")
    estimates = {}
    for name in np.unique(s):
        rows = s == name
        labelled = rows & np.isfinite(h)
        estimates[str(name)] = ppi_mean(
            h[labelled], j[labelled], j[rows & ~np.isfinite(h)], confidence=confidence
        )
    ranked = sorted(estimates, key=lambda k: (math.isnan(estimates[k].value), -estimates[k].value))
    return SystemEstimates(estimates, ranked)


def _ppi_inputs(
    y: np.ndarray, yhat: np.ndarray, unl: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Labelled pairs and unlabelled scores as float arrays, NaN rows dropped and counted."""
    y, yhat = np.asarray(y, dtype=float).ravel(), np.asarray(yhat, dtype=float).ravel()
    u = np.asarray(unl, dtype=float).ravel()
    if y.shape != yhat.shape:
        raise ValueError(f"human_labelled and judge_labelled: lengths {y.size} != {yhat.size}")
    pair, judged = np.isfinite(y) & np.isfinite(yhat), np.isfinite(u)
    dropped = int(y.size - pair.sum() + u.size - judged.sum())
    return y[pair], yhat[pair], u[judged], dropped


def _undefined(
    method: str, confidence: float, counts: tuple[int, int, int], why: str
) -> MeanEstimate:
    nan = math.nan
    return MeanEstimate(method, nan, nan, nan, confidence, *counts, reason=why)


def _scalar(x: object) -> float:
    return float(np.asarray(x).ravel()[0])
