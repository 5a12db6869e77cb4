"""A judge panel's members as runs of their own, so a comparison shows them beside the panel.

A panel run is an ordinary judgekit run with a tag ``judgekit.panel_members`` (the members'
names, comma-separated), an artifact ``members.parquet`` (the columns of
:data:`judgekit.results.COLUMNS` and ``member`` after ``score``: one row per example, score and
member) and, per member, metrics ``<score>/member/<name>/<stat>`` (with ``_ci_low`` and
``_ci_high``). :func:`add_members` puts one :class:`ComparedRun` per member right after its
panel: its results are the member's rows, its metrics the member's under the plain
``<score>/<stat>`` names the tables read. The panel's ``results.parquet`` may hold fewer
examples (calibration rows left out); a member is paired with the baseline on the examples both
have, as any run is.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import pandas as pd

from judgekit.compare.records import ComparedRun

__all__ = ["MEMBERS_FILE", "PANEL_TAG", "add_members", "member_metrics", "member_names"]

PANEL_TAG = "judgekit.panel_members"
"""Tag of a panel run: its members' names, comma-separated."""
MEMBERS_FILE = "members.parquet"
"""The panel run's artifact holding every member's rows (a ``member`` column)."""
MEMBER_INFIX = "/member/"
"""``<score>/member/<name>/<stat>``: a member's statistic among the panel's metrics."""


def member_names(run: ComparedRun) -> list[str]:
    """The members of a panel run, in the tag's order; [] for any other run."""
    return [name.strip() for name in run.tags.get(PANEL_TAG, "").split(",") if name.strip()]


def member_metrics(panel: dict[str, float], name: str) -> dict[str, float]:
    """The panel's ``<score>/member/<name>/<stat>`` metrics as ``<score>/<stat>``."""
    infix = f"{MEMBER_INFIX}{name}/"
    metrics = {}
    for key, value in panel.items():
        score, found, stat = key.partition(infix)
        if found and score and stat:
            metrics[f"{score}/{stat}"] = value
    return metrics


def add_members(runs: list[ComparedRun], tables: Mapping[str, pd.DataFrame]) -> list[ComparedRun]:
    """``runs`` with each panel's members right after it.

    ``tables`` maps a panel's run id to its ``members.parquet``; a panel missing there, or a
    member without rows in it, adds nothing.
    """
    expanded = []
    for run in runs:
        expanded.append(run)
        rows = tables.get(run.run_id)
        if rows is None:
            continue
        for name in member_names(run):
            own = rows[rows["member"] == name].drop(columns="member").reset_index(drop=True)
            if not own.empty:
                expanded.append(_member_run(run, name, own))
    return expanded


def _member_run(panel: ComparedRun, name: str, results: pd.DataFrame) -> ComparedRun:
    """One member of ``panel`` as a run: the panel's record with the member's rows and metrics.

    Its run id is ``<panel run id>/member/<name>`` (no MLflow run of its own); its failures are
    counted from its rows; the panel's judge model is dropped from its tags (the member's own
    is not logged), so no price is given for it.
    """
    from judgekit.stats.agreement import failure_counts

    metrics = member_metrics(panel.metrics, name)
    metrics["failures/total"] = float(sum(failure_counts(results).values()))
    tags = {k: v for k, v in panel.tags.items() if k not in {PANEL_TAG, "judgekit.judge_model"}}
    return dataclasses.replace(
        panel,
        run_id=f"{panel.run_id}{MEMBER_INFIX}{name}",
        name=f"{panel.name}{MEMBER_INFIX}{name}",
        tags=tags | {"judgekit.judge": name},
        metrics=metrics,
        label=f"{panel.label}{MEMBER_INFIX}{name}",
        results=results,
        curve=None,
        panel_run_id=panel.run_id,
    )
