"""One finished run in MLflow: open the run with its tags, log params, metrics, the results table
and the run directory's files, and turn a store that failed meanwhile into one clear error."""

from __future__ import annotations

import dataclasses
import json
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from judgekit.config.schema import Config, JudgeConfig
from judgekit.errors import RunError
from judgekit.results import RunResult

__all__ = ["check_logged", "log_mlflow_views", "log_run", "open_run"]


def open_run(
    cfg: Config,
    judge: JudgeConfig,
    out_dir: Path | None,
    *,
    server_pid: int | None = None,
    tags: dict[str, str] | None = None,
    parent_run: str | None = None,
    dataset_digest: str = "",
) -> AbstractContextManager[Any]:
    """The MLflow run (a context manager; a null one when tracking is off or the run has no
    output directory), tagged with the endpoint, judge, dataset digest, the parent run of a
    re-judge and the local server's pid; it keeps going when the store fails."""
    if not (cfg.tracking.enabled and out_dir is not None):
        return nullcontext()
    from judgekit.secrets import redact_url
    from judgekit.tracking.runs import DATASET_DIGEST_TAG, default_run_name, mlflow_run, run_tags

    name = cfg.tracking.run_name or default_run_name(cfg)
    extra = {
        "judgekit.endpoint": redact_url(judge.api_base or ""),
        "judgekit.judge_model": judge.model,
    }
    if dataset_digest:
        extra[DATASET_DIGEST_TAG] = dataset_digest
    extra.update(tags or {})
    if parent_run:
        extra["judgekit.parent_run"] = parent_run
        extra["mlflow.parentRunId"] = parent_run
    if server_pid is not None:
        extra["judgekit.local_server_pid"] = str(server_pid)
    return mlflow_run(cfg.tracking, name, run_tags(cfg, extra), keep_going=True)  # type: ignore[no-any-return]


def log_run(mlrun: Any, result: RunResult, paths: list[Path]) -> None:
    """Log a finished run: redacted params, ``<score>/<stat>`` metrics (cache and dropped rows
    too), the results table, and ``paths`` plus ``resolved_config.json`` as artifacts."""
    from judgekit.secrets import redact_config
    from judgekit.stats.agreement import metrics_from_report
    from judgekit.tracking.runs import flatten_params

    cfg = result.config
    assert result.out_dir is not None  # a logged run always has its run directory
    mlrun.log_params(flatten_params(redact_config(cfg)))
    metrics = metrics_from_report(result.agreement, result.aggregate, result.failures)
    metrics.update({f"cache/{k}": float(v) for k, v in result.cache_stats.items()})
    for score, figures in result.stability.items():  # runner.samples > 1
        metrics.update({f"{score}/{k}": v for k, v in figures.to_flat().items()})
    if result.panel is not None:  # judge=panel: its members, their agreement among themselves
        metrics.update(result.panel.metrics())
    if result.calibration is not None:  # stats.calibrate, stats.apply_calibration, logprobs
        metrics.update(result.calibration.metrics())
    if result.human_scale is not None:  # stats.ppi; annotators: alt-test, human ceiling
        metrics.update(result.human_scale.metrics())
    if cfg.dataset.drop_incomplete:
        metrics["data/dropped_incomplete"] = float(result.dropped_incomplete)
    mlrun.log_metrics(metrics)
    mlrun.log_table(result.results, "results_table.json")
    if result.unstable is not None:  # runner.samples > 1
        mlrun.log_table(result.unstable, "unstable_items.json")
    config_path = result.out_dir / "resolved_config.json"
    resolved = dataclasses.asdict(redact_config(cfg))
    config_path.write_text(json.dumps(resolved, indent=2, default=str) + "\n")
    mlrun.log_artifacts([*paths, config_path])
    log_mlflow_views(mlrun, result)


def log_mlflow_views(mlrun: Any, result: RunResult) -> None:
    """What MLflow's GenAI views show, after the run's own record is logged: the dataset input,
    the prompt version in the registry, the judge (``tracking.register_judge``) and the
    evaluation dataset (``tracking.register_dataset``)."""
    from judgekit.tracking.datasets import log_dataset_input, register_evaluation_dataset
    from judgekit.tracking.registry import register_judge, register_run_prompt
    from judgekit.tracking.runs import dataset_digest

    cfg = result.config
    digest = dataset_digest(result.examples)
    log_dataset_input(mlrun, cfg, result.examples, digest)
    register_run_prompt(mlrun, cfg)
    if cfg.tracking.register_judge and not cfg.judge.is_panel:  # a panel is no one model
        register_judge(mlrun, cfg)
    if cfg.tracking.register_dataset:
        register_evaluation_dataset(mlrun, cfg, result.examples, digest)


def check_logged(result: RunResult, mlrun: Any) -> None:
    """A store that failed while the run was logged: the results are kept, the run exits 1."""
    if mlrun is None or mlrun.failure is None:
        return
    cfg = result.config
    rerun = (
        "rerun the same command once the store answers: the response cache makes it free"
        if cfg.cache.mode != "off"
        else "rerun the same command once the store answers (cache.mode=off: calls are paid again)"
    )
    from judgekit.tracking.store import display_uri, scrub

    why = scrub(mlrun.failure, cfg.tracking.uri)
    err = RunError(
        f"tracking.uri: logging to {display_uri(cfg.tracking.uri)} failed ({why}); "
        f"not logged: {', '.join(mlrun.not_logged)}; the results are in {result.out_dir}; {rerun}"
    )
    err.result = result  # type: ignore[attr-defined]  # the CLI prints the report first
    raise err
