"""Judge clients: the JudgeClient protocol and its litellm implementation with bounded retries.

A call that still fails after its retries is not an exception: it comes back as a
:class:`JudgeResponse` whose ``failure`` names the reason, so one bad row never stops the rest.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from judgekit.config import JudgeConfig
from judgekit.ratelimit import AdaptiveConcurrency, RateLimiter, Slot
from judgekit.secrets import redact, register, resolve_headers

__all__ = ["JudgeClient", "JudgeResponse", "LiteLLMClient", "RetryPolicy", "classify_error"]

REQUEST_FAILURES = ("timeout", "rate_limited", "server_error", "request_error", "bad_request")


@dataclass
class JudgeResponse:
    """What one judge call produced: the text, or the reason it failed, and what it cost."""

    text: str | None
    failure: str | None = None
    """None on success; else one of ``REQUEST_FAILURES``."""
    detail: str = ""
    attempts: int = 1
    latency_s: float = 0.0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    logprobs: list[dict[str, Any]] | None = None
    cached: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    """Further per-call facts; ``throttled_s`` when the client has rate limits (see
    :class:`LiteLLMClient`)."""


class JudgeClient(Protocol):
    """Anything that can answer one chat request; tests and caches wrap or replace it."""

    async def complete(self, messages: list[dict[str, str]]) -> JudgeResponse:
        """Send one chat request and return its response or its failure."""
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


def _status_code(err: BaseException) -> int | None:
    status = getattr(err, "status_code", None)
    if isinstance(status, int):
        return status
    response = getattr(err, "response", None)
    status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


def _retry_after(err: BaseException) -> float | None:
    headers: Any = getattr(err, "litellm_response_headers", None)
    if headers is None:
        headers = getattr(getattr(err, "response", None), "headers", None)
    if headers is None:
        headers = getattr(err, "headers", None)
    if not headers:
        return None
    try:
        value = headers.get("retry-after") or headers.get("Retry-After")
    except AttributeError:
        return None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def classify_error(err: BaseException) -> tuple[str, bool, float | None]:
    """(failure reason, whether to retry, Retry-After seconds) for an exception from a call."""
    litellm = sys.modules.get("litellm")  # the direct client never imports it
    if isinstance(err, asyncio.TimeoutError) or (
        litellm is not None and isinstance(err, litellm.Timeout)
    ):
        return "timeout", True, None
    if "Connection error" in str(err) or isinstance(err, ConnectionError):
        # litellm reports a refused or dropped connection as a 500; it is not the server's answer.
        return "request_error", True, None
    status = _status_code(err)
    if (litellm is not None and isinstance(err, litellm.RateLimitError)) or status == 429:
        return "rate_limited", True, _retry_after(err)
    if status is not None and status >= 500:
        return "server_error", True, _retry_after(err)
    if (
        litellm is not None
        and isinstance(err, litellm.APIConnectionError)
        and (status is None or status >= 500)
    ):
        return "request_error", True, None
    if status is not None and 400 <= status < 500:
        return "bad_request", False, None
    return "request_error", False, None


def _usage(response: Any) -> tuple[int | None, int | None]:
    usage = getattr(response, "usage", None)
    return getattr(usage, "prompt_tokens", None), getattr(usage, "completion_tokens", None)


def _logprobs(choice: Any) -> list[dict[str, Any]] | None:
    logprobs = getattr(choice, "logprobs", None)
    if logprobs is None:
        return None
    content = (
        logprobs.get("content")
        if isinstance(logprobs, dict)
        else getattr(logprobs, "content", None)
    )
    if not content:
        return None
    return [c if isinstance(c, dict) else c.model_dump() for c in content]


class LiteLLMClient:
    """Calls ``litellm.acompletion`` with a per-call timeout and judgekit's own retries.

    Every attempt, retries included, takes a slot of ``concurrency`` (if given), then waits for
    ``limiter`` (if given), then calls; a 429 lowers ``concurrency`` and pauses it for the
    server's ``Retry-After``, a success lets it grow back. No slot is held while sleeping before
    a retry. With limits, ``JudgeResponse.extra["throttled_s"]`` is the time the row spent
    waiting for them (slots and rate budget, not the retry backoff).
    """

    def __init__(
        self,
        judge: JudgeConfig,
        *,
        api_key: str | None,
        response_format: dict[str, Any] | None = None,
        seed: int = 0,
        limiter: RateLimiter | None = None,
        concurrency: AdaptiveConcurrency | None = None,
    ) -> None:
        self.judge = judge
        self._api_key = api_key
        register(api_key)  # redacted from every failure detail, log line and output
        self._headers = resolve_headers(judge)  # judge.header_env: never in params or the cache key
        self.response_format = response_format
        self.policy = RetryPolicy(
            judge.max_retries, judge.retry_backoff_s, judge.retry_max_wait_s, random.Random(seed)
        )
        self.limiter = limiter
        self.concurrency = concurrency

    def request_params(self, messages: list[dict[str, str]]) -> dict[str, Any]:
        """Everything that determines the answer (no key): the cache hashes exactly this."""
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
        return params

    async def _call_once(self, params: dict[str, Any]) -> Any:
        import litellm

        litellm.suppress_debug_info = True

        key = self._api_key if self._api_key is not None else "no-key"
        return await asyncio.wait_for(
            litellm.acompletion(
                **self._with_headers(params),
                api_key=key,
                timeout=self.judge.timeout_s,
                num_retries=0,
                max_retries=0,
            ),
            timeout=self.judge.timeout_s + 5,
        )

    def _with_headers(self, params: dict[str, Any]) -> dict[str, Any]:
        """``params`` plus the ``judge.header_env`` headers (merged into any ``extra_headers``)."""
        if not self._headers:
            return params
        return {**params, "extra_headers": {**(params.get("extra_headers") or {}), **self._headers}}

    def token_estimate(self, messages: list[dict[str, str]]) -> int:
        """Tokens a call may use, before it is made: ~4 characters a token, plus ``max_tokens``."""
        return len(json.dumps(messages)) // 4 + self.judge.max_tokens

    async def complete(self, messages: list[dict[str, str]]) -> JudgeResponse:
        """Send one request, retrying 429, 5xx and timeouts; never raises for a call failure."""
        params = self.request_params(messages)
        estimate = self.token_estimate(messages) if self.limiter is not None else 0
        start = time.perf_counter()
        throttled = 0.0
        attempt = 0
        while True:
            attempt += 1
            async with self._admitted(estimate) as (slot, waited):
                throttled += waited
                try:
                    response = await self._call_once(params)
                except Exception as err:  # every provider error is classified, none escapes
                    reason, retryable, retry_after = classify_error(err)
                    detail = f"{type(err).__name__}: {redact(str(err))[:300]}"
                    if reason == "rate_limited" and self.concurrency is not None:
                        self.concurrency.on_rate_limited(retry_after, slot)
                else:
                    result = self._success(response, attempt, time.perf_counter() - start)
                    self._record_success(result, estimate)
                    return self._with_throttle(result, throttled)
            if not retryable or attempt > self.policy.max_retries:
                failed = JudgeResponse(None, reason, detail, attempt, time.perf_counter() - start)
                return self._with_throttle(failed, throttled)
            await asyncio.sleep(self.policy.wait_s(attempt, retry_after))

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

    def _success(self, response: Any, attempts: int, latency: float) -> JudgeResponse:
        choice = response.choices[0]
        prompt_tokens, completion_tokens = _usage(response)
        return JudgeResponse(
            text=choice.message.content,
            attempts=attempts,
            latency_s=latency,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            logprobs=_logprobs(choice),
        )
