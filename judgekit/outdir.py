"""The run directory check: outputs can be written there, and no other run's results are in it.

Both the CLI (before Hydra creates the directory) and :func:`judgekit.pipeline.run` (before the
first judge call) use it, so a directory that cannot hold the results costs no paid call, and a
run never replaces another run's ``results.parquet`` or ``summary.json``. Light on imports: the
CLI calls it at start.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from judgekit.errors import ConfigError

__all__ = ["RESULT_FILES", "check_out_dir", "check_sweep_dir", "unwritable"]

RESULT_FILES = ("results.parquet", "summary.json")
"""Files that mark a directory as holding a run's results."""


def unwritable(path: Path) -> str | None:
    """Why ``path`` (existing or not) cannot be created and written, or None when it can.

    Tries for real, with a probe directory created and removed in the deepest existing ancestor:
    permission bits alone say nothing for root, a read-only filesystem or ``/proc``.
    """
    path = Path(path).expanduser().absolute()
    existing = next(p for p in (path, *path.parents) if os.path.lexists(p))
    if not existing.is_dir():
        return f"{existing} is not a directory"
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".judgekit-write-check-", dir=existing))
    except OSError as err:
        return f"cannot create files in {existing}: {err.strerror or err}"
    return None


def check_out_dir(path: Path, key: str) -> None:
    """Raise a :class:`ConfigError` naming ``key`` when ``path`` cannot take a run's outputs."""
    problem = unwritable(path)
    if problem is not None:
        raise ConfigError(
            f"{key}: the output directory {path} cannot be written ({problem}); "
            f"set {key} to a writable directory"
        )
    found = [name for name in RESULT_FILES if (Path(path) / name).exists()]
    if found:
        raise ConfigError(
            f"{key}: {path} already holds another run's results ({', '.join(found)}); "
            f"set {key} to a new directory (or leave it unset: each run gets its own)"
        )


def check_sweep_dir(path: Path, key: str) -> None:
    """Like :func:`check_out_dir` for a ``-m`` sweep: its directory holds no earlier sweep."""
    problem = unwritable(path)
    if problem is not None:
        raise ConfigError(
            f"{key}: the sweep directory {path} cannot be written ({problem}); "
            f"set {key} to a writable directory"
        )
    if (Path(path) / "multirun.yaml").exists():
        raise ConfigError(
            f"{key}: {path} already holds another sweep (multirun.yaml); set {key} to a new "
            "directory (or leave it unset: each sweep gets its own)"
        )
