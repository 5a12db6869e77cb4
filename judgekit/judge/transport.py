"""What a judge transport is: one request out, one :class:`Completion` back, its own errors mapped.

A transport knows one way to reach an endpoint (litellm in ``judge/litellm_transport.py``, a plain
HTTP POST in ``judge/direct.py``) and nothing of retries, timeouts or rate limits:
:class:`~judgekit.judge.client.RetryingClient` keeps those for every transport. The boundary is
typed both ways: :meth:`Transport.send` returns judgekit's own :class:`Completion` (no provider
object crosses it), and :meth:`Transport.classify` turns the transport's own exceptions, by type,
into one :class:`RetryDecision` (as httpx's ``map_httpcore_exceptions`` and inspect_ai's
``ModelAPI.should_retry`` do).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from judgekit.records import FailureReason

__all__ = [
    "Completion",
    "ResponseFailure",
    "RetryDecision",
    "Transport",
    "exception_chain",
    "response_failure",
]


@dataclass(frozen=True)
class Completion:
    """What one chat-completion answer holds, in judgekit's terms."""

    text: str | None
    """The first choice's message content (None when the answer has none)."""
    logprobs: list[dict[str, Any]] | None = None
    """The first choice's per-token logprobs (OpenAI's ``logprobs.content``), when asked for."""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    status: int = 200
    """The HTTP status of the answer (always 2xx: any other status is an error)."""
    choices: int | None = 1
    """How many choices the answer had; None when it had no ``choices`` list at all."""


@dataclass(frozen=True)
class RetryDecision:
    """What a failed attempt means: the row's failure reason and whether to try again."""

    reason: FailureReason
    retry: bool
    retry_after: float | None = None
    """Seconds the server asked to wait (``Retry-After``), when it did."""
    status: int | None = None
    """The HTTP status the endpoint answered, when it answered one."""


class ResponseFailure(Exception):
    """An answer that arrived but cannot be used; never retried. Any transport may raise it."""

    def __init__(self, reason: FailureReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


class Transport(Protocol):
    """One way to send a chat request to an endpoint."""

    async def ready(self) -> None:
        """Do once, before the first call's clock starts, what that call would do (imports,
        TLS setup, a warm-up), so ``latency_s`` times the call alone."""
        ...

    async def send(self, params: dict[str, Any]) -> Completion:
        """Send one request (``RetryingClient.request_params`` plus the headers) once."""
        ...

    def classify(self, err: BaseException) -> RetryDecision:
        """The decision for an exception :meth:`send` raised, by the exception's type."""
        ...

    async def aclose(self) -> None:
        """Close the connections the transport holds (idempotent)."""
        ...


def exception_chain(err: BaseException) -> list[BaseException]:
    """``err`` and every exception it was raised from or while handling (``__cause__`` and
    ``__context__``, breadth first): wrappers often keep the original only in one of them."""
    chain: list[BaseException] = []
    queue: list[BaseException] = [err]
    while queue and len(chain) < 30:
        current = queue.pop(0)
        if any(current is seen for seen in chain):
            continue
        chain.append(current)
        queue.extend(e for e in (current.__cause__, current.__context__) if e is not None)
    return chain


def response_failure(err: BaseException) -> ResponseFailure | None:
    """The :class:`ResponseFailure` in ``err``'s chain, if any."""
    return next((e for e in exception_chain(err) if isinstance(e, ResponseFailure)), None)
