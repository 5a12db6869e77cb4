"""Tests of judgekit.stats.calibration; hand arithmetic is shown in comments."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import brier_score_loss

from judgekit.stats import calibration
from judgekit.stats.calibration import (
    CalibrationMap,
    calibration_split,
    fit_calibration,
    probability_calibration,
)

NAN = math.nan
TOL = 1e-9


def biased_judge(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Human 1..5 and a judge that reads one level high (clipped) with noise."""
    rng = np.random.default_rng(seed)
    human = rng.integers(1, 6, n).astype(float)
    judge = np.clip(np.round(human + 1 + rng.normal(0, 0.6, n)), 1, 5)
    return judge, human


def test_all_names_are_public():
    assert set(calibration.__all__) == {
        "CalibrationMap",
        "calibration_split",
        "fit_calibration",
        "probability_calibration",
    }


# --- isotonic -----------------------------------------------------------------------------------


def test_isotonic_equals_sklearn_and_drops_nan_rows():
    judge, human = biased_judge(200, seed=1)
    judge[3], human[7] = NAN, NAN  # two rows dropped
    cmap = fit_calibration(judge, human, method="isotonic", minimum=1, maximum=5)
    assert (cmap.n_fit, cmap.n_dropped, cmap.reason) == (198, 2, None)
    keep = np.isfinite(judge) & np.isfinite(human)
    ref = IsotonicRegression(increasing=True, out_of_bounds="clip", y_min=1, y_max=5)
    ref.fit(judge[keep], human[keep])
    grid = np.linspace(0, 6, 61)  # includes scores outside the fitted range: clipped
    np.testing.assert_allclose(cmap.apply(grid), ref.predict(grid), atol=TOL)


def test_isotonic_by_hand_and_nan_stays_nan():
    # judge 1 2 3, human 2 1 3: pool-adjacent-violators joins 1 and 2 -> (2+1)/2 = 1.5
    cmap = fit_calibration(
        np.array([1.0, 2, 3]), np.array([2.0, 1, 3]), method="isotonic", minimum=1, maximum=5
    )
    out = cmap.apply(np.array([1.0, 2.5, 3, NAN, 9]))
    # 2.5 lies between the thresholds (2, 1.5) and (3, 3): 1.5 + 0.5 * 1.5 = 2.25; 9 clips to 3
    np.testing.assert_allclose(out[[0, 1, 2, 4]], [1.5, 2.25, 3.0, 3.0], atol=TOL)
    assert math.isnan(out[3])


def test_isotonic_fixes_a_constant_shift():
    judge, human = biased_judge(400, seed=2)
    cmap = fit_calibration(judge, human, method="isotonic", minimum=1, maximum=5)
    raw_shift = np.mean(judge - human)
    calibrated_shift = np.mean(cmap.apply(judge) - human)
    assert raw_shift > 0.5
    assert abs(calibrated_shift) < 1e-9  # isotonic regression preserves the mean of the fit rows


def test_constant_human_gives_a_constant_isotonic_map():
    cmap = fit_calibration(
        np.array([1.0, 2, 3]), np.array([4.0, 4, 4]), method="isotonic", minimum=1, maximum=5
    )
    np.testing.assert_allclose(cmap.apply(np.array([0.0, 2, 7])), [4, 4, 4], atol=TOL)


def test_empty_input_gives_an_undefined_map_with_a_reason():
    for method in ("isotonic", "ordinal"):
        cmap = fit_calibration(
            np.array([NAN, 2.0]), np.array([1.0, NAN]), method=method, minimum=1, maximum=5
        )
        assert (cmap.n_fit, cmap.n_dropped) == (0, 2)
        assert cmap.reason is not None
        assert np.isnan(cmap.apply(np.array([1.0, 2.0]))).all()


# --- ordinal ------------------------------------------------------------------------------------


def test_ordinal_equals_statsmodels_expected_level():
    from statsmodels.miscmodels.ordinal_model import OrderedModel

    judge, human = biased_judge(300, seed=3)
    cmap = fit_calibration(judge, human, method="ordinal", minimum=1, maximum=5)
    assert cmap.levels == [1.0, 2.0, 3.0, 4.0, 5.0]
    model = OrderedModel(np.searchsorted(cmap.levels, human), judge[:, None], distr="logit")
    grid = np.linspace(0.5, 5.5, 11)
    probs = model.predict(np.asarray(cmap.params), exog=grid[:, None])
    np.testing.assert_allclose(cmap.apply(grid), probs @ np.arange(1, 6), atol=1e-9)
    assert cmap.params[0] > 0  # a higher judge score means a higher human level


def test_ordinal_is_monotone_and_inside_the_scale():
    judge, human = biased_judge(300, seed=4)
    cmap = fit_calibration(judge, human, method="ordinal", minimum=1, maximum=5)
    out = cmap.apply(np.linspace(-3, 9, 50))
    assert np.all(np.diff(out) > 0)
    assert out.min() >= 1 and out.max() <= 5


def test_ordinal_undefined_for_a_constant_judge_or_one_level():
    one_level = fit_calibration(
        np.array([1.0, 2, 3]), np.array([2.0, 2, 2]), method="ordinal", minimum=1, maximum=5
    )
    assert "2 or more human levels" in (one_level.reason or "")
    flat = fit_calibration(
        np.array([3.0, 3, 3]), np.array([1.0, 2, 3]), method="ordinal", minimum=1, maximum=5
    )
    assert "all 3" in (flat.reason or "")
    assert np.isnan(flat.apply(np.array([3.0]))).all()


def test_ordinal_rejects_a_human_value_outside_the_levels():
    with pytest.raises(ValueError, match="not in"):
        fit_calibration(
            np.array([1.0, 2]), np.array([1.0, 7]), method="ordinal", minimum=1, maximum=5,
            levels=[1, 2, 3],
        )  # fmt: skip


@pytest.mark.parametrize("method", ["isotonic", "ordinal"])
def test_json_round_trip_applies_identically(method):
    judge, human = biased_judge(150, seed=5)
    cmap = fit_calibration(judge, human, method=method, minimum=1, maximum=5)
    again = CalibrationMap.from_json(cmap.to_json())
    grid = np.array([NAN, 0.0, 1, 1.7, 2, 3.3, 4, 5, 6])
    assert again == cmap
    np.testing.assert_array_equal(again.apply(grid), cmap.apply(grid))


# --- the split ----------------------------------------------------------------------------------


def test_split_is_disjoint_covering_and_keeps_groups_whole():
    groups = np.repeat(np.arange(40), 5)[np.random.default_rng(0).permutation(200)]
    fit, held = calibration_split(200, groups, 0.3, seed=7)
    assert np.intersect1d(fit, held).size == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([fit, held])), np.arange(200))
    assert set(groups[fit]).isdisjoint(groups[held])  # no group on both sides
    assert fit.size == 60  # 12 whole groups of 5 reach round(0.3 * 200) = 60 exactly


def test_split_is_seeded():
    a = calibration_split(50, None, 0.3, seed=1)
    b = calibration_split(50, None, 0.3, seed=1)
    c = calibration_split(50, None, 0.3, seed=2)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], c[0])
    assert a[0].size == 15


def test_split_rejects_a_bad_fraction():
    with pytest.raises(ValueError, match="fraction"):
        calibration_split(10, None, 1.0, seed=0)


def test_map_fitted_on_the_fit_side_only_sees_those_rows():
    judge, human = biased_judge(100, seed=8)
    fit, held = calibration_split(100, None, 0.3, seed=0)
    cmap = fit_calibration(judge[fit], human[fit], method="isotonic", minimum=1, maximum=5)
    assert cmap.n_fit == fit.size == 30
    assert cmap.apply(judge[held]).shape == (70,)


# --- probability calibration --------------------------------------------------------------------


def test_ece_and_brier_by_hand():
    # 4 rows, levels (0, 1):
    #   p(1)  conf  predicted  human  correct  bin
    #   0.9   0.9   1          1      1        [0.9, 1.0]
    #   0.8   0.8   1          0      0        [0.8, 0.9)
    #   0.3   0.7   0          0      1        [0.7, 0.8)
    #   0.95  0.95  1          1      1        [0.9, 1.0]
    # ECE = 2/4 |1 - 0.925| + 1/4 |0 - 0.8| + 1/4 |1 - 0.7| = 0.0375 + 0.2 + 0.075 = 0.3125
    # Brier rows: 2*0.1^2, 2*0.8^2, 2*0.3^2, 2*0.05^2 = 0.02, 1.28, 0.18, 0.005 -> mean 0.37125
    p1 = np.array([0.9, 0.8, 0.3, 0.95])
    probs = np.column_stack([1 - p1, p1])
    out = probability_calibration(probs, np.array([1.0, 0, 0, 1]), [0, 1])
    assert out["ece"] == pytest.approx(0.3125, abs=TOL)
    assert out["brier"] == pytest.approx(0.37125, abs=TOL)
    assert [(b["bin_low"], b["count"]) for b in out["reliability"]] == [
        (0.7, 1),
        (0.8, 1),
        (0.9, 2),
    ]
    assert out["reliability"][2]["mean_confidence"] == pytest.approx(0.925, abs=TOL)


def test_brier_is_twice_sklearns_binary_brier():
    rng = np.random.default_rng(9)
    p1 = rng.uniform(size=100)
    human = (rng.uniform(size=100) < p1).astype(float)
    out = probability_calibration(np.column_stack([1 - p1, p1]), human, [0, 1])
    assert out["brier"] == pytest.approx(2 * brier_score_loss(human, p1), abs=TOL)


def test_probability_calibration_drops_nan_rows_and_handles_empty_input():
    probs = np.array([[0.2, 0.8], [NAN, NAN], [0.5, 0.5]])
    out = probability_calibration(probs, np.array([1.0, 1, NAN]), [0, 1])
    assert (out["n_rows"], out["n_dropped"]) == (1, 2)
    # the one row: conf 0.8 correct -> ECE 0.2; Brier 0.2^2 + 0.2^2 = 0.08
    assert out["ece"] == pytest.approx(0.2, abs=TOL)
    assert out["brier"] == pytest.approx(0.08, abs=TOL)
    empty = probability_calibration(np.zeros((0, 2)), np.zeros(0), [0, 1])
    assert math.isnan(empty["ece"]) and math.isnan(empty["brier"]) and empty["reason"]


def test_a_perfectly_confident_right_judge_scores_zero():
    probs = np.eye(3)[[0, 2, 1, 1]]  # constant confidence 1.0, all right
    out = probability_calibration(probs, np.array([1.0, 3, 2, 2]), [1, 2, 3])
    assert out["ece"] == 0 and out["brier"] == 0
    assert out["reliability"] == [
        {"bin_low": 0.9, "bin_high": 1.0, "count": 4, "mean_confidence": 1.0, "accuracy": 1.0}
    ]


def test_probability_calibration_rejects_rows_that_are_not_distributions():
    with pytest.raises(ValueError, match="distribution"):
        probability_calibration(np.array([[0.5, 0.6]]), np.array([1.0]), [0, 1])


def test_ordinal_on_separable_data_is_a_monotone_step_without_warnings():
    # judge 1, 2 -> human 1; judge 3, 4 -> human 2: the slope's MLE is infinite; the fitted map
    # still sends the judge's low scores near 1 and high scores near 2, monotone in between
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cmap = fit_calibration(
            np.array([1.0, 2, 3, 4]),
            np.array([1.0, 1, 2, 2]),
            method="ordinal",
            minimum=1,
            maximum=5,
        )
    out = cmap.apply(np.array([1.0, 2.5, 4]))
    assert out[0] == pytest.approx(1.0, abs=1e-3) and out[2] == pytest.approx(2.0, abs=1e-3)
    assert out[0] < out[1] < out[2]
