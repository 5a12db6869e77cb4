"""The typed AgreementReport: attribute access, and the legacy flat view kept byte for byte."""

from __future__ import annotations

import json
import math
import pickle
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from helpers import judge_overrides

from judgekit.config.schema import (
    Config,
    Message,
    PromptConfig,
    RubricLabel,
    ScoreSchemaConfig,
    ScoreSpec,
    StatsConfig,
)
from judgekit.stats.agreement import agreement_report, metrics_from_report
from judgekit.stats.bootstrap import bootstrap_ci
from judgekit.stats.pairwise import human_ceiling, pairwise_agreement, preference_from_pointwise
from judgekit.stats.pointwise import agreement
from judgekit.stats.report import AgreementReport, BootstrapInfo, Estimate, ScoreAgreement
from judgekit.testing.server import FakeJudge

NAN = math.nan
POINTWISE = [ScoreSpec(name=n, minimum=0, maximum=4) for n in ("helpfulness", "correctness")]
UNLABELLED = ScoreSpec(name="verbosity", minimum=0, maximum=4)
PREFERENCE = ScoreSpec(
    name="preference",
    kind="preference",
    labels={"A": RubricLabel(0.0), "B": RubricLabel(1.0), "tie": RubricLabel(0.5)},
)


def _row(i: int, score: str, human: float, judge: float, **extra: Any) -> dict[str, Any]:
    columns = {"judge_expected": NAN, "judge_first": NAN, "judge_second": NAN}
    return {
        "example_id": str(i),
        "example_index": i,
        "group": f"q{i // 2}",  # rows 2k and 2k+1 share a prompt: pairs, and clusters
        "score": score,
        "human": human,
        "judge": judge,
        "failure_reason": "unparseable" if math.isnan(judge) else None,
        **columns,
        **extra,
    }


def pointwise_frame(n: int = 24) -> pd.DataFrame:
    """helpfulness with logprob-expected scores, correctness without, verbosity unlabelled."""
    rows = []
    for i in range(n):
        human = float(i % 5)
        judge = NAN if i == 7 else min(human + (i % 3 == 0), 4.0)
        rows += [
            _row(i, "helpfulness", human, judge, judge_expected=judge - 0.3 * (i % 2)),
            _row(i, "correctness", (human + 1) % 5, (judge + 2) % 5),
            _row(i, "verbosity", NAN, float(i * 3 % 5)),
        ]
    return pd.DataFrame(rows)


def pairwise_frame(n: int = 30, *, swap: bool = True) -> pd.DataFrame:
    """Preference verdicts; with swap, both orders (inconsistent ones combine to a tie)."""
    rows = []
    for i in range(n):
        human = (0.0, 1.0, 0.5)[i % 3]
        first, second = (human if i % 4 else 0.0), (human if i % 5 else 1.0)
        judge = first if first == second else 0.5
        orders = {"judge_first": first, "judge_second": second} if swap else {}
        rows.append(_row(i, "preference", human, judge, **orders))
    return pd.DataFrame(rows)


ANNOTATORS = {"preference": np.random.default_rng(1).choice([0.0, 0.5, 1.0], size=(30, 3))}


PAIRWISE_PROMPT = PromptConfig(
    messages=[Message(content="{{item.response_a}} {{item.response_b}}")]
)


def config(scores: list[ScoreSpec], resamples: int = 200) -> Config:
    schema = ScoreSchemaConfig(scores=scores)
    stats = StatsConfig(bootstrap_resamples=resamples)
    if any(spec.kind == "preference" for spec in scores):  # a preference needs a pairwise prompt
        return Config(prompt=PAIRWISE_PROMPT, score=schema, stats=stats)
    return Config(score=schema, stats=stats)


CASES = {
    "pointwise": (pointwise_frame(), config([*POINTWISE, UNLABELLED]), None),
    "pointwise, no bootstrap": (pointwise_frame(), config(POINTWISE, 0), None),
    "pointwise, one scored row": (pointwise_frame(1), config(POINTWISE), None),
    "pairwise, swap and ceiling": (pairwise_frame(), config([PREFERENCE]), ANNOTATORS),
    "pairwise, one order": (pairwise_frame(swap=False), config([PREFERENCE]), None),
    "pairwise, no bootstrap": (pairwise_frame(), config([PREFERENCE], 0), ANNOTATORS),
}


# --- the legacy dicts, built as judgekit built them before the typed report ---------------------


def legacy_report(frame: pd.DataFrame, cfg: Config, annotators: Any) -> dict[str, dict]:
    """The dict of dicts ``agreement_report`` returned before: meaning packed in key names."""
    boot = {
        "resamples": cfg.stats.bootstrap_resamples,
        "confidence": cfg.stats.confidence,
        "seed": cfg.runner.seed,
    }
    report: dict[str, dict] = {}
    for spec in cfg.score.scores:
        part = frame[frame["score"] == spec.name].sort_values("example_index")
        human, judge = (part[c].to_numpy(dtype=float) for c in ("human", "judge"))
        if np.isnan(human).all():
            continue
        codes, uniques = pd.factorize(part["group"])
        clusters = codes if len(uniques) < len(codes) else None
        if spec.kind == "preference":
            swapped = part["judge_first"].notna().any()
            orders = {"first": part["judge_first"], "second": part["judge_second"]}
            orders = {k: v.to_numpy(dtype=float) for k, v in orders.items()} if swapped else {}
            stats = pairwise_agreement(human, judge, **orders, clusters=clusters, **boot)
            if annotators:
                stats |= human_ceiling(annotators[spec.name], clusters=clusters, **boot)
            report[spec.name] = stats
            continue
        report[spec.name] = legacy_pointwise(human, judge, clusters, boot)
        expected = part["judge_expected"].to_numpy(dtype=float)
        if not np.isnan(expected).all():
            report[f"{spec.name}_expected"] = legacy_pointwise(human, expected, clusters, boot)
        pairs, h = preference_from_pointwise(human, codes)
        _, j = preference_from_pointwise(judge, codes)
        if len(h) >= 2:
            repeated = len(np.unique(pairs)) < len(pairs)
            stats = pairwise_agreement(h, j, clusters=pairs if repeated else None, **boot)
            report[f"{spec.name}_preference"] = stats
    return report


def legacy_pointwise(human: np.ndarray, judge: np.ndarray, clusters: Any, boot: dict) -> dict:
    stats: dict[str, Any] = agreement(human, judge, minimum=0, maximum=4)
    human_var = stats["human_std"] ** 2
    stats["mean_shift"] = stats["judge_mean"] - stats["human_mean"]
    stats["variance_ratio"] = stats["judge_std"] ** 2 / human_var if human_var > 0 else NAN
    if boot["resamples"] == 0 or stats["n_scored"] < 2:
        return stats
    result = bootstrap_ci(human, judge, minimum=0, maximum=4, clusters=clusters, **boot)
    for name, (low, high) in result.intervals.items():
        stats[f"{name}_ci_low"], stats[f"{name}_ci_high"] = low, high
    stats["bootstrap_scheme"] = f"{result.scheme} ({result.resamples} resamples)"
    return stats


def _build(case: str) -> tuple[AgreementReport, dict[str, dict]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # undefined statistics warn; not the subject here
        report, _ = agreement_report(*CASES[case])
        return report, legacy_report(*CASES[case])


def _json(value: Any) -> str:
    """summary.json's encoding (NaN stays NaN; a report must already be plain dicts)."""
    return json.dumps(value, indent=2)


# --- the legacy view: the same dicts, JSON and metric names ----------------------------------


@pytest.mark.parametrize("case", list(CASES))
def test_to_flat_is_the_legacy_dict_key_for_key_in_order(case: str) -> None:
    report, legacy = _build(case)
    assert _json(report.to_flat()) == _json(legacy)  # same keys, order, values, types


@pytest.mark.parametrize("case", list(CASES))
def test_metric_names_and_values_are_the_legacy_ones(case: str) -> None:
    report, legacy = _build(case)
    expected = {
        f"{key}/{name}": float(value)
        for key, stats in legacy.items()
        for name, value in stats.items()
        if not isinstance(value, str)
    }
    metrics = report.to_metrics()
    assert list(metrics) == list(expected)
    assert _json(metrics) == _json(expected)


def test_metrics_keep_every_family_of_name() -> None:
    report, _ = _build("pointwise")
    metrics = metrics_from_report(report, {"verbosity": {"mean": 2.0}}, {"unparseable": 3})
    assert metrics["helpfulness/pearson"] == report["helpfulness"].pearson.value
    assert metrics["helpfulness/pearson_ci_low"] == report["helpfulness"].pearson.ci_low
    assert metrics["helpfulness/mean_shift"] == report["helpfulness"].mean_shift.value
    assert metrics["helpfulness_expected/qwk"] == report["helpfulness"].expected.qwk.value
    assert "helpfulness_preference/accuracy_ci_high" in metrics
    assert "helpfulness/bootstrap_scheme" not in metrics  # a string: never a metric
    assert (metrics["verbosity/mean"], metrics["failures/unparseable"]) == (2.0, 3.0)
    pairwise, _ = _build("pairwise, swap and ceiling")
    assert "preference/human_kappa_ci_high" in pairwise.to_metrics()
    assert "preference/n_inconsistent" in pairwise.to_metrics()


@pytest.mark.parametrize("case", list(CASES))
def test_legacy_access_reads_the_old_values(case: str) -> None:
    report, legacy = _build(case)
    assert list(report) == list(legacy)  # <score>, <score>_expected, <score>_preference, ...
    for key, stats in legacy.items():
        assert key in report
        assert list(report[key]) == list(stats)
        assert _json(dict(report[key].items())) == _json(stats)
    assert "nonexistent" not in report and "pearson_ci_low" not in report


@pytest.mark.parametrize("case", list(CASES))
def test_from_flat_reads_summary_json_back(case: str) -> None:
    report, _ = _build(case)
    text = _json(report.to_flat())
    back = AgreementReport.from_flat(json.loads(text))
    assert _json(back.to_flat()) == text
    assert list(back.scores) == list(report.scores)
    for name, score in report.scores.items():
        assert back.scores[name].kind == score.kind
        assert (back.scores[name].expected is None) == (score.expected is None)
        assert (back.scores[name].preference is None) == (score.preference is None)


# --- the typed view ------------------------------------------------------------------------


def test_typed_access_gives_estimates_and_counts() -> None:
    report, legacy = _build("pointwise")
    help_ = report["helpfulness"]
    assert help_.kind == "pointwise"
    assert help_.pearson == Estimate(
        legacy["helpfulness"]["pearson"],
        legacy["helpfulness"]["pearson_ci_low"],
        legacy["helpfulness"]["pearson_ci_high"],
    )
    assert help_.pearson.ci_low < help_.pearson.value < help_.pearson.ci_high
    # 24 rows, row 7 failed: 23 scored, coverage 23/24.
    assert (help_.n_total, help_.n_failed, help_.n_scored) == (24, 1, 23)
    assert help_.coverage == pytest.approx(23 / 24)
    assert help_.bootstrap == BootstrapInfo("clusters", 200)  # rows 2k, 2k+1 share a prompt
    assert math.isnan(help_.mean_shift.ci_low)  # a point-only diagnostic
    assert help_.estimates["qwk"] is help_.qwk
    assert report["helpfulness_expected"] is help_.expected
    assert help_.expected is not None and help_.expected.kind == "pointwise"
    assert help_.preference is not None and help_.preference.kind == "pairwise"
    assert help_.preference.accuracy.value == legacy["helpfulness_preference"]["accuracy"]
    assert report["correctness"].expected is None  # no logprobs
    assert list(report.scores) == ["helpfulness", "correctness"]  # variants nested, not listed
    assert "verbosity" not in report  # no human labels: aggregates only


def test_pairwise_typed_access_with_swap_counts_and_ceiling() -> None:
    report, legacy = _build("pairwise, swap and ceiling")
    pref, flat = report["preference"], legacy["preference"]
    assert pref.kind == "pairwise"
    assert pref.accuracy.ci_high == flat["accuracy_ci_high"]
    assert (pref.n_both_orders, pref.n_inconsistent) == (flat["n_both_orders"], 8)
    assert pref.ceiling is not None and pref.ceiling.n_annotators == 3
    assert pref.ceiling.human_kappa.value == flat["human_kappa"]
    assert pref.bootstrap == BootstrapInfo("clusters", 200)
    assert "bootstrap_scheme" not in pref  # pairwise scores never wrote it
    one_order, _ = _build("pairwise, one order")
    assert one_order["preference"].n_both_orders is None
    assert one_order["preference"].ceiling is None


def test_no_intervals_without_bootstrap_or_with_one_scored_row() -> None:
    for case in ("pointwise, no bootstrap", "pointwise, one scored row"):
        report, _ = _build(case)
        score = report["helpfulness"]
        assert score.bootstrap is None
        assert math.isnan(score.pearson.ci_low) and "pearson_ci_low" not in score


def test_point_reads_counts_and_values_by_name() -> None:
    report, _ = _build("pairwise, swap and ceiling")
    pref = report["preference"]
    assert pref.point("n_scored") == 30 and pref.point("n_rows") == 30
    assert pref.point("human_kappa") == pref.ceiling.human_kappa.value  # type: ignore[union-attr]
    assert pref.point("pearson") is None


def test_an_unknown_statistic_names_the_ones_there_are() -> None:
    report, _ = _build("pairwise, one order")
    with pytest.raises(AttributeError, match=r"no statistic 'pearson'; it has: accuracy, "):
        report["preference"].pearson  # noqa: B018


def test_an_empty_report_equals_an_empty_dict() -> None:
    assert AgreementReport() == {}
    assert not AgreementReport() and AgreementReport().to_metrics() == {}


def test_reports_survive_pickle_and_compare_by_their_flat_view() -> None:
    report, legacy = _build("pointwise")
    assert pickle.loads(pickle.dumps(report)) == report
    assert report == legacy  # Mapping equality: no NaN in this case
    assert isinstance(report["helpfulness"], ScoreAgreement)


def test_bootstrap_info_reads_back_the_legacy_string() -> None:
    info = BootstrapInfo.parse("rows (1000 resamples)")
    assert info == BootstrapInfo("rows", 1000) and str(info) == "rows (1000 resamples)"
    with pytest.raises(ValueError, match="bootstrap_scheme: 'rows' is not"):
        BootstrapInfo.parse("rows")


def test_a_run_writes_the_flat_view_to_summary_json_and_loads_it_back(
    workdir: Path, fake_judge: FakeJudge
) -> None:
    import judgekit
    from judgekit.jobs import load_result

    rows = [
        {"prompt": f"Question {i}?", "response": f"Answer {i}.", "helpfulness": i % 5}
        for i in range(8)
    ]
    result = judgekit.evaluate(
        "openai_compatible",
        "v1",
        "helpfulness",
        rows,
        overrides=judge_overrides(fake_judge, key=False),
        out_dir=workdir / "out",
    )
    assert isinstance(result.agreement, AgreementReport)
    summary = json.loads((workdir / "out" / "summary.json").read_text())
    assert _json(summary["agreement"]) == _json(result.agreement.to_flat())
    score = result.agreement["helpfulness"]
    assert summary["agreement"]["helpfulness"]["n_scored"] == score.n_scored == 8
    loaded = load_result(workdir / "out", result.config).agreement
    assert isinstance(loaded, AgreementReport)
    assert _json(loaded.to_flat()) == _json(result.agreement.to_flat())
