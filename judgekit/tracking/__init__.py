"""MLflow: runs with params, metrics, tables and artifacts (:mod:`judgekit.tracking.runs`), the store
check and retry bounds (:mod:`judgekit.tracking.store`), process tags and ghost runs
(:mod:`judgekit.tracking.process`)."""

from __future__ import annotations

from judgekit.tracking.runs import (
    DATASET_DIGEST_TAG,
    MlflowRun,
    config_fingerprint,
    dataset_digest,
    end_active_runs,
    flatten_params,
    git_commit,
    mlflow_run,
    run_tags,
    store_lock,
)

__all__ = [
    "DATASET_DIGEST_TAG",
    "MlflowRun",
    "config_fingerprint",
    "dataset_digest",
    "end_active_runs",
    "flatten_params",
    "git_commit",
    "mlflow_run",
    "run_tags",
    "store_lock",
]
