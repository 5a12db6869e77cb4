"""A direct OpenAI-compatible client (``judge.client: direct``): one aiohttp POST per call.

litellm stays the default. Against a fast local endpoint (vLLM, llama.cpp, a proxy on the same
machine) litellm's own CPU cost per call (a few milliseconds) caps a run at a few hundred calls a
second; this client sends the same request body straight to ``<api_base>/chat/completions`` and
costs a fraction of that (``bench/bench_direct.py``). It speaks only the OpenAI chat-completions
protocol, so it needs ``openai/<model>`` and ``judge.api_base``. Retries, timeouts, rate limits,
the response cache and failure reasons are :class:`~judgekit.judge.client.LiteLLMClient`'s own: only the
transport differs, and the request parameters (hence the cache keys) are identical.
"""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

from judgekit.judge.bounded_http import ResponseFailure
from judgekit.judge.client import LiteLLMClient

__all__ = ["DirectClient", "HTTPStatusError"]

_PREFIX = "openai/"


class HTTPStatusError(Exception):
    """A non-2xx answer, or a 2xx answer that is not a chat completion."""

    def __init__(self, status_code: int, body: str, headers: Any = None) -> None:
        super().__init__(f"HTTP {status_code}: {body[:300]}")
        self.status_code = status_code
        self.headers = headers


def _namespace(data: Any) -> Any:
    """The parts of a chat-completion JSON that :meth:`LiteLLMClient._success` reads."""
    if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
        keys = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise ResponseFailure("bad_response", f"the answer has no 'choices' list (found {keys})")
    if not data["choices"]:
        raise ResponseFailure("empty_response", "the answer's 'choices' list is empty")
    choice = data["choices"][0]
    message = SimpleNamespace(content=choice["message"].get("content"))
    usage = data.get("usage") or {}
    return SimpleNamespace(
        choices=[SimpleNamespace(message=message, logprobs=choice.get("logprobs"))],
        usage=SimpleNamespace(
            prompt_tokens=usage.get("prompt_tokens"),
            completion_tokens=usage.get("completion_tokens"),
        ),
    )


async def _read_bounded(answer: Any, limit: int) -> bytes:
    """The body, read in chunks; reading stops as soon as it passes ``limit`` bytes."""
    declared = answer.content_length
    if declared is not None and declared > limit:
        raise ResponseFailure(
            "response_too_large",
            f"the answer's body is {declared} bytes (Content-Length), over "
            f"judge.max_response_bytes={limit}; not read",
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in answer.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise ResponseFailure(
                "response_too_large",
                f"the answer's body passed judge.max_response_bytes={limit}; reading stopped there",
            )
        chunks.append(chunk)
    return b"".join(chunks)


class DirectClient(LiteLLMClient):
    """:class:`LiteLLMClient` with the litellm call replaced by a plain HTTP POST.

    The aiohttp session is opened on the first call, in the running event loop, and closed by
    :meth:`aclose` (``judge_all`` calls it when it ends).
    """

    _session: Any = None
    _loop: Any = None

    def _url(self) -> str:
        return str(self.judge.api_base).rstrip("/") + "/chat/completions"

    def _body(self, params: dict[str, Any]) -> dict[str, Any]:
        body = {k: v for k, v in params.items() if k != "api_base"}
        body["model"] = str(body["model"]).removeprefix(_PREFIX)
        return body

    async def _open(self) -> Any:
        import aiohttp

        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            headers = {"Content-Type": "application/json"}
            if self._api_key is not None:
                headers["Authorization"] = f"Bearer {self._api_key}"
            headers.update(self._headers)  # judge.header_env
            # No pool limit of aiohttp's own: judgekit's workers already bound the calls in flight.
            connector = aiohttp.TCPConnector(limit=0)
            self._session = aiohttp.ClientSession(headers=headers, connector=connector)
            self._loop = loop
        return self._session

    async def ready(self) -> None:
        import aiohttp  # noqa: F401 - imported before the first call's clock starts

    async def _call_once(self, params: dict[str, Any]) -> Any:
        import aiohttp

        session = await self._open()
        timeout = aiohttp.ClientTimeout(total=self.judge.timeout_s)
        try:
            async with session.post(
                self._url(), data=json.dumps(self._body(params), allow_nan=False), timeout=timeout
            ) as answer:
                raw = await _read_bounded(answer, self.judge.max_response_bytes)
                text = raw.decode(answer.charset or "utf-8", errors="replace")
                if answer.status >= 300:
                    raise HTTPStatusError(answer.status, text, answer.headers)
        except aiohttp.ClientConnectionError as err:
            if isinstance(err, aiohttp.ServerTimeoutError):
                raise TimeoutError(str(err)) from err
            raise ConnectionError(f"{type(err).__name__}: {err}") from err
        try:
            data = json.loads(text)
        except ValueError as err:
            raise ResponseFailure("bad_response", f"not a chat completion: {text[:300]}") from err
        try:
            return _namespace(data)
        except (KeyError, IndexError, TypeError, AttributeError) as err:
            raise ResponseFailure("bad_response", f"not a chat completion: {text[:300]}") from err

    async def aclose(self) -> None:
        """Close the HTTP session (idempotent)."""
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None
