"""Durable jobs: submit a judge run to a local process or Slurm, follow it from anywhere.

    import judgekit
    job = judgekit.submit("openai_compatible", "v1", "helpfulness", "val.jsonl",
                          overrides=["judge.model=openai/NAME", "judge.api_base=http://..."],
                          executor="local")              # or "slurm", executor_options={...}
    job.status()        # JobStatus: pending / running 12/40 rows / succeeded / failed: reason
    job.wait(timeout=600).state
    job.result()        # the RunResult evaluate() returns
    judgekit.Job.load(job.job_id).status()               # from any other process

From a shell: ``judgekit submit OVERRIDES``, ``judgekit status [ID]``, ``judgekit result ID``,
``judgekit cancel ID``, ``judgekit submit --resume ID``. Jobs run through submitit; see
:mod:`judgekit.jobs.store` for what a job directory holds and :mod:`judgekit.jobs.worker` for
what runs inside a job.
"""

from __future__ import annotations

from judgekit.jobs.handle import Job, JobStatus, list_jobs
from judgekit.jobs.results import load_result
from judgekit.jobs.store import STATES
from judgekit.jobs.submission import submit, submit_config

__all__ = ["STATES", "Job", "JobStatus", "list_jobs", "load_result", "submit", "submit_config"]
