"""The judge transports: each maps its own exceptions, by type, to one retry decision; both turn
the same answer into the same Completion; FailureReason names every reason a run writes."""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

import httpx
import litellm
import openai
import pytest
from helpers import judge_overrides

import judgekit
from judgekit.config.schema import JudgeConfig
from judgekit.judge import direct, litellm_transport
from judgekit.judge.client import LiteLLMClient, RetryingClient
from judgekit.judge.direct import DirectClient, HTTPStatusError
from judgekit.judge.transport import Completion, ResponseFailure, RetryDecision, Transport
from judgekit.parsing import FAILURE_REASONS
from judgekit.records import PARSE_FAILURES, REQUEST_FAILURES, FailureReason
from judgekit.results import not_run_response
from judgekit.testing.server import FakeJudge, FaultPlan, Reply

R = FailureReason
_REQUEST = httpx.Request("POST", "http://judge.invalid/v1/chat/completions")


def _response(status: int, **headers: str) -> httpx.Response:
    return httpx.Response(status, headers=headers, request=_REQUEST)


def _raised_from(outer: BaseException, inner: BaseException) -> BaseException:
    """``outer`` as if raised while handling ``inner`` (its ``__cause__``)."""
    try:
        try:
            raise inner
        except type(inner) as caught:
            raise outer from caught
    except type(outer) as err:
        return err


def _litellm(kind: str, status: int, **headers: str) -> BaseException:
    cls = getattr(litellm, kind)
    return cls(
        message=f"{kind}!", llm_provider="openai", model="m", response=_response(status, **headers)
    )


# --- the litellm transport ---------------------------------------------------------------------

LITELLM_TABLE: list[tuple[str, Any, RetryDecision]] = [
    (
        "Timeout",
        lambda: litellm.Timeout("slow", model="m", llm_provider="openai"),
        RetryDecision(R.TIMEOUT, True),
    ),
    (
        "APIConnectionError",
        lambda: litellm.APIConnectionError("down", llm_provider="openai", model="m"),
        RetryDecision(R.REQUEST_ERROR, True),
    ),
    (
        "RateLimitError",
        lambda: _litellm("RateLimitError", 429, **{"retry-after": "7"}),
        RetryDecision(R.RATE_LIMITED, True, 7.0, 429),
    ),
    (
        "InternalServerError",
        lambda: _litellm("InternalServerError", 500),
        RetryDecision(R.SERVER_ERROR, True, None, 500),
    ),
    (
        "ServiceUnavailableError",
        lambda: _litellm("ServiceUnavailableError", 503),
        RetryDecision(R.SERVER_ERROR, True, None, 503),
    ),
    (
        "BadGatewayError",
        lambda: _litellm("BadGatewayError", 502),
        RetryDecision(R.SERVER_ERROR, True, None, 502),
    ),
    (
        "APIError 500",
        lambda: litellm.APIError(500, "boom", llm_provider="openai", model="m"),
        RetryDecision(R.SERVER_ERROR, True, None, 500),
    ),
    (
        "BadRequestError",
        lambda: _litellm("BadRequestError", 400),
        RetryDecision(R.BAD_REQUEST, False, None, 400),
    ),
    (
        "ContextWindowExceededError",
        lambda: _litellm("ContextWindowExceededError", 400),
        RetryDecision(R.BAD_REQUEST, False, None, 400),
    ),
    (
        "AuthenticationError",
        lambda: _litellm("AuthenticationError", 401),
        RetryDecision(R.BAD_REQUEST, False, None, 401),
    ),
    (
        "PermissionDeniedError",
        lambda: _litellm("PermissionDeniedError", 403),
        RetryDecision(R.BAD_REQUEST, False, None, 403),
    ),
    (
        "NotFoundError",
        lambda: _litellm("NotFoundError", 404),
        RetryDecision(R.BAD_REQUEST, False, None, 404),
    ),
    (
        "UnprocessableEntityError",
        lambda: _litellm("UnprocessableEntityError", 422),
        RetryDecision(R.BAD_REQUEST, False, None, 422),
    ),
    (
        "a 500 wrapping a refused connection",
        lambda: _raised_from(
            litellm.InternalServerError("Connection error.", llm_provider="openai", model="m"),
            ConnectionRefusedError("refused"),
        ),
        RetryDecision(R.REQUEST_ERROR, True),
    ),
    (
        "a 500 wrapping a parameter that is not JSON",
        lambda: _raised_from(
            litellm.APIError(500, "serialise", llm_provider="openai", model="m"),
            ValueError("Out of range float values are not JSON compliant"),
        ),
        RetryDecision(R.BAD_REQUEST, False),
    ),
    (
        "a body that is not JSON",
        lambda: json.JSONDecodeError("Expecting value", "<html>", 0),
        RetryDecision(R.BAD_RESPONSE, False),
    ),
    (
        "openai.APITimeoutError",
        lambda: openai.APITimeoutError(_REQUEST),
        RetryDecision(R.TIMEOUT, True),
    ),
    ("httpx.ReadTimeout", lambda: httpx.ReadTimeout("read"), RetryDecision(R.TIMEOUT, True)),
    (
        "httpx.ConnectError",
        lambda: httpx.ConnectError("refused"),
        RetryDecision(R.REQUEST_ERROR, True),
    ),
    (
        "httpx.RemoteProtocolError",
        lambda: httpx.RemoteProtocolError("peer closed"),
        RetryDecision(R.REQUEST_ERROR, True),
    ),
    (
        "the bounded client's oversized body",
        lambda: _raised_from(
            litellm.APIError(500, "wrapped", llm_provider="openai", model="m"),
            ResponseFailure(R.RESPONSE_TOO_LARGE, "over"),
        ),
        RetryDecision(R.RESPONSE_TOO_LARGE, False),
    ),
    (
        "a message that looks like a connection error",
        lambda: ValueError("Connection error."),
        RetryDecision(R.BAD_REQUEST, False),
    ),
    ("anything else", lambda: RuntimeError("?"), RetryDecision(R.REQUEST_ERROR, False)),
]


@pytest.mark.parametrize(
    ("case", "make", "expected"), LITELLM_TABLE, ids=[c[0] for c in LITELLM_TABLE]
)
def test_the_litellm_transport_classifies_by_exception_type(
    case: str, make: Any, expected: RetryDecision
) -> None:
    assert litellm_transport.classify(make()) == expected


# --- the direct transport ----------------------------------------------------------------------


def _direct_table() -> list[tuple[str, Any, RetryDecision]]:
    import aiohttp
    from multidict import CIMultiDict

    def status(code: int, **headers: str) -> HTTPStatusError:
        return HTTPStatusError(code, "body", CIMultiDict(headers))

    return [
        ("ServerTimeoutError", aiohttp.ServerTimeoutError("read"), RetryDecision(R.TIMEOUT, True)),
        ("asyncio.TimeoutError", TimeoutError(), RetryDecision(R.TIMEOUT, True)),
        (
            "ServerDisconnectedError",
            aiohttp.ServerDisconnectedError(),
            RetryDecision(R.REQUEST_ERROR, True),
        ),
        (
            "ClientOSError",
            aiohttp.ClientOSError(104, "reset"),
            RetryDecision(R.REQUEST_ERROR, True),
        ),
        (
            "ClientPayloadError",
            aiohttp.ClientPayloadError("cut"),
            RetryDecision(R.REQUEST_ERROR, True),
        ),
        (
            "ConnectionError from aiohttp",
            _raised_from(ConnectionError("ClientConnectorError"), aiohttp.ClientConnectionError()),
            RetryDecision(R.REQUEST_ERROR, True),
        ),
        ("429", status(429, **{"Retry-After": "2"}), RetryDecision(R.RATE_LIMITED, True, 2.0, 429)),
        ("429 without Retry-After", status(429), RetryDecision(R.RATE_LIMITED, True, None, 429)),
        ("500", status(500), RetryDecision(R.SERVER_ERROR, True, None, 500)),
        ("502", status(502), RetryDecision(R.SERVER_ERROR, True, None, 502)),
        (
            "503 with Retry-After",
            status(503, **{"retry-after": "1.5"}),
            RetryDecision(R.SERVER_ERROR, True, 1.5, 503),
        ),
        ("400", status(400), RetryDecision(R.BAD_REQUEST, False, None, 400)),
        ("401", status(401), RetryDecision(R.BAD_REQUEST, False, None, 401)),
        ("403", status(403), RetryDecision(R.BAD_REQUEST, False, None, 403)),
        ("404", status(404), RetryDecision(R.BAD_REQUEST, False, None, 404)),
        ("422", status(422), RetryDecision(R.BAD_REQUEST, False, None, 422)),
        ("304", status(304), RetryDecision(R.REQUEST_ERROR, False, None, 304)),
        (
            "a NaN parameter",
            ValueError("Out of range float values"),
            RetryDecision(R.BAD_REQUEST, False),
        ),
        (
            "not JSON",
            ResponseFailure(R.BAD_RESPONSE, "<html>"),
            RetryDecision(R.BAD_RESPONSE, False),
        ),
        (
            "too large",
            ResponseFailure(R.RESPONSE_TOO_LARGE, "big"),
            RetryDecision(R.RESPONSE_TOO_LARGE, False),
        ),
        ("anything else", RuntimeError("?"), RetryDecision(R.REQUEST_ERROR, False)),
    ]


def test_the_direct_transport_classifies_aiohttp_errors_and_statuses_by_type() -> None:
    for case, err, expected in _direct_table():
        assert direct.classify(err) == expected, case


# --- both transports: the same answer, the same Completion --------------------------------------


def _config(judge: FakeJudge, kind: str, **settings: Any) -> JudgeConfig:
    return JudgeConfig(
        name="fake", model="openai/fake-judge", api_base=judge.url, client=kind, **settings
    )


def _send(client: RetryingClient, messages: list[dict[str, str]]) -> Completion:
    async def once() -> Completion:
        try:
            await client.ready()
            return await client.transport.send(client.request_params(messages))
        finally:
            await client.aclose()

    return asyncio.run(once())


@pytest.mark.parametrize("logprobs", [False, True])
def test_both_transports_turn_the_same_answer_into_the_same_completion(logprobs: bool) -> None:
    messages = [{"role": "user", "content": "rate this"}]
    with FakeJudge(lambda request: Reply('{"helpfulness": 4}')) as judge:
        settings = {"logprobs": logprobs, "top_logprobs": 2}
        via_litellm = _send(
            LiteLLMClient(_config(judge, "litellm", **settings), api_key="sk-test"), messages
        )
        via_direct = _send(
            DirectClient(_config(judge, "direct", **settings), api_key="sk-test"), messages
        )
    assert via_litellm == via_direct
    assert via_direct.text == '{"helpfulness": 4}' and via_direct.status == 200
    assert via_direct.choices == 1 and via_direct.prompt_tokens and via_direct.completion_tokens
    assert (via_direct.logprobs is not None) == logprobs


@pytest.mark.parametrize(("fault", "choices"), [("no_choices", None), ("empty_choices", 0)])
def test_both_transports_report_an_answer_without_choices_alike(
    fault: str, choices: int | None
) -> None:
    messages = [{"role": "user", "content": "rate this"}]
    with FakeJudge(faults=FaultPlan(**{fault: 1.0})) as judge:
        # litellm itself refuses a body with no 'choices': that arrives as its exception instead.
        if fault == "empty_choices":
            via_litellm = _send(LiteLLMClient(_config(judge, "litellm"), api_key=None), messages)
            assert via_litellm == Completion(None, choices=choices)
        via_direct = _send(DirectClient(_config(judge, "direct"), api_key=None), messages)
    assert via_direct == Completion(None, choices=choices)


def test_both_transports_meet_the_protocol() -> None:
    cfg = JudgeConfig(name="x", model="openai/m", api_base="http://127.0.0.1:9/v1", client="direct")
    transports: list[Transport] = [
        LiteLLMClient(cfg, api_key=None).transport,
        DirectClient(cfg, api_key=None).transport,
    ]
    for transport in transports:
        for name in ("ready", "send", "classify", "aclose"):
            assert callable(getattr(transport, name))


# --- one vocabulary -----------------------------------------------------------------------------


def test_the_failure_lists_derive_from_failure_reason_with_their_old_values() -> None:
    assert set(REQUEST_FAILURES) == {
        "timeout",
        "rate_limited",
        "server_error",
        "request_error",
        "bad_request",
        "bad_response",
        "empty_response",
        "response_too_large",
    }
    assert FAILURE_REASONS == PARSE_FAILURES
    assert set(R) == set(REQUEST_FAILURES) | set(PARSE_FAILURES) | {"not_run", "no_majority"}
    assert not_run_response().failure == "not_run"
    # Messages show counts as dicts: a member reads like the string it replaced.
    assert repr({R.MISSING_KEY: 6}) == "{'missing_key': 6}" and f"{R.TIMEOUT}" == "timeout"
    assert json.dumps({R.TIMEOUT: [R.NOT_RUN]}) == '{"timeout": ["not_run"]}'
    assert all(
        isinstance(reason, FailureReason) for reason in (*REQUEST_FAILURES, *FAILURE_REASONS)
    )


def test_every_reason_a_run_with_faults_writes_is_a_failure_reason() -> None:
    rows = [{"prompt": f"q{i}", "response": f"answer {i}", "helpfulness": i % 5} for i in range(40)]

    def answer(request: Any) -> Reply | str:
        row = int(request.last_user_text.rsplit("answer ", 1)[1].split()[0])
        return {
            0: "no score here",  # parse_error
            1: '{"helpfullness": 3}',  # missing_key
            2: '{"helpfulness": 99}',  # out_of_range
            3: "",  # empty_response (the parser's)
            4: Reply("nope", status=400),  # bad_request
        }.get(row % 8, '{"helpfulness": 3}')

    plan = FaultPlan(server_error=0.1, no_choices=0.1, empty_choices=0.1, malformed=0.1, seed=3)
    with FakeJudge(answer, faults=plan) as judge:
        result = judgekit.evaluate(
            "openai_compatible",
            "v1",
            "helpfulness",
            rows,
            overrides=[
                *judge_overrides(judge, key=False),
                "judge.max_retries=0",
                "runner.max_consecutive_failures=0",
                "runner.min_coverage=0",
                "cache.mode=off",
            ],
        )
    written = {r for r in result.results["failure_reason"] if isinstance(r, str)}
    assert written <= set(R), written - set(R)
    assert {"parse_error", "missing_key", "out_of_range", "bad_request", "server_error"} <= written
    assert {"bad_response", "empty_response"} <= written
    assert not any(
        isinstance(r, float) and not math.isnan(r) for r in result.results["failure_reason"]
    )


def test_the_judge_packages_public_api() -> None:
    import judgekit.judge
    from judgekit.judge import transport

    assert sorted(judgekit.judge.__all__) == [
        "Completion",
        "JudgeClient",
        "JudgeResponse",
        "LiteLLMClient",
        "REQUEST_FAILURES",
        "ResponseFailure",
        "RetryDecision",
        "RetryPolicy",
        "RetryingClient",
        "Transport",
        "classify_error",
    ]
    for module in (judgekit.judge, transport, litellm_transport, direct):
        assert all(getattr(module, name, None) is not None for name in module.__all__)
