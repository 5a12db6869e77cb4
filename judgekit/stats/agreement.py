"""Turn a results table into agreement figures, aggregates, failure counts and metric names."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from judgekit.config.schema import Config, DatasetConfig, ScoreSpec
from judgekit.records import Example
from judgekit.stats.bootstrap import bootstrap_ci
from judgekit.stats.levels import LevelCorrelation, group_correlation, system_correlation
from judgekit.stats.pointwise import STATISTICS, aggregate, agreement
from judgekit.stats.report import AgreementReport, BootstrapInfo, Estimate, ScoreAgreement

__all__ = [
    "HEADLINE",
    "agreement_report",
    "annotator_labels",
    "failure_counts",
    "headline_estimates",
    "metrics_from_report",
]

HEADLINE = {"pointwise": ("spearman", "qwk", "mae"), "preference": ("accuracy",)}
"""The statistics :func:`headline_estimates` gives, by score kind (``qwk`` on integer scales)."""


def annotator_labels(examples: Sequence[Example], names: Iterable[str]) -> dict[str, np.ndarray]:
    """Per score in ``names``, an (examples × annotators) array of each annotator's label, when
    every example has them (for the human ceiling)."""
    labels = {}
    for name in names:
        rows = [e.annotators.get(name) for e in examples]
        if rows and all(r is not None for r in rows):
            labels[name] = np.array(rows, dtype=float)
    return labels


def _per_score(frame: pd.DataFrame, spec: ScoreSpec) -> pd.DataFrame:
    return frame[frame["score"] == spec.name].sort_values("example_index")


def agreement_report(
    frame: pd.DataFrame, cfg: Config, annotators: dict[str, np.ndarray] | None = None
) -> tuple[AgreementReport, dict[str, dict[str, Any]]]:
    """Agreement with humans per score (scores with human labels only) and judge aggregates.

    A score whose judge returned logprobs also gets ``.expected``: the same statistics on the
    logprob-weighted expected score. A pointwise score also gets the group-level correlations
    when ``dataset.fields.group`` is set and the system-level ones when ``dataset.fields.system``
    is (:mod:`judgekit.stats.levels`). A preference score gets the pairwise statistics (and the
    human–human ``.ceiling`` when ``annotators`` holds each annotator's labels); a pointwise
    score whose rows come in pairs sharing a prompt also gets ``.preference``.
    """
    report: dict[str, ScoreAgreement] = {}
    aggregates: dict[str, dict[str, Any]] = {}
    for spec in cfg.score.scores:
        part = _per_score(frame, spec)
        judge = part["judge"].to_numpy(dtype=float)
        human = part["human"].to_numpy(dtype=float)
        bounds = _scale(spec)
        aggregates[spec.name] = aggregate(judge, **bounds)
        if pd.isna(human).all():
            continue
        clusters = _clusters(part["group"])
        if spec.kind == "preference":
            ceiling = (annotators or {}).get(spec.name)
            report[spec.name] = _pairwise(part, cfg, clusters, ceiling)
            continue
        score = _with_levels(_with_intervals(human, judge, bounds, clusters, cfg), part, cfg)
        expected = part["judge_expected"].to_numpy(dtype=float)
        if not pd.isna(expected).all():
            on_expected = _with_intervals(human, expected, bounds, clusters, cfg)
            score = replace(score, expected=_with_levels(on_expected, part, cfg, "judge_expected"))
        report[spec.name] = replace(score, preference=_pointwise_preference(part, cfg))
    return AgreementReport(report), aggregates


def headline_estimates(part: pd.DataFrame, spec: ScoreSpec, cfg: Config) -> dict[str, Estimate]:
    """The :data:`HEADLINE` statistics of one score's rows (``judge`` against ``human``), each
    with its bootstrap interval: what the agreement-vs-draws curve of ``runner.samples`` shows."""
    clusters = _clusters(part["group"])
    if spec.kind == "preference":
        rows = part.assign(judge_first=math.nan, judge_second=math.nan)
        estimates = _pairwise(rows, cfg, clusters, None).estimates
        names: tuple[str, ...] = HEADLINE["preference"]
    else:
        human, judge = part["human"].to_numpy(dtype=float), part["judge"].to_numpy(dtype=float)
        estimates = _with_intervals(human, judge, _scale(spec), clusters, cfg).estimates
        names = tuple(n for n in HEADLINE["pointwise"] if n != "qwk" or spec.is_integer_scale)
    return {name: estimates[name] for name in names if name in estimates}


def _scale(spec: ScoreSpec) -> dict[str, Any]:
    """The declared scale as the stats functions take it: bounds and whether it is integer."""
    minimum, maximum = float(spec.minimum or 0), float(spec.maximum or 0)
    return {"minimum": minimum, "maximum": maximum, "integer": spec.is_integer_scale}


def _bootstrap_args(cfg: Config) -> dict[str, Any]:
    return {
        "resamples": cfg.stats.bootstrap_resamples,
        "confidence": cfg.stats.confidence,
        "seed": cfg.runner.seed,
    }


def _bootstrap_info(cfg: Config, clusters: np.ndarray | None) -> BootstrapInfo | None:
    """How the pairwise functions drew their intervals (they take the same arguments)."""
    if cfg.stats.bootstrap_resamples == 0:
        return None
    return BootstrapInfo("rows" if clusters is None else "clusters", cfg.stats.bootstrap_resamples)


def _pairwise(
    part: pd.DataFrame, cfg: Config, clusters: np.ndarray | None, ceiling: np.ndarray | None
) -> ScoreAgreement:
    """Accuracy, κ and position statistics of a preference score; the human ceiling beside."""
    from judgekit.stats.pairwise import human_ceiling, pairwise_agreement

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
    return ScoreAgreement.from_flat(stats, _bootstrap_info(cfg, clusters))


def _pointwise_preference(part: pd.DataFrame, cfg: Config) -> ScoreAgreement | None:
    """Pairs of rows sharing a prompt give a preference (higher wins, equal is a tie)."""
    from judgekit.stats.pairwise import pairwise_agreement, preference_from_pointwise

    codes, _ = pd.factorize(part["group"])
    pairs, human = preference_from_pointwise(part["human"].to_numpy(dtype=float), codes)
    _, judge = preference_from_pointwise(part["judge"].to_numpy(dtype=float), codes)
    if len(human) < 2:
        return None
    repeated = len(np.unique(pairs)) < len(pairs)
    clusters = pairs if repeated else None
    stats = pairwise_agreement(human, judge, clusters=clusters, **_bootstrap_args(cfg))
    return ScoreAgreement.from_flat(stats, _bootstrap_info(cfg, clusters))


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
    bounds: dict[str, Any],
    clusters: np.ndarray | None,
    cfg: Config,
) -> ScoreAgreement:
    """The agreement statistics, each with its bootstrap interval (none below 2 scored rows)."""
    stats: dict[str, Any] = agreement(human, judge, **bounds)
    notes = {} if bounds["integer"] else _off_scale_notes(bounds)
    result = None
    if cfg.stats.bootstrap_resamples > 0 and stats["n_scored"] >= 2:
        result = bootstrap_ci(
            human,
            judge,
            **bounds,
            resamples=cfg.stats.bootstrap_resamples,
            confidence=cfg.stats.confidence,
            seed=cfg.runner.seed,
            clusters=clusters,
        )
    intervals = result.intervals if result is not None else {}
    return ScoreAgreement(
        kind="pointwise",
        n_total=stats["n_total"],
        n_failed=stats["n_failed"],
        n_scored=stats["n_scored"],
        coverage=stats["coverage"],
        estimates={
            name: Estimate(stats[name], *intervals.get(name, (math.nan, math.nan)))
            for name in STATISTICS
            if name in stats
        },
        diagnostics={name: Estimate(v) for name, v in _diagnostics(stats).items()},
        bootstrap=None if result is None else BootstrapInfo(result.scheme, result.resamples),
        notes=notes,
    )


def _off_scale_notes(bounds: dict[str, Any]) -> dict[str, str]:
    """Why within-1 is absent and QWK NaN on a scale that is not an integer scale."""
    scale = (
        f"the scale {bounds['minimum']:g}..{bounds['maximum']:g} is not an integer scale "
        "(its bounds are not whole numbers, or the score sets integer: false)"
    )
    return {
        "within1_agreement": f"absent: {scale}, so it has no levels to be within one of",
        "qwk": f"NaN: {scale}; quadratic weighted kappa needs whole-number levels",
    }


def _with_levels(
    score: ScoreAgreement, part: pd.DataFrame, cfg: Config, column: str = "judge"
) -> ScoreAgreement:
    """Add the group-level (``fields.group`` set) and system-level (``fields.system`` set)
    correlations of ``column`` with the human score, each with its bootstrap interval."""
    if not isinstance(cfg.dataset, DatasetConfig):  # a Config built without a dataset
        return score
    fields = cfg.dataset.fields
    human, judge = part["human"].to_numpy(dtype=float), part[column].to_numpy(dtype=float)
    levels: list[LevelCorrelation] = []
    args = _bootstrap_args(cfg)
    if score.bootstrap is None:  # no intervals for the rows (0 resamples, < 2 scored rows)
        args["resamples"] = 0
    if fields.group:
        levels.append(group_correlation(human, judge, part["group"].to_numpy(), **args))
    if fields.system:
        levels.append(system_correlation(human, judge, part["system"].to_numpy(), **args))
    if not levels:
        return score
    estimates, notes = dict(score.estimates), dict(score.notes)
    counts: dict[str, int | None] = {"group": None, "system": None}
    for level in levels:
        for name, value in level.values.items():
            low, high = level.intervals.get(name, (math.nan, math.nan))
            estimates[f"{level.level}_{name}"] = Estimate(value, low, high)
            if level.note:
                notes[f"{level.level}_{name}"] = level.note
        counts[level.level] = level.n_units
    return replace(
        score,
        estimates=estimates,
        notes=notes,
        n_groups=counts["group"],
        n_systems=counts["system"],
    )


def failure_counts(frame: pd.DataFrame) -> dict[str, int]:
    """Rows (example × score) per failure reason."""
    reasons = frame["failure_reason"].dropna()
    return {str(k): int(v) for k, v in reasons.value_counts().sort_index().items()}


def metrics_from_report(
    report: AgreementReport,
    aggregates: dict[str, dict[str, Any]],
    failures: dict[str, int],
) -> dict[str, float]:
    """Flat MLflow metrics: ``<score>/<statistic>``, ``<score>/<aggregate>``, ``failures/<reason>``.

    Aggregates are logged only for scores without agreement figures.
    """
    metrics = report.to_metrics()
    for score, stats in aggregates.items():
        if score in report:
            continue
        for name, value in stats.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                metrics[f"{score}/{name}"] = float(value)
    for reason, count in failures.items():
        metrics[f"failures/{reason}"] = float(count)
    metrics["failures/total"] = float(sum(failures.values()))
    return metrics
