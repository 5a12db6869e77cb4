"""The human ceiling of a pointwise score: how well several human raters agree with each other.

Building blocks for issue 18; nothing here is wired into a run yet.

Krippendorff's alpha here takes any number of coders with missing ratings (the two-coder
:func:`judgekit.stats.pointwise.krippendorff_alpha` is its special case): only items with 2 or more
ratings are pairable; with ``N`` pairable values, ``m_u`` ratings of item ``u`` and ``delta`` the
distance (squared difference of values, interval; of the pooled midranks, ordinal, which equals
Krippendorff's ordinal metric)::

    D_o = 1/N * sum_u 1/(m_u - 1) * sum_{a != b in u} delta(a, b)
    D_e = 1/(N (N - 1)) * sum_{a != b over all pairable values} delta(a, b)
    alpha = 1 - D_o / D_e      (NaN when D_e = 0: every pairable rating equal, or N < 2)
"""

from __future__ import annotations

import math
import warnings
from itertools import combinations
from typing import Literal

import numpy as np

from judgekit.stats.pointwise import JudgekitStatsWarning, agreement

__all__ = ["human_ceiling_pointwise", "krippendorff_alpha_coders"]


def krippendorff_alpha_coders(
    ratings: np.ndarray, *, level: Literal["ordinal", "interval"]
) -> float:
    """Krippendorff's alpha of (items, coders) ratings with NaN for missing (module docstring)."""
    r = np.asarray(ratings, dtype=float)
    if r.ndim != 2:
        raise ValueError(f"ratings: expected shape (items, coders), got {r.shape}")
    r = r[np.isfinite(r).sum(axis=1) >= 2]
    present = np.isfinite(r)
    values = r[present]
    if values.size < 2 or np.all(values == values[0]):
        return math.nan
    if level == "ordinal":
        from scipy.stats import rankdata

        values = rankdata(values)
    elif level != "interval":
        raise ValueError(f"level: {level!r} is not valid; use 'ordinal' or 'interval'")
    coded = np.zeros(r.shape)
    coded[present] = values  # row-major order matches r[present]
    m = present.sum(axis=1)
    s1, s2 = coded.sum(axis=1), (coded**2).sum(axis=1)
    within = 2 * (m * s2 - s1**2)  # sum over ordered pairs a != b in u of (v_a - v_b)^2
    n = values.size
    observed = float(np.sum(within / (m - 1))) / n
    expected = 2 * (n * float(np.sum(values**2)) - float(values.sum()) ** 2) / (n * (n - 1))
    return 1.0 - observed / expected


def human_ceiling_pointwise(
    annotators: np.ndarray, *, minimum: float, maximum: float
) -> dict[str, object]:
    """How well human raters of a pointwise score agree with each other: the judge's ceiling.

    Args:
        annotators: Scores of shape (items, annotators), at least 2; NaN where not rated.
        minimum: Lowest score of the scale (for QWK).
        maximum: Highest score of the scale.

    Returns:
        ``n_items``, ``n_annotators``, ``n_pairable`` (items with 2 or more ratings);
        ``alpha_ordinal``/``alpha_interval``: :func:`krippendorff_alpha_coders` over all raters;
        ``mean_pairwise_qwk``: QWK of each pair of raters on the items both rated, averaged over
        the pairs where it is defined (NaN if none); ``per_annotator``: each rater against the
        mean of the others on the items both sides have (``annotator``, ``n``, ``pearson``,
        ``spearman``, ``qwk``; the mean enters QWK rounded half up, as in
        :func:`judgekit.stats.pointwise.agreement`); ``mean_loo_pearson``, ``mean_loo_spearman``,
        ``mean_loo_qwk``: their means over the raters where defined. Undefined figures are NaN.
    """
    a = np.asarray(annotators, dtype=float)
    if a.ndim != 2 or a.shape[1] < 2:
        raise ValueError(f"annotators: expected shape (items, annotators >= 2), got {a.shape}")
    with warnings.catch_warnings():  # undefined pairs are NaN here and averaged over
        warnings.simplefilter("ignore", JudgekitStatsWarning)
        pairs = [_pair(a[:, i], a[:, k], minimum, maximum)["qwk"] for i, k in _pairs(a)]
        loo = [_against_others(a, j, minimum, maximum) for j in range(a.shape[1])]
    out: dict[str, object] = {
        "n_items": int(a.shape[0]),
        "n_annotators": int(a.shape[1]),
        "n_pairable": int(np.sum(np.isfinite(a).sum(axis=1) >= 2)),
        "alpha_ordinal": krippendorff_alpha_coders(a, level="ordinal"),
        "alpha_interval": krippendorff_alpha_coders(a, level="interval"),
        "mean_pairwise_qwk": _mean_defined(pairs),
        "per_annotator": loo,
    }
    for stat in ("pearson", "spearman", "qwk"):
        out[f"mean_loo_{stat}"] = _mean_defined([float(row[stat]) for row in loo])
    return out


def _pairs(a: np.ndarray) -> list[tuple[int, int]]:
    return list(combinations(range(a.shape[1]), 2))


def _pair(x: np.ndarray, y: np.ndarray, minimum: float, maximum: float) -> dict[str, float]:
    return agreement(x, y, minimum=minimum, maximum=maximum)


def _against_others(a: np.ndarray, j: int, minimum: float, maximum: float) -> dict[str, float]:
    """Rater ``j`` against the mean of the other raters (NaN where none of them rated)."""
    others = np.delete(a, j, axis=1)
    count = np.isfinite(others).sum(axis=1)
    mean = np.where(count > 0, np.nansum(others, axis=1) / np.maximum(count, 1), math.nan)
    stats = _pair(a[:, j], mean, minimum, maximum)
    row: dict[str, float] = {"annotator": j, "n": int(stats["n_scored"])}
    return row | {k: float(stats[k]) for k in ("pearson", "spearman", "qwk")}


def _mean_defined(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan
