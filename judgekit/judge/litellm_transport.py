"""The litellm transport (``judge.client: litellm``, the default): any provider litellm speaks.

:meth:`LiteLLMTransport.send` calls ``litellm.acompletion`` once (litellm's own retries off) and
turns its ``ModelResponse`` into a :class:`~judgekit.judge.transport.Completion`;
:func:`classify` maps litellm's, openai's and httpx's exceptions to a retry decision by type.
For ``openai/`` models at an explicit ``api_base`` litellm gets a bounded HTTP client
(``judge/bounded_http.py``) so an oversized answer is never held in memory.

litellm is imported by the first call (or :meth:`LiteLLMTransport.ready`), never at import time.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from judgekit.config.schema import JudgeConfig
from judgekit.judge.bounded_http import TRANSPORT_ERRORS, bounded_http_client
from judgekit.judge.transport import (
    Completion,
    RetryDecision,
    exception_chain,
    response_failure,
)
from judgekit.records import FailureReason

__all__ = ["LiteLLMTransport", "classify"]


def _types(module: str, *names: str) -> tuple[type, ...]:
    """Exception classes of ``module`` if it is already imported (never imports it): an
    exception of a module nobody imported cannot have been raised."""
    loaded = sys.modules.get(module)
    return tuple(getattr(loaded, n) for n in names if hasattr(loaded, n)) if loaded else ()


def _timeout_types() -> tuple[type, ...]:
    return (
        TimeoutError,  # asyncio.TimeoutError too
        *_types("litellm", "Timeout"),
        *_types("openai", "APITimeoutError"),
        *_types("httpx", "TimeoutException"),
    )


def _connection_types() -> tuple[type, ...]:
    return (
        ConnectionError,  # refused, reset, aborted
        *_types("httpx", "NetworkError", "RemoteProtocolError"),
        *_types("openai", "APIConnectionError"),  # litellm.APIConnectionError is one
    )


def _status(err: BaseException) -> int | None:
    """The HTTP status an API error of litellm, openai or httpx carries (their ``status_code``
    attribute, or their response's)."""
    if not isinstance(err, (*_types("openai", "APIError"), *_types("httpx", "HTTPStatusError"))):
        return None
    status = getattr(err, "status_code", None)
    if isinstance(status, int):
        return status
    status = getattr(getattr(err, "response", None), "status_code", None)
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
    it (and the original often lost from the chain), so only its message tells: the one place a
    message is matched, and only on litellm's own exceptions.
    """
    return any(
        isinstance(e, json.JSONDecodeError)
        or (type(e).__module__.startswith("litellm") and any(m in str(e) for m in _NO_CHOICES))
        for e in chain
    )


def classify(err: BaseException) -> RetryDecision:
    """The retry decision for an exception from a litellm call, by type along the whole chain.

    litellm wraps nearly everything (a refused connection, a NaN it cannot serialise) in a 500,
    so its status alone says little: the transport's own errors are looked for first.
    """
    failure = response_failure(err)
    if failure is not None:
        return RetryDecision(failure.reason, False)
    chain = exception_chain(err)
    if any(isinstance(e, _timeout_types()) for e in chain):
        return RetryDecision(FailureReason.TIMEOUT, True)
    if any(isinstance(e, _connection_types()) for e in chain):
        # A refused or dropped connection: not the server's answer (litellm reports it as 500).
        return RetryDecision(FailureReason.REQUEST_ERROR, True)
    status = _status(err)
    if isinstance(err, _types("litellm", "RateLimitError")) or status == 429:
        return RetryDecision(FailureReason.RATE_LIMITED, True, _retry_after(err), 429)
    if _refused_before_sending(chain):
        return RetryDecision(FailureReason.BAD_REQUEST, False)
    if _unreadable_answer(chain):
        return RetryDecision(FailureReason.BAD_RESPONSE, False, status=status)
    if status is not None and status >= 500:
        return RetryDecision(FailureReason.SERVER_ERROR, True, _retry_after(err), status)
    if status is not None and 400 <= status < 500:
        return RetryDecision(FailureReason.BAD_REQUEST, False, status=status)
    return RetryDecision(FailureReason.REQUEST_ERROR, False, status=status)


def _refuse_unsendable(params: dict[str, Any]) -> None:
    """Raise ValueError for a request that is not valid JSON (a NaN or infinite parameter)
    before litellm sees it: litellm reports that as a 500, as if the server had answered."""
    try:
        json.dumps(params, allow_nan=False, default=str)
    except ValueError as err:
        raise ValueError(f"the request cannot be sent as JSON: {err}") from None


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


def completion_of(response: Any) -> Completion:
    """litellm's ``ModelResponse`` as a :class:`Completion` (litellm returns only on a 2xx)."""
    choices = getattr(response, "choices", None)
    if not isinstance(choices, list) or not choices:
        return Completion(None, choices=None if not isinstance(choices, list) else 0)
    choice = choices[0]
    usage = getattr(response, "usage", None)
    return Completion(
        text=getattr(getattr(choice, "message", None), "content", None),
        logprobs=_logprobs(choice),
        prompt_tokens=getattr(usage, "prompt_tokens", None),
        completion_tokens=getattr(usage, "completion_tokens", None),
        choices=len(choices),
    )


class LiteLLMTransport:
    """Sends one request through ``litellm.acompletion``; see the module docstring."""

    def __init__(self, judge: JudgeConfig, api_key: str | None) -> None:
        self.judge = judge
        self._key = api_key if api_key is not None else "no-key"
        self._openai: Any = None
        self._openai_loop: Any = None
        self._warming: Any = None

    async def ready(self) -> None:
        """Import litellm (seconds on a loaded machine), build the bounded HTTP client (its TLS
        setup reads the CA bundle) and make one offline mock call (litellm builds its response
        models on first use). Concurrent first calls wait for the same warm-up."""
        import litellm

        litellm.suppress_debug_info = True
        self._bounded_client()
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

    async def send(self, params: dict[str, Any]) -> Completion:
        """One ``litellm.acompletion`` call. An error the bounded HTTP client saw (a refused
        connection, an oversized body) is raised as itself: litellm turns it into a 500 and
        often drops it from the exception chain."""
        import litellm

        _refuse_unsendable(params)
        bounded = self._bounded_client()
        extra = {"client": bounded} if bounded is not None else {}
        seen: list[BaseException] = []
        token = TRANSPORT_ERRORS.set(seen)
        try:
            response = await litellm.acompletion(
                **params,
                api_key=self._key,
                timeout=self.judge.timeout_s,
                num_retries=0,
                max_retries=0,
                **extra,
            )
        except Exception as err:
            found = response_failure(err)
            if found is not None:
                raise found from None
            if seen:
                raise seen[-1] from err
            raise
        finally:
            TRANSPORT_ERRORS.reset(token)
        return completion_of(response)

    def classify(self, err: BaseException) -> RetryDecision:
        """See :func:`classify`."""
        return classify(err)

    def _bounded_client(self) -> Any:
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
                api_key=self._key,
                base_url=self.judge.api_base,
                http_client=bounded_http_client(self.judge.max_response_bytes),
                timeout=self.judge.timeout_s,
                max_retries=0,
            )
            self._openai_loop = loop
        return self._openai

    async def aclose(self) -> None:
        """Close the bounded HTTP client, if one was opened (idempotent)."""
        client, self._openai = self._openai, None
        if client is not None and self._openai_loop is asyncio.get_running_loop():
            await client.close()
