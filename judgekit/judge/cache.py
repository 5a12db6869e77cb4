"""Content-addressed response store: a rerun sends no call it already paid for.

A request's key is the sha256 of the canonical JSON of everything that determines its answer,
exactly what :meth:`judgekit.judge.client.LiteLLMClient.request_params` returns (model, endpoint,
messages, sampling settings, response format, logprobs settings; for draw ``s`` > 0 of
``runner.samples`` also ``judgekit_sample: s``, so each draw is its own entry while draw 0 keeps
the key of a run without repeats). The API key is never part of
it, and no request parameter is stored: a row holds the key, the model name, when it was written
and the answer (text, token counts, logprobs, the original latency).

Rows live in one SQLite file, ``responses.sqlite3`` under :func:`default_cache_dir` or
``cache.dir``, in WAL mode, and several processes (a Hydra multirun, two shells) can share one
file. WAL needs a local filesystem; do not put the cache on NFS.

**Commits (resume after kill -9).** A call's answer is committed before the worker that made the
call sends its next request, so after a ``kill -9`` the rerun sends again only the requests that
were in flight, at most ``runner.parallelism``, whatever the request rate. Commits are grouped,
never delayed: an answer is queued and committed at the next turn of the event loop, together
with everything else queued in that turn (other workers' answers, and the in-flight mark that
the same worker's next request takes before it is sent: one transaction for both). A slow paid
endpoint thus gets one commit per answer, a fast one a transaction per turn of the loop. No
thread is involved: handing each lookup and write to a thread and back cost a fast run about a
fifth of its speed in GIL hand-offs (``bench/bench_cache.py``). Lookups see answers queued for
the commit. ``synchronous=NORMAL``: a committed answer survives the process being killed (not a
power cut).

**In-flight marks (processes sharing a cache).** Before a ``read_write`` call on a miss, the
process marks the key as in flight: a row of the ``inflight`` table with its host, pid, a
per-process token and a lease (the call's whole time budget, retries included), committed with
the same group commits. Another process that finds a live mark waits for the answer instead of
paying again: it polls the file (every ``POLL_S``, growing to ``POLL_MAX_S``), and calls itself
when the mark is gone without an answer (the owner's call failed), when the owner is dead (same
host, pid no longer running), when the lease has run out, and at the latest after its own call
budget. A mark is removed with its answer's commit, when the call fails, and at :meth:`close`.
Inside one process nothing waits: identical requests in flight together are each sent.

Only successful calls are stored. An answer that later fails to parse *is* stored: the call
succeeded and was paid for, and the text is what the model said.

Modes (``cache.mode``): ``read_write`` looks up, marks, calls on a miss and stores;
``read_only`` opens the file read-only (SQLite ``mode=ro``; with ``immutable=1`` when its folder
is not writable, e.g. a read-only mount, where SQLite could not create its ``-shm`` index), looks
up and calls on a miss, but writes, marks and waits for nothing; a missing file is an empty cache
(a warning). ``refresh`` never looks up, always calls and overwrites; ``off`` passes every call
through and never opens the database.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import secrets
import socket
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from judgekit.errors import ConfigError
from judgekit.judge.client import JudgeClient, JudgeResponse, complete_draw, with_sample
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
POLL_S = 0.05
"""First wait between two looks at another process's call in flight (seconds)."""
POLL_MAX_S = 1.0
"""The longest wait between two looks (the waits grow by half each time)."""
DEFAULT_LEASE_S = 600.0
"""How long a mark holds when the caller gives no call budget."""
DB_NAME = "responses.sqlite3"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    created_at TEXT NOT NULL,
    response TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS inflight (
    key TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    token TEXT NOT NULL,
    lease_until REAL NOT NULL
) WITHOUT ROWID;
"""
_INSERT = "INSERT OR REPLACE INTO responses (key, model, created_at, response) VALUES (?, ?, ?, ?)"
_MARK = (
    "INSERT OR REPLACE INTO inflight (key, host, pid, token, lease_until) VALUES (?, ?, ?, ?, ?)"
)
_UNMARK = "DELETE FROM inflight WHERE key = ? AND host = ? AND pid = ? AND token = ?"
_MARK_OF = "SELECT host, pid, token, lease_until FROM inflight WHERE key = ?"
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


def _process_alive(pid: int) -> bool:
    """Whether ``pid`` runs on this machine (a zombie, killed but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


@dataclass(frozen=True)
class Mark:
    """Who has a request in flight: one process (host, pid, token), until ``lease_until``."""

    host: str
    pid: int
    token: str
    lease_until: float = 0.0

    def same_process(self, other: Mark) -> bool:
        """Whether both name one process (the token tells a reused pid apart)."""
        return (self.host, self.pid, self.token) == (other.host, other.pid, other.token)

    def live(self, me: Mark, now: float) -> bool:
        """Whether the owner may still answer: lease not run out, process not gone."""
        if self.lease_until <= now:
            return False
        if self.host != me.host:
            return True  # another machine: only the lease tells
        if self.pid == me.pid:
            return self.token == me.token  # an earlier process that had our pid
        return _process_alive(self.pid)


@dataclass
class Bid:
    """One request's claim to be the process that calls; decided by the next commit."""

    key: str
    lease_s: float
    force: bool = False
    answered: bool = False
    """The answer was stored meanwhile: read it instead of calling."""
    holder: Mark | None = None
    """Another process's live mark: wait for its answer. None (and not answered): ours to call."""


def _dir_writable(directory: Path) -> bool:
    return os.access(directory, os.W_OK)


class ResponseCache:
    """The SQLite store of successful judge answers, keyed by :func:`request_key`.

    The database is opened on first use (or by :meth:`open`), so a cache that is never used
    never creates a file. Safe to share between threads; each process opens its own connection.

    Args:
        directory: Where ``responses.sqlite3`` lives; ``None`` = :func:`default_cache_dir`.
        busy_timeout_s: How long a write waits for another process's write to finish.
        read_only: Open the file read-only: no write, no mark, no file created.
        writable: Whether a folder is writable (``os.access``); a seam for tests, since root
            passes that check on a ``chmod 0555`` folder.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        *,
        busy_timeout_s: float = 30.0,
        read_only: bool = False,
        writable: Callable[[Path], bool] = _dir_writable,
    ) -> None:
        base = Path(directory).expanduser() if directory is not None else default_cache_dir()
        self.path = base / DB_NAME
        self.busy_timeout_s = busy_timeout_s
        self.read_only = read_only
        self._writable = writable
        self._conn: sqlite3.Connection | None = None
        self._pid = 0
        self._absent = False
        """Read-only and there is no file: every lookup misses."""
        self._me = Mark("", 0, "")
        self._lock = threading.Lock()
        self._stats = CacheStats()
        self._pending: dict[str, tuple[JudgeResponse, str]] = {}
        """Answers waiting for their commit, by key (lookups see them)."""
        self._bids: list[Bid] = []
        self._releases: set[str] = set()
        """Keys whose call failed: their marks go at the next commit."""
        self._commits = 0
        """How many commits have taken the queue (a worker's own commit may be done by another)."""
        self._flush_scheduled = False

    def open(self) -> ResponseCache:
        """Open (and create) the database now, so a bad ``cache.dir`` fails before any call."""
        with self._lock:
            self._connection()
        return self

    def _connection(self) -> sqlite3.Connection | None:
        if self._pid == os.getpid() and (self._conn is not None or self._absent):
            return self._conn
        # First use, or after a fork: the parent's connection must not be used.
        self._conn = self._open_read_only() if self.read_only else self._open_read_write()
        self._pid = os.getpid()
        self._me = Mark(socket.gethostname(), self._pid, secrets.token_hex(8))
        return self._conn

    def _open_read_write(self) -> sqlite3.Connection:
        try:
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
            for statement in _SCHEMA.split(";")[:-1]:
                self._when_unlocked(conn, statement)
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
        return conn

    def _open_read_only(self) -> sqlite3.Connection | None:
        """The file opened read-only, or None when there is none (nothing is created)."""
        if not self.path.is_file():
            log.warning(
                "response cache: no cache at %s; cache.mode=read_only sends every call", self.path
            )
            self._absent = True
            return None
        # SQLite reads a WAL file through its -shm index, which it cannot create in a read-only
        # folder: there only ``immutable=1`` opens it (what is committed and checkpointed).
        immutable = "" if self._writable(self.path.parent) else "&immutable=1"
        uri = f"{self.path.resolve().as_uri()}?mode=ro{immutable}"
        try:
            conn = sqlite3.connect(
                uri,
                uri=True,
                timeout=self.busy_timeout_s,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.execute("SELECT COUNT(*) FROM responses WHERE key = ''").fetchone()
        except sqlite3.Error as err:
            raise ConfigError(
                f"cache.dir: cannot read the response cache {self.path} ({err}); "
                "set cache.dir to a judgekit cache directory, or cache.mode=off"
            ) from err
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

    def _writer(self) -> sqlite3.Connection:
        if self.read_only:
            raise ConfigError(f"response cache {self.path}: opened read-only, cannot write")
        conn = self._connection()
        assert conn is not None  # only a read-only cache may have no file
        return conn

    def get(self, key: str, *, count_miss: bool = True) -> JudgeResponse | None:
        """The stored answer for ``key`` (marked ``cached``, ``attempts=0``), or None.

        ``count_miss=False``: a look while waiting for another process's answer, not a lookup.
        """
        start = time.perf_counter()
        with self._lock:
            stored = self._stored_for(key)
            if stored is None:
                self._stats.misses += count_miss
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

    def _stored_for(self, key: str) -> dict[str, Any] | None:
        waiting = self._pending.get(key)
        if waiting is not None:
            return _stored(waiting[0])
        conn = self._connection()
        if conn is None:
            return None
        row = conn.execute("SELECT response FROM responses WHERE key = ?", (key,)).fetchone()
        return _loads(row[0]) if row is not None else None

    def put(self, key: str, response: JudgeResponse, model: str) -> bool:
        """Store (or overwrite) a successful answer now; a failed call is not stored (False)."""
        if response.failure is not None:
            return False
        payload = json.dumps(_stored(response))
        created = datetime.now(UTC).isoformat(timespec="seconds")
        with self._lock:
            self._writer().execute(_INSERT, (key, model, created, payload))
            self._stats.writes += 1
        return True

    async def aget(self, key: str) -> JudgeResponse | None:
        """:meth:`get` (a primary-key read takes microseconds; WAL readers never wait)."""
        return self.get(key)

    async def aput(
        self, key: str, response: JudgeResponse, model: str, *, wait: bool = True
    ) -> bool:
        """Store a successful answer and remove this process's mark on ``key`` (False: a
        failure, not stored).

        ``wait``: return once committed. Else the commit happens at the next turn of the event
        loop, or with the next :meth:`aclaim` of this loop turn, which a worker makes before
        it sends its next request: one transaction then serves both.
        """
        if response.failure is not None:
            return False
        with self._lock:
            self._writer()
            self._pending[key] = (response, model)
        await self._commit_queued(wait)
        return True

    async def arelease(self, key: str, *, wait: bool = True) -> None:
        """Remove this process's mark on ``key`` (its call failed): another may call now."""
        with self._lock:
            self._writer()
            self._releases.add(key)
        await self._commit_queued(wait)

    async def aclaim(self, key: str, lease_s: float, *, force: bool = False) -> Bid:
        """Mark ``key`` as in flight for this process unless another live process has it.

        Returns once committed: ``bid.holder`` names the other process to wait for, else
        ``bid.answered`` says the answer was stored meanwhile, else the call is ours.
        ``force``: take the mark over whoever holds it (the wait has lasted long enough).
        """
        bid = Bid(key, lease_s, force)
        with self._lock:
            self._writer()
            self._bids.append(bid)
        await self._group_commit()
        return bid

    async def _group_commit(self) -> None:
        """Commit what was queued, together with whatever other workers queue in this turn."""
        seen = self._commits
        await asyncio.sleep(0)
        if self._commits == seen:
            self.flush()

    async def _commit_queued(self, wait: bool) -> None:
        if wait:
            await self._group_commit()
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def holder(self, key: str) -> Mark | None:
        """The live mark of another process on ``key``, or None (none, ours, dead, run out)."""
        with self._lock:
            conn = self._connection()
            row = conn.execute(_MARK_OF, (key,)).fetchone() if conn is not None else None
            if row is None:
                return None
            mark = Mark(*row)
            if mark.same_process(self._me) or not mark.live(self._me, time.time()):
                return None
            return mark

    def flush(self) -> None:
        """Commit every queued answer, mark and release in one transaction.

        A failure is logged, never raised: the answers are not stored, and the bids count as
        ours (calling again is better than losing the row).
        """
        with self._lock:
            self._flush_scheduled = False  # also when its loop ended before the callback ran
            if not (self._pending or self._bids or self._releases):
                return
            answers, bids, releases = self._pending, self._bids, self._releases
            self._pending, self._bids, self._releases = {}, [], set()
            self._commits += 1
            try:
                self._commit(answers, bids, releases)
            except sqlite3.Error as err:
                for bid in bids:
                    bid.answered, bid.holder = False, None
                log.warning(
                    "response cache: %d answers could not be stored (%s)", len(answers), err
                )
                return
            self._stats.writes += len(answers)

    def _commit(
        self, answers: dict[str, tuple[JudgeResponse, str]], bids: list[Bid], releases: set[str]
    ) -> None:
        conn = self._writer()
        created = datetime.now(UTC).isoformat(timespec="seconds")
        rows = [
            (key, model, created, json.dumps(_stored(response)))
            for key, (response, model) in answers.items()
        ]
        me = (self._me.host, self._me.pid, self._me.token)
        try:
            conn.execute("BEGIN IMMEDIATE")
            for bid in bids:
                self._decide(conn, bid, answers)
            conn.executemany(_INSERT, rows)
            conn.executemany(_UNMARK, [(key, *me) for key in [*answers, *releases]])
            conn.execute("COMMIT")
        except sqlite3.Error:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _decide(self, conn: sqlite3.Connection, bid: Bid, answers: dict[str, Any]) -> None:
        """Inside the write transaction: answered already, held by another process, or ours."""
        stored = conn.execute("SELECT 1 FROM responses WHERE key = ?", (bid.key,)).fetchone()
        if bid.key in answers or stored is not None:
            bid.answered = True
            return
        now = time.time()
        row = conn.execute(_MARK_OF, (bid.key,)).fetchone()
        if row is not None and not bid.force:
            mark = Mark(*row)
            if not mark.same_process(self._me) and mark.live(self._me, now):
                bid.holder = mark
                return
        me = self._me
        conn.execute(_MARK, (bid.key, me.host, me.pid, me.token, now + bid.lease_s))

    def stats(self) -> dict[str, int]:
        """``{"hits": ..., "misses": ..., "writes": ...}`` counted in this process (queued
        answers are committed first)."""
        self.flush()
        with self._lock:
            return asdict(self._stats)

    def __len__(self) -> int:
        with self._lock:
            conn = self._connection()
            if conn is None:
                return 0
            return conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        """Commit what is queued, drop this process's marks and close; reopens if used again."""
        self.flush()
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                if not self.read_only:
                    self._drop_marks(self._conn)
                self._conn.close()
            self._conn, self._absent = None, False

    def _drop_marks(self, conn: sqlite3.Connection) -> None:
        """Remove the marks of calls this process left unfinished (cancelled, interrupted)."""
        me = self._me
        try:
            conn.execute(
                "DELETE FROM inflight WHERE host = ? AND pid = ? AND token = ?",
                (me.host, me.pid, me.token),
            )
        except sqlite3.Error as err:
            log.warning("response cache: in-flight marks not removed (%s)", err)

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
    """A :class:`~judgekit.judge.client.JudgeClient` that answers from a :class:`ResponseCache`.

    Args:
        inner: The client that makes the real call on a miss.
        cache: Where answers are looked up and stored.
        mode: One of ``CACHE_MODES`` (see the module docstring).
        params_for: ``inner.request_params``: the request parameters that are hashed.
        lease_s: The longest one call may take, retries included: how long a mark holds, and
            the longest this client waits for another process's call before making its own.
    """

    def __init__(
        self,
        inner: JudgeClient,
        cache: ResponseCache,
        mode: str,
        params_for: Callable[[list[dict[str, str]]], dict[str, Any]],
        *,
        lease_s: float = DEFAULT_LEASE_S,
    ) -> None:
        if mode not in CACHE_MODES:
            raise ConfigError(f"cache.mode: {mode!r} is not valid; use {', '.join(CACHE_MODES)}")
        self.inner = inner
        self.cache = cache
        self.mode = mode
        self.params_for = params_for
        self.lease_s = lease_s

    def request_params(self, messages: list[dict[str, str]], sample: int = 0) -> dict[str, Any]:
        """The parameters the cache key is made of (``params_for``; draw ``sample`` > 0 of
        ``runner.samples`` adds its index, :func:`~judgekit.judge.client.with_sample`)."""
        return with_sample(self.params_for(messages), sample)

    async def complete(self, messages: list[dict[str, str]], sample: int = 0) -> JudgeResponse:
        """The stored answer when there is one and the mode reads; else the inner call's.

        Each draw ``sample`` of ``runner.samples`` is its own entry, so a rerun replays them all.
        """
        if self.mode == "off":
            return await complete_draw(self.inner, messages, sample)
        params = self.request_params(messages, sample)
        key = request_key(params)
        if self.mode == "refresh":
            return await self._call_and_store(key, params, messages, sample, marked=False)
        start = time.perf_counter()
        hit = await self.cache.aget(key)
        if hit is None and self.mode == "read_write":
            hit = await self._claim_or_wait(key)
        if hit is not None:
            hit.latency_s = time.perf_counter() - start
            return hit
        if self.mode == "read_only":
            return await complete_draw(self.inner, messages, sample)
        return await self._call_and_store(key, params, messages, sample, marked=True)

    async def _call_and_store(
        self,
        key: str,
        params: dict[str, Any],
        messages: list[dict[str, str]],
        sample: int,
        *,
        marked: bool,
    ) -> JudgeResponse:
        """Call and store the answer (or, on failure, release the mark).

        A marked call (``read_write``) returns before the commit: the worker's next miss claims
        its key in the same transaction, before that request is sent, and a lookup sees the
        queued answer. ``refresh`` claims nothing, so it waits for its commit.
        """
        response = await complete_draw(self.inner, messages, sample)
        if response.failure is None:
            await self.cache.aput(key, response, str(params.get("model", "")), wait=not marked)
        elif marked:
            await self.cache.arelease(key, wait=False)
        return response

    async def _claim_or_wait(self, key: str) -> JudgeResponse | None:
        """None once this process holds ``key``'s mark (it calls); the answer when another
        process's call produced it while this one waited."""
        deadline = time.monotonic() + self.lease_s
        force = False
        while True:
            bid = await self.cache.aclaim(key, self.lease_s, force=force)
            if bid.answered:  # stored meanwhile; an unreadable row is called again, overwritten
                return self.cache.get(key, count_miss=False)
            if bid.holder is None:
                return None
            hit = await self._wait_for(key, deadline)
            if hit is not None:
                return hit
            force = time.monotonic() >= deadline  # waited the whole call budget: take over

    async def _wait_for(self, key: str, deadline: float) -> JudgeResponse | None:
        """Poll until another process's answer is stored (returned), or until its mark is no
        longer live or the wait reaches ``deadline`` (None: claim again)."""
        pause = POLL_S
        while time.monotonic() < deadline:
            await asyncio.sleep(min(pause, max(0.0, deadline - time.monotonic())))
            pause = min(pause * 1.5, POLL_MAX_S)
            hit = self.cache.get(key, count_miss=False)
            if hit is not None:
                return hit
            if self.cache.holder(key) is None:
                return None
        return None

    async def aclose(self) -> None:
        """Commit the queued answers; close the inner client's connections."""
        self.cache.flush()
        await self.inner.aclose()
