"""End to end through the real CLI, litellm over HTTP to a fake judge, and MLflow read back."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import TEST_KEY, TEST_KEY_ENV, file_run, judge_overrides, run_cli, write_jsonl
from scipy import stats as sps

from judgekit.testing.server import FakeJudge, FaultPlan, Reply, json_scores

N_ROWS = 24


def _dataset(path: Path) -> list[dict]:
    """HelpSteer2-shaped rows; each response carries a marker the fake judge reads."""
    rows = []
    for i in range(N_ROWS):
        human = i % 5
        rows.append(
            {
                "prompt": f"Question {i // 2}: explain topic {i // 2}.",
                "response": f"Answer text [row={i}] [quality={human}]",
                "helpfulness": human,
                "correctness": (human + 1) % 5,
                "coherence": 4,
                "complexity": 2,
                "verbosity": (i * 3) % 5,
            }
        )
    write_jsonl(path, rows)
    return rows


def _judge_value(row: int, quality: int) -> int:
    """The fake judge's helpfulness: the human score, one higher on every third row (capped)."""
    return min(quality + (1 if row % 3 == 0 else 0), 4)


def _answer(request) -> dict:  # noqa: ANN001
    text = request.last_user_text
    row = int(re.search(r"\[row=(\d+)\]", text).group(1))
    quality = int(re.search(r"\[quality=(\d+)\]", text).group(1))
    return {"helpfulness": _judge_value(row, quality)}


def _qwk(human: np.ndarray, judge: np.ndarray, levels: int = 5) -> float:
    """Quadratic weighted kappa written out independently: 1 - sum(w*O) / sum(w*E)."""
    observed = np.zeros((levels, levels))
    for h, j in zip(human.astype(int), judge.astype(int), strict=True):
        observed[h, j] += 1
    expected = np.outer(observed.sum(1), observed.sum(0)) / observed.sum()
    i, j = np.indices((levels, levels))
    weights = (i - j) ** 2 / (levels - 1) ** 2
    return 1 - (weights * observed).sum() / (weights * expected).sum()


def _only_run(tracking_uri: str, experiment: str):  # noqa: ANN202
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id])
    return client, runs


@pytest.mark.slow
def test_cli_run_logs_agreement_that_matches_an_independent_computation(workdir: Path) -> None:
    rows = _dataset(workdir / "val.jsonl")
    with FakeJudge(json_scores(_answer)) as judge:
        proc = run_cli(
            [
                *judge_overrides(judge),
                "prompt=v1",
                "score=helpfulness",
                "dataset=jsonl",
                "dataset.path=val.jsonl",
                "hydra.run.dir=out",
            ],
            workdir,
        )
        assert proc.returncode == 0, proc.stderr
        assert judge.counters.requests_total == N_ROWS
    human = np.array([r["helpfulness"] for r in rows], dtype=float)
    judged = np.array([_judge_value(i, r["helpfulness"]) for i, r in enumerate(rows)], dtype=float)
    client, runs = _only_run(f"sqlite:///{workdir}/mlflow.db", "judgekit")
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    metrics = runs[0].data.metrics
    assert metrics["helpfulness/pearson"] == pytest.approx(sps.pearsonr(human, judged)[0], abs=1e-9)
    assert metrics["helpfulness/spearman"] == pytest.approx(
        sps.spearmanr(human, judged)[0], abs=1e-9
    )
    assert metrics["helpfulness/mae"] == pytest.approx(np.abs(human - judged).mean(), abs=1e-12)
    assert metrics["helpfulness/qwk"] == pytest.approx(_qwk(human, judged), abs=1e-9)
    assert metrics["helpfulness/n_failed"] == 0
    assert metrics["helpfulness/n_scored"] == N_ROWS
    # The run directory holds the whole record.
    out = workdir / "out"
    for name in ("results.parquet", "summary.json", "hist_helpfulness.png", ".hydra/config.yaml"):
        assert (out / name).exists(), name
    assert "confusion_helpfulness.png" in {p.name for p in out.iterdir()}
    table = pd.read_parquet(out / "results.parquet")
    assert list(table["judge"]) == list(judged)
    params = runs[0].data.params
    assert params["judge.api_key_env"] == TEST_KEY_ENV
    assert runs[0].data.tags["judgekit.prompt"] == "v1"
    artifacts = {a.path for a in client.list_artifacts(runs[0].info.run_id)}
    assert {"results.parquet", "summary.json", "results_table.json"} <= artifacts
    assert f"outputs: {out}" in proc.stdout and "helpfulness" in proc.stdout
    _assert_key_nowhere(workdir)


def _assert_key_nowhere(root: Path) -> None:
    for path in root.rglob("*"):
        if path.is_file():
            assert TEST_KEY.encode() not in path.read_bytes(), f"key leaked into {path}"


@pytest.mark.slow
def test_failed_rows_are_nan_with_a_reason_and_counted_never_zero(workdir: Path) -> None:
    _dataset(workdir / "val.jsonl")

    def answer(request) -> Reply | str:  # noqa: ANN001
        row = int(re.search(r"\[row=(\d+)\]", request.last_user_text).group(1))
        if row % 4 == 0:
            return "I would rate this quite highly."  # no JSON: parse_error
        if row % 4 == 1:
            return json.dumps({"helpfulness": 7})  # out_of_range, never clamped
        return json.dumps({"helpfulness": 2})

    with FakeJudge(answer) as judge:
        proc = run_cli(
            [
                *file_run(judge, "val.jsonl"),
                "prompt=v1",
                "score=helpfulness",
                "hydra.run.dir=out",
            ],
            workdir,
        )
    assert proc.returncode == 0, proc.stderr
    table = pd.read_parquet(workdir / "out" / "results.parquet")
    failed = table[table["failure_reason"].notna()]
    assert set(failed["failure_reason"]) == {"parse_error", "out_of_range"}
    assert failed["judge"].isna().all()
    assert len(failed) == N_ROWS // 2
    _, runs = _only_run(f"sqlite:///{workdir}/mlflow.db", "judgekit")
    metrics = runs[0].data.metrics
    assert metrics["helpfulness/n_failed"] == N_ROWS // 2
    assert metrics["helpfulness/coverage"] == pytest.approx(0.5)
    assert metrics["failures/parse_error"] == N_ROWS // 4
    assert metrics["failures/out_of_range"] == N_ROWS // 4
    # Judge mean over scored rows only: every scored answer was 2.
    assert metrics["helpfulness/judge_mean"] == pytest.approx(2.0)


@pytest.mark.slow
def test_multirun_sweep_makes_one_mlflow_run_per_job(workdir: Path) -> None:
    _dataset(workdir / "val.jsonl")
    with FakeJudge(json_scores(_answer)) as judge:
        proc = run_cli(
            [
                "-m",
                *file_run(judge, "val.jsonl"),
                "prompt=v1,v2",
                "score=helpfulness",
                "runner.limit_samples=10",
                "hydra.sweep.dir=sweep",
            ],
            workdir,
        )
        assert proc.returncode == 0, proc.stderr
        assert judge.counters.requests_total == 20
    _, runs = _only_run(f"sqlite:///{workdir}/mlflow.db", "judgekit")
    assert sorted(r.data.tags["judgekit.prompt"] for r in runs) == ["v1", "v2"]
    assert {r.data.tags["judgekit.sweep_id"] for r in runs} == {str(workdir / "sweep")}
    assert sorted(r.data.tags["judgekit.sweep_job"] for r in runs) == ["0", "1"]
    assert all(r.info.status == "FINISHED" for r in runs)
    assert len(list((workdir / "sweep").glob("*/results.parquet"))) == 2


def test_evaluate_runs_the_tutorial_quick_test_in_process(fake_judge: FakeJudge) -> None:
    import judgekit

    result = judgekit.evaluate(
        judge="openai_compatible",
        prompt="v1",
        score="helpfulness",
        dataset=[
            {"prompt": "What is the capital of France?", "response": "Paris."},
            {"prompt": "What should I eat for breakfast?", "response": "Eggs."},
        ],
        parallelism=2,
        overrides=judge_overrides(fake_judge, key=False),
    )
    assert [r["index"] for r in result.row_scores] == [0, 1]
    assert all(0 <= r["scores"]["helpfulness"] <= 4 for r in result.row_scores)
    assert result.aggregate["helpfulness"]["count"] == 2
    assert result.agreement == {}
    assert fake_judge.counters.requests_total == 2


def test_stop_on_first_failed_row_keeps_what_was_computed(workdir: Path) -> None:
    import judgekit
    from judgekit.errors import RunError

    def answer(request) -> Reply | str:  # noqa: ANN001
        if "[row=5]" in request.last_user_text:
            return Reply("bad request", status=400)
        return json.dumps({"helpfulness": 1})

    rows = _dataset(workdir / "val.jsonl")
    with FakeJudge(answer) as judge:
        cfg = judgekit.build_config(
            "openai_compatible",
            "v1",
            "helpfulness",
            str(workdir / "val.jsonl"),
            parallelism=1,
            overrides=[*judge_overrides(judge, key=False), "runner.ignore_request_failure=false"],
        )
        from judgekit.pipeline import run

        with pytest.raises(RunError, match=r"row 5 .*failed with bad_request"):
            run(cfg, workdir / "out")
        assert judge.counters.requests_total == 6  # rows 0..5, then it stopped
    table = pd.read_parquet(workdir / "out" / "results.parquet")
    _, runs = _only_run(f"sqlite:///{workdir}/mlflow.db", "judgekit")
    assert [r.info.status for r in runs] == ["FAILED"]  # the run is logged, and marked failed
    assert len(table) == len(rows)
    assert (table["judge"].iloc[:5] == 1).all()
    assert set(table["failure_reason"].iloc[5:]) == {"bad_request", "not_run"}


def test_retries_are_recorded_per_row(workdir: Path) -> None:
    import judgekit

    _dataset(workdir / "val.jsonl")
    plan = FaultPlan(fail_first_n_attempts=1, retry_after_s=0.05)
    with FakeJudge(json_scores(_answer), faults=plan) as judge:
        result = judgekit.evaluate(
            "openai_compatible",
            "v1",
            "helpfulness",
            str(workdir / "val.jsonl"),
            overrides=judge_overrides(judge, key=False),
        )
        assert judge.counters.by_kind.get("rate_limit") == N_ROWS
    assert (result.results["attempts"] == 2).all()
    assert result.failures == {}
    assert not math.isnan(result.agreement["helpfulness"]["pearson"])
