"""Group-level and system-level correlation, against hand arithmetic and scipy on hand-made means."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import judge_overrides, row_number
from scipy import stats as sps

from judgekit.config.schema import (
    Config,
    DatasetConfig,
    FieldsConfig,
    ScoreSchemaConfig,
    ScoreSpec,
    StatsConfig,
)
from judgekit.stats.agreement import agreement_report, metrics_from_report
from judgekit.stats.levels import group_correlation, system_correlation
from judgekit.stats.pointwise import JudgekitStatsWarning
from judgekit.stats.report import AgreementReport
from judgekit.testing.server import FakeJudge, json_scores

TOL = 1e-9
NAN = math.nan
# (group, system, human, judge): 4 groups × 4 systems on a 1..5 scale.
TABLE = [
    ("g1", "s1", 1, 1), ("g1", "s2", 2, 3), ("g1", "s3", 3, 2), ("g1", "s4", 4, 4),
    ("g2", "s1", 2, 1), ("g2", "s2", 2, 2), ("g2", "s3", 4, 3), ("g2", "s4", 5, NAN),
    ("g3", "s1", 3, 3), ("g3", "s2", 3, 1), ("g3", "s3", 3, 2), ("g3", "s4", 3, 4),
    ("g4", "s1", 1, 5), ("g4", "s2", 5, 1), ("g4", "s3", NAN, 3), ("g4", "s4", 3, 3),
]  # fmt: skip
GROUPS, SYSTEMS, HUMAN, JUDGE = (np.array(c) for c in zip(*TABLE, strict=True))
HUMAN, JUDGE = HUMAN.astype(float), JUDGE.astype(float)

# Within each group, over rows where both are finite:
#   g1: h 1 2 3 4, j 1 3 2 4. Deviations from 2.5: h -1.5 -.5 .5 1.5, j -1.5 .5 -.5 1.5;
#       sum dh*dj = 2.25 - .25 - .25 + 2.25 = 4, sum dh^2 = sum dj^2 = 5 -> pearson 0.8;
#       no ties -> spearman 0.8; 6 pairs, one discordant (rows 2, 3) -> kendall 4/6.
#   g2: the s4 row has no judge score: h 2 2 4, j 1 2 3. h mean 8/3, dh -2/3 -2/3 4/3; j mean 2,
#       dj -1 0 1; sum dh*dj = 2/3 + 4/3 = 2, sum dh^2 = 24/9, sum dj^2 = 2
#       -> pearson 2 / sqrt(48/9) = sqrt(3)/2. Ranks h 1.5 1.5 3, j 1 2 3: the same arithmetic
#       on ranks, sum = 1.5 / sqrt(1.5 * 2) -> spearman sqrt(3)/2. Kendall tau-b: pair (1, 2) is
#       tied in h, (1, 3) and (2, 3) concordant: (2 - 0) / sqrt((3 - 1)(3 - 0)) = 2/sqrt(6).
#   g3: human 3 3 3 3 is constant: no correlation, left out of the average and of n_groups.
#   g4: the s3 row has no human score: h 1 5 3, j 5 1 3 -> -1 for all three.
G_PEARSON = (0.8 + math.sqrt(3) / 2 - 1) / 3
G_SPEARMAN = (0.8 + math.sqrt(3) / 2 - 1) / 3
G_KENDALL = (4 / 6 + 2 / math.sqrt(6) - 1) / 3
# Per system, over rows where both are finite:
#   s1: h 1 2 3 1 -> 7/4,  j 1 1 3 5 -> 10/4
#   s2: h 2 2 3 5 -> 12/4, j 3 2 1 1 -> 7/4
#   s3: h 3 4 3   -> 10/3, j 2 3 2   -> 7/3   (g4's row has no human score)
#   s4: h 4 3 3   -> 10/3, j 4 4 3   -> 11/3  (g2's row has no judge score)
S_HUMAN = np.array([7 / 4, 12 / 4, 10 / 3, 10 / 3])
S_JUDGE = np.array([10 / 4, 7 / 4, 7 / 3, 11 / 3])


def test_group_correlation_by_hand() -> None:
    result = group_correlation(HUMAN, JUDGE, GROUPS)
    assert result.n_units == 3  # g3 (constant human) is counted out
    assert result.values["pearson"] == pytest.approx(G_PEARSON, abs=TOL)
    assert result.values["spearman"] == pytest.approx(G_SPEARMAN, abs=TOL)
    assert result.values["kendall"] == pytest.approx(G_KENDALL, abs=TOL)
    assert result.note is None and result.intervals == {}


def test_system_correlation_by_hand() -> None:
    result = system_correlation(HUMAN, JUDGE, SYSTEMS)
    assert result.n_units == 4
    assert result.values["pearson"] == pytest.approx(
        sps.pearsonr(S_HUMAN, S_JUDGE).statistic, abs=TOL
    )
    # Ranks of the means: human 1 2 3.5 3.5, judge 3 1 2 4.
    assert result.values["spearman"] == pytest.approx(
        sps.pearsonr([1, 2, 3.5, 3.5], [3, 1, 2, 4]).statistic, abs=TOL
    )
    # Pairs (s1,s2) d, (s1,s3) d, (s1,s4) c, (s2,s3) c, (s2,s4) c, (s3,s4) tied in human:
    # tau-b = (3 - 2) / sqrt((6 - 1) * 6)
    assert result.values["kendall"] == pytest.approx(1 / math.sqrt(30), abs=TOL)


def test_fewer_than_three_systems_is_nan_with_the_reason() -> None:
    two = np.isin(SYSTEMS, ["s1", "s2"])
    with pytest.warns(JudgekitStatsWarning, match="at least 3"):
        result = system_correlation(HUMAN[two], JUDGE[two], SYSTEMS[two], resamples=50)
    assert result.n_units == 2
    assert all(math.isnan(v) for v in result.values.values())
    assert "at least 3" in (result.note or "") and "2 system" in (result.note or "")


def test_no_group_with_variation_is_nan_with_the_reason() -> None:
    g3 = GROUPS == "g3"
    with pytest.warns(JudgekitStatsWarning, match="two distinct human values"):
        result = group_correlation(HUMAN[g3], JUDGE[g3], GROUPS[g3])
    assert result.n_units == 0 and math.isnan(result.values["kendall"])
    assert "two distinct human values" in (result.note or "")


def test_group_intervals_resample_the_groups_with_the_run_seed() -> None:
    result = group_correlation(HUMAN, JUDGE, GROUPS, resamples=200, confidence=0.9, seed=7)
    # Independently: the 3 groups that entered, drawn with replacement (3 per resample) by a
    # generator seeded 7, each resample's figure the mean of the drawn groups' correlations,
    # then the 5th and 95th percentiles.
    kept = np.array([[0.8, 0.8, 4 / 6], [math.sqrt(3) / 2] * 2 + [2 / math.sqrt(6)], [-1.0] * 3])
    picks = np.random.default_rng(7).integers(0, 3, size=(200, 3))
    draws = kept[picks].mean(axis=1)
    for k, name in enumerate(("pearson", "spearman", "kendall")):
        low, high = np.quantile(draws[:, k], [0.05, 0.95])
        assert result.intervals[name] == pytest.approx((low, high), abs=TOL)
    again = group_correlation(HUMAN, JUDGE, GROUPS, resamples=200, confidence=0.9, seed=7)
    assert again.intervals == result.intervals


def test_system_intervals_resample_the_systems() -> None:
    result = system_correlation(HUMAN, JUDGE, SYSTEMS, resamples=300, confidence=0.9, seed=3)
    picks = np.random.default_rng(3).integers(0, 4, size=(300, 4))
    draws = []
    for row in picks:  # a resample with fewer than 3 distinct systems is undefined
        if np.unique(row).size < 3:
            continue
        x, y = S_HUMAN[row], S_JUDGE[row]
        if np.unique(x).size < 2 or np.unique(y).size < 2:
            continue
        draws.append(sps.kendalltau(x, y).statistic)
    low, high = np.quantile(draws, [0.05, 0.95])
    assert result.intervals["kendall"] == pytest.approx((low, high), abs=TOL)


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "example_id": [str(i) for i in range(len(TABLE))],
            "example_index": range(len(TABLE)),
            "group": GROUPS,
            "system": SYSTEMS,
            "score": "overall",
            "human": HUMAN,
            "judge": JUDGE,
            "judge_expected": NAN,
            "judge_first": NAN,
            "judge_second": NAN,
            "failure_reason": [None if np.isfinite(j) else "parse_error" for j in JUDGE],
        }
    )


def _config(resamples: int = 0, **fields: str | None) -> Config:
    schema = ScoreSchemaConfig(scores=[ScoreSpec(name="overall", minimum=1, maximum=5)])
    dataset = DatasetConfig(source="inline", rows=[{}], fields=FieldsConfig(**fields))  # type: ignore[arg-type]
    return Config(score=schema, dataset=dataset, stats=StatsConfig(bootstrap_resamples=resamples))


def test_the_report_carries_both_levels_and_their_metric_names() -> None:
    report, aggregates = agreement_report(_frame(), _config(100, group="g", system="s"))
    score = report["overall"]
    assert score.group_kendall.value == pytest.approx(G_KENDALL, abs=TOL)
    assert score.n_groups == 3 and score.n_systems == 4
    assert score.group_pearson.ci_low <= score.group_pearson.value <= score.group_pearson.ci_high
    metrics = metrics_from_report(report, aggregates, {})
    for level in ("group", "system"):
        for stat in ("pearson", "spearman", "kendall"):
            for suffix in ("", "_ci_low", "_ci_high"):
                assert f"overall/{level}_{stat}{suffix}" in metrics
    assert metrics["overall/n_groups"] == 3 and metrics["overall/n_systems"] == 4
    back = AgreementReport.from_flat(json.loads(json.dumps(report.to_flat(), default=str)))
    assert back["overall"].n_groups == 3 and back["overall"].n_systems == 4
    assert back["overall"].system_spearman.value == pytest.approx(score.system_spearman.value)


def test_no_group_level_when_the_group_is_the_prompt_text() -> None:
    report, _ = agreement_report(_frame(), _config())
    score = report["overall"]
    assert score.n_groups is None and score.n_systems is None
    assert not any(name.startswith(("group_", "system_")) for name in score.estimates)
    assert "n_groups" not in score.to_flat()


def test_fewer_than_three_systems_reaches_the_report_with_its_reason() -> None:
    frame = _frame()
    frame = frame[frame["system"].isin(["s1", "s2"])]
    with pytest.warns(JudgekitStatsWarning, match="2 system"):
        report, _ = agreement_report(frame, _config(20, system="s"))
    score = report["overall"]
    assert score.n_systems == 2 and math.isnan(score.system_pearson.value)
    assert "at least 3" in score.notes["system_pearson"]
    assert "at least 3" in score.to_flat()["notes"]["system_kendall"]


def test_a_run_logs_the_levels_to_summary_and_mlflow(tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    import judgekit

    rows = [
        {"prompt": f"Context {g}", "response": f"Reply [row={i}]", "model": s, "overall": h}
        for i, (g, s, h, _) in enumerate(TABLE)
    ]
    judged = [None if math.isnan(j) else int(j) for j in JUDGE]  # null: a missing_key failure
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    score = ScoreSchemaConfig(
        name="overall", scores=[ScoreSpec(name="overall", minimum=1, maximum=5)]
    )
    dataset = DatasetConfig(
        name="levels",
        source="inline",
        rows=[{k: v for k, v in r.items() if not (k == "overall" and math.isnan(v))} for r in rows],
        fields=FieldsConfig(group="prompt", system="model", scores={"overall": "overall"}),
    )
    with FakeJudge(json_scores(lambda r: {"overall": judged[row_number(r)]})) as fake:
        result = judgekit.evaluate(
            "openai_compatible",
            "v1",
            score,
            dataset,
            overrides=[
                *judge_overrides(fake, key=False),
                "stats.bootstrap_resamples=100",
                f"tracking.uri={uri}",
            ],
            out_dir=tmp_path / "out",
            tracking=True,
        )
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())["agreement"]["overall"]
    assert summary["n_groups"] == 3 and summary["n_systems"] == 4
    assert summary["group_kendall"] == pytest.approx(G_KENDALL, abs=TOL)
    assert summary["system_pearson"] == pytest.approx(
        sps.pearsonr(S_HUMAN, S_JUDGE).statistic, abs=TOL
    )
    table = pd.read_parquet(tmp_path / "out" / "results.parquet")
    assert list(table["system"]) == list(SYSTEMS)
    client = MlflowClient(tracking_uri=uri)
    metrics = client.get_run(result.run_id).data.metrics
    assert metrics["overall/group_kendall"] == pytest.approx(G_KENDALL, abs=TOL)
    assert metrics["overall/n_groups"] == 3 and metrics["overall/n_systems"] == 4
    assert metrics["overall/system_spearman_ci_low"] == summary["system_spearman_ci_low"]
    assert metrics["overall/group_pearson_ci_high"] == summary["group_pearson_ci_high"]
