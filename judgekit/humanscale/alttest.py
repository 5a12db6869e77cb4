"""``judgekit alt-test``: can the judge of a finished run replace one of its human raters?

Recomputes :mod:`judgekit.stats.raters` (the alt-test, and for a pointwise score the human
ceiling) from the run's ``results.parquet`` and ``annotators.parquet``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from judgekit.errors import ConfigError
from judgekit.humanscale.runs import FinishedRun
from judgekit.stats.human_scale import ANNOTATORS_FILE, raters_from_tables
from judgekit.stats.raters import CEILING_METRICS, RaterFigures

__all__ = ["AltTestReport", "alt_test_run", "format_alt_test", "write_alt_test"]


@dataclass
class AltTestReport:
    """The alt-test of each score of a finished run that has annotators."""

    source: FinishedRun
    figures: dict[str, RaterFigures]
    epsilon: float

    def metrics(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for part in self.figures.values():
            out |= part.to_metrics()
        return out

    def to_flat(self) -> dict[str, Any]:
        return {
            "source": self.source.where,
            "source_run": self.source.run_id,
            "epsilon": self.epsilon,
            "scores": {k: v.to_flat() for k, v in self.figures.items()},
        }


def alt_test_run(
    run: FinishedRun, *, epsilon: float | None = None, scores: list[str] | None = None
) -> AltTestReport:
    """The alt-test of ``run`` (``epsilon``: default the run's ``stats.alt_test_epsilon``)."""
    if run.annotators is None:
        raise ConfigError(
            f"RUN_ID_OR_DIR: {run.where} has no {ANNOTATORS_FILE}: its examples carried no "
            "annotators' labels (dataset.fields.annotators), or it was made before judgekit "
            "wrote them; rerun it (the response cache makes that free) on data with annotators"
        )
    eps = run.epsilon if epsilon is None else epsilon
    if not 0 <= eps < 1:
        raise ConfigError(f"--epsilon: {eps} is not valid; use a value in [0, 1)")
    infos = run.scores
    if scores:
        unknown = [s for s in scores if s not in set(run.annotators["score"])]
        if unknown:
            raise ConfigError(
                f"--score: {', '.join(unknown)} has no annotators in {run.where}; scores with "
                f"annotators: {', '.join(dict.fromkeys(run.annotators['score']))}"
            )
        infos = {k: v for k, v in infos.items() if k in scores}
    figures = raters_from_tables(run.results, run.annotators, infos, epsilon=eps)
    return AltTestReport(run, figures, eps)


def write_alt_test(report: AltTestReport, out: Path) -> list[Path]:
    """``alt_test.json`` (everything) and ``alt_test.csv`` (one row per score and annotator)."""
    out.mkdir(parents=True, exist_ok=True)
    rows = [row for part in report.figures.values() for row in part.to_rows()]
    paths = [out / "alt_test.json", out / "alt_test.csv"]
    paths[0].write_text(json.dumps(report.to_flat(), indent=2, default=str) + "\n")
    pd.DataFrame(rows).to_csv(paths[1], index=False)
    return paths


def format_alt_test(report: AltTestReport) -> str:
    """The verdict per score, each annotator's row, and a pointwise score's human ceiling."""
    lines = [f"alt-test of {report.source.where} (epsilon {report.epsilon:g})"]
    for score, part in report.figures.items():
        a = part.alt_test
        verdict = (
            "undefined: " + str(a.reason)
            if not math.isfinite(part.passed)
            else (
                "PASSED: the judge can replace a rater" if a.passed else "FAILED: keep the raters"
            )
        )
        lines += [
            "",
            f"{score} ({a.metric}): winning rate {a.winning_rate:.3f}, advantage probability "
            f"{a.advantage_probability:.3f}, {verdict}",
            "  annotator           items  rho_judge  rho_human  p (BY-adjusted)  rejected",
        ]
        for t in a.annotators:
            lines.append(
                f"  {t.annotator:<18} {t.n_items:>6}  {t.rho_f:9.3f}  {t.rho_h:9.3f}  "
                f"{t.p_adjusted:15.4g}  {'yes' if t.rejected else 'no'}"
                + ("  (too few items: not counted)" if t.flagged else "")
            )
        lines += [f"  note: {n}" for n in a.notes]
        if part.ceiling is not None:
            shown = ", ".join(
                f"{CEILING_METRICS[k]} {float(part.ceiling[k]):.3f}"
                for k in CEILING_METRICS
                if k != "n_annotators"
            )
            lines.append(f"  human ceiling: {shown}")
    return "\n".join(lines)
