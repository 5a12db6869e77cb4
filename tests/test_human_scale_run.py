"""Human-scale figures end to end: runs with the fake judge over real HTTP, a real MLflow sqlite
store and real Hydra composition; ``stats.ppi`` on data where only some rows carry a human label,
the alt-test and human ceiling of data with annotator columns, and the ``judgekit estimate`` and
``judgekit alt-test`` commands on the finished runs. Figures against direct ppi_py / stats calls."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import ppi_py
import pytest
from helpers import assert_one_line_error, judge_overrides, row_number, run_cli, write_jsonl

from judgekit.config.schema import FieldsConfig
from judgekit.errors import ConfigError
from judgekit.stats.alttest import alt_test
from judgekit.stats.ceiling import human_ceiling_pointwise
from judgekit.testing.server import ChatRequest, FakeJudge

N, LABELLED = 60, 24
TRUTH = [i % 5 for i in range(N)]
JUDGE = [min(4, t + (1 if i % 3 == 0 else 0)) for i, t in enumerate(TRUTH)]
RATERS = [[t, min(4, t + (i % 2)), max(0, t - (i % 3 == 1))] for i, t in enumerate(TRUTH)]
SYSTEMS = ["alpha" if i % 2 == 0 else "beta" for i in range(N)]


def _pointwise(path: Path) -> Path:
    """60 rows, human labels on the first 24 only (null after), three raters and a system each."""
    rows = [
        {
            "prompt": f"Question {i}",
            "response": f"Answer [row={i}]",
            "helpfulness": TRUTH[i] if i < LABELLED else None,
            "r1": RATERS[i][0],
            "r2": RATERS[i][1],
            "r3": RATERS[i][2],
            "model": SYSTEMS[i],
        }
        for i in range(N)
    ]
    return write_jsonl(path, rows)


def _pointwise_answer(request: ChatRequest) -> str:
    return json.dumps({"helpfulness": JUDGE[row_number(request)]})


def _config(judge: FakeJudge, data: Path, *extra: str, annotators: bool = True) -> Any:
    import judgekit

    fields = FieldsConfig(
        system="model",
        scores={"helpfulness": "helpfulness"},
        annotators={"helpfulness": ["r1", "r2", "r3"]} if annotators else {},
    )
    return judgekit.build_config(
        "openai_compatible",
        "v1",
        "helpfulness",
        str(data),
        parallelism=4,
        fields=fields,
        overrides=[
            *judge_overrides(judge, key=False),
            "stats.bootstrap_resamples=50",
            f"tracking.uri=sqlite:///{data.parent}/mlflow.db",
            *extra,
        ],
    )


def _metrics(workdir: Path, run_id: str) -> dict[str, float]:
    from mlflow.tracking import MlflowClient

    return dict(MlflowClient(f"sqlite:///{workdir}/mlflow.db").get_run(run_id).data.metrics)


@pytest.fixture(scope="module")
def pointwise_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """One ``stats.ppi=true`` run on the partly labelled pointwise data, shared by the tests."""
    from judgekit.pipeline import run

    workdir = tmp_path_factory.mktemp("ppi")
    data = _pointwise(workdir / "rows.jsonl")
    with FakeJudge(_pointwise_answer) as judge:
        result = run(_config(judge, data, "stats.ppi=true"), workdir / "out")
    return workdir, result


def test_a_partly_labelled_dataset_loads_and_logs_the_ppi_estimates(pointwise_run) -> None:  # noqa: ANN001
    workdir, result = pointwise_run
    metrics = _metrics(workdir, result.run_id)
    y, yhat = np.array(TRUTH[:LABELLED], float), np.array(JUDGE[:LABELLED], float)
    unl = np.array(JUDGE[LABELLED:], float)
    value = ppi_py.ppi_mean_pointestimate(y, yhat, unl)
    low, high = ppi_py.ppi_mean_ci(y, yhat, unl, alpha=0.05)
    assert metrics["helpfulness/ppi_mean"] == pytest.approx(value[0], abs=1e-12)
    assert metrics["helpfulness/ppi_mean_ci_low"] == pytest.approx(low[0], abs=1e-12)
    assert metrics["helpfulness/ppi_mean_ci_high"] == pytest.approx(high[0], abs=1e-12)
    assert metrics["helpfulness/judge_mean_naive"] == pytest.approx(np.mean(JUDGE))
    assert metrics["helpfulness/human_mean_labelled"] == pytest.approx(y.mean())
    assert (metrics["helpfulness/n_labelled"], metrics["helpfulness/n_unlabelled"]) == (24, 36)
    # per system: alpha's rows are the even ones
    even = np.arange(N) % 2 == 0
    lab = even & (np.arange(N) < LABELLED)
    j = np.array(JUDGE, float)
    alpha = ppi_py.ppi_mean_pointestimate(np.array(TRUTH, float)[lab], j[lab], j[even & ~lab])
    assert metrics["helpfulness/system/alpha/ppi_mean"] == pytest.approx(alpha[0], abs=1e-12)
    ranks = {metrics[f"helpfulness/system/{s}/ppi_rank"] for s in ("alpha", "beta")}
    assert ranks == {1.0, 2.0}
    # the agreement figures are made on the labelled rows only
    assert metrics["helpfulness/n_scored"] == LABELLED
    summary = json.loads((workdir / "out" / "summary.json").read_text())
    assert summary["human_scale"]["estimates"]["helpfulness"]["ppi"]["n_labelled"] == LABELLED


def test_a_run_with_annotators_logs_the_alt_test_and_the_human_ceiling(pointwise_run) -> None:  # noqa: ANN001
    workdir, result = pointwise_run
    metrics = _metrics(workdir, result.run_id)
    raters, judge = np.array(RATERS, float), np.array(JUDGE, float)
    ref = alt_test(raters, judge, names=["r1", "r2", "r3"], metric="neg_rmse")
    assert metrics["helpfulness/alt_test/winning_rate"] == ref.winning_rate
    assert metrics["helpfulness/alt_test/advantage_probability"] == ref.advantage_probability
    assert metrics["helpfulness/alt_test/passed"] == float(ref.passed)
    assert metrics["helpfulness/alt_test/epsilon"] == 0.2
    p = ref.annotators[1].p_adjusted
    assert metrics["helpfulness/alt_test/annotator/r2/p_adjusted"] == pytest.approx(p)
    ceiling = human_ceiling_pointwise(raters, minimum=0, maximum=4)
    assert metrics["helpfulness/human_alpha"] == pytest.approx(ceiling["alpha_ordinal"])
    assert metrics["helpfulness/human_qwk"] == pytest.approx(ceiling["mean_pairwise_qwk"])
    table = pd.read_parquet(workdir / "out" / "annotators.parquet")
    assert len(table) == N * 3 and set(table["annotator"]) == {"r1", "r2", "r3"}


def test_estimate_command_with_hidden_labels_matches_ppi_py_and_logs_a_summary(
    pointwise_run,  # noqa: ANN001
) -> None:
    workdir, result = pointwise_run
    uri = f"sqlite:///{workdir}/mlflow.db"
    args = ["--labels", "10", "--seed", "3", "--width", "3", "--tracking-uri", uri]
    proc = run_cli(["estimate", result.run_id, *args, "--out", "est"], workdir)
    assert proc.returncode == 0, proc.stderr
    assert "PPI++" in proc.stdout and "truth" in proc.stdout and "alpha" in proc.stdout
    found = json.loads((workdir / "est" / "estimates.json").read_text())
    hidden = found["hidden_example_indexes"]["helpfulness"]
    kept = sorted(set(range(LABELLED)) - set(hidden))
    expected = np.random.default_rng(3).choice(np.arange(LABELLED), 10, replace=False)
    assert kept == sorted(expected.tolist()) and len(hidden) == LABELLED - 10
    y, j = np.array(TRUTH, float), np.array(JUDGE, float)
    rest = np.array(sorted(set(range(N)) - set(kept)))
    low, high = ppi_py.ppi_mean_ci(y[kept], j[kept], j[rest], alpha=0.05)
    ppi = found["scores"]["helpfulness"]["ppi"]
    assert (ppi["ci_low"], ppi["ci_high"]) == pytest.approx((low[0], high[0]), abs=1e-12)
    assert (ppi["n_labelled"], ppi["n_unlabelled"]) == (10, 50)
    truth = found["scores"]["helpfulness"]["human_all"]
    assert truth["value"] == pytest.approx(y[:LABELLED].mean())
    csv = pd.read_csv(workdir / "est" / "estimates.csv")
    assert {"ppi", "judge_naive", "human_labelled", "human_all"} <= set(csv["method"])
    # the summary run: tagged, its metrics the same figures, and compare leaves it out
    from mlflow.tracking import MlflowClient

    from judgekit.compare.runs import NOT_RUNS

    client = MlflowClient(uri)
    runs = client.search_runs(
        [client.get_experiment_by_name("judgekit").experiment_id],
        filter_string="tags.`judgekit.kind` = 'estimate'",
    )
    assert len(runs) == 1 and "estimate" in NOT_RUNS
    summary = runs[0].data
    assert summary.tags["judgekit.source_run"] == result.run_id
    assert summary.metrics["helpfulness/ppi_mean_ci_low"] == pytest.approx(low[0], abs=1e-12)
    assert "helpfulness/labels_needed" in summary.metrics
    assert summary.metrics["helpfulness/human_mean_all"] == pytest.approx(y[:LABELLED].mean())


def test_alt_test_command_recomputes_the_run_figures_from_its_directory(pointwise_run) -> None:  # noqa: ANN001
    workdir, result = pointwise_run
    proc = run_cli(["alt-test", str(workdir / "out"), "--no-log", "--out", "alt"], workdir)
    assert proc.returncode == 0, proc.stderr
    assert "winning rate" in proc.stdout and "human ceiling" in proc.stdout
    found = json.loads((workdir / "alt" / "alt_test.json").read_text())
    logged = _metrics(workdir, result.run_id)
    alt = found["scores"]["helpfulness"]["alt_test"]
    assert alt["winning_rate"] == logged["helpfulness/alt_test/winning_rate"]
    assert len(pd.read_csv(workdir / "alt" / "alt_test.csv")) == 3


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["estimate", "nowhere"], "'nowhere' is not a run directory, nor an MLflow run"),
        (["estimate", "out", "--labels", "500"], "--labels: 500 is not valid for helpfulness"),
        (["estimate", "out", "--labels", "1"], "--labels: 1 is not valid"),
        (["estimate", "out", "--width", "-1"], "--width: -1.0 is not valid"),
        (["estimate", "out", "--score", "nope"], "--score: nope not in"),
        (["alt-test", "out", "--epsilon", "2"], "--epsilon: 2.0 is not valid"),
        (["estimate", "out", "--labels", "x"], "--labels: invalid int value"),
    ],
)
def test_command_mistakes_are_one_line_errors(pointwise_run, args: list[str], needle: str) -> None:  # noqa: ANN001
    workdir, _ = pointwise_run
    assert_one_line_error(run_cli([*args, "--no-log"], workdir), needle)


def test_a_run_without_annotators_has_no_alt_test(tmp_path: Path) -> None:
    from judgekit.pipeline import run

    data = _pointwise(tmp_path / "rows.jsonl")
    with FakeJudge(_pointwise_answer) as judge:
        result = run(_config(judge, data, annotators=False), tmp_path / "out")
    assert result.human_scale is None  # stats.ppi is off and there are no annotators
    assert not (tmp_path / "out" / "annotators.parquet").exists()
    proc = run_cli(["alt-test", "out", "--no-log"], tmp_path)
    assert_one_line_error(proc, "has no annotators.parquet")
    # a run neither logged nor made by the judgekit command: no file says the scores' kinds
    (tmp_path / "out" / "resolved_config.json").unlink()
    proc = run_cli(["estimate", "out", "--no-log"], tmp_path)
    assert_one_line_error(proc, "has neither resolved_config.json nor .hydra/config.yaml")


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("stats.alt_test_epsilon=1.5", "stats.alt_test_epsilon: 1.5 is not valid"),
        ("stats.ppi_width=0", "stats.ppi_width: 0.0 is not valid"),
    ],
)
def test_stats_keys_are_checked_at_compose(override: str, needle: str) -> None:
    import judgekit

    with pytest.raises(ConfigError, match=needle):
        judgekit.build_config(
            "openai_compatible",
            "v1",
            "helpfulness",
            "x.jsonl",
            overrides=["judge.model=x", override],
        )


# --- a preference run with three annotators: the alt-test's verdict known both ways ----------

PAIRS = 40
TRUTH_AB = ["A" if i % 2 == 0 else "B" for i in range(PAIRS)]


def _vote(i: int, k: int) -> str:
    """Annotator k errs on rows (i + 7k) % 5 == 0, each on different rows: the majority is right."""
    wrong = (i + 7 * k) % 5 == 0
    return {"A": "B", "B": "A"}[TRUTH_AB[i]] if wrong else TRUTH_AB[i]


def _pairs(path: Path) -> Path:
    rows = [
        {
            "qid": f"q{i}",
            "question": f"question {i}",
            "ans1": f"first [row={i}]",
            "ans2": f"second {i}",
            "winner": TRUTH_AB[i],
            **{f"r{k + 1}": _vote(i, k) for k in range(3)},
        }
        for i in range(PAIRS)
    ]
    return write_jsonl(path, rows)


RANDOM = np.random.default_rng(0).choice(["A", "B"], PAIRS)


def _majority(request: ChatRequest) -> str:
    return json.dumps({"preference": TRUTH_AB[row_number(request)]})


def _random(request: ChatRequest) -> str:
    return json.dumps({"preference": str(RANDOM[row_number(request)])})


@pytest.mark.parametrize(("responder", "passed"), [(_majority, 1.0), (_random, 0.0)])
def test_alt_test_through_a_preference_run_knows_the_answer_both_ways(
    tmp_path: Path, responder: Any, passed: float
) -> None:
    data = _pairs(tmp_path / "pairs.jsonl")
    fields = [
        "dataset=pairwise_jsonl",
        f"dataset.path={data}",
        "dataset.fields.id=qid",
        "dataset.fields.prompt=question",
        "dataset.fields.extra.response_a=ans1",
        "dataset.fields.extra.response_b=ans2",
        "dataset.fields.scores.preference=winner",
        "++dataset.fields.annotators.preference=[r1,r2,r3]",
    ]
    with FakeJudge(responder) as judge:
        proc = run_cli(
            [
                *judge_overrides(judge),
                "score=preference",
                "prompt=pairwise_v1",
                *fields,
                "stats.bootstrap_resamples=20",
                "hydra.run.dir=out",
            ],
            tmp_path,
        )
    assert proc.returncode == 0, proc.stderr
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    (run,) = client.search_runs([client.get_experiment_by_name("judgekit").experiment_id])
    metrics = run.data.metrics
    assert metrics["preference/alt_test/passed"] == passed
    assert metrics["preference/alt_test/winning_rate"] == passed  # 3 of 3, or 0 of 3
    assert "preference/human_kappa" in metrics  # the pairwise ceiling, beside
    proc = run_cli(["alt-test", run.info.run_id, "--out", "alt"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert ("PASSED" if passed else "FAILED") in proc.stdout
    (summary,) = client.search_runs(
        [client.get_experiment_by_name("judgekit").experiment_id],
        filter_string="tags.`judgekit.kind` = 'alt_test'",
    )
    assert summary.data.metrics["preference/alt_test/passed"] == passed
    if passed:
        assert summary.data.metrics["preference/alt_test/annotator/r1/rho_h"] == 0.8
        assert math.isclose(summary.data.metrics["preference/alt_test/advantage_probability"], 1)
