"""Content-addressed response store: a rerun sends no call it already paid for.

A request's key is the sha256 of the canonical JSON of everything that determines its answer,
exactly what :meth:`judgekit.client.LiteLLMClient.request_params` returns (model, endpoint,
messages, sampling settings, response format, logprobs settings). The API key is never part of
it, and no request parameter is stored: a row holds the key, the model name, when it was written
and the answer (text, token counts, logprobs, the original latency).

Rows live in one SQLite file, ``responses.sqlite3`` under :func:`default_cache_dir` or
``cache.dir``, in WAL mode, and several processes (a Hydra multirun) can share one file. During a
run, answers are committed in small batches on the event loop's own thread: at the latest
``FLUSH_S`` (50 ms) after they arrive, or as soon as ``BATCH`` (64) are waiting, so a run killed
with ``kill -9`` keeps every answer that completed before the kill but those last milliseconds.
No thread is involved: handing each lookup and write to a thread and back cost a fast run about a
fifth of its speed in GIL hand-offs (``bench/bench_cache.py``). Lookups see answers still waiting
for their commit. WAL needs a local filesystem; do not put the cache on NFS.

Only successful calls are stored. An answer that later fails to parse *is* stored: the call
succeeded and was paid for, and the text is what the model said.

Modes (``cache.mode``): ``read_write`` looks up, calls on a miss and stores; ``read_only`` looks
up and calls on a miss but stores nothing; ``refresh`` never looks up, always calls and
overwrites; ``off`` passes every call through and never opens the database.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from judgekit.client import JudgeClient, JudgeResponse
from judgekit.errors import ConfigError
from judgekit.paths import default_cache_dir

__all__ = [
    "CACHE_MODES",
    "DB_NAME",
    "CacheStats",
    "CachingClient",
    "ResponseCache",
    "default_cache_dir",
    "request_key",
]

log = logging.getLogger("judgekit")

CACHE_MODES = ("read_write", "read_only", "refresh", "off")
BATCH = 64
"""Answers waiting for a commit that trigger one at once."""
FLUSH_S = 0.05
"""The longest an answer waits for its commit during a run."""
_INSERT = "INSERT OR REPLACE INTO responses (key, model, created_at, response) VALUES (?, ?, ?, ?)"
DB_NAME = "responses.sqlite3"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    created_at TEXT NOT NULL,
    response TEXT NOT NULL
)
"""
_STORED_FIELDS = ("text", "prompt_tokens", "completion_tokens", "logprobs", "latency_s")


def _canonical(value: Any) -> Any:
    """Integral floats become ints, so ``temperature: 0`` and ``0.0`` share a key."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    return value


def request_key(params: dict[str, Any]) -> str:
    """The cache key of one request: sha256 hex of its parameters as canonical JSON."""
    text = json.dumps(_canonical(params), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class CacheStats:
    """What a cache did in this process: lookups that hit or missed, and rows written."""

    hits: int = 0
    misses: int = 0
    writes: int = 0


class ResponseCache:
    """The SQLite store of successful judge answers, keyed by :func:`request_key`.

    The database is opened on first use (or by :meth:`open`), so a cache that is never used
    never creates a file. Safe to share between threads; each process opens its own connection.

    Args:
        directory: Where ``responses.sqlite3`` lives; ``None`` = :func:`default_cache_dir`.
        busy_timeout_s: How long a write waits for another process's write to finish.
    """

    def __init__(
        self, directory: str | os.PathLike[str] | None = None, *, busy_timeout_s: float = 30.0
    ) -> None:
        base = Path(directory).expanduser() if directory is not None else default_cache_dir()
        self.path = base / DB_NAME
        self.busy_timeout_s = busy_timeout_s
        self._conn: sqlite3.Connection | None = None
        self._pid = 0
        self._lock = threading.Lock()
        self._stats = CacheStats()
        self._pending: dict[str, tuple[JudgeResponse, str]] = {}
        """Answers waiting for their commit, by key (lookups see them)."""
        self._timer: asyncio.TimerHandle | None = None
        self._timer_loop: asyncio.AbstractEventLoop | None = None

    def open(self) -> ResponseCache:
        """Open (and create) the database now, so a bad ``cache.dir`` fails before any call."""
        with self._lock:
            self._connection()
        return self

    def _connection(self) -> sqlite3.Connection:
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        try:  # after a fork the parent's connection must not be used: open a new one
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path,
                timeout=self.busy_timeout_s,
                isolation_level=None,  # autocommit: every INSERT is its own committed transaction
                check_same_thread=False,
            )
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_s * 1000)}")
            journal = self._when_unlocked(conn, "PRAGMA journal_mode = WAL")[0]
            conn.execute("PRAGMA synchronous = NORMAL")
            self._when_unlocked(conn, _SCHEMA)
        except (OSError, sqlite3.Error) as err:
            raise ConfigError(
                f"cache.dir: cannot open the response cache {self.path} ({err}); "
                "set cache.dir to a writable local directory, or cache.mode=off"
            ) from err
        if str(journal).lower() != "wal":
            conn.close()
            raise ConfigError(
                f"cache.dir: {self.path.parent} does not support SQLite's WAL mode (journal mode "
                f"stays {journal!r}, e.g. on a network filesystem); set cache.dir to a local "
                "directory, or cache.mode=off"
            )
        self._conn, self._pid = conn, os.getpid()
        return conn

    def _when_unlocked(self, conn: sqlite3.Connection, sql: str) -> tuple[Any, ...]:
        """Run a setup statement, retrying while another process creates the same database.

        Switching a new file to WAL does not wait in SQLite's busy handler: when several
        processes open a new cache at once, all but one see "database is locked" for a moment.
        """
        deadline = time.monotonic() + self.busy_timeout_s
        while True:
            try:
                return tuple(conn.execute(sql).fetchone() or ())
            except sqlite3.OperationalError as err:
                if "locked" not in str(err) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def get(self, key: str) -> JudgeResponse | None:
        """The stored answer for ``key`` (marked ``cached``, ``attempts=0``), or None."""
        start = time.perf_counter()
        with self._lock:
            waiting = self._pending.get(key)
            if waiting is not None:
                stored: dict[str, Any] | None = _stored(waiting[0])
            else:
                row = (
                    self._connection()
                    .execute("SELECT response FROM responses WHERE key = ?", (key,))
                    .fetchone()
                )
                stored = _loads(row[0]) if row is not None else None
            if stored is None:
                self._stats.misses += 1
                return None
            self._stats.hits += 1
        return JudgeResponse(
            text=stored.get("text"),
            attempts=0,
            latency_s=time.perf_counter() - start,
            prompt_tokens=stored.get("prompt_tokens"),
            completion_tokens=stored.get("completion_tokens"),
            logprobs=stored.get("logprobs"),
            cached=True,
            extra={"original_latency_s": stored.get("latency_s")},
        )

    def put(self, key: str, response: JudgeResponse, model: str) -> bool:
        """Store (or overwrite) a successful answer; a failed call is not stored (False)."""
        if response.failure is not None:
            return False
        payload = json.dumps(_stored(response))
        created = datetime.now(UTC).isoformat(timespec="seconds")
        with self._lock:
            self._connection().execute(_INSERT, (key, model, created, payload))
            self._stats.writes += 1
        return True

    async def aget(self, key: str) -> JudgeResponse | None:
        """:meth:`get` (a primary-key read takes microseconds; WAL readers never wait)."""
        return self.get(key)

    async def aput(self, key: str, response: JudgeResponse, model: str) -> bool:
        """Queue a successful answer for the next batch commit (False: a failure, not stored)."""
        if response.failure is not None:
            return False
        with self._lock:
            self._pending[key] = (response, model)
            waiting = len(self._pending)
        loop = asyncio.get_running_loop()
        if waiting >= BATCH:
            self.flush()
        elif self._timer is None or self._timer_loop is not loop:  # a timer of an ended loop
            self._timer, self._timer_loop = loop.call_later(FLUSH_S, self.flush), loop
        return True

    def flush(self) -> None:
        """Commit every queued answer in one transaction (a failure is logged, never raised)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        with self._lock:
            if not self._pending:
                return
            queued, self._pending = self._pending, {}
            created = datetime.now(UTC).isoformat(timespec="seconds")
            rows = [
                (key, model, created, json.dumps(_stored(response)))
                for key, (response, model) in queued.items()
            ]
            conn = self._connection()
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(_INSERT, rows)
                conn.execute("COMMIT")
            except sqlite3.Error as err:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                log.warning("response cache: %d answers could not be stored (%s)", len(rows), err)
                return
            self._stats.writes += len(rows)

    def stats(self) -> dict[str, int]:
        """``{"hits": ..., "misses": ..., "writes": ...}`` counted in this process (queued
        answers are committed first)."""
        self.flush()
        with self._lock:
            return asdict(self._stats)

    def __len__(self) -> int:
        with self._lock:
            return self._connection().execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        """Commit the queued answers and close the database; the cache reopens if used again."""
        self.flush()
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None

    def __enter__(self) -> ResponseCache:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _stored(response: JudgeResponse) -> dict[str, Any]:
    return {name: getattr(response, name) for name in _STORED_FIELDS}


def _loads(payload: str) -> dict[str, Any] | None:
    """A stored answer; a row that is not a JSON object counts as a miss (and is overwritten)."""
    try:
        stored = json.loads(payload)
    except json.JSONDecodeError:
        return None
    return stored if isinstance(stored, dict) else None


class CachingClient:
    """A :class:`~judgekit.client.JudgeClient` that answers from a :class:`ResponseCache`.

    Args:
        inner: The client that makes the real call on a miss.
        cache: Where answers are looked up and stored.
        mode: One of ``CACHE_MODES`` (see the module docstring).
        params_for: ``inner.request_params``: the request parameters that are hashed.
    """

    def __init__(
        self,
        inner: JudgeClient,
        cache: ResponseCache,
        mode: str,
        params_for: Callable[[list[dict[str, str]]], dict[str, Any]],
    ) -> None:
        if mode not in CACHE_MODES:
            raise ConfigError(f"cache.mode: {mode!r} is not valid; use {', '.join(CACHE_MODES)}")
        self.inner = inner
        self.cache = cache
        self.mode = mode
        self.params_for = params_for

    async def complete(self, messages: list[dict[str, str]]) -> JudgeResponse:
        """The stored answer when there is one and the mode reads; else the inner call's."""
        if self.mode == "off":
            return await self.inner.complete(messages)
        params = self.params_for(messages)
        key = request_key(params)
        if self.mode in ("read_write", "read_only"):
            start = time.perf_counter()
            hit = await self.cache.aget(key)
            if hit is not None:
                hit.latency_s = time.perf_counter() - start
                return hit
        response = await self.inner.complete(messages)
        if self.mode in ("read_write", "refresh"):
            await self.cache.aput(key, response, str(params.get("model", "")))
        return response

    async def aclose(self) -> None:
        """Commit the queued answers; close the inner client's connections, if it holds any."""
        self.cache.flush()
        close = getattr(self.inner, "aclose", None)
        if close is not None:
            await close()
