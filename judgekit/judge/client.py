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

from judgekit.config.schema import JudgeConfig
from judgekit.judge.bounded_http import TRANSPORT_ERRORS, ResponseFailure, bounded_http_client
from judgekit.judge.ratelimit import AdaptiveConcurrency, RateLimiter, Slot
from judgekit.records import REQUEST_FAILURES, JudgeResponse
from judgekit.secrets import redact, register, resolve_headers

__all__ = [
    "REQUEST_FAILURES",
    "JudgeClient",
    "JudgeResponse",
    "LiteLLMClient",
    "ResponseFailure",
    "RetryPolicy",
    "classify_error",
]

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


def _chain(err: BaseException) -> list[BaseException]:
    """``err`` and every exception it was raised from or while handling (``__cause__`` and
    ``__context__``, breadth first): litellm often keeps the original only in one of them."""
    chain: list[BaseException] = []
    queue: list[BaseException] = [err]
    while queue and len(chain) < 30:
        current = queue.pop(0)
        if any(current is seen for seen in chain):
            continue
        chain.append(current)
        queue.extend(e for e in (current.__cause__, current.__context__) if e is not None)
    return chain


def _types(module: str, *names: str) -> tuple[type, ...]:
    """Exception classes of ``module`` if it is already imported (never imports it)."""
    loaded = sys.modules.get(module)
    return tuple(getattr(loaded, n) for n in names if hasattr(loaded, n)) if loaded else ()


def _timeout_types() -> tuple[type, ...]:
    return (
        TimeoutError,  # asyncio.TimeoutError too; aiohttp's ServerTimeoutError is one
        *_types("litellm", "Timeout"),
        *_types("openai", "APITimeoutError"),
        *_types("httpx", "TimeoutException"),
    )


def _connection_types() -> tuple[type, ...]:
    return (
        ConnectionError,  # refused, reset, aborted; the direct client raises it
        *_types("aiohttp", "ClientConnectionError"),
        *_types("httpx", "NetworkError", "RemoteProtocolError"),
        *_types("openai", "APIConnectionError"),
    )


def _refused_before_sending(chain: list[BaseException]) -> bool:
    """A ValueError/TypeError in the chain: the request could not be built (e.g. a NaN
    parameter is not JSON), so nothing reached the server. Undecodable answers are excluded."""
    return any(
        isinstance(e, (ValueError, TypeError))
        and not isinstance(e, (json.JSONDecodeError, UnicodeDecodeError))
        for e in chain
    )


_NO_CHOICES = ("response with no 'choices'", "'choices' that is not a list")


def _unreadable_answer(chain: list[BaseException]) -> bool:
    """The endpoint answered 2xx with a body that is not a chat completion.

    litellm reports a body without ``choices`` as a 500 of its own, with no exception type for
    it (and the original often lost from the chain), so only its message tells.
    """
    return any(
        isinstance(e, json.JSONDecodeError)
        or (type(e).__module__.startswith("litellm") and any(m in str(e) for m in _NO_CHOICES))
        for e in chain
    )


def classify_error(err: BaseException) -> tuple[str, bool, float | None]:
    """(failure reason, whether to retry, Retry-After seconds) for an exception from a call.

    Decided by exception type along the whole chain: litellm wraps nearly everything (a refused
    connection, a NaN it cannot serialise) in a 500, so its status alone says little.
    """
    litellm = sys.modules.get("litellm")  # the direct client never imports it
    chain = _chain(err)
    for e in chain:
        if isinstance(e, ResponseFailure):
            return e.reason, False, None
    if any(isinstance(e, _timeout_types()) for e in chain):
        return "timeout", True, None
    if any(isinstance(e, _connection_types()) for e in chain):
        # A refused or dropped connection: not the server's answer (litellm reports it as 500).
        return "request_error", True, None
    status = _status_code(err)
    if (litellm is not None and isinstance(err, litellm.RateLimitError)) or status == 429:
        return "rate_limited", True, _retry_after(err)
    if _refused_before_sending(chain):
        return "bad_request", False, None
    if _unreadable_answer(chain):
        return "bad_response", False, None
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


def _refuse_unsendable(params: dict[str, Any]) -> None:
    """Raise ValueError for a request that is not valid JSON (a NaN or infinite parameter)
    before litellm sees it: litellm reports that as a 500, as if the server had answered."""
    try:
        json.dumps(params, allow_nan=False, default=str)
    except ValueError as err:
        raise ValueError(f"the request cannot be sent as JSON: {err}") from None


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
        self._openai: Any = None
        self._openai_loop: Any = None
        self._warming: Any = None

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

    async def ready(self) -> None:
        """What a first call does once, done before its clock starts, so ``latency_s`` times the
        call: import litellm (seconds on a loaded machine), build the bounded HTTP client (its TLS
        setup reads the CA bundle) and make one offline mock call (litellm builds its response
        models on first use). Concurrent first calls wait for the same warm-up."""
        import litellm

        litellm.suppress_debug_info = True
        self._bounded_client(self._api_key if self._api_key is not None else "no-key")
        if self._warming is None:
            self._warming = asyncio.ensure_future(self._warm_up())
        await self._warming

    async def _warm_up(self) -> None:
        import litellm

        try:
            await litellm.acompletion(
                model=self.judge.model,
                messages=[{"role": "user", "content": "warm-up"}],
                mock_response="ok",
                api_key="no-key",
            )
        except Exception:  # noqa: BLE001, S110 - a warm-up that fails costs only timing accuracy
            pass

    async def _call_once(self, params: dict[str, Any]) -> Any:
        import litellm

        _refuse_unsendable(params)
        key = self._api_key if self._api_key is not None else "no-key"
        bounded = self._bounded_client(key)
        extra = {"client": bounded} if bounded is not None else {}
        return await litellm.acompletion(
            **self._with_headers(params),
            api_key=key,
            timeout=self.judge.timeout_s,
            num_retries=0,
            max_retries=0,
            **extra,
        )

    def _with_headers(self, params: dict[str, Any]) -> dict[str, Any]:
        """``params`` plus the ``judge.header_env`` headers (merged into any ``extra_headers``)."""
        if not self._headers:
            return params
        return {**params, "extra_headers": {**(params.get("extra_headers") or {}), **self._headers}}

    def _bounded_client(self, key: str) -> Any:
        """For ``openai/`` models at an explicit ``api_base`` (any OpenAI-compatible server): an
        ``AsyncOpenAI`` client whose HTTP client refuses a body whose Content-Length is over
        ``judge.max_response_bytes`` and stops reading one that grows past it, so an oversized
        answer is never held in memory. Other providers keep litellm's own client; their answer
        text is checked against the limit after it arrived (it is not kept, but it was read)."""
        if not (self.judge.model.startswith("openai/") and self.judge.api_base):
            return None
        loop = asyncio.get_running_loop()
        if self._openai is None or self._openai_loop is not loop:
            from openai import AsyncOpenAI

            self._openai = AsyncOpenAI(
                api_key=key,
                base_url=self.judge.api_base,
                http_client=bounded_http_client(self.judge.max_response_bytes),
                timeout=self.judge.timeout_s,
                max_retries=0,
            )
            self._openai_loop = loop
        return self._openai

    async def _attempt(self, params: dict[str, Any]) -> Any:
        """One attempt, bounded as a whole by ``judge.timeout_s`` (connecting, waiting and
        reading the body: a body sent a byte at a time cannot stretch it), its answer checked.

        An error the bounded HTTP client saw (refused connection, oversized body) is raised as
        itself: litellm turns it into a 500 and often drops it from the exception chain.
        """
        seen: list[BaseException] = []
        token = TRANSPORT_ERRORS.set(seen)
        try:
            response = await asyncio.wait_for(self._call_once(params), self.judge.timeout_s)
        except TimeoutError:
            raise TimeoutError(
                f"no complete answer within judge.timeout_s={self.judge.timeout_s:g} s"
            ) from None
        except Exception as err:
            found = next((e for e in _chain(err) if isinstance(e, ResponseFailure)), None)
            if found is not None:
                raise found from None
            if seen:
                raise seen[-1] from err
            raise
        finally:
            TRANSPORT_ERRORS.reset(token)
        self._check_answer(response)
        return response

    def _check_answer(self, response: Any) -> None:
        """Raise :class:`ResponseFailure` for an answer without a usable choice or over the limit."""
        choices = getattr(response, "choices", None)
        if choices is None:
            raise ResponseFailure("bad_response", "the answer has no 'choices'")
        if not choices:
            raise ResponseFailure("empty_response", "the answer's 'choices' list is empty")
        text = getattr(getattr(choices[0], "message", None), "content", None)
        limit = self.judge.max_response_bytes
        if isinstance(text, str) and len(text) * 4 > limit and len(text.encode()) > limit:
            raise ResponseFailure(
                "response_too_large",
                f"the answer's text is {len(text.encode())} bytes, over "
                f"judge.max_response_bytes={limit}",
            )

    async def aclose(self) -> None:
        """Close the bounded HTTP client, if one was opened (idempotent)."""
        client, self._openai = self._openai, None
        if client is not None and self._openai_loop is asyncio.get_running_loop():
            await client.close()

    def token_estimate(self, messages: list[dict[str, str]]) -> int:
        """Tokens a call may use, before it is made: ~4 characters a token, plus ``max_tokens``."""
        return len(json.dumps(messages)) // 4 + self.judge.max_tokens

    async def complete(self, messages: list[dict[str, str]]) -> JudgeResponse:
        """Send one request, retrying 429, 5xx and timeouts; never raises for a call failure."""
        await self.ready()
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
                    response = await self._attempt(params)
                except Exception as err:  # every provider error is classified, none escapes
                    reason, retryable, retry_after = classify_error(err)
                    detail = f"{type(err).__name__}: {redact(str(err))[:300]}"
                    if reason == "rate_limited" and self.concurrency is not None:
                        self.concurrency.on_rate_limited(retry_after, slot)
                    status = _status_code(err)
                else:
                    result = self._success(response, attempt, time.perf_counter() - start)
                    self._record_success(result, estimate)
                    return self._with_throttle(result, throttled)
            if not retryable or attempt > self.policy.max_retries:
                latency = time.perf_counter() - start
                failed = JudgeResponse(None, reason, detail, attempt, latency, status=status)
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
