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
from judgekit.stats.bootstrap import clustered_mean_ci, clustered_mean_difference_ci

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
    """The gap ``observed - baseline`` on the ``marked`` items minus the gap on the others
    (:func:`judgekit.stats.bootstrap.clustered_mean_difference_ci`); robustness is the share of
    the marked items where the two agree."""
    gap = np.asarray(observed, dtype=float) - np.asarray(baseline, dtype=float)
    usable = np.isfinite(gap)
    marked = np.asarray(marked, dtype=bool)
    difference, low, high, n_marked, n_other = clustered_mean_difference_ci(
        gap, marked, np.asarray(clusters), resamples=resamples, confidence=confidence, seed=seed
    )
    n_failed = int((~usable).sum())
    agree = np.abs(gap[usable & marked]) < SAME
    rate = float(agree.mean()) if agree.size else math.nan
    return Effect(test, "", n_marked + n_other, n_failed, difference, low, high, rate)
