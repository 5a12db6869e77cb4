"""Which process owns an MLflow run, and what happens to runs whose process is gone.

A run is tagged with the host, process id and process start time that opened it. A run left
RUNNING by a process that no longer exists (``kill -9``, a crash, a node that went down) is a
*ghost*: the next run of the same configuration on the same host marks it KILLED and links to it
(``judgekit.resumed_from``). Runs this process has open are registered, so that a signal handler
can end them (:func:`end_active_runs`); when SIGTERM would otherwise kill the process outright
(a joblib worker, a plain script), :func:`sigterm_ends_runs` installs a handler that ends them as
KILLED first and then lets the signal do what it did before.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = [
    "HOST_TAG",
    "PID_TAG",
    "START_TAG",
    "active_runs",
    "end_active_runs",
    "end_ghosts",
    "is_active",
    "is_ghost",
    "process_tags",
    "sigterm_ends_runs",
]

log = logging.getLogger("judgekit")

HOST_TAG, PID_TAG, START_TAG = "judgekit.host", "judgekit.pid", "judgekit.pid_start"
FINGERPRINT_TAG = "judgekit.config_fingerprint"
RESUMED_TAG = "judgekit.resumed_from"
WORKER_WAIT_S = 10.0
"""How long :func:`end_active_runs` waits for each joblib worker to end its own runs."""

_active: dict[str, Any] = {}
"""Open runs of this process: run id → MLflow client."""
_lock = threading.Lock()


def _start_time(pid: int) -> str:
    """``<boot id>:<start tick>`` of process ``pid`` (Linux), '' when unknown: pid + this is unique."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""
    fields = stat.rsplit(")", 1)[-1].split()
    return f"{boot}:{fields[19]}" if len(fields) > 19 else ""


def process_tags() -> dict[str, str]:
    """Host, pid and start time of this process, as run tags."""
    pid = os.getpid()
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(pid), START_TAG: _start_time(pid)}


def is_ghost(tags: dict[str, str]) -> bool:
    """True when the process that opened a run on this host no longer exists."""
    pid_text = tags.get(PID_TAG, "")
    if tags.get(HOST_TAG) != socket.gethostname() or not pid_text.isdigit():
        return False  # another host's process cannot be checked from here
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # it exists, under another user
    started = tags.get(START_TAG, "")
    return bool(started) and _start_time(pid) not in ("", started)  # the pid was reused


def end_ghosts(client: Any, experiment_id: str, fingerprint: str) -> list[str]:
    """Mark KILLED the ghosts of this configuration; returns their ids, newest first."""
    found = client.search_runs(
        [experiment_id],
        f"attributes.status = 'RUNNING' and tags.`{FINGERPRINT_TAG}` = '{fingerprint}'",
        order_by=["attributes.start_time DESC"],
    )
    ghosts = [run for run in found if is_ghost(run.data.tags)]
    for run in ghosts:
        reason = (
            f"process {run.data.tags[PID_TAG]} on {run.data.tags[HOST_TAG]} ended without "
            "closing the run (kill -9 or a crash); marked KILLED by the next run of this config"
        )
        client.set_tag(run.info.run_id, "judgekit.end_reason", reason)
        client.set_terminated(run.info.run_id, status="KILLED")
    return [run.info.run_id for run in ghosts]


@contextmanager
def active_runs(client: Any, run_id: str) -> Iterator[None]:
    """Register ``run_id`` as open in this process for the duration of the block."""
    with _lock:
        _active[run_id] = client
    try:
        yield
    finally:
        with _lock:
            _active.pop(run_id, None)


def is_active(run_id: str) -> bool:
    """True while ``run_id`` is open in this process and no signal handler has ended it."""
    with _lock:
        return run_id in _active


def end_active_runs(status: str = "KILLED") -> list[str]:
    """End every run this process and its joblib workers have open; returns this process's ids.

    Each joblib (loky) worker of this process gets SIGTERM first and up to ``WORKER_WAIT_S`` to
    end its own runs and exit; then this process's runs are ended with ``status``. Safe to call
    from a signal handler: MLflow errors are logged, never raised.
    """
    _stop_joblib_workers()
    for hook in list(BEFORE_END):  # e.g. a trace writer: no new write competes with the marks
        try:
            hook()
        except Exception as err:  # noqa: BLE001 - stopping goes on
            log.warning("could not stop a background writer: %s", err)
    with _lock:
        owned = list(_active.items())
        _active.clear()
    for run_id, client in owned:
        _mark_ended(run_id, client, status)
    return [run_id for run_id, _ in owned]


BEFORE_END: set[Any] = set()
"""Callables run before :func:`end_active_runs` marks the runs (registered by trace writers)."""


def _mark_ended(run_id: str, client: Any, status: str, attempts: int = 5) -> None:
    """Tag and end one run; a store busy with another process's write (SQLite's lock) is tried
    again, briefly: a worker has ``WORKER_WAIT_S`` in all."""
    import time

    for attempt in range(attempts):
        try:
            client.set_tag(run_id, "judgekit.end_reason", "the process was stopped by a signal")
            client.set_terminated(run_id, status=status)
            return
        except Exception as err:  # noqa: BLE001 - the store may be gone; nothing else to do
            if attempt + 1 == attempts:
                log.warning("could not mark MLflow run %s %s: %s", run_id, status, err)
            else:
                time.sleep(0.5)


def _stop_joblib_workers() -> None:
    """SIGTERM this process's loky workers (they end their own runs) and wait for them."""
    import multiprocessing

    workers = [p for p in multiprocessing.active_children() if "loky" in type(p).__module__.lower()]
    for worker in workers:
        worker.terminate()
    for worker in workers:
        worker.join(WORKER_WAIT_S)


@contextmanager
def sigterm_ends_runs() -> Iterator[None]:
    """While the block runs, SIGTERM first ends this process's runs as KILLED.

    Installed only where SIGTERM would kill the process outright (no handler of its own: a
    joblib worker, a script using the API) and only from the main thread; the signal is then
    delivered again with its default action, so the process still dies of it.
    """
    main = threading.current_thread() is threading.main_thread()
    if not main or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return

    def on_term(signum: int, frame: object) -> None:
        end_active_runs("KILLED")
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        if signal.getsignal(signal.SIGTERM) is on_term:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
