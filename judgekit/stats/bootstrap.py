"""Uncertainty of agreement statistics: bootstrap intervals and paired comparisons of two judges.

How resamples are drawn
    ``rows``: the scored rows are drawn with replacement. Rows with the same values are
    interchangeable, so the contingency table of one resample is *exactly* a multinomial draw
    over the distinct kinds of row, with probabilities (rows of that kind) / n: the same
    distribution as an index matrix of resamples × rows, without building it.
    ``clusters``: when a cluster id per row is given (rows sharing a prompt), the clusters are
    drawn with replacement (an index matrix of resamples × clusters) and a resample's table is
    the count-weighted sum of the drawn clusters' tables.

How statistics are computed per resample
    When the scored values take at most :data:`MAX_LEVELS` distinct values (a 0..4 or 1..10
    scale, averaged human labels), every statistic comes from the (resamples, L, L) contingency
    tables of human level × judge level (:func:`table_statistics`): midranks per level give
    Spearman, 2-D cumulative sums give Kendall's concordant and discordant pairs. Otherwise
    (continuous scores) each resample's rows are built and scored by the same code as
    :func:`judgekit.stats.pointwise.agreement`: correct, but about 10 ms per resample at 20,000 rows.

Intervals are percentile intervals. Resamples where a statistic is undefined (a constant rater)
are left out of that statistic; with fewer than half valid its interval is ``(nan, nan)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from judgekit.stats.pointwise import (
    STATISTICS,
    _column,
    _pair_statistics,
    _same_length,
    integer_scale,
    round_half_up,
)

if TYPE_CHECKING:
    from scipy import sparse

__all__ = [
    "COMPARABLE",
    "MAX_LEVELS",
    "BootstrapResult",
    "bootstrap_ci",
    "clustered_mean_ci",
    "clustered_mean_difference_ci",
    "paired_comparison",
    "table_statistics",
]

MAX_LEVELS = 64
"""Most distinct score values for which the contingency-table path is used."""
_BUDGET = 4_000_000
"""Numbers held per chunk of resamples (~32 MB); bounds memory for wide scales."""
LOWER_IS_BETTER = frozenset({"mae", "rmse"})
COMPARABLE = tuple(s for s in STATISTICS if "_mean" not in s and "_std" not in s)
"""Statistics with a better direction, which :func:`paired_comparison` can compare."""

Draws = dict[str, np.ndarray]


@dataclass(frozen=True)
class BootstrapResult:
    """Percentile bootstrap intervals of the agreement statistics, and how they were drawn."""

    intervals: dict[str, tuple[float, float]]
    """``(low, high)`` for each name in :data:`judgekit.stats.pointwise.STATISTICS`."""
    scheme: Literal["rows", "clusters"]
    """``clusters`` when cluster ids were given (whole clusters resampled), else ``rows``."""
    resamples: int
    """Resamples drawn."""
    confidence: float
    """Confidence level of the intervals."""
    valid: dict[str, int]
    """Resamples in which each statistic was defined (and so entered its interval)."""


def bootstrap_ci(
    human: np.ndarray,
    judge: np.ndarray,
    *,
    minimum: float,
    maximum: float,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    clusters: np.ndarray | None = None,
    integer: bool | None = None,
) -> BootstrapResult:
    """Give each agreement statistic a percentile bootstrap confidence interval.

    Args:
        human: Human score per row (NaN = no label); rows without both scores are left out.
        judge: Judge score per row (NaN = failed).
        minimum: Lowest score of the declared scale.
        maximum: Highest score of the declared scale.
        resamples: Bootstrap resamples (at least 1).
        confidence: Confidence level, in (0, 1).
        seed: Seed of the random generator; the same seed gives the same intervals.
        clusters: Optional group id per row (e.g. the prompt); whole groups are resampled.
        integer: Whether the scale is an integer scale (None: whole bounds); on any other scale
            ``qwk`` and ``within1_agreement`` are NaN in every resample.
    """
    h, j = _column(human, "human"), _column(judge, "judge")
    _check(h, j, resamples=resamples, confidence=confidence)
    scored = np.isfinite(h) & np.isfinite(j)
    units = _units(clusters, scored)
    scale = (minimum, maximum, integer_scale(minimum, maximum, integer))
    (draws,) = _draw_statistics([h[scored], j[scored]], units, scale, resamples, seed)
    intervals, valid = {}, {}
    for name in STATISTICS:
        intervals[name], valid[name] = _percentile_interval(draws[name], confidence)
    scheme: Literal["rows", "clusters"] = "rows" if clusters is None else "clusters"
    return BootstrapResult(intervals, scheme, resamples, confidence, valid)


def paired_comparison(
    human: np.ndarray,
    judge_a: np.ndarray,
    judge_b: np.ndarray,
    *,
    minimum: float,
    maximum: float,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    clusters: np.ndarray | None = None,
    statistics: Sequence[str] = COMPARABLE,
    integer: bool | None = None,
) -> list[dict[str, Any]]:
    """Compare two judges (e.g. prompt v1 and v2) scored against the same human labels.

    Only rows where human, ``judge_a`` and ``judge_b`` are all finite are used. Both judges are
    scored on the same resamples (paired bootstrap). The verdict reads the percentile interval
    of ``difference = b - a``: it is "better" or "worse" when the interval leaves out 0. The
    two-sided p-value inverts that interval (Koehn's paired bootstrap, two-sided): with ``c``
    the smaller number of resampled differences on either side of 0 (``<= 0`` or ``>= 0``) among
    ``R`` defined ones, ``p = min(1, 2 (1 + c) / (1 + R))``. So ``p < 1 - confidence`` when the
    interval leaves out 0, up to one resample, and p is never reported as exactly 0.

    Args:
        human: Human score per row (NaN = no label).
        judge_a: Score per row of the baseline judge (NaN = failed).
        judge_b: Score per row of the judge compared with it.
        minimum, maximum, resamples, confidence, seed, clusters, integer: As for
            :func:`bootstrap_ci`.
        statistics: Names from :data:`COMPARABLE` to compare, in the order of the result.

    Returns:
        One dict per statistic: ``statistic``, ``a``, ``b``, ``difference``, ``ci_low``,
        ``ci_high``, ``p_value``, ``verdict`` (``"better"``, ``"worse"`` or ``"no detectable
        difference"`` for b relative to a, lower being better for mae/rmse; ``"undefined"``
        when fewer than half the resamples define the difference), ``n_common``,
        ``n_dropped`` and ``scheme``.
    """
    unknown = sorted(set(statistics) - set(COMPARABLE))
    if unknown:
        raise ValueError(f"statistics: {unknown} cannot be compared; use {list(COMPARABLE)}")
    h, a, b = _column(human, "human"), _column(judge_a, "judge_a"), _column(judge_b, "judge_b")
    _check(h, a, b, resamples=resamples, confidence=confidence)
    common = np.isfinite(h) & np.isfinite(a) & np.isfinite(b)
    units = _units(clusters, common)
    h, a, b = h[common], a[common], b[common]
    scale = (minimum, maximum, integer_scale(minimum, maximum, integer))
    point_a = _pair_statistics(h, a, minimum=minimum, maximum=maximum, integer=scale[2])
    point_b = _pair_statistics(h, b, minimum=minimum, maximum=maximum, integer=scale[2])
    draws_a, draws_b = _draw_statistics([h, a, b], units, scale, resamples, seed)
    shared = {
        "n_common": int(common.sum()),
        "n_dropped": int(common.size - common.sum()),
        "scheme": "rows" if clusters is None else "clusters",
    }
    return [
        _compare(name, point_a[name], point_b[name], draws_b[name] - draws_a[name], confidence)
        | shared
        for name in statistics
    ]


def clustered_mean_ci(
    values: np.ndarray,
    clusters: np.ndarray | None = None,
    *,
    resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float, int]:
    """The mean of ``values`` (NaN rows left out) with a percentile bootstrap interval.

    With ``clusters`` (an id per row) whole clusters are drawn with replacement and a resample's
    mean is the mean of the drawn clusters' rows; otherwise rows are drawn. Returns
    ``(mean, low, high, n)`` with ``n`` the rows used; NaN figures when no row is left, a NaN
    interval when there is a single cluster (or row) to draw.
    """
    x = np.asarray(values, dtype=float)
    _check(x, resamples=resamples, confidence=confidence)
    keep = np.isfinite(x)
    units = _units(clusters, keep)
    x = x[keep]
    if x.size == 0:
        return math.nan, math.nan, math.nan, 0
    units = np.arange(x.size) if units is None else units
    n_units = int(units.max()) + 1
    if n_units < 2:  # one cluster (or row) cannot be resampled: no interval, never a zero width
        return float(x.mean()), math.nan, math.nan, int(x.size)
    sums, sizes = np.bincount(units, x, n_units), np.bincount(units, minlength=n_units)
    rng, chunk = np.random.default_rng(seed), max(1, _BUDGET // n_units)
    parts = []
    for start in range(0, resamples, chunk):
        counts = _unit_counts(n_units, min(chunk, resamples - start), rng=rng)
        parts.append((counts @ sums) / (counts @ sizes))  # every resample draws >= 1 unit
    means = np.concatenate(parts)
    (low, high), _ = _percentile_interval(means, confidence)
    return float(x.mean()), low, high, int(x.size)


def clustered_mean_difference_ci(
    values: np.ndarray,
    first: np.ndarray,
    clusters: np.ndarray | None = None,
    *,
    resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float, int, int]:
    """``mean(values[first]) - mean(values[~first])`` (NaN rows left out) with a percentile
    bootstrap interval.

    As :func:`clustered_mean_ci`: with ``clusters`` whole clusters are drawn (a cluster may hold
    rows of both sets), else rows; a resample drawing no row of one set is undefined, and an
    interval undefined in more than half the resamples is NaN. Returns ``(difference, low, high,
    n_first, n_second)``; NaN figures when either set is empty.
    """
    x = np.asarray(values, dtype=float)
    _check(x, resamples=resamples, confidence=confidence)
    keep = np.isfinite(x)
    units = _units(clusters, keep)
    x, side = x[keep], np.asarray(first, dtype=bool)[keep]
    n_first, n_second = int(side.sum()), int((~side).sum())
    if n_first == 0 or n_second == 0:
        return math.nan, math.nan, math.nan, n_first, n_second
    units = np.arange(x.size) if units is None else units
    n_units = int(units.max()) + 1
    if n_units < 2:
        return float(x[side].mean() - x[~side].mean()), math.nan, math.nan, n_first, n_second
    sums = [np.bincount(units[s], x[s], n_units) for s in (side, ~side)]
    sizes = [np.bincount(units[s], minlength=n_units) for s in (side, ~side)]
    rng, chunk = np.random.default_rng(seed), max(1, _BUDGET // n_units)
    parts = []
    with np.errstate(invalid="ignore", divide="ignore"):
        for start in range(0, resamples, chunk):
            counts = _unit_counts(n_units, min(chunk, resamples - start), rng=rng)
            means = [(counts @ sums[i]) / (counts @ sizes[i]) for i in (0, 1)]
            parts.append(means[0] - means[1])
    (low, high), _ = _percentile_interval(np.concatenate(parts), confidence)
    return float(x[side].mean() - x[~side].mean()), low, high, n_first, n_second


def table_statistics(
    tables: np.ndarray,
    levels: np.ndarray,
    *,
    minimum: float,
    maximum: float,
    integer: bool | None = None,
) -> Draws:
    """Compute every agreement statistic of many contingency tables at once.

    Args:
        tables: Counts of shape (resamples, L, L): human level (axis 1) × judge level (axis 2).
        levels: The L score values the levels stand for, ascending.
        minimum: Lowest score of the declared scale (for ``qwk``).
        maximum: Highest score of the declared scale.
        integer: As for :func:`bootstrap_ci`.

    Returns:
        An array of length ``resamples`` per name in :data:`judgekit.stats.pointwise.STATISTICS`; NaN
        where a statistic is undefined in that table.
    """
    t = np.asarray(tables, dtype=float)
    n = t.sum(axis=(1, 2))
    human, judge = t.sum(axis=2), t.sum(axis=1)
    levels = np.asarray(levels, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = _table_moments(human, judge, levels, n) | _table_errors(t, levels, n)
        out["pearson"] = _table_pearson(t, human, judge, levels, levels)
        out["spearman"] = _table_pearson(t, human, judge, _midranks(human), _midranks(judge))
        out["kendall"] = _table_tau_b(t, human, judge, n)
        on_levels = integer_scale(minimum, maximum, integer)
        out["qwk"] = _table_qwk(t, human, judge, n, levels, minimum, maximum, on_levels)
        if not on_levels:
            out["within1_agreement"] = np.full(t.shape[0], np.nan)
        pooled = human + judge
        out["krippendorff_alpha_ordinal"] = _table_alpha(t, pooled, _midranks(pooled), n)
        out["krippendorff_alpha_interval"] = _table_alpha(t, pooled, levels, n)
    return {name: out[name] for name in STATISTICS}


def _table_moments(
    human: np.ndarray, judge: np.ndarray, levels: np.ndarray, n: np.ndarray
) -> Draws:
    """Means and sample standard deviations (ddof=1) of both raters from level counts."""
    out = {}
    for who, counts in (("judge", judge), ("human", human)):
        mean = counts @ levels / n
        ss = (counts * (levels - mean[:, None]) ** 2).sum(axis=1)
        out[f"{who}_mean"] = mean
        out[f"{who}_std"] = np.where(n >= 2, np.sqrt(ss / (n - 1)), np.nan)
    return out


def _table_errors(t: np.ndarray, levels: np.ndarray, n: np.ndarray) -> Draws:
    """Mean absolute and root mean squared error, exact and within-1 agreement of levels."""
    diff = levels[None, :] - levels[:, None]  # judge - human for cell (human i, judge j)
    gap = np.abs(round_half_up(levels)[None, :] - round_half_up(levels)[:, None])

    def cell_mean(weights: np.ndarray) -> np.ndarray:
        return np.einsum("rij,ij->r", t, weights) / n

    return {
        "mae": cell_mean(np.abs(diff)),
        "rmse": np.sqrt(cell_mean(diff**2)),
        "exact_agreement": cell_mean((gap == 0).astype(float)),
        "within1_agreement": cell_mean((gap <= 1).astype(float)),
    }


def _table_pearson(
    t: np.ndarray, human: np.ndarray, judge: np.ndarray, x: np.ndarray, y: np.ndarray
) -> np.ndarray:
    """Pearson correlation of per-level values ``x`` (human) and ``y`` (judge), weighted by t."""
    xc = x - (human * x).sum(axis=1, keepdims=True) / human.sum(axis=1, keepdims=True)
    yc = y - (judge * y).sum(axis=1, keepdims=True) / judge.sum(axis=1, keepdims=True)
    xc, yc = np.broadcast_to(xc, human.shape), np.broadcast_to(yc, judge.shape)
    sxy = np.einsum("rij,ri,rj->r", t, xc, yc)
    sxx, syy = (human * xc**2).sum(axis=1), (judge * yc**2).sum(axis=1)
    r = np.clip(sxy / np.sqrt(sxx * syy), -1.0, 1.0)
    return np.where(_varies(human) & _varies(judge), r, np.nan)


def _table_tau_b(t: np.ndarray, human: np.ndarray, judge: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Kendall's tau-b: (concordant - discordant) / sqrt((n0 - ties_h) (n0 - ties_j))."""
    above = t[:, ::-1, ::-1].cumsum(axis=1).cumsum(axis=2)[:, ::-1, ::-1]  # i' >= i, j' >= j
    concordant = (t[:, :-1, :-1] * above[:, 1:, 1:]).sum(axis=(1, 2))
    left = t[:, ::-1, :].cumsum(axis=1)[:, ::-1, :].cumsum(axis=2)  # i' >= i, j' <= j
    discordant = (t[:, :-1, 1:] * left[:, 1:, :-1]).sum(axis=(1, 2))
    pairs = n * (n - 1) / 2
    ties_h, ties_j = ((c * (c - 1) / 2).sum(axis=1) for c in (human, judge))
    tau = (concordant - discordant) / np.sqrt((pairs - ties_h) * (pairs - ties_j))
    return np.where(_varies(human) & _varies(judge), tau, np.nan)


def _table_qwk(
    t: np.ndarray,
    human: np.ndarray,
    judge: np.ndarray,
    n: np.ndarray,
    levels: np.ndarray,
    minimum: float,
    maximum: float,
    on_levels: bool,
) -> np.ndarray:
    """Quadratic weighted kappa; the (K-1)^2 weight normaliser cancels, so it is left out."""
    category = round_half_up(levels)
    in_range = np.all((category >= minimum) & (category <= maximum))
    if not (on_levels and in_range):
        return np.full(t.shape[0], np.nan)
    weights = (category[:, None] - category[None, :]) ** 2
    observed = np.einsum("rij,ij->r", t, weights)
    expected = np.einsum("ri,ij,rj->r", human, weights, judge) / n
    return np.where(expected > 0, 1 - observed / expected, np.nan)


def _table_alpha(t: np.ndarray, pooled: np.ndarray, x: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Krippendorff's alpha ``1 - D_o / D_e`` with squared differences of per-level values x."""
    x = np.broadcast_to(x, pooled.shape)
    total = 2 * n
    mean = (pooled * x).sum(axis=1) / total
    expected = 2 * (pooled * (x - mean[:, None]) ** 2).sum(axis=1) / (total - 1)
    observed = np.einsum("rij,rij->r", t, (x[:, :, None] - x[:, None, :]) ** 2) / n
    return np.where(_varies(pooled), 1 - observed / expected, np.nan)


def _midranks(counts: np.ndarray) -> np.ndarray:
    """Average rank of the values at each level, from the counts per level (ascending)."""
    return counts.cumsum(axis=-1) - (counts - 1) / 2


def _varies(counts: np.ndarray) -> np.ndarray:
    """Whether at least two levels are used (a rater that is not constant)."""
    return (counts > 0).sum(axis=-1) >= 2


def _draw_statistics(
    columns: list[np.ndarray],
    units: np.ndarray | None,
    scale: tuple[float, float, bool],
    resamples: int,
    seed: int,
) -> list[Draws]:
    """Statistics of ``columns[0]`` (human) against each later column, per bootstrap resample.

    ``scale`` is ``(minimum, maximum, integer)``: the declared range and whether it is an
    integer scale.
    """
    minimum, maximum, integer = scale
    rng = np.random.default_rng(seed)
    n_judges = len(columns) - 1
    if columns[0].size == 0:
        return [{name: np.full(resamples, np.nan) for name in STATISTICS} for _ in range(n_judges)]
    levels, inverse = np.unique(np.concatenate(columns), return_inverse=True)
    if levels.size > MAX_LEVELS:
        return _direct_draws(columns, units, scale, resamples, rng)
    codes = np.split(inverse, n_judges + 1)
    chunks = [
        [
            table_statistics(t, levels, minimum=minimum, maximum=maximum, integer=integer)
            for t in tables
        ]
        for tables in _resampled_tables(codes, levels.size, units, resamples, rng)
    ]
    return [
        {name: np.concatenate([chunk[k][name] for chunk in chunks]) for name in STATISTICS}
        for k in range(n_judges)
    ]


def _resampled_tables(
    codes: list[np.ndarray],
    n_levels: int,
    units: np.ndarray | None,
    resamples: int,
    rng: np.random.Generator,
) -> Iterator[list[np.ndarray]]:
    """Yield chunks of bootstrap contingency tables, one (size, L, L) array per judge."""
    human, judges = codes[0], codes[1:]
    n_cells = n_levels * n_levels
    cells = [human * n_levels + judge + k * n_cells for k, judge in enumerate(judges)]
    width = n_cells * len(judges)
    kinds, draw = (
        _row_kinds(cells, width, rng) if units is None else _unit_kinds(cells, units, width, rng)
    )
    step = max(1, _BUDGET // max(kinds.shape))
    for start in range(0, resamples, step):
        weights = draw(min(step, resamples - start))
        tables = np.asarray(kinds.T @ weights.T).T
        yield [
            part.reshape(-1, n_levels, n_levels) for part in np.split(tables, len(judges), axis=1)
        ]


def _row_kinds(
    cells: list[np.ndarray], width: int, rng: np.random.Generator
) -> tuple[sparse.csr_array, Callable[[int], np.ndarray]]:
    """One-hot table per distinct kind of row, and a multinomial draw of kind counts."""
    from scipy import sparse  # seconds to import: only on first use

    kinds, sizes = np.unique(np.stack(cells, axis=1), axis=0, return_counts=True)
    rows = np.repeat(np.arange(kinds.shape[0]), kinds.shape[1])
    ones = np.ones(rows.size)
    table = sparse.csr_array((ones, (rows, kinds.ravel())), shape=(kinds.shape[0], width))
    n = int(sizes.sum())
    return table, partial(rng.multinomial, n, sizes / n)


def _unit_kinds(
    cells: list[np.ndarray], units: np.ndarray, width: int, rng: np.random.Generator
) -> tuple[sparse.csr_array, Callable[[int], np.ndarray]]:
    """Table per cluster (duplicate cells summed), and a draw of cluster counts."""
    from scipy import sparse  # seconds to import: only on first use

    n_units = int(units.max()) + 1
    rows = np.tile(units, len(cells))
    ones = np.ones(rows.size)
    table = sparse.csr_array((ones, (rows, np.concatenate(cells))), shape=(n_units, width))
    return table, partial(_unit_counts, n_units, rng=rng)


def _unit_counts(n_units: int, size: int, *, rng: np.random.Generator) -> np.ndarray:
    """How often each unit is drawn in ``size`` resamples of ``n_units`` with replacement."""
    picks = rng.integers(0, n_units, size=(size, n_units))
    offsets = np.arange(size)[:, None] * n_units
    counts = np.bincount((picks + offsets).ravel(), minlength=size * n_units)
    return counts.reshape(size, n_units)


def _direct_draws(
    columns: list[np.ndarray],
    units: np.ndarray | None,
    scale: tuple[float, float, bool],
    resamples: int,
    rng: np.random.Generator,
) -> list[Draws]:
    """Slow path for continuous scores: build each resample's rows and score them."""
    minimum, maximum, integer = scale
    human, judges = columns[0], columns[1:]
    units = np.arange(human.size) if units is None else units
    n_units = int(units.max()) + 1
    draws = [{name: np.empty(resamples) for name in STATISTICS} for _ in judges]
    for r in range(resamples):
        rows = np.repeat(np.arange(human.size), _unit_counts(n_units, 1, rng=rng)[0][units])
        for draw, judge in zip(draws, judges, strict=True):
            stats = _pair_statistics(
                human[rows],
                judge[rows],
                minimum=minimum,
                maximum=maximum,
                integer=integer,
                warn=False,
            )
            for name in STATISTICS:
                draw[name][r] = stats[name]
    return draws


def _check(*columns: np.ndarray, resamples: int, confidence: float) -> None:
    """Raise on misaligned columns or bootstrap settings that cannot work."""
    _same_length(*columns)
    if resamples < 1:
        raise ValueError(f"resamples: {resamples} is not valid; use 1 or more")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence: {confidence} is not valid; use a value in (0, 1)")


def _units(clusters: np.ndarray | None, keep: np.ndarray) -> np.ndarray | None:
    """Cluster index (0..G-1) of each kept row, or None to resample rows."""
    if clusters is None:
        return None
    ids = np.asarray(clusters)
    if ids.shape != keep.shape:
        raise ValueError(f"clusters: expected one id per row ({keep.size}), got shape {ids.shape}")
    return np.unique(ids[keep], return_inverse=True)[1].ravel()


def _percentile_interval(values: np.ndarray, confidence: float) -> tuple[tuple[float, float], int]:
    """Percentile interval of the defined values, and how many there were."""
    finite = values[np.isfinite(values)]
    if finite.size == 0 or finite.size < values.size / 2:
        return (math.nan, math.nan), int(finite.size)
    tail = (1 - confidence) / 2
    low, high = np.quantile(finite, [tail, 1 - tail])
    return (float(low), float(high)), int(finite.size)


def _compare(name: str, a: float, b: float, differences: np.ndarray, confidence: float) -> dict:
    """Point estimates, interval, p-value and verdict for one statistic's difference b - a."""
    (low, high), _ = _percentile_interval(differences, confidence)
    finite = differences[np.isfinite(differences)]
    p = math.nan
    if not math.isnan(low):  # counts the observed data as one resample: never below 2/(R+1)
        beyond = min(int(np.sum(finite <= 0)), int(np.sum(finite >= 0)))
        p = min(1.0, 2 * (1 + beyond) / (1 + finite.size))
    return {
        "statistic": name,
        "a": a,
        "b": b,
        "difference": b - a,
        "ci_low": low,
        "ci_high": high,
        "p_value": p,
        "verdict": _verdict(name, low, high),
    }


def _verdict(name: str, low: float, high: float) -> str:
    """Say whether b is better than a, given the interval of b - a and the better direction."""
    if math.isnan(low):
        return "undefined"
    if low > 0 or high < 0:
        b_higher = low > 0
        return "better" if b_higher != (name in LOWER_IS_BETTER) else "worse"
    return "no detectable difference"
