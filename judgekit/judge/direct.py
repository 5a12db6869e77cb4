"""The direct transport (``judge.client: direct``): one aiohttp POST per call, no litellm.

litellm stays the default. Against a fast local endpoint (vLLM, llama.cpp, a proxy on the same
machine) litellm's own CPU cost per call (a few milliseconds) caps a run at a few hundred calls a
second; this transport sends the same request body straight to ``<api_base>/chat/completions``
and costs a fraction of that (``bench/bench_direct.py``). It speaks only the OpenAI
chat-completions protocol, so it needs ``openai/<model>`` and ``judge.api_base``. Retries,
timeouts, rate limits, the response cache and failure reasons are
:class:`~judgekit.judge.client.RetryingClient`'s, shared with litellm: only the transport
differs, and the request parameters (hence the cache keys) are identical.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from judgekit.config.schema import JudgeConfig
from judgekit.judge.client import RetryingClient
from judgekit.judge.transport import (
    Completion,
    ResponseFailure,
    RetryDecision,
    exception_chain,
    response_failure,
)
from judgekit.records import FailureReason

__all__ = ["DirectClient", "DirectTransport", "HTTPStatusError", "classify"]

_PREFIX = "openai/"


class HTTPStatusError(Exception):
    """A non-2xx answer."""

    def __init__(self, status_code: int, body: str, headers: Any = None) -> None:
        super().__init__(f"HTTP {status_code}: {body[:300]}")
        self.status_code = status_code
        self.headers = headers

    def retry_after(self) -> float | None:
        """The answer's ``Retry-After`` in seconds, when it gave one as a number."""
        value = self.headers.get("Retry-After") if self.headers is not None else None
        try:
            return float(value) if value is not None else None
        except ValueError:
            return None


def _timeout_types() -> tuple[type, ...]:
    import aiohttp

    return (TimeoutError, aiohttp.ServerTimeoutError)


def _connection_types() -> tuple[type, ...]:
    import aiohttp

    return (ConnectionError, aiohttp.ClientConnectionError, aiohttp.ClientPayloadError)


def classify(err: BaseException) -> RetryDecision:
    """The retry decision for an exception from a direct call: aiohttp's errors and the HTTP
    status, by type."""
    failure = response_failure(err)
    if failure is not None:
        return RetryDecision(failure.reason, False)
    chain = exception_chain(err)
    if any(isinstance(e, _timeout_types()) for e in chain):
        return RetryDecision(FailureReason.TIMEOUT, True)
    if any(isinstance(e, _connection_types()) for e in chain):
        return RetryDecision(FailureReason.REQUEST_ERROR, True)
    if isinstance(err, HTTPStatusError):
        status = err.status_code
        if status == 429:
            return RetryDecision(FailureReason.RATE_LIMITED, True, err.retry_after(), status)
        if status >= 500:
            return RetryDecision(FailureReason.SERVER_ERROR, True, err.retry_after(), status)
        if 400 <= status < 500:
            return RetryDecision(FailureReason.BAD_REQUEST, False, status=status)
        return RetryDecision(FailureReason.REQUEST_ERROR, False, status=status)
    if isinstance(err, (ValueError, TypeError)):  # the body cannot be built (a NaN parameter)
        return RetryDecision(FailureReason.BAD_REQUEST, False)
    return RetryDecision(FailureReason.REQUEST_ERROR, False)


def _logprobs(choice: dict[str, Any]) -> list[dict[str, Any]] | None:
    logprobs = choice.get("logprobs")
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    return list(content) if content else None


def completion_of(data: Any) -> Completion:
    """A chat-completion JSON body as a :class:`Completion`; raises :class:`ResponseFailure`
    (``bad_response``) when its first choice is not a chat message."""
    choices = data.get("choices") if isinstance(data, dict) else None
    if not isinstance(choices, list) or not choices:
        return Completion(None, choices=None if not isinstance(choices, list) else 0)
    choice = choices[0]
    message = choice.get("message") if isinstance(choice, dict) else None
    if not isinstance(message, dict):
        raise ResponseFailure(
            FailureReason.BAD_RESPONSE, f"the answer's first choice has no message: {choice!r:.300}"
        )
    usage = data.get("usage") or {}
    return Completion(
        text=message.get("content"),
        logprobs=_logprobs(choice),
        prompt_tokens=usage.get("prompt_tokens"),
        completion_tokens=usage.get("completion_tokens"),
        choices=len(choices),
    )


async def _read_bounded(answer: Any, limit: int) -> bytes:
    """The body, read in chunks; reading stops as soon as it passes ``limit`` bytes."""
    declared = answer.content_length
    if declared is not None and declared > limit:
        raise ResponseFailure(
            FailureReason.RESPONSE_TOO_LARGE,
            f"the answer's body is {declared} bytes (Content-Length), over "
            f"judge.max_response_bytes={limit}; not read",
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in answer.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise ResponseFailure(
                FailureReason.RESPONSE_TOO_LARGE,
                f"the answer's body passed judge.max_response_bytes={limit}; reading stopped there",
            )
        chunks.append(chunk)
    return b"".join(chunks)


class DirectTransport:
    """Sends one request as an HTTP POST with aiohttp.

    The session is opened on the first call, in the running event loop, and closed by
    :meth:`aclose`.
    """

    def __init__(self, judge: JudgeConfig, api_key: str | None) -> None:
        self.judge = judge
        self._api_key = api_key
        self._session: Any = None
        self._loop: Any = None

    def _url(self) -> str:
        return str(self.judge.api_base).rstrip("/") + "/chat/completions"

    def _body(self, params: dict[str, Any]) -> dict[str, Any]:
        body = {k: v for k, v in params.items() if k not in ("api_base", "extra_headers")}
        body["model"] = str(body["model"]).removeprefix(_PREFIX)
        return body

    async def _open(self) -> Any:
        import aiohttp

        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            headers = {"Content-Type": "application/json"}
            if self._api_key is not None:
                headers["Authorization"] = f"Bearer {self._api_key}"
            # No pool limit of aiohttp's own: judgekit's workers already bound the calls in flight.
            connector = aiohttp.TCPConnector(limit=0)
            self._session = aiohttp.ClientSession(headers=headers, connector=connector)
            self._loop = loop
        return self._session

    async def ready(self) -> None:
        """Import aiohttp before the first call's clock starts."""
        import aiohttp  # noqa: F401

    async def send(self, params: dict[str, Any]) -> Completion:
        """POST ``params`` (its ``extra_headers`` as HTTP headers) and read the answer, bounded
        by ``judge.max_response_bytes``."""
        import aiohttp

        body = json.dumps(self._body(params), allow_nan=False)  # ValueError: a NaN parameter
        session = await self._open()
        timeout = aiohttp.ClientTimeout(total=self.judge.timeout_s)
        headers = params.get("extra_headers") or None
        try:
            async with session.post(
                self._url(), data=body, headers=headers, timeout=timeout
            ) as answer:
                raw = await _read_bounded(answer, self.judge.max_response_bytes)
                text = raw.decode(answer.charset or "utf-8", errors="replace")
                if answer.status >= 300:
                    raise HTTPStatusError(answer.status, text, answer.headers)
        except aiohttp.ClientConnectionError as err:
            if isinstance(err, aiohttp.ServerTimeoutError):
                raise TimeoutError(str(err)) from err
            # The builtin, named in the row's detail; classify() knows aiohttp's types as well.
            raise ConnectionError(f"{type(err).__name__}: {err}") from err
        try:
            data = json.loads(text)
        except ValueError as err:
            raise ResponseFailure(
                FailureReason.BAD_RESPONSE, f"not a chat completion: {text[:300]}"
            ) from err
        return completion_of(data)

    def classify(self, err: BaseException) -> RetryDecision:
        """See :func:`classify`."""
        return classify(err)

    async def aclose(self) -> None:
        """Close the HTTP session (idempotent)."""
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None


class DirectClient(RetryingClient):
    """A :class:`RetryingClient` over a :class:`DirectTransport`; same arguments as
    :class:`~judgekit.judge.client.LiteLLMClient`."""

    def default_transport(self, judge: JudgeConfig, api_key: str | None) -> DirectTransport:
        return DirectTransport(judge, api_key)
