"""Tests for judgekit.testing.server: the fake judge over real HTTP (httpx, openai, litellm, the CLI)."""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import openai
import pytest

from judgekit import testing
from judgekit.testing.server import (
    ChatRequest,
    FakeJudge,
    FaultPlan,
    Reply,
    constant,
    from_mapping,
    in_fence,
    json_scores,
    mixed_shape,
    request_key,
    scripted,
    stable_scores,
    synthesise_logprobs,
    with_prose,
    with_think,
)

Start = Callable[..., FakeJudge]


@pytest.fixture
def start() -> Iterator[Start]:
    """Start FakeJudge servers for a test; every one is stopped afterwards."""
    started: list[FakeJudge] = []

    def _start(*args: Any, **kwargs: Any) -> FakeJudge:
        judge = FakeJudge(*args, **kwargs).start()
        started.append(judge)
        return judge

    yield _start
    for judge in started:
        judge.stop()


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    """One raw HTTP client for the module (a new httpx client per call costs ~0.1 s)."""
    with httpx.Client(timeout=5) as client:
        yield client


def ask(
    http: httpx.Client, judge: FakeJudge, text: str = "rate this", timeout: float = 5, **params: Any
) -> httpx.Response:
    """POST one chat request with raw httpx; returns the response."""
    body = {"model": "fake-judge", "messages": [{"role": "user", "content": text}], **params}
    return http.post(f"{judge.url}/chat/completions", json=body, timeout=timeout)


def wait_until(condition: Callable[[], bool], timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def test_public_names_exist() -> None:
    assert sorted(testing.__all__) == sorted(set(testing.__all__))
    for name in testing.__all__:
        assert hasattr(testing, name), name


# --- the happy path -----------------------------------------------------------------------------


def test_openai_client_gets_a_standard_chat_completion(http: httpx.Client, start: Start) -> None:
    judge = start(json_scores(lambda request: {"helpfulness": 3}))
    client = openai.OpenAI(base_url=judge.url, api_key="sk-test", max_retries=0)

    completion = client.chat.completions.create(
        model="fake-judge",
        messages=[
            {"role": "system", "content": "You are a strict judge."},
            {"role": "user", "content": "Rate: the sky is blue"},
        ],
        temperature=0,
    )

    assert completion.object == "chat.completion"
    assert completion.model == "fake-judge"
    assert completion.id.startswith("chatcmpl-")
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content == '{"helpfulness": 3}'
    assert completion.choices[0].finish_reason == "stop"
    # usage counts words: 5 in the system message + 5 in the user message; 2 in the answer
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (10, 2)
    assert completion.usage.total_tokens == 12
    assert [model.id for model in client.models.list()] == ["fake-judge"]
    assert http.get(judge.url.removesuffix("/v1") + "/health").json() == {"status": "ok"}


def test_chat_completions_is_also_served_without_the_v1_prefix(
    http: httpx.Client, start: Start
) -> None:
    judge = start(constant("ok"))
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    response = http.post(judge.url.removesuffix("/v1") + "/chat/completions", json=body)
    assert response.json()["choices"][0]["message"]["content"] == "ok"


def test_default_answer_is_stable_helpsteer2_json(http: httpx.Client, start: Start) -> None:
    judge = start()
    first = ask(http, judge, "same text").json()["choices"][0]["message"]["content"]
    again = ask(http, judge, "same text").json()["choices"][0]["message"]["content"]
    scores = json.loads(first)
    assert first == again
    assert list(scores) == list(testing.DEFAULT_SCORE_NAMES)
    assert all(0 <= value <= 4 for value in scores.values())


# --- counters -----------------------------------------------------------------------------------


def test_counters_record_totals_bodies_and_keys_in_arrival_order(
    http: httpx.Client, start: Start
) -> None:
    judge = start(constant("ok"))
    for text in ("a", "b", "a"):
        ask(http, judge, text, temperature=0)

    counters = judge.counters
    assert (counters.requests_total, counters.completed, counters.in_flight) == (3, 3, 0)
    assert counters.by_kind == {"ok": 3}
    assert [body["messages"][0]["content"] for body in counters.bodies] == ["a", "b", "a"]
    assert counters.bodies[0]["temperature"] == 0
    key_a = request_key("fake-judge", [{"role": "user", "content": "a"}])
    key_b = request_key("fake-judge", [{"role": "user", "content": "b"}])
    assert counters.request_keys == {key_a: 2, key_b: 1}

    judge.reset_counters()
    assert judge.counters.snapshot() == {
        "requests_total": 0,
        "in_flight": 0,
        "max_in_flight": 0,
        "completed": 0,
        "by_kind": {},
        "request_keys": {},
        "bodies": [],
    }


def test_max_in_flight_sees_concurrent_requests(start: Start) -> None:
    judge = start(constant("ok"), latency_s=0.3)

    async def send_eight() -> list[int]:
        async with httpx.AsyncClient(timeout=5) as client:
            body = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
            url = f"{judge.url}/chat/completions"
            responses = await asyncio.gather(*(client.post(url, json=body) for _ in range(8)))
            return [r.status_code for r in responses]

    assert asyncio.run(send_eight()) == [200] * 8
    assert judge.counters.max_in_flight == 8  # all eight were asleep in the server at once
    assert (judge.counters.requests_total, judge.counters.in_flight) == (8, 0)


def test_counters_endpoint_serves_and_resets_the_counters(http: httpx.Client, start: Start) -> None:
    judge = start(constant("ok"))
    ask(http, judge, "one")

    remote = http.get(f"{judge.url}/counters").json()
    assert remote == judge.counters.snapshot()
    assert remote["requests_total"] == 1
    assert remote["bodies"][0]["messages"][0]["content"] == "one"

    assert http.post(f"{judge.url}/counters/reset").status_code == 200
    assert judge.counters.requests_total == 0


def test_max_bodies_keeps_the_latest(http: httpx.Client, start: Start) -> None:
    judge = start(constant("ok"), max_bodies=2)
    for text in ("a", "b", "c"):
        ask(http, judge, text)
    assert [body["messages"][0]["content"] for body in judge.counters.bodies] == ["b", "c"]
    assert judge.counters.requests_total == 3


# --- faults -------------------------------------------------------------------------------------


def test_rate_limit_is_429_with_retry_after(http: httpx.Client, start: Start) -> None:
    judge = start(faults=FaultPlan(rate_limit=1.0, retry_after_s=0.1))
    response = ask(http, judge)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "0.1"
    assert response.headers["retry-after-ms"] == "100"
    assert "rate limited" in response.json()["error"]["message"]
    assert judge.counters.by_kind == {"rate_limit": 1}


def test_server_error_is_500(http: httpx.Client, start: Start) -> None:
    judge = start(faults=FaultPlan(server_error=1.0))
    response = ask(http, judge)
    assert response.status_code == 500
    assert response.json()["error"]["type"] == "server_error"
    assert judge.counters.by_kind == {"server_error": 1}


def test_malformed_is_200_with_a_body_that_is_not_json(http: httpx.Client, start: Start) -> None:
    judge = start(faults=FaultPlan(malformed=1.0))
    response = ask(http, judge)
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        response.json()
    assert judge.counters.by_kind == {"malformed": 1}


def test_garbage_is_a_well_formed_answer_that_is_no_score(http: httpx.Client, start: Start) -> None:
    judge = start(faults=FaultPlan(garbage=1.0, garbage_text="I cannot rate this"))
    response = ask(http, judge)
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "I cannot rate this"
    assert judge.counters.by_kind == {"garbage": 1}


def test_hang_outlasts_a_short_client_timeout_and_is_released(
    http: httpx.Client, start: Start
) -> None:
    judge = start(faults=FaultPlan(hang=1.0))  # hang_s defaults to an hour
    with pytest.raises(httpx.ReadTimeout):
        ask(http, judge, timeout=0.3)
    assert judge.counters.by_kind == {"hang": 1}
    # the client hung up, so the server drops the request instead of holding it for an hour
    assert wait_until(lambda: judge.counters.in_flight == 0)
    assert judge.counters.completed == 0


def test_a_short_hang_answers_normally_afterwards(http: httpx.Client, start: Start) -> None:
    judge = start(constant("late"), faults=FaultPlan(hang=1.0, hang_s=0.2))
    began = time.monotonic()
    response = ask(http, judge)
    assert time.monotonic() - began >= 0.2
    assert response.json()["choices"][0]["message"]["content"] == "late"


def test_stop_releases_a_reply_that_hangs_forever(start: Start) -> None:
    judge = start(constant(Reply(hang=True)))
    errors: list[Exception] = []

    async def hang_then_stop() -> None:
        async with httpx.AsyncClient(timeout=10) as client:
            body = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
            request = asyncio.create_task(client.post(f"{judge.url}/chat/completions", json=body))
            while judge.counters.in_flight == 0:
                await asyncio.sleep(0.01)
            began = time.monotonic()
            await asyncio.to_thread(judge.stop)
            assert time.monotonic() - began < 5.0  # not the hour the reply would hang
            try:
                await request
            except httpx.HTTPError as err:
                errors.append(err)

    asyncio.run(hang_then_stop())
    assert len(errors) == 1  # the connection closed without an answer
    assert judge.counters.by_kind == {"hang": 1}


def test_fail_first_n_attempts_fails_each_request_then_answers(
    http: httpx.Client, start: Start
) -> None:
    plan = FaultPlan(fail_first_n_attempts=2, fail_with="server_error")
    judge = start(constant("ok"), faults=plan)
    statuses = [ask(http, judge, "same").status_code for _ in range(3)]
    assert statuses == [500, 500, 200]
    assert ask(http, judge, "other").status_code == 500  # a new request starts at attempt 0
    assert judge.counters.by_kind == {"server_error": 3, "ok": 1}


def test_openai_client_retry_after_429_succeeds_on_the_second_attempt(start: Start) -> None:
    judge = start(constant("ok"), faults=FaultPlan(fail_first_n_attempts=1, retry_after_s=0.05))
    client = openai.OpenAI(base_url=judge.url, api_key="sk-test", max_retries=1)
    completion = client.chat.completions.create(
        model="fake-judge", messages=[{"role": "user", "content": "retry me"}]
    )
    assert completion.choices[0].message.content == "ok"
    assert judge.counters.by_kind == {"rate_limit": 1, "ok": 1}
    assert list(judge.counters.request_keys.values()) == [2]


def test_faults_do_not_depend_on_arrival_order(start: Start) -> None:
    plan = FaultPlan(rate_limit=0.2, server_error=0.2, garbage=0.2, seed=7)
    texts = [f"item {i}" for i in range(40)]

    async def statuses(judge: FakeJudge, order: list[str]) -> dict[str, int]:
        async with httpx.AsyncClient(timeout=5) as client:

            async def one(text: str) -> tuple[str, int]:
                body = {"model": "m", "messages": [{"role": "user", "content": text}]}
                response = await client.post(f"{judge.url}/chat/completions", json=body)
                return text, response.status_code

            return dict(await asyncio.gather(*(one(text) for text in order)))

    forward = asyncio.run(statuses(start(faults=plan), texts))
    backward = asyncio.run(statuses(start(faults=plan), texts[::-1]))
    assert forward == backward
    assert set(forward.values()) == {200, 429, 500}


def test_fault_rates_follow_the_probabilities() -> None:
    plan = FaultPlan(rate_limit=0.2, server_error=0.1, seed=1)
    drawn = [plan.fault_for(f"key{i}", 0) for i in range(4000)]
    # expected 800 rate limits and 400 server errors; ±100 is more than 4 standard deviations
    # (sd = sqrt(4000 × 0.2 × 0.8) ≈ 25 and sqrt(4000 × 0.1 × 0.9) ≈ 19)
    assert abs(drawn.count("rate_limit") - 800) < 100
    assert abs(drawn.count("server_error") - 400) < 100
    assert drawn == [plan.fault_for(f"key{i}", 0) for i in range(4000)]
    other_seed = FaultPlan(rate_limit=0.2, server_error=0.1, seed=2)
    assert drawn != [other_seed.fault_for(f"key{i}", 0) for i in range(4000)]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rate_limit": 1.5}, "FaultPlan.rate_limit: 1.5 is not a probability"),
        ({"hang": 0.6, "garbage": 0.6}, "add up to more than 1"),
        ({"fail_with": "boom"}, "FaultPlan.fail_with: 'boom'"),
        ({"hang_s": 0}, "hang_s > 0"),
    ],
)
def test_fault_plan_rejects_impossible_settings(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        FaultPlan(**kwargs)


# --- bad requests and broken responders ---------------------------------------------------------


def test_stream_true_is_refused_with_400(http: httpx.Client, start: Start) -> None:
    judge = start()
    response = ask(http, judge, stream=True)
    assert response.status_code == 400
    assert "streaming is not supported" in response.json()["error"]["message"]
    assert judge.counters.by_kind == {"bad_request": 1}


def test_a_body_without_messages_is_refused_with_400(http: httpx.Client, start: Start) -> None:
    judge = start()
    response = http.post(f"{judge.url}/chat/completions", content=b"not json")
    assert response.status_code == 400
    assert "not a JSON object" in response.json()["error"]["message"]


def test_a_responder_that_raises_answers_500_and_is_counted(
    http: httpx.Client, start: Start
) -> None:
    def broken(request: ChatRequest) -> str:
        raise KeyError("helpfulness")

    judge = start(broken)
    response = ask(http, judge)
    assert response.status_code == 500
    assert "KeyError('helpfulness')" in response.json()["error"]["message"]
    assert judge.counters.by_kind == {"responder_error": 1}


def test_reply_fields_set_status_headers_and_finish_reason(
    http: httpx.Client, start: Start
) -> None:
    judge = start(
        scripted(
            [
                Reply("slow down", status=429, headers={"Retry-After": "2"}),
                Reply("cut", finish_reason="length", usage={"prompt_tokens": 1}),
                Reply(malformed=True),
            ]
        )
    )
    limited, cut, broken = ask(http, judge), ask(http, judge), ask(http, judge)
    assert (limited.status_code, limited.headers["Retry-After"]) == (429, "2")
    assert limited.json()["error"]["message"] == "slow down"
    assert cut.json()["choices"][0]["finish_reason"] == "length"
    assert cut.json()["usage"] == {"prompt_tokens": 1}
    with pytest.raises(json.JSONDecodeError):
        broken.json()
    assert judge.counters.by_kind == {"rate_limit": 1, "ok": 1, "malformed": 1}


# --- responders and shapes ----------------------------------------------------------------------


def test_scripted_cycles_by_arrival_or_per_request(http: httpx.Client, start: Start) -> None:
    judge = start(scripted(["one", "two"]))
    assert [content(ask(http, judge, t)) for t in "abc"] == ["one", "two", "one"]
    per_request = start(scripted([Reply("busy", status=503), "fine"], per_request=True))
    assert [ask(http, per_request, t).status_code for t in "aabb"] == [503, 200, 503, 200]


def test_from_mapping_answers_from_the_last_user_message(http: httpx.Client, start: Start) -> None:
    judge = start(from_mapping(str.upper))
    body = {
        "model": "m",
        "messages": [
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "..."},
            {"role": "user", "content": [{"type": "text", "text": "last"}]},
        ],
    }
    response = http.post(f"{judge.url}/chat/completions", json=body)
    assert content(response) == "LAST"


def test_stable_scores_stay_in_range_and_depend_on_the_text() -> None:
    scores = stable_scores(["a", "b"], low=1, high=3)
    request = ChatRequest("m", [{"role": "user", "content": "x"}], {})
    assert scores(request) == scores(request)
    seen = [scores(ChatRequest("m", [{"role": "user", "content": str(i)}], {})) for i in range(60)]
    assert {value for s in seen for value in s.values()} == {1, 2, 3}


@pytest.mark.parametrize(
    ("shape", "prefix", "suffix"),
    [
        (in_fence, "```json\n", "\n```"),
        (with_prose, "Here is my rating:", "Hope this helps!"),
        (with_think, "<think>\n", '{"helpfulness": 3}'),
    ],
)
def test_shapes_wrap_the_json_like_real_models(
    http: httpx.Client, start: Start, shape: Callable[[str], str], prefix: str, suffix: str
) -> None:
    judge = start(json_scores(lambda request: {"helpfulness": 3}, shape=shape))
    text = content(ask(http, judge))
    assert text.startswith(prefix) and text.endswith(suffix)
    assert text.count('{"helpfulness": 3}') == 1


def test_with_think_puts_distracting_numbers_before_the_answer() -> None:
    text = with_think('{"score": 2}')
    thought, answer = text.split("</think>")
    assert re.search(r"\d", thought) and answer.strip() == '{"score": 2}'


def test_mixed_shape_is_stable_and_uses_every_shape() -> None:
    contents = [json.dumps({"score": i}) for i in range(40)]
    shaped = [mixed_shape(c) for c in contents]
    assert shaped == [mixed_shape(c) for c in contents]
    kinds = {s[:3] for s in shaped}  # '{"s', '```', 'Her', '<th'
    assert kinds == {'{"s', "```", "Her", "<th"}


# --- logprobs -----------------------------------------------------------------------------------


def test_logprobs_are_synthesised_when_asked(http: httpx.Client, start: Start) -> None:
    judge = start(constant('{"helpfulness": 3}'))
    logprobs = ask(http, judge, logprobs=True, top_logprobs=5).json()["choices"][0]["logprobs"]
    tokens = logprobs["content"]
    assert [t["token"] for t in tokens] == ["{", '"', "helpfulness", '"', ":", " ", "3", "}"]
    digit = tokens[6]
    alternatives = {alt["token"]: math.exp(alt["logprob"]) for alt in digit["top_logprobs"]}
    assert alternatives == pytest.approx({"3": 0.7, "4": 0.2, "2": 0.1})
    assert math.exp(digit["logprob"]) == pytest.approx(0.7)
    # expected score = 3 × 0.7 + 4 × 0.2 + 2 × 0.1 = 2.1 + 0.8 + 0.2 = 3.1
    expected = sum(int(t) * p for t, p in alternatives.items())
    assert expected == pytest.approx(3.1)
    assert digit["bytes"] == [ord("3")]
    assert ask(http, judge).json()["choices"][0]["logprobs"] is None  # not asked, none given


def test_logprobs_at_the_digit_edges_and_capped_by_top_n() -> None:
    def alternatives(entry: dict[str, Any]) -> list[str]:
        return [alt["token"] for alt in entry["top_logprobs"]]

    zero, nine = synthesise_logprobs("0")[0], synthesise_logprobs("9")[0]
    assert alternatives(zero) == ["0", "1", "2"]
    assert alternatives(nine) == ["9", "8", "7"]
    assert alternatives(synthesise_logprobs("5", top_n=1)[0]) == ["5"]
    tokens = synthesise_logprobs("Score: 10, ok")
    assert "".join(t["token"] for t in tokens) == "Score: 10, ok"
    assert [t["token"] for t in tokens] == ["Score", ":", " ", "1", "0", ",", " ", "ok"]


def test_reply_logprobs_are_returned_as_given(http: httpx.Client, start: Start) -> None:
    given = [{"token": "2", "logprob": -0.1, "bytes": [50], "top_logprobs": []}]
    judge = start(constant(Reply("2", logprobs=given)))
    assert ask(http, judge).json()["choices"][0]["logprobs"] == {"content": given}


# --- lifecycle ----------------------------------------------------------------------------------


def test_lifecycle_errors_are_explicit(start: Start) -> None:
    idle = FakeJudge()
    with pytest.raises(RuntimeError, match="call start"):
        idle.url  # noqa: B018
    idle.stop()  # stopping a server that never started does nothing
    judge = start()
    with pytest.raises(RuntimeError, match="already running"):
        judge.start()
    with pytest.raises(RuntimeError, match="could not listen"):
        FakeJudge(port=judge.port).start()


def test_context_manager_stops_the_server(http: httpx.Client) -> None:
    with FakeJudge(constant("ok")) as judge:
        url = judge.url
        assert ask(http, judge).status_code == 200
    with pytest.raises(httpx.ConnectError):
        httpx.post(f"{url}/chat/completions", json={"messages": []}, timeout=1)


# --- litellm ------------------------------------------------------------------------------------


def test_litellm_talks_to_the_fake_judge(start: Start, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    monkeypatch.setenv("LITELLM_OFFLINE_MODE", "true")
    import litellm

    judge = start(json_scores(lambda request: {"helpfulness": len(request.last_user_text)}))
    response = asyncio.run(
        litellm.acompletion(
            model="openai/fake-judge",
            api_base=judge.url,
            api_key="sk-test",
            messages=[{"role": "user", "content": "four"}],
            max_retries=0,
        )
    )
    assert response.choices[0].message.content == '{"helpfulness": 4}'
    assert judge.counters.bodies[0]["model"] == "fake-judge"  # litellm strips "openai/"
    assert judge.counters.by_kind == {"ok": 1}


# --- the command line ---------------------------------------------------------------------------


@pytest.fixture
def run_cli() -> Iterator[Callable[..., tuple[subprocess.Popen[str], str]]]:
    """Start ``python -m judgekit.testing.server ARGS`` and read its URL; killed if a test fails."""
    processes: list[subprocess.Popen[str]] = []

    def _run(*args: str) -> tuple[subprocess.Popen[str], str]:
        process = subprocess.Popen(
            [sys.executable, "-m", "judgekit.testing", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        processes.append(process)
        line = _read_line(process, timeout=15)
        match = re.fullmatch(r"fake judge listening on (http://127\.0\.0\.1:\d+/v1)\n", line)
        assert match, f"unexpected first line {line!r}"
        return process, match.group(1)

    yield _run
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        for stream in (process.stdout, process.stderr):
            if stream:
                stream.close()


def _read_line(process: subprocess.Popen[str], timeout: float) -> str:
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise AssertionError(f"no output from the fake judge within {timeout} s")
    return process.stdout.readline()


def test_cli_serves_stable_scores_and_exits_0_on_sigterm(
    http: httpx.Client, run_cli: Callable[..., Any]
) -> None:
    process, url = run_cli(
        "--port", "0", "--shape", "fence", "--score-names", "accuracy,style", "--min", "1",
        "--max", "3", "--seed", "3",
    )  # fmt: skip
    body = {"model": "fake-judge", "messages": [{"role": "user", "content": "rate me"}]}
    first = http.post(f"{url}/chat/completions", json=body).json()
    second = http.post(f"{url}/chat/completions", json=body).json()
    text = first["choices"][0]["message"]["content"]
    assert text == second["choices"][0]["message"]["content"]
    assert text.startswith("```json\n") and text.endswith("\n```")
    scores = json.loads(text.removeprefix("```json\n").removesuffix("\n```"))
    assert list(scores) == ["accuracy", "style"] and set(scores.values()) <= {1, 2, 3}
    assert http.get(f"{url}/counters").json()["requests_total"] == 2

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0


def test_cli_faults_come_from_flags(http: httpx.Client, run_cli: Callable[..., Any]) -> None:
    process, url = run_cli("--port", "0", "--rate-limit", "1", "--retry-after", "0.5")
    response = http.post(f"{url}/chat/completions", json={"messages": []})
    assert (response.status_code, response.headers["Retry-After"]) == (429, "0.5")
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=10) == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--rate-limit", "2"], "FaultPlan.rate_limit: 2.0 is not a probability"),
        (["--shape", "yaml"], "invalid choice: 'yaml'"),
        (["--score-names", ","], "--score-names: give at least one name"),
    ],
)
def test_cli_rejects_bad_flags_with_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert testing.main(argv) == 2
    assert message in capsys.readouterr().err


def content(response: httpx.Response) -> str:
    return response.json()["choices"][0]["message"]["content"]
