"""Calibration: a monotone map from judge scores to the human scale, the held-out split it is fitted
on, and how well a judge's own level probabilities are calibrated.

Building blocks for issue 18, wired into runs by :mod:`judgekit.calibrated` (``stats.calibrate``).

- :func:`fit_calibration` fits a :class:`CalibrationMap` (isotonic regression, or an ordinal
  logistic model of the human level on the judge score) on rows with both scores; rows where either
  is NaN are dropped and counted. A map that cannot be fitted (no rows, one human level, a constant
  judge for the ordinal model) is still returned: it maps every score to NaN and says why.
- :func:`calibration_split` deals whole groups to the fit side or the evaluation side, so a map is
  never evaluated on the rows (or the prompts) it was fitted on.
- :func:`probability_calibration` gives the expected calibration error, the multi-class Brier score
  and the reliability diagram of a judge's distribution over levels against the human labels.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

__all__ = [
    "CalibrationMap",
    "calibration_split",
    "fit_calibration",
    "probability_calibration",
]

Method = Literal["isotonic", "ordinal"]
ECE_BINS = 10
"""Equal-width confidence bins of :func:`probability_calibration`."""


@dataclass(frozen=True)
class CalibrationMap:
    """A fitted map from judge scores to the human scale, applied without refitting.

    ``x``/``y`` are the isotonic fit's thresholds (``X_thresholds_``, ``y_thresholds_``): between
    them the map interpolates linearly, outside them it is clipped, as scikit-learn's ``predict``
    with ``out_of_bounds="clip"``. ``params``/``levels`` are the ordinal model's parameters
    (statsmodels ``OrderedModel`` layout: the judge-score slope, the first cut point, then the
    logs of the increments between cut points) and the human levels it predicts.
    """

    method: Method
    minimum: float
    maximum: float
    n_fit: int
    n_dropped: int
    x: list[float] = field(default_factory=list)
    y: list[float] = field(default_factory=list)
    params: list[float] = field(default_factory=list)
    levels: list[float] = field(default_factory=list)
    reason: str | None = None
    """Why the map is undefined (every score maps to NaN); None when it was fitted."""

    def apply(self, judge_scores: np.ndarray) -> np.ndarray:
        """Map judge scores to the human scale; NaN stays NaN (and everything is NaN when the
        map is undefined)."""
        s = np.asarray(judge_scores, dtype=float)
        out = np.full(s.shape, math.nan)
        ok = np.isfinite(s)
        if self.reason is None and ok.any():
            apply = _apply_isotonic if self.method == "isotonic" else _apply_ordinal
            out[ok] = apply(self, s[ok])
        return out

    def to_json(self) -> str:
        """The map as JSON, enough for :meth:`from_json` to apply it identically."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> CalibrationMap:
        """Read a map written by :meth:`to_json`."""
        return cls(**json.loads(text))


def fit_calibration(
    judge: np.ndarray,
    human: np.ndarray,
    *,
    method: Method,
    minimum: float,
    maximum: float,
    levels: list[float] | None = None,
) -> CalibrationMap:
    """Fit a monotone map from judge scores to human scores on the rows where both are finite.

    Args:
        judge: Judge score per row (NaN where the judge failed).
        human: Human score per row (NaN where unlabelled).
        method: ``isotonic``: scikit-learn's ``IsotonicRegression(increasing=True,
            out_of_bounds="clip", y_min=minimum, y_max=maximum)``. ``ordinal``: statsmodels'
            ``OrderedModel`` (logit) of the human level on the judge score; the map gives the
            *expected* human level ``sum_k P(level_k | score) * level_k``, not the most probable
            one, because the expectation keeps the resolution that correlations and means need,
            where the mode collapses neighbouring scores onto one level and can leave levels out.
        minimum: Lowest score of the human scale.
        maximum: Highest score of the human scale.
        levels: The human levels (ordinal only); default the sorted distinct human values. A
            human value outside them is an error; levels unseen in the fit rows are left out.

    Returns:
        The fitted :class:`CalibrationMap` (``reason`` set, every score mapped to NaN, when it
        cannot be fitted).
    """
    j, h = _pairs(judge, human)
    keep = np.isfinite(j) & np.isfinite(h)
    base: dict[str, Any] = {
        "method": method,
        "minimum": float(minimum),
        "maximum": float(maximum),
        "n_fit": int(keep.sum()),
        "n_dropped": int(j.size - keep.sum()),
    }
    if method == "isotonic":
        return CalibrationMap(**base, **_fit_isotonic(j[keep], h[keep], minimum, maximum))
    if method == "ordinal":
        return CalibrationMap(**base, **_fit_ordinal(j[keep], h[keep], levels))
    raise ValueError(f"method: {method!r} is not valid; use 'isotonic' or 'ordinal'")


def _pairs(judge: np.ndarray, human: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    j, h = np.asarray(judge, dtype=float), np.asarray(human, dtype=float)
    if j.ndim != 1 or j.shape != h.shape:
        raise ValueError(f"judge and human: expected aligned 1-D arrays, got {j.shape}, {h.shape}")
    return j, h


def _fit_isotonic(j: np.ndarray, h: np.ndarray, minimum: float, maximum: float) -> dict[str, Any]:
    """The isotonic fit's thresholds, or a reason when there is no row to fit."""
    if j.size == 0:
        return {"reason": "no row has both a judge and a human score"}
    from sklearn.isotonic import IsotonicRegression  # heavy: only on first use

    model = IsotonicRegression(increasing=True, out_of_bounds="clip", y_min=minimum, y_max=maximum)
    model.fit(j, h)
    return {"x": model.X_thresholds_.tolist(), "y": model.y_thresholds_.tolist()}


def _apply_isotonic(m: CalibrationMap, s: np.ndarray) -> np.ndarray:
    x, y = np.asarray(m.x), np.asarray(m.y)
    return np.interp(np.clip(s, x[0], x[-1]), x, y)


def _fit_ordinal(j: np.ndarray, h: np.ndarray, levels: list[float] | None) -> dict[str, Any]:
    """The ordinal model's parameters and levels, or a reason when it cannot be fitted."""
    declared = np.unique(h) if levels is None else np.asarray(sorted(levels), dtype=float)
    if not np.isin(h, declared).all():
        raise ValueError(f"human: values {sorted(set(h) - set(declared))} are not in {levels}")
    seen = declared[np.isin(declared, h)]
    if seen.size < 2:
        return {"reason": f"the ordinal model needs 2 or more human levels; {seen.size} seen"}
    if np.all(j == j[0]):
        return {"reason": f"judge scores are all {j[0]:g} over {j.size} rows: no slope to fit"}
    from statsmodels.miscmodels.ordinal_model import OrderedModel  # heavy: only on first use
    from statsmodels.tools.sm_exceptions import HessianInversionWarning

    codes = np.searchsorted(seen, h)
    model = OrderedModel(codes, j[:, None], distr="logit")
    with warnings.catch_warnings():  # only the point estimates are used, never standard errors
        warnings.simplefilter("ignore", HessianInversionWarning)
        fitted = model.fit(method="bfgs", disp=False, maxiter=1000)
    return {"params": np.asarray(fitted.params, dtype=float).tolist(), "levels": seen.tolist()}


def _apply_ordinal(m: CalibrationMap, s: np.ndarray) -> np.ndarray:
    """Expected level: cut points ``c_0 = p[1]``, ``c_k = c_{k-1} + exp(p[k+1])``;
    ``P(level <= k) = logistic(c_k - slope * s)``."""
    from scipy.special import expit  # the logistic function, without overflow warnings

    p = np.asarray(m.params)
    cuts = np.cumsum(np.concatenate([[p[1]], np.exp(p[2:])]))
    below = expit(cuts[None, :] - p[0] * s[:, None])
    cdf = np.column_stack([np.zeros(s.size), below, np.ones(s.size)])
    return np.diff(cdf, axis=1) @ np.asarray(m.levels)


def calibration_split(
    n_rows: int, groups: np.ndarray | None, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Deal rows to a fit side and an evaluation side, whole groups at a time.

    Groups are shuffled with ``seed``; each goes to the fit side while it holds fewer than
    ``round(fraction * n_rows)`` rows, the rest to the evaluation side. ``groups=None`` makes
    every row its own group.

    Returns:
        ``(fit_idx, eval_idx)``: sorted row indices, disjoint and together covering every row.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction: {fraction!r} must be between 0 and 1 (exclusive)")
    g = np.arange(n_rows) if groups is None else np.asarray(groups)
    if g.shape != (n_rows,):
        raise ValueError(f"groups: expected {n_rows} entries, got shape {g.shape}")
    names, codes = np.unique(g, return_inverse=True)
    order = np.random.default_rng(seed % 2**32).permutation(names.size)  # any int seed
    sizes, target, taken = np.bincount(codes, minlength=names.size), round(fraction * n_rows), 0
    to_fit = np.zeros(names.size, dtype=bool)
    for k in order:
        if taken >= target:
            break
        to_fit[k], taken = True, taken + sizes[k]
    fit = to_fit[codes]
    return np.flatnonzero(fit), np.flatnonzero(~fit)


def probability_calibration(
    probs: np.ndarray, human: np.ndarray, levels: list[float]
) -> dict[str, Any]:
    """How well a judge's distribution over levels (or verdicts) matches the human labels.

    The judge's prediction is its most probable level (the first on a tie) and its confidence
    that probability. ``ece`` is ``sum_b (n_b / n) * |accuracy_b - confidence_b|`` over
    :data:`ECE_BINS` equal-width bins of confidence (bin ``b`` holds ``[b/10, (b+1)/10)``, the last
    also 1.0), accuracy being the share of the bin's rows whose prediction equals the human label.
    ``brier`` is ``mean_rows sum_levels (p - onehot(human))**2`` (0 best, 2 worst; twice the
    binary ``brier_score_loss`` for two levels).

    Args:
        probs: Shape (rows, levels); each row sums to 1 (within 1e-6). A row with a NaN is dropped.
        human: The human label per row, one of ``levels``; NaN rows are dropped.
        levels: The levels the columns of ``probs`` stand for, in order.

    Returns:
        ``n_rows``, ``n_dropped``, ``ece``, ``brier``, ``reliability`` (per non-empty bin:
        ``bin_low``, ``bin_high``, ``count``, ``mean_confidence``, ``accuracy``) and ``reason``
        (why ``ece``/``brier`` are NaN: no row left; else None).
    """
    p, h, lv = np.asarray(probs, dtype=float), np.asarray(human, dtype=float), np.asarray(levels)
    if p.ndim != 2 or p.shape != (h.size, lv.size):
        raise ValueError(f"probs: expected shape ({h.size}, {lv.size}), got {p.shape}")
    keep = np.isfinite(p).all(axis=1) & np.isfinite(h)
    p, h = p[keep], h[keep]
    _check_distribution(p, h, lv)
    out: dict[str, Any] = {"n_rows": int(h.size), "n_dropped": int(keep.size - h.size)}
    if h.size == 0:
        reason = "no row has both a judge distribution and a human label"
        return out | {"ece": math.nan, "brier": math.nan, "reliability": [], "reason": reason}
    onehot = (h[:, None] == lv[None, :]).astype(float)
    confidence = p.max(axis=1)
    correct = (lv[p.argmax(axis=1)] == h).astype(float)
    bins = _reliability(confidence, correct)
    ece = sum(b["count"] / h.size * abs(b["accuracy"] - b["mean_confidence"]) for b in bins)
    brier = float(np.mean(np.sum((p - onehot) ** 2, axis=1)))
    return out | {"ece": float(ece), "brier": brier, "reliability": bins, "reason": None}


def _check_distribution(p: np.ndarray, h: np.ndarray, lv: np.ndarray) -> None:
    if not np.allclose(p.sum(axis=1), 1.0, atol=1e-6) or (p < 0).any():
        raise ValueError("probs: every row must be a distribution (non-negative, summing to 1)")
    if not np.isin(h, lv).all():
        raise ValueError(f"human: values {sorted(set(h) - set(lv))} are not in levels {list(lv)}")


def _reliability(confidence: np.ndarray, correct: np.ndarray) -> list[dict[str, float]]:
    """Per non-empty equal-width bin: its bounds, count, mean confidence and accuracy."""
    index = np.minimum((confidence * ECE_BINS).astype(int), ECE_BINS - 1)
    rows = []
    for b in np.unique(index):
        inside = index == b
        rows.append(
            {
                "bin_low": b / ECE_BINS,
                "bin_high": (b + 1) / ECE_BINS,
                "count": int(inside.sum()),
                "mean_confidence": float(confidence[inside].mean()),
                "accuracy": float(correct[inside].mean()),
            }
        )
    return rows
