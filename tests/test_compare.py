"""``judgekit compare``: real sweeps through the CLI against a fake judge, compared from MLflow.

Two sweeps of ``prompt=v1,v2`` on the same 120 rows share one MLflow store. In the first the
fake judge answers v2 with the human score (one level high on every 10th row) and v1 with noise
of -2..+2; in the second both versions get the same noisy answers, so every difference is 0.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import file_run, run_cli, write_jsonl

from judgekit.cli.compare import main
from judgekit.compare.report import metric_part
from judgekit.compare.runs import ComparedRun, collect_runs, compare, label_runs
from judgekit.compare.tables import align, paired_table
from judgekit.testing.server import ChatRequest, FakeJudge, json_scores

N_ROWS = 120
MAIN_STATS = ("pearson", "qwk", "mae")


def _human(row: int) -> int:
    return row % 5


def _noisy(row: int) -> int:
    """Prompt v1's answer: the human score plus a fixed offset in -2..+2, kept on 0..4."""
    return min(max(_human(row) + (row * 37 + 11) % 5 - 2, 0), 4)


def _close(row: int) -> int:
    """Prompt v2's answer: the human score, one level high (capped) on every 10th row."""
    return min(_human(row) + (row % 10 == 0), 4)


def _is_v2(request: ChatRequest) -> bool:
    system = " ".join(str(m.get("content")) for m in request.messages if m["role"] == "system")
    if "HelpSteer2's human annotators" in system:
        return True
    assert request.last_user_text.startswith("Rate the assistant's response"), "neither v1 nor v2"
    return False


def _row(request: ChatRequest) -> int:
    return int(re.search(r"\[row=(\d+)\]", request.last_user_text).group(1))


def _by_version(request: ChatRequest) -> dict[str, int]:
    row = _row(request)
    return {"helpfulness": _close(row) if _is_v2(request) else _noisy(row)}


def _same_for_both(request: ChatRequest) -> dict[str, int]:
    return {"helpfulness": _noisy(_row(request))}


def _write_dataset(path: Path) -> None:
    rows = [
        {
            "prompt": f"Question {i // 2}: explain topic {i // 2}.",  # two rows per prompt
            "response": f"Answer text [row={i}]",
            "helpfulness": _human(i),
        }
        for i in range(N_ROWS)
    ]
    write_jsonl(path, rows)


def _sweep(workdir: Path, responder, sweep_dir: str) -> None:  # noqa: ANN001
    with FakeJudge(json_scores(responder)) as judge:
        proc = run_cli(
            [
                "-m",
                *file_run(judge, "val.jsonl"),
                "prompt=v1,v2",
                "score=helpfulness",
                f"hydra.sweep.dir={sweep_dir}",
            ],
            workdir,
            # Its own cache: the second sweep's judge may get the port the first's had.
            env={"JUDGEKIT_CACHE_DIR": str(workdir / f"cache_{sweep_dir}")},
        )
    assert proc.returncode == 0, proc.stderr


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory whose mlflow.db holds sweep ``differ`` (older) and sweep ``same`` (newer)."""
    workdir = tmp_path_factory.mktemp("compare")
    _write_dataset(workdir / "val.jsonl")
    _sweep(workdir, _by_version, "differ")
    _sweep(workdir, _same_for_both, "same")
    return workdir


def _uri(workdir: Path) -> str:
    return f"sqlite:///{workdir}/mlflow.db"  # absolute: MLflow caches stores by URI string


def _client(workdir: Path):  # noqa: ANN202
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=_uri(workdir))


def _verdicts(paired: pd.DataFrame) -> dict[str, str]:
    return dict(zip(paired["statistic"], paired["verdict"], strict=True))


@pytest.mark.slow
def test_v2_is_better_than_v1_and_the_report_is_written_and_logged(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code = main(
        ["--tracking-uri", _uri(store), "--sweep", str(store / "differ"), "--out", str(out)]
    )
    printed = capsys.readouterr()
    assert code == 0, printed.err
    paired = pd.read_csv(out / "paired.csv")
    assert set(paired["label"]) == {"prompt=v2"} and set(paired["baseline_label"]) == {"prompt=v1"}
    verdicts = _verdicts(paired)
    assert all(verdicts[s] == "better" for s in MAIN_STATS), verdicts
    rows = paired.set_index("statistic")
    assert (rows.loc[["pearson", "qwk"], "ci_low"] > 0).all()
    assert rows.loc["mae", "ci_high"] < 0  # lower mae is better: the interval is below 0
    # MAE by hand from the answer functions: the paired a/b are the runs' own figures.
    human = np.array([_human(i) for i in range(N_ROWS)])
    v1 = np.abs(np.array([_noisy(i) for i in range(N_ROWS)]) - human).mean()
    v2 = np.abs(np.array([_close(i) for i in range(N_ROWS)]) - human).mean()  # 12 rows off by 1
    assert v2 == pytest.approx(0.1)
    assert rows.loc["mae", "a"] == pytest.approx(v1) and rows.loc["mae", "b"] == pytest.approx(v2)
    assert rows.loc["mae", "difference"] == pytest.approx(v2 - v1)
    assert (rows["n_common"] == N_ROWS).all() and (rows["n_dropped"] == 0).all()
    assert set(rows["scheme"]) == {"clusters"}  # two rows per prompt: prompts are resampled
    # Files: markdown, both CSVs, the forest plot.
    table = pd.read_csv(out / "comparison.csv")
    assert list(table["label"]) == ["prompt=v1", "prompt=v2"] and table["tokens"].gt(0).all()
    assert (table["pearson_ci_low"] < table["pearson"]).all()
    markdown = (out / "comparison.md").read_text()
    assert "| prompt=v2 | qwk |" in markdown and "**better**" in markdown
    assert (out / "forest.png").read_bytes().startswith(b"\x89PNG")
    assert "better" in printed.out and f"outputs: {out}" in printed.out
    # The summary run: tagged, carrying the files and the differences as metrics.
    client = _client(store)
    summary = client.search_runs(
        [client.get_experiment_by_name("judgekit").experiment_id],
        "tags.`judgekit.kind` = 'comparison'",
    )[0]
    assert summary.info.run_name == "compare-differ"
    assert summary.data.tags["judgekit.baseline"] == paired["baseline_run_id"][0]
    assert len(summary.data.tags["judgekit.compared_runs"].split(",")) == 2
    assert summary.data.metrics["prompt_v2/helpfulness/mae/difference"] == pytest.approx(v2 - v1)
    artifacts = {a.path for a in client.list_artifacts(summary.info.run_id)}
    assert artifacts == {"comparison.md", "comparison.csv", "paired.csv", "forest.png"}
    # A later comparison does not collect the summary run.
    runs, _, _ = collect_runs(client, "judgekit", sweep=str(store / "differ"))
    assert len(runs) == 2 and summary.info.run_id not in {r.run_id for r in runs}


@pytest.mark.slow
def test_identical_answers_give_no_detectable_difference_on_every_statistic(store: Path) -> None:
    comparison = compare(_client(store), sweep="latest", resamples=500)
    assert comparison.sweep_id == str(store / "same")  # the newer sweep
    verdicts = _verdicts(comparison.paired)
    assert set(verdicts) == set(comparison.statistics) and len(verdicts) == 8
    assert set(verdicts.values()) == {"no detectable difference"}
    assert (comparison.paired["difference"] == 0).all()
    assert (comparison.paired["p_value"] == 1).all()


@pytest.mark.slow
def test_the_baseline_can_be_any_run_and_then_v1_is_worse(store: Path) -> None:
    client = _client(store)
    runs, _, _ = collect_runs(client, "judgekit", sweep=str(store / "differ"))
    v2 = next(r for r in runs if r.tags["judgekit.prompt"] == "v2")
    comparison = compare(
        client, sweep=str(store / "differ"), baseline=v2.run_id, statistics=list(MAIN_STATS)
    )
    assert comparison.baseline.run_id == v2.run_id
    assert set(_verdicts(comparison.paired).values()) == {"worse"}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--experiment", "nope"], "no experiment 'nope'"),
        (["--runs", "0123456789abcdef0123456789abcdef", "x"], "run '0123456789abcdef"),
        (["--score", "correctness"], "--score: correctness not logged by these runs"),
        (["--statistics", "pearson,judge_mean"], "--statistics: judge_mean cannot be compared"),
        (["--sweep", "elsewhere"], "--sweep elsewhere: no run has this sweep id"),
        (["--confidence", "1.5"], "--confidence: 1.5 is not valid"),
        (["--resamples", "many"], "argument --resamples: invalid int value"),
    ],
)
def test_errors_exit_2_with_one_line(
    store: Path, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--tracking-uri", _uri(store), "--no-log", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("judgekit: error: ") and message in err, err
    assert err.count("\n") == 1


@pytest.mark.slow
def test_fewer_than_two_runs_is_an_error(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    one = collect_runs(_client(store), "judgekit", sweep="latest")[0][0].run_id
    assert main(["--tracking-uri", _uri(store), "--runs", one]) == 2
    assert "only 1 run to compare" in capsys.readouterr().err


@pytest.mark.slow
def test_an_experiment_without_runs_is_an_error(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _client(store).create_experiment("empty")
    assert main(["--tracking-uri", _uri(store), "--experiment", "empty"]) == 2
    assert "no FINISHED judgekit runs in experiment 'empty'" in capsys.readouterr().err


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "--baseline RUN_ID" in capsys.readouterr().out


def test_the_cli_reports_a_missing_store_on_one_line_without_creating_it(tmp_path: Path) -> None:
    proc = run_cli(["compare", "--tracking-uri", f"sqlite:///{tmp_path}/none.db"], tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith("judgekit: error: --tracking-uri: no MLflow store at ")
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert not (tmp_path / "none.db").exists()


# --- without MLflow: alignment and labels on hand-made runs ----------------------------------


def _run(run_id: str, ids: list[str], human: list[float], judged: list[float], **tags: str):  # noqa: ANN202
    results = pd.DataFrame(
        {
            "example_id": ids,
            "example_index": range(len(ids)),
            "group": ids,
            "score": "helpfulness",
            "human": human,
            "judge": judged,
        }
    )
    tags = {f"judgekit.{k}": v for k, v in tags.items()}
    run = ComparedRun(run_id, f"name-{run_id}", tags, {}, {}, 0, results=results)
    run.ranges = {"helpfulness": (0.0, 4.0)}
    return run


def test_runs_on_different_examples_are_reported_not_comparable() -> None:
    base = _run("a", ["1", "2", "3"], [0, 1, 2], [0, 1, 2], dataset="jsonl", prompt="v1")
    other = _run("b", ["7", "8"], [0, 1], [1, 1], dataset="demo", prompt="v2")
    label_runs([base, other])
    aligned, unmatched, problem = align(base, other, "helpfulness")
    assert aligned.empty and unmatched == 5
    assert problem == "no examples in common with the baseline (dataset jsonl vs demo)"
    paired = paired_table(
        [base, other], base, ["helpfulness"], ["pearson"], resamples=10, confidence=0.9
    )
    assert paired["verdict"].tolist() == ["not comparable"]
    assert math.isnan(paired["difference"][0]) and "no examples in common" in paired["note"][0]


def test_rows_are_aligned_by_example_id_and_unmatched_or_failed_rows_are_dropped() -> None:
    # Baseline has ids 1..5, the run 2..6 in another order with id 3 failed (NaN).
    # Common ids: 2, 3, 4, 5 (4 rows); scored by both: 2, 4, 5 -> n_common 3.
    # Dropped: id 3 (failed) + id 1 (baseline only) + id 6 (run only) = 3.
    base = _run("a", ["1", "2", "3", "4", "5"], [0, 1, 2, 3, 4], [0, 1, 2, 3, 4])
    other = _run("b", ["6", "5", "4", "3", "2"], [0, 4, 3, 2, 1], [0, 4, 2, math.nan, 1])
    aligned, unmatched, problem = align(base, other, "helpfulness")
    assert problem is None and unmatched == 2
    by_id = dict(zip(aligned["human"], aligned["judge_b"], strict=True))
    assert by_id[1] == 1 and by_id[3] == 2 and math.isnan(by_id[2])
    paired = paired_table(
        [base, other], base, ["helpfulness"], ["mae"], resamples=20, confidence=0.9
    )
    assert paired["n_common"][0] == 3 and paired["n_dropped"][0] == 3
    # mae: baseline 0 on ids 2, 4, 5; run |2-3| = 1 on id 4 only -> 1/3.
    assert paired["a"][0] == 0 and paired["b"][0] == pytest.approx(1 / 3)


def test_different_human_labels_for_the_same_ids_are_not_compared() -> None:
    base = _run("a", ["1", "2"], [0, 1], [0, 1])
    other = _run("b", ["1", "2"], [0, 3], [0, 1])
    _, _, problem = align(base, other, "helpfulness")
    assert (
        problem == "human labels differ on 1 of 2 shared example ids: the runs used different data"
    )


def test_labels_name_only_what_sets_runs_apart() -> None:
    runs = [
        _run("r1", [], [], [], judge="openai", judge_model="openai/gpt-4o", prompt="v1"),
        _run("r2", [], [], [], judge="openai", judge_model="openai/gpt-4o", prompt="v2"),
        _run("r3", [], [], [], judge="nemotron", judge_model="nvidia/nano", prompt="v2"),
    ]
    label_runs(runs)  # judge splits r3 off; model adds nothing; prompt splits r1 from r2
    assert [r.label for r in runs] == [
        "judge=openai,prompt=v1",
        "judge=openai,prompt=v2",
        "judge=nemotron,prompt=v2",
    ]
    twins = [_run("aaaaaaaa1", [], [], [], prompt="v1"), _run("bbbbbbbb2", [], [], [], prompt="v1")]
    twins[0].tags["judgekit.overrides"] = "prompt=v1 judge.temperature=0"
    twins[1].tags["judgekit.overrides"] = "prompt=v1 judge.temperature=0.7"
    label_runs(twins)
    assert [r.label for r in twins] == ["judge.temperature=0", "judge.temperature=0.7"]
    same = [_run("aaaaaaaa1", [], [], [], prompt="v1"), _run("bbbbbbbb2", [], [], [], prompt="v1")]
    label_runs(same)
    assert [r.label for r in same] == ["name-aaaaaaaa1", "name-bbbbbbbb2"]


def test_metric_names_are_sanitised_for_mlflow() -> None:
    assert metric_part("prompt=v2") == "prompt_v2"
    assert metric_part("model=openai/gpt-4o") == "model_openai_gpt-4o"
    assert metric_part("..") == "_"


def test_public_names_exist() -> None:
    from judgekit.compare import members as compare_members
    from judgekit.compare import report as compare_report
    from judgekit.compare import runs as compare
    from judgekit.compare import tables as compare_tables

    for module in (compare, compare_members, compare_report, compare_tables):
        assert all(hasattr(module, name) for name in module.__all__), module.__name__


def test_usage_counts_each_call_once_and_prices_only_known_models() -> None:
    from judgekit.compare.tables import metrics_table

    # Two examples × two scores: four rows, but two calls. Call 0: 100 + 10 tokens, 0.5 s;
    # call 1: 200 + 20 tokens, cached (0 s, left out of the latency). Tokens 330, latency 0.5.
    results = pd.DataFrame(
        {
            "example_index": [0, 0, 1, 1],
            "prompt_tokens": pd.array([100, 100, 200, 200], dtype="Int64"),
            "completion_tokens": pd.array([10, 10, 20, 20], dtype="Int64"),
            "latency_s": [0.5, 0.5, 0.0, 0.0],
            "cached": [False, False, True, True],
        }
    )
    metrics = {"failures/total": 1.0, "helpfulness/pearson": 0.5, "helpfulness/n_scored": 3.0}
    runs = [
        ComparedRun("a", "a", {"judgekit.judge_model": model}, metrics, {}, 0, results=results)
        for model in ("gpt-4o-mini", "openai/fake-judge")
    ]
    table = metrics_table(runs, runs[0], ["helpfulness"], ["pearson"])
    assert table["tokens"].tolist() == [330, 330] and table["latency_s"].tolist() == [0.5, 0.5]
    assert table["failures"].tolist() == [1, 1] and table["pearson"].tolist() == [0.5, 0.5]
    assert table["cost_usd"][0] > 0 and math.isnan(table["cost_usd"][1])
    assert math.isnan(table["pearson_ci_low"][0])  # not logged: NaN, never 0
