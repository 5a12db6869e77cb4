"""Per-row MLflow traces (``tracking.traces``), read back through MLflow's own client.

Each run goes through the CLI against the fake judge and a real SQLite store; the traces are
compared with the run's ``results.parquet`` row by row: inputs, the judge's text, the feedback
value (or its error on a failed row: no value), the sources, the human expectations.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from helpers import (
    PAIRS_FILE_OVERRIDES,
    file_run,
    judge_overrides,
    row_number,
    run_cli,
    write_jsonl,
)
from test_remote_tracking import mlflow_server  # noqa: F401  (a real `mlflow server` fixture)

from judgekit.config.schema import FieldsConfig, TrackingConfig
from judgekit.errors import ConfigError
from judgekit.testing.server import ChatRequest, FakeJudge

N = 12
GARBAGE = {3, 7}  # rows the judge answers with text that is not a score


def _answer(request: ChatRequest) -> str:
    row = row_number(request)
    return "I would rather not say" if row in GARBAGE else json.dumps({"helpfulness": row * 3 % 5})


def _rows(n: int = N) -> list[dict[str, Any]]:
    return [
        {
            "id": f"ex{i}",
            "prompt": f"question {i}",
            "response": f"answer [row={i}]",
            "helpfulness": i % 5,
            "rater_1": i % 5,
            "rater_2": (i + 1) % 5,
            "unshown": "not in the prompt",
        }
        for i in range(n)
    ]


def _run(workdir: Path, *extra: str, rows: list[dict[str, Any]] | None = None) -> Any:
    path = write_jsonl(workdir / "val.jsonl", rows or _rows())
    with FakeJudge(_answer) as judge:
        proc = run_cli(
            [
                *file_run(judge, path),
                "prompt=v1",
                "score=helpfulness",
                "dataset.fields.id=id",
                "hydra.run.dir=out",
                f"tracking.uri={_uri(workdir)}",
                *extra,
            ],
            workdir,
        )
    assert proc.returncode == 0, proc.stderr
    return proc


def _uri(workdir: Path) -> str:
    return f"sqlite:///{workdir}/mlflow.db"


def _traces(uri: str) -> tuple[Any, list[Any]]:
    """The run and its traces (ordered by request: example index, then order)."""
    import mlflow
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    (run,) = client.search_runs([client.get_experiment_by_name("judgekit").experiment_id])
    mlflow.set_tracking_uri(uri)
    found = mlflow.search_traces(
        locations=[run.info.experiment_id],
        run_id=run.info.run_id,
        return_type="list",
        max_results=1000,
    )
    key = {"given": 0, "swapped": 1}
    found.sort(
        key=lambda t: (
            int(t.info.trace_metadata["judgekit.example_index"]),
            key[t.info.trace_metadata["judgekit.order"]],
        )
    )
    return run, found


def _kind(trace: Any, name: str) -> list[Any]:
    return [a for a in trace.info.assessments if type(a).__name__ == name]


def test_each_row_is_a_trace_whose_feedback_and_expectations_match_the_results_file(
    workdir: Path,
) -> None:
    _run(workdir, "++dataset.fields.annotators={helpfulness: [rater_1, rater_2]}")
    run, traces = _traces(_uri(workdir))
    table = pd.read_parquet(workdir / "out" / "results.parquet")
    assert len(traces) == N == len(table)
    assert run.data.tags["judgekit.traces"] == f"{N} of {N} rows"
    for trace, (_, row) in zip(traces, table.iterrows(), strict=True):
        i = int(row["example_index"])
        meta = trace.info.trace_metadata
        assert meta["mlflow.sourceRun"] == run.info.run_id
        assert meta["judgekit.example_id"] == row["example_id"] == f"ex{i}"
        (span,) = trace.data.spans
        # v1 shows item.prompt and item.response: those are the inputs, not the other columns
        assert span.inputs == {"prompt": f"question {i}", "response": f"answer [row={i}]"}
        assert span.outputs == row["raw_text"]  # the judge's text as sent, JSON or not
        (feedback,) = _kind(trace, "Feedback")
        assert feedback.name == "helpfulness"
        assert (feedback.source.source_type, feedback.source.source_id) == (
            "LLM_JUDGE",
            "openai/fake-judge",
        )
        assert feedback.rationale == row["raw_text"]
        if math.isnan(row["judge"]):
            assert i in GARBAGE and row["failure_reason"] == "parse_error"
            assert feedback.value is None  # never a made-up value
            assert feedback.error.error_code == "parse_error"
            assert feedback.error.error_message == row["failure_detail"]
        else:
            assert feedback.value == row["judge"] == i * 3 % 5
            assert feedback.error is None
        labels = {
            (e.source.source_type, e.source.source_id): (e.value, e.metadata["judgekit.label"])
            for e in _kind(trace, "Expectation")
        }
        assert labels == {
            ("HUMAN", "human"): (row["human"], "aggregate"),
            ("HUMAN", "rater_1"): (i % 5, "annotator"),
            ("HUMAN", "rater_2"): ((i + 1) % 5, "annotator"),
        }


def test_auto_stops_at_max_traces_and_says_so(workdir: Path) -> None:
    proc = _run(workdir, "tracking.max_traces=5")
    run, traces = _traces(_uri(workdir))
    assert [int(t.info.trace_metadata["judgekit.example_index"]) for t in traces] == [0, 1, 2, 3, 4]
    assert run.data.tags["judgekit.traces"] == f"5 of {N} rows"
    said = f"MLflow traces for the first 5 of {N} rows (tracking.max_traces=5)"
    assert said in proc.stderr + (workdir / "out" / "cli.log").read_text()
    # each trace has one expectation only: the data has no per-annotator columns here
    assert [e.metadata["judgekit.label"] for e in _kind(traces[0], "Expectation")] == ["single"]


def test_true_traces_every_row_whatever_max_traces(workdir: Path) -> None:
    _run(workdir, "tracking.traces=true", "tracking.max_traces=5")
    run, traces = _traces(_uri(workdir))
    assert len(traces) == N and run.data.tags["judgekit.traces"] == f"{N} of {N} rows"


def test_false_traces_nothing(workdir: Path) -> None:
    _run(workdir, "tracking.traces=false")
    run, traces = _traces(_uri(workdir))
    assert traces == [] and "judgekit.traces" not in run.data.tags
    assert run.data.metrics["helpfulness/n_failed"] == len(GARBAGE)  # the rest is logged


@pytest.mark.parametrize(
    ("key", "value", "needle"),
    [
        (
            "traces",
            "sometimes",
            "tracking.traces: 'sometimes' is not valid; use auto, true or false",
        ),
        ("max_traces", -1, "tracking.max_traces: -1 is not valid; use 0 or more"),
    ],
)
def test_bad_trace_settings_name_the_key(key: str, value: Any, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(")):
        TrackingConfig(**{key: value})


def test_yaml_booleans_are_switches() -> None:
    assert TrackingConfig(traces=True).traces == "true"  # type: ignore[arg-type]
    assert TrackingConfig(traces=False).traces == "false"  # type: ignore[arg-type]


# --- pairwise with swap: both orders ---------------------------------------------------------

WINNERS = ["model_a", "model_b", "tie", "model_b"]  # GOOD is ans1 in even rows


def _prefers_good(request: ChatRequest) -> str:
    text = request.last_user_text
    a = text[text.index("[RESPONSE A]") : text.index("[/RESPONSE A]")]
    return json.dumps({"preference": "A" if "GOOD" in a else "B"})


LABEL = {0.0: "A", 1.0: "B", 0.5: "tie"}


def test_swap_logs_a_trace_per_order_as_the_judge_saw_it(workdir: Path) -> None:
    rows = []
    for i, winner in enumerate(WINNERS):
        ans1, ans2 = (f"GOOD {i}", f"BAD {i}") if i % 2 == 0 else (f"BAD {i}", f"GOOD {i}")
        rows.append({"qid": f"q{i}", "question": f"question {i}", "ans1": ans1, "ans2": ans2})
        rows[-1]["winner"] = winner
    write_jsonl(workdir / "pairs.jsonl", rows)
    with FakeJudge(_prefers_good) as judge:
        proc = run_cli(
            [
                *judge_overrides(judge),
                *PAIRS_FILE_OVERRIDES,
                "judge.swap=true",
                "hydra.run.dir=out",
                f"tracking.uri={_uri(workdir)}",
            ],
            workdir,
        )
    assert proc.returncode == 0, proc.stderr
    run, traces = _traces(_uri(workdir))
    table = pd.read_parquet(workdir / "out" / "results.parquet")
    assert len(traces) == 2 * len(WINNERS)
    assert run.data.tags["judgekit.traces"] == f"{len(WINNERS)} of {len(WINNERS)} rows"
    for i, row in table.iterrows():
        given, swapped = traces[2 * i], traces[2 * i + 1]
        assert given.info.trace_metadata["judgekit.order"] == "given"
        assert swapped.info.trace_metadata["judgekit.order"] == "swapped"
        shown, exchanged = given.data.spans[0].inputs, swapped.data.spans[0].inputs
        assert (exchanged["response_a"], exchanged["response_b"]) == (
            shown["response_b"],
            shown["response_a"],
        )
        (first,), (second,) = _kind(given, "Feedback"), _kind(swapped, "Feedback")
        # Rubric scores are logged by label name (A = 0, B = 1, tie = 0.5 in results.parquet).
        # The swapped order's verdict as given (A = as shown): results hold it mapped back.
        assert first.value == LABEL[row["judge_first"]]
        assert second.value == LABEL[1.0 - row["judge_second"]]
        (human,), (human_swapped,) = _kind(given, "Expectation"), _kind(swapped, "Expectation")
        assert human.value == LABEL[row["human"]]
        assert human_swapped.value == LABEL[1.0 - row["human"]]  # A <-> B, a tie stays a tie
        # this judge always finds GOOD, so as shown it agrees with the humans in both orders
        if row["human"] != 0.5:
            assert first.value == human.value and second.value == human_swapped.value


# --- the store fails while traces are written: the results are kept --------------------------


def test_a_store_failure_while_tracing_keeps_the_results_and_lists_traces_as_not_logged(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import judgekit
    from judgekit.errors import RunError
    from judgekit.tracking import traces

    def broken(client: Any, infos: list[Any]) -> list[Any]:
        raise OSError("disk I/O error")

    monkeypatch.setattr(traces, "_start_traces", broken)
    with FakeJudge(_answer) as judge:
        cfg = judgekit.build_config(
            "openai_compatible",
            "v1",
            "helpfulness",
            _rows(),
            fields=FieldsConfig(id="id", scores={"helpfulness": "helpfulness"}),
            overrides=[
                *judge_overrides(judge, key=False)[1:],
                f"tracking.uri={_uri(workdir)}",
                "stats.bootstrap_resamples=0",
            ],
        )
        from judgekit import pipeline

        with pytest.raises(RunError) as caught:
            pipeline.run(cfg, workdir / "out")
    message = str(caught.value)
    assert "failed (OSError: disk I/O error)" in message and "not logged: traces" in message
    table = pd.read_parquet(workdir / "out" / "results.parquet")
    assert len(table) == N and table["judge"].notna().sum() == N - len(GARBAGE)


def test_the_bulk_sql_path_writes_what_start_trace_writes(workdir: Path) -> None:
    """The same trace through ``_sql_start_traces`` and through MLflow's ``start_trace``."""
    from mlflow.entities import (
        AssessmentError,
        AssessmentSource,
        Expectation,
        Feedback,
        TraceInfo,
        TraceLocation,
        TraceState,
    )
    from mlflow.tracing.client import TracingClient
    from mlflow.tracking import MlflowClient

    from judgekit.tracking.traces import _sql_start_traces

    uri = _uri(workdir)
    experiment = MlflowClient(uri).create_experiment("bulk")
    client = TracingClient(uri)

    def info(trace_id: str) -> TraceInfo:
        judge = AssessmentSource(source_type="LLM_JUDGE", source_id="m")
        return TraceInfo(
            trace_id=trace_id,
            trace_location=TraceLocation.from_experiment_id(experiment),
            request_time=1_700_000_000_000,
            execution_duration=250,
            state=TraceState.OK,
            request_preview='{"prompt": "q"}',
            response_preview="3",
            trace_metadata={"mlflow.sourceRun": "r1", "judgekit.order": "given"},
            tags={"mlflow.traceName": "judge"},
            assessments=[
                Feedback(name="s", value=3.0, source=judge, trace_id=trace_id, rationale="3"),
                Feedback(name="t", error=AssessmentError("parse_error", "no JSON"), source=judge),
                Expectation(name="s", value=2.0, source=AssessmentSource("HUMAN", "human")),
            ],
        )

    bulk, single = "tr-" + "a" * 32, "tr-" + "b" * 32
    _sql_start_traces(client.store, [info(bulk)])
    client.start_trace(info(single))

    def shape(trace_id: str) -> tuple[Any, ...]:
        got = client.get_trace_info(trace_id)
        tags = {k: v.replace(trace_id, "ID") for k, v in got.tags.items()}
        assessments = sorted(
            (a.name, a.source.source_type, getattr(a, "value", None), str(a.error), a.rationale)
            for a in got.assessments
        )
        return (
            got.request_time,
            got.execution_duration,
            got.state,
            got.request_preview,
            got.response_preview,
            got.trace_metadata,
            tags,
            assessments,
        )

    assert shape(bulk) == shape(single)
    assert len(client.search_traces(locations=[experiment], include_spans=False)) == 2


# --- a real mlflow server: the per-trace path over HTTP --------------------------------------


@pytest.mark.slow
def test_traces_reach_a_remote_mlflow_server(
    workdir: Path,
    mlflow_server: tuple[str, Path],  # noqa: F811
) -> None:
    url, _ = mlflow_server
    path = write_jsonl(workdir / "val.jsonl", _rows(6))
    with FakeJudge(_answer) as judge:
        proc = run_cli(
            [
                *file_run(judge, path),
                "prompt=v1",
                "score=helpfulness",
                "dataset.fields.id=id",
                "hydra.run.dir=out",
                f"tracking.uri={url}",
                "tracking.experiment=remote-traces",
            ],
            workdir,
        )
    assert proc.returncode == 0, proc.stderr
    import mlflow
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=url)
    (run,) = client.search_runs([client.get_experiment_by_name("remote-traces").experiment_id])
    mlflow.set_tracking_uri(url)
    traces = mlflow.search_traces(
        locations=[run.info.experiment_id], run_id=run.info.run_id, return_type="list"
    )
    table = pd.read_parquet(workdir / "out" / "results.parquet").set_index("example_id")
    assert len(traces) == 6
    for trace in traces:
        row = table.loc[trace.info.trace_metadata["judgekit.example_id"]]
        (feedback,) = _kind(trace, "Feedback")
        assert trace.data.spans[0].outputs == row["raw_text"]
        if math.isnan(row["judge"]):
            assert feedback.value is None and feedback.error.error_code == "parse_error"
        else:
            assert feedback.value == row["judge"]
        (human,) = _kind(trace, "Expectation")
        assert (human.source.source_type, human.value) == ("HUMAN", row["human"])
