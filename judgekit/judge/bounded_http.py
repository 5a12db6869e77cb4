"""An HTTP client for litellm's OpenAI path that bounds what it reads and remembers what failed.

``judge.max_response_bytes`` must hold for every answer, and litellm reads a whole body into
memory before judgekit sees it. For ``openai/`` models at an explicit ``api_base`` (vLLM,
llama.cpp, proxies: the endpoints that may misbehave), :class:`~judgekit.judge.litellm_transport.LiteLLMTransport`
hands litellm an ``AsyncOpenAI`` client built on :func:`bounded_http_client`: a body whose
Content-Length is over the limit is refused before it is read, one that grows past it stops being
read there. The same wrapper records the transport's own errors (a refused connection, a read
timeout) in :data:`TRANSPORT_ERRORS`, because litellm turns them into a 500 and often drops the
original from the exception chain.

httpx is imported when a client is built, never at import time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextvars import ContextVar
from typing import Any

from judgekit.judge.transport import ResponseFailure
from judgekit.records import FailureReason

__all__ = ["TRANSPORT_ERRORS", "ResponseFailure", "bounded_http_client"]

TRANSPORT_ERRORS: ContextVar[list[BaseException] | None] = ContextVar(
    "judgekit_transport_errors", default=None
)
"""The list the current call's transport errors are appended to (set per attempt)."""


def _record(err: BaseException) -> None:
    seen = TRANSPORT_ERRORS.get()
    if seen is not None:
        seen.append(err)


def _too_large(limit: int, what: str) -> Exception:
    return ResponseFailure(
        FailureReason.RESPONSE_TOO_LARGE, f"{what} judge.max_response_bytes={limit}"
    )


def bounded_http_client(limit: int) -> Any:
    """litellm's own async HTTP client for OpenAI (its transport, proxies and TLS settings), each
    transport wrapped to stop reading a body at ``limit`` bytes and to record its errors.

    A plain ``httpx.AsyncClient`` is used when litellm hands out a session the user shares
    (``litellm.aclient_session``): that one is left untouched.
    """
    import httpx
    import litellm

    http: Any = None
    try:
        from litellm.llms.openai.openai import OpenAIChatCompletion

        http = OpenAIChatCompletion.get_async_http_client()
    except (ImportError, AttributeError):  # another litellm layout: httpx's defaults will do
        http = None
    if http is None or http is litellm.aclient_session:
        http = httpx.AsyncClient(follow_redirects=True)

    class BoundedStream(httpx.AsyncByteStream):
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        async def __aiter__(self) -> AsyncIterator[bytes]:
            size = 0
            try:
                async for chunk in self.inner:
                    size += len(chunk)
                    if size > limit:
                        raise _too_large(limit, "the answer's body passed; reading stopped at")
                    yield chunk
            except Exception as err:
                _record(err)
                raise

        async def aclose(self) -> None:
            await self.inner.aclose()

    class BoundedTransport(httpx.AsyncBaseTransport):
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            try:
                response = await self.inner.handle_async_request(request)
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > limit:
                    await response.aclose()
                    raise _too_large(limit, f"the answer's body is {declared} bytes, over")
            except Exception as err:
                _record(err)
                raise
            response.stream = BoundedStream(response.stream)
            return response

        async def aclose(self) -> None:
            await self.inner.aclose()

    # httpx keeps the default transport and one per proxy mount; wrap them all.
    http._transport = BoundedTransport(http._transport)
    http._mounts = {
        pattern: BoundedTransport(t) if t is not None else None
        for pattern, t in http._mounts.items()
    }
    return http
