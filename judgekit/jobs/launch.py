"""Hand a job's current attempt to submitit, from a short-lived helper in its own session.

``submit`` runs ``python -m judgekit.jobs.launch JOB_DIR`` and waits for it. The helper calls
submitit and exits; for a local job, submitit's controller process is then the helper's orphan:
it keeps none of the caller's pipes open (``judgekit submit | tee`` returns at once), is not the
caller's child (no zombie to reap), and is outside the caller's process group (Ctrl-C in the
terminal of a script that submitted it does not stop it). The helper records the submitit job id,
or why submission failed, in ``job.json``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from judgekit.errors import ConfigError
from judgekit.jobs.store import JobStore, now

__all__ = ["launch", "main"]


def launch(store: JobStore, timeout_s: float = 300.0) -> str:
    """Submit the job's current attempt; returns its submitit job id.

    Raises:
        ConfigError: submitit or the scheduler refused the job (the reason is in the message).
    """
    attempt = store.record()["attempt"]
    subprocess.run(
        [sys.executable, "-m", "judgekit.jobs.launch", str(store.path)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        timeout=timeout_s,
        check=False,
    )
    record = store.record()
    if record["attempt"] == attempt and record.get("submitit_job_id"):
        return str(record["submitit_job_id"])
    detail = record["state"].get("detail") or "the launcher stopped without a report"
    store.set_state(attempt, "failed", detail, finished=now())
    raise ConfigError(f"job {record['id']}: {detail}")


def main(argv: list[str] | None = None) -> int:
    """``python -m judgekit.jobs.launch JOB_DIR``: submit the attempt, record the id or the error."""
    from judgekit.jobs.executors import make_executor
    from judgekit.jobs.worker import JobTask

    [job_dir] = sys.argv[1:] if argv is None else argv
    store = JobStore(Path(job_dir))
    record = store.record()
    try:
        executor = make_executor(record["executor"], store.submitit_dir, record["executor_options"])
        job = executor.submit(JobTask(str(store.path)))
    except Exception as err:  # noqa: BLE001 - sbatch refusing the job, a full disk, ...
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        store.set_state(record["attempt"], "failed", f"submission failed: {reason}")
        return 1
    job_id = str(job.job_id)

    def record_id(record: dict[str, object]) -> None:
        record["submitit_job_id"] = job_id
        record["attempts"].append({"attempt": record["attempt"], "submitit_job_id": job_id})  # type: ignore[attr-defined]

    store.update(record_id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
