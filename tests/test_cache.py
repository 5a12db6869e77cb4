"""The response cache against a real HTTP fake: reruns, modes, keys, processes, kill -9."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from judgekit.config.schema import JudgeConfig
from judgekit.errors import ConfigError
from judgekit.judge.cache import (
    DB_NAME,
    CachingClient,
    ResponseCache,
    default_cache_dir,
    request_key,
)
from judgekit.judge.client import JudgeClient, JudgeResponse, LiteLLMClient
from judgekit.runner import JudgeRequest, judge_all
from judgekit.testing.server import FakeJudge, FaultPlan, constant

PROMPTS = [f"rate answer {i}" for i in range(6)]


def _judge_config(judge: FakeJudge | None = None, **overrides: Any) -> JudgeConfig:
    settings: dict[str, Any] = {
        "model": "openai/fake-judge",
        "api_base": judge.url if judge is not None else "http://127.0.0.1:1/v1",
        "max_retries": 0,
        "retry_backoff_s": 0.01,
        **overrides,
    }
    return JudgeConfig(name="fake", **settings)


def _messages(prompt: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": "You are a judge."}, {"role": "user", "content": prompt}]


def _run(
    judge: FakeJudge,
    cache: ResponseCache,
    mode: str,
    prompts: list[str] = PROMPTS,
    *,
    api_key: str = "sk-test",
    **overrides: Any,
) -> list[JudgeResponse]:
    """Judge ``prompts`` through a CachingClient around a real LiteLLMClient, 4 at a time."""
    inner = LiteLLMClient(_judge_config(judge, **overrides), api_key=api_key)
    client: JudgeClient = CachingClient(inner, cache, mode, inner.request_params)
    requests = [JudgeRequest(i, str(i), _messages(p)) for i, p in enumerate(prompts)]
    outcome = asyncio.run(judge_all(requests, client, parallelism=4))
    return [outcome.responses[i] for i in range(len(prompts))]


def test_a_rerun_sends_no_request_and_returns_the_stored_answers(tmp_path: Path) -> None:
    with FakeJudge() as judge, ResponseCache(tmp_path) as cache:
        first = _run(judge, cache, "read_write", logprobs=True, top_logprobs=2)
        assert judge.counters.requests_total == len(PROMPTS)
        second = _run(judge, cache, "read_write", logprobs=True, top_logprobs=2)
        assert judge.counters.requests_total == len(PROMPTS)  # nothing new reached the server
        assert cache.stats() == {"hits": 6, "misses": 6, "writes": 6}
        assert len(cache) == len(PROMPTS)
    for paid, hit in zip(first, second, strict=True):
        assert not paid.cached and hit.cached and hit.attempts == 0 and hit.failure is None
        assert (hit.text, hit.prompt_tokens, hit.completion_tokens, hit.logprobs) == (
            paid.text,
            paid.prompt_tokens,
            paid.completion_tokens,
            paid.logprobs,
        )
        assert hit.logprobs  # logprobs survive the round trip
        assert hit.extra["original_latency_s"] == paid.latency_s  # hit.latency_s: the lookup


def test_a_new_cache_object_on_the_same_directory_sees_the_stored_answers(tmp_path: Path) -> None:
    with FakeJudge() as judge:
        with ResponseCache(tmp_path) as cache:
            _run(judge, cache, "read_write")
        with ResponseCache(tmp_path) as cache:
            assert all(r.cached for r in _run(judge, cache, "read_write"))
        assert judge.counters.requests_total == len(PROMPTS)


def test_failed_calls_are_not_cached_and_are_sent_again(tmp_path: Path) -> None:
    plan = FaultPlan(fail_first_n_attempts=10, fail_with="server_error")
    with FakeJudge(faults=plan) as judge, ResponseCache(tmp_path) as cache:
        [first] = _run(judge, cache, "read_write", PROMPTS[:1])
        assert first.failure == "server_error" and len(cache) == 0
        [second] = _run(judge, cache, "read_write", PROMPTS[:1])
        assert second.failure == "server_error" and not second.cached
        assert judge.counters.requests_total == 2
        assert cache.stats() == {"hits": 0, "misses": 2, "writes": 0}


def test_answers_that_will_not_parse_are_cached_because_they_were_paid_for(tmp_path: Path) -> None:
    with FakeJudge(constant("I cannot rate this response.")) as judge, ResponseCache(tmp_path) as c:
        _run(judge, c, "read_write", PROMPTS[:2])
        [hit, _] = _run(judge, c, "read_write", PROMPTS[:2])
        assert judge.counters.requests_total == 2
    assert hit.cached and hit.text == "I cannot rate this response."


def test_read_only_reads_but_never_writes(tmp_path: Path) -> None:
    with FakeJudge() as judge, ResponseCache(tmp_path) as cache:
        _run(judge, cache, "read_write", PROMPTS[:3])
        responses = _run(judge, cache, "read_only", PROMPTS)  # 3 stored, 3 new
        assert [r.cached for r in responses] == [True] * 3 + [False] * 3
        assert judge.counters.requests_total == 3 + 3
        assert len(cache) == 3
        _run(judge, cache, "read_only", PROMPTS[3:])  # the new ones were not stored
        assert judge.counters.requests_total == 3 + 3 + 3


def test_refresh_calls_again_and_overwrites(tmp_path: Path) -> None:
    answer = {"text": '{"score": 1}'}
    with FakeJudge(lambda request: answer["text"]) as judge, ResponseCache(tmp_path) as cache:
        _run(judge, cache, "read_write", PROMPTS[:2])
        answer["text"] = '{"score": 2}'
        refreshed = _run(judge, cache, "refresh", PROMPTS[:2])
        assert judge.counters.requests_total == 4
        assert [r.text for r in refreshed] == ['{"score": 2}'] * 2
        assert not any(r.cached for r in refreshed)
        reread = _run(judge, cache, "read_write", PROMPTS[:2])
        assert judge.counters.requests_total == 4
        assert len(cache) == 2  # overwritten, not duplicated
    assert [(r.cached, r.text) for r in reread] == [(True, '{"score": 2}')] * 2


def test_off_passes_through_and_never_opens_the_database(tmp_path: Path) -> None:
    with FakeJudge() as judge:
        cache = ResponseCache(tmp_path / "cache")
        _run(judge, cache, "off", PROMPTS[:2])
        _run(judge, cache, "off", PROMPTS[:2])
        assert judge.counters.requests_total == 4
        cache.close()
    assert not (tmp_path / "cache").exists()
    assert cache.stats() == {"hits": 0, "misses": 0, "writes": 0}


def test_an_unknown_mode_is_refused(tmp_path: Path) -> None:
    inner = LiteLLMClient(_judge_config(), api_key=None)
    with pytest.raises(ConfigError, match="cache.mode: 'sometimes'.*read_write"):
        CachingClient(inner, ResponseCache(tmp_path), "sometimes", inner.request_params)


def test_the_api_key_never_reaches_the_cache_files(tmp_path: Path) -> None:
    secret = "sk-cache-leak-canary-9d2f7e1b3a"
    with FakeJudge() as judge, ResponseCache(tmp_path) as cache:
        _run(judge, cache, "read_write", api_key=secret, logprobs=True)
        _run(judge, cache, "refresh", api_key=secret)
        open_files = {p.name: p.read_bytes() for p in tmp_path.iterdir()}  # WAL still holds rows
    closed_files = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert {DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm"} <= set(open_files)
    everything = b"".join([*open_files.values(), *closed_files.values()])
    assert b"helpfulness" in everything  # the scan does see the stored answers
    assert secret.encode() not in everything


def _key(**overrides: Any) -> str:
    response_format = overrides.pop("response_format", None)
    messages = overrides.pop("messages", _messages("rate this"))
    api_key = overrides.pop("api_key", "sk-one")
    client = LiteLLMClient(
        _judge_config(**overrides), api_key=api_key, response_format=response_format
    )
    return request_key(client.request_params(messages))


BASE_KEY_CHANGES = {
    "temperature": {"temperature": 0.7},
    "model": {"model": "openai/other-judge"},
    "api_base": {"api_base": "http://127.0.0.1:2/v1"},
    "max_tokens": {"max_tokens": 17},
    "messages": {"messages": _messages("rate that")},
    "system message": {"messages": [{"role": "user", "content": "rate this"}]},
    "response_format": {"response_format": {"type": "json_object"}},
    "logprobs": {"logprobs": True},
    "extra_params": {"extra_params": {"seed": 1}},
}


@pytest.mark.parametrize("change", BASE_KEY_CHANGES.values(), ids=BASE_KEY_CHANGES.keys())
def test_the_key_changes_with_anything_that_changes_the_answer(change: dict[str, Any]) -> None:
    assert _key(**change) != _key()


def test_the_key_ignores_the_api_key_dict_order_and_float_spelling() -> None:
    assert _key(api_key="sk-two") == _key(api_key="sk-one")
    assert _key(temperature=0) == _key(temperature=0.0)
    params = {"model": "m", "messages": [{"role": "user", "content": "é"}], "temperature": 0.0}
    assert request_key(params) == request_key(dict(reversed(params.items())))
    assert len(request_key(params)) == 64


def test_the_default_directory_follows_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JUDGEKIT_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "judgekit"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "judgekit"
    monkeypatch.setenv("JUDGEKIT_CACHE_DIR", str(tmp_path / "mine"))
    assert default_cache_dir() == tmp_path / "mine"
    assert ResponseCache().path == tmp_path / "mine" / DB_NAME


def test_an_unusable_directory_is_a_config_error_before_any_call(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(ConfigError, match=r"cache.dir: cannot open .*cache.mode=off"):
        ResponseCache(blocker / "cache").open()


_SHARING_WRITER = """
import sys
from judgekit.judge.cache import ResponseCache
from judgekit.judge.client import JudgeResponse
directory, worker, rows = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
print("ready", flush=True)
sys.stdin.readline()  # wait for "go": every process opens and writes the new file at once
with ResponseCache(directory) as cache:
    for i in range(rows):
        key = f"shared-{i}" if i % 3 == 0 else f"worker-{worker}-{i}"
        cache.put(key, JudgeResponse(text=f"{worker}:{i}"), "m")
        cache.get(f"shared-{i}")
"""


def test_several_processes_share_one_cache_file(tmp_path: Path) -> None:
    workers, rows = 4, 600
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _SHARING_WRITER, str(tmp_path), str(w), str(rows)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for w in range(workers)
    ]
    assert [c.stdout.readline() for c in children] == ["ready\n"] * workers  # type: ignore[union-attr]
    for child in children:  # release all before waiting for any
        child.stdin.write("go\n")  # type: ignore[union-attr]
        child.stdin.flush()  # type: ignore[union-attr]
    for child in children:
        child.communicate(timeout=60)
    assert [c.returncode for c in children] == [0] * workers
    with ResponseCache(tmp_path) as cache:
        # 200 shared keys (i % 3 == 0) once, plus 400 own keys per worker: none lost.
        assert len(cache) == 200 + workers * 400
        for w in range(workers):
            assert cache.get(f"worker-{w}-1").text == f"{w}:1"  # type: ignore[union-attr]
        assert cache.get("shared-3") is not None


_KILLED_WRITER = """
import sys, time
from judgekit.judge.cache import ResponseCache
from judgekit.judge.client import JudgeResponse
cache = ResponseCache(sys.argv[1])
for i in range(100_000):
    cache.put(f"row-{i}", JudgeResponse(text=f"answer {i}"), "m")
    print(f"row-{i}", flush=True)
    time.sleep(0.005)
"""


def test_every_answer_committed_before_a_kill_9_survives(tmp_path: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", _KILLED_WRITER, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    committed = [child.stdout.readline().strip() for _ in range(40)]
    os.kill(child.pid, signal.SIGKILL)
    assert child.wait(10) == -signal.SIGKILL
    child.stdout.close()
    with ResponseCache(tmp_path) as cache:
        for key in committed:
            hit = cache.get(key)
            assert hit is not None and hit.text == f"answer {key.removeprefix('row-')}"
        assert len(cache) >= len(committed)


def test_get_and_put_round_trip_every_stored_field(tmp_path: Path) -> None:
    original = JudgeResponse(
        text="4",
        attempts=3,
        latency_s=1.5,
        prompt_tokens=12,
        completion_tokens=1,
        logprobs=[{"token": "4", "logprob": -0.1, "top_logprobs": []}],
        extra={"ignored": True},
    )
    with ResponseCache(tmp_path) as cache:
        assert cache.get("k") is None
        assert cache.put("k", original, "m") is True
        assert cache.put("f", dataclasses.replace(original, failure="timeout"), "m") is False
        hit = cache.get("k")
        assert len(cache) == 1
    assert hit is not None
    assert (hit.text, hit.prompt_tokens, hit.completion_tokens, hit.logprobs) == (
        "4",
        12,
        1,
        original.logprobs,
    )
    assert (hit.cached, hit.attempts, hit.extra) == (True, 0, {"original_latency_s": 1.5})
