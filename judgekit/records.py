"""The nouns every layer shares: an item to judge, a request for it, and the judge's response.

Steps pass these between them; nothing here imports any other part of judgekit.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "PARSE_FAILURES",
    "REQUEST_FAILURES",
    "Example",
    "FailureReason",
    "JudgeOutcome",
    "JudgeRequest",
    "JudgeResponse",
]


class FailureReason(enum.StrEnum):
    """Every ``failure_reason`` a results row can hold: why its score is NaN.

    The values are stored in ``results.parquet`` and name the ``failures/<reason>`` metrics, so
    they never change. A call's failures come first, then the parser's; ``empty_response`` is
    both (a completion with no choices, or one whose text is null or blank).
    """

    TIMEOUT = "timeout"
    RATE_LIMITED = "rate_limited"
    SERVER_ERROR = "server_error"
    REQUEST_ERROR = "request_error"
    BAD_REQUEST = "bad_request"
    BAD_RESPONSE = "bad_response"
    EMPTY_RESPONSE = "empty_response"
    RESPONSE_TOO_LARGE = "response_too_large"
    PARSE_ERROR = "parse_error"
    MISSING_KEY = "missing_key"
    OUT_OF_RANGE = "out_of_range"
    INVALID_LABEL = "invalid_label"
    NOT_RUN = "not_run"
    """A row never sent: the run stopped before it."""
    NO_MAJORITY = "no_majority"
    """A judge panel did not decide: its members split (``judge.aggregate``), or with
    ``strict_majority`` a member failed. Its members' values are in ``failure_detail``."""

    def __repr__(self) -> str:
        """The plain string's repr: a reason shown inside a dict or list in a message reads
        ``'timeout'``, as it did when reasons were strings."""
        return repr(self.value)


REQUEST_FAILURES: dict[FailureReason, str] = {
    FailureReason.TIMEOUT: "no complete answer within judge.timeout_s (retried)",
    FailureReason.RATE_LIMITED: "429 after every retry",
    FailureReason.SERVER_ERROR: "5xx after every retry",
    FailureReason.REQUEST_ERROR: "the connection failed or dropped (retried), or an unexpected "
    "error",
    FailureReason.BAD_REQUEST: "4xx other than 429, or a request the client refused before "
    "sending it (an invalid parameter); never retried",
    FailureReason.BAD_RESPONSE: "a 2xx body that is not a chat completion: not JSON, or no choices",
    FailureReason.EMPTY_RESPONSE: "a chat completion with an empty choices list (a null or blank "
    "content is the parser's empty_response)",
    FailureReason.RESPONSE_TOO_LARGE: "the body exceeds judge.max_response_bytes; reading "
    "stopped there",
}
"""The reasons a judge call fails with (:attr:`JudgeResponse.failure`), with their meanings."""

PARSE_FAILURES: tuple[FailureReason, ...] = (
    FailureReason.PARSE_ERROR,
    FailureReason.MISSING_KEY,
    FailureReason.OUT_OF_RANGE,
    FailureReason.INVALID_LABEL,
    FailureReason.EMPTY_RESPONSE,
)
"""The reasons the parser gives an answer it cannot score (``parsing.FAILURE_REASONS``)."""


@dataclass
class Example:
    """One item to judge: template fields, human scores and the prompt group it belongs to."""

    id: str
    item: dict[str, Any]
    human: dict[str, float] = field(default_factory=dict)
    group: str = ""
    system: str = ""
    """The system (model) that wrote the response, when ``dataset.fields.system`` names it."""
    annotators: dict[str, list[float]] = field(default_factory=dict)
    """Each annotator's own value per score, when the data has them (for the human ceiling)."""


@dataclass
class JudgeRequest:
    """One rendered chat request for one example."""

    index: int
    example_id: str
    messages: list[dict[str, str]]
    sample: int = 0
    """Which draw of ``runner.samples`` this is (0 for the first): part of the cache key."""


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
    """None on success; else a :class:`FailureReason` of ``REQUEST_FAILURES`` (or ``not_run``)."""
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
