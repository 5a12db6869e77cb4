"""The short table printed at the end of a run: agreement per score, failures, where outputs are."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["format_report"]

COLUMNS = ("pearson", "spearman", "mae", "qwk", "n_scored", "n_failed", "coverage")
PAIRWISE_COLUMNS = (
    "accuracy",
    "accuracy_with_ties",
    "kappa",
    "position_consistency",
    "human_kappa",
    "n_scored",
    "n_failed",
)
LEVEL_COLUMNS = {
    "n_groups": ("group_pearson", "group_spearman", "group_kendall", "n_groups"),
    "n_systems": ("system_pearson", "system_spearman", "system_kendall", "n_systems"),
}
"""The correlations of each level, shown when some score has that level's count."""
STABILITY_COLUMNS = ("test_retest_alpha", "flip_rate", "sample_std", "n_draws", "n_failed_draws")
"""The test–retest figures of ``runner.samples`` > 1, shown when the run has them."""


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "nan"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.3f}"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True))  # noqa: E731
    return [line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def _levels(agreement: Any) -> list[str]:
    """The group- and system-level correlations, for the levels the scores have."""
    columns = [
        column
        for count, names in LEVEL_COLUMNS.items()
        if any(stats.point(count) is not None for stats in agreement.values())
        for column in names
    ]
    rows = [
        [score, *(_cell(stats.point(c)) for c in columns)]
        for score, stats in agreement.items()
        if any(stats.point(count) is not None for count in LEVEL_COLUMNS)
    ]
    return _table(["score", *columns], rows) if rows else []


def _stability(stability: dict[str, Any]) -> list[str]:
    """The test–retest table of a run with ``runner.samples`` > 1 (nothing otherwise)."""
    rows = [
        [score, *(_cell(figures.to_flat()[c]) for c in STABILITY_COLUMNS)]
        for score, figures in stability.items()
    ]
    return _table(["score (draws)", *STABILITY_COLUMNS], rows) if rows else []


def _panel(panel: Any, agreement: Any) -> list[str]:
    """A judge panel: each member's objective statistic beside the panel's, the change when it
    is left out, its failures, and the members' agreement among themselves."""
    if panel is None:
        return []
    from judgekit.panel import objective_of

    lines = []
    for spec in panel.config_specs:
        if spec.name not in agreement:
            continue
        stat = objective_of(spec)
        loo = panel.leave_one_out
        rows = [["panel", _cell(agreement[spec.name].point(stat)), "", ""]]
        for name in panel.names:
            mine = loo[(loo["score"] == spec.name) & (loo["member"] == name)]
            change = (
                f"{_cell(mine['change'].iloc[0])} [{_cell(mine['change_ci_low'].iloc[0])}, "
                f"{_cell(mine['change_ci_high'].iloc[0])}]"
                if len(mine)
                else ""
            )
            report = panel.reports[name]
            failed = _cell(report[spec.name].point("n_failed")) if spec.name in report else ""
            rows.append(
                [
                    name,
                    _cell(report[spec.name].point(stat)) if spec.name in report else "nan",
                    change,
                    failed,
                ]
            )
        lines += _table(
            [f"{spec.name} ({stat})", stat, "panel without it - panel", "n_failed"], rows
        )
        lines.append(
            f"{spec.name}: members' Krippendorff alpha {_cell(panel.inter_judge_alpha.get(spec.name))}"
        )
    return lines


def format_report(result: Any) -> str:
    """A plain-text report of a :class:`judgekit.pipeline.RunResult`."""
    lines = [
        f"judge {result.config.judge.model} · prompt {result.config.prompt.name} · "
        f"{len(result.examples)} examples"
    ]
    if result.agreement:
        for columns in (COLUMNS, PAIRWISE_COLUMNS):
            rows = [
                [score, *(_cell(stats.point(c)) for c in columns)]
                for score, stats in result.agreement.items()
                if (stats.kind == "pairwise") == (columns is PAIRWISE_COLUMNS)
            ]
            if rows:
                lines += _table(["score", *columns], rows)
        lines += _levels(result.agreement)
        lines += [
            f"note: {score}/{name}: {why}"
            for score, stats in result.agreement.items()
            for name, why in stats.notes.items()
        ]
    else:
        keys = ("count", "n_failed", "mean", "std", "min", "max")
        rows = [
            [score, *(_cell(stats.get(k)) for k in keys)]
            for score, stats in result.aggregate.items()
        ]
        lines += _table(["score", *keys], rows)
    lines += _stability(getattr(result, "stability", {}))
    lines += _panel(getattr(result, "panel", None), result.agreement)
    failures = ", ".join(f"{k}={v}" for k, v in result.failures.items()) or "none"
    lines.append(f"failed rows (example × score) by reason: {failures}")
    if result.out_dir is not None:
        lines.append(f"outputs: {result.out_dir}")
    if result.run_id:
        uri = result.config.tracking.uri
        lines.append(
            f"mlflow: run {result.run_id} in experiment {result.config.tracking.experiment!r} "
            f"({uri}); view with: mlflow ui --backend-store-uri {uri}"
        )
    return "\n".join(lines)
