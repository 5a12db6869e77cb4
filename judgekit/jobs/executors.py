"""Where a job runs: submitit's local or Slurm executor, and how to tell whether it still runs.

Executor options use the names of ``hydra.launcher.*`` in hydra-submitit-launcher:
``timeout_min``, ``cpus_per_task``, ``mem_gb``, ``gpus_per_node``, ``nodes``, ``tasks_per_node``,
``name`` apply to both executors; everything else (``partition``, ``account``, ``qos``,
``constraint``, ``gres``, ``setup``, ``additional_parameters``, ...) is a Slurm option.
"""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path
from typing import Any

from judgekit.errors import ConfigError

__all__ = [
    "EXECUTORS",
    "make_executor",
    "process_alive",
    "process_start",
    "signal_local_controller",
    "slurm_state",
]

EXECUTORS = ("local", "slurm")
_GENERIC = ("timeout_min", "cpus_per_task", "mem_gb", "gpus_per_node", "nodes", "tasks_per_node")
_DEFAULTS: dict[str, dict[str, Any]] = {
    # submitit's own defaults would stop a local job after 2 minutes and a Slurm job after 5.
    "local": {"timeout_min": 24 * 60},
    "slurm": {"timeout_min": 60, "cpus_per_task": 2, "mem_gb": 4},
}


def make_executor(kind: str, folder: Path, options: dict[str, Any] | None = None) -> Any:
    """A configured ``submitit.AutoExecutor``; a bad executor or option is a ConfigError."""
    try:
        import submitit
    except ImportError:
        raise ConfigError(
            "executor: durable jobs run through submitit, which is not installed; "
            "pip install 'judgekit[launchers]'"
        ) from None

    if kind not in EXECUTORS:
        raise ConfigError(f"executor: {kind!r} is not valid; use {' or '.join(EXECUTORS)}")
    params: dict[str, Any] = {"name": "judgekit", **_DEFAULTS[kind]}
    for key, value in (options or {}).items():
        if key in (*_GENERIC, "name", "stderr_to_stdout"):
            params[key] = value
        elif kind == "slurm":
            params[key if key.startswith("slurm_") else f"slurm_{key}"] = value
        else:
            raise ConfigError(
                f"executor_options.{key}: not an option of the local executor; it takes "
                f"{', '.join(_GENERIC)} (Slurm takes partition, account, qos, ... as well)"
            )
    try:
        executor = submitit.AutoExecutor(folder=folder / "%j", cluster=kind)
    except RuntimeError:  # submitit finds no srun
        raise ConfigError(
            f"executor={kind}: no srun on PATH, so this is not a Slurm cluster; submit from a "
            "Slurm login node, or use executor=local"
        ) from None
    try:
        executor.update_parameters(**params)
    except (AssertionError, NameError, TypeError, ValueError) as err:
        raise ConfigError(f"executor_options: {str(err).splitlines()[0]}") from None
    return executor


def process_start(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot), or None when there is no such
    process or it is a zombie; with the pid, it names one process even after the pid is reused.

    Without ``/proc`` (not Linux) this only tells whether the pid exists (0 when it does).
    """
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return None if Path("/proc/self/stat").exists() else _exists(pid)
    except (OSError, IndexError):
        return None
    return None if fields[0] in ("Z", "X") else int(fields[19])


def _exists(pid: int) -> int | None:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return 0


def process_alive(pid: int | None, start: int | None, host: str | None) -> bool | None:
    """Whether the process still runs; None when it ran on another host (cannot be checked)."""
    if pid is None:
        return False
    if host is not None and host != socket.gethostname():
        return None
    now = process_start(pid)
    return now is not None and (start is None or now == start)


def _signal_if(pid: int, marker: bytes, sig: signal.Signals) -> bool:
    """Send ``sig`` to ``pid`` only if it is alive and its command line holds ``marker``, so a
    reused pid is never signalled; False when nothing was sent."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    if marker not in command or process_start(pid) is None:
        return False
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    return True


def signal_local_controller(submitit_id: str, sig: signal.Signals = signal.SIGINT) -> bool:
    """Signal the submitit controller of a local job (its job id is the controller's pid).

    SIGINT is how submitit cancels a local job: the controller interrupts its task, then kills it.
    """
    try:
        pid = int(submitit_id)
    except ValueError:
        return False
    return _signal_if(pid, b"submitit.local._local", sig)


def signal_local_worker(pid: int, sig: signal.Signals = signal.SIGTERM) -> bool:
    """Signal a job's worker process (``python -m judgekit.jobs.worker``) directly.

    Cancelling through submitit's controller relies on SIGINT, which a process started in the
    background by a non-interactive shell inherits as ignored (POSIX), and then the job would run
    on; the worker's own SIGTERM handler ends its run (MLflow run FAILED, local server stopped).
    """
    return _signal_if(pid, b"judgekit.jobs.worker", sig)


def slurm_state(folder: Path, submitit_id: str) -> str:
    """Slurm's state of the job (``PENDING``, ``RUNNING``, ``TIMEOUT``, ...; ``UNKNOWN`` when
    ``sacct`` cannot tell), through submitit."""
    import submitit

    try:
        job: Any = submitit.SlurmJob(folder=folder / "%j", job_id=submitit_id)
        return str(job.get_info(mode="force").get("State") or "UNKNOWN")
    except Exception:  # noqa: BLE001 - sacct missing or failing: the state is simply unknown
        return "UNKNOWN"
