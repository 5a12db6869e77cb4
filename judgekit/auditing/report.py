"""An audit's outputs: the table, the forest plot, the files and the MLflow runs.

Files in ``audit.out_dir``: ``audit.csv`` (a row per test and per variant), ``forest.png``,
``results.parquet`` (a row per item and variant: texts, verdicts, the statistic compared) and
``summary.json``. MLflow: a parent run (tag ``judgekit.kind=audit``) with the run's params, every
``audit.*`` key, and per test ``audit/<test>/effect``, ``audit/<test>/effect_ci_low``,
``audit/<test>/effect_ci_high``, ``audit/<test>/robustness``, ``audit/<test>/n``; a child run per
variant (and ``original``) with its effect and its agreement with the humans.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from judgekit.auditing.effects import Effect
from judgekit.auditing.result import AuditResult
from judgekit.config.schema import Config
from judgekit.errors import RunError
from judgekit.results import RunResult

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["format_text", "forest_plot", "log_audit", "metrics", "parent_run", "write_audit"]

KIND_TAG = "judgekit.kind"


def metrics(
    effects: list[Effect], figures: dict[str, dict[str, Any]] | None = None
) -> dict[str, float]:
    """The parent run's metrics: each test's headline effect (NaN stays NaN), and its further
    figures (``audit/<test>/<name>``)."""
    out: dict[str, float] = {}
    for test, named in (figures or {}).items():
        for name, value in named.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                out[f"audit/{test}/{name}"] = float(value)
    for e in effects:
        if e.variant:
            continue
        base = f"audit/{e.test}"
        out |= {
            f"{base}/effect": e.effect,
            f"{base}/effect_ci_low": e.ci_low,
            f"{base}/effect_ci_high": e.ci_high,
            f"{base}/robustness": e.robustness,
            f"{base}/n": float(e.n),
            f"{base}/n_failed": float(e.n_failed),
        }
    return out


def _fmt(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:+.3f}"


def format_text(result: AuditResult) -> str:
    """The printed table: a line per test (headline) and per variant."""
    level = result.config.stats.confidence
    lines = [
        f"audit of score {result.score!r}: effect = mean(variant - baseline), the baseline the "
        "original or the variant's control (vs);",
        f"{level:.0%} clustered bootstrap interval; robustness = share of items unchanged",
        f"{'test':<16} {'variant':<34} {'n':>5} {'failed':>6} {'effect':>8} "
        f"{'interval':>19} {'robust':>7}",
    ]
    for e in result.effects:
        interval = f"[{_fmt(e.ci_low)}, {_fmt(e.ci_high)}]"
        robust = "n/a" if math.isnan(e.robustness) else f"{e.robustness:.3f}"
        name = e.variant or "(test)"
        baseline = next(
            (v.variant.baseline for v in result.variants if v.variant.name == e.variant), ""
        )
        if e.variant and baseline:
            name = f"{name} vs {baseline}"
        lines.append(
            f"{e.test:<16} {name:<34} {e.n:>5} {e.n_failed:>6} {_fmt(e.effect):>8} "
            f"{interval:>19} {robust:>7}"
        )
    for test, named in result.figures.items():
        shown = ", ".join(
            f"{k} {v:.3f}" for k, v in named.items() if isinstance(v, float) and not math.isnan(v)
        )
        lines.append(f"{test}: {shown or named.get('reason', '')}")
    return "\n".join(lines)


def forest_plot(result: AuditResult) -> Figure:
    """Every effect with its interval: a row per test (bold) and per variant."""
    from matplotlib.figure import Figure

    rows = list(reversed(result.effects))
    fig = Figure(figsize=(7.0, 1.2 + 0.32 * max(len(rows), 1)), layout="constrained")
    ax = fig.subplots()
    names = []
    for y, e in enumerate(rows):
        colour = "#777777"
        if not math.isnan(e.ci_low) and (e.ci_low > 0 or e.ci_high < 0):
            colour = "#c0392b"
        if not math.isnan(e.ci_low):
            ax.plot(
                [e.ci_low, e.ci_high], [y, y], color=colour, linewidth=2 if not e.variant else 1
            )
        if not math.isnan(e.effect):
            ax.plot([e.effect], [y], "s" if not e.variant else "o", color=colour)
        names.append(e.test if not e.variant else f"  {e.test} · {e.variant}")
    ax.set_yticks(range(len(names)), names, fontsize=9)
    ax.set_ylim(-0.7, max(len(names), 1) - 0.3)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel(f"effect on {result.score} (variant - original)")
    fig.suptitle(
        f"judgekit audit: {result.config.stats.confidence:.0%} clustered bootstrap intervals; "
        "red: the interval excludes 0",
        fontsize=9,
    )
    return fig


def write_audit(result: AuditResult) -> list[Path]:
    """``audit.csv``, ``forest.png``, ``results.parquet`` and ``summary.json`` (last)."""
    from judgekit.results import write_results

    out = result.out_dir
    if out is None:
        return []
    try:
        out.mkdir(parents=True, exist_ok=True)
        paths = [out / "audit.csv", out / "forest.png", out / "results.parquet"]
        result.table().to_csv(paths[0], index=False)
        forest_plot(result).savefig(paths[1], dpi=100)
        write_results(result.rows, paths[2])
        paths.append(out / "summary.json")
        paths[3].write_text(
            json.dumps(_summary(result), indent=1, default=str, allow_nan=False) + "\n"
        )
    except OSError as err:
        raise RunError(f"audit.out_dir: could not write the audit to {out}: {err}") from None
    return paths


def _plain(value: Any) -> Any:
    """``value`` as strict JSON holds it: NaN becomes null, through dicts and lists."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _summary(result: AuditResult) -> dict[str, Any]:
    summary = {
        "score": result.score,
        "audit": dataclasses.asdict(result.config.audit),
        "confidence": result.config.stats.confidence,
        "metrics": metrics(result.effects, result.figures),
        "effects": [dict(e.__dict__) for e in result.effects],
        "figures": result.figures,
        "run_id": result.run_id,
    }
    return dict(_plain(summary))


# --- MLflow ----------------------------------------------------------------------------------


def parent_run(cfg: Config) -> Any:
    """The audit's MLflow run (ends FAILED when the audit raises)."""
    from judgekit.tracking.runs import mlflow_run

    name = f"audit-{cfg.judge.name}-{cfg.prompt.name}-{cfg.score.name}-{cfg.dataset.name}"
    tags = {
        KIND_TAG: "audit",
        "judgekit.judge": cfg.judge.name,
        "judgekit.prompt": cfg.prompt.name,
        "judgekit.score": cfg.score.name,
        "judgekit.dataset": cfg.dataset.name,
    }
    return mlflow_run(cfg.tracking, name, tags, keep_going=True)


def log_audit(parent: Any, result: AuditResult, paths: list[Path]) -> None:
    """The parent run's params, metrics and files, then a child run per variant."""
    from judgekit.secrets import redact_config
    from judgekit.tracking.runs import flatten_params

    cfg = result.config
    params = flatten_params(redact_config(cfg))
    params |= {f"audit.{k}": str(v) for k, v in dataclasses.asdict(cfg.audit).items()}
    params["audit.score"] = result.score
    parent.log_params(params)
    parent.log_metrics(metrics(result.effects, result.figures))
    parent.log_artifacts(paths)
    parent.log_table(result.table(), "audit_table.json")
    _child(parent, "original", {"test": "", "variant": "original"}, {}, result.original)
    for judged in result.variants:
        v = judged.variant
        e = result.effect(v.test, v.name)
        figures = {
            "effect": e.effect,
            "effect_ci_low": e.ci_low,
            "effect_ci_high": e.ci_high,
            "robustness": e.robustness,
            "n": float(e.n),
            "n_failed": float(e.n_failed),
        }
        params = {"test": v.test, "variant": v.name, "headline": str(v.headline)}
        _child(parent, f"{v.test}/{v.name}", params, figures, judged.result)


def _child(
    parent: Any, name: str, params: dict[str, str], figures: dict[str, float], run: RunResult
) -> None:
    """A child run, through the parent's guard: a store failing mid-way is reported with what
    was not logged (``MlflowRun.keep_going``), never a traceback."""
    parent._guard(
        f"child run {name}", functools.partial(_log_child, parent, name, params, figures, run)
    )


def _log_child(
    parent: Any, name: str, params: dict[str, str], figures: dict[str, float], run: RunResult
) -> None:
    from mlflow.entities import Metric, Param, RunStatus

    from judgekit.stats.agreement import metrics_from_report

    client = parent.client
    tags = {"mlflow.parentRunId": parent.run_id, KIND_TAG: "audit_variant"}
    child = client.create_run(parent.experiment_id, run_name=name, tags=tags)
    child_id = child.info.run_id
    shown = {**metrics_from_report(run.agreement, run.aggregate, run.failures), **figures}
    now = int(time.time() * 1000)
    client.log_batch(
        child_id,
        metrics=[Metric(k, float(v), now, 0) for k, v in shown.items() if v is not None],
        params=[Param(k, v) for k, v in params.items()],
    )
    client.set_terminated(child_id, RunStatus.to_string(RunStatus.FINISHED))
