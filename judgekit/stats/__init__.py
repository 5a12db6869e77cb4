"""Agreement statistics: pointwise, bootstrap intervals, pairwise, and the per-score report."""

from __future__ import annotations

from judgekit.stats.pointwise import (
    STATISTICS,
    JudgekitStatsWarning,
    aggregate,
    agreement,
    krippendorff_alpha,
    percentiles,
    round_half_up,
)
from judgekit.stats.report import (
    DIAGNOSTICS,
    AgreementReport,
    BootstrapInfo,
    Estimate,
    HumanCeiling,
    ScoreAgreement,
)

__all__ = [
    "AgreementReport",
    "BootstrapInfo",
    "DIAGNOSTICS",
    "Estimate",
    "HumanCeiling",
    "JudgekitStatsWarning",
    "STATISTICS",
    "ScoreAgreement",
    "aggregate",
    "agreement",
    "krippendorff_alpha",
    "percentiles",
    "round_half_up",
]
