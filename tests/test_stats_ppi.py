"""Tests of judgekit.stats.ppi against ppi_py and scipy on fixed inputs, and PPI's coverage."""

from __future__ import annotations

import math

import numpy as np
import ppi_py
import pytest
from scipy import stats as sps

from judgekit.stats import ppi
from judgekit.stats.ppi import (
    b_win_indicator,
    human_mean,
    labels_needed,
    naive_judge_mean,
    ppi_by_system,
    ppi_mean,
)

NAN = math.nan
TOL = 1e-12


def simulated(n: int, big_n: int, seed: int, bias: float = 0.5):
    """Human scores ~ N(3, 1); the judge is human + bias + N(0, 0.5) noise."""
    rng = np.random.default_rng(seed)
    human = rng.normal(3, 1, n + big_n)
    judge = human + bias + rng.normal(0, 0.5, n + big_n)
    return human[:n], judge[:n], judge[n:], human


def test_all_names_are_public():
    assert set(ppi.__all__) == {
        "MeanEstimate",
        "SystemEstimates",
        "b_win_indicator",
        "human_mean",
        "labels_needed",
        "naive_judge_mean",
        "ppi_by_system",
        "ppi_mean",
    }


def test_ppi_mean_equals_ppi_py():
    y, yhat, unl, _ = simulated(80, 1000, seed=1)
    est = ppi_mean(y, yhat, unl, confidence=0.9)
    low, high = ppi_py.ppi_mean_ci(y, yhat, unl, alpha=0.1)
    value = ppi_py.ppi_mean_pointestimate(y, yhat, unl)
    assert est.value == pytest.approx(float(value[0]), abs=TOL)
    assert (est.ci_low, est.ci_high) == pytest.approx((float(low[0]), float(high[0])), abs=TOL)
    assert (est.n_labelled, est.n_unlabelled, est.n_dropped, est.reason) == (80, 1000, 0, None)


def test_tuned_lam_reproduces_the_library_interval():
    y, yhat, unl, _ = simulated(60, 500, seed=2)
    est = ppi_mean(y, yhat, unl)
    assert 0 < est.lam <= 1
    low, high = ppi_py.ppi_mean_ci(y, yhat, unl, alpha=0.05, lam=est.lam)
    assert (est.ci_low, est.ci_high) == pytest.approx((float(low[0]), float(high[0])), abs=TOL)
    # the closed form for a mean: lam = cov(Y, Yhat) / ((1 + n/N) var(Yhat over all N + n))
    cov = np.mean((y - y.mean()) * (yhat - yhat.mean()))
    closed = cov / ((1 + 60 / 500) * np.var(np.concatenate([yhat, unl]), ddof=1))
    assert est.lam == pytest.approx(min(closed, 1.0), abs=1e-9)


def test_ppi_mean_drops_nan_rows_and_counts_them():
    y, yhat, unl, _ = simulated(50, 300, seed=3)
    y2, yhat2, unl2 = y.copy(), yhat.copy(), unl.copy()
    y2[0], yhat2[1], unl2[2] = NAN, NAN, NAN
    est = ppi_mean(y2, yhat2, unl2)
    ref = ppi_mean(y[2:], yhat[2:], np.delete(unl, 2))
    assert (est.n_labelled, est.n_unlabelled, est.n_dropped) == (48, 299, 3)
    assert est.value == pytest.approx(ref.value, abs=TOL)


def test_ppi_mean_is_nan_with_a_reason_on_empty_input():
    est = ppi_mean(np.zeros(0), np.zeros(0), np.ones(10))
    assert math.isnan(est.value) and math.isnan(est.ci_low) and "labelled" in (est.reason or "")


def test_a_perfect_judge_gives_the_judge_mean_on_all_items():
    # Yhat = Y: lam = cov/((1 + n/N) var) = 1/(1 + 10/90) ~ 0.9, and
    # estimate = lam * mean(Yhat_unl) + mean(Y - lam Y) = the mean of all 100 values when the
    # labelled and unlabelled means are equal (here both 3.0)
    y = np.tile([2.0, 4.0], 5)
    unl = np.tile([1.0, 5.0, 3.0], 30)
    est = ppi_mean(y, y, unl)
    assert est.value == pytest.approx(3.0, abs=1e-12)


def test_naive_and_human_means_are_t_intervals():
    x = np.array([1.0, 2, 4, NAN, 5])
    est = naive_judge_mean(x, confidence=0.9)
    # mean 3, sem = sd / sqrt(4) = sqrt(10/3) / 2
    low, high = sps.t.interval(0.9, 3, loc=3.0, scale=math.sqrt(10 / 3) / 2)
    assert (est.value, est.ci_low, est.ci_high) == pytest.approx((3.0, low, high), abs=TOL)
    assert (est.n_unlabelled, est.n_dropped) == (4, 1)
    hum = human_mean(x, confidence=0.9)
    assert (hum.method, hum.n_labelled, hum.value) == ("human_only", 4, 3.0)


def test_t_means_on_constant_and_empty_input():
    const = human_mean(np.full(5, 2.0))
    assert (const.value, const.ci_low, const.ci_high) == (2.0, 2.0, 2.0)
    empty = naive_judge_mean(np.array([NAN]))
    assert math.isnan(empty.value) and empty.reason and empty.n_dropped == 1


def test_labels_needed_at_the_current_width_is_about_the_current_n():
    y, yhat, unl, _ = simulated(100, 2000, seed=4)
    est = ppi_mean(y, yhat, unl)
    width = est.ci_high - est.ci_low
    # var(Yhat) is measured on the labelled slice only, so lam differs slightly: 5 % tolerance
    assert labels_needed(y, yhat, 2000, width) == pytest.approx(100, rel=0.05)
    # half the width needs about four times the labels (the floor lam^2 var/N is small here)
    assert labels_needed(y, yhat, 2000, width / 2) > 300


def test_labels_needed_hand_arithmetic():
    # Y = Yhat = (0, 2): cov = 1, var(Yhat) = 1, n = 2, N = 2 -> lam = 1 / (2 * 1) = 0.5
    # var(Y - 0.5 Yhat) = var(0, 1) = 0.25; z = 1.959964; width 2 -> half = 1/z, half^2 = 0.260318
    # room = 0.260318 - 0.25 * 1 / 2 = 0.135318; n = 0.25 / 0.135318 = 1.85 -> 2
    assert labels_needed(np.array([0.0, 2]), np.array([0.0, 2]), 2, 2.0) == 2.0
    # width 1: half^2 = 0.065080 < 0.125: unreachable by labels alone
    assert math.isnan(labels_needed(np.array([0.0, 2]), np.array([0.0, 2]), 2, 1.0))


def test_labels_needed_is_nan_when_it_cannot_be_measured():
    assert math.isnan(labels_needed(np.array([1.0]), np.array([1.0]), 100, 0.1))
    assert math.isnan(labels_needed(np.array([1.0, 2]), np.array([3.0, 3]), 100, 0.1))


def test_b_win_indicator_maps_verdicts_and_rejects_others():
    out = b_win_indicator(np.array([0.0, 0.5, 1.0, NAN]))
    np.testing.assert_array_equal(out[:3], [0.0, 0.5, 1.0])
    assert math.isnan(out[3])
    with pytest.raises(ValueError, match="0.5"):
        b_win_indicator(np.array([2.0]))


def test_win_rate_by_ppi_equals_ppi_py_on_indicators():
    rng = np.random.default_rng(5)
    human = rng.choice([0.0, 0.5, 1.0], 400, p=[0.3, 0.1, 0.6])
    judge = np.where(rng.uniform(size=400) < 0.8, human, 1.0)  # leans to B
    h, j = b_win_indicator(human), b_win_indicator(judge)
    est = ppi_mean(h[:60], j[:60], j[60:])
    assert est.value == pytest.approx(
        float(ppi_py.ppi_mean_pointestimate(h[:60], j[:60], j[60:])[0]), abs=TOL
    )


def test_ppi_by_system_ranks_systems_on_the_human_scale():
    rng = np.random.default_rng(6)
    systems = np.repeat(["a", "b", "c"], 300)
    human = np.concatenate([rng.normal(m, 0.5, 300) for m in (2.0, 4.0, 3.0)])
    judge = human + rng.normal(0, 0.3, 900)
    human[rng.uniform(size=900) > 0.2] = NAN  # about 20 % labelled
    out = ppi_by_system(human, judge, systems)
    assert out.ranking == ["b", "c", "a"]
    rows = systems == "a"
    labelled = rows & np.isfinite(human)
    ref = ppi_mean(human[labelled], judge[labelled], judge[rows & ~np.isfinite(human)])
    assert out.estimates["a"] == ref


@pytest.mark.slow
def test_ppi_interval_covers_the_true_mean_and_the_naive_one_does_not():
    covered_ppi = covered_naive = 0
    for seed in range(500):
        y, yhat, unl, _ = simulated(100, 2000, seed=seed, bias=0.3)
        true_mean = 3.0
        est = ppi_mean(y, yhat, unl)
        naive = naive_judge_mean(np.concatenate([yhat, unl]))
        covered_ppi += est.ci_low <= true_mean <= est.ci_high
        covered_naive += naive.ci_low <= true_mean <= naive.ci_high
    print(f"coverage over 500: PPI++ {covered_ppi / 500:.3f}, judge-only {covered_naive / 500:.3f}")
    assert covered_ppi / 500 >= 0.93
    assert covered_naive / 500 <= 0.10


def test_a_constant_judge_gives_the_labelled_human_mean():
    # the judge terms cancel: lam * 2 + mean(Y - lam * 2) = mean(Y) = 2 for any lam;
    # the interval is mean(Y) +- z * sd_pop(Y) / sqrt(3) = 2 +- 1.959964 * sqrt(2/3) / sqrt(3)
    est = ppi_mean(np.array([1.0, 2, 3]), np.full(3, 2.0), np.full(10, 2.0))
    half = sps.norm.ppf(0.975) * math.sqrt(2 / 3) / math.sqrt(3)
    assert (est.value, est.lam, est.reason) == (2.0, 0.0, None)
    assert (est.ci_low, est.ci_high) == pytest.approx((2 - half, 2 + half), abs=1e-12)


def test_constant_human_labels_give_a_zero_width_interval():
    est = ppi_mean(np.full(3, 2.0), np.array([1.0, 2, 3]), np.array([1.0, 2, 3, 2, 1]))
    assert (est.value, est.ci_low, est.ci_high, est.lam) == (2.0, 2.0, 2.0, 0.0)
