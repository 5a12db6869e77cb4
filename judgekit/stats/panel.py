"""A panel of judges: their scores of one item combined, their weights, how much they agree.

Input is an (items × members) float array: row ``i`` holds every member's score of item ``i``,
NaN where that member failed (a call error or an unparseable answer). A failed member is never
a zero: it is left out of ``mean``/``median``/``majority``/``weighted`` (and said by the caller),
and makes ``strict_majority`` abstain.

- :func:`combine` applies ``judge.aggregate`` (:class:`judgekit.config.schema.Aggregate`);
  an item the panel cannot decide is NaN and flagged, never silently decided.
- :func:`fit_weights`: member weights (non-negative, summing to 1) that minimise the squared
  error of the weighted mean against the human labels (scipy's SLSQP with those constraints).
- :func:`agreement_matrix`: every pair of members' Cohen's κ (labels, preferences), quadratic
  weighted κ (integer ranges, scikit-learn) or interval Krippendorff α (anything else).
- The members' Krippendorff α is :func:`judgekit.stats.repeats.krippendorff_alpha_units`, the
  members as coders.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd

__all__ = ["TIE", "agreement_matrix", "combine", "fit_weights", "verdict"]

TIE = 0.5
"""A preference tie (A is 0, B is 1)."""


def verdict(value: float) -> float:
    """A mean of preference verdicts as a verdict: below 0.5 A (0), above B (1), else a tie."""
    if not math.isfinite(value):
        return math.nan
    if abs(value - TIE) < 1e-9:
        return TIE
    return 0.0 if value < TIE else 1.0


def combine(
    values: np.ndarray, how: str, *, preference: bool, weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Each item's panel value, and whether the panel abstained on it.

    ``how``: ``mean``, ``median`` (a preference's mean or median mapped by :func:`verdict`),
    ``majority`` (the value more than half of the members that answered give; a preference
    with none is a tie, any other score abstains), ``strict_majority`` (the value more than half
    of *all* members give, every member having answered; else it abstains), ``weighted`` (the
    mean with ``weights``, renormalised over the members that answered; it abstains when those
    weigh nothing). An item no member answered is NaN and not an abstention (it failed).
    """
    x = np.asarray(values, dtype=float)
    if x.ndim != 2:
        raise ValueError(f"values: expected (items × members), got shape {x.shape}")
    if how == "weighted" and (weights is None or len(weights) != x.shape[1]):
        raise ValueError("weights: weighted needs one weight per member")
    out = np.full(x.shape[0], math.nan)
    abstained = np.zeros(x.shape[0], dtype=bool)
    for i, row in enumerate(x):
        out[i], abstained[i] = _one(row, how, preference, weights)
    return out, abstained


def _one(row: np.ndarray, how: str, preference: bool, weights: np.ndarray | None) -> tuple:
    ok = np.isfinite(row)
    if not ok.any():
        return math.nan, False
    if how in ("majority", "strict_majority"):
        strict = how == "strict_majority"
        if strict and not ok.all():
            return math.nan, True
        labels, counts = np.unique(row[ok], return_counts=True)
        best = int(np.argmax(counts))
        if counts[best] * 2 > (row.size if strict else int(ok.sum())):
            return float(labels[best]), False
        return (TIE, False) if preference and not strict else (math.nan, True)
    if how == "weighted":
        assert weights is not None
        w = np.asarray(weights, dtype=float)[ok]
        if not w.sum() > 0:
            return math.nan, True
        value = float(np.dot(w, row[ok]) / w.sum())
    elif how == "mean":
        value = float(np.mean(row[ok]))
    elif how == "median":
        value = float(np.median(row[ok]))
    else:
        raise ValueError(
            f"how: {how!r} is not valid; use mean, median, majority, strict_majority or weighted"
        )
    return (verdict(value) if preference else value), False


def fit_weights(values: np.ndarray, human: np.ndarray) -> np.ndarray:
    """Member weights w ≥ 0, Σ w = 1, minimising Σ_i (Σ_m w_m x_im − h_i)² over the items every
    member answered and a human labelled (scipy SLSQP; the problem is a convex quadratic, so its
    optimum is the one the constraints allow). Raises ValueError without such items."""
    from scipy.optimize import minimize

    x, h = np.asarray(values, dtype=float), np.asarray(human, dtype=float)
    keep = np.isfinite(x).all(axis=1) & np.isfinite(h)
    if keep.sum() < 2:
        raise ValueError(
            f"fit_weights: {int(keep.sum())} items with every member's score and a human label; "
            "need 2 or more"
        )
    x, h = x[keep], h[keep]
    m = x.shape[1]

    def loss(w: np.ndarray) -> float:
        return float(np.sum((x @ w - h) ** 2))

    def grad(w: np.ndarray) -> np.ndarray:
        return 2.0 * x.T @ (x @ w - h)

    fitted = minimize(
        loss,
        np.full(m, 1.0 / m),
        jac=grad,
        method="SLSQP",
        bounds=[(0.0, 1.0)] * m,
        constraints=[{"type": "eq", "fun": lambda w: np.sum(w) - 1.0}],
        options={"ftol": 1e-12, "maxiter": 500},
    )
    w = np.clip(np.asarray(fitted.x, dtype=float), 0.0, None)
    return w / w.sum()


def agreement_matrix(
    values: np.ndarray,
    names: list[str],
    *,
    nominal: bool,
    minimum: float | None = None,
    maximum: float | None = None,
) -> tuple[pd.DataFrame, str]:
    """Every pair of members' agreement on the items both answered, and the statistic's name.

    ``cohen_kappa`` when ``nominal`` (labels, preferences); ``weighted_kappa`` (quadratic, the
    categories every integer from ``minimum`` to ``maximum``) when every value is such an
    integer; else ``krippendorff_alpha_interval``. NaN where a pair shares no item or the
    statistic is undefined (e.g. one member always gives the same value).
    """
    x = np.asarray(values, dtype=float)
    finite = x[np.isfinite(x)]
    integer = (
        minimum is not None
        and maximum is not None
        and float(minimum).is_integer()
        and float(maximum).is_integer()
        and bool(np.all(finite == np.round(finite)))
        and bool(np.all((finite >= minimum) & (finite <= maximum)))
    )
    name = (
        "cohen_kappa" if nominal else "weighted_kappa" if integer else "krippendorff_alpha_interval"
    )
    m = len(names)
    matrix = np.eye(m)
    for a in range(m):
        for b in range(a + 1, m):
            matrix[a, b] = matrix[b, a] = _pair(x[:, a], x[:, b], name, minimum, maximum)
    return pd.DataFrame(matrix, index=names, columns=names), name


def _pair(a: np.ndarray, b: np.ndarray, name: str, low: float | None, high: float | None) -> float:
    from sklearn.metrics import cohen_kappa_score

    from judgekit.stats.repeats import krippendorff_alpha_units

    both = np.isfinite(a) & np.isfinite(b)
    if both.sum() < 2:
        return math.nan
    a, b = a[both], b[both]
    if name == "krippendorff_alpha_interval":
        return krippendorff_alpha_units(np.column_stack([a, b]), "interval")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # constant ratings: NaN, as documented
        if name == "cohen_kappa":
            labels = np.unique(np.concatenate([a, b]))
            if labels.size < 2:
                return math.nan
            codes = [np.searchsorted(labels, v) for v in (a, b)]  # 0.5 is a label, not a number
            return float(cohen_kappa_score(*codes, labels=np.arange(labels.size)))
        assert low is not None and high is not None
        levels = np.arange(int(low), int(high) + 1)
        value = float(
            cohen_kappa_score(a.astype(int), b.astype(int), labels=levels, weights="quadratic")
        )
    return value if math.isfinite(value) else math.nan
