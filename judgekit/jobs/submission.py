"""Submit a judge run as a durable job: check it here, snapshot it, hand it to submitit."""

from __future__ import annotations

import json
import os
import shutil
import socket
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from judgekit.config.schema import (
    Config,
    DatasetConfig,
    FieldsConfig,
    JudgeConfig,
    PromptConfig,
    ScoreSchemaConfig,
)
from judgekit.errors import SecretError
from judgekit.jobs.executors import make_executor
from judgekit.jobs.handle import Job
from judgekit.jobs.launch import launch
from judgekit.jobs.store import JobStore, config_to_dict, default_jobs_dir, new_job_id, now

__all__ = ["durable_config", "prepare_tracking_store", "submit", "submit_config"]


def submit(
    judge: str | JudgeConfig,
    prompt: str | PromptConfig,
    score: str | ScoreSchemaConfig,
    dataset: str | Path | list[dict[str, Any]] | DatasetConfig,
    *,
    parallelism: int | None = None,
    fields: FieldsConfig | None = None,
    overrides: list[str] | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    tracking: bool = True,
    executor: str = "local",
    executor_options: dict[str, Any] | None = None,
    jobs_dir: str | os.PathLike[str] | None = None,
) -> Job:
    """Submit a judge run as a durable job: ``evaluate``'s arguments, plus where it runs.

    Args:
        judge, prompt, score, dataset, parallelism, fields, overrides: as for
            :func:`judgekit.evaluate`.
        out_dir: Where the run writes its outputs; default ``<job dir>/result``.
        tracking: Log the run to MLflow (``tracking.uri``); on by default for jobs.
        executor: ``local`` (a process on this machine) or ``slurm``.
        executor_options: ``timeout_min``, ``cpus_per_task``, ``mem_gb``, and for Slurm
            ``partition``, ``account``, ``qos``, ... (the names of ``hydra.launcher.*``).
        jobs_dir: Where job directories go; default ``$JUDGEKIT_JOBS_DIR`` or ./judgekit-jobs.

    Returns:
        The :class:`Job`; ``job.wait()``, ``job.result()``, or ``Job.load(job.job_id)`` later.
    """
    from judgekit.api import build_config

    cfg = build_config(
        judge, prompt, score, dataset, parallelism=parallelism, fields=fields, overrides=overrides
    )
    cfg = replace(cfg, tracking=replace(cfg.tracking, enabled=tracking))
    return submit_config(
        cfg,
        executor=executor,
        executor_options=executor_options,
        jobs_dir=jobs_dir,
        out_dir=out_dir,
    )


def submit_config(
    cfg: Config,
    *,
    executor: str = "local",
    executor_options: dict[str, Any] | None = None,
    jobs_dir: str | os.PathLike[str] | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    config_dirs: Sequence[str | os.PathLike[str]] = (),
) -> Job:
    """Check ``cfg`` here (data, templates, the key's variable), then submit it as a job.

    Setup errors are raised before anything is written or submitted. Relative paths are resolved
    against the current directory, where the job also runs. ``config_dirs`` (the user's config
    directories the config was composed from) are recorded with a hash of their files' content.
    """
    from judgekit.pipeline import prepare

    cwd = Path.cwd()
    cfg = durable_config(cfg, cwd)
    prepare(cfg)
    snapshot = config_to_dict(cfg)
    _refuse_secret_in({"config": snapshot, "options": executor_options}, cfg)
    store = JobStore(Path(jobs_dir or default_jobs_dir()) / new_job_id())
    try:
        make_executor(executor, store.submitit_dir, executor_options)  # checks the options
        if cfg.tracking.enabled:
            prepare_tracking_store(cfg.tracking.uri, cfg.tracking.experiment)
    except BaseException:
        shutil.rmtree(store.path, ignore_errors=True)  # submitit made the folder; the id is new
        raise
    store.create(
        {
            "id": store.path.name,
            "created": now(),
            "executor": executor,
            "executor_options": dict(executor_options or {}),
            "host": socket.gethostname(),
            "cwd": str(cwd),
            "out_dir": str(Path(out_dir).resolve()) if out_dir else str(store.result_dir),
            "tracking": {
                "uri": cfg.tracking.uri,
                "experiment": cfg.tracking.experiment,
                "enabled": cfg.tracking.enabled,
            },
            "key_env": cfg.judge.api_key_env,
            "attempt": 1,
            "attempts": [],  # the helper adds {attempt, submitit_job_id} for each submission
            "submitit_job_id": None,
            "state": {"state": "pending", "detail": "submitted", "updated": now()},
            "config_dirs": _config_dirs_record(config_dirs),
            "config": snapshot,
        }
    )
    launch(store)
    return Job(store)


def _config_dirs_record(dirs: Sequence[str | os.PathLike[str]]) -> list[dict[str, str]]:
    """Each user config directory and the sha256 of its files (paths and contents)."""
    from judgekit.config.userdirs import dirs_digest

    paths = [Path(d).resolve() for d in dirs]
    return [{"path": str(p), "sha256": dirs_digest([p])} for p in paths]


def durable_config(cfg: Config, cwd: Path) -> Config:
    """Pin what depends on where and when the job runs: an absolute SQLite tracking store and
    response cache, so every attempt (and every reader) uses the same ones."""
    from judgekit.judge.cache import default_cache_dir

    uri = cfg.tracking.uri
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        uri = f"sqlite:///{(cwd / uri.removeprefix('sqlite:///')).resolve()}"
    elif "://" not in uri and not uri.startswith("databricks"):
        uri = str((cwd / uri).resolve())
    cache = cfg.cache
    if cache.mode != "off":
        where = Path(cache.dir).expanduser() if cache.dir else default_cache_dir()
        cache = replace(cache, dir=str((cwd / where).resolve()))
    return replace(cfg, tracking=replace(cfg.tracking, uri=uri), cache=cache)


def _refuse_secret_in(written: dict[str, Any], cfg: Config) -> None:
    """The key's value must never reach the job directory (e.g. through judge.extra_params)."""
    name = cfg.judge.api_key_env
    value = os.environ.get(name or "")
    if name and value and len(value) >= 8 and value in json.dumps(written, default=str):
        raise SecretError(
            f"the value of ${name} appears in the config or the executor options (e.g. "
            f"judge.extra_params); give keys only through judge.api_key_env={name}, never as a "
            "value"
        )


def prepare_tracking_store(uri: str, experiment: str) -> None:
    """Create a new SQLite MLflow store and its experiment now, under a lock.

    MLflow creates a new SQLite store's tables on first use; jobs starting together on a new
    store would race to create them (``duplicate column name``). An existing store is left alone.
    """
    if not uri.startswith("sqlite:///") or Path(uri.removeprefix("sqlite:///")).exists():
        return
    import fcntl

    from mlflow.tracking import MlflowClient

    path = Path(uri.removeprefix("sqlite:///"))
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{path}.lock", "a") as lock:  # the same lock as judgekit.tracking.runs.store_lock
        fcntl.flock(lock, fcntl.LOCK_EX)
        client = MlflowClient(tracking_uri=uri)
        if client.get_experiment_by_name(experiment) is None:
            client.create_experiment(experiment)
