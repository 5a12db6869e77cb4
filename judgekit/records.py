"""The nouns every layer shares: an item to judge, a request for it, and the judge's response.

Steps pass these between them; nothing here imports any other part of judgekit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Example", "JudgeOutcome", "JudgeRequest", "JudgeResponse"]


@dataclass
class Example:
    """One item to judge: template fields, human scores and the prompt group it belongs to."""

    id: str
    item: dict[str, Any]
    human: dict[str, float] = field(default_factory=dict)
    group: str = ""
    annotators: dict[str, list[float]] = field(default_factory=dict)
    """Each annotator's own value per score, when the data has them (for the human ceiling)."""


@dataclass
class JudgeRequest:
    """One rendered chat request for one example."""

    index: int
    example_id: str
    messages: list[dict[str, str]]


@dataclass
class JudgeOutcome:
    """The responses by request index, and the index that stopped the run early, if any."""

    responses: dict[int, JudgeResponse]
    stopped_at: int | None = None
    stop_reason: str | None = None
    """Why the run stopped early (names the config key to check), when it did."""


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
    status: int | None = None
    """The HTTP status of the failed call's last attempt, when the endpoint answered one."""
