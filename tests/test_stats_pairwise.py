"""Pairwise statistics against hand-computed values (the arithmetic is in the comments)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from judgekit.stats.pairwise import (
    CEILING_STATISTICS,
    PAIRWISE_STATISTICS,
    SWAP_STATISTICS,
    human_ceiling,
    majority_verdict,
    pairwise_agreement,
    preference_from_pointwise,
)
from judgekit.stats.pointwise import JudgekitStatsWarning

A, B, T, N = 0.0, 1.0, 0.5, math.nan  # verdict values: A, B, tie, none
HUMAN = [A, A, B, B, T, A, B, N, A, B]
JUDGE = [A, B, B, T, T, A, A, B, N, B]
# first = JUDGE; SECOND is the swapped order's verdict, mapped back to the original orientation.
SECOND = [A, A, B, B, T, N, B, B, N, B]


def test_counts_and_agreement_by_hand() -> None:
    out = pairwise_agreement(np.array(HUMAN), np.array(JUDGE), resamples=0)
    # Row 7 has no human label, row 8 no judge verdict: 10 rows, 1 failed, 8 scored, 9/10 judged.
    assert (out["n_total"], out["n_failed"], out["n_scored"]) == (10, 1, 8)
    assert out["coverage"] == pytest.approx(0.9)
    # Human (rows) x judge (columns) on the 8 scored rows, order A, tie, B:
    #        A  tie  B
    #   A    2   0   1     rows 0, 5 | - | 1
    #   tie  0   1   0     row 4
    #   B    1   1   2     row 6 | row 3 | rows 2, 9
    # accuracy leaves out tie rows: AA 2 + BB 2 agree of AA 2 + AB 1 + BA 1 + BB 2 = 4/6.
    assert out["accuracy"] == pytest.approx(4 / 6, abs=1e-12)
    # accuracy_with_ties: trace 2 + 1 + 2 = 5 of 8.
    assert out["accuracy_with_ties"] == pytest.approx(5 / 8, abs=1e-12)
    # kappa: p_o = 5/8 = 40/64; margins human (3, 1, 4), judge (3, 2, 3):
    # p_e = (3*3 + 1*2 + 4*3) / 8^2 = 23/64; kappa = (40 - 23) / (64 - 23) = 17/41.
    assert out["kappa"] == pytest.approx(17 / 41, abs=1e-12)
    # tie_rate over the 9 judged rows (row 7 counts: it needs no human label): rows 3, 4 = 2/9.
    assert out["tie_rate"] == pytest.approx(2 / 9, abs=1e-12)
    assert not any(k.endswith(("_ci_low", "_ci_high")) for k in out)  # resamples=0: none
    assert "position_consistency" not in out


def test_swap_statistics_by_hand() -> None:
    out = pairwise_agreement(
        np.array(HUMAN), np.array(JUDGE), first=np.array(JUDGE), second=np.array(SECOND)
    )
    # Both orders parsed on rows 0, 1, 2, 3, 4, 6, 7, 9 (row 5: second NaN; row 8: both NaN).
    # Equal on 0 (A A), 2 (B B), 4 (tie tie), 7 (B B), 9 (B B) = 5 of 8; 3 inconsistent.
    assert (out["n_both_orders"], out["n_inconsistent"]) == (8, 3)
    assert out["position_consistency"] == pytest.approx(5 / 8, abs=1e-12)
    # Non-tie verdicts, original order: rows 0 A, 1 B, 2 B, 5 A, 6 A, 7 B, 9 B = 7; shown first
    # (A) in rows 0, 5, 6 = 3. Swapped order: rows 0 A, 1 A, 2 B, 3 B, 6 B, 7 B, 9 B = 7; shown
    # first there is the original B: rows 2, 3, 6, 7, 9 = 5. Rate = (3 + 5) / (7 + 7) = 4/7.
    assert out["first_position_rate"] == pytest.approx(4 / 7, abs=1e-12)
    for name in (*PAIRWISE_STATISTICS, *SWAP_STATISTICS):
        assert out[f"{name}_ci_low"] <= out[name] <= out[f"{name}_ci_high"]


def test_a_judge_that_always_picks_the_first_shown_response() -> None:
    human = np.array([A, B, A, B])
    first, second = np.full(4, A), np.full(4, B)  # original order: A; swapped, mapped back: B
    out = pairwise_agreement(human, first, first=first, second=second, resamples=0)
    # Never the same verdict in both orders; every one of 8 verdicts is for the first shown.
    assert out["position_consistency"] == 0.0 and out["n_inconsistent"] == 4
    assert out["first_position_rate"] == 1.0


def test_nan_rows_are_dropped_and_counted() -> None:
    human = np.array([A, B, N, N, A])
    judge = np.array([A, N, B, N, B])
    out = pairwise_agreement(human, judge, resamples=0)
    # Judge NaN on rows 1, 3 (failed: 2); both present on rows 0, 4 only: A=A, A!=B.
    assert (out["n_total"], out["n_failed"], out["n_scored"]) == (5, 2, 2)
    assert out["coverage"] == pytest.approx(3 / 5)
    assert out["accuracy"] == pytest.approx(1 / 2) and out["accuracy_with_ties"] == 0.5


def test_constant_and_identical_verdicts_leave_kappa_undefined() -> None:
    with pytest.warns(JudgekitStatsWarning, match="kappa undefined.*same single verdict"):
        out = pairwise_agreement(np.full(5, A), np.full(5, A), resamples=0)
    # p_e = (5 * 5) / 5^2 = 1: kappa is 0/0; accuracy is still 5/5.
    assert math.isnan(out["kappa"]) and out["accuracy"] == 1.0


def test_constant_opposite_verdicts_have_kappa_zero() -> None:
    out = pairwise_agreement(np.full(4, A), np.full(4, B), resamples=0)
    # p_o = 0; p_e = (4 * 0 + 0 * 4) / 16 = 0; kappa = (0 - 0) / (1 - 0) = 0.
    assert out["kappa"] == 0.0 and out["accuracy"] == 0.0 and out["tie_rate"] == 0.0


def test_a_judge_that_only_says_tie_has_no_accuracy_without_ties() -> None:
    with pytest.warns(JudgekitStatsWarning, match="accuracy undefined"):
        out = pairwise_agreement(np.array([A, B, T, A]), np.full(4, T), resamples=0)
    # Every judge verdict is a tie: nothing left for accuracy; with ties only row 2 agrees: 1/4.
    assert math.isnan(out["accuracy"]) and out["accuracy_with_ties"] == 0.25
    assert out["tie_rate"] == 1.0
    # p_o = 1/4; margins human (2, 1, 1), judge (0, 4, 0): p_e = 1*4/16 = 1/4: kappa = 0.
    assert out["kappa"] == pytest.approx(0.0, abs=1e-12)


def test_empty_input_gives_counts_and_nan() -> None:
    with pytest.warns(JudgekitStatsWarning, match="no row has both"):
        out = pairwise_agreement(np.array([]), np.array([]))
    assert out["n_total"] == 0 and out["n_scored"] == 0 and math.isnan(out["coverage"])
    assert all(math.isnan(out[k]) for k in PAIRWISE_STATISTICS)
    assert math.isnan(out["kappa_ci_low"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"judge": np.array([A, 0.3])}, r"judge: row 1 is 0.3; verdicts are 0.0 \(A\)"),
        ({"judge": np.array([A])}, "aligned"),
        ({"first": np.array([A, B])}, "give both"),
        ({"resamples": -1}, "resamples"),
        ({"clusters": np.array([1, 2, 3])}, "one id per row"),
    ],
)
def test_bad_input_is_refused(kwargs: dict, message: str) -> None:
    args = {"human": np.array([A, B]), "judge": np.array([A, B])} | kwargs
    with pytest.raises(ValueError, match=message):
        pairwise_agreement(**args)


def test_bootstrap_is_seeded() -> None:
    rng = np.random.default_rng(5)
    human, judge = rng.choice([A, B, T], 300), rng.choice([A, B, T], 300)
    one = pairwise_agreement(human, judge, seed=3, resamples=200)
    assert one == pairwise_agreement(human, judge, seed=3, resamples=200)
    assert one != pairwise_agreement(human, judge, seed=4, resamples=200)


def test_clustered_bootstrap_is_wider_when_rows_repeat_within_clusters() -> None:
    # 30 prompts, each judged on 10 identical rows: really 30 independent units, not 300.
    rng = np.random.default_rng(0)
    human = np.repeat(rng.choice([A, B], 30), 10)
    judge = np.where(np.repeat(rng.random(30) < 0.7, 10), human, 1 - human)
    clusters = np.repeat(np.arange(30), 10)
    rows = pairwise_agreement(human, judge, seed=1)
    clustered = pairwise_agreement(human, judge, seed=1, clusters=clusters)
    assert rows["accuracy"] == clustered["accuracy"]  # the point estimate does not change

    def width(out: dict) -> float:
        return out["accuracy_ci_high"] - out["accuracy_ci_low"]

    # Binomial standard error sqrt(p(1-p)/n) grows by sqrt(300/30) ~ 3.2 with 30 units.
    assert width(clustered) > 2 * width(rows)


def test_kappa_matches_scikit_learn_on_random_verdicts() -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(2)
    human = rng.choice([A, B, T], 500)
    judge = np.where(rng.random(500) < 0.6, human, rng.choice([A, B, T], 500))
    out = pairwise_agreement(human, judge, resamples=0)
    expected = metrics.cohen_kappa_score((human * 2).astype(int), (judge * 2).astype(int))
    assert out["kappa"] == pytest.approx(expected, abs=1e-12)


# Three annotators on 6 rows; annotator 3 gave no label on row 5.
ANNOTATORS = np.array(
    [
        [A, A, A],
        [A, B, A],
        [B, B, B],
        [T, T, B],
        [B, B, A],
        [A, T, N],
    ]
)


def test_human_ceiling_by_hand() -> None:
    out = human_ceiling(ANNOTATORS, resamples=0)
    assert (out["n_rows"], out["n_annotators"]) == (6, 3)
    # Pair (1, 2), 6 rows:      Pair (1, 3), rows 0-4:     Pair (2, 3), rows 0-4:
    #        A tie B                   A tie B                    A tie B
    #   A    1  1  1               A   2  0  0                A   1  0  0
    #   tie  0  1  0               tie 0  0  1                tie 0  0  1
    #   B    0  0  2               B   1  0  1                B   2  0  1
    # with ties: 4/6, 3/5, 2/5 -> mean (2/3 + 3/5 + 2/5) / 3 = 5/9
    assert out["human_accuracy_with_ties"] == pytest.approx(5 / 9, abs=1e-12)
    # without ties: 3/4 (AA 1 + BB 2 of 4), 3/4 (AA 2 + BB 1 of 4), 2/4 -> mean 2/3
    assert out["human_accuracy"] == pytest.approx(2 / 3, abs=1e-12)
    # kappa (1,2): p_o 4/6 = 24/36, margins (3,1,2) x (1,2,3): p_e = (3 + 2 + 6)/36 = 11/36,
    #   kappa = 13/25; (1,3): p_o 3/5, p_e = (2*3 + 0 + 2*2)/25 = 2/5, kappa = 1/3;
    #   (2,3): p_o 2/5, p_e = (1*3 + 0 + 3*2)/25 = 9/25, kappa = (10 - 9)/(25 - 9) = 1/16.
    # mean = (13/25 + 1/3 + 1/16) / 3 = (624 + 400 + 75) / 1200 / 3 = 1099/3600
    assert out["human_kappa"] == pytest.approx(1099 / 3600, abs=1e-12)
    # Leave one out (majority of the others; 1-1 splits are ties, left out without ties):
    #   annotator 1 vs (2,3): rows 0 A=A, 2 B=B; rows 1, 3, 4 split, row 5 tie -> 2/2
    #   annotator 2 vs (1,3): rows 0 A=A, 1 B!=A, 2 B=B; row 5 (A alone) vs tie left out -> 2/3
    #   annotator 3 vs (1,2): rows 0 A=A, 2 B=B, 4 A!=B; row 1 split, 3 tie, 5 NaN -> 2/3
    # mean = (1 + 2/3 + 2/3) / 3 = 7/9
    assert out["human_loo_accuracy"] == pytest.approx(7 / 9, abs=1e-12)


def test_human_ceiling_intervals_are_seeded_and_contain_the_estimate() -> None:
    rng = np.random.default_rng(0)
    truth = rng.choice([A, B, T], 200)
    votes = np.stack([np.where(rng.random(200) < 0.8, truth, T) for _ in range(3)], axis=1)
    one = human_ceiling(votes, seed=2, resamples=300)
    assert one == human_ceiling(votes, seed=2, resamples=300)
    for name in CEILING_STATISTICS:
        assert one[f"{name}_ci_low"] <= one[name] <= one[f"{name}_ci_high"]
    clustered = human_ceiling(votes, seed=2, resamples=300, clusters=np.arange(200) // 4)
    assert clustered["human_kappa"] == one["human_kappa"]


def test_human_ceiling_needs_two_annotators() -> None:
    with pytest.raises(ValueError, match="2 or more annotators"):
        human_ceiling(np.array([[A], [B]]))


def test_majority_verdict() -> None:
    # Rows of ANNOTATORS: 3 A; 2 A of 3; 3 B; 2 ties of 3; 2 B of 3; A and tie (1-1) -> tie.
    assert majority_verdict(ANNOTATORS).tolist() == [A, A, B, T, B, T]
    # A three-way split is a tie; a row without any label has no majority.
    out = majority_verdict(np.array([[A, B, T], [N, N, N]]))
    assert out[0] == T and math.isnan(out[1])


def test_preference_from_pointwise() -> None:
    values = np.array([3, 1, 2, 2, 4, N, 1, 3, 0, 2, 1, 3, 4])
    groups = np.array(["p", "p", "q", "q", "r", "r", "s", "s", "t", "u", "u", "u", "v"])
    ids, verdicts = preference_from_pointwise(values, groups)
    # p: 3 > 1 -> first better (0); q: 2 = 2 -> 0.5; r: NaN; s: 1 < 3 -> second better (1);
    # t (1 row), u (3 rows) and v (1 row) are not pairs.
    assert ids.tolist() == ["p", "q", "r", "s"]
    assert verdicts[[0, 1, 3]].tolist() == [0.0, 0.5, 1.0] and math.isnan(verdicts[2])


def test_preference_from_pointwise_pairs_consecutive_rows_only() -> None:
    ids, verdicts = preference_from_pointwise(
        np.array([1, 2, 3, 3, 4, 0]), np.array([7, 7, 8, 8, 7, 7])
    )
    # Group 7 appears as two separate runs of 2: two pairs, both named 7.
    assert ids.tolist() == [7, 8, 7] and verdicts.tolist() == [1.0, 0.5, 0.0]
    empty_ids, empty = preference_from_pointwise(np.array([]), np.array([]))
    assert empty_ids.size == 0 and empty.size == 0
    with pytest.raises(ValueError, match="one id per row"):
        preference_from_pointwise(np.array([1.0, 2.0]), np.array([1]))
