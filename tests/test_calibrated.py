"""Calibration wired into runs (``stats.calibrate``, ``stats.calibration_split``,
``stats.apply_calibration``) and the judge's probability calibration (``<score>/ece``,
``<score>/brier``): a fake judge over real HTTP, a real MLflow sqlite store, figures by hand."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from helpers import assert_one_line_error, judge_overrides, row_number, run_cli, write_jsonl

from judgekit.stats.calibration import CalibrationMap, calibration_split
from judgekit.testing.server import ChatRequest, FakeJudge, Reply, synthesise_logprobs

N = 20
GROUPS = [f"g{i // 2:02d}" for i in range(N)]  # two rows per prompt group
FIT, HELD = calibration_split(N, np.array(GROUPS), 0.3, 0)  # what runner.seed=0 deals
# Fit rows: humans 1, 3, 1, 3, ... and the judge says human + 1 (exactly monotone: the isotonic
# map is x = [2, 4] -> y = [1, 3], i.e. judge - 1 between 2 and 4, clipped outside).
# Held-out rows: humans 1, 2, 3, 1, ... and the judge says exactly the human score. Had the map
# seen these rows, it would pass through (2, 2) and (3, 3) and differ.
HUMAN = np.zeros(N, dtype=int)
HUMAN[FIT] = [(1, 3)[k % 2] for k in range(len(FIT))]
HUMAN[HELD] = [(1, 2, 3)[k % 3] for k in range(len(HELD))]
JUDGE = HUMAN.copy()
JUDGE[FIT] += 1


def _dataset(path: Path, human: np.ndarray = HUMAN) -> Path:
    rows = [
        {"prompt": f"Q {GROUPS[i]}", "response": f"A [row={i}]", "topic": GROUPS[i]}
        | {"helpfulness": int(human[i])}
        for i in range(N)
    ]
    return write_jsonl(path, rows)


def _answer(judge: np.ndarray) -> Any:
    def answer(request: ChatRequest) -> str:
        return json.dumps({"helpfulness": int(judge[row_number(request)])})

    return answer


def _config(judge: FakeJudge, data: Path, *extra: str) -> Any:
    import judgekit

    return judgekit.build_config(
        "openai_compatible",
        "v1",
        "helpfulness",
        str(data),
        overrides=[
            *judge_overrides(judge, key=False),
            "dataset.fields.group=topic",
            "stats.bootstrap_resamples=200",
            f"tracking.uri=sqlite:///{data.parent}/mlflow.db",
            *extra,
        ],
    )


def _metrics(workdir: Path, run_id: str) -> dict[str, float]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{workdir}/mlflow.db")
    return client.get_run(run_id).data.metrics


def _fitted_run(workdir: Path) -> Any:
    from judgekit.pipeline import run

    data = _dataset(workdir / "val.jsonl")
    with FakeJudge(_answer(JUDGE)) as judge:
        return run(_config(judge, data, "stats.calibrate=isotonic"), workdir / "fit")


def test_the_map_is_fitted_on_the_fit_rows_only_and_reported_on_the_others(
    workdir: Path,
) -> None:
    result = _fitted_run(workdir)
    out = workdir / "fit"
    assert 0 < len(FIT) < N and set(FIT).isdisjoint(HELD)
    rows = pd.read_parquet(out / "calibrated.parquet").sort_values("example_index")
    assert rows.loc[rows["side"] == "fit", "example_index"].to_list() == FIT.tolist()
    assert rows.loc[rows["side"] == "eval", "example_index"].to_list() == HELD.tolist()
    score = result.calibration.scores["helpfulness"]
    assert score.fit_rows == FIT.tolist() and score.eval_rows == HELD.tolist()
    # The map learnt from the fit rows alone: (2 -> 1), (4 -> 3).
    saved = json.loads((out / "calibration.json").read_text())["scores"]["helpfulness"]
    assert saved["input"] == "judge"
    fitted = CalibrationMap.from_json(json.dumps(saved["map"]))
    assert (fitted.x, fitted.y, fitted.n_fit) == ([2.0, 4.0], [1.0, 3.0], len(FIT))
    # Held-out rows: judge = human in 1..3; calibrated = clip(judge, 2, 4) - 1 -> 1, 1, 2.
    held = rows[rows["side"] == "eval"]
    expected = np.clip(held["human"], 2, 4) - 1
    assert held["calibrated"].to_list() == pytest.approx(expected.to_list())
    # By hand, on the held-out rows only: raw MAE 0 (judge = human); calibrated MAE = the rows
    # with human 2 or 3, each off by 1, over all held-out rows.
    off = int(np.isin(HUMAN[HELD], [2, 3]).sum())
    table = {r["statistic"]: r for r in score.table}
    assert table["mae"]["raw"] == 0.0
    assert table["mae"]["calibrated"] == pytest.approx(off / len(HELD))
    assert table["mae"]["difference"] == pytest.approx(off / len(HELD))
    assert table["mae"]["n_eval"] == len(HELD)
    metrics = _metrics(workdir, result.run_id)
    assert metrics["helpfulness/raw/mae"] == 0.0
    assert metrics["helpfulness/calibrated/mae"] == pytest.approx(off / len(HELD))
    assert metrics["helpfulness/calibrated/mae_change"] == pytest.approx(off / len(HELD))
    low, high = (metrics[f"helpfulness/calibrated/mae_change_ci_{e}"] for e in ("low", "high"))
    assert 0 < low <= off / len(HELD) <= high  # every resample makes the held-out rows worse
    assert metrics["helpfulness/calibrated/n_fit"] == len(FIT)
    assert metrics["helpfulness/calibrated/n_eval"] == len(HELD)
    # The run's own metrics still mean the raw judge on every row: off by 1 on the fit rows.
    assert metrics["helpfulness/mae"] == pytest.approx(len(FIT) / N)
    csv = pd.read_csv(out / "calibration.csv")
    assert list(csv.columns[:4]) == ["score", "statistic", "raw", "raw_ci_low"]
    assert {"difference", "ci_low", "ci_high", "p_value"} <= set(csv.columns)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["calibration"]["method"] == "isotonic"


@pytest.mark.parametrize("how", ["run id", "file", "directory"])
def test_apply_calibration_reuses_the_map_without_refitting(workdir: Path, how: str) -> None:
    from judgekit.pipeline import run

    first = _fitted_run(workdir)
    source = {
        "run id": first.run_id,
        "file": str(workdir / "fit" / "calibration.json"),
        "directory": str(workdir / "fit"),
    }[how]
    # New data where judge = human on every row: a refit would learn the identity.
    data = _dataset(workdir / "later.jsonl")
    with FakeJudge(_answer(HUMAN)) as judge:
        later = run(_config(judge, data, f"stats.apply_calibration={source}"), workdir / "later")
    out = workdir / "later"
    assert not (out / "calibration.json").exists()  # nothing fitted, nothing to save
    rows = pd.read_parquet(out / "calibrated.parquet").sort_values("example_index")
    assert set(rows["side"]) == {"applied"}  # every row reported calibrated
    assert rows["calibrated"].to_list() == pytest.approx((np.clip(HUMAN, 2, 4) - 1).tolist())
    score = later.calibration.scores["helpfulness"]
    assert (score.map.x, score.map.y, score.fitted) == ([2.0, 4.0], [1.0, 3.0], False)
    assert score.fit_rows == [] and score.eval_rows == list(range(N))
    metrics = _metrics(workdir, later.run_id)
    assert metrics["helpfulness/calibrated/n_eval"] == N
    assert metrics["helpfulness/calibrated/n_fit"] == len(FIT)  # the applied map's own fit


def _other_score_map(workdir: Path) -> Path:
    fitted = CalibrationMap("isotonic", 0.0, 4.0, 2, 0, x=[1.0, 2.0], y=[1.0, 2.0])
    entry = {"input": "judge", "map": json.loads(fitted.to_json())}
    path = workdir / "other.json"
    path.write_text(json.dumps({"format": 1, "scores": {"correctness": entry}}))
    return path


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("stats.calibrate=linear", "stats.calibrate: 'linear' is not valid"),
        ("stats.calibration_split=1.5", "stats.calibration_split: 1.5 is not valid"),
        ("stats.apply_calibration=missing.json", "stats.apply_calibration: 'missing.json'"),
        ("stats.apply_calibration=OTHER", "has no map for score 'helpfulness'"),
    ],
)
def test_bad_calibration_keys_are_one_line_errors_before_any_call(
    workdir: Path, override: str, needle: str
) -> None:
    data = _dataset(workdir / "val.jsonl")
    override = override.replace("OTHER", str(_other_score_map(workdir)))
    with FakeJudge(_answer(JUDGE)) as judge:
        proc = run_cli(
            [
                *judge_overrides(judge),
                "dataset=jsonl",
                f"dataset.path={data}",
                "score=helpfulness",
                f"tracking.uri=sqlite:///{workdir}/mlflow.db",
                override,
            ],
            workdir,
        )
        assert judge.counters.requests_total == 0
    assert_one_line_error(proc, needle)


def test_calibrate_and_apply_together_are_refused() -> None:
    from judgekit.config.schema import StatsConfig
    from judgekit.errors import ConfigError

    with pytest.raises(ConfigError, match="stats.apply_calibration: applying a fitted map"):
        StatsConfig(calibrate="isotonic", apply_calibration="run-dir")  # type: ignore[arg-type]


def test_ece_and_brier_of_the_judges_level_probabilities(workdir: Path) -> None:
    from judgekit.pipeline import run

    judged, human = [1, 2, 3, 2, 4], [1, 2, 2, 3, 4]

    def answer(request: ChatRequest) -> Reply:
        content = json.dumps({"helpfulness": judged[row_number(request)]})
        return Reply(content, logprobs=synthesise_logprobs(content))

    rows = [
        {"prompt": f"Q{i}", "response": f"A [row={i}]", "helpfulness": h}
        for i, h in enumerate(human)
    ]
    data = write_jsonl(workdir / "val.jsonl", rows)
    with FakeJudge(answer) as judge:
        result = run(_config(judge, data, "judge.logprobs=true"), workdir / "out")
    # synthesise_logprobs: digit d at 0.7, d+1 at 0.2, d-1 at 0.1; on 0..4 a 4 keeps 4 (0.7)
    # and 3 (0.1), renormalised to 0.875 / 0.125.
    # Brier per row, sum over levels of (p - onehot)^2:
    #   rows 0, 1 (right):  0.3^2 + 0.2^2 + 0.1^2 = 0.14
    #   row 2 (3 vs 2):     0.9^2 + 0.7^2 + 0.2^2 = 1.34
    #   row 3 (2 vs 3):     0.8^2 + 0.7^2 + 0.1^2 = 1.14
    #   row 4 (4 vs 4):     0.125^2 + 0.125^2     = 0.03125
    # mean = 2.79125 / 5 = 0.55825.
    # ECE: bin [0.7, 0.8) holds rows 0-3 (confidence 0.7, accuracy 2/4);
    # bin [0.8, 0.9) row 4 (confidence 0.875, accuracy 1): 4/5 * 0.2 + 1/5 * 0.125 = 0.185.
    metrics = _metrics(workdir, result.run_id)
    assert metrics["helpfulness/brier"] == pytest.approx(0.55825)
    assert metrics["helpfulness/ece"] == pytest.approx(0.185)
    bins = pd.read_csv(workdir / "out" / "reliability.csv")
    assert bins["count"].to_list() == [4, 1]
    assert bins["accuracy"].to_list() == pytest.approx([0.5, 1.0])
    assert (workdir / "out" / "reliability_helpfulness.png").exists()
    assert not (workdir / "out" / "calibration.json").exists()  # no map asked for


def test_an_ordinal_map_is_fitted_on_the_fit_rows_and_saved(workdir: Path) -> None:
    from judgekit.pipeline import run

    data = _dataset(workdir / "val.jsonl")
    with FakeJudge(_answer(JUDGE)) as judge:
        result = run(_config(judge, data, "stats.calibrate=ordinal"), workdir / "out")
    score = result.calibration.scores["helpfulness"]
    saved = json.loads((workdir / "out" / "calibration.json").read_text())["scores"]
    fitted = CalibrationMap.from_json(json.dumps(saved["helpfulness"]["map"]))
    # The fit rows' humans are 1 and 3 only: the ordinal model knows those two levels.
    assert (fitted.method, fitted.levels, fitted.n_fit) == ("ordinal", [1.0, 3.0], len(FIT))
    assert score.eval_rows == HELD.tolist()
    rows = pd.read_parquet(workdir / "out" / "calibrated.parquet")
    held = rows[rows["side"] == "eval"]
    assert held["calibrated"].between(1, 3).all()  # an expected level between the two
    assert held["calibrated"].to_list() == pytest.approx(fitted.apply(held["raw"]).tolist())


def test_a_draw_that_did_not_parse_is_left_out_of_the_probability_calibration(
    workdir: Path,
) -> None:
    """runner.samples=2 with logprobs: row 2's first draw does not parse, its second does; the
    row's expected score stands on draw 1, and draw 0's missing distribution is no distribution
    (left out), not a row of zeros. ECE and Brier are then those of the four other rows."""
    from judgekit.pipeline import run

    judged, human = [1, 2, 3, 2, 4], [1, 2, 2, 3, 4]

    def answer(request: ChatRequest) -> Reply:
        row, draw = row_number(request), int(request.params["seed"]) - 7
        content = (
            "I cannot say." if (row, draw) == (2, 0) else json.dumps({"helpfulness": judged[row]})
        )
        return Reply(content, logprobs=synthesise_logprobs(content))

    rows = [
        {"prompt": f"Q{i}", "response": f"A [row={i}]", "helpfulness": h}
        for i, h in enumerate(human)
    ]
    data = write_jsonl(workdir / "val.jsonl", rows)
    with FakeJudge(answer) as judge:
        extra = ("judge.logprobs=true", "runner.samples=2", "+judge.extra_params.seed=7")
        result = run(_config(judge, data, *extra), workdir / "out")
    # rows 0, 1, 3, 4 as in the test above: Brier (0.14 + 0.14 + 1.14 + 0.03125) / 4;
    # ECE: [0.7, 0.8) rows 0, 1, 3 (accuracy 2/3): 3/4 * |0.7 - 2/3|; row 4: 1/4 * 0.125
    metrics = _metrics(workdir, result.run_id)
    assert metrics["helpfulness/brier"] == pytest.approx((0.14 + 0.14 + 1.14 + 0.03125) / 4)
    assert metrics["helpfulness/ece"] == pytest.approx(0.75 * abs(0.7 - 2 / 3) + 0.25 * 0.125)
