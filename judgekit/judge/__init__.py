"""Calling the judge: a retrying client over transports (litellm, direct HTTP), rate limits, the
response cache and structured-output formats."""

from __future__ import annotations

from judgekit.judge.client import (
    REQUEST_FAILURES,
    JudgeClient,
    JudgeResponse,
    LiteLLMClient,
    RetryingClient,
    RetryPolicy,
    classify_error,
)
from judgekit.judge.transport import Completion, ResponseFailure, RetryDecision, Transport

__all__ = [
    "REQUEST_FAILURES",
    "Completion",
    "JudgeClient",
    "JudgeResponse",
    "LiteLLMClient",
    "ResponseFailure",
    "RetryDecision",
    "RetryPolicy",
    "RetryingClient",
    "Transport",
    "classify_error",
]
