"""Rows done / total of a running job: in ``progress.json`` and as metrics of its MLflow run.

The pipeline calls the reporter after each judged request, from its event loop; the call only
stores the numbers. A background thread writes ``progress.json`` at most every 0.5 s and logs
``job/rows_done``, ``job/rows_total`` and ``job/fraction_done`` (step = rows done) to the job's
MLflow run at most every 2 s. Progress is best effort: a failure to log it never fails the job.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from judgekit.config.schema import TrackingConfig
from judgekit.jobs.store import JobStore

__all__ = ["ProgressReporter", "find_job_run", "mark_run_failed"]

log = logging.getLogger("judgekit")


class ProgressReporter:
    """A ``on_progress(done, total)`` callback that persists what it is told.

    Args:
        store: The job's directory.
        attempt: Which attempt of the job this is.
        job_id: The job's id (its MLflow run carries it as the tag ``judgekit.job_id``).
        tracking: Where the MLflow run is; None when the job is not tracked.
        interval_s: Least time between two writes of ``progress.json``.
        mlflow_interval_s: Least time between two progress logs to MLflow.
    """

    def __init__(
        self,
        store: JobStore,
        attempt: int,
        job_id: str,
        tracking: TrackingConfig | None,
        *,
        interval_s: float = 0.5,
        mlflow_interval_s: float = 2.0,
    ) -> None:
        self.store, self.attempt, self.job_id, self.tracking = store, attempt, job_id, tracking
        self.interval_s, self.mlflow_interval_s = interval_s, mlflow_interval_s
        self.run_id: str | None = None
        self._latest: tuple[int, int] | None = None
        self._written: tuple[tuple[int, int], str | None] | None = None
        self._logged: tuple[int, int] | None = None
        self._last_log = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="judgekit-progress", daemon=True)

    def __call__(self, done: int, total: int) -> None:
        with self._lock:
            self._latest = (done, total)

    def start(self, total: int) -> None:
        """Report ``0 / total`` now and start writing in the background."""
        self(0, total)
        self._flush()
        self._thread.start()

    def close(self) -> None:
        """Stop the background thread and write and log the latest numbers."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self._flush(final=True)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._flush()

    def _flush(self, final: bool = False) -> None:
        with self._lock:
            latest = self._latest
        if latest is None:
            return
        self._write(latest)
        due = time.monotonic() - self._last_log >= self.mlflow_interval_s
        if self.tracking is not None and latest != self._logged and (final or due):
            self._log(*latest)
            self._write(latest)  # with the run id, once it is known

    def _write(self, latest: tuple[int, int]) -> None:
        if (latest, self.run_id) != self._written:
            done, total = latest
            record = {"attempt": self.attempt, "done": done, "total": total}
            self.store.write_progress({**record, "mlflow_run_id": self.run_id})
            self._written = (latest, self.run_id)

    def _log(self, done: int, total: int) -> None:
        from mlflow.entities import Metric

        self._last_log = time.monotonic()
        try:
            client = _client(self.tracking.uri)  # type: ignore[union-attr]
            if self.run_id is None:
                self.run_id = find_job_run(client, self.tracking, self.job_id, self.attempt)  # type: ignore[arg-type]
                if self.run_id is None:
                    return
            stamp = int(time.time() * 1000)
            fraction = done / total if total else 1.0
            values = {"job/rows_done": done, "job/rows_total": total, "job/fraction_done": fraction}
            metrics = [Metric(k, float(v), stamp, done) for k, v in values.items()]
            client.log_batch(self.run_id, metrics=metrics)
            self._logged = (done, total)
        except Exception as err:  # noqa: BLE001 - progress must never fail the job
            log.warning("job progress: could not log to MLflow (%s); the run goes on", err)
            self.tracking = None


def _client(uri: str) -> Any:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def find_job_run(client: Any, tracking: TrackingConfig, job_id: str, attempt: int) -> str | None:
    """The id of the MLflow run of attempt ``attempt`` of job ``job_id``, if it exists yet."""
    experiment = client.get_experiment_by_name(tracking.experiment)
    if experiment is None:
        return None
    query = f"tags.`judgekit.job_id` = '{job_id}' and tags.`judgekit.job_attempt` = '{attempt}'"
    runs = client.search_runs([experiment.experiment_id], filter_string=query, max_results=1)
    return str(runs[0].info.run_id) if runs else None


def mark_run_failed(uri: str, run_id: str, reason: str) -> None:
    """End a run its killed process left RUNNING as FAILED, with the reason as a tag."""
    try:
        client = _client(uri)
        if client.get_run(run_id).info.status == "RUNNING":
            client.set_tag(run_id, "judgekit.failure", reason[:5000])
            client.set_terminated(run_id, status="FAILED")
    except Exception as err:  # noqa: BLE001 - the job's own state already says failed
        log.warning("could not mark MLflow run %s FAILED: %s", run_id, err)
