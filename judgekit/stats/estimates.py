"""Human-scale estimates of one score from a results table: the wiring of :mod:`judgekit.stats.ppi`.

The rows with a human label are the labelled slice, the rest the unlabelled ones. Per score:
the PPI++ estimate of the mean human score (a preference score: of the human win rate of
response B, ties counting half, :func:`judgekit.stats.ppi.b_win_indicator`), the naive judge-only
mean over every judged row, the human-only mean of the labelled slice, the labels a target
interval width needs (:func:`judgekit.stats.ppi.labels_needed`, when a target width is given) and, when the rows name their system, the same per system, ranked
by the PPI estimate. With ``hidden`` rows (``judgekit estimate --labels N``), their labels are
withheld from every estimate and only make the *truth*: the human mean over all labelled rows.

Metric names (``<what>`` is ``mean`` for a pointwise score, ``win_rate`` for a preference one):
``<score>/ppi_<what>`` (+ ``_ci_low``/``_ci_high``), ``<score>/ppi_lambda``,
``<score>/judge_<what>_naive`` (+ CI), ``<score>/human_<what>_labelled`` (+ CI),
``<score>/n_labelled``, ``<score>/n_unlabelled``; with a target width ``<score>/labels_needed``
and ``<score>/labels_needed_width``; with hidden labels ``<score>/human_<what>_all`` (+ CI); per
system ``<score>/system/<name>/ppi_<what>`` (+ CI) and ``<score>/system/<name>/ppi_rank``.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from judgekit.stats.ppi import (
    MeanEstimate,
    b_win_indicator,
    human_mean,
    labels_needed,
    naive_judge_mean,
    ppi_mean,
)

__all__ = ["ScoreEstimates", "estimate_score", "estimates_from_table", "metric_part"]


@dataclass(frozen=True)
class ScoreEstimates:
    """One score's human-scale estimates (see the module docstring)."""

    score: str
    kind: str
    """``pointwise`` (estimates of the mean human score) or ``preference`` (of the win rate)."""
    ppi: MeanEstimate
    judge_only: MeanEstimate
    human_only: MeanEstimate
    labels_needed: float
    """Labelled rows the PPI interval needs to be ``target_width`` wide; NaN when it cannot be
    reached or measured (:func:`judgekit.stats.ppi.labels_needed`), or no width was given."""
    target_width: float | None
    truth: MeanEstimate | None = None
    """With hidden labels: the human mean over every labelled row, hidden ones included."""
    systems: dict[str, dict[str, MeanEstimate]] = field(default_factory=dict)
    """Per system: ``ppi``, ``judge_naive`` and ``human_labelled``, in PPI rank order."""

    @property
    def what(self) -> str:
        return "win_rate" if self.kind == "preference" else "mean"

    @property
    def methods(self) -> dict[str, MeanEstimate]:
        """The estimates by the name their metrics take (``ppi``, ``judge_naive``, ...)."""
        out = {"ppi": self.ppi, "judge_naive": self.judge_only, "human_labelled": self.human_only}
        return out | ({"human_all": self.truth} if self.truth is not None else {})

    def to_metrics(self) -> dict[str, float]:
        """The flat MLflow metrics named in the module docstring."""
        s, w = self.score, self.what
        names = {
            "ppi": f"ppi_{w}",
            "judge_naive": f"judge_{w}_naive",
            "human_labelled": f"human_{w}_labelled",
            "human_all": f"human_{w}_all",
        }
        metrics: dict[str, float] = {}
        for method, est in self.methods.items():
            metrics |= _triple(f"{s}/{names[method]}", est)
        metrics[f"{s}/ppi_lambda"] = self.ppi.lam
        metrics[f"{s}/n_labelled"] = float(self.ppi.n_labelled)
        metrics[f"{s}/n_unlabelled"] = float(self.ppi.n_unlabelled)
        if self.target_width is not None:
            metrics[f"{s}/labels_needed"] = self.labels_needed
            metrics[f"{s}/labels_needed_width"] = self.target_width
        for rank, (name, by_method) in enumerate(self.systems.items(), start=1):
            prefix = f"{s}/system/{metric_part(name)}"
            metrics |= _triple(f"{prefix}/ppi_{w}", by_method["ppi"])
            metrics[f"{prefix}/ppi_rank"] = (
                rank if math.isfinite(by_method["ppi"].value) else math.nan
            )
        return metrics

    def to_rows(self) -> list[dict[str, Any]]:
        """One row per (system, method): ``""`` is every system."""
        rows = [_row(self.score, "", m, e) for m, e in self.methods.items()]
        for name, by_method in self.systems.items():
            rows += [_row(self.score, name, m, e) for m, e in by_method.items()]
        return rows

    def to_flat(self) -> dict[str, Any]:
        """A JSON-able view (summary.json, estimates.json)."""
        return {
            "kind": self.kind,
            "estimand": f"human {self.what.replace('_', ' ')}"
            + (" of response B (ties count half)" if self.kind == "preference" else ""),
            **{m: asdict(e) for m, e in self.methods.items()},
            "labels_needed": self.labels_needed,
            "labels_needed_width": self.target_width,
            "systems": {n: {m: asdict(e) for m, e in b.items()} for n, b in self.systems.items()},
        }


def metric_part(text: str) -> str:
    """One ``/``-free segment of an MLflow metric name (a system's name)."""
    part = re.sub(r"[^A-Za-z0-9_.\- ]", "_", text).strip()[:100]
    return "_" if part in {"", ".", ".."} else part


def _triple(name: str, est: MeanEstimate) -> dict[str, float]:
    return {name: est.value, f"{name}_ci_low": est.ci_low, f"{name}_ci_high": est.ci_high}


def _row(score: str, system: str, method: str, est: MeanEstimate) -> dict[str, Any]:
    fields = {k: v for k, v in asdict(est).items() if k != "method"}
    return {"score": score, "system": system, "method": method, **fields}


def estimate_score(
    score: str,
    kind: str,
    human: np.ndarray,
    judge: np.ndarray,
    *,
    systems: np.ndarray | None = None,
    hidden: np.ndarray | None = None,
    confidence: float = 0.95,
    width: float | None = None,
) -> ScoreEstimates:
    """The estimates of one score from aligned per-row arrays.

    Args:
        score: The score's name.
        kind: ``pointwise`` or ``preference`` (verdicts 0, 0.5, 1; checked).
        human: Human label per row; NaN where the row is unlabelled.
        judge: Judge score per row; NaN where the judge failed (dropped and counted).
        systems: The system of each row; per-system estimates when two or more are named.
        hidden: Rows whose human label is withheld (they count as unlabelled; the truth uses them).
        confidence: Two-sided coverage of every interval.
        width: Target width of the PPI interval for ``labels_needed`` (None: not computed).
    """
    h, j = np.asarray(human, dtype=float), np.asarray(judge, dtype=float)
    if kind == "preference":
        h, j = b_win_indicator(h), b_win_indicator(j)
    known = np.isfinite(h)
    if hidden is not None:
        known &= ~np.asarray(hidden, dtype=bool)
    labelled = np.where(known, h, math.nan)
    ppi = ppi_mean(h[known], j[known], j[~known], confidence=confidence)
    needed = math.nan
    if width is not None:
        unlabelled = int(np.isfinite(j[~known]).sum())
        needed = labels_needed(h[known], j[known], unlabelled, width, confidence)
    truth = human_mean(h[np.isfinite(h)], confidence=confidence) if hidden is not None else None
    return ScoreEstimates(
        score,
        kind,
        ppi,
        naive_judge_mean(j, confidence=confidence),
        human_mean(h[known], confidence=confidence),
        needed,
        width,
        truth,
        _by_system(labelled, j, systems, confidence),
    )


def _by_system(
    labelled: np.ndarray, judge: np.ndarray, systems: np.ndarray | None, confidence: float
) -> dict[str, dict[str, MeanEstimate]]:
    """Per system, its three estimates; ranked by the PPI one (highest first, NaN last)."""
    if systems is None:
        return {}
    s = np.asarray(systems).astype(str)
    names = [n for n in np.unique(s) if n]
    if len(names) < 2:
        return {}
    out = {}
    for name in names:
        rows = s == name
        known = rows & np.isfinite(labelled)
        out[str(name)] = {
            "ppi": ppi_mean(
                labelled[known], judge[known], judge[rows & ~known], confidence=confidence
            ),
            "judge_naive": naive_judge_mean(judge[rows], confidence=confidence),
            "human_labelled": human_mean(labelled[known], confidence=confidence),
        }
    order = sorted(out, key=lambda k: (math.isnan(out[k]["ppi"].value), -out[k]["ppi"].value))
    return {k: out[k] for k in order}


def estimates_from_table(
    frame: pd.DataFrame,
    kinds: dict[str, str],
    *,
    hidden: dict[str, set[int]] | None = None,
    confidence: float = 0.95,
    width: float | None = None,
) -> dict[str, ScoreEstimates]:
    """Per score of ``kinds`` (name → kind), :func:`estimate_score` on its rows of a results
    table (``example_index``, ``score``, ``human``, ``judge``, ``system``); ``hidden`` names the
    example indexes whose labels are withheld, per score."""
    out = {}
    for score, kind in kinds.items():
        part = frame[frame["score"] == score].sort_values("example_index")
        index = part["example_index"].to_numpy()
        mask = None
        if hidden is not None:
            mask = np.isin(index, sorted(hidden.get(score, set())))
        systems = part["system"].fillna("").to_numpy() if "system" in part else None
        out[score] = estimate_score(
            score,
            kind,
            part["human"].to_numpy(dtype=float),
            part["judge"].to_numpy(dtype=float),
            systems=systems,
            hidden=mask,
            confidence=confidence,
            width=width,
        )
    return out
