"""Both clients (litellm, direct) and the runner against a real HTTP fake: retries, timeouts, caps
and order."""

from __future__ import annotations

import asyncio
import time

import pytest

from judgekit.config.schema import JudgeConfig
from judgekit.judge.client import JudgeResponse, LiteLLMClient, RetryPolicy
from judgekit.judge.direct import DirectClient
from judgekit.runner import JudgeRequest, judge_all
from judgekit.testing.server import FakeJudge, FaultPlan, Reply, constant

MESSAGES = [{"role": "user", "content": "rate this"}]


@pytest.fixture(params=["litellm", "direct"])
def kind(request: pytest.FixtureRequest) -> str:
    """Which client: every behaviour here holds for both transports."""
    return str(request.param)


def _client(judge: FakeJudge, kind: str = "litellm", **overrides: object) -> LiteLLMClient:
    settings = {"max_retries": 3, "retry_backoff_s": 0.01, "retry_max_wait_s": 1.0, **overrides}
    cfg = JudgeConfig(
        name="fake", model="openai/fake-judge", api_base=judge.url, client=kind, **settings
    )
    return (DirectClient if kind == "direct" else LiteLLMClient)(cfg, api_key="sk-test")


def _complete(client: LiteLLMClient) -> JudgeResponse:
    async def once() -> JudgeResponse:
        try:
            return await client.complete(MESSAGES)
        finally:
            close = getattr(client, "aclose", None)
            if close is not None:
                await close()

    return asyncio.run(once())


def test_429_is_retried_after_the_servers_retry_after(kind: str) -> None:
    plan = FaultPlan(fail_first_n_attempts=2, retry_after_s=0.3)
    with FakeJudge(constant('{"helpfulness": 3}'), faults=plan) as judge:
        start = time.perf_counter()
        response = _complete(_client(judge, kind))
        elapsed = time.perf_counter() - start
        assert judge.counters.by_kind == {"rate_limit": 2, "ok": 1}
    assert response.failure is None and response.text == '{"helpfulness": 3}'
    assert response.attempts == 3
    # Two waits of Retry-After = 0.3 s each, not the 0.01 s backoff.
    assert elapsed >= 0.6


def test_500_is_retried_and_recorded_when_retries_run_out(kind: str) -> None:
    plan = FaultPlan(fail_first_n_attempts=10, fail_with="server_error")
    with FakeJudge(faults=plan) as judge:
        response = _complete(_client(judge, kind, max_retries=2))
        assert judge.counters.requests_total == 3
    assert response.failure == "server_error" and response.text is None
    assert response.attempts == 3


def test_a_hanging_call_times_out_and_is_retried(kind: str) -> None:
    plan = FaultPlan(fail_first_n_attempts=1, fail_with="hang", hang_s=30)
    with FakeJudge(constant('{"helpfulness": 1}'), faults=plan) as judge:
        response = _complete(_client(judge, kind, timeout_s=0.5))
        assert judge.counters.requests_total == 2
    assert response.failure is None and response.attempts == 2
    assert response.latency_s >= 0.5


def test_timeouts_that_never_end_become_a_timeout_failure(kind: str) -> None:
    plan = FaultPlan(hang=1.0, hang_s=30)
    with FakeJudge(faults=plan) as judge:
        response = _complete(_client(judge, kind, timeout_s=0.3, max_retries=1))
    assert response.failure == "timeout" and response.attempts == 2


def test_other_4xx_is_not_retried(kind: str) -> None:
    with FakeJudge(constant(Reply("no such model", status=404))) as judge:
        response = _complete(_client(judge, kind))
        assert judge.counters.requests_total == 1
    assert response.failure == "bad_request" and response.attempts == 1


def test_backoff_is_exponential_with_jitter_and_capped() -> None:
    import random

    policy = RetryPolicy(max_retries=5, backoff_s=1.0, max_wait_s=5.0, rng=random.Random(0))
    # Retry k waits in [ceiling/2, ceiling] with ceiling = min(1 * 2**(k-1), 5).
    for retry, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 5.0), (5, 5.0)]:
        assert ceiling / 2 <= policy.wait_s(retry, None) <= ceiling
    assert policy.wait_s(1, 30.0) == 5.0  # Retry-After is honoured up to the cap


def test_parallelism_cap_holds_and_order_is_kept(kind: str) -> None:
    def answer(request) -> str:  # noqa: ANN001
        return request.last_user_text.upper()

    with FakeJudge(answer, latency_s=0.1) as judge:
        requests = [
            JudgeRequest(i, str(i), [{"role": "user", "content": f"row {i}"}]) for i in range(30)
        ]
        outcome = asyncio.run(judge_all(iter(requests), _client(judge, kind), parallelism=4))
        assert judge.counters.max_in_flight == 4
    assert [outcome.responses[i].text for i in range(30)] == [f"ROW {i}" for i in range(30)]


def test_usage_tokens_are_recorded(kind: str) -> None:
    with FakeJudge(constant("one two three")) as judge:
        response = _complete(_client(judge, kind))
    assert response.completion_tokens == 3
    assert response.prompt_tokens and response.prompt_tokens > 0


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_statuses_are_retried(status: int, kind: str) -> None:
    with FakeJudge(constant(Reply("down", status=status))) as judge:
        response = _complete(_client(judge, kind, max_retries=1))
        assert judge.counters.requests_total == 2
    assert response.failure == "server_error"
