"""One tidy results table: a row per (example, score) with the judge value or the failure reason.

With ``judge.swap`` a pair is judged twice, in its order and swapped; a preference score then
gets ``judge_first`` and ``judge_second`` (the swapped verdict mapped back to the original
orientation) and ``judge`` combines them: the verdict when both agree, a tie when they do not.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from judgekit.config.schema import Config, ScoreSchemaConfig, ScoreSpec
from judgekit.data.loading import Example
from judgekit.errors import RunError
from judgekit.judge.client import JudgeResponse
from judgekit.parsing import ParsedScore, expected_score_from_logprobs, parse_scores
from judgekit.records import FailureReason
from judgekit.stats.repeats import SampleStability
from judgekit.stats.report import AgreementReport

__all__ = [
    "COLUMNS",
    "ParsedResponse",
    "RunResult",
    "build_results",
    "check_coverage",
    "not_run_response",
    "parse_responses",
    "read_results",
    "results_table",
    "write_results",
    "write_run",
]

COLUMNS = [
    "example_id",
    "example_index",
    "group",
    "system",
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


@dataclass
class RunResult:
    """Everything a run produced."""

    config: Config
    examples: list[Example]
    results: pd.DataFrame
    agreement: AgreementReport
    aggregate: dict[str, dict[str, Any]]
    failures: dict[str, int]
    out_dir: Path | None = None
    run_id: str | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    cache_stats: dict[str, int] = field(default_factory=dict)
    dropped_incomplete: int = 0
    """Rows left out by ``dataset.drop_incomplete`` before sampling."""
    samples: pd.DataFrame | None = None
    """With ``runner.samples`` > 1: every draw, one row per (example, score, sample)
    (``samples.parquet``, see :mod:`judgekit.draws`); ``results`` then holds reduced values."""
    stability: dict[str, SampleStability] = field(default_factory=dict)
    """With ``runner.samples`` > 1: each score's test–retest figures."""
    unstable: pd.DataFrame | None = None
    """With ``runner.samples`` > 1: the items whose draws disagree most (``unstable_items.csv``)."""
    panel: Any = None
    """A judge panel's :class:`judgekit.panel.PanelResult` (its members, their agreement, ...);
    ``results`` then holds the panel's rows."""
    calibration: Any = None
    """With ``stats.calibrate``/``stats.apply_calibration`` or logprobs: the
    :class:`judgekit.calibrated.CalibrationResult` (maps, raw vs calibrated, ECE/Brier)."""
    human_scale: Any = None
    """:class:`judgekit.stats.human_scale.HumanScale`: the PPI estimates (``stats.ppi``), the
    alt-test and the pointwise human ceiling (examples with annotators); None without either."""

    @property
    def row_scores(self) -> list[dict[str, Any]]:
        """Per example: its index, its item and the judge's scores (NaN where failed)."""
        rows = []
        by_example = self.results.groupby("example_index", sort=True)
        for index, part in by_example:
            example = self.examples[int(index)]
            rows.append(
                {
                    "index": int(index),
                    "item": example.item,
                    "scores": dict(zip(part["score"], part["judge"], strict=True)),
                    "failures": {
                        s: r
                        for s, r in zip(part["score"], part["failure_reason"], strict=True)
                        if r
                    },
                }
            )
        return rows

    def summary(self) -> dict[str, Any]:
        """A JSON-able summary: agreement or aggregates per score, failures, where outputs are
        (and, with ``runner.samples`` > 1, ``repeat_sampling``: each score's test–retest figures)."""
        summary = {
            "judge": self.config.judge.model,
            "prompt": self.config.prompt.name,
            "score": self.config.score.name,
            "dataset": self.config.dataset.name,
            "n_examples": len(self.examples),
            "dropped_incomplete": self.dropped_incomplete,
            "agreement": self.agreement.to_flat(),
            "aggregate": self.aggregate,
            "failures": self.failures,
            "cache": self.cache_stats,
            "mlflow_run_id": self.run_id,
            "outputs": self.outputs,
        }
        if self.panel is not None:
            summary["panel"] = self.panel.summary()
        if self.calibration is not None:
            summary["calibration"] = self.calibration.summary()
        if self.stability:
            summary["repeat_sampling"] = {k: v.to_flat() for k, v in self.stability.items()}
        if self.human_scale is not None:
            summary["human_scale"] = self.human_scale.summary()
        return summary


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


@dataclass
class ParsedResponse:
    """One example's response in one order and the scores parsed from it (NaN + reason on failure)."""

    response: JudgeResponse
    scores: dict[str, ParsedScore]


def parse_responses(
    examples: list[Example], responses: dict[int, JudgeResponse], schema: ScoreSchemaConfig
) -> list[ParsedResponse]:
    """The parse step: every example's response by row (a ``not_run`` placeholder where the run
    never sent it) → its scores, or a failure reason for each."""
    parsed = []
    for index in range(len(examples)):
        response = responses.get(index) or not_run_response()
        parsed.append(ParsedResponse(response, _parsed(response, schema)))
    return parsed


def _rows_for(
    index: int,
    example: Example,
    given: ParsedResponse,
    schema: ScoreSchemaConfig,
    swapped: ParsedResponse | None = None,
) -> list[dict[str, Any]]:
    response, first = given.response, given.scores
    second = swapped.scores if swapped is not None else None
    cost = _cost(response, swapped.response if swapped is not None else None)
    rows = []
    for spec in schema.scores:
        other = second[spec.name] if second is not None and spec.kind == "preference" else None
        value, back, reason, detail = _combine(first[spec.name], other)
        rows.append(
            {
                "example_id": example.id,
                "example_index": index,
                "group": example.group,
                "system": example.system,
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


def results_table(
    examples: list[Example],
    parsed: list[ParsedResponse],
    schema: ScoreSchemaConfig,
    swapped: list[ParsedResponse] | None = None,
) -> pd.DataFrame:
    """Lay parsed scores out one row per (example, score); with ``swapped``, a preference score
    combines both orders."""
    rows: list[dict[str, Any]] = []
    for index, example in enumerate(examples):
        second = swapped[index] if swapped is not None else None
        rows.extend(_rows_for(index, example, parsed[index], schema, second))
    frame = pd.DataFrame(rows, columns=COLUMNS)
    for column in ("human", "judge", "judge_expected", "judge_first", "judge_second", "latency_s"):
        frame[column] = frame[column].astype(float)
    for column in ("prompt_tokens", "completion_tokens", "attempts"):
        frame[column] = frame[column].astype("Int64")
    frame["cached"] = frame["cached"].astype(bool)
    return frame


def build_results(
    examples: list[Example],
    responses: dict[int, JudgeResponse],
    schema: ScoreSchemaConfig,
    swapped: dict[int, JudgeResponse] | None = None,
) -> pd.DataFrame:
    """Parse every response and lay the scores out one row per (example, score)."""
    second = parse_responses(examples, swapped, schema) if swapped is not None else None
    return results_table(examples, parse_responses(examples, responses, schema), schema, second)


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


def write_run(result: RunResult, out_dir: Path) -> list[Path]:
    """Write the run directory: results, figures and summary (``result.outputs`` says where).

    A write that fails (disk full) is one clear RunError.
    """
    from judgekit.plots import save_figures

    summary, writing = out_dir / "summary.json", out_dir / "results.parquet"
    try:
        paths = [write_results(result.results, writing)]
        writing = out_dir
        paths.extend(save_figures(result.results, result.config.score.scores, out_dir))
        result.outputs = {"dir": str(out_dir), "results": str(paths[0]), "summary": str(summary)}
        writing = summary
        summary.write_text(json.dumps(result.summary(), indent=2, default=_json_default) + "\n")
    except OSError as err:
        raise RunError(_unwritten(result, writing, err)) from None
    paths.append(summary)
    return paths


def _unwritten(result: RunResult, path: Path, err: OSError) -> str:
    """Which output could not be written and why, and whether a rerun pays for the calls again."""
    import errno

    why = err.strerror or str(err)
    if err.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        why += " (the disk is full, or a file size limit such as ulimit -f was reached)"
    mode = result.config.cache.mode
    if mode in ("read_write", "refresh"):
        from judgekit.judge.cache import ResponseCache

        rerun = (
            f"the judge's answers are in the response cache at "
            f"{ResponseCache(result.config.cache.dir).path}: make room and rerun the same command "
            "to write them without paying for the calls again"
        )
    else:
        rerun = (
            f"the response cache is off (cache.mode={mode}), so a rerun pays for every call "
            "again; keep cache.mode=read_write to make a rerun free"
        )
    return f"could not write the results to {path}: {why}; {rerun}"


def _json_default(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    return str(value)


def check_coverage(result: RunResult, out_dir: Path | None) -> None:
    """Fail the run when a score was scored on fewer examples than ``runner.min_coverage``, or,
    when it is null (the default), on no example at all (an explicit 0 accepts that)."""
    floor = result.config.runner.min_coverage
    for spec in result.config.score.scores:
        part = result.results[result.results["score"] == spec.name]
        coverage = float(part["judge"].notna().mean()) if len(part) else 0.0
        if floor is None and coverage == 0.0 and len(part):
            raise RunError(
                f"runner.min_coverage: {spec.name} was scored on no example at all (failures "
                f"by reason: {result.failures}); results are in {out_dir or 'memory'}; set "
                "runner.min_coverage=0 to accept a run in which a score was never scored"
            )
        if floor is not None and coverage < floor:
            raise RunError(
                f"runner.min_coverage: {spec.name} was scored on {coverage:.1%} of examples, "
                f"below {floor:.1%}; failures by reason: {result.failures}; results are in "
                f"{out_dir or 'memory'}"
            )
