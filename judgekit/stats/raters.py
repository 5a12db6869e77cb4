"""Can the judge replace a rater? The wiring of :func:`judgekit.stats.alttest.alt_test` and of the
pointwise human ceiling (:func:`judgekit.stats.ceiling.human_ceiling_pointwise`) for one score.

The alt-test compares the judge with each annotator in turn against the others: a preference
score, or a pointwise score with named labels, aligns by ``accuracy``; a numeric pointwise score
by ``neg_rmse``. Metric names: ``<score>/alt_test/winning_rate``,
``<score>/alt_test/advantage_probability``, ``<score>/alt_test/passed`` (1 or 0; NaN when no
annotator could be tested), ``<score>/alt_test/epsilon``, ``<score>/alt_test/n_annotators``
(counted), ``<score>/alt_test/annotator/<name>/{p_value,p_adjusted,rho_f,rho_h,n_items}``. A
pointwise score also gets its human ceiling, named like the judge's figures with ``human_``
(the pairwise ceiling's ``human_kappa``/``human_loo_accuracy`` are logged by the agreement
report): ``<score>/human_alpha`` (ordinal; ``human_alpha_interval`` beside it),
``<score>/human_qwk`` (mean over pairs of annotators), ``<score>/human_loo_pearson``,
``<score>/human_loo_spearman``, ``<score>/human_loo_qwk`` (each annotator against the others'
mean, averaged) and ``<score>/n_annotators``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from judgekit.stats.alttest import AltTestResult, Metric, alt_test
from judgekit.stats.estimates import metric_part

__all__ = ["CEILING_METRICS", "RaterFigures", "rater_figures"]

CEILING_METRICS = {
    "alpha_ordinal": "human_alpha",
    "alpha_interval": "human_alpha_interval",
    "mean_pairwise_qwk": "human_qwk",
    "mean_loo_pearson": "human_loo_pearson",
    "mean_loo_spearman": "human_loo_spearman",
    "mean_loo_qwk": "human_loo_qwk",
    "n_annotators": "n_annotators",
}
""":func:`human_ceiling_pointwise`'s keys → the metric names of the pointwise human ceiling."""


@dataclass(frozen=True)
class RaterFigures:
    """One score's alt-test and, for a pointwise score, its human ceiling."""

    score: str
    alt_test: AltTestResult
    ceiling: dict[str, Any] | None = None

    @property
    def passed(self) -> float:
        """1.0 or 0.0; NaN when no annotator could be tested (the verdict is then undefined)."""
        return (
            float(self.alt_test.passed) if math.isfinite(self.alt_test.winning_rate) else math.nan
        )

    def to_metrics(self) -> dict[str, float]:
        """The flat MLflow metrics named in the module docstring."""
        a, prefix = self.alt_test, f"{self.score}/alt_test"
        counted = [t for t in a.annotators if not t.flagged and math.isfinite(t.p_value)]
        metrics = {
            f"{prefix}/winning_rate": a.winning_rate,
            f"{prefix}/advantage_probability": a.advantage_probability,
            f"{prefix}/passed": self.passed,
            f"{prefix}/epsilon": a.epsilon,
            f"{prefix}/n_annotators": float(len(counted)),
        }
        for t in a.annotators:
            each = f"{prefix}/annotator/{metric_part(t.annotator)}"
            for key in ("p_value", "p_adjusted", "rho_f", "rho_h", "n_items"):
                metrics[f"{each}/{key}"] = float(getattr(t, key))
        for key, name in CEILING_METRICS.items() if self.ceiling is not None else ():
            metrics[f"{self.score}/{name}"] = float(self.ceiling[key])  # type: ignore[index]
        return metrics

    def to_flat(self) -> dict[str, Any]:
        """A JSON-able view (summary.json, alt_test.json)."""
        flat: dict[str, Any] = {"alt_test": asdict(self.alt_test) | {"passed": self.passed}}
        if self.ceiling is not None:
            flat["human_ceiling"] = {
                CEILING_METRICS[k]: self.ceiling[k] for k in CEILING_METRICS
            } | {"per_annotator": self.ceiling["per_annotator"]}
        return flat

    def to_rows(self) -> list[dict[str, Any]]:
        """One row per annotator of the alt-test."""
        return [{"score": self.score, **asdict(t)} for t in self.alt_test.annotators]


def rater_figures(
    score: str,
    kind: str,
    annotators: np.ndarray,
    judge: np.ndarray,
    *,
    names: list[str],
    categorical: bool,
    minimum: float,
    maximum: float,
    epsilon: float = 0.2,
) -> RaterFigures:
    """The alt-test of ``judge`` against ``annotators`` (items × annotators, NaN where one did not
    label) and, for a pointwise score, the human ceiling on the declared scale."""
    metric: Metric = "accuracy" if kind == "preference" or categorical else "neg_rmse"
    result = alt_test(annotators, judge, names=names, metric=metric, epsilon=epsilon)
    ceiling = None
    if kind != "preference":
        from judgekit.stats.ceiling import human_ceiling_pointwise

        ceiling = human_ceiling_pointwise(annotators, minimum=minimum, maximum=maximum)
        for row in ceiling["per_annotator"]:  # type: ignore[attr-defined]
            row["annotator"] = names[int(row["annotator"])]
    return RaterFigures(score, result, ceiling)
