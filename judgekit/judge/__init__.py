"""Calling the judge: a retrying client over transports (litellm, direct HTTP), rate limits, the
response cache and structured-output formats."""

from __future__ import annotations

from judgekit.judge.client import (
    REQUEST_FAILURES,
    JudgeClient,
    JudgeResponse,
    LiteLLMClient,
    ResponseFailure,
    RetryPolicy,
    classify_error,
)

__all__ = [
    "JudgeClient",
    "JudgeResponse",
    "LiteLLMClient",
    "REQUEST_FAILURES",
    "ResponseFailure",
    "RetryPolicy",
    "classify_error",
]
