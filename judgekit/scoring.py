"""Turn a results table into agreement figures, aggregates, failure counts and metric names."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from judgekit.config import Config, ScoreSpec
from judgekit.stats import aggregate, agreement
from judgekit.stats_bootstrap import bootstrap_ci

__all__ = ["agreement_report", "failure_counts", "metrics_from_report"]


def _per_score(frame: pd.DataFrame, spec: ScoreSpec) -> pd.DataFrame:
    return frame[frame["score"] == spec.name].sort_values("example_index")


def agreement_report(
    frame: pd.DataFrame, cfg: Config, annotators: dict[str, np.ndarray] | None = None
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, Any]]]:
    """Agreement with humans per score (scores with human labels only) and judge aggregates.

    A score whose judge returned logprobs also gets ``<score>_expected``: the same statistics on
    the logprob-weighted expected score. A preference score gets the pairwise statistics (and
    the human–human ceiling when ``annotators`` holds each annotator's labels); a pointwise
    score whose rows come in pairs sharing a prompt also gets ``<score>_preference``.
    """
    report: dict[str, dict[str, float]] = {}
    aggregates: dict[str, dict[str, Any]] = {}
    for spec in cfg.score.scores:
        part = _per_score(frame, spec)
        judge = part["judge"].to_numpy(dtype=float)
        human = part["human"].to_numpy(dtype=float)
        bounds = {"minimum": float(spec.minimum or 0), "maximum": float(spec.maximum or 0)}
        aggregates[spec.name] = aggregate(judge, **bounds)
        if pd.isna(human).all():
            continue
        clusters = _clusters(part["group"])
        if spec.kind == "preference":
            ceiling = (annotators or {}).get(spec.name)
            report[spec.name] = _pairwise(part, cfg, clusters, ceiling)
            continue
        report[spec.name] = _with_intervals(human, judge, bounds, clusters, cfg)
        expected = part["judge_expected"].to_numpy(dtype=float)
        if not pd.isna(expected).all():
            report[f"{spec.name}_expected"] = _with_intervals(
                human, expected, bounds, clusters, cfg
            )
        pairs = _pointwise_preference(part, cfg)
        if pairs is not None:
            report[f"{spec.name}_preference"] = pairs
    return report, aggregates


def _bootstrap_args(cfg: Config) -> dict[str, Any]:
    return {
        "resamples": cfg.stats.bootstrap_resamples,
        "confidence": cfg.stats.confidence,
        "seed": cfg.runner.seed,
    }


def _pairwise(
    part: pd.DataFrame, cfg: Config, clusters: np.ndarray | None, ceiling: np.ndarray | None
) -> dict[str, Any]:
    """Accuracy, κ and position statistics of a preference score; the human ceiling beside."""
    from judgekit.stats_pairwise import human_ceiling, pairwise_agreement

    swapped = part["judge_second"].notna().any() or part["judge_first"].notna().any()
    stats: dict[str, Any] = pairwise_agreement(
        part["human"].to_numpy(dtype=float),
        part["judge"].to_numpy(dtype=float),
        first=part["judge_first"].to_numpy(dtype=float) if swapped else None,
        second=part["judge_second"].to_numpy(dtype=float) if swapped else None,
        clusters=clusters,
        **_bootstrap_args(cfg),
    )
    if ceiling is not None and ceiling.size:
        stats.update(human_ceiling(ceiling, clusters=clusters, **_bootstrap_args(cfg)))
    return stats


def _pointwise_preference(part: pd.DataFrame, cfg: Config) -> dict[str, Any] | None:
    """Pairs of rows sharing a prompt give a preference (higher wins, equal is a tie)."""
    from judgekit.stats_pairwise import pairwise_agreement, preference_from_pointwise

    codes, _ = pd.factorize(part["group"])
    pairs, human = preference_from_pointwise(part["human"].to_numpy(dtype=float), codes)
    _, judge = preference_from_pointwise(part["judge"].to_numpy(dtype=float), codes)
    if len(human) < 2:
        return None
    repeated = len(np.unique(pairs)) < len(pairs)
    clusters = pairs if repeated else None
    return pairwise_agreement(human, judge, clusters=clusters, **_bootstrap_args(cfg))


def _diagnostics(stats: dict[str, Any]) -> dict[str, float]:
    """Leniency (judge mean − human mean) and compression (judge variance ÷ human variance)."""
    human_var = stats["human_std"] ** 2
    ratio = stats["judge_std"] ** 2 / human_var if human_var > 0 else float("nan")
    return {"mean_shift": stats["judge_mean"] - stats["human_mean"], "variance_ratio": ratio}


def _clusters(groups: pd.Series) -> np.ndarray | None:
    """Group ids for a clustered bootstrap when rows share a prompt; None when none do."""
    codes, uniques = pd.factorize(groups)
    return codes if len(uniques) < len(codes) else None


def _with_intervals(
    human: np.ndarray,
    judge: np.ndarray,
    bounds: dict[str, float],
    clusters: np.ndarray | None,
    cfg: Config,
) -> dict[str, Any]:
    """The agreement statistics, each with ``_ci_low``/``_ci_high`` from the bootstrap."""
    stats: dict[str, Any] = agreement(human, judge, **bounds)
    stats.update(_diagnostics(stats))
    if cfg.stats.bootstrap_resamples == 0 or stats["n_scored"] < 2:
        return stats
    result = bootstrap_ci(
        human,
        judge,
        **bounds,
        resamples=cfg.stats.bootstrap_resamples,
        confidence=cfg.stats.confidence,
        seed=cfg.runner.seed,
        clusters=clusters,
    )
    for name, (low, high) in result.intervals.items():
        stats[f"{name}_ci_low"], stats[f"{name}_ci_high"] = low, high
    stats["bootstrap_scheme"] = f"{result.scheme} ({result.resamples} resamples)"
    return stats


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
