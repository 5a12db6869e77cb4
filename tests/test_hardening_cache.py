"""Issue 12, the response cache: no paid call repeated after kill -9 or by a second process,
and ``cache.mode=read_only`` on a cache it may not write."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from helpers import TEST_KEY, TEST_KEY_ENV, assert_one_line_error, file_run, run_cli

from judgekit.config.schema import JudgeConfig
from judgekit.errors import ConfigError
from judgekit.judge.cache import DB_NAME, CachingClient, ResponseCache, request_key
from judgekit.judge.client import JudgeResponse, LiteLLMClient
from judgekit.runner import JudgeRequest, judge_all
from judgekit.testing.server import FakeJudge, FaultPlan

PARALLELISM = 4


def _dataset(path: Path, rows: int, *, reverse: bool = False) -> None:
    data = [
        {
            "id": f"r{i}",
            "prompt": f"q{i}",
            "response": f"answer {i}",
            "helpfulness": i % 5,
            "correctness": 1,
            "coherence": 1,
            "complexity": 1,
            "verbosity": 1,
        }
        for i in range(rows)
    ]
    if reverse:
        data.reverse()
    path.write_text("".join(json.dumps(r) + "\n" for r in data))


def _args(judge: FakeJudge, data: str, out: str, *extra: str) -> list[str]:
    return [
        *file_run(judge, f"{data}"),
        "prompt=v1",
        "score=helpfulness",
        f"runner.parallelism={PARALLELISM}",
        "runner.progress=false",
        f"hydra.run.dir={out}",
        *extra,
    ]


def _start_cli(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "judgekit.cli", *args],
        cwd=cwd,
        env={**os.environ, TEST_KEY_ENV: TEST_KEY},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _stored(cache_dir: Path) -> int:
    with sqlite3.connect(cache_dir / DB_NAME) as conn:
        return conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0]


# -- kill -9, then the same command ----------------------------------------------------------


@pytest.mark.slow
def test_kill_9_right_at_an_answer_repeats_at_most_the_requests_in_flight(
    workdir: Path, private_cache_dir: Path
) -> None:
    """A slow endpoint (a paid API's pace) and ``kill -9`` the moment a worker sends its next
    request after an answer: the moment a batch commit (50 ms before issue 12) still held that
    answer, so it was sent again beside the 4 in flight. Every answer is now committed before
    its worker sends the next request, so only the requests in flight are sent again."""
    rows = 60
    _dataset(workdir / "val.jsonl", rows)
    with FakeJudge(latency_s=0.3) as judge:
        proc = _start_cli(_args(judge, "val.jsonl", "killed"), workdir)
        deadline = time.monotonic() + 180
        while judge.counters.completed < 3 * PARALLELISM:
            assert time.monotonic() < deadline and proc.poll() is None, proc.stderr
            time.sleep(0.005)
        sent = judge.counters.requests_total
        while judge.counters.requests_total == sent:  # a worker sends its next request...
            time.sleep(0.0005)
        proc.send_signal(signal.SIGKILL)  # ... and dies right after
        assert proc.wait(timeout=30) == -signal.SIGKILL
        stored = _stored(private_cache_dir)
        sent_before = judge.counters.requests_total
        assert 0 < stored < rows
        rerun = run_cli(_args(judge, "val.jsonl", "resumed"), workdir)
        assert rerun.returncode == 0, rerun.stderr
        resent = judge.counters.requests_total - sent_before
        repeated = {k: n for k, n in judge.counters.request_keys.items() if n > 1}
    assert resent == rows - stored  # the rerun sends exactly what was never stored
    assert len(repeated) <= PARALLELISM, repeated  # ... which is only what was in flight
    assert set(repeated.values()) <= {2}
    resumed = pd.read_parquet(workdir / "resumed" / "results.parquet")
    assert resumed["failure_reason"].isna().all() and int(resumed["cached"].sum()) == stored


@pytest.mark.parametrize("parallelism", [1, 4])
def test_each_answer_is_stored_before_its_worker_sends_the_next_request(
    tmp_path: Path, parallelism: int
) -> None:
    """The invariant behind the kill -9 bound, checked at every request: when the n-th request
    arrives, at most ``parallelism - 1`` earlier ones (those of the other workers, still in
    flight) lack a committed answer, so the file already holds at least n - (parallelism - 1)."""
    stored_at_arrival: list[int] = []

    def responder(request: Any) -> str:  # in the server's thread, with its own connection
        stored_at_arrival.append(_stored(tmp_path))
        return '{"score": 4}'

    prompts = [[{"role": "user", "content": f"rate answer {i}"}] for i in range(40)]
    with FakeJudge(responder, latency_s=0.01) as judge, ResponseCache(tmp_path) as cache:
        cache.open()
        client = _client(judge, cache)
        requests = [JudgeRequest(i, str(i), m) for i, m in enumerate(prompts)]
        asyncio.run(judge_all(requests, client, parallelism=parallelism))
    assert len(stored_at_arrival) == len(prompts)
    short = [
        (n, stored) for n, stored in enumerate(stored_at_arrival) if stored < n - (parallelism - 1)
    ]
    assert short == []


# -- two processes sharing one cache -------------------------------------------------------


@pytest.mark.slow
def test_two_processes_on_one_cache_pay_for_each_request_once(workdir: Path) -> None:
    """Two real runs on the same rows and the same cache at the same time, the second in the
    reverse order so that both must make calls (each takes the rows the other has not reached).
    Each request reaches the endpoint once: a key in flight in one process is waited for by the
    other. There is no race to allow for: a mark is taken inside a write transaction that first
    reads the marks and answers (``BEGIN IMMEDIATE``: one writer at a time)."""
    rows = 48
    _dataset(workdir / "forward.jsonl", rows)
    _dataset(workdir / "backward.jsonl", rows, reverse=True)
    with FakeJudge(latency_s=0.4) as judge:
        procs = [
            _start_cli(_args(judge, "forward.jsonl", "a"), workdir),
            _start_cli(_args(judge, "backward.jsonl", "b"), workdir),
        ]
        errors = [p.communicate(timeout=300)[1] for p in procs]
        assert [p.returncode for p in procs] == [0, 0], errors
        keys = judge.counters.request_keys
        total = judge.counters.requests_total
    assert len(keys) == rows
    assert {k: n for k, n in keys.items() if n > 1} == {}  # each request answered once
    assert total == rows
    a = pd.read_parquet(workdir / "a" / "results.parquet")
    b = pd.read_parquet(workdir / "b" / "results.parquet")
    paid_by = {"a": int((~a["cached"]).sum()), "b": int((~b["cached"]).sum())}
    assert paid_by["a"] + paid_by["b"] == rows, paid_by
    assert paid_by["a"] > 0 and paid_by["b"] > 0, paid_by  # the runs did overlap
    assert list(a["judge"]) == list(b["judge"])[::-1]  # the same answers, row for row
    assert a["failure_reason"].isna().all() and b["failure_reason"].isna().all()


# -- in-flight marks, one rule at a time ------------------------------------------------------


def _judge_config(judge: FakeJudge, **overrides: Any) -> JudgeConfig:
    return JudgeConfig(
        name="fake",
        model="openai/fake-judge",
        api_base=judge.url,
        max_retries=0,
        retry_backoff_s=0.01,
        **overrides,
    )


MESSAGES = [{"role": "user", "content": "rate this answer"}]


def _client(judge: FakeJudge, cache: ResponseCache, mode: str = "read_write", **kw: Any):  # noqa: ANN202
    inner = LiteLLMClient(_judge_config(judge), api_key="sk-test")
    return CachingClient(inner, cache, mode, inner.request_params, **kw)


def _mark(cache_dir: Path, key: str, pid: int, lease_s: float) -> None:
    """Another process's in-flight mark on ``key``, as its claim would have written it."""
    with sqlite3.connect(cache_dir / DB_NAME) as conn:
        conn.execute(
            "INSERT OR REPLACE INTO inflight VALUES (?, ?, ?, ?, ?)",
            (key, socket.gethostname(), pid, "other", time.time() + lease_s),
        )


def _marks(cache_dir: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(cache_dir / DB_NAME) as conn:
        return conn.execute("SELECT * FROM inflight").fetchall()


@pytest.fixture
def other_process():  # noqa: ANN201
    """A real process that is alive for the test: the owner of a mark."""
    child = subprocess.Popen(["sleep", "60"])
    yield child
    child.kill()
    child.wait()


def _key(judge: FakeJudge) -> str:
    inner = LiteLLMClient(_judge_config(judge), api_key="sk-test")
    return request_key(inner.request_params(MESSAGES))


def test_a_live_mark_is_waited_for_and_its_answer_used(
    tmp_path: Path, other_process: subprocess.Popen[bytes]
) -> None:
    with FakeJudge() as judge, ResponseCache(tmp_path) as cache:
        key = _key(judge)
        cache.open()
        _mark(tmp_path, key, other_process.pid, lease_s=60)

        async def owner_answers() -> None:  # the other process's answer arrives a little later
            await asyncio.sleep(0.3)
            with ResponseCache(tmp_path) as theirs:
                theirs.put(key, JudgeResponse(text='{"score": 3}'), "openai/fake-judge")
            with sqlite3.connect(tmp_path / DB_NAME) as conn:
                conn.execute("DELETE FROM inflight WHERE key = ?", (key,))

        async def both() -> JudgeResponse:
            response, _ = await asyncio.gather(
                _client(judge, cache).complete(MESSAGES), owner_answers()
            )
            return response

        response = asyncio.run(both())
        assert judge.counters.requests_total == 0  # nothing paid twice
    assert response.cached and response.text == '{"score": 3}'


def test_a_mark_whose_owner_is_gone_is_taken_over_at_once(tmp_path: Path) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()  # reaped: its pid runs nothing now
    with FakeJudge() as judge, ResponseCache(tmp_path) as cache:
        key = _key(judge)
        cache.open()
        _mark(tmp_path, key, gone.pid, lease_s=600)  # a lease far away: only the pid tells
        response = asyncio.run(_client(judge, cache).complete(MESSAGES))
        assert judge.counters.requests_total == 1 and not response.cached
        assert _marks(tmp_path) == []  # the answer's commit removed the mark taken over
        assert cache.get(key) is not None


def test_a_mark_whose_lease_ran_out_is_taken_over(
    tmp_path: Path, other_process: subprocess.Popen[bytes]
) -> None:
    with FakeJudge() as judge, ResponseCache(tmp_path) as cache:
        key = _key(judge)
        cache.open()
        _mark(tmp_path, key, other_process.pid, lease_s=0.3)  # alive, but its call overran
        response = asyncio.run(_client(judge, cache).complete(MESSAGES))
        assert judge.counters.requests_total == 1 and response.failure is None


def test_the_wait_is_bounded_by_the_call_budget(
    tmp_path: Path, other_process: subprocess.Popen[bytes]
) -> None:
    with FakeJudge() as judge, ResponseCache(tmp_path) as cache:
        key = _key(judge)
        cache.open()
        _mark(tmp_path, key, other_process.pid, lease_s=600)  # alive, lease far away
        response = asyncio.run(_client(judge, cache, lease_s=0.3).complete(MESSAGES))
        assert judge.counters.requests_total == 1 and response.failure is None
        assert _marks(tmp_path) == []


def test_a_failed_call_removes_its_mark(tmp_path: Path) -> None:
    plan = FaultPlan(fail_first_n_attempts=1, fail_with="server_error")
    with FakeJudge(faults=plan) as judge, ResponseCache(tmp_path) as cache:
        response = asyncio.run(_client(judge, cache).complete(MESSAGES))
        assert response.failure == "server_error"
        assert _marks(tmp_path) == []  # another process may call at once
        assert len(cache) == 0


def test_marks_are_committed_before_the_call_and_removed_with_the_answer(tmp_path: Path) -> None:
    seen: list[list[tuple[Any, ...]]] = []

    def responder(request: Any) -> str:  # runs while the call is in flight
        seen.append(_marks(tmp_path))
        return '{"score": 4}'

    with FakeJudge(responder) as judge, ResponseCache(tmp_path) as cache:
        asyncio.run(_client(judge, cache).complete(MESSAGES))
        expected = _key(judge)
    [[(key, host, pid, _token, lease_until)]] = seen
    assert (key, host, pid) == (expected, socket.gethostname(), os.getpid())
    assert lease_until > time.time()
    assert _marks(tmp_path) == []


# -- read_only --------------------------------------------------------------------------------


def _filled(directory: Path, judge: FakeJudge) -> str:
    """A cache holding the answer to MESSAGES, closed (SQLite removed its -wal and -shm)."""
    with ResponseCache(directory) as cache:
        asyncio.run(_client(judge, cache).complete(MESSAGES))
    assert sorted(p.name for p in directory.iterdir()) == [DB_NAME]
    return (directory / DB_NAME).read_bytes().hex()


def test_read_only_in_a_folder_it_cannot_write_opens_the_file_immutable(tmp_path: Path) -> None:
    """The code path of a read-only folder, chosen by an injected writability check.

    Tests run as root, and root passes both ``os.access`` and the write itself on a
    ``chmod 0555`` folder, so a chmod cannot reproduce the fault. The injected check picks the
    path; that path is then checked by its effect: ``immutable=1`` creates no ``-wal``/``-shm``
    files where ``mode=ro`` alone would (SQLite needs the -shm index to read a WAL database,
    and cannot create it in a read-only folder: "attempt to write a readonly database" or
    "unable to open database file"). The next test reproduces the real read-only folder.
    """
    with FakeJudge() as judge:
        before = _filled(tmp_path, judge)
        with ResponseCache(tmp_path, read_only=True, writable=lambda path: False) as cache:
            response = asyncio.run(_client(judge, cache, "read_only").complete(MESSAGES))
            assert sorted(p.name for p in tmp_path.iterdir()) == [DB_NAME]
            with pytest.raises(ConfigError, match="opened read-only"):
                cache.put("k", JudgeResponse(text="x"), "m")
        assert judge.counters.requests_total == 1  # the fill; the read_only run hit
    assert response.cached
    assert (tmp_path / DB_NAME).read_bytes().hex() == before


def test_read_only_never_writes_marks_or_waits(
    tmp_path: Path, other_process: subprocess.Popen[bytes]
) -> None:
    with FakeJudge() as judge:
        _filled(tmp_path, judge)
        other = [{"role": "user", "content": "another answer"}]
        key = request_key(LiteLLMClient(_judge_config(judge), api_key="k").request_params(other))
        with sqlite3.connect(tmp_path / DB_NAME) as conn:
            conn.execute("PRAGMA journal_mode = DELETE")  # so any write shows in the file
        _mark(tmp_path, key, other_process.pid, lease_s=600)
        before = (tmp_path / DB_NAME).read_bytes()
        with ResponseCache(tmp_path, read_only=True) as cache:  # a writable folder: mode=ro
            response = asyncio.run(_client(judge, cache, "read_only").complete(other))
        assert judge.counters.requests_total == 2  # called at once despite the live mark
    assert not response.cached and response.failure is None
    assert (tmp_path / DB_NAME).read_bytes() == before  # no answer stored, no mark taken
    assert [row[0] for row in _marks(tmp_path)] == [key]


def test_read_only_without_a_cache_file_creates_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with FakeJudge() as judge, ResponseCache(tmp_path / "none", read_only=True) as cache:
        response = asyncio.run(_client(judge, cache, "read_only").complete(MESSAGES))
        assert judge.counters.requests_total == 1 and response.failure is None
        assert len(cache) == 0 and cache.get("k") is None
    assert not (tmp_path / "none").exists()
    assert "cache.mode=read_only sends every call" in caplog.text


def _read_only_mount_works(directory: Path) -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", _MOUNT_RO.format(dir=directory) + f"! touch {directory}/x"],
        capture_output=True,
    )
    return probe.returncode == 0


_MOUNT_RO = "mount --bind {dir} {dir} && mount -o remount,bind,ro {dir} && "


@pytest.mark.slow
def test_read_only_mode_on_a_cache_in_a_read_only_mount(workdir: Path) -> None:
    """The fault as reported, for real: the cache folder is a read-only bind mount, made in a
    private mount namespace (``unshare -m``) that only the judgekit process sees, so nothing
    outside the test changes. Needs root's mount rights; skipped where they are missing."""
    cache_dir = workdir / "shared-cache"
    cache_dir.mkdir()
    if not _read_only_mount_works(cache_dir):
        pytest.skip("no private read-only bind mount here (needs unshare -m and CAP_SYS_ADMIN)")
    _dataset(workdir / "val.jsonl", 8)
    with FakeJudge() as judge:
        fill = run_cli(_args(judge, "val.jsonl", "fill", f"cache.dir={cache_dir}"), workdir)
        assert fill.returncode == 0, fill.stderr
        before = sorted(p.name for p in cache_dir.iterdir())
        args = _args(judge, "val.jsonl", "ro", f"cache.dir={cache_dir}", "cache.mode=read_only")
        command = _MOUNT_RO.format(dir=cache_dir) + 'exec "$@"'
        proc = subprocess.run(
            [
                "unshare",
                "-m",
                "sh",
                "-c",
                command,
                "sh",
                sys.executable,
                "-m",
                "judgekit.cli",
                *args,
            ],
            cwd=workdir,
            env={**os.environ, TEST_KEY_ENV: TEST_KEY},
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert proc.returncode == 0, proc.stderr
        assert "readonly database" not in proc.stderr
        assert judge.counters.requests_total == 8  # the fill only: every row came from the cache
    assert pd.read_parquet(workdir / "ro" / "results.parquet")["cached"].all()
    assert sorted(p.name for p in cache_dir.iterdir()) == before == [DB_NAME]


# -- bad cache settings: one line, exit 2, no judge call ------------------------------------

BAD_INPUTS = {
    "read_only cache that is not a database": (
        ["cache.mode=read_only", "cache.dir={data}/garbage-cache"],
        "cache.dir: cannot read the response cache",
    ),
    "read_only cache of another program": (
        ["cache.mode=read_only", "cache.dir={data}/foreign-cache"],
        "cache.dir: cannot read the response cache",
    ),
    "read_write cache on a file": (
        ["cache.dir={data}/good.jsonl"],
        "cache.dir: cannot open the response cache",
    ),
}


@pytest.fixture(scope="module")
def judge() -> Any:
    with FakeJudge() as server:
        yield server


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    _dataset(root / "good.jsonl", 2)
    (root / "garbage-cache").mkdir()
    (root / "garbage-cache" / DB_NAME).write_bytes(b"not a database at all" * 100)
    (root / "foreign-cache").mkdir()
    with sqlite3.connect(root / "foreign-cache" / DB_NAME) as conn:
        conn.execute("CREATE TABLE other (x)")
    conn.close()
    return root


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_one_line_exit_2_and_no_judge_call(
    case: str, judge: FakeJudge, data_dir: Path, tmp_path: Path
) -> None:
    extra, needle = BAD_INPUTS[case]
    before = judge.counters.requests_total
    args = [
        *file_run(judge, f"{data_dir}/good.jsonl"),
        "prompt=v1",
        "score=helpfulness",
        *(e.replace("{data}", str(data_dir)) for e in extra),
    ]
    proc = run_cli(args, tmp_path, timeout=120)
    assert_one_line_error(proc, needle)
    assert judge.counters.requests_total == before
    assert not (tmp_path / "mlflow.db").exists()
