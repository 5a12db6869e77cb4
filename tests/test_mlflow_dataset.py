"""``dataset=mlflow``: human labels added to an MLflow experiment's traces (as HUMAN
expectations and feedback) loaded back as a judgekit dataset, against a real local SQLite store."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import assert_one_line_error, judge_overrides, row_number, run_cli, write_jsonl
from test_remote_tracking import mlflow_server  # noqa: F401  # the real `mlflow server` fixture

from judgekit.config.schema import RubricLabel, ScoreSpec
from judgekit.data.mlflow_source import _combined
from judgekit.testing.server import FakeJudge, json_scores

N_ROWS = 10
BOB_ROWS = {1, 4, 7}  # rows a second annotator labelled too


def _alice(i: int) -> int:
    return (i * 3) % 5


def _bob(i: int) -> int:
    return (i * 3 + 1) % 5


def _file_rows() -> list[dict[str, Any]]:
    """The same labels as a file: the human label is the annotators' mean, as from MLflow."""
    rows = []
    for i in range(N_ROWS):
        both = i in BOB_ROWS
        rows.append(
            {
                "id": f"r{i}",
                "prompt": f"question {i % 4}",  # shared prompts: groups of the bootstrap
                "response": f"answer [row={i}]",
                "helpfulness": (_alice(i) + _bob(i)) / 2 if both else _alice(i),
                "alice": _alice(i),
                "bob": _bob(i) if both else None,
            }
        )
    return rows


def _log_labelled_traces(uri: str, experiment: str) -> None:
    """One trace per row with HUMAN expectations (bob's as HUMAN feedback), plus noise: a judge's
    feedback (not a human label) and a trace nobody labelled."""
    import mlflow
    from mlflow.entities import AssessmentSource

    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(experiment)

    def trace(inputs: dict[str, Any]) -> str:
        with mlflow.start_span(name="item") as span:
            span.set_inputs(inputs)
            span.set_outputs("{}")
        mlflow.flush_trace_async_logging()
        time.sleep(0.01)  # distinct timestamps: the traces load in this order
        return str(span.trace_id)

    for i, row in enumerate(_file_rows()):
        trace_id = trace({k: row[k] for k in ("id", "prompt", "response")})
        alice = AssessmentSource(source_type="HUMAN", source_id="alice")
        mlflow.log_expectation(trace_id=trace_id, name="helpfulness", value=_alice(i), source=alice)
        if i in BOB_ROWS:
            bob = AssessmentSource(source_type="HUMAN", source_id="bob")
            mlflow.log_feedback(trace_id=trace_id, name="helpfulness", value=_bob(i), source=bob)
        judge = AssessmentSource(source_type="LLM_JUDGE", source_id="some-model")
        mlflow.log_feedback(trace_id=trace_id, name="helpfulness", value=0, source=judge)
    trace({"id": "unlabelled", "prompt": "q", "response": "r [row=99]"})


def _score(request: Any) -> dict[str, int]:
    return {"helpfulness": row_number(request) % 5}


def _run(judge: FakeJudge, root: Path, name: str, *extra: str) -> Any:
    args = [
        *judge_overrides(judge),
        "prompt=v1",
        "score=helpfulness",
        "dataset.fields.id=id",
        f"tracking.uri=sqlite:///{root}/mlflow.db",
        "tracking.experiment=judged",
        f"hydra.run.dir={name}",
        *extra,
    ]
    return run_cli(args, root)


@pytest.mark.slow
def test_labels_logged_in_mlflow_give_the_same_agreement_as_the_file(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    write_jsonl(tmp_path / "val.jsonl", _file_rows())
    _log_labelled_traces(uri, "labels")
    with FakeJudge(json_scores(_score)) as judge:
        from_file = _run(
            judge,
            tmp_path,
            "file",
            "dataset=jsonl",
            f"dataset.path={tmp_path / 'val.jsonl'}",
            "+dataset.fields.annotators.helpfulness=[alice,bob]",
        )
        from_mlflow = _run(judge, tmp_path, "mlflow", "dataset=mlflow", "dataset.experiment=labels")
    assert from_file.returncode == 0, from_file.stderr
    assert from_mlflow.returncode == 0, from_mlflow.stderr
    file_summary = json.loads((tmp_path / "file" / "summary.json").read_text())
    mlflow_summary = json.loads((tmp_path / "mlflow" / "summary.json").read_text())
    assert mlflow_summary["n_examples"] == N_ROWS  # the unlabelled trace is left out
    got, want = mlflow_summary["agreement"]["helpfulness"], file_summary["agreement"]["helpfulness"]
    assert got.keys() == want.keys()
    numbers = [k for k, v in want.items() if isinstance(v, float | int)]
    assert len(numbers) > 40  # every statistic, with its interval
    assert {k: got[k] for k in numbers} == pytest.approx({k: want[k] for k in numbers})
    assert got["pearson"] < 0.9  # not trivially equal

    import pandas as pd

    results = pd.read_parquet(tmp_path / "mlflow" / "results.parquet").set_index("example_id")
    assert results.loc["r4", "human"] == (_alice(4) + _bob(4)) / 2  # alice and bob: their mean
    assert results.loc["r0", "human"] == _alice(0)  # the judge's feedback is no human label
    from mlflow.tracking import MlflowClient

    run = MlflowClient(tracking_uri=uri).get_run(mlflow_summary["mlflow_run_id"])
    source = json.loads(run.inputs.dataset_inputs[0].dataset.source)
    assert source == {"tags": {"mlflow_experiment": "labels"}}
    schema = json.loads(run.inputs.dataset_inputs[0].dataset.schema)["mlflow_colspec"]
    assert {c["name"] for c in schema} == {"id", "prompt", "response", "human.helpfulness"}


def test_the_labels_of_one_run_are_read_with_run_id(tmp_path: Path) -> None:
    """Traces logged under a run are read with ``dataset.run_id``; the loader alone, no CLI."""
    import mlflow
    from mlflow.entities import AssessmentSource

    from judgekit.config.schema import DatasetConfig, ScoreSchemaConfig
    from judgekit.data.loading import load_examples

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("runs")
    run_ids = []
    for run_number in range(2):
        with mlflow.start_run() as run:
            with mlflow.start_span(name="item") as span:
                span.set_inputs({"prompt": f"p{run_number}", "response": "r"})
            mlflow.flush_trace_async_logging()
            mlflow.log_expectation(
                trace_id=span.trace_id,
                name="quality",
                value="good" if run_number else "bad",
                source=AssessmentSource(source_type="HUMAN", source_id="ann"),
            )
        run_ids.append(run.info.run_id)
    schema = ScoreSchemaConfig(
        scores=[
            ScoreSpec(
                name="quality", labels={"bad": RubricLabel(value=0), "good": RubricLabel(value=1)}
            )
        ]
    )
    cfg = DatasetConfig(source="mlflow", experiment="runs", run_id=run_ids[1])
    [example] = load_examples(cfg, schema, tracking_uri=uri)
    assert example.item["prompt"] == "p1" and example.human == {"quality": 1.0}
    assert example.id == example.item["mlflow_trace_id"] == span.trace_id
    both = load_examples(
        DatasetConfig(source="mlflow", experiment="runs"), schema, tracking_uri=uri
    )
    assert [e.item["prompt"] for e in both] == ["p0", "p1"]


@pytest.mark.parametrize(
    ("setup", "overrides", "needle"),
    [
        (None, ["dataset.experiment=nowhere"], "no MLflow experiment 'nowhere'"),
        ("empty", ["dataset.experiment=empty"], "MLflow experiment 'empty' has no traces"),
        (
            "judged",
            ["dataset.experiment=judged_only"],
            "none with a human label named 'helpfulness'",
        ),
        ("judged", ["dataset.experiment=judged_only", "dataset.run_id=abc"], "no run 'abc'"),
    ],
)
def test_bad_mlflow_datasets_are_setup_errors_before_any_judge_call(
    tmp_path: Path, setup: str | None, overrides: list[str], needle: str
) -> None:
    import mlflow
    from mlflow.entities import AssessmentSource

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    mlflow.set_tracking_uri(uri)
    if setup == "empty":
        mlflow.set_experiment("empty")
    if setup == "judged":
        mlflow.set_experiment("judged_only")
        with mlflow.start_span(name="item") as span:
            span.set_inputs({"prompt": "p", "response": "r"})
        mlflow.flush_trace_async_logging()
        judge_source = AssessmentSource(source_type="LLM_JUDGE", source_id="m")
        mlflow.log_feedback(
            trace_id=span.trace_id, name="helpfulness", value=3, source=judge_source
        )
    with FakeJudge() as judge:
        proc = _run(judge, tmp_path, "bad", "dataset=mlflow", *overrides)
        assert judge.counters.requests_total == 0
    line = assert_one_line_error(proc, needle)
    if setup == "judged" and "run_id" not in " ".join(overrides):
        assert "helpfulness (LLM_JUDGE feedback) ×1" in line


def test_dataset_mlflow_needs_an_experiment() -> None:
    from judgekit.config.schema import DatasetConfig
    from judgekit.errors import ConfigError

    with pytest.raises(ConfigError, match=r"^dataset\.experiment: not set; dataset\.source=mlflow"):
        DatasetConfig(source="mlflow")


def test_several_annotators_give_the_mean_or_the_majority() -> None:
    numeric = ScoreSpec(name="h", minimum=0, maximum=4)
    rubric = ScoreSpec(name="q", labels={"bad": RubricLabel(0), "good": RubricLabel(1)})
    preference = ScoreSpec(
        name="p",
        kind="preference",
        labels={"A": RubricLabel(1), "B": RubricLabel(2), "tie": RubricLabel(0)},
    )
    assert _combined([2, 3], numeric) == 2.5  # (2 + 3) / 2
    assert _combined([4], numeric) == 4
    assert _combined(["good", "Good", "bad"], rubric) == "good"  # 2 of 3
    assert _combined(["good", "bad"], rubric) is None  # no majority: no label
    assert _combined(["A", "B"], preference) == "tie"  # a split vote on a preference: a tie
    assert _combined(["x", 1], numeric) == "x"  # passed on: the loader's check names it


@pytest.mark.slow
def test_labels_and_registries_round_trip_through_a_real_mlflow_server(
    tmp_path: Path,
    mlflow_server: tuple[str, Path],  # noqa: F811  # the fixture imported above
) -> None:
    """Labels logged to a server, read with dataset=mlflow, and the run's prompt version,
    dataset input, evaluation dataset and judge registered there, all over HTTP."""
    import mlflow
    from mlflow.genai.scorers import get_scorer
    from mlflow.tracking import MlflowClient

    url, _ = mlflow_server
    _log_labelled_traces(url, "remote-labels")
    with FakeJudge(json_scores(_score)) as judge:
        proc = run_cli(
            [
                *judge_overrides(judge),
                "prompt=v1",
                "score=helpfulness",
                "dataset=mlflow",
                "dataset.experiment=remote-labels",
                f"tracking.uri={url}",
                "tracking.experiment=remote-judged",
                "tracking.register_dataset=true",
                "hydra.run.dir=out",
            ],
            tmp_path,
        )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["n_examples"] == N_ROWS
    client = MlflowClient(tracking_uri=url)
    run = client.get_run(summary["mlflow_run_id"])
    assert run.data.tags["judgekit.prompt_uri"] == "prompts:/judgekit.v1/1"
    assert client.get_prompt_version("judgekit.v1", 1).template[0]["role"] == "system"
    [dataset_input] = run.inputs.dataset_inputs
    assert dataset_input.dataset.name == "mlflow"
    mlflow.set_tracking_uri(url)
    records = client.get_dataset(run.data.tags["judgekit.evaluation_dataset"]).to_df()
    assert sorted(r["helpfulness"] for r in records["expectations"]) == sorted(
        row["helpfulness"] for row in _file_rows()
    )
    name = run.data.tags["judgekit.mlflow_judge"]
    assert get_scorer(name=name, experiment_id=run.info.experiment_id).model == "openai:/fake-judge"


@pytest.mark.slow
def test_a_judgekit_runs_own_traces_load_back_as_its_dataset(tmp_path: Path) -> None:
    """A run's traces (HUMAN expectations per annotator beside the combined label) read back with
    ``dataset=mlflow dataset.run_id=RUN`` give the run's examples and its agreement again."""
    write_jsonl(tmp_path / "val.jsonl", _file_rows())
    with FakeJudge(json_scores(_score)) as judge:
        first = _run(
            judge,
            tmp_path,
            "file",
            "dataset=jsonl",
            f"dataset.path={tmp_path / 'val.jsonl'}",
            "+dataset.fields.annotators.helpfulness=[alice,bob]",
        )
        assert first.returncode == 0, first.stderr
        run_id = json.loads((tmp_path / "file" / "summary.json").read_text())["mlflow_run_id"]
        again = _run(
            judge,
            tmp_path,
            "again",
            "dataset=mlflow",
            "dataset.experiment=judged",
            f"dataset.run_id={run_id}",
            "dataset.fields.id=null",
        )
    assert again.returncode == 0, again.stderr
    want = json.loads((tmp_path / "file" / "summary.json").read_text())["agreement"]["helpfulness"]
    got = json.loads((tmp_path / "again" / "summary.json").read_text())["agreement"]["helpfulness"]
    for stat in ("pearson", "spearman", "kendall", "mae", "qwk", "n_scored"):
        assert got[stat] == pytest.approx(want[stat]), stat
