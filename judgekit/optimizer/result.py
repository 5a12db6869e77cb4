"""What ``judgekit optimize`` returns: the candidates, the choice, and the held-out test."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from judgekit.optimizer.candidates import Candidate
from judgekit.results import RunResult

__all__ = ["OptimizationResult"]


@dataclass
class OptimizationResult:
    """What ``judgekit optimize`` found and how it did on the held-out test split."""

    score: str
    objective: str
    seed: Candidate
    chosen: Candidate
    candidates: list[Candidate]
    splits: dict[str, int]
    """Rows per split (train, dev, test) and rows without a label (left out)."""
    out_dir: Path
    test_seed: RunResult
    test_chosen: RunResult | None
    """None when no candidate beat the seed on dev (the seed is kept; test judged once)."""
    paired: pd.DataFrame = field(default_factory=pd.DataFrame)
    """Chosen vs seed on test: one row per statistic (``judgekit compare``'s paired table)."""
    calls: dict[str, int] = field(default_factory=dict)
    """``spent`` (distinct requests the search judged), ``judge`` and ``reflection`` (calls sent)."""
    stopped: str = "finished"
    run_id: str | None = None
    table: pd.DataFrame = field(default_factory=pd.DataFrame)
    """Each test run's statistics with their intervals (``judgekit compare``'s runs table)."""
    compare_command: str = ""
    """The ``judgekit compare`` command that gives the same two tables (tracked runs only)."""
    note: str = ""
    """Why a gepa step failed last (e.g. the reflection model's error), when one did."""

    def interval(self, which: str, statistic: str) -> tuple[float, float]:
        """A statistic's interval on test for ``seed`` or ``chosen`` (NaN when absent)."""
        rows = self.table.reset_index(drop=True)
        index = 0 if which == "seed" else 1
        if rows.empty or index >= len(rows) or f"{statistic}_ci_low" not in rows:
            return math.nan, math.nan
        row = rows.iloc[index]
        return float(row[f"{statistic}_ci_low"]), float(row[f"{statistic}_ci_high"])

    def test_value(self, which: str, statistic: str | None = None) -> float:
        """A statistic (default: the objective) on test for ``seed`` or ``chosen``."""
        result = self.test_seed if which == "seed" else (self.test_chosen or self.test_seed)
        value = result.agreement[self.score].point(statistic or self.objective)
        return math.nan if value is None else float(value)
