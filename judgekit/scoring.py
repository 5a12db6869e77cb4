"""Turn a results table into agreement figures, aggregates, failure counts and metric names."""

from __future__ import annotations

from typing import Any

import pandas as pd

from judgekit.config import Config, ScoreSpec
from judgekit.stats import aggregate, agreement

__all__ = ["agreement_report", "failure_counts", "metrics_from_report"]


def _per_score(frame: pd.DataFrame, spec: ScoreSpec) -> pd.DataFrame:
    return frame[frame["score"] == spec.name].sort_values("example_index")


def agreement_report(
    frame: pd.DataFrame, cfg: Config
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, Any]]]:
    """Agreement with humans per score (scores with human labels only) and judge aggregates.

    A score whose judge returned logprobs also gets ``<score>_expected``: the same statistics on
    the logprob-weighted expected score.
    """
    report: dict[str, dict[str, float]] = {}
    aggregates: dict[str, dict[str, Any]] = {}
    for spec in cfg.score.scores:
        part = _per_score(frame, spec)
        judge = part["judge"].to_numpy(dtype=float)
        human = part["human"].to_numpy(dtype=float)
        bounds = {"minimum": float(spec.minimum or 0), "maximum": float(spec.maximum or 0)}
        aggregates[spec.name] = aggregate(judge, **bounds)
        if not pd.isna(human).all():
            report[spec.name] = agreement(human, judge, **bounds)
            expected = part["judge_expected"].to_numpy(dtype=float)
            if not pd.isna(expected).all():
                report[f"{spec.name}_expected"] = agreement(human, expected, **bounds)
    return report, aggregates


def failure_counts(frame: pd.DataFrame) -> dict[str, int]:
    """Rows (example × score) per failure reason."""
    reasons = frame["failure_reason"].dropna()
    return {str(k): int(v) for k, v in reasons.value_counts().sort_index().items()}


def _numeric(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def metrics_from_report(
    report: dict[str, dict[str, float]],
    aggregates: dict[str, dict[str, Any]],
    failures: dict[str, int],
) -> dict[str, float]:
    """Flat MLflow metrics: ``<score>/<statistic>``, ``<score>/judge_<aggregate>``, ``failures/<reason>``."""
    metrics: dict[str, float] = {}
    for score, stats in report.items():
        for name, value in stats.items():
            if _numeric(value):
                metrics[f"{score}/{name}"] = float(value)
    for score, stats in aggregates.items():
        if score in report:
            continue
        for name, value in stats.items():
            if _numeric(value):
                metrics[f"{score}/{name}"] = float(value)
    for reason, count in failures.items():
        metrics[f"failures/{reason}"] = float(count)
    metrics["failures/total"] = float(sum(failures.values()))
    return metrics
