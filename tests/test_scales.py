"""Any score scale end to end: real runs through the fake judge on 1–10, 0–100, 0.0–1.0,
pass/fail labels, -2..2 and averaged human labels, down to the statistics, summary and figures."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from helpers import judge_overrides, row_number

from judgekit.config.schema import FieldsConfig, RubricLabel, ScoreSchemaConfig, ScoreSpec
from judgekit.errors import ConfigError
from judgekit.plots import confusion_frame, confusion_heatmap, score_histogram
from judgekit.results import RunResult
from judgekit.stats.pointwise import JudgekitStatsWarning
from judgekit.testing.server import FakeJudge, json_scores

TOL = 1e-9


def _run(tmp_path: Path, spec: ScoreSpec, human: list[Any], judge: list[Any]) -> RunResult:
    """Judge one row per human value; the fake judge answers ``judge[row]`` for the score."""
    import judgekit

    rows = [
        {"prompt": f"Question {i}?", "response": f"Answer [row={i}]", "label": h}
        for i, h in enumerate(human)
    ]
    schema = ScoreSchemaConfig(name=spec.name, scores=[spec])
    with FakeJudge(json_scores(lambda r: {spec.name: judge[row_number(r)]})) as fake:
        return judgekit.evaluate(
            "openai_compatible",
            "v1",
            schema,
            rows,
            fields=FieldsConfig(scores={spec.name: "label"}),
            overrides=[*judge_overrides(fake, key=False), "stats.bootstrap_resamples=40"],
            out_dir=tmp_path / "out",
        )


def _qwk(human: np.ndarray, judge: np.ndarray, low: int, high: int) -> float:
    """Quadratic weighted kappa over every level low..high, written out: 1 - sum wO / sum wE."""
    k = high - low + 1
    observed = np.zeros((k, k))
    rounded = (np.floor(x + 0.5).astype(int) for x in (human, judge))
    for h, j in zip(*rounded, strict=True):
        observed[h - low, j - low] += 1
    expected = np.outer(observed.sum(1), observed.sum(0)) / observed.sum()
    i, j = np.indices((k, k))
    return 1 - ((i - j) ** 2 * observed).sum() / ((i - j) ** 2 * expected).sum()


def _summary(result: RunResult) -> dict[str, Any]:
    return json.loads(Path(result.outputs["summary"]).read_text())


def test_one_to_ten_uses_the_declared_scale(tmp_path: Path) -> None:
    spec = ScoreSpec(name="quality", minimum=1, maximum=10)
    human = [1, 3, 5, 7, 9, 10, 2, 4]
    judge = [2, 3, 6, 7, 8, 10, 4, 4]
    result = _run(tmp_path, spec, human, judge)
    score = result.agreement["quality"]
    h, j = np.array(human, float), np.array(judge, float)
    assert score.qwk.value == pytest.approx(_qwk(h, j, 1, 10), abs=TOL)
    # |j - h| = 1 0 1 0 1 0 2 0: exact 4/8, within one level 7/8
    assert score.exact_agreement.value == pytest.approx(4 / 8, abs=TOL)
    assert score.within1_agreement.value == pytest.approx(7 / 8, abs=TOL)
    matrix = pd.read_csv(tmp_path / "out" / "confusion_quality.csv", index_col=0)
    assert matrix.shape == (10, 10) and list(matrix.columns) == [str(v) for v in range(1, 11)]
    assert matrix.to_numpy().sum() == 8


def test_zero_to_hundred_bins_the_confusion_matrix(tmp_path: Path) -> None:
    spec = ScoreSpec(name="quality", minimum=0, maximum=100)
    human = [0, 12, 25, 37, 50, 63, 75, 88, 100, 95]
    judge = [5, 10, 30, 40, 45, 70, 80, 85, 99, 100]
    result = _run(tmp_path, spec, human, judge)
    score = result.agreement["quality"]
    h, j = np.array(human, float), np.array(judge, float)
    assert score.qwk.value == pytest.approx(_qwk(h, j, 0, 100), abs=TOL)
    # |j - h| = 5 2 5 3 5 7 5 3 1 5: only row 8 is within one point, none exact
    assert score.within1_agreement.value == pytest.approx(1 / 10, abs=TOL)
    assert score.exact_agreement.value == 0
    matrix = pd.read_csv(tmp_path / "out" / "confusion_quality.csv", index_col=0)
    assert matrix.shape == (10, 10), "0..100 is shown in 10 bins, not 101 levels"
    assert matrix.columns[0] == "0–9" and matrix.columns[-1] == "90–100"
    assert matrix.to_numpy().sum() == 10
    # human 12 and judge 10 both fall in the bin 10–19
    assert matrix.loc["10–19", "10–19"] == 1
    # human 95 -> 90–100, judge 100 -> 90–100 (the last bin holds the maximum)
    assert matrix.loc["90–100", "90–100"] == 2
    frame = result.results
    title = confusion_heatmap(frame, spec).axes[0].get_title()
    assert "10 bins" in title
    hist = score_histogram(frame, spec)
    assert len(hist.axes[0].patches) == 20  # 10 bins × (human, judge)


def test_unit_interval_is_continuous_and_within1_is_absent_with_a_reason(
    tmp_path: Path,
) -> None:
    spec = ScoreSpec(name="prob", minimum=0.0, maximum=1.0, integer=False)
    human = [0.05, 0.2, 0.35, 0.5, 0.65, 0.8, 0.95, 0.1]
    judge = [0.1, 0.25, 0.3, 0.55, 0.6, 0.9, 0.99, 0.0]
    with warnings.catch_warnings():
        warnings.simplefilter("error", JudgekitStatsWarning)  # nothing here is undefined
        result = _run(tmp_path, spec, human, judge)
    score = result.agreement["prob"]
    assert "within1_agreement" not in score.estimates
    assert "within1_agreement" not in score.to_flat()
    assert "prob/within1_agreement" not in result.agreement.to_metrics()
    assert "integer" in score.notes["within1_agreement"]
    assert "integer" in score.notes["qwk"]
    assert math.isnan(score.qwk.value)
    h, j = np.array(human), np.array(judge)
    assert score.mae.value == pytest.approx(np.abs(h - j).mean(), abs=TOL)
    summary = _summary(result)["agreement"]["prob"]
    assert "within1_agreement" not in summary
    assert "integer" in summary["notes"]["within1_agreement"]
    matrix = pd.read_csv(tmp_path / "out" / "confusion_prob.csv", index_col=0)
    assert matrix.shape == (10, 10) and matrix.to_numpy().sum() == 8
    # row 0: human 0.05 -> bin 0-0.1, judge 0.1 -> bin 0.1-0.2 (a bin holds its lower edge);
    # row 7: human 0.1 -> bin 1, judge 0.0 -> bin 0; row 6: 0.95 and 0.99 -> the last bin
    assert matrix.iloc[0, 1] == 1 and matrix.iloc[1, 0] == 1 and matrix.iloc[-1, -1] == 1
    assert "0.9–1" == matrix.columns[-1]
    assert spec.is_integer_scale is False
    assert "bins" in confusion_heatmap(result.results, spec).axes[0].get_title()


def test_integer_false_on_whole_bounds_only_and_integer_true_needs_whole_bounds() -> None:
    assert ScoreSpec(name="s", minimum=0, maximum=1).is_integer_scale
    assert not ScoreSpec(name="s", minimum=0.5, maximum=4.5).is_integer_scale
    with pytest.raises(ConfigError, match="integer"):
        ScoreSpec(name="s", minimum=0.5, maximum=4.5, integer=True)


def test_pass_fail_rubric_labels(tmp_path: Path) -> None:
    spec = ScoreSpec(
        name="verdict",
        labels={"fail": RubricLabel(value=0), "pass": RubricLabel(value=1)},
    )
    human = ["pass", "pass", "fail", "fail", "pass", "fail"]
    judge = ["pass", "fail", "fail", "pass", "pass", "fail"]
    result = _run(tmp_path, spec, human, judge)
    score = result.agreement["verdict"]
    h = np.array([1, 1, 0, 0, 1, 0], float)
    j = np.array([1, 0, 0, 1, 1, 0], float)
    # 4 of 6 agree; on two levels within one level is always true
    assert score.exact_agreement.value == pytest.approx(4 / 6, abs=TOL)
    assert score.within1_agreement.value == 1
    # 2 levels: weights 0/1, so qwk is Cohen's kappa: p_o = 4/6, p_e = .5*.5 + .5*.5 = .5
    assert score.qwk.value == pytest.approx((4 / 6 - 0.5) / 0.5, abs=TOL)
    assert score.qwk.value == pytest.approx(_qwk(h, j, 0, 1), abs=TOL)
    matrix = pd.read_csv(tmp_path / "out" / "confusion_verdict.csv", index_col=0)
    assert list(matrix.columns) == ["fail", "pass"] and list(matrix.index) == ["fail", "pass"]
    assert matrix.loc["pass", "pass"] == 2 and matrix.loc["fail", "pass"] == 1


def test_negative_range(tmp_path: Path) -> None:
    spec = ScoreSpec(name="stance", minimum=-2, maximum=2)
    human = [-2, -1, 0, 1, 2, -2, 0, 1]
    judge = [-2, 0, 0, 2, 1, -1, -1, 1]
    result = _run(tmp_path, spec, human, judge)
    score = result.agreement["stance"]
    h, j = np.array(human, float), np.array(judge, float)
    assert result.failures == {}
    assert score.qwk.value == pytest.approx(_qwk(h, j, -2, 2), abs=TOL)
    # |j - h| = 0 1 0 1 1 1 1 0
    assert score.exact_agreement.value == pytest.approx(3 / 8, abs=TOL)
    assert score.within1_agreement.value == 1
    matrix = pd.read_csv(tmp_path / "out" / "confusion_stance.csv", index_col=0)
    assert list(matrix.columns) == ["-2", "-1", "0", "1", "2"]
    assert matrix.loc[-2, "-2"] == 1 and matrix.to_numpy().sum() == 8


def test_mean_of_annotators_on_an_integer_scale_rounds_half_up(tmp_path: Path) -> None:
    spec = ScoreSpec(name="natural", minimum=1, maximum=3)
    human = [1.0, 2.333333, 2.5, 3.0, 1.666667, 1.5, 2.0, 2.666667]
    judge = [1, 2, 3, 3, 2, 1, 2, 3]
    result = _run(tmp_path, spec, human, judge)
    score = result.agreement["natural"]
    h, j = np.array(human), np.array(judge, float)
    # rounded half up: 1 2 3 3 2 2 2 3 (2.5 -> 3 and 1.5 -> 2, never half-to-even's 2.5 -> 2)
    assert score.exact_agreement.value == pytest.approx(7 / 8, abs=TOL)
    assert score.qwk.value == pytest.approx(_qwk(h, j, 1, 3), abs=TOL)
    assert score.mae.value == pytest.approx(np.abs(h - j).mean(), abs=TOL)
    matrix = confusion_frame(result.results, spec)
    assert matrix.loc["3", "3"] == 3  # rows 2 (2.5), 3 and 7 (2.67)
    assert matrix.loc["2", "1"] == 1  # row 5: 1.5 rounds half up to 2, judge 1


def test_paired_comparison_on_a_continuous_scale_leaves_qwk_and_within1_undefined() -> None:
    from judgekit.stats.bootstrap import paired_comparison

    human = np.array([0.1, 0.4, 0.5, 0.8, 0.9, 0.2])
    a, b = human + 0.05, np.array([0.2, 0.3, 0.6, 0.7, 1.0, 0.1])
    rows = paired_comparison(
        human, a, b, minimum=0, maximum=1, integer=False, resamples=30, seed=1,
        statistics=["within1_agreement", "qwk", "mae"],
    )  # fmt: skip
    verdicts = {r["statistic"]: r["verdict"] for r in rows}
    assert verdicts["within1_agreement"] == "undefined" and verdicts["qwk"] == "undefined"
    assert verdicts["mae"] != "undefined"
    # the same data on 0..1 read as an integer scale (two levels) has both defined
    inferred = paired_comparison(human, a, b, minimum=0, maximum=1, resamples=30, seed=1)
    assert {r["statistic"]: r for r in inferred}["within1_agreement"]["verdict"] != "undefined"


@pytest.mark.parametrize(
    ("bounds", "integer"),
    [
        ("minimum: 1\n    maximum: 5", True),
        ("minimum: -2\n    maximum: 2", True),
        ("minimum: 0\n    maximum: 100", True),
        ("minimum: 0.0\n    maximum: 1.0", False),  # written as floats: a continuous scale
        ("minimum: 0\n    maximum: 1.0", False),
        ("minimum: 0.0\n    maximum: 1.0\n    integer: true", True),  # said otherwise
    ],
)
def test_how_the_bounds_are_written_decides_the_scale(
    tmp_path: Path, bounds: str, integer: bool
) -> None:
    from judgekit.config.compose import compose_config, to_config

    (tmp_path / "score").mkdir()
    (tmp_path / "score" / "mine.yaml").write_text(
        f"name: mine\nscores:\n  - name: s\n    {bounds}\n"
    )
    cfg = to_config(compose_config(["score=mine"], config_dirs=[tmp_path]))
    (spec,) = cfg.score.scores
    assert spec.integer is integer and spec.is_integer_scale is integer
    # The same from the command line: 10 is whole, 10.0 is not.
    whole = to_config(
        compose_config(["score=mine", "score.scores.0.maximum=10"], config_dirs=[tmp_path])
    )
    assert whole.score.scores[0].maximum == 10


def test_a_bound_that_is_not_a_number_is_a_config_error() -> None:
    from judgekit.config.compose import compose_config, to_config

    with pytest.raises(ConfigError, match=r"maximum 'high' is not valid; use a number"):
        to_config(compose_config(["score=helpfulness", "score.scores.0.maximum=high"]))
