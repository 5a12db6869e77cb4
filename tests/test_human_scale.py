"""The wiring of the issue 18 building blocks on fixed inputs: the PPI estimates of a results
table (:mod:`judgekit.stats.estimates`) against direct ``ppi_py`` and scipy calls, the hidden
labels of ``judgekit estimate --labels``, the alt-test and human ceiling of a score
(:mod:`judgekit.stats.raters`) and the annotators' table a run writes."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import ppi_py
import pytest
from scipy import stats as sps

from judgekit.humanscale.estimate import hidden_rows
from judgekit.records import Example
from judgekit.stats.alttest import alt_test
from judgekit.stats.ceiling import human_ceiling_pointwise
from judgekit.stats.estimates import estimate_score, estimates_from_table
from judgekit.stats.human_scale import annotator_arrays, annotators_table
from judgekit.stats.ppi import labels_needed
from judgekit.stats.raters import rater_figures

TOL = 1e-12


def _data(seed: int = 0, n: int = 30, big_n: int = 90) -> tuple[np.ndarray, np.ndarray]:
    """Human scores 0..4 on the first n rows (NaN after); the judge is lenient by about one."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 5, n + big_n).astype(float)
    judge = np.clip(truth + rng.integers(0, 2, n + big_n), 0, 4)
    human = truth.copy()
    human[n:] = math.nan
    return human, judge


def _t(x: np.ndarray) -> tuple[float, float, float]:
    low, high = sps.t.interval(0.95, x.size - 1, loc=x.mean(), scale=sps.sem(x))
    return float(x.mean()), float(low), float(high)


def test_pointwise_estimates_equal_ppi_py_and_scipy() -> None:
    human, judge = _data()
    est = estimate_score("helpfulness", "pointwise", human, judge)
    y, yhat, unl = human[:30], judge[:30], judge[30:]
    low, high = ppi_py.ppi_mean_ci(y, yhat, unl, alpha=0.05)  # lam=None: tuned by the library
    value = ppi_py.ppi_mean_pointestimate(y, yhat, unl)
    assert (est.ppi.value, est.ppi.ci_low, est.ppi.ci_high) == pytest.approx(
        (value[0], low[0], high[0]), abs=TOL
    )
    assert (est.ppi.n_labelled, est.ppi.n_unlabelled) == (30, 90)
    assert (est.human_only.n_labelled, est.human_only.n_dropped) == (30, 0)
    j = est.judge_only
    assert (j.value, j.ci_low, j.ci_high) == pytest.approx(_t(judge), abs=TOL)
    h = est.human_only
    assert (h.value, h.ci_low, h.ci_high) == pytest.approx(_t(y), abs=TOL)
    # labels needed for a target width, by the building block on the same inputs
    assert est.target_width is None and math.isnan(est.labels_needed)
    width = est.ppi.ci_high - est.ppi.ci_low + 0.1  # wider than now: fewer labels than 30
    planned = estimate_score("helpfulness", "pointwise", human, judge, width=width)
    assert planned.labels_needed == labels_needed(y, yhat, 90, width)
    assert 2 <= planned.labels_needed < 30
    narrow = estimate_score("helpfulness", "pointwise", human, judge, width=0.1)
    assert math.isnan(narrow.labels_needed)  # out of reach with 90 unlabelled rows: NaN


def test_metric_names_of_a_pointwise_and_a_preference_score() -> None:
    human, judge = _data()
    metrics = estimate_score("helpfulness", "pointwise", human, judge).to_metrics()
    trio = ["", "_ci_low", "_ci_high"]
    expected = {
        *(f"helpfulness/{m}{s}" for m in ("ppi_mean", "judge_mean_naive") for s in trio),
        *(f"helpfulness/human_mean_labelled{s}" for s in trio),
        "helpfulness/ppi_lambda",
        "helpfulness/n_labelled",
        "helpfulness/n_unlabelled",
    }
    assert set(metrics) == expected
    planned = estimate_score("helpfulness", "pointwise", human, judge, width=1.0).to_metrics()
    assert set(planned) - expected == {
        "helpfulness/labels_needed",
        "helpfulness/labels_needed_width",
    }
    verdicts = np.array([0, 1, 0.5, 1, 0, 1, 1, 0, 1, 0.5, 1, 0])
    human = np.where(np.arange(12) < 6, verdicts, math.nan)
    pref = estimate_score("preference", "preference", human, verdicts).to_metrics()
    assert {"preference/ppi_win_rate", "preference/ppi_win_rate_ci_high"} <= set(pref)
    assert {"preference/judge_win_rate_naive", "preference/human_win_rate_labelled"} <= set(pref)


def test_a_preference_win_rate_equals_ppi_py_on_b_win_indicators() -> None:
    rng = np.random.default_rng(4)
    human = rng.choice([0.0, 0.5, 1.0], 80)
    judge = np.where(rng.random(80) < 0.8, human, rng.choice([0.0, 1.0], 80))
    human[20:] = math.nan
    est = estimate_score("preference", "preference", human, judge)
    low, high = ppi_py.ppi_mean_ci(human[:20], judge[:20], judge[20:], alpha=0.05)
    assert (est.ppi.ci_low, est.ppi.ci_high) == pytest.approx((low[0], high[0]), abs=TOL)
    with pytest.raises(ValueError, match="expected 0.0, 0.5 or 1.0"):
        estimate_score("preference", "preference", human, judge + 0.25)


def test_hidden_labels_are_left_out_of_every_estimate_and_make_the_truth() -> None:
    human, judge = _data(seed=1, n=40, big_n=60)
    frame = pd.DataFrame(
        {
            "example_index": np.arange(100),
            "score": "s",
            "human": human,
            "judge": judge,
            "system": "",
        }
    )
    hidden = hidden_rows(frame, {"s": "pointwise"}, 12, seed=7)
    # kept: a seeded 12 of the 40 labelled indexes; hidden: the other 28, all labelled ones
    kept = set(np.random.default_rng(7).choice(np.arange(40), 12, replace=False).tolist())
    assert hidden["s"] == set(range(40)) - kept and len(hidden["s"]) == 28
    assert hidden_rows(frame, {"s": "pointwise"}, 12, seed=7) == hidden  # seeded
    est = estimates_from_table(frame, {"s": "pointwise"}, hidden=hidden)["s"]
    rows = sorted(kept)
    unlabelled = np.array(sorted(hidden["s"] | set(range(40, 100))))
    low, high = ppi_py.ppi_mean_ci(human[rows], judge[rows], judge[unlabelled], alpha=0.05)
    assert (est.ppi.ci_low, est.ppi.ci_high) == pytest.approx((low[0], high[0]), abs=TOL)
    assert (est.ppi.n_labelled, est.ppi.n_unlabelled) == (12, 88)
    assert est.human_only.n_labelled == 12
    assert est.human_only.value == pytest.approx(human[rows].mean(), abs=TOL)
    assert est.truth is not None and est.truth.value == pytest.approx(human[:40].mean(), abs=TOL)
    assert "s/human_mean_all" in est.to_metrics()


def test_systems_are_estimated_apart_and_ranked_on_the_human_scale() -> None:
    human, judge = _data(seed=2, n=40, big_n=80)
    systems = np.array(["good", "bad"] * 60)
    human[systems == "good"] += 0  # same data; the ranking follows each system's PPI estimate
    est = estimate_score("s", "pointwise", human, judge, systems=systems)
    for name in ("good", "bad"):
        rows = systems == name
        lab = rows & np.isfinite(human)
        value = ppi_py.ppi_mean_pointestimate(human[lab], judge[lab], judge[rows & ~lab])
        assert est.systems[name]["ppi"].value == pytest.approx(value[0], abs=TOL)
    ranked = list(est.systems)
    assert est.systems[ranked[0]]["ppi"].value >= est.systems[ranked[1]]["ppi"].value
    metrics = est.to_metrics()
    assert metrics[f"s/system/{ranked[0]}/ppi_rank"] == 1
    assert f"s/system/{ranked[1]}/ppi_mean_ci_low" in metrics


def test_no_unlabelled_rows_give_nan_with_a_reason_never_a_zero() -> None:
    est = estimate_score("s", "pointwise", np.array([1.0, 2, 3]), np.array([1.0, 2, 4]))
    assert math.isnan(est.ppi.value) and "unlabelled" in str(est.ppi.reason)
    assert math.isnan(est.labels_needed)
    assert math.isnan(est.to_metrics()["s/ppi_mean"])


def _annotators(n: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """Verdicts A (0) / B (1): the truth alternates; annotator k errs on rows (i + 7k) % 5 == 0,
    each on different rows, so the majority of the three is always the truth."""
    truth = np.array([i % 2 for i in range(n)], dtype=float)
    votes = np.column_stack(
        [np.where((np.arange(n) + 7 * k) % 5 == 0, 1 - truth, truth) for k in range(3)]
    )
    return votes, truth


def test_a_judge_equal_to_the_majority_passes_the_alt_test() -> None:
    votes, truth = _annotators()
    fig = rater_figures(
        "preference",
        "preference",
        votes,
        truth,
        names=["r1", "r2", "r3"],
        categorical=True,
        minimum=0,
        maximum=1,
    )
    # annotator j is wrong on 8 of 40 rows, where the judge wins alone: d = W_f - W_h is 1 there
    # and 0 elsewhere (both right: a tie counts for both), so rho_f = 1 and rho_h = 32/40
    first = fig.alt_test.annotators[0]
    assert (first.rho_f, first.rho_h, first.n_items) == (1.0, 0.8, 40)
    assert fig.passed == 1.0 and fig.alt_test.winning_rate == 1.0
    assert fig.alt_test == alt_test(votes, truth, names=["r1", "r2", "r3"])
    metrics = fig.to_metrics()
    assert metrics["preference/alt_test/passed"] == 1.0
    assert metrics["preference/alt_test/advantage_probability"] == 1.0
    assert metrics["preference/alt_test/annotator/r2/rho_h"] == 0.8
    assert "preference/human_alpha" not in metrics  # the pairwise ceiling is the agreement's


def test_a_random_judge_fails_the_alt_test() -> None:
    votes, _ = _annotators()
    judge = np.random.default_rng(0).integers(0, 2, 40).astype(float)
    fig = rater_figures(
        "preference",
        "preference",
        votes,
        judge,
        names=["r1", "r2", "r3"],
        categorical=True,
        minimum=0,
        maximum=1,
    )
    assert fig.passed == 0.0 and fig.alt_test.winning_rate == 0.0
    assert fig.to_metrics()["preference/alt_test/passed"] == 0.0


def test_a_pointwise_score_gets_the_human_ceiling_by_its_metric_names() -> None:
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 5, 50).astype(float)
    raters = np.column_stack([np.clip(truth + rng.integers(-1, 2, 50), 0, 4) for _ in range(3)])
    raters[3, 1] = math.nan
    fig = rater_figures(
        "overall",
        "pointwise",
        raters,
        truth,
        names=["a", "b", "c"],
        categorical=False,
        minimum=0,
        maximum=4,
    )
    assert fig.alt_test.metric == "neg_rmse"
    ref = human_ceiling_pointwise(raters, minimum=0, maximum=4)
    metrics = fig.to_metrics()
    assert metrics["overall/human_alpha"] == ref["alpha_ordinal"]
    assert metrics["overall/human_alpha_interval"] == ref["alpha_interval"]
    assert metrics["overall/human_qwk"] == ref["mean_pairwise_qwk"]
    assert metrics["overall/human_loo_spearman"] == ref["mean_loo_spearman"]
    assert metrics["overall/n_annotators"] == 3
    assert [r["annotator"] for r in fig.to_flat()["human_ceiling"]["per_annotator"]] == list("abc")


def test_the_annotators_table_round_trips_with_missing_labels() -> None:
    examples = [
        Example(id=f"e{i}", item={}, annotators={"s": [float(i), math.nan if i == 1 else 2.0]})
        for i in range(3)
    ]
    table = annotators_table(examples, {"s": ["x", "y"], "other": ["p", "q"]})
    assert table is not None and set(table["score"]) == {"s"}  # no example carries "other"
    labels, names = annotator_arrays(table, "s", [2, 0, 1])
    assert names == ["x", "y"]
    np.testing.assert_array_equal(labels, [[2, 2], [0, 2], [1, math.nan]])
    assert annotators_table(examples, {}) is None


def test_a_constant_difference_on_the_null_edge_is_not_rejected() -> None:
    """epsilon 0, three identical annotators and a judge equal to them: every d_i = 0, scipy's
    t-test is 0/0; the null (mean d <= -epsilon) holds on its edge: p = 1, counted, FAILED."""
    from judgekit.stats.alttest import alt_test

    labels = np.tile(np.arange(40) % 2, (3, 1)).T.astype(float)
    result = alt_test(labels, labels[:, 0].copy(), metric="accuracy", epsilon=0.0)
    assert [t.p_value for t in result.annotators] == [1.0, 1.0, 1.0]
    assert result.winning_rate == 0.0 and not result.passed
