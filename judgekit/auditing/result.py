"""What ``judgekit audit`` returns: the judged originals and variants, the effects, the rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from judgekit.auditing.effects import Effect
from judgekit.auditing.registry import Perturbed, Variant
from judgekit.config.schema import Config
from judgekit.results import RunResult

__all__ = ["AuditResult", "JudgedVariant"]


@dataclass
class JudgedVariant:
    """One variant of one test: its examples (aligned with the originals) and their result."""

    variant: Variant
    perturbed: list[Perturbed]
    result: RunResult


@dataclass
class AuditResult:
    """An audit: the originals' result, each variant's, and the paired effects."""

    config: Config
    score: str
    """The audited score (``audit.score``)."""
    original: RunResult
    variants: list[JudgedVariant]
    effects: list[Effect] = field(default_factory=list)
    """Each test's effect (``variant == ""``), followed by each of its variants'."""
    figures: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Further figures per test on the originals (``verbosity``: length-controlled agreement)."""
    rows: pd.DataFrame = field(default_factory=pd.DataFrame)
    """``results.parquet``: a row per (item, variant)."""
    out_dir: Path | None = None
    run_id: str | None = None
    """The MLflow parent run, when tracked."""

    def table(self) -> pd.DataFrame:
        """The effects as a table (``audit.csv``)."""
        return pd.DataFrame([e.__dict__ for e in self.effects])

    def effect(self, test: str, variant: str = "") -> Effect:
        """The effect of ``test`` (or of one of its variants)."""
        for e in self.effects:
            if e.test == test and e.variant == variant:
                return e
        raise KeyError(f"no effect for {test}/{variant}" if variant else f"no test {test!r}")
