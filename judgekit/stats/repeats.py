"""How stable a judge is across repeated draws of one request (``runner.samples``).

Input is an (items × draws) float array: row ``i`` holds the ``k`` draws of item ``i``, NaN where a
draw failed (a call error or an unparseable answer). A failed draw is excluded, never a zero; an
item's figures use its successful draws only, and an item with fewer than two of them cannot
disagree with itself, so it is left out of the figures below (and counted).

- :func:`krippendorff_alpha_units` is Krippendorff's alpha for any number of coders with missing
  values, from the coincidence matrix (Krippendorff 2011, "Computing Krippendorff's
  Alpha-Reliability"): the draws are the coders, the items the units. Its ``ordinal`` metric on
  two complete coders equals :func:`judgekit.stats.pointwise.krippendorff_alpha`'s.
- :func:`flip_rate`: share of items whose successful draws are not all equal.
- :func:`sample_std`: mean over items of the standard deviation (ddof=1) of their draws.
- :func:`reduce_draws`: an item's draws → one value (mean, median, mode, or a majority verdict).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = [
    "Level",
    "SampleStability",
    "flip_rate",
    "krippendorff_alpha_units",
    "majority",
    "reduce_draws",
    "sample_std",
    "stability",
]

Level = Literal["nominal", "ordinal", "interval"]
TIE = 0.5
"""A preference tie (A is 0, B is 1)."""


@dataclass(frozen=True)
class SampleStability:
    """One score's test–retest figures over ``runner.samples`` draws (NaN when undefined)."""

    level: Level
    """The metric of :attr:`test_retest_alpha`: ordinal, nominal or interval."""
    test_retest_alpha: float
    flip_rate: float
    sample_std: float
    n_items: int
    """Items with at least two successful draws (those the figures describe)."""
    n_draws: int
    """Draws asked for: items × samples."""
    n_failed_draws: int
    """Draws that failed (call error or unparseable answer), excluded."""

    def to_flat(self) -> dict[str, float]:
        """The figures as ``<stat>: value`` (the ``<score>/<stat>`` metrics)."""
        return {
            "test_retest_alpha": self.test_retest_alpha,
            "flip_rate": self.flip_rate,
            "sample_std": self.sample_std,
            "n_items_repeated": float(self.n_items),
            "n_draws": float(self.n_draws),
            "n_failed_draws": float(self.n_failed_draws),
        }


def stability(draws: np.ndarray, level: Level) -> SampleStability:
    """Every test–retest figure of one score's (items × draws) array."""
    x = np.asarray(draws, dtype=float)
    finite = np.isfinite(x)
    return SampleStability(
        level=level,
        test_retest_alpha=krippendorff_alpha_units(x, level),
        flip_rate=flip_rate(x),
        sample_std=sample_std(x),
        n_items=int((finite.sum(axis=1) >= 2).sum()),
        n_draws=int(x.size),
        n_failed_draws=int((~finite).sum()),
    )


def _repeated(draws: np.ndarray) -> list[np.ndarray]:
    """The successful draws of each item that has at least two."""
    rows = [row[np.isfinite(row)] for row in np.asarray(draws, dtype=float)]
    return [row for row in rows if row.size >= 2]


def flip_rate(draws: np.ndarray) -> float:
    """Share of items (with two or more successful draws) whose draws do not all agree."""
    rows = _repeated(draws)
    if not rows:
        return math.nan
    return float(np.mean([np.unique(row).size > 1 for row in rows]))


def sample_std(draws: np.ndarray) -> float:
    """Mean within-item standard deviation (ddof=1) over items with two or more draws."""
    rows = _repeated(draws)
    if not rows:
        return math.nan
    return float(np.mean([np.std(row, ddof=1) for row in rows]))


def krippendorff_alpha_units(draws: np.ndarray, level: Level) -> float:
    """Krippendorff's alpha of the draws (coders) over the items (units), missing values allowed.

    ``1 - (n - 1) · Σ o_ck δ²_ck / Σ n_c n_k δ²_ck`` over the coincidence matrix ``o`` of the
    pairable values (units with two or more). NaN without two pairable values or without
    expected disagreement (every value equal).
    """
    rows = _repeated(draws)
    if not rows:
        return math.nan
    values = np.unique(np.concatenate(rows))
    if values.size < 2:
        return math.nan
    coincidence = np.zeros((values.size, values.size))
    for row in rows:
        counts = np.bincount(np.searchsorted(values, row), minlength=values.size).astype(float)
        pairs = np.outer(counts, counts) - np.diag(counts)  # ordered pairs of different draws
        coincidence += pairs / (row.size - 1)
    totals = coincidence.sum(axis=1)
    delta = _delta(values, totals, level)
    n = totals.sum()
    expected = float((np.outer(totals, totals) * delta).sum())
    return 1.0 - (n - 1) * float((coincidence * delta).sum()) / expected


def _delta(values: np.ndarray, totals: np.ndarray, level: Level) -> np.ndarray:
    """Squared distances between values: nominal 0/1, interval ``(c - k)²``, ordinal
    ``(Σ_{g=c..k} n_g - (n_c + n_k) / 2)²``."""
    if level == "nominal":
        return 1.0 - np.eye(values.size)
    if level == "interval":
        return (values[:, None] - values[None, :]) ** 2
    if level != "ordinal":
        raise ValueError(f"level: {level!r} is not valid; use nominal, ordinal or interval")
    cumulative = np.concatenate([[0.0], np.cumsum(totals)])
    low = np.minimum.outer(np.arange(values.size), np.arange(values.size))
    high = np.maximum.outer(np.arange(values.size), np.arange(values.size))
    between = cumulative[high + 1] - cumulative[low]
    return (between - (totals[:, None] + totals[None, :]) / 2) ** 2


def majority(values: np.ndarray) -> float:
    """The verdict more than half of the successful draws give; a tie (0.5) when none does.

    NaN without a successful draw."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return math.nan
    labels, counts = np.unique(finite, return_counts=True)
    best = int(np.argmax(counts))
    return float(labels[best]) if counts[best] * 2 > finite.size else TIE


def reduce_draws(values: np.ndarray, how: str) -> float:
    """One item's successful draws → its value: ``mean``, ``median``, ``mode`` (the most
    frequent value; a tie between modes gives their mean) or ``majority`` (preference).

    Failed draws (NaN) are left out; NaN when no draw succeeded.
    """
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return math.nan
    if how in ("mean", "expected"):
        return float(np.mean(finite))
    if how == "median":
        return float(np.median(finite))
    if how == "majority":
        return majority(finite)
    if how == "mode":
        labels, counts = np.unique(finite, return_counts=True)
        return float(np.mean(labels[counts == counts.max()]))
    raise ValueError(f"reduce: {how!r} is not valid; use mean, median, mode or majority")
