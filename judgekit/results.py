"""One tidy results table: a row per (example, score) with the judge value or the failure reason.

With ``judge.swap`` a pair is judged twice, in its order and swapped; a preference score then
gets ``judge_first`` and ``judge_second`` (the swapped verdict mapped back to the original
orientation) and ``judge`` combines them: the verdict when both agree, a tie when they do not.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from judgekit.config.schema import ScoreSchemaConfig, ScoreSpec
from judgekit.data.loading import Example
from judgekit.judge.client import JudgeResponse
from judgekit.parsing import ParsedScore, expected_score_from_logprobs, parse_scores
from judgekit.records import FailureReason

__all__ = ["COLUMNS", "build_results", "not_run_response", "read_results", "write_results"]

COLUMNS = [
    "example_id",
    "example_index",
    "group",
    "score",
    "human",
    "judge",
    "judge_expected",
    "judge_first",
    "judge_second",
    "failure_reason",
    "failure_detail",
    "raw_text",
    "attempts",
    "latency_s",
    "prompt_tokens",
    "completion_tokens",
    "cached",
]

TIE = 0.5


def not_run_response(reason: str = FailureReason.NOT_RUN) -> JudgeResponse:
    """A placeholder for a request the run never sent (it stopped first)."""
    return JudgeResponse(None, reason, "the run stopped before this row was judged", attempts=0)


def _parsed(response: JudgeResponse, schema: ScoreSchemaConfig) -> dict[str, ParsedScore]:
    if response.failure is not None:
        failed = ParsedScore(math.nan, response.failure, response.detail)
        return {spec.name: failed for spec in schema.scores}
    return parse_scores(response.text, schema.scores)


def _expected(response: JudgeResponse, spec: ScoreSpec, score: ParsedScore) -> float:
    if not response.logprobs or score.failure is not None:
        return math.nan
    return expected_score_from_logprobs(response.logprobs, spec)


def _combine(
    first: ParsedScore, second: ParsedScore | None
) -> tuple[float, float, str | None, str]:
    """(combined, second mapped back, failure, detail) for a preference judged in both orders."""
    if second is None:
        return first.value, math.nan, first.failure, first.detail
    if first.failure is not None or second.failure is not None:
        failed = first if first.failure is not None else second
        order = "original" if first.failure is not None else "swapped"
        return math.nan, math.nan, failed.failure, f"{order} order: {failed.detail}"
    back = 1.0 - second.value  # A (0) <-> B (1); a tie (0.5) stays a tie
    return (first.value if first.value == back else TIE), back, None, ""


def _cost(response: JudgeResponse, swapped: JudgeResponse | None) -> dict[str, Any]:
    both = [r for r in (response, swapped) if r is not None]

    def total(name: str) -> int | None:
        values = [getattr(r, name) for r in both]
        return None if any(v is None for v in values) else sum(values)

    return {
        "attempts": sum(r.attempts for r in both),
        "latency_s": sum(r.latency_s for r in both),
        "prompt_tokens": total("prompt_tokens"),
        "completion_tokens": total("completion_tokens"),
        "cached": all(r.cached for r in both),
    }


def _rows_for(
    index: int,
    example: Example,
    response: JudgeResponse,
    schema: ScoreSchemaConfig,
    swapped: JudgeResponse | None = None,
) -> list[dict[str, Any]]:
    first = _parsed(response, schema)
    second = _parsed(swapped, schema) if swapped is not None else None
    cost = _cost(response, swapped)
    rows = []
    for spec in schema.scores:
        other = second[spec.name] if second is not None and spec.kind == "preference" else None
        value, back, reason, detail = _combine(first[spec.name], other)
        rows.append(
            {
                "example_id": example.id,
                "example_index": index,
                "group": example.group,
                "score": spec.name,
                "human": example.human.get(spec.name, math.nan),
                "judge": value,
                "judge_expected": _expected(response, spec, first[spec.name]),
                "judge_first": first[spec.name].value if other is not None else math.nan,
                "judge_second": back,
                "failure_reason": reason,
                "failure_detail": detail or None,
                "raw_text": response.text,
                **cost,
            }
        )
    return rows


def build_results(
    examples: list[Example],
    responses: dict[int, JudgeResponse],
    schema: ScoreSchemaConfig,
    swapped: dict[int, JudgeResponse] | None = None,
) -> pd.DataFrame:
    """Parse every response and lay the scores out one row per (example, score)."""
    rows: list[dict[str, Any]] = []
    for index, example in enumerate(examples):
        response = responses.get(index) or not_run_response()
        second = None
        if swapped is not None:
            second = swapped.get(index) or not_run_response()
        rows.extend(_rows_for(index, example, response, schema, second))
    frame = pd.DataFrame(rows, columns=COLUMNS)
    for column in ("human", "judge", "judge_expected", "judge_first", "judge_second", "latency_s"):
        frame[column] = frame[column].astype(float)
    for column in ("prompt_tokens", "completion_tokens", "attempts"):
        frame[column] = frame[column].astype("Int64")
    frame["cached"] = frame["cached"].astype(bool)
    return frame


def write_results(frame: pd.DataFrame, path: Path) -> Path:
    """Write the table as parquet (atomically, so a crash never leaves half a file).

    A write that fails (disk full) removes its partial temporary file and raises the OSError.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".parquet.tmp")
    try:
        frame.to_parquet(tmp, index=False)
    except OSError:
        if tmp.is_file():
            tmp.unlink()
        raise
    tmp.replace(path)
    return path


def read_results(path: Path) -> pd.DataFrame:
    """Read a results table written by :func:`write_results`."""
    return pd.read_parquet(path)
