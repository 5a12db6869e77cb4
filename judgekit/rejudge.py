"""Re-judge only the failed examples of an earlier run, reusing every answer that succeeded."""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from judgekit.config.schema import TrackingConfig
from judgekit.data.loading import Example
from judgekit.errors import ConfigError
from judgekit.judge.client import JudgeResponse

__all__ = ["Previous", "load_previous", "reuse"]


@dataclass
class Previous:
    """An earlier run's results table and its MLflow run id, when it had one."""

    table: pd.DataFrame
    run_id: str | None
    where: str


def _from_dir(path: Path) -> Previous:
    table = pd.read_parquet(path / "results.parquet")
    summary = path / "summary.json"
    run_id = json.loads(summary.read_text()).get("mlflow_run_id") if summary.exists() else None
    return Previous(table, run_id, str(path))


def _from_mlflow(run_id: str, tracking: TrackingConfig) -> Previous:
    from mlflow.tracking import MlflowClient

    from judgekit.tracking.store import bound_http_retries, check_store

    bound_http_retries()
    check_store(tracking.uri)  # an unreachable server: one line in seconds, not minutes
    client = MlflowClient(tracking_uri=tracking.uri)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            local = client.download_artifacts(run_id, "results.parquet", tmp)
            table = pd.read_parquet(local)
    except Exception as err:  # MLflow raises several types for a missing run or artifact
        raise ConfigError(
            f"runner.rejudge_from: {run_id!r} is not a run directory, a results.parquet, or an "
            f"MLflow run with results.parquet at {tracking.uri} ({type(err).__name__})"
        ) from None
    return Previous(table, run_id, f"MLflow run {run_id}")


def load_previous(source: str, tracking: TrackingConfig) -> Previous:
    """Find the earlier run: a directory, a results.parquet file, or an MLflow run id."""
    path = Path(source).expanduser()
    if path.is_dir() and (path / "results.parquet").exists():
        return _from_dir(path)
    if path.is_file():
        return (
            _from_dir(path.parent)
            if path.name == "results.parquet"
            else Previous(pd.read_parquet(path), None, str(path))
        )
    return _from_mlflow(source, tracking)


def _response_from(rows: pd.DataFrame) -> JudgeResponse:
    first = rows.iloc[0]
    tokens = [first["prompt_tokens"], first["completion_tokens"]]
    prompt_tokens, completion_tokens = (None if pd.isna(t) else int(t) for t in tokens)
    latency = float(first["latency_s"]) if not math.isnan(first["latency_s"]) else 0.0
    return JudgeResponse(
        text=first["raw_text"],
        attempts=0,
        latency_s=latency,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cached=True,
        extra={"reused_from": "rejudge"},
    )


def reuse(previous: Previous, examples: list[Example]) -> tuple[dict[int, JudgeResponse], int]:
    """Responses to reuse by example index (every score succeeded before), and how many failed.

    The earlier run must cover the same examples; otherwise re-judging "only the failures" has
    no meaning and the error says which ids differ.
    """
    by_id = dict(tuple(previous.table.groupby("example_id", sort=False)))
    missing = [e.id for e in examples if e.id not in by_id]
    if missing:
        raise ConfigError(
            f"runner.rejudge_from: {previous.where} has no results for example ids "
            f"{missing[:5]}{' ...' if len(missing) > 5 else ''}; re-judge with the same dataset "
            "and runner.limit_samples/seed as that run"
        )
    reused: dict[int, JudgeResponse] = {}
    for index, example in enumerate(examples):
        rows = by_id[example.id]
        if rows["failure_reason"].isna().all():
            reused[index] = _response_from(rows)
    return reused, len(examples) - len(reused)
