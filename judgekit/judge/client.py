"""Judge clients: the JudgeClient protocol and :class:`RetryingClient`, bounded retries over a
transport.

A transport (``judge/transport.py``) sends one request and maps its own exceptions to a
:class:`~judgekit.judge.transport.RetryDecision`; :class:`RetryingClient` keeps, for every
transport, the retries, the whole-attempt timeout, the rate limits, the headers, the redaction and
the checks of the answer. :class:`LiteLLMClient` is one over litellm
(``judge/litellm_transport.py``), :class:`~judgekit.judge.direct.DirectClient` one over a plain
HTTP POST (``judge/direct.py``).

A call that still fails after its retries is not an exception: it comes back as a
:class:`JudgeResponse` whose ``failure`` names the reason, so one bad row never stops the rest.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import random
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from judgekit.config.schema import JudgeConfig
from judgekit.errors import RunError
from judgekit.judge.litellm_transport import LiteLLMTransport, classify
from judgekit.judge.ratelimit import AdaptiveConcurrency, RateLimiter, Slot
from judgekit.judge.transport import Completion, ResponseFailure, RetryDecision, Transport
from judgekit.records import REQUEST_FAILURES, FailureReason, JudgeResponse
from judgekit.secrets import redact, register, resolve_headers

__all__ = [
    "REQUEST_FAILURES",
    "JudgeClient",
    "JudgeResponse",
    "LiteLLMClient",
    "ResponseFailure",
    "RetryPolicy",
    "RetryingClient",
    "SAMPLE_KEY",
    "classify_error",
    "complete_draw",
    "with_sample",
]


class JudgeClient(Protocol):
    """Anything that can answer one chat request; the cache wraps it, tests replace it.

    A client that can take the later draws of ``runner.samples`` also accepts ``sample`` (the
    draw's index) in ``complete`` and ``request_params``, as :class:`RetryingClient` and the
    cache's ``CachingClient`` do; :func:`complete_draw` passes it only for draws after the first.
    """

    async def complete(self, messages: list[dict[str, str]]) -> JudgeResponse:
        """Send one chat request and return its response or its failure."""
        ...

    def request_params(self, messages: list[dict[str, str]]) -> dict[str, Any]:
        """Everything that determines the answer (no key): what the response cache hashes."""
        ...

    async def aclose(self) -> None:
        """Close the connections the client holds (idempotent); ``judge_all`` calls it at the end."""
        ...


@dataclass
class RetryPolicy:
    """Exponential backoff with full jitter, honouring a server's ``Retry-After``."""

    max_retries: int = 3
    backoff_s: float = 1.0
    max_wait_s: float = 60.0
    rng: random.Random = field(default_factory=random.Random)

    def wait_s(self, retry: int, retry_after: float | None) -> float:
        """Seconds to wait before retry number ``retry`` (1-based)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_wait_s)
        ceiling = min(self.backoff_s * 2 ** (retry - 1), self.max_wait_s)
        return ceiling / 2 + self.rng.uniform(0, ceiling / 2)


SAMPLE_KEY = "judgekit_sample"
"""The request parameter naming a repeat draw (``runner.samples``): hashed, never sent."""


def with_sample(params: dict[str, Any], sample: int) -> dict[str, Any]:
    """``params`` for draw ``sample``: unchanged for draw 0 (so caches of runs without repeats
    still hit); else with :data:`SAMPLE_KEY` and, when there is a ``seed``, ``seed + sample``."""
    if sample == 0:
        return params
    drawn = {**params, SAMPLE_KEY: sample}
    if isinstance(params.get("seed"), int):
        drawn["seed"] = params["seed"] + sample
    return drawn


def complete_draw(
    client: JudgeClient, messages: list[dict[str, str]], sample: int
) -> Awaitable[JudgeResponse]:
    """``client.complete`` for draw ``sample``: draw 0 is the plain call (any
    :class:`JudgeClient`); a later draw needs a client whose ``complete`` takes ``sample``
    (:class:`RetryingClient`, the cache's ``CachingClient``)."""
    if sample == 0:
        return client.complete(messages)
    draw: Any = client.complete
    if "sample" not in inspect.signature(draw).parameters:
        raise RunError(
            f"runner.samples: {type(client).__name__} cannot send draw {sample} of a request "
            "(its complete() takes no sample); use runner.samples=1 with it"
        )
    result: Awaitable[JudgeResponse] = draw(messages, sample=sample)
    return result


def classify_error(err: BaseException) -> tuple[str, bool, float | None]:
    """(failure reason, whether to retry, Retry-After seconds) for an exception from a litellm
    call: :func:`judgekit.judge.litellm_transport.classify` as a tuple (kept for callers of the
    earlier API; transports now classify their own exceptions)."""
    decision = classify(err)
    return decision.reason, decision.retry, decision.retry_after


class RetryingClient:
    """Sends each request through ``transport`` with a whole-attempt timeout and bounded retries.

    Every attempt, retries included, takes a slot of ``concurrency`` (if given), then waits for
    ``limiter`` (if given), then calls; a 429 lowers ``concurrency`` and pauses it for the
    server's ``Retry-After``, a success lets it grow back. No slot is held while sleeping before
    a retry. With limits, ``JudgeResponse.extra["throttled_s"]`` is the time the row spent
    waiting for them (slots and rate budget, not the retry backoff).
    """

    def __init__(
        self,
        judge: JudgeConfig,
        transport: Transport | None = None,
        *,
        api_key: str | None,
        response_format: dict[str, Any] | None = None,
        seed: int = 0,
        limiter: RateLimiter | None = None,
        concurrency: AdaptiveConcurrency | None = None,
    ) -> None:
        if transport is None:
            transport = self.default_transport(judge, api_key)
        self.judge = judge
        self.transport = transport
        register(api_key)  # redacted from every failure detail, log line and output
        self._headers = resolve_headers(judge)  # judge.header_env: never in params or the cache key
        self.response_format = response_format
        self.policy = RetryPolicy(
            judge.max_retries, judge.retry_backoff_s, judge.retry_max_wait_s, random.Random(seed)
        )
        self.limiter = limiter
        self.concurrency = concurrency

    def default_transport(self, judge: JudgeConfig, api_key: str | None) -> Transport:
        """The transport used when none is given: a subclass's own (``LiteLLMClient``,
        ``DirectClient``)."""
        raise TypeError(f"{type(self).__name__} needs a transport")

    def request_params(self, messages: list[dict[str, str]], sample: int = 0) -> dict[str, Any]:
        """Everything that determines the answer (no key): the cache hashes exactly this.

        Draw ``sample`` > 0 of ``runner.samples`` adds :data:`SAMPLE_KEY` (kept out of the call,
        so each draw is its own cache entry) and, when ``judge.extra_params`` has a ``seed``,
        sends ``seed + sample``; draw 0 is exactly the request of a run without repeats.
        """
        params: dict[str, Any] = {
            "model": self.judge.model,
            "api_base": self.judge.api_base,
            "messages": messages,
            "temperature": self.judge.temperature,
            "max_tokens": self.judge.max_tokens,
            **self.judge.extra_params,
        }
        if self.response_format is not None:
            params["response_format"] = self.response_format
        if self.judge.logprobs:
            params["logprobs"] = True
            params["top_logprobs"] = self.judge.top_logprobs
        return with_sample(params, sample)

    async def ready(self) -> None:
        """What a first call does once (the transport's imports and warm-up), done before its
        clock starts, so ``latency_s`` times the call."""
        await self.transport.ready()

    def _with_headers(self, params: dict[str, Any]) -> dict[str, Any]:
        """``params`` plus the ``judge.header_env`` headers (merged into any ``extra_headers``)."""
        if not self._headers:
            return params
        return {**params, "extra_headers": {**(params.get("extra_headers") or {}), **self._headers}}

    async def _attempt(self, params: dict[str, Any]) -> Completion:
        """One attempt, bounded as a whole by ``judge.timeout_s`` (connecting, waiting and
        reading the body: a body sent a byte at a time cannot stretch it), its answer checked."""
        sent = {k: v for k, v in params.items() if k != SAMPLE_KEY}
        try:
            completion = await asyncio.wait_for(
                self.transport.send(self._with_headers(sent)), self.judge.timeout_s
            )
        except TimeoutError:
            raise TimeoutError(
                f"no complete answer within judge.timeout_s={self.judge.timeout_s:g} s"
            ) from None
        self._check_answer(completion)
        return completion

    def _check_answer(self, completion: Completion) -> None:
        """Raise :class:`ResponseFailure` for an answer without a usable choice or over the limit."""
        if completion.choices is None:
            raise ResponseFailure(FailureReason.BAD_RESPONSE, "the answer has no 'choices' list")
        if completion.choices == 0:
            raise ResponseFailure(
                FailureReason.EMPTY_RESPONSE, "the answer's 'choices' list is empty"
            )
        text = completion.text
        limit = self.judge.max_response_bytes
        if isinstance(text, str) and len(text) * 4 > limit and len(text.encode()) > limit:
            raise ResponseFailure(
                FailureReason.RESPONSE_TOO_LARGE,
                f"the answer's text is {len(text.encode())} bytes, over "
                f"judge.max_response_bytes={limit}",
            )

    def _decide(self, err: BaseException) -> RetryDecision:
        """The answer checks' failures, else the transport's word (every transport reads the
        TimeoutError of the whole-attempt clock as a retried ``timeout``)."""
        if isinstance(err, ResponseFailure):
            return RetryDecision(err.reason, False)
        return self.transport.classify(err)

    async def aclose(self) -> None:
        """Close the transport's connections (idempotent)."""
        await self.transport.aclose()

    def token_estimate(self, messages: list[dict[str, str]]) -> int:
        """Tokens a call may use, before it is made: ~4 characters a token, plus ``max_tokens``."""
        return len(json.dumps(messages)) // 4 + self.judge.max_tokens

    async def complete(self, messages: list[dict[str, str]], sample: int = 0) -> JudgeResponse:
        """Send one request (draw ``sample`` of ``runner.samples``), retrying 429, 5xx and
        timeouts; never raises for a call failure."""
        await self.ready()
        params = self.request_params(messages, sample)
        estimate = self.token_estimate(messages) if self.limiter is not None else 0
        start = time.perf_counter()
        throttled = 0.0
        attempt = 0
        while True:
            attempt += 1
            async with self._admitted(estimate) as (slot, waited):
                throttled += waited
                try:
                    completion = await self._attempt(params)
                except Exception as err:  # every transport error is classified, none escapes
                    decision = self._decide(err)
                    detail = f"{type(err).__name__}: {redact(str(err))[:300]}"
                    if (
                        decision.reason == FailureReason.RATE_LIMITED
                        and self.concurrency is not None
                    ):
                        self.concurrency.on_rate_limited(decision.retry_after, slot)
                else:
                    result = self._success(completion, attempt, time.perf_counter() - start)
                    self._record_success(result, estimate)
                    return self._with_throttle(result, throttled)
            if not decision.retry or attempt > self.policy.max_retries:
                latency = time.perf_counter() - start
                failed = JudgeResponse(
                    None, decision.reason, detail, attempt, latency, status=decision.status
                )
                return self._with_throttle(failed, throttled)
            await asyncio.sleep(self.policy.wait_s(attempt, decision.retry_after))

    @asynccontextmanager
    async def _admitted(self, estimate: int) -> AsyncIterator[tuple[Slot | None, float]]:
        """One attempt's way in: a concurrency slot, then the rate budget; yields the wait."""
        slot: Slot | None = None
        if self.concurrency is not None:
            slot = await self.concurrency.acquire()
        try:
            waited = slot.waited_s if slot is not None else 0.0
            if self.limiter is not None:
                waited += await self.limiter.acquire(estimate)
            yield slot, waited
        finally:
            if self.concurrency is not None:
                self.concurrency.release()

    def _record_success(self, result: JudgeResponse, estimate: int) -> None:
        if self.concurrency is not None:
            self.concurrency.on_success()
        if self.limiter is not None:
            known = result.prompt_tokens is not None and result.completion_tokens is not None
            used = (result.prompt_tokens or 0) + (result.completion_tokens or 0)
            self.limiter.record_usage(estimate, used if known else None)

    def _with_throttle(self, result: JudgeResponse, throttled: float) -> JudgeResponse:
        if self.limiter is not None or self.concurrency is not None:
            result.extra["throttled_s"] = throttled
        return result

    def _success(self, completion: Completion, attempts: int, latency: float) -> JudgeResponse:
        return JudgeResponse(
            text=completion.text,
            attempts=attempts,
            latency_s=latency,
            prompt_tokens=completion.prompt_tokens,
            completion_tokens=completion.completion_tokens,
            logprobs=completion.logprobs,
        )


class LiteLLMClient(RetryingClient):
    """A :class:`RetryingClient` over a :class:`~judgekit.judge.litellm_transport.LiteLLMTransport`
    (``judge.client: litellm``, the default)."""

    def default_transport(self, judge: JudgeConfig, api_key: str | None) -> Transport:
        return LiteLLMTransport(judge, api_key)
