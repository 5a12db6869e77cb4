"""A submitted job, found again from any process by its id: status, wait, result, cancel."""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from judgekit.errors import ConfigError, RunError
from judgekit.jobs.executors import (
    make_executor,
    process_alive,
    process_start,
    signal_local_controller,
    signal_local_worker,
    slurm_state,
)
from judgekit.jobs.launch import launch
from judgekit.jobs.store import (
    TERMINAL_STATES,
    JobStore,
    config_from_dict,
    default_jobs_dir,
    now,
)

__all__ = ["Job", "JobStatus", "list_jobs"]

_SLURM_ALIVE = ("PENDING", "REQUEUED", "CONFIGURING", "RUNNING", "COMPLETING", "UNKNOWN")


@dataclass(frozen=True)
class JobStatus:
    """Where a job stands: its state, why, and how many rows are done."""

    job_id: str
    state: str
    """``pending`` (submitted, not started), ``running``, ``succeeded``, ``failed``, ``cancelled``."""
    detail: str
    """What the state means here: the failure's reason, the number of examples judged, ..."""
    done: int | None = None
    """Requests judged so far in the current attempt (None before the job reports any)."""
    total: int | None = None
    """Requests the current attempt will send."""
    attempt: int = 1
    """1 for the first submission; each resubmission adds one."""
    executor: str = "local"
    submitit_job_id: str | None = None
    mlflow_run_id: str | None = None
    job_dir: str = ""

    @property
    def finished(self) -> bool:
        """True once the job succeeded, failed or was cancelled."""
        return self.state in TERMINAL_STATES

    @property
    def progress(self) -> str:
        """``12/40 rows (30%)``, or empty before the job reports progress."""
        if self.done is None or not self.total:
            return ""
        return f"{self.done}/{self.total} rows ({self.done / self.total:.0%})"

    def __str__(self) -> str:
        parts = [self.job_id, self.state, self.progress, self.detail]
        return "  ".join(p for p in parts if p)


class Job:
    """A judge run handed to an executor; ``Job.load(job_id)`` finds it again from anywhere.

    The job directory holds everything: ``job.json`` (record and state), ``progress.json``,
    ``result/`` and submitit's folder. A job that is killed is reported failed, with the signal;
    :meth:`resubmit` runs it again, and the response cache answers every call already paid for.
    """

    def __init__(self, store: JobStore) -> None:
        self.store = store

    @classmethod
    def load(cls, job_id: str, jobs_dir: str | os.PathLike[str] | None = None) -> Job:
        """The job ``job_id`` in ``jobs_dir`` (default ``$JUDGEKIT_JOBS_DIR`` or ./judgekit-jobs)."""
        return cls(JobStore.find(job_id, jobs_dir))

    @property
    def job_id(self) -> str:
        return self.store.path.name

    @property
    def job_dir(self) -> Path:
        return self.store.path

    def __repr__(self) -> str:
        return f"Job({self.job_id!r}, dir={str(self.store.path)!r})"

    def status(self) -> JobStatus:
        """The job's state now; a job whose process is gone is recorded failed first."""
        record = self._observe()
        state, progress = record["state"], self.store.progress()
        if progress.get("attempt") != record["attempt"]:
            progress = {}
        return JobStatus(
            job_id=record["id"],
            state=state["state"],
            detail=state.get("detail", ""),
            done=progress.get("done"),
            total=progress.get("total"),
            attempt=record["attempt"],
            executor=record["executor"],
            submitit_job_id=record.get("submitit_job_id"),
            mlflow_run_id=state.get("mlflow_run_id") or progress.get("mlflow_run_id"),
            job_dir=str(self.store.path),
        )

    def wait(self, timeout: float | None = None, poll_s: float = 0.5) -> JobStatus:
        """Block until the job has finished and its results are complete; its final status.

        Raises:
            TimeoutError: ``timeout`` seconds passed first (the job goes on).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            status = self.status()
            if status.finished:
                return status
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"job {self.job_id} is still {status.state} after {timeout} s")
            time.sleep(poll_s)

    def result(self, timeout: float | None = None) -> Any:
        """The job's :class:`~judgekit.pipeline.RunResult` (waits for it, like ``evaluate``).

        Raises:
            RunError: the job failed or was cancelled (the message says why and how to resume).
            TimeoutError: ``timeout`` seconds passed before the job finished.
        """
        from judgekit.jobs.results import load_result

        status = self.wait(timeout)
        if status.state != "succeeded":
            raise RunError(
                f"job {self.job_id} {status.state}: {status.detail}; resubmit it with "
                f"`judgekit submit --resume {self.job_id}` (answers already paid for come "
                "from the response cache)"
            )
        record = self.store.record()
        return load_result(record["out_dir"], config_from_dict(record["config"]))

    def cancel(self) -> JobStatus:
        """Ask the job to stop; it ends ``cancelled`` (a finished job is left as it is)."""
        record = self.store.update(_request_cancel)
        if record["state"]["state"] not in TERMINAL_STATES:
            self._stop(record)
        return self.status()

    def resubmit(self, executor_options: dict[str, Any] | None = None) -> Job:
        """Run a failed or cancelled job again (same id, next attempt), resuming from the cache."""
        status = self.status()
        if not status.finished or status.state == "succeeded":
            raise ConfigError(
                f"job {self.job_id} is {status.state}; only a failed or cancelled job can be "
                "resubmitted"
                + ("" if status.finished else f" (cancel it: judgekit cancel {self.job_id})")
            )
        record = self.store.record()
        options = record["executor_options"] if executor_options is None else executor_options
        make_executor(record["executor"], self.store.submitit_dir, options)  # checks the options
        self.store.update(lambda r: _next_attempt(r, options))
        launch(self.store)
        return self

    def _observe(self) -> dict[str, Any]:
        """Read the record; if the job's process is gone without a report, record why."""
        alive, why = self._alive(self.store.record())
        record = self.store.record()  # read after the check: a job writes its end, then exits
        if alive is False and record["state"]["state"] not in TERMINAL_STATES:
            self.store.set_state(record["attempt"], "failed", why, finished=now())
            record = self.store.record()
        return record

    def _alive(self, record: dict[str, Any]) -> tuple[bool | None, str]:
        """Whether the job's process exists (None: cannot tell from here), and if not, why."""
        sid = record.get("submitit_job_id")
        if record["state"]["state"] in TERMINAL_STATES or sid is None:
            return None, ""
        if record["executor"] == "slurm":
            state = slurm_state(self.store.submitit_dir, sid)
            return state.split()[0] in _SLURM_ALIVE, f"slurm reports the job {state}"
        if record["host"] != socket.gethostname():
            return None, ""
        state = record["state"]
        supervisor = process_alive(state.get("pid"), state.get("pid_start"), state.get("host"))
        if process_start(int(sid)) is not None or supervisor is not False:
            return True, ""  # submitit's controller, or the job's own process, still runs
        started = state["state"] == "running"
        return False, "job vanished: " + (
            "its process ended without reporting how" if started else "it never started"
        ) + _last_log_line(self.store, sid)

    def _stop(self, record: dict[str, Any]) -> None:
        sid = record.get("submitit_job_id")
        if sid is None:
            return
        if record["executor"] == "slurm":
            import submitit

            submitit.SlurmJob(folder=self.store.submitit_dir / "%j", job_id=sid).cancel(check=False)
        else:
            signal_local_controller(sid)
            worker = record["state"].get("worker_pid")
            if worker is not None and record.get("host") == socket.gethostname():
                signal_local_worker(int(worker))


def _request_cancel(record: dict[str, Any]) -> None:
    if record["state"]["state"] not in TERMINAL_STATES:
        record["state"]["cancel_requested"] = True


def _next_attempt(record: dict[str, Any], options: dict[str, Any]) -> None:
    record["attempt"] += 1
    record["executor_options"] = options
    record["submitit_job_id"] = None
    record["host"] = socket.gethostname()
    record["state"] = {"state": "pending", "detail": "resubmitted", "updated": now()}


def _last_log_line(store: JobStore, sid: str) -> str:
    log = store.submitit_dir / sid / f"{sid}_0_log.err"
    lines = log.read_text(errors="replace").strip().splitlines() if log.is_file() else []
    return f"; last line of {log}: {lines[-1]}" if lines else ""


def list_jobs(jobs_dir: str | os.PathLike[str] | None = None) -> list[Job]:
    """Every job in ``jobs_dir``, oldest first."""
    base = Path(jobs_dir).expanduser() if jobs_dir is not None else default_jobs_dir()
    return [Job(JobStore(p.parent)) for p in sorted(base.glob("*/job.json"))]
