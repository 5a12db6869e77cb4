"""``judgekit compare``: runs side by side with paired bootstrap differences."""

from __future__ import annotations

from judgekit.compare.runs import (
    ComparedRun,
    Comparison,
    collect_runs,
    compare,
    label_runs,
    load_artifacts,
)

__all__ = [
    "ComparedRun",
    "Comparison",
    "collect_runs",
    "compare",
    "label_runs",
    "load_artifacts",
]
