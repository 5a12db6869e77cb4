"""Tests of judgekit.stats.alttest (the alternative annotator test) and judgekit.stats.ceiling;
hand arithmetic is shown in comments, constructed data has known answers both ways."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from judgekit.stats import alttest, ceiling
from judgekit.stats.alttest import alt_test, human_ceiling_pointwise
from judgekit.stats.ceiling import krippendorff_alpha_coders
from judgekit.stats.pointwise import agreement, krippendorff_alpha

NAN = math.nan
TOL = 1e-12


def raters(n: int, m: int, accuracy: float, seed: int, classes: int = 3):
    """A true label per item and ``m`` raters who give it with ``accuracy``, else another class."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, classes, n)
    wrong = (truth[:, None] + rng.integers(1, classes, (n, m))) % classes
    right = rng.uniform(size=(n, m)) < accuracy
    return truth.astype(float), np.where(right, truth[:, None], wrong).astype(float)


def test_all_names_are_public():
    assert set(alttest.__all__) == {
        "AltTestResult",
        "AnnotatorTest",
        "alt_test",
        "human_ceiling_pointwise",
    }
    assert set(ceiling.__all__) == {"human_ceiling_pointwise", "krippendorff_alpha_coders"}


# --- (c) hand arithmetic ------------------------------------------------------------------------

#        h1 h2 h3  llm
HAND = np.array(
    [
        [1, 1, 1, 1],
        [1, 1, 0, 1],
        [0, 1, 0, 0],
        [0, 0, 1, 1],
        [1, 0, 0, 0],
        [1, 1, 1, 0],
    ],
    dtype=float,
)


def test_hand_example_rho_and_t():
    # Annotator h1 left out; the others are (h2, h3); S = share of the others equal:
    #   item  others  S(llm)  S(h1)  W^f W^h
    #   1     1 1     1       1      1   1
    #   2     1 0     .5      .5     1   1
    #   3     1 0     .5      .5     1   1
    #   4     0 1     .5      .5     1   1
    #   5     0 0     1       0      1   0
    #   6     1 1     0       1      0   1
    # rho_f = 5/6, rho_h = 5/6; d = W^f - W^h = (0,0,0,0,1,-1): mean 0, sd = sqrt(2/5)
    # t = (0 - (-0.2)) / (sqrt(0.4) / sqrt(6)) = 0.2 / 0.258199 = 0.774597, df 5, one-sided
    out = alt_test(HAND[:, :3], HAND[:, 3], epsilon=0.2, min_items=6)
    h1 = out.annotators[0]
    assert (h1.annotator, h1.n_items) == ("0", 6)
    assert (h1.rho_f, h1.rho_h) == pytest.approx((5 / 6, 5 / 6), abs=TOL)
    assert h1.t_statistic == pytest.approx(0.2 / math.sqrt(0.4 / 6), abs=1e-9)
    assert h1.p_value == pytest.approx(float(sps.t.sf(0.2 / math.sqrt(0.4 / 6), 5)), abs=1e-12)
    assert not h1.flagged
    # h3 left out (others h1, h2): W^f = (1,1,1,1,1,0), W^h = (1,0,1,1,1,1): the same d up to order
    assert out.annotators[2].t_statistic == pytest.approx(h1.t_statistic, abs=1e-9)
    assert out.advantage_probability == pytest.approx(
        np.mean([a.rho_f for a in out.annotators]), abs=TOL
    )


def test_by_correction_and_winning_rate_follow_scipy():
    truth, votes = raters(60, 4, 0.7, seed=1)
    out = alt_test(votes, truth)
    p = np.array([a.p_value for a in out.annotators])
    adjusted = sps.false_discovery_control(p, method="by")
    np.testing.assert_allclose([a.p_adjusted for a in out.annotators], adjusted, atol=TOL)
    assert [a.rejected for a in out.annotators] == list(adjusted <= 0.05)
    assert out.winning_rate == pytest.approx(np.mean(adjusted <= 0.05), abs=TOL)


# --- (a), (b) known answers both ways -----------------------------------------------------------


def test_llm_equal_to_the_truth_beats_noisy_annotators_and_passes():
    truth, votes = raters(100, 4, 0.7, seed=2)
    out = alt_test(votes, truth)
    assert out.passed and out.winning_rate == 1.0
    assert all(a.rho_f > a.rho_h for a in out.annotators)
    assert out.notes == [] and out.reason is None


def test_random_llm_against_consistent_annotators_fails():
    truth, votes = raters(100, 4, 0.95, seed=3)
    llm = np.random.default_rng(4).integers(0, 3, 100).astype(float)
    out = alt_test(votes, llm)
    assert not out.passed and out.winning_rate == 0.0
    assert all(a.rho_f < a.rho_h - 0.2 for a in out.annotators)


def test_numeric_metrics_rank_a_close_llm_above_a_far_one():
    rng = np.random.default_rng(5)
    truth = rng.uniform(1, 5, 80)
    votes = truth[:, None] + rng.normal(0, 0.8, (80, 3))
    for metric in ("neg_rmse", "neg_abs"):
        close = alt_test(votes, truth, metric=metric)
        far = alt_test(votes, truth + 2.0, metric=metric)
        assert close.passed and not far.passed, metric


# --- (d) epsilon's direction --------------------------------------------------------------------


def test_a_larger_epsilon_makes_passing_easier():
    truth, votes = raters(120, 4, 0.8, seed=6)
    rng = np.random.default_rng(7)
    llm = np.where(rng.uniform(size=120) < 0.7, truth, (truth + 1) % 3)  # a bit worse than them
    runs = [alt_test(votes, llm, epsilon=e) for e in (0.0, 0.1, 0.2, 0.3, 0.5)]
    rates = [r.winning_rate for r in runs]
    assert rates == sorted(rates) and rates[0] < 0.5 <= rates[-1]
    for k in range(4):  # every annotator's p-value falls as epsilon grows
        p = [r.annotators[k].p_value for r in runs]
        assert p == sorted(p, reverse=True)


# --- missing labels, NaN rows, too few items ----------------------------------------------------


def test_missing_labels_and_nan_llm_rows_are_dropped_and_counted():
    votes = HAND[:, :3].copy()
    votes[0, 0] = NAN  # h1 did not label item 1
    llm = HAND[:, 3].copy()
    llm[5] = NAN  # the LLM failed on item 6
    out = alt_test(votes, llm, min_items=2)
    assert out.n_dropped == 1
    assert out.annotators[0].n_items == 4  # items 2-5
    assert out.annotators[1].n_items == 5


def test_annotators_under_min_items_are_reported_but_not_counted():
    # the authors' reference implementation skips annotators with fewer than 30 items
    truth, votes = raters(100, 3, 0.7, seed=10)
    votes[20:, 2] = NAN  # annotator 2 labelled only 20 items
    out = alt_test(votes, truth)
    few = out.annotators[2]
    assert few.n_items == 20 and few.flagged and not few.rejected
    assert math.isfinite(few.p_value) and math.isnan(few.p_adjusted)
    counted = out.annotators[:2]
    assert out.winning_rate == pytest.approx(np.mean([a.rejected for a in counted]), abs=TOL)
    assert out.advantage_probability == pytest.approx(np.mean([a.rho_f for a in counted]), abs=TOL)
    assert any("annotator 2: 20 items" in note for note in out.notes)
    # with every annotator under min_items nothing is counted: NaN with a reason
    assert math.isnan(alt_test(votes, truth, min_items=200).winning_rate)


def test_nothing_testable_gives_nan_and_a_reason():
    votes = np.array([[1.0, NAN], [NAN, 0.0]])  # no item has two raters
    out = alt_test(votes, np.array([1.0, 0.0]))
    assert math.isnan(out.winning_rate) and not out.passed and out.reason
    assert all(not a.rejected and math.isnan(a.p_value) for a in out.annotators)
    assert any("at least 3" in note for note in out.notes)


def test_constant_agreement_gives_scipys_infinite_t():
    votes = np.ones((5, 3))  # everyone, and the LLM, says 1: d = 0 always, above -epsilon
    out = alt_test(votes, np.ones(5), min_items=5)
    assert all(a.t_statistic == math.inf and a.p_value == 0.0 for a in out.annotators)
    assert out.passed


# --- the pointwise human ceiling ----------------------------------------------------------------

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", the 4 coders x 12 units
# example with missing values: ordinal alpha 0.815, interval alpha 0.849 (rounded in the paper).
KRIPPENDORFF = np.array(
    [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
        [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN],
    ]
).T


def test_alpha_matches_krippendorffs_worked_example():
    assert krippendorff_alpha_coders(KRIPPENDORFF, level="ordinal") == pytest.approx(
        0.815, abs=5e-4
    )
    assert krippendorff_alpha_coders(KRIPPENDORFF, level="interval") == pytest.approx(
        0.849, abs=5e-4
    )


def test_alpha_of_two_coders_equals_judgekits_two_coder_alpha():
    rng = np.random.default_rng(8)
    a = rng.integers(1, 6, 50).astype(float)
    b = np.clip(a + rng.integers(-1, 2, 50), 1, 5)
    b[3] = NAN
    for level in ("ordinal", "interval"):
        ref = krippendorff_alpha(a, b, level=level)
        got = krippendorff_alpha_coders(np.column_stack([a, b]), level=level)
        assert got == pytest.approx(ref, abs=1e-12)


def test_human_ceiling_pointwise_by_reference():
    rng = np.random.default_rng(9)
    truth = rng.integers(1, 6, 40).astype(float)
    votes = np.clip(truth[:, None] + rng.integers(-1, 2, (40, 3)), 1, 5)
    votes[0, 2] = NAN
    out = human_ceiling_pointwise(votes, minimum=1, maximum=5)
    assert (out["n_items"], out["n_annotators"], out["n_pairable"]) == (40, 3, 40)
    pairs = [(0, 1), (0, 2), (1, 2)]
    qwk = np.mean(
        [agreement(votes[:, i], votes[:, k], minimum=1, maximum=5)["qwk"] for i, k in pairs]
    )
    assert out["mean_pairwise_qwk"] == pytest.approx(qwk, abs=TOL)
    # annotator 2 against the mean of annotators 0 and 1 (39 items: item 1 it did not rate)
    mean01 = votes[:, :2].mean(axis=1)
    ref = agreement(votes[:, 2], mean01, minimum=1, maximum=5)
    row = out["per_annotator"][2]
    assert row["n"] == 39
    assert (row["pearson"], row["qwk"]) == pytest.approx((ref["pearson"], ref["qwk"]), abs=TOL)


def test_human_ceiling_of_constant_raters_is_nan():
    out = human_ceiling_pointwise(np.full((6, 3), 3.0), minimum=1, maximum=5)
    assert math.isnan(out["alpha_ordinal"]) and math.isnan(out["mean_pairwise_qwk"])
    assert math.isnan(out["mean_loo_pearson"])
