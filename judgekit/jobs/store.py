"""A job's directory: its record (``job.json``), its progress and its outputs.

    <jobs dir>/<job id>/
        job.json        id, executor and options, submitit job ids, the config snapshot (only the
                        NAME of the key's variable), the user's config directories with a sha256
                        of their files, where outputs and MLflow are, and the state
        progress.json   rows done / total of the current attempt, and its MLflow run id
        result/         the run's outputs (results.parquet, summary.json, figures, examples.jsonl)
        submitit/       submitit's own folder: pickles of the callable (only this directory's
                        path), logs, result pickles

Several processes write ``job.json`` (the submitter, the job, anyone who finds the job dead), so
every change is a read-modify-write under an exclusive lock on ``.lock``, written atomically.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import secrets
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

from judgekit.config.schema import Config
from judgekit.errors import ConfigError

__all__ = [
    "STATES",
    "TERMINAL_STATES",
    "JobStore",
    "config_from_dict",
    "config_to_dict",
    "default_jobs_dir",
    "new_job_id",
    "now",
]

STATES = ("pending", "running", "succeeded", "failed", "cancelled")
TERMINAL_STATES = frozenset({"succeeded", "failed", "cancelled"})


def default_jobs_dir() -> Path:
    """``$JUDGEKIT_JOBS_DIR``, else ``judgekit-jobs`` in the current directory."""
    explicit = os.environ.get("JUDGEKIT_JOBS_DIR")
    return Path(explicit).expanduser() if explicit else Path.cwd() / "judgekit-jobs"


def new_job_id() -> str:
    """A sortable, unique job id: ``YYYYmmdd-HHMMSS-<6 hex>``."""
    return f"{datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")


class JobStore:
    """Reads and writes one job directory; safe to use from several processes at once."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).resolve()

    @classmethod
    def find(cls, job_id: str, jobs_dir: str | os.PathLike[str] | None = None) -> JobStore:
        """The store of job ``job_id`` (or of the job directory ``job_id`` names)."""
        direct = Path(job_id).expanduser()
        if (direct / "job.json").is_file():
            return cls(direct)
        base = Path(jobs_dir).expanduser() if jobs_dir is not None else default_jobs_dir()
        if (base / job_id / "job.json").is_file():
            return cls(base / job_id)
        known = sorted(p.parent.name for p in base.glob("*/job.json"))[-5:]
        hint = f"recent jobs there: {', '.join(known)}" if known else "no jobs there"
        raise ConfigError(
            f"job {job_id!r} not found in {base} ({hint}); pass the jobs directory with "
            "--jobs-dir or JUDGEKIT_JOBS_DIR, or the job directory itself"
        )

    @property
    def result_dir(self) -> Path:
        return self.path / "result"

    @property
    def submitit_dir(self) -> Path:
        return self.path / "submitit"

    def record(self) -> dict[str, Any]:
        """The contents of ``job.json``."""
        return _read_json(self.path / "job.json")

    def create(self, record: dict[str, Any]) -> None:
        """Write a new job's record; the directory must not hold one yet."""
        self.path.mkdir(parents=True, exist_ok=True)
        if (self.path / "job.json").exists():
            raise ConfigError(f"{self.path}: a job with this id exists already")
        _write_json(self.path / "job.json", record)

    def update(self, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        """Apply ``change`` to the record under the job's lock; returns the new record."""
        with self._locked():
            record = self.record()
            change(record)
            _write_json(self.path / "job.json", record)
        return record

    def set_state(self, attempt: int, state: str, detail: str, **extra: Any) -> bool:
        """Move attempt ``attempt`` to ``state``; False (no change) if a newer attempt exists
        or the attempt already ended (the first report of an ending wins)."""
        changed = False

        def change(record: dict[str, Any]) -> None:
            nonlocal changed
            current = record["state"]
            if record["attempt"] != attempt or current["state"] in TERMINAL_STATES:
                return
            if state in TERMINAL_STATES and current.get("cancel_requested"):
                state_now, detail_now = "cancelled", "cancelled on request"
            else:
                state_now, detail_now = state, detail
            current.update(extra, state=state_now, detail=detail_now, updated=now())
            changed = True

        self.update(change)
        return changed

    def progress(self) -> dict[str, Any]:
        """The contents of ``progress.json`` (empty before the job reports any)."""
        path = self.path / "progress.json"
        return _read_json(path) if path.exists() else {}

    def write_progress(self, progress: dict[str, Any]) -> None:
        """Replace ``progress.json`` atomically."""
        _write_json(self.path / "progress.json", {**progress, "updated": now()})

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.path / ".lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ConfigError(f"{path}: cannot read the job file ({err})") from None
    return data


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Write to a temporary file and rename it, so a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=_jsonable, allow_nan=True) + "\n")
    tmp.replace(path)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars in inline rows
        return value.item()
    return str(value)


def config_to_dict(cfg: Config) -> dict[str, Any]:
    """The config as plain JSON data (it holds only the NAME of the key's variable)."""
    data: dict[str, Any] = json.loads(json.dumps(dataclasses.asdict(cfg), default=_jsonable))
    return data


def config_from_dict(data: dict[str, Any]) -> Config:
    """Restore a config saved by :func:`config_to_dict`, as it was when saved.

    Like unpickling, this sets the fields without running ``__post_init__`` again: the saved
    values were checked when the config was built, and some checks derive fields (a labelled
    score's minimum and maximum) that a second check would reject. Fields missing from the data
    (added to judgekit since) take their defaults.
    """
    restored: Config = _restore(Config, data)
    return restored


def _restore(kind: Any, value: Any) -> Any:
    if value is None:
        return None
    origin, args = get_origin(kind), get_args(kind)
    if origin in (Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return _restore(inner[0], value) if len(inner) == 1 else value
    if dataclasses.is_dataclass(kind) and isinstance(kind, type):
        return _restore_dataclass(kind, value)
    if origin is list and args:
        return [_restore(args[0], v) for v in value]
    if origin is dict and len(args) == 2:
        return {k: _restore(args[1], v) for k, v in value.items()}
    return value


def _restore_dataclass(cls: type, data: dict[str, Any]) -> Any:
    hints = get_type_hints(cls)
    obj: Any = object.__new__(cls)
    for spec in dataclasses.fields(cls):
        if spec.name in data:
            value = _restore(hints[spec.name], data[spec.name])
        elif spec.default is not dataclasses.MISSING:
            value = spec.default
        elif spec.default_factory is not dataclasses.MISSING:
            value = spec.default_factory()
        else:
            raise ConfigError(f"saved config: {cls.__name__}.{spec.name} is missing")
        object.__setattr__(obj, spec.name, value)
    return obj
