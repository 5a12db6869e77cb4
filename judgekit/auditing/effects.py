"""Paired effects of a test's variants: the mean change, a clustered bootstrap interval, and the
robustness rate (the share of items whose verdict or score did not move).

For item ``i`` the statistic ``y`` is the judge's score (range scores) or its preference for the
target response (preference scores: 1 chosen, 0 the other, 0.5 a tie; see
:mod:`judgekit.auditing.perturbations`). A variant's effect is ``mean_i(y_variant - y_original)``
over the items where both are defined (the others are counted in ``n_failed``); a test's effect
is, per item, the mean difference over its headline variants (items with every headline variant
defined), so each item counts once. Intervals resample whole ``dataset.fields.group`` clusters
(:func:`judgekit.stats.bootstrap.clustered_mean_ci`); robustness has no interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from judgekit.records import Example
from judgekit.stats.bootstrap import _percentile_interval, _unit_counts, clustered_mean_ci

__all__ = ["Effect", "clusters_of", "contrast_effect_of", "effect_of", "preference_for", "robust"]

SAME = 1e-9
"""Two values closer than this are the same verdict or score."""


@dataclass(frozen=True)
class Effect:
    """One row of the audit's table."""

    test: str
    variant: str
    """A variant's name, or ``""`` for the test's own (headline) effect."""
    n: int
    """Items in the effect (original and variant(s) defined)."""
    n_failed: int
    """Items left out: a judge call or parse failed on the original or a variant."""
    effect: float
    ci_low: float
    ci_high: float
    robustness: float
    """Share of the ``n`` items whose statistic did not move under any of the variants."""


def clusters_of(examples: list[Example], grouped: bool) -> np.ndarray:
    """The bootstrap's clusters: the groups when ``dataset.fields.group`` is set (``grouped``),
    else each item alone (an effect is per item: rows that merely share a prompt text, e.g. a
    fixed instruction, are not one cluster)."""
    return np.array([(e.group if grouped else "") or f"\0{e.id}" for e in examples])


def preference_for(verdict: np.ndarray, side: np.ndarray) -> np.ndarray:
    """The judge's preference for the response on ``side`` (``a``/``b`` per row) from its
    verdict (A = 0, B = 1, tie = 0.5; NaN stays NaN)."""
    verdict = np.asarray(verdict, dtype=float)
    return np.where(np.asarray(side) == "a", 1.0 - verdict, verdict)


def robust(differences: np.ndarray) -> np.ndarray:
    """Per row of ``differences`` (items × variants, all defined): no variant moved it."""
    return np.all(np.abs(differences) < SAME, axis=1)


def effect_of(
    test: str,
    variant: str,
    original: np.ndarray,
    variants: np.ndarray,
    clusters: np.ndarray,
    *,
    resamples: int,
    confidence: float,
    seed: int,
) -> Effect:
    """The paired effect of ``variants`` (items × k statistics) against ``original`` (items, or
    items × k: each variant's own baseline)."""
    y1 = np.asarray(variants, dtype=float)
    n = y1.shape[0]
    y1 = y1.reshape(n, -1)
    y0 = np.asarray(original, dtype=float).reshape(n, -1)  # one baseline, or one per variant
    differences = y1 - y0
    usable = np.isfinite(differences).all(axis=1)
    n_failed = int((~usable).sum())
    if not usable.any():
        nan = math.nan
        return Effect(test, variant, 0, n_failed, nan, nan, nan, nan)
    per_item = np.full(n, np.nan)
    per_item[usable] = differences[usable].mean(axis=1)
    mean, low, high, n = clustered_mean_ci(
        per_item, np.asarray(clusters), resamples=resamples, confidence=confidence, seed=seed
    )
    rate = float(robust(differences[usable]).mean())
    return Effect(test, variant, n, n_failed, mean, low, high, rate)


def contrast_effect_of(
    test: str,
    baseline: np.ndarray,
    observed: np.ndarray,
    marked: np.ndarray,
    clusters: np.ndarray,
    *,
    resamples: int,
    confidence: float,
    seed: int,
) -> Effect:
    """How much higher ``observed`` is on the ``marked`` items than ``baseline`` explains: the
    coefficient ``b2`` of ``observed = b0 + b1 * baseline + b2 * marked`` (least squares), with
    a percentile interval of refits on resampled clusters. A judge whose scores are a squeezed
    or shifted copy of the humans' has ``b2`` = 0 (a plain gap difference would not). Robustness
    is the share of the marked items where the two agree."""
    y = np.asarray(observed, dtype=float)
    x = np.asarray(baseline, dtype=float)
    m = np.asarray(marked, dtype=bool)
    usable = np.isfinite(y) & np.isfinite(x)
    n_failed = int((~usable).sum())
    y, x, m, c = y[usable], x[usable], m[usable], np.asarray(clusters)[usable]
    nan = math.nan
    if not m.any() or m.all():
        return Effect(test, "", int(y.size), n_failed, nan, nan, nan, nan)
    design = np.column_stack([np.ones(y.size), x, m.astype(float)])
    point = _marked_coefficient(design, y, np.ones(y.size))
    units = np.unique(c, return_inverse=True)[1].ravel()
    n_units = int(units.max()) + 1
    low = high = nan
    if n_units >= 2:
        counts = _unit_counts(n_units, resamples, rng=np.random.default_rng(seed))
        draws = np.array([_marked_coefficient(design, y, row[units]) for row in counts])
        (low, high), _ = _percentile_interval(draws, confidence)
    rate = float((np.abs(y - x)[m] < SAME).mean())
    return Effect(test, "", int(y.size), n_failed, point, low, high, rate)


def _marked_coefficient(design: np.ndarray, y: np.ndarray, weights: np.ndarray) -> float:
    """The last coefficient of a weighted least-squares fit; NaN when the drawn rows cannot
    identify it (no marked or no unmarked row drawn)."""
    drawn = weights > 0
    marked = design[:, 2] > 0
    if not (drawn & marked).any() or not (drawn & ~marked).any():
        return math.nan
    root = np.sqrt(weights)
    beta = np.linalg.lstsq(design * root[:, None], y * root, rcond=None)[0]
    return float(beta[2])
