"""Rebuild a :class:`~judgekit.pipeline.RunResult` from a run's output directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from judgekit.config.schema import Config
from judgekit.errors import ConfigError
from judgekit.jobs.store import config_from_dict

__all__ = ["load_result"]


def load_result(directory: str | Path, config: Config | None = None) -> Any:
    """The RunResult a run wrote to ``directory`` (results.parquet, summary.json, examples).

    Args:
        directory: A job's ``result/`` or any run's output directory.
        config: The run's config; by default read from ``resolved_config.json`` there.

    Returns:
        The same :class:`~judgekit.pipeline.RunResult` the run returned. When the directory has no
        ``examples.jsonl`` (a CLI run), the examples are loaded again from the dataset.
    """
    import pandas as pd

    from judgekit.pipeline import RunResult
    from judgekit.stats.report import AgreementReport

    path = Path(directory).expanduser()
    for name in ("results.parquet", "summary.json"):
        if not (path / name).is_file():
            raise ConfigError(f"{path}: no {name}; this is not the output directory of a run")
    summary = json.loads((path / "summary.json").read_text())
    if config is None and not (path / "resolved_config.json").is_file():
        raise ConfigError(f"{path}: no resolved_config.json (an untracked run); pass its config")
    cfg = config or config_from_dict(json.loads((path / "resolved_config.json").read_text()))
    return RunResult(
        config=cfg,
        examples=_examples(path, cfg),
        results=pd.read_parquet(path / "results.parquet"),
        agreement=AgreementReport.from_flat(summary.get("agreement", {})),
        aggregate=summary.get("aggregate", {}),
        failures=summary.get("failures", {}),
        out_dir=path,
        run_id=summary.get("mlflow_run_id"),
        outputs=summary.get("outputs", {}),
        cache_stats=summary.get("cache", {}),
    )


def _examples(path: Path, cfg: Config) -> list[Any]:
    from judgekit.data.loading import Example
    from judgekit.jobs.worker import EXAMPLES_FILE

    saved = path / EXAMPLES_FILE
    if not saved.is_file():
        from judgekit.pipeline import prepare

        return prepare(cfg, require_key=False).examples
    lines = saved.read_text().splitlines()
    return [Example(**json.loads(line)) for line in lines if line.strip()]
