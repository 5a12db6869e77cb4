"""The panel statistics (:mod:`judgekit.stats.panel`) against hand arithmetic and brute force."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from judgekit.stats.panel import agreement_matrix, combine, fit_weights, verdict
from judgekit.stats.repeats import krippendorff_alpha_units

NAN = math.nan


def test_mean_and_median_leave_failed_members_out() -> None:
    values = np.array([[1.0, 2.0, 4.0], [2.0, NAN, 4.0], [NAN, NAN, NAN]])
    mean, abstained = combine(values, "mean", preference=False)
    assert mean == pytest.approx([7 / 3, 3.0, NAN], nan_ok=True)
    assert not abstained.any()  # an item no member answered failed; it did not abstain
    median, _ = combine(values, "median", preference=False)
    assert median == pytest.approx([2.0, 3.0, NAN], nan_ok=True)


def test_majorities() -> None:
    values = np.array([[1, 1, 2], [1, 2, 3], [1, 1, NAN], [3, NAN, NAN]], dtype=float)
    majority, abstained = combine(values, "majority", preference=False)
    # 2 of 3 → 1; a three-way split abstains; 2 of the 2 that answered; 1 of 1
    assert majority == pytest.approx([1, NAN, 1, 3], nan_ok=True)
    assert abstained.tolist() == [False, True, False, False]
    strict, abstained = combine(values, "strict_majority", preference=False)
    # strict: a failed member abstains however the others agree
    assert strict == pytest.approx([1, NAN, NAN, NAN], nan_ok=True)
    assert abstained.tolist() == [False, True, True, True]


def test_preference_majority_ties_and_strict_majority_abstains() -> None:
    values = np.array([[0, 1, 0.5], [0, 0, 1], [0, 1, NAN]])
    majority, abstained = combine(values, "majority", preference=True)
    assert majority.tolist() == [0.5, 0.0, 0.5]  # no verdict from more than half: a tie
    assert not abstained.any()
    strict, abstained = combine(values, "strict_majority", preference=True)
    assert strict == pytest.approx([NAN, 0.0, NAN], nan_ok=True)
    assert abstained.tolist() == [True, False, True]


def test_a_preference_mean_is_a_verdict() -> None:
    values = np.array([[0, 1, 1], [0, 1, NAN], [0, 0.5, NAN]])
    mean, _ = combine(values, "mean", preference=True)
    assert mean.tolist() == [1.0, 0.5, 0.0]  # 2/3 → B, 1/2 → tie, 1/4 → A
    assert verdict(0.5 + 1e-12) == 0.5 and math.isnan(verdict(NAN))


def test_weighted_renormalises_over_the_members_that_answered() -> None:
    values = np.array([[2.0, 3.0, 4.0], [2.0, NAN, 4.0], [NAN, 3.0, NAN]])
    weights = np.array([0.5, 0.25, 0.25])
    out, abstained = combine(values, "weighted", preference=False, weights=weights)
    # (1 + 0.75 + 1) = 2.75; (0.5·2 + 0.25·4) / 0.75 = 8/3; 3
    assert out == pytest.approx([2.75, 8 / 3, 3.0])
    zero = np.array([0.0, 0.0, 1.0])
    out, abstained = combine(values, "weighted", preference=False, weights=zero)
    # row 3: the one member that answered weighs nothing: the panel cannot decide
    assert out[:2] == pytest.approx([4.0, 4.0]) and math.isnan(out[2]) and abstained[2]


def test_fit_weights_finds_the_constrained_least_squares_optimum() -> None:
    rng = np.random.default_rng(0)
    human = rng.integers(0, 5, size=40).astype(float)
    # one member high by 1, one low by 1: only (1/2, 1/2) gives the human scores back exactly
    x = np.column_stack([human + 1, human - 1])
    assert fit_weights(x, human) == pytest.approx([0.5, 0.5], abs=1e-6)
    # a third, noisy member: compare with a brute-force search over the simplex
    x = np.column_stack([human + 1, human - 1, rng.normal(2, 1, size=40)])
    x[3, 2] = NAN  # a failed member's item is left out of the fit
    w = fit_weights(x, human)
    assert w.sum() == pytest.approx(1.0) and (w >= 0).all()
    keep = np.isfinite(x).all(axis=1)
    grid = [
        np.array([a, b, 1 - a - b])
        for a, b in itertools.product(np.linspace(0, 1, 101), repeat=2)
        if a + b <= 1 + 1e-12
    ]
    best = min(grid, key=lambda g: float(np.sum((x[keep] @ g - human[keep]) ** 2)))
    loss = lambda g: float(np.sum((x[keep] @ g - human[keep]) ** 2))  # noqa: E731
    assert loss(w) <= loss(best) + 1e-9
    with pytest.raises(ValueError, match="need 2 or more"):
        fit_weights(np.array([[1.0, NAN]]), np.array([1.0]))


def test_cohen_kappa_of_two_members_by_hand() -> None:
    # a = 0 0 1 1, b = 0 1 1 1: p_o = 3/4; p_e = 1/2·1/4 + 1/2·3/4 = 1/2; κ = (3/4 - 1/2)/(1/2)
    values = np.array([[0, 0], [0, 1], [1, 1], [1, 1]], dtype=float)
    matrix, name = agreement_matrix(values, ["a", "b"], nominal=True)
    assert name == "cohen_kappa"
    assert matrix.loc["a", "b"] == pytest.approx(0.5) and matrix.loc["b", "a"] == 0.5
    assert matrix.loc["a", "a"] == 1.0


def test_weighted_kappa_of_two_members_by_hand() -> None:
    # levels 0..2, w_ij = (i - j)²/4. a = 0 1 2, b = 0 2 2: observed Σ w·O = (1/4)/3 = 1/12;
    # p_a = (1/3, 1/3, 1/3), p_b = (1/3, 0, 2/3): Σ w·E = (2/9) + (0.75/9) + (1/9) = 3.75/9;
    # κ_w = 1 - (1/12)/(3.75/9) = 0.8. A third member shares no item with the others: NaN.
    values = np.array([[0, 0, NAN], [1, 2, NAN], [2, 2, NAN]])
    matrix, name = agreement_matrix(values, ["a", "b", "c"], nominal=False, minimum=0, maximum=2)
    assert name == "weighted_kappa"
    assert matrix.loc["a", "b"] == pytest.approx(0.8)
    assert math.isnan(matrix.loc["a", "c"])


def test_non_integer_values_are_compared_by_interval_alpha() -> None:
    values = np.array([[0.5, 1.0], [2.0, 2.5], [3.0, 3.0]])
    matrix, name = agreement_matrix(values, ["a", "b"], nominal=False, minimum=0, maximum=4)
    assert name == "krippendorff_alpha_interval"
    assert matrix.loc["a", "b"] == pytest.approx(krippendorff_alpha_units(values, "interval"))


def test_inter_judge_alpha_nominal_by_hand() -> None:
    # Three members (coders), four items, nominal. Coincidences: items 1-2 all agree (values 0,
    # 1 three times each): o_00 = 3·2/2 = 3, o_11 = 3; item 3 (0, 0, 1): o_00 += 1, o_01 += 1,
    # o_10 += 1; item 4 (1, 1, NaN): o_11 += 2. n_0 = 5, n_1 = 6, n = 11.
    # D_o = o_01 + o_10 = 2; D_e = 2·n_0·n_1/(n - 1) = 60/10 = 6; α = 1 - D_o/D_e = 2/3.
    values = np.array([[0, 0, 0], [1, 1, 1], [0, 0, 1], [1, 1, NAN]], dtype=float)
    assert krippendorff_alpha_units(values, "nominal") == pytest.approx(2 / 3)
