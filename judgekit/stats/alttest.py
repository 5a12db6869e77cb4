"""May a judge stand in for a human annotator? The alternative annotator test, and the pointwise
human ceiling.

Building blocks for issue 18; nothing here is wired into a run yet.

:func:`human_ceiling_pointwise` (from :mod:`judgekit.stats.ceiling`) gives the figures a judge is
read against: how well the human raters of a pointwise score agree with each other.

The alt-test (Calderon, Reichart & Dror 2025, arXiv 2501.10970), implemented from the paper's
definitions; on the authors' nine datasets it gives the winning rates, advantage probabilities and
verdicts their reference implementation (github nitaytech/AltTest) prints for all six LLMs. Leave
one annotator ``j`` out at a time; over the items ``I_j`` that ``j`` labelled (and the LLM and at
least one other annotator labelled), score each item ``i`` by how well the LLM ``f`` and annotator
``h_j`` align with the *other* annotators' labels ``H_{-j}(i)``:

- ``accuracy`` (categorical): the share of the others whose label equals the candidate's;
- ``neg_rmse`` (numeric): ``-sqrt(mean_k (candidate - h_k)**2)``;
- ``neg_abs`` (numeric): ``-mean_k |candidate - h_k|``.

Then ``W^f_i = 1[S(f, i) >= S(h_j, i)]`` and ``W^h_i = 1[S(h_j, i) >= S(f, i)]`` (a tie counts for
both), ``rho^f_j = mean_i W^f_i`` and ``rho^h_j = mean_i W^h_i``. Per annotator a one-sided paired
t-test of ``H0: rho^f_j <= rho^h_j - eps`` against ``H1: rho^f_j > rho^h_j - eps`` on the
differences ``d_i = W^f_i - W^h_i`` (``scipy.stats.ttest_1samp(d, popmean=-eps,
alternative="greater")``, the same t as testing ``d_i + eps`` against 0, and the same p-value as
the reference implementation's ``ttest_1samp(W^h - W^f, eps, alternative="less")``). Annotators
with fewer than ``min_items`` items are reported but not counted. The p-values of the counted
annotators are corrected by Benjamini-Yekutieli (``false_discovery_control(method="by")``);
``H0_j`` is rejected when the adjusted p-value is at most ``q``. The *winning rate* ``omega`` is
the share of counted annotators whose null is rejected, and the LLM passes when ``omega >= 0.5``;
the *average advantage probability* is ``mean_j rho^f_j`` over the counted annotators.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from judgekit.stats.ceiling import human_ceiling_pointwise

__all__ = ["AltTestResult", "AnnotatorTest", "alt_test", "human_ceiling_pointwise"]

Metric = Literal["accuracy", "neg_rmse", "neg_abs"]


@dataclass(frozen=True)
class AnnotatorTest:
    """One annotator's leave-one-out comparison with the LLM."""

    annotator: str
    n_items: int
    rho_f: float
    rho_h: float
    t_statistic: float
    p_value: float
    p_adjusted: float
    rejected: bool
    """``H0: rho_f <= rho_h - epsilon`` rejected: the LLM is at least as good, within epsilon."""
    flagged: bool
    """Fewer items than ``min_items``: reported, but left out of the correction, the winning
    rate and the advantage probability (as the authors' reference implementation skips them)."""


@dataclass(frozen=True)
class AltTestResult:
    """The alt-test's verdict, with the per-annotator rows it is built from."""

    annotators: list[AnnotatorTest]
    winning_rate: float
    advantage_probability: float
    passed: bool
    epsilon: float
    q: float
    metric: str
    n_dropped: int
    """Rows left out because the LLM has no label there."""
    notes: list[str] = field(default_factory=list)
    reason: str | None = None
    """Why ``winning_rate`` is NaN (no annotator has ``min_items`` items); None otherwise."""


def alt_test(
    annotators: np.ndarray,
    llm: np.ndarray,
    *,
    names: list[str] | None = None,
    metric: Metric = "accuracy",
    epsilon: float = 0.2,
    q: float = 0.05,
    min_items: int = 30,
) -> AltTestResult:
    """Run the alternative annotator test (see the module docstring for the definitions).

    Args:
        annotators: Labels of shape (items, annotators), at least 2 annotators; NaN where an
            annotator did not label an item.
        llm: The LLM's label per item; NaN rows are dropped and counted.
        names: The annotators' names (default ``"0"``, ``"1"``, ...).
        metric: How a candidate aligns with the others: ``accuracy`` for categorical labels,
            ``neg_rmse`` or ``neg_abs`` for numeric ones.
        epsilon: The cost-benefit margin (the paper's default 0.2); a larger one passes more easily.
        q: The false discovery rate of the Benjamini-Yekutieli correction.
        min_items: Annotators with fewer items (at least 2 are needed for a t-test) are
            reported and flagged but not counted (the authors' reference implementation skips
            annotators under 30 items; the paper suggests 50-100 items).

    Returns:
        The per-annotator rows, the winning rate, the average advantage probability, the verdict.
    """
    h, f = _inputs(annotators, llm)
    labels = names if names is not None else [str(k) for k in range(h.shape[1])]
    if len(labels) != h.shape[1]:
        raise ValueError(f"names: {len(labels)} names for {h.shape[1]} annotators")
    judged = np.isfinite(f)
    rows = [_leave_one_out(h[judged], f[judged], j, metric, epsilon) for j in range(h.shape[1])]
    notes = _notes(labels, rows, min_items, h.shape[1])
    tested = [k for k, r in enumerate(rows) if math.isfinite(r[4]) and r[0] >= min_items]
    adjusted = _by_adjust([rows[k][4] for k in tested])
    tests = []
    for k, (n, rho_f, rho_h, t, p) in enumerate(rows):
        p_adj = adjusted[tested.index(k)] if k in tested else math.nan
        tests.append(
            AnnotatorTest(labels[k], n, rho_f, rho_h, t, p, p_adj, p_adj <= q, n < min_items)
        )
    return _verdict(tests, tested, epsilon, q, metric, int((~judged).sum()), notes)


def _inputs(annotators: np.ndarray, llm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h, f = np.asarray(annotators, dtype=float), np.asarray(llm, dtype=float)
    if h.ndim != 2 or h.shape[1] < 2:
        raise ValueError(f"annotators: expected shape (items, annotators >= 2), got {h.shape}")
    if f.shape != (h.shape[0],):
        raise ValueError(f"llm: expected {h.shape[0]} labels, got shape {f.shape}")
    return h, f


def _alignment(candidate: np.ndarray, others: np.ndarray, metric: Metric) -> np.ndarray:
    """Per item, how well ``candidate`` aligns with the finite entries of each row of ``others``."""
    present = np.isfinite(others)
    count = present.sum(axis=1)
    with np.errstate(invalid="ignore"):
        if metric == "accuracy":
            return np.sum((others == candidate[:, None]) & present, axis=1) / count
        gap = np.where(present, others - candidate[:, None], 0.0)
        if metric == "neg_rmse":
            return -np.sqrt(np.sum(gap**2, axis=1) / count)
        if metric == "neg_abs":
            return -np.sum(np.abs(gap), axis=1) / count
    raise ValueError(f"metric: {metric!r} is not valid; use 'accuracy', 'neg_rmse' or 'neg_abs'")


def _leave_one_out(
    h: np.ndarray, f: np.ndarray, j: int, metric: Metric, epsilon: float
) -> tuple[int, float, float, float, float]:
    """``(n_items, rho_f, rho_h, t, p)`` for annotator ``j``; NaN where undefined."""
    others = np.delete(h, j, axis=1)
    items = np.isfinite(h[:, j]) & (np.isfinite(others).sum(axis=1) >= 1)
    n = int(items.sum())
    if n == 0:
        return 0, math.nan, math.nan, math.nan, math.nan
    s_f = _alignment(f[items], others[items], metric)
    s_h = _alignment(h[items, j], others[items], metric)
    w_f, w_h = (s_f >= s_h).astype(float), (s_h >= s_f).astype(float)
    if n < 2:
        return n, float(w_f.mean()), float(w_h.mean()), math.nan, math.nan
    from scipy import stats as sps

    d = w_f - w_h
    if np.ptp(d) == 0 and d[0] == -epsilon:  # no variance, exactly on the null's edge: scipy
        return n, float(w_f.mean()), float(w_h.mean()), 0.0, 1.0  # gives 0/0; H0 holds
    with warnings.catch_warnings():  # a constant d gives t = +-inf, p = 0 or 1: scipy's answer
        warnings.simplefilter("ignore", RuntimeWarning)
        test = sps.ttest_1samp(d, popmean=-epsilon, alternative="greater")
    return n, float(w_f.mean()), float(w_h.mean()), float(test.statistic), float(test.pvalue)


def _by_adjust(p: list[float]) -> list[float]:
    if not p:
        return []
    from scipy.stats import false_discovery_control

    return [float(x) for x in false_discovery_control(np.asarray(p), method="by")]


def _notes(
    labels: list[str], rows: list[tuple[int, float, float, float, float]], min_items: int, m: int
) -> list[str]:
    notes = [] if m >= 3 else [f"only {m} annotators: the paper asks for at least 3"]
    for name, (n, *_, p) in zip(labels, rows, strict=True):
        if math.isnan(p) or n < min_items:
            notes.append(f"annotator {name}: {n} items (< {max(min_items, 2)}), not counted")
    return notes


def _verdict(
    tests: list[AnnotatorTest],
    tested: list[int],
    epsilon: float,
    q: float,
    metric: str,
    n_dropped: int,
    notes: list[str],
) -> AltTestResult:
    if not tested:
        why = "no annotator has enough items also labelled by the LLM and another annotator"
        nan = math.nan
        return AltTestResult(tests, nan, nan, False, epsilon, q, metric, n_dropped, notes, why)
    omega = float(np.mean([tests[k].rejected for k in tested]))
    rho = float(np.mean([tests[k].rho_f for k in tested]))
    return AltTestResult(tests, omega, rho, omega >= 0.5, epsilon, q, metric, n_dropped, notes)
