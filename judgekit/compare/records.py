"""What a comparison is made of: the runs it reads and the tables it produces."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

__all__ = ["ComparedRun", "Comparison", "score_kind"]


@dataclass
class ComparedRun:
    """One judgekit run as the comparison sees it: its MLflow record and its results table."""

    run_id: str
    name: str
    tags: dict[str, str]
    metrics: dict[str, float]
    params: dict[str, str]
    start_time: int
    label: str = ""
    """What sets this run apart from the others (``prompt=v2``); set by :func:`label_runs`."""
    results: pd.DataFrame | None = None
    """Its ``results.parquet``; None when the run has none."""
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    """Declared (minimum, maximum) per score, from its ``resolved_config.json``."""
    integer: dict[str, bool] = field(default_factory=dict)
    """Per score, ``integer`` as declared (false: a continuous scale with whole bounds); a score
    missing here infers it from its bounds."""
    kinds: dict[str, str] = field(default_factory=dict)
    """Per score, its ``kind`` as declared (``pointwise`` or ``preference``); a score missing
    here is pointwise."""
    curve: pd.DataFrame | None = None
    """Its ``agreement_vs_samples.csv`` (a run with ``runner.samples`` > 1); None otherwise."""
    panel_run_id: str | None = None
    """For a member of a judge panel (:mod:`judgekit.compare.members`), the panel's run id;
    ``run_id`` is then ``<panel run id>/member/<name>``."""

    @classmethod
    def from_mlflow(cls, run: Any) -> ComparedRun:
        """Wrap an ``mlflow.entities.Run``."""
        data, info = run.data, run.info
        name = info.run_name or data.tags.get("mlflow.runName", info.run_id)
        return cls(info.run_id, name, data.tags, data.metrics, data.params, info.start_time or 0)

    @property
    def mlflow_run_id(self) -> str:
        """The MLflow run this row comes from: its own, or its panel's for a panel member."""
        return self.panel_run_id or self.run_id

    @property
    def scores(self) -> list[str]:
        """Scores with agreement figures (human labels), in the order they were logged."""
        names = [key[: -len("/n_scored")] for key in self.metrics if key.endswith("/n_scored")]
        # <score>_preference is derived from pairs of rows, not a per-example score: not paired here.
        names = [n for n in names if not (n.endswith("_preference") and n[:-11] in names)]
        # <score>/member/<name> is a panel member's figure of <score>: the member's own row.
        return [n for n in names if "/member/" not in n or n.partition("/member/")[0] not in names]


@dataclass
class Comparison:
    """Runs side by side (``table``) and each run against the baseline (``paired``)."""

    runs: list[ComparedRun]
    baseline: ComparedRun
    table: pd.DataFrame
    """One row per (run, score): statistics with ``_ci_low``/``_ci_high``, coverage, usage."""
    paired: pd.DataFrame
    """One row per (run, score, statistic) for every run but the baseline."""
    statistics: list[str]
    """Every statistic compared, for any score (a preference score has its own: see
    :meth:`statistics_for`)."""
    resamples: int
    confidence: float
    sweep_id: str | None = None
    score_statistics: dict[str, list[str]] = field(default_factory=dict)
    """The statistics of each score, by its kind; a score missing here uses ``statistics``."""
    curves: pd.DataFrame | None = None
    """The agreement-vs-draws curves of the runs that have one (``run`` and ``run_id`` columns,
    then those of ``agreement_vs_samples.csv``), when two or more runs have one; else None."""

    def statistics_for(self, score: str) -> list[str]:
        """The statistics tabulated and compared for ``score``."""
        return self.score_statistics.get(score, self.statistics)


def score_kind(runs: list[ComparedRun], score: str) -> str:
    """``preference`` or ``pointwise``: the kind the first run that declares ``score`` gives it.

    ``<score>_expected`` (the logprob-weighted score) has the kind of ``<score>``; a score no
    run declares is pointwise.
    """
    for run in runs:
        for name in (score, score.removesuffix("_expected")):
            if name in run.kinds:
                return "preference" if run.kinds[name] == "preference" else "pointwise"
    return "pointwise"
