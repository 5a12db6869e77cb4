"""Test helpers for judge configs: a fake OpenAI-compatible judge server (:mod:`judgekit.testing.server`)
and its command (:mod:`judgekit.testing.cli`, ``judgekit fake-judge``)."""

from __future__ import annotations

from judgekit.testing.cli import main  # export main
from judgekit.testing.server import (
    DEFAULT_SCORE_NAMES,
    FAULT_KINDS,
    SHAPES,
    ChatRequest,
    Counters,
    FakeJudge,
    FaultPlan,
    Reply,
    Responder,
    constant,
    from_mapping,
    in_fence,
    json_scores,
    mixed_shape,
    request_key,
    scripted,
    stable_scores,
    synthesise_logprobs,
    with_prose,
    with_think,
)

__all__ = [
    "ChatRequest",
    "Counters",
    "DEFAULT_SCORE_NAMES",
    "FAULT_KINDS",
    "FakeJudge",
    "FaultPlan",
    "Reply",
    "Responder",
    "SHAPES",
    "constant",
    "from_mapping",
    "in_fence",
    "json_scores",
    "main",
    "mixed_shape",
    "request_key",
    "scripted",
    "stable_scores",
    "synthesise_logprobs",
    "with_prose",
    "with_think",
]
