"""What runs inside a job: a supervisor (the callable submitit pickles) and the worker it starts.

The supervisor is submitit's task. It starts the worker, ``python -m judgekit.jobs.worker DIR N``,
which runs the pipeline and reports rows done / total; the worker dies with the supervisor (Linux
parent-death signal). Because the supervisor outlives the worker, a worker killed by a signal
(``kill -9``, the out-of-memory killer) is reported as failed with that signal, and its MLflow run
is marked FAILED instead of staying RUNNING.

Nothing secret crosses a file: submitit pickles only the job directory's path; the worker reads
the config snapshot (which names the key's variable) and the key comes from its environment.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import traceback
from dataclasses import asdict
from pathlib import Path
from typing import Any

from judgekit.errors import JudgekitError, RunError
from judgekit.jobs.executors import process_start
from judgekit.jobs.progress import ProgressReporter, mark_run_failed
from judgekit.jobs.store import JobStore, config_from_dict, now

__all__ = ["JobTask", "main", "supervise"]

EXAMPLES_FILE = "examples.jsonl"
_SIGTERM_EXIT = 128 + signal.SIGTERM


class JobTask:
    """The callable submitit pickles: the job directory's path and nothing else."""

    def __init__(self, job_dir: str) -> None:
        self.job_dir = job_dir

    def __call__(self) -> dict[str, Any]:
        return supervise(Path(self.job_dir))

    def checkpoint(self) -> Any:
        """On a Slurm timeout or preemption, requeue: the rerun resumes from the response cache."""
        import submitit

        return submitit.helpers.DelayedSubmission(JobTask(self.job_dir))


def supervise(job_dir: Path) -> dict[str, Any]:
    """Run the job's current attempt in a worker process and record how it ended."""
    store = JobStore(job_dir)
    record = store.record()
    attempt = record["attempt"]
    if record["state"].get("cancel_requested"):
        store.set_state(attempt, "cancelled", "cancelled before it started")
        raise RunError(f"job {record['id']} was cancelled before it started")
    me = os.getpid()
    where = {"pid": me, "pid_start": process_start(me), "host": socket.gethostname()}
    if not store.set_state(attempt, "running", "starting", started=now(), **where):
        raise RunError(f"job {record['id']}: attempt {attempt} is over or superseded")
    worker = _start_worker(store, attempt, record["cwd"])
    try:
        code = worker.wait()
    except SystemExit:  # submitit requeues after a timeout or preemption: the state stays
        _stop(worker)
        raise
    except BaseException as err:  # cancelled (SIGINT from submitit), or timed out for good
        _stop(worker)
        _record_failure(store, attempt, f"interrupted: {type(err).__name__} {err}".strip())
        raise
    return _outcome(store, attempt, code)


def _start_worker(store: JobStore, attempt: int, cwd: str) -> subprocess.Popen[bytes]:
    from judgekit.local.server import kill_with_parent

    command = [sys.executable, "-m", "judgekit.jobs.worker", str(store.path), str(attempt)]
    worker = subprocess.Popen(command, cwd=cwd, preexec_fn=kill_with_parent())
    store.set_state(attempt, "running", "starting", worker_pid=worker.pid)
    return worker


def _stop(worker: subprocess.Popen[bytes]) -> None:
    """SIGTERM lets the worker end its MLflow run and stop a local server; then SIGKILL."""
    worker.terminate()
    try:
        worker.wait(timeout=0.8)  # submitit's local controller kills us after about 1 s
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()


def _outcome(store: JobStore, attempt: int, code: int) -> dict[str, Any]:
    state = store.record()["state"]
    if code == 0 and state["state"] == "succeeded":
        return {"job_id": store.path.name, "result": str(store.result_dir), **state}
    if code < 0:
        name = signal.Signals(-code).name
        reason = f"process killed (signal {-code}, {name})"
        if -code == signal.SIGKILL:
            reason += ": kill -9, or the kernel's out-of-memory killer"
    elif state["state"] in ("failed", "cancelled"):
        raise RunError(state["detail"])
    else:
        reason = f"the job's process exited with code {code} without a report; see {store.path}"
    _record_failure(store, attempt, reason)
    raise RunError(reason)


def _record_failure(store: JobStore, attempt: int, reason: str) -> None:
    store.set_state(attempt, "failed", reason, finished=now())
    run_id = store.progress().get("mlflow_run_id")
    tracking = store.record()["tracking"]
    if run_id and tracking.get("enabled"):
        mark_run_failed(tracking["uri"], run_id, reason)


def main(argv: list[str] | None = None) -> int:
    """The worker: ``python -m judgekit.jobs.worker JOB_DIR ATTEMPT``; returns the exit code."""
    job_dir, attempt_text = sys.argv[1:] if argv is None else argv
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    store, attempt = JobStore(job_dir), int(attempt_text)
    try:
        run_id, n = _run(store, attempt)
    except JudgekitError as err:
        print(f"judgekit: error: {err}", file=sys.stderr)
        store.set_state(attempt, "failed", str(err), finished=now())
        return err.exit_code
    except SystemExit as err:  # SIGTERM: a cancel, scancel, a time limit, a shutdown
        reason = "terminated by SIGTERM" if err.code == _SIGTERM_EXIT else f"exited ({err.code})"
        store.set_state(attempt, "failed", reason, finished=now())
        return err.code if isinstance(err.code, int) else 1
    except BaseException as err:  # noqa: BLE001 - recorded, then reported by the exit code
        traceback.print_exc()
        store.set_state(attempt, "failed", f"{type(err).__name__}: {err}", finished=now())
        return 1
    detail = f"{n} examples judged"
    store.set_state(attempt, "succeeded", detail, finished=now(), mlflow_run_id=run_id)
    return 0


def _exit_on_sigterm(signum: int, frame: object) -> None:
    sys.exit(_SIGTERM_EXIT)  # unwinds the run: its MLflow run ends FAILED, a local server stops


def _run(store: JobStore, attempt: int) -> tuple[str | None, int]:
    """Prepare, judge (reporting progress) and write the outputs; returns (MLflow run, examples)."""
    from judgekit import pipeline
    from judgekit.logs import quiet_third_party_loggers

    quiet_third_party_loggers()
    record = store.record()
    cfg = config_from_dict(record["config"])
    out_dir = Path(record["out_dir"])
    _set_aside(out_dir, attempt)
    prepared = pipeline.prepare(cfg)
    store.set_state(attempt, "running", "judging")
    tracking = cfg.tracking if cfg.tracking.enabled else None
    reporter = ProgressReporter(store, attempt, record["id"], tracking)
    reporter.start(len(prepared.examples))
    tags = {
        "judgekit.job_id": record["id"],
        "judgekit.job_attempt": str(attempt),
        "judgekit.job_dir": str(store.path),
    }
    try:
        result = pipeline.run(cfg, out_dir, prepared=prepared, tags=tags, on_progress=reporter)
    finally:
        reporter.close()
    write_examples(out_dir, result.examples)
    return result.run_id, len(result.examples)


def _set_aside(out_dir: Path, attempt: int) -> None:
    """Keep an earlier attempt's partial outputs as ``<out>.attempt-N`` instead of mixing them."""
    if out_dir.exists() and attempt > 1:
        out_dir.rename(out_dir.with_name(f"{out_dir.name}.attempt-{attempt - 1}"))


def write_examples(out_dir: Path, examples: list[Any]) -> Path:
    """The judged examples (id, item, human scores, group), so the job's RunResult can be rebuilt."""
    path = out_dir / EXAMPLES_FILE
    lines = (json.dumps(asdict(e), default=str) for e in examples)
    path.write_text("".join(line + "\n" for line in lines))
    return path


if __name__ == "__main__":
    sys.exit(main())
