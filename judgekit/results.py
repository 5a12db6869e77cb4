"""One tidy results table: a row per (example, score) with the judge value or the failure reason."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from judgekit.client import JudgeResponse
from judgekit.config import ScoreSchemaConfig
from judgekit.data import Example
from judgekit.parsing import expected_score_from_logprobs, parse_scores

__all__ = ["COLUMNS", "build_results", "not_run_response", "read_results", "write_results"]

COLUMNS = [
    "example_id",
    "example_index",
    "group",
    "score",
    "human",
    "judge",
    "judge_expected",
    "failure_reason",
    "failure_detail",
    "raw_text",
    "attempts",
    "latency_s",
    "prompt_tokens",
    "completion_tokens",
    "cached",
]


def not_run_response(reason: str = "not_run") -> JudgeResponse:
    """A placeholder for a request the run never sent (it stopped first)."""
    return JudgeResponse(None, reason, "the run stopped before this row was judged", attempts=0)


def _rows_for(
    index: int, example: Example, response: JudgeResponse, schema: ScoreSchemaConfig
) -> list[dict[str, Any]]:
    parsed = parse_scores(response.text, schema.scores) if response.failure is None else None
    rows = []
    for spec in schema.scores:
        if parsed is None:
            value, reason, detail = math.nan, response.failure, response.detail
            expected = math.nan
        else:
            score = parsed[spec.name]
            value, reason, detail = score.value, score.failure, score.detail
            expected = (
                expected_score_from_logprobs(response.logprobs, spec)
                if response.logprobs and reason is None
                else math.nan
            )
        rows.append(
            {
                "example_id": example.id,
                "example_index": index,
                "group": example.group,
                "score": spec.name,
                "human": example.human.get(spec.name, math.nan),
                "judge": value,
                "judge_expected": expected,
                "failure_reason": reason,
                "failure_detail": detail or None,
                "raw_text": response.text,
                "attempts": response.attempts,
                "latency_s": response.latency_s,
                "prompt_tokens": response.prompt_tokens,
                "completion_tokens": response.completion_tokens,
                "cached": response.cached,
            }
        )
    return rows


def build_results(
    examples: list[Example], responses: dict[int, JudgeResponse], schema: ScoreSchemaConfig
) -> pd.DataFrame:
    """Parse every response and lay the scores out one row per (example, score)."""
    rows: list[dict[str, Any]] = []
    for index, example in enumerate(examples):
        response = responses.get(index) or not_run_response()
        rows.extend(_rows_for(index, example, response, schema))
    frame = pd.DataFrame(rows, columns=COLUMNS)
    for column in ("human", "judge", "judge_expected", "latency_s"):
        frame[column] = frame[column].astype(float)
    for column in ("prompt_tokens", "completion_tokens", "attempts"):
        frame[column] = frame[column].astype("Int64")
    frame["cached"] = frame["cached"].astype(bool)
    return frame


def write_results(frame: pd.DataFrame, path: Path) -> Path:
    """Write the table as parquet (atomically, so a crash never leaves half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".parquet.tmp")
    frame.to_parquet(tmp, index=False)
    tmp.replace(path)
    return path


def read_results(path: Path) -> pd.DataFrame:
    """Read a results table written by :func:`write_results`."""
    return pd.read_parquet(path)
