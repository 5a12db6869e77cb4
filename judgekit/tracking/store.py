"""Check an MLflow tracking store before a run uses it, and bound MLflow's HTTP retries.

MLflow's defaults retry an unreachable server for minutes (7 retries, backoff factor 2, 120 s
timeout: about 4 minutes at start, 10 at the end of a run) and then raise a traceback. judgekit
checks the store once at the start with a short limit (:func:`check_store`) and, for the rest of
the run, bounds the retries through MLflow's own environment variables
(:func:`bound_http_retries`); a value the user set is kept.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from urllib.parse import urlsplit

from judgekit.errors import ConfigError
from judgekit.secrets import redact_url

__all__ = [
    "HTTP_LIMITS",
    "bound_http_retries",
    "check_store",
    "display_uri",
    "first_line",
    "scrub",
]

HTTP_LIMITS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}
"""MLflow's HTTP settings while judgekit runs, unless set in the environment: a dead server
costs a few seconds per call instead of minutes."""
PROBE_TIMEOUT_S = (3.0, 5.0)
"""(connect, read) limit of the one request that checks a server at the start."""
START_SERVER = "mlflow server --host 127.0.0.1 --port 5000 --backend-store-uri sqlite:///mlflow.db"


def bound_http_retries() -> None:
    """Set MLflow's HTTP retry and timeout variables (those not already set) for this process."""
    for name, value in HTTP_LIMITS.items():
        os.environ.setdefault(name, value)


def display_uri(uri: str) -> str:
    """``uri`` with its credentials masked (safe to print or log): :func:`judgekit.secrets.redact_url`,
    the one redaction every printed or written URL goes through."""
    return redact_url(uri)


def scrub(text: str, uri: str) -> str:
    """``text`` with the password of ``uri`` (if any) replaced by ``***``."""
    password = urlsplit(uri).password
    return text.replace(password, "***") if password else text


def first_line(err: BaseException) -> str:
    """``Type: first line of the message`` of an exception, short enough for one line."""
    text = str(getattr(err, "message", None) or err).strip().splitlines()
    return f"{type(err).__name__}: {text[0][:300] if text else ''}".rstrip(": ")


def check_store(uri: str, key: str = "tracking.uri") -> None:
    """Raise :class:`ConfigError` when the store at ``uri`` cannot be used; costs ≤ ~8 s.

    A SQLite file must be an SQLite database; an ``http(s)`` server must answer at all (any HTTP
    status counts: authentication and the rest are MLflow's to report). Other stores are left to
    MLflow.
    """
    if uri.startswith("sqlite:///"):
        _check_sqlite(Path(uri.removeprefix("sqlite:///")), key)
    elif uri.startswith(("http://", "https://")):
        _check_server(uri, key)


def _check_sqlite(path: Path, key: str) -> None:
    if path.is_dir():
        raise ConfigError(f"{key}: {path} is a directory, not an SQLite file; use sqlite:///PATH")
    if not path.exists() or path.stat().st_size == 0:
        return  # MLflow creates a new store
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10) as db:
            db.execute("SELECT count(*) FROM sqlite_master").fetchall()
    except sqlite3.OperationalError as err:
        if "locked" in str(err):
            return  # busy, not broken: MLflow waits for it
        raise _corrupt(path, key, err) from None
    except sqlite3.DatabaseError as err:
        raise _corrupt(path, key, err) from None


def _corrupt(path: Path, key: str, err: Exception) -> ConfigError:
    return ConfigError(
        f"{key}: {path} is not a usable SQLite database ({err}); move it aside "
        f"(mv {path} {path}.broken) so judgekit starts a new store there, or set {key} "
        "to another store"
    )


def _check_server(uri: str, key: str) -> None:
    import requests

    probe = uri.rstrip("/") + "/api/2.0/mlflow/experiments/search?max_results=1"
    try:
        requests.get(probe, timeout=PROBE_TIMEOUT_S)
    except requests.exceptions.SSLError:
        return  # it answered; TLS settings (MLFLOW_TRACKING_INSECURE_TLS, ...) are MLflow's
    except requests.RequestException as err:
        raise ConfigError(
            f"{key}: no MLflow server answers at {display_uri(uri)} ({_reason(err)}); start one "
            f"with `{START_SERVER}` and set {key}=http://127.0.0.1:5000, or log to a local file "
            f"with {key}=sqlite:///mlflow.db"
        ) from None


def _reason(err: Exception) -> str:
    text = str(err)
    for known in ("Connection refused", "timed out", "Name or service not known"):
        if known in text:
            return known.lower()
    return type(err).__name__
