"""A finished run as ``judgekit estimate`` and ``judgekit alt-test`` read it: its results table, its
annotators' labels (``annotators.parquet``, when its examples carried them) and its scores, from
a run directory or from the artifacts of an MLflow run."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from judgekit.errors import ConfigError, JudgekitError
from judgekit.stats.human_scale import ANNOTATORS_FILE, ScoreInfo

__all__ = ["FinishedRun", "load_run", "log_summary"]

RESULTS, CONFIG = "results.parquet", "resolved_config.json"


@dataclass
class FinishedRun:
    """What the commands need of a finished run."""

    where: str
    """The directory or ``MLflow run <id>``, for messages."""
    results: pd.DataFrame
    scores: dict[str, ScoreInfo]
    annotators: pd.DataFrame | None
    run_id: str | None
    """The MLflow run id, when the run was logged."""
    experiment: str
    """The experiment the run was logged to (``judgekit`` when unknown)."""
    confidence: float
    """The run's ``stats.confidence``."""
    epsilon: float
    """The run's ``stats.alt_test_epsilon`` (0.2 for a run made before it existed)."""


def load_run(source: str, tracking_uri: str) -> FinishedRun:
    """The run at ``source``: a run directory, or an MLflow run id in ``tracking_uri``."""
    path = Path(source).expanduser()
    if path.is_dir():
        return _from_dir(path)
    if path.exists():
        raise ConfigError(f"RUN_ID_OR_DIR: {source} is a file; give a run directory or a run id")
    return _from_mlflow(source, tracking_uri)


def _from_dir(path: Path) -> FinishedRun:
    if not (path / RESULTS).is_file():
        raise ConfigError(
            f"RUN_ID_OR_DIR: {path} has no {RESULTS}; give the output directory of a finished "
            "judgekit run (hydra.run.dir) or its MLflow run id"
        )
    config = _config_of_dir(path)
    summary = path / "summary.json"
    run_id = json.loads(summary.read_text()).get("mlflow_run_id") if summary.is_file() else None
    annotators = path / ANNOTATORS_FILE
    return _finished(
        str(path),
        pd.read_parquet(path / RESULTS),
        config,
        pd.read_parquet(annotators) if annotators.is_file() else None,
        run_id,
    )


def _config_of_dir(path: Path) -> dict[str, Any]:
    """``resolved_config.json`` (written when the run is logged), else Hydra's ``config.yaml``."""
    if (path / CONFIG).is_file():
        return dict(json.loads((path / CONFIG).read_text()))
    hydra = path / ".hydra" / "config.yaml"
    if hydra.is_file():
        from omegaconf import OmegaConf

        loaded = OmegaConf.to_container(OmegaConf.load(hydra), resolve=False)
        return {str(k): v for k, v in loaded.items()} if isinstance(loaded, dict) else {}
    raise ConfigError(
        f"RUN_ID_OR_DIR: {path} has neither {CONFIG} nor .hydra/config.yaml, so its scores' "
        "kinds and scales are unknown; give the directory of a run made by the judgekit command"
    )


def _from_mlflow(run_id: str, uri: str) -> FinishedRun:
    from mlflow.tracking import MlflowClient

    from judgekit.tracking.store import bound_http_retries, check_store

    bound_http_retries()
    if uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///") :]).exists():
        raise ConfigError(
            f"RUN_ID_OR_DIR: {run_id!r} is not a directory, and there is no MLflow store at "
            f"{uri} to find it as a run id in; pass --tracking-uri"
        )
    check_store(uri, "--tracking-uri")
    client = MlflowClient(tracking_uri=uri)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            run = client.get_run(run_id)
            results = pd.read_parquet(client.download_artifacts(run_id, RESULTS, tmp))
            config = json.loads(Path(client.download_artifacts(run_id, CONFIG, tmp)).read_text())
        except Exception as err:  # MLflow raises several types for a missing run or artifact
            raise ConfigError(
                f"RUN_ID_OR_DIR: {run_id!r} is not a run directory, nor an MLflow run with "
                f"{RESULTS} and {CONFIG} in {uri} ({type(err).__name__})"
            ) from None
        names = {a.path for a in client.list_artifacts(run_id)}
        annotators = None
        if ANNOTATORS_FILE in names:
            annotators = pd.read_parquet(client.download_artifacts(run_id, ANNOTATORS_FILE, tmp))
    experiment = client.get_experiment(run.info.experiment_id).name
    found = _finished(f"MLflow run {run_id}", results, config, annotators, run_id)
    found.experiment = experiment
    return found


def _finished(
    where: str,
    results: pd.DataFrame,
    config: dict[str, Any],
    annotators: pd.DataFrame | None,
    run_id: str | None,
) -> FinishedRun:
    stats = config.get("stats") or {}
    tracking = config.get("tracking") or {}
    return FinishedRun(
        where,
        results,
        _scores(config, where),
        annotators,
        run_id,
        str(tracking.get("experiment") or "judgekit"),
        float(stats.get("confidence", 0.95)),
        float(stats.get("alt_test_epsilon", 0.2)),
    )


def _scores(config: dict[str, Any], where: str) -> dict[str, ScoreInfo]:
    specs = (config.get("score") or {}).get("scores") or []
    if not specs:
        raise JudgekitError(f"RUN_ID_OR_DIR: {where}: its config lists no score (score.scores)")
    out = {}
    for spec in specs:
        labels = spec.get("labels") or {}
        values = [float(v["value"]) for v in labels.values()] if labels else []
        low = min(values) if values else float(spec.get("minimum") or 0)
        high = max(values) if values else float(spec.get("maximum") or 0)
        out[str(spec["name"])] = ScoreInfo(
            str(spec["name"]), str(spec.get("kind", "pointwise")), bool(labels), low, high
        )
    return out


def log_summary(
    kind: str,
    run: FinishedRun,
    *,
    params: dict[str, str],
    metrics: dict[str, float],
    paths: list[Path],
    uri: str,
    experiment: str | None = None,
) -> str:
    """Log a command's figures as a summary run tagged ``judgekit.kind=<kind>`` (which
    ``judgekit compare`` leaves out) in ``experiment`` (default: the run's own); returns its id."""
    from judgekit.config.schema import TrackingConfig
    from judgekit.tracking.runs import mlflow_run

    tags = {"judgekit.kind": kind}
    if run.run_id:
        tags["judgekit.source_run"] = run.run_id
    name = f"{kind}-{run.run_id or Path(run.where).name}"
    tracking = TrackingConfig(uri=uri, experiment=experiment or run.experiment)
    with mlflow_run(tracking, name, tags, key="--tracking-uri") as summary:
        summary.log_params({"source": run.where, **params})
        summary.log_metrics(metrics)
        summary.log_artifacts(paths)
    return str(summary.run_id)
