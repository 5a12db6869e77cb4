"""``judgekit estimate``: the human-scale estimates of a finished run (:mod:`judgekit.stats.estimates`).

The rows with a human label are the labelled slice. ``labels=N`` keeps a seeded N of them as
labelled (per score) and hides the others' labels: every estimate is made without them, and
the human mean over all labelled rows is shown beside as the truth the estimates aim at.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from judgekit.errors import ConfigError
from judgekit.humanscale.runs import FinishedRun
from judgekit.stats.estimates import ScoreEstimates, estimates_from_table

__all__ = ["EstimateReport", "estimate", "format_estimates", "hidden_rows", "write_estimates"]


@dataclass
class EstimateReport:
    """The estimates of a finished run's scores, and how they were made."""

    source: FinishedRun
    estimates: dict[str, ScoreEstimates]
    labels: int | None
    seed: int
    width: float | None
    hidden: dict[str, list[int]] = field(default_factory=dict)
    """Per score, the example indexes whose labels were withheld (``labels``)."""

    def metrics(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for est in self.estimates.values():
            out |= est.to_metrics()
        return out

    def to_flat(self) -> dict[str, Any]:
        return {
            "source": self.source.where,
            "source_run": self.source.run_id,
            "labels": self.labels,
            "seed": self.seed,
            "width": self.width,
            "confidence": self.source.confidence,
            "scores": {k: v.to_flat() for k, v in self.estimates.items()},
            "hidden_example_indexes": self.hidden,
        }


def estimate(
    run: FinishedRun,
    *,
    labels: int | None = None,
    seed: int = 0,
    width: float | None = None,
    scores: list[str] | None = None,
) -> EstimateReport:
    """The estimates of ``run``'s scores with human labels (``scores``: only these)."""
    kinds = _kinds(run, scores)
    if width is not None and not (math.isfinite(width) and width > 0):
        raise ConfigError(f"--width: {width} is not valid; use a positive interval width")
    hidden = hidden_rows(run.results, kinds, labels, seed) if labels is not None else None
    found = estimates_from_table(
        run.results,
        kinds,
        hidden=hidden,
        confidence=run.confidence,
        width=width,
    )
    shown = {k: sorted(v) for k, v in (hidden or {}).items()}
    return EstimateReport(run, found, labels, seed, width, shown)


def _kinds(run: FinishedRun, scores: list[str] | None) -> dict[str, str]:
    table = run.results
    labelled = [n for n in run.scores if table.loc[table["score"] == n, "human"].notna().any()]
    if scores:
        unknown = [s for s in scores if s not in run.scores]
        if unknown:
            raise ConfigError(
                f"--score: {', '.join(unknown)} not in {run.where}; its scores: "
                f"{', '.join(run.scores)}"
            )
        unlabelled = [s for s in scores if s not in labelled]
        if unlabelled:
            raise ConfigError(
                f"--score: {', '.join(unlabelled)} has no human label in {run.where}; PPI needs "
                "a labelled slice (dataset.fields.scores)"
            )
        labelled = scores
    if not labelled:
        raise ConfigError(
            f"RUN_ID_OR_DIR: no score of {run.where} has a human label ({', '.join(run.scores)}); "
            "PPI needs a labelled slice: run on data with some labels (dataset.fields.scores)"
        )
    return {n: run.scores[n].kind for n in labelled}


def hidden_rows(
    table: pd.DataFrame, kinds: dict[str, str], labels: int, seed: int
) -> dict[str, set[int]]:
    """Per score, the labelled example indexes left out when a seeded ``labels`` of them are
    kept (``numpy.random.default_rng(seed)`` draws the kept ones from the sorted indexes)."""
    if seed < 0:
        raise ConfigError(f"--seed: {seed} is not valid; use 0 or more")
    out = {}
    for score in kinds:
        part = table[(table["score"] == score) & table["human"].notna()]
        index = np.sort(part["example_index"].to_numpy())
        if not 2 <= labels <= index.size:
            raise ConfigError(
                f"--labels: {labels} is not valid for {score}: {index.size} rows carry a human "
                f"label; use 2 to {index.size}"
            )
        kept = np.random.default_rng(seed).choice(index, size=labels, replace=False)
        out[score] = set(index.tolist()) - set(kept.tolist())
    return out


def write_estimates(report: EstimateReport, out: Path) -> list[Path]:
    """``estimates.json`` (everything) and ``estimates.csv`` (one row per score, system, method)."""
    out.mkdir(parents=True, exist_ok=True)
    rows = [row for est in report.estimates.values() for row in est.to_rows()]
    paths = [out / "estimates.json", out / "estimates.csv"]
    paths[0].write_text(json.dumps(report.to_flat(), indent=2, default=str) + "\n")
    pd.DataFrame(rows).to_csv(paths[1], index=False)
    return paths


METHOD_NAMES = {
    "ppi": "PPI++",
    "judge_naive": "judge only",
    "human_labelled": "humans, labelled slice",
    "human_all": "humans, all labels (truth)",
}


def format_estimates(report: EstimateReport) -> str:
    """The estimates as text: per score, each method's value, interval and counts."""
    lines = [f"human-scale estimates of {report.source.where}"]
    if report.labels is not None:
        lines.append(
            f"--labels {report.labels} --seed {report.seed}: the other labels are hidden and "
            "give the truth"
        )
    pct = f"{report.source.confidence:.0%}"
    for score, est in report.estimates.items():
        what = "mean human score" if est.kind != "preference" else "human win rate of B"
        lines += ["", f"{score}: {what} ({pct} intervals)"]
        for method, e in est.methods.items():
            name = METHOD_NAMES[method] + (f" (lambda {e.lam:.2f})" if method == "ppi" else "")
            lines.append(
                f"  {name:<34} {_interval(e.value, e.ci_low, e.ci_high)}  labelled "
                f"{e.n_labelled}, unlabelled {e.n_unlabelled}, dropped {e.n_dropped}"
                + (f"  ({e.reason})" if e.reason else "")
            )
        if est.truth is not None and math.isfinite(est.ppi.value):
            inside = est.ppi.ci_low <= est.truth.value <= est.ppi.ci_high
            lines.append(f"  the truth is {'inside' if inside else 'outside'} the PPI++ interval")
        if est.target_width is not None:
            lines.append(
                f"  labelled rows for a PPI++ interval {est.target_width:.3g} wide: "
                + _count(est.labels_needed)
            )
        if est.systems:
            lines.append("  systems ranked by PPI++:")
            for rank, (name, by) in enumerate(est.systems.items(), start=1):
                p, j = by["ppi"], by["judge_naive"]
                lines.append(
                    f"    {rank}. {name:<24} PPI++ {_interval(p.value, p.ci_low, p.ci_high)}"
                    f"  judge only {j.value:.3f}"
                )
    return "\n".join(lines)


def _interval(value: float, low: float, high: float) -> str:
    if not math.isfinite(value):
        return f"{'NaN':>6} {'':<16}"
    return f"{value:6.3f} [{low:.3f}, {high:.3f}]"


def _count(n: float) -> str:
    return f"{int(n)}" if math.isfinite(n) else "NaN (not reachable or not measurable)"
