"""Log a run to MLflow: params, ``<score>/<statistic>`` metrics, the results table, figures, tags.

Only the env var *name* of a key is ever in the config, so params never hold a secret. The
tracking URI is always set explicitly from ``tracking.uri``.
"""

from __future__ import annotations

import dataclasses
import math
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from judgekit.config import Config, TrackingConfig

__all__ = ["MlflowRun", "flatten_params", "git_commit", "mlflow_run", "run_tags", "store_lock"]

_MAX_PARAM_CHARS = 500


def flatten_params(cfg: Config) -> dict[str, str]:
    """The resolved config as flat ``a.b.c`` params; long values shortened, inline rows counted."""
    data = dataclasses.asdict(cfg)
    rows = data["dataset"].pop("rows", None)
    data["dataset"]["n_inline_rows"] = len(rows) if rows else 0
    flat: dict[str, str] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict) and value:
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), inner)
        else:
            text = str(value)
            flat[prefix] = (
                text if len(text) <= _MAX_PARAM_CHARS else text[: _MAX_PARAM_CHARS - 3] + "..."
            )

    walk("", data)
    return flat


def git_commit(cwd: Path | None = None) -> str | None:
    """The commit of the git checkout judgekit runs from, when there is one."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def run_tags(cfg: Config, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Tags that let runs be filtered and grouped in the MLflow UI."""
    tags = {
        "judgekit.judge": cfg.judge.name,
        "judgekit.judge_model": cfg.judge.model,
        "judgekit.prompt": cfg.prompt.name,
        "judgekit.score": cfg.score.name,
        "judgekit.dataset": cfg.dataset.name,
    }
    commit = git_commit(Path(__file__).resolve().parent)
    if commit:
        tags["mlflow.source.git.commit"] = commit
    tags.update(extra or {})
    return tags


def default_run_name(cfg: Config) -> str:
    """``<judge>-<prompt>-<score>-<dataset>``."""
    return f"{cfg.judge.name}-{cfg.prompt.name}-{cfg.score.name}-{cfg.dataset.name}"


class MlflowRun:
    """An open MLflow run that judgekit logs into through an explicit client."""

    def __init__(self, client: Any, run_id: str, experiment_id: str) -> None:
        self.client = client
        self.run_id = run_id
        self.experiment_id = experiment_id

    def log_params(self, params: dict[str, str]) -> None:
        """Log params in batches (MLflow takes at most 100 per call)."""
        from mlflow.entities import Param

        items = [Param(k, v) for k, v in params.items()]
        for start in range(0, len(items), 100):
            self.client.log_batch(self.run_id, params=items[start : start + 100])

    def log_metrics(self, metrics: dict[str, float], step: int = 0) -> None:
        """Log metrics in batches; NaN is kept as NaN (MLflow stores it), never turned into 0."""
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, step) for k, v in metrics.items() if v is not None]
        for start in range(0, len(items), 500):
            self.client.log_batch(self.run_id, metrics=items[start : start + 500])

    def log_artifacts(self, paths: list[Path], artifact_path: str | None = None) -> None:
        """Copy files into the run's artifact store."""
        for path in paths:
            self.client.log_artifact(self.run_id, str(path), artifact_path)

    def log_table(self, frame: pd.DataFrame, artifact_file: str) -> None:
        """Log a table so the MLflow UI shows it."""
        import mlflow

        safe = frame.copy()
        for column in safe.columns:
            if safe[column].dtype.name in {"Int64", "boolean"}:
                safe[column] = safe[column].astype(object).where(safe[column].notna(), None)
        mlflow.log_table(data=safe, artifact_file=artifact_file, run_id=self.run_id)

    def set_tags(self, tags: dict[str, str]) -> None:
        """Set several tags."""
        for key, value in tags.items():
            self.client.set_tag(self.run_id, key, value)


def _experiment_id(client: Any, name: str) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return str(experiment.experiment_id)
    try:
        return str(client.create_experiment(name))
    except Exception:  # another process of a multirun created it first
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return str(experiment.experiment_id)


@contextmanager
def store_lock(uri: str) -> Iterator[None]:
    """Hold an exclusive lock on ``<db>.lock`` next to a SQLite tracking store.

    MLflow creates a new SQLite store's tables on first use, without a lock of its own: two
    processes doing it at once (the jobs of a parallel sweep) fail with ``duplicate column name``
    or ``table ... already exists``. Other stores need no lock.
    """
    if not uri.startswith("sqlite:///"):
        yield
        return
    import fcntl

    path = Path(uri.removeprefix("sqlite:///"))
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{path}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def mlflow_run(
    tracking: TrackingConfig, run_name: str, tags: dict[str, str]
) -> Iterator[MlflowRun]:
    """Open a run; it ends FINISHED, or FAILED (and the error goes on) when the body raises."""
    import mlflow
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(tracking.uri)
    with store_lock(tracking.uri):  # the first client of a new SQLite store creates its tables
        client = MlflowClient(tracking_uri=tracking.uri)
        experiment_id = _experiment_id(client, tracking.experiment)
    created = client.create_run(experiment_id, run_name=run_name, tags=tags)
    run = MlflowRun(client, created.info.run_id, experiment_id)
    try:
        yield run
    except BaseException:
        client.set_terminated(run.run_id, status="FAILED")
        raise
    client.set_terminated(run.run_id, status="FINISHED")


def finite_or_nan(value: Any) -> float:
    """A metric value as float (None → NaN)."""
    if value is None:
        return math.nan
    return float(value)
