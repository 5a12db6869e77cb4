"""Tests of judgekit.stats.pointwise and judgekit.stats.bootstrap; hand arithmetic is shown in comments."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import stats as sps

from judgekit.stats import bootstrap as stats_bootstrap
from judgekit.stats import pointwise as stats
from judgekit.stats.bootstrap import bootstrap_ci, paired_comparison, table_statistics
from judgekit.stats.pointwise import (
    STATISTICS,
    JudgekitStatsWarning,
    aggregate,
    agreement,
    krippendorff_alpha,
    percentiles,
)

NAN = math.nan
TOL = 1e-12
COUNT_KEYS = ["n_total", "n_failed", "n_scored", "coverage"]


def noisy_pairs(n: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Human 0..4 scores and a judge that is the human score plus rounded noise, clipped."""
    rng = np.random.default_rng(seed)
    human = rng.integers(0, 5, n).astype(float)
    judge = np.clip(np.round(human + rng.normal(0, noise, n)), 0, 4)
    return human, judge


def contingency(human: np.ndarray, judge: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """The (1, L, L) table of human level x judge level counts."""
    table = np.zeros((1, levels.size, levels.size))
    np.add.at(table[0], (np.searchsorted(levels, human), np.searchsorted(levels, judge)), 1)
    return table


# --- agreement: every statistic by hand --------------------------------------------------------

# Six rows; row 5 has no human label, row 6 a failed judge call. Scored pairs are rows 1-4:
#   human 1 2 3 4   judge 1 3 2 4
HUMAN = np.array([1, 2, 3, 4, NAN, 2])
JUDGE = np.array([1, 3, 2, 4, 3, NAN])


def test_agreement_returns_exactly_the_documented_keys():
    result = agreement(HUMAN, JUDGE, minimum=1, maximum=5)
    assert list(result) == COUNT_KEYS + list(STATISTICS)


def test_agreement_counts_failed_and_unlabelled_rows():
    result = agreement(HUMAN, JUDGE, minimum=1, maximum=5)
    assert result["n_total"] == 6
    assert result["n_failed"] == 1  # row 6: judge NaN
    assert result["n_scored"] == 4  # rows 5 (no human) and 6 (no judge) are left out
    assert result["coverage"] == pytest.approx(5 / 6, abs=TOL)  # judge finite on 5 of 6 rows


def test_agreement_correlations_by_hand():
    result = agreement(HUMAN, JUDGE, minimum=1, maximum=5)
    # Both means are 2.5; deviations h: -1.5 -0.5 0.5 1.5, j: -1.5 0.5 -0.5 1.5.
    # sum(dh*dj) = 2.25 - 0.25 - 0.25 + 2.25 = 4; sum(dh^2) = sum(dj^2) = 5 -> r = 4/5.
    assert result["pearson"] == pytest.approx(0.8, abs=TOL)
    # No ties, so the ranks are the values themselves: spearman = pearson = 0.8.
    assert result["spearman"] == pytest.approx(0.8, abs=TOL)
    # 6 pairs of rows; only rows (2, 3) are discordant (h rises 2->3, j falls 3->2):
    # tau = (5 - 1) / 6.
    assert result["kendall"] == pytest.approx(4 / 6, abs=TOL)


def test_agreement_errors_and_level_agreement_by_hand():
    result = agreement(HUMAN, JUDGE, minimum=1, maximum=5)
    # |j - h| = 0 1 1 0
    assert result["mae"] == pytest.approx(2 / 4, abs=TOL)
    assert result["rmse"] == pytest.approx(math.sqrt(2 / 4), abs=TOL)
    assert result["exact_agreement"] == pytest.approx(2 / 4, abs=TOL)
    assert result["within1_agreement"] == pytest.approx(4 / 4, abs=TOL)
    # means 2.5; sum of squared deviations 5 over n - 1 = 3
    for who in ("judge", "human"):
        assert result[f"{who}_mean"] == pytest.approx(2.5, abs=TOL)
        assert result[f"{who}_std"] == pytest.approx(math.sqrt(5 / 3), abs=TOL)


def test_agreement_qwk_by_hand():
    result = agreement(HUMAN, JUDGE, minimum=1, maximum=5)
    # Scale 1..5 (K = 5), weights (i - j)^2 / 16. Observed: (1,1) (2,3) (3,2) (4,4), 1/4 each:
    #   sum w*O = (0 + 1 + 1 + 0) / 16 / 4 = 1/32.
    # Expected = outer of the marginals, 1/4 on each of 1..4 for both: 1/16 per cell of 1..4,
    #   sum over i, j in 1..4 of (i - j)^2 = 2 * (3*1 + 2*4 + 1*9) = 40 -> sum w*E = 40/256.
    # qwk = 1 - (8/256) / (40/256) = 0.8
    assert result["qwk"] == pytest.approx(0.8, abs=TOL)


def test_agreement_krippendorff_alpha_by_hand():
    result = agreement(HUMAN, JUDGE, minimum=1, maximum=5)
    # Interval: D_o = mean (h - j)^2 = 2/4. Pooled values 1 2 3 4 1 3 2 4: mean 2.5, squared
    # deviations sum to 10, N = 8 -> D_e = 2 * 10 / 7. alpha = 1 - 0.5 * 7 / 20 = 0.825.
    assert result["krippendorff_alpha_interval"] == pytest.approx(0.825, abs=TOL)
    # Ordinal: each value appears twice, midranks 1.5 3.5 5.5 7.5 are equally spaced, so the
    # same as interval here (the next test has unequal frequencies).
    assert result["krippendorff_alpha_ordinal"] == pytest.approx(0.825, abs=TOL)


def test_krippendorff_alpha_ordinal_and_interval_differ_by_hand():
    human, judge = np.array([1, 1, 2, 3]), np.array([1, 2, 2, 3])
    # Pooled values 1 1 2 3 1 2 2 3: n_1 = 3, n_2 = 3, n_3 = 2, N = 8.
    # Ordinal delta(c, k) = sum_{g=c..k} n_g - (n_c + n_k) / 2:
    #   delta(1,2) = 6 - 3 = 3, delta(2,3) = 5 - 2.5 = 2.5, delta(1,3) = 8 - 2.5 = 5.5.
    # D_o = mean over units of delta^2 = (0 + 9 + 0 + 0) / 4 = 2.25.
    # D_e = 2 * (n1*n2*9 + n2*n3*6.25 + n1*n3*30.25) / (N (N - 1)) = 2 * 300 / 56.
    # alpha = 1 - 2.25 * 56 / 600 = 0.79
    ordinal = krippendorff_alpha(human, judge, level="ordinal", minimum=1, maximum=3)
    assert ordinal == pytest.approx(0.79, abs=TOL)
    # Interval: D_o = 1/4. Pooled mean 15/8, squared deviations 33 - 8 * (15/8)^2 = 4.875,
    # D_e = 2 * 4.875 / 7. alpha = 1 - 0.25 * 7 / 9.75 = 1 - 1.75 / 9.75
    interval = krippendorff_alpha(human, judge, level="interval", minimum=1, maximum=3)
    assert interval == pytest.approx(1 - 1.75 / 9.75, abs=TOL)


def coincidence_alpha(human: np.ndarray, judge: np.ndarray, level: str) -> float:
    """Textbook alpha (Krippendorff 2011): coincidence matrix and the metric's delta^2."""
    values = np.unique(np.concatenate([human, judge]))
    index = {v: i for i, v in enumerate(values)}
    o = np.zeros((values.size, values.size))
    for h, j in zip(human, judge, strict=True):  # each unit adds (h, j) and (j, h), m_u - 1 = 1
        o[index[h], index[j]] += 1
        o[index[j], index[h]] += 1
    n_c = o.sum(axis=1)
    delta2 = np.zeros_like(o)
    for c in range(values.size):
        for k in range(values.size):
            if level == "interval":
                delta2[c, k] = (values[c] - values[k]) ** 2
            else:
                lo, hi = min(c, k), max(c, k)
                delta2[c, k] = (n_c[lo : hi + 1].sum() - (n_c[c] + n_c[k]) / 2) ** 2
    total = n_c.sum()
    return 1 - (total - 1) * (o * delta2).sum() / (np.outer(n_c, n_c) * delta2).sum()


@pytest.mark.parametrize("level", ["ordinal", "interval"])
def test_krippendorff_alpha_matches_the_coincidence_matrix_definition(level):
    rng = np.random.default_rng(7)
    human = rng.integers(1, 6, 40).astype(float)
    judge = np.clip(human + rng.integers(-2, 3, 40), 1, 5)
    expected = coincidence_alpha(human, judge, level)
    assert krippendorff_alpha(human, judge, level=level) == pytest.approx(expected, abs=1e-12)


def test_krippendorff_alpha_rejects_an_unknown_level():
    with pytest.raises(ValueError, match="level"):
        krippendorff_alpha(HUMAN, JUDGE, level="nominal")  # type: ignore[arg-type]


# --- qwk over the declared range ----------------------------------------------------------------


def test_qwk_uses_the_declared_range_including_an_unused_middle_level():
    # Scale 0..4; nobody used 2. Pairs (0,1) (1,0) (3,4) (4,3).
    human, judge = np.array([0, 1, 3, 4.0]), np.array([1, 0, 4, 3.0])
    # Declared range: observed sum (i-j)^2 * O = 4 * 1 / 4 = 1. Marginals 1/4 on 0 1 3 4 each:
    #   sum over those of (i-j)^2 = 2 * (1 + 9 + 16 + 4 + 9 + 1) = 80 -> expected = 80/16 = 5.
    #   qwk = 1 - 1/5 = 0.8
    # Labels seen only re-indexes 0 1 3 4 as 0 1 2 3: observed still 1, expected
    #   2 * (1 + 4 + 9 + 1 + 4 + 1) / 16 = 2.5 -> qwk = 1 - 1/2.5 = 0.6
    declared = agreement(human, judge, minimum=0, maximum=4)["qwk"]
    assert declared == pytest.approx(0.8, abs=TOL)
    seen_only = agreement(np.array([0, 1, 2, 3.0]), np.array([1, 0, 3, 2.0]), minimum=0, maximum=3)
    assert seen_only["qwk"] == pytest.approx(0.6, abs=TOL)
    # An unused level at the END changes nothing: quadratic weights depend on distances only.
    assert agreement(human, judge, minimum=0, maximum=6)["qwk"] == pytest.approx(0.8, abs=TOL)


def test_qwk_is_nan_for_a_non_integer_range_without_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = agreement(HUMAN / 5, JUDGE / 5, minimum=0.0, maximum=1.5)
    assert math.isnan(result["qwk"])
    assert result["pearson"] == pytest.approx(0.8, abs=TOL)  # scale-free


def test_qwk_is_nan_with_a_warning_for_scores_outside_the_range():
    with pytest.warns(JudgekitStatsWarning, match="outside the declared range"):
        result = agreement(np.array([0, 1, 5.0]), np.array([0, 1, 4.0]), minimum=0, maximum=4)
    assert math.isnan(result["qwk"])
    assert result["pearson"] == pytest.approx(sps.pearsonr([0, 1, 5], [0, 1, 4]).statistic)


def test_rounding_to_levels_is_half_up():
    # 2.5 -> 3 (numpy's round would give 2); 1.4 -> 1
    human, judge = np.array([2.5, 1.4, 0.0]), np.array([3.0, 1.0, 0.0])
    assert agreement(human, judge, minimum=0, maximum=4)["exact_agreement"] == 1.0


# --- undefined statistics, empty input ---------------------------------------------------------


def test_constant_judge_gives_nan_correlations_with_one_warning_and_no_scipy_warning():
    human, judge = np.array([1, 2, 3, 4.0]), np.array([3, 3, 3, 3.0])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = agreement(human, judge, minimum=1, maximum=5)
    assert [w.category for w in caught] == [JudgekitStatsWarning]
    assert "judge scores are all 3" in str(caught[0].message)
    assert caught[0].filename == __file__  # points at the caller, not into judgekit
    for name in ("pearson", "spearman", "kendall"):
        assert math.isnan(result[name])
    # qwk is still defined: expected disagreement > 0 because the human varies. Observed
    # (i - j)^2 = 4 1 0 1 -> 6/4; expected = mean over humans of (h - 3)^2 = 6/4 too -> 0.
    assert result["qwk"] == pytest.approx(0.0, abs=TOL)
    assert result["mae"] == pytest.approx(1.0, abs=TOL)  # |3-1| |3-2| 0 |3-4|


def test_both_raters_constant_and_equal_gives_nan_kappa_and_alpha():
    # No expected disagreement at all: qwk and alpha are 0/0, reported NaN with a warning.
    with pytest.warns(JudgekitStatsWarning, match="human scores are all 2 and judge"):
        result = agreement(np.full(3, 2.0), np.full(3, 2.0), minimum=0, maximum=4)
    for name in ("qwk", "krippendorff_alpha_ordinal", "krippendorff_alpha_interval", "pearson"):
        assert math.isnan(result[name])
    assert result["exact_agreement"] == 1.0
    assert result["mae"] == 0.0


def test_both_raters_constant_but_different_gives_zero_kappa():
    # Observed = expected = everything in cell (2, 3): qwk = 1 - 1 = 0.
    with pytest.warns(JudgekitStatsWarning, match="pearson, spearman, kendall undefined"):
        result = agreement(np.full(3, 2.0), np.full(3, 3.0), minimum=0, maximum=4)
    assert result["qwk"] == pytest.approx(0.0, abs=TOL)


@pytest.mark.parametrize("n_rows", [0, 3])
def test_no_scored_rows_gives_nan_statistics_and_correct_counts(n_rows):
    human, judge = np.full(n_rows, NAN), np.arange(n_rows, dtype=float)
    with pytest.warns(JudgekitStatsWarning, match="no row has both"):
        result = agreement(human, judge, minimum=0, maximum=4)
    assert result["n_total"] == n_rows
    assert result["n_failed"] == 0
    assert result["n_scored"] == 0
    if n_rows:
        assert result["coverage"] == 1.0
    else:
        assert math.isnan(result["coverage"])
    assert all(math.isnan(result[name]) for name in STATISTICS)


def test_misaligned_arrays_are_rejected():
    with pytest.raises(ValueError, match="aligned"):
        agreement(np.ones(3), np.ones(4), minimum=0, maximum=4)


# --- aggregate and percentiles ------------------------------------------------------------------


def test_aggregate_by_hand_on_an_integer_range():
    result = aggregate(np.array([0, 1, 1, 4, NAN]), minimum=0, maximum=4)
    assert result["count"] == 4
    assert result["n_failed"] == 1
    assert result["mean"] == pytest.approx(1.5, abs=TOL)
    # deviations -1.5 -0.5 -0.5 2.5: squares sum to 9, / (4 - 1) = 3
    assert result["std"] == pytest.approx(math.sqrt(3), abs=TOL)
    assert (result["min"], result["max"]) == (0.0, 4.0)
    # sorted 0 1 1 4, linear interpolation at position q/100 * 3:
    # p25 at 0.75 -> 0.75; p50 at 1.5 -> 1; p75 at 2.25 -> 1 + 0.25*3; p90 at 2.7 -> 1 + 0.7*3
    assert result["p25"] == pytest.approx(0.75, abs=TOL)
    assert result["p50"] == pytest.approx(1.0, abs=TOL)
    assert result["p75"] == pytest.approx(1.75, abs=TOL)
    assert result["p90"] == pytest.approx(3.1, abs=TOL)
    assert result["histogram"] == {"0": 1, "1": 2, "2": 0, "3": 0, "4": 1}


def test_aggregate_uses_ten_bins_for_scores_that_are_not_whole_levels():
    # 0..1 is an integer range, but 0.05 is not a level: counting levels would lose it.
    result = aggregate(np.array([0.05, 0.55, 0.95]), minimum=0.0, maximum=1.0)
    assert result["histogram"]["edges"] == pytest.approx(np.linspace(0, 1, 11).tolist())
    assert result["histogram"]["counts"] == [1, 0, 0, 0, 0, 1, 0, 0, 0, 1]


def test_aggregate_warns_about_levels_outside_the_range():
    with pytest.warns(JudgekitStatsWarning, match="outside 0..2"):
        result = aggregate(np.array([0, 1, 3.0]), minimum=0, maximum=2)
    assert result["histogram"] == {"0": 1, "1": 1, "2": 0}


def test_aggregate_of_only_failures():
    result = aggregate(np.array([NAN, NAN]), minimum=1, maximum=3)
    assert (result["count"], result["n_failed"]) == (0, 2)
    assert all(math.isnan(result[k]) for k in ("mean", "std", "min", "max", "p50"))
    assert result["histogram"] == {"1": 0, "2": 0, "3": 0}


def test_percentiles_keys_follow_the_requested_levels():
    assert percentiles(np.array([1.0, 3.0, NAN]), qs=(2.5, 50)) == {"p2.5": 1.05, "p50": 2.0}


# --- the contingency-table path -----------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_table_path_agrees_with_scipy_and_agreement_on_one_resample(seed):
    rng = np.random.default_rng(seed)
    human, judge = noisy_pairs(80, 1.2, seed)
    rows = rng.integers(0, 80, 80)  # one bootstrap resample
    human, judge = human[rows], judge[rows]
    levels = np.arange(5.0)
    table = table_statistics(contingency(human, judge, levels), levels, minimum=0, maximum=4)
    assert table["pearson"][0] == pytest.approx(sps.pearsonr(human, judge).statistic, abs=1e-9)
    assert table["spearman"][0] == pytest.approx(sps.spearmanr(human, judge).statistic, abs=1e-9)
    assert table["kendall"][0] == pytest.approx(sps.kendalltau(human, judge).statistic, abs=1e-9)
    point = agreement(human, judge, minimum=0, maximum=4)
    for name in STATISTICS:
        assert table[name][0] == pytest.approx(point[name], abs=1e-9), name


def test_table_path_handles_unevenly_spaced_levels():
    # Averaged human labels (x.5) and a judge on 0..4: 8 distinct levels.
    rng = np.random.default_rng(5)
    human = rng.integers(0, 9, 50) / 2
    judge = np.clip(np.round(human + rng.normal(0, 1, 50)), 0, 4)
    levels = np.unique(np.concatenate([human, judge]))
    table = table_statistics(contingency(human, judge, levels), levels, minimum=0, maximum=4)
    point = agreement(human, judge, minimum=0, maximum=4)
    for name in STATISTICS:
        assert table[name][0] == pytest.approx(point[name], abs=1e-9), name


# --- bootstrap ----------------------------------------------------------------------------------


def test_bootstrap_intervals_contain_the_point_estimates():
    human, judge = noisy_pairs(300, 0.8, seed=11)
    point = agreement(human, judge, minimum=0, maximum=4)
    result = bootstrap_ci(human, judge, minimum=0, maximum=4, resamples=500)
    assert (result.scheme, result.resamples, result.confidence) == ("rows", 500, 0.95)
    assert list(result.intervals) == list(STATISTICS)
    for name, (low, high) in result.intervals.items():
        assert low <= point[name] <= high, name
        assert result.valid[name] == 500


def test_bootstrap_is_reproducible_with_a_seed():
    human, judge = noisy_pairs(100, 1.0, seed=12)
    first = bootstrap_ci(human, judge, minimum=0, maximum=4, resamples=200, seed=3)
    again = bootstrap_ci(human, judge, minimum=0, maximum=4, resamples=200, seed=3)
    other = bootstrap_ci(human, judge, minimum=0, maximum=4, resamples=200, seed=4)
    assert first == again
    assert first.intervals["pearson"] != other.intervals["pearson"]


def test_clustered_bootstrap_resamples_whole_clusters():
    # Each of 60 prompts has 4 identical rows: 240 rows but only 60 independent units, so the
    # clustered interval is about sqrt(4) = 2 times wider than the one treating rows as units.
    human, judge = noisy_pairs(60, 1.0, seed=13)
    human, judge, prompt = np.repeat(human, 4), np.repeat(judge, 4), np.repeat(np.arange(60), 4)
    rows = bootstrap_ci(human, judge, minimum=0, maximum=4, resamples=400)
    clusters = bootstrap_ci(human, judge, minimum=0, maximum=4, resamples=400, clusters=prompt)
    assert clusters.scheme == "clusters"

    def width(result, name):
        return result.intervals[name][1] - result.intervals[name][0]

    for name in ("pearson", "mae", "qwk"):
        assert 1.5 < width(clusters, name) / width(rows, name) < 2.5, name


def test_bootstrap_drops_undefined_resamples_and_gives_nan_below_half():
    # 20 rows; the human varies only on row 0, the judge only on row 1. Pearson is defined in a
    # resample only if it drew both rows: 1 - 2 (19/20)^20 + (18/20)^20 = 0.40 < 1/2.
    human, judge = np.zeros(20), np.zeros(20)
    human[0], judge[1] = 1.0, 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # undefined resamples are dropped silently
        result = bootstrap_ci(human, judge, minimum=0, maximum=4, resamples=1000)
    assert 350 < result.valid["pearson"] < 450
    assert all(math.isnan(x) for x in result.intervals["pearson"])
    assert result.valid["mae"] == 1000
    assert not math.isnan(result.intervals["mae"][0])


def test_bootstrap_of_empty_input_is_nan():
    result = bootstrap_ci(np.array([NAN]), np.array([1.0]), minimum=0, maximum=4, resamples=10)
    assert all(math.isnan(low) and math.isnan(high) for low, high in result.intervals.values())
    assert set(result.valid.values()) == {0}


def test_continuous_scores_take_the_row_by_row_path_and_agree_with_the_table_path(monkeypatch):
    human, judge = noisy_pairs(60, 1.0, seed=14)
    fast = bootstrap_ci(human, judge, minimum=0, maximum=4, resamples=400)
    monkeypatch.setattr(stats_bootstrap, "MAX_LEVELS", 0)
    slow = bootstrap_ci(human, judge, minimum=0, maximum=4, resamples=400)
    # Same bootstrap distribution, different random draws: endpoints differ by Monte Carlo
    # error only (a few hundredths with 400 resamples).
    for name in ("pearson", "spearman", "kendall", "qwk", "mae"):
        assert fast.intervals[name] == pytest.approx(slow.intervals[name], abs=0.06), name


def test_bootstrap_rejects_settings_that_cannot_work():
    with pytest.raises(ValueError, match="resamples"):
        bootstrap_ci(HUMAN, JUDGE, minimum=1, maximum=5, resamples=0)
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ci(HUMAN, JUDGE, minimum=1, maximum=5, confidence=95)
    with pytest.raises(ValueError, match="clusters"):
        bootstrap_ci(HUMAN, JUDGE, minimum=1, maximum=5, clusters=np.arange(3))


# --- paired comparison --------------------------------------------------------------------------


def test_paired_comparison_finds_a_judge_that_is_much_better():
    human, judge_a = noisy_pairs(300, 1.5, seed=21)
    judge_b = noisy_pairs(300, 0.4, seed=21)[1]  # same humans, much less noise
    judge_a[:5], judge_b[5:8], human[8] = NAN, NAN, NAN
    rows = paired_comparison(human, judge_a, judge_b, minimum=0, maximum=4, resamples=500)
    assert {r["statistic"] for r in rows} == set(stats_bootstrap.COMPARABLE)
    for row in rows:
        assert (row["n_common"], row["n_dropped"]) == (291, 9)  # 5 + 3 + 1 rows dropped
        assert row["verdict"] == "better", row
        assert row["p_value"] < 0.05
        assert row["difference"] == pytest.approx(row["b"] - row["a"], abs=TOL)
    mae = next(r for r in rows if r["statistic"] == "mae")
    assert mae["difference"] < 0  # lower mae is the better direction


def test_paired_comparison_finds_no_difference_between_equally_noisy_judges():
    human, judge_a = noisy_pairs(300, 1.0, seed=22)
    fresh_noise = np.random.default_rng(23).normal(0, 1.0, 300)  # same size as judge_a's
    judge_b = np.clip(np.round(human + fresh_noise), 0, 4)
    rows = paired_comparison(human, judge_a, judge_b, minimum=0, maximum=4, resamples=500)
    for row in rows:
        assert row["verdict"] == "no detectable difference", row
        assert row["ci_low"] <= 0 <= row["ci_high"]
        assert row["p_value"] > 0.05


def test_paired_comparison_of_identical_judges():
    human, judge = noisy_pairs(50, 1.0, seed=24)
    rows = paired_comparison(
        human, judge, judge.copy(), minimum=0, maximum=4, resamples=100, statistics=["qwk"]
    )
    assert len(rows) == 1
    assert (rows[0]["difference"], rows[0]["ci_low"], rows[0]["ci_high"]) == (0.0, 0.0, 0.0)
    assert rows[0]["p_value"] == 1.0
    assert rows[0]["verdict"] == "no detectable difference"


def test_paired_comparison_with_clusters_and_unknown_statistics():
    human, judge = noisy_pairs(40, 1.0, seed=25)
    rows = paired_comparison(
        human, judge, judge, minimum=0, maximum=4, resamples=50, clusters=np.arange(40) // 2
    )
    assert {r["scheme"] for r in rows} == {"clusters"}
    with pytest.raises(ValueError, match="judge_mean"):
        paired_comparison(human, judge, judge, minimum=0, maximum=4, statistics=["judge_mean"])


# --- public API ---------------------------------------------------------------------------------


@pytest.mark.parametrize("module", [stats, stats_bootstrap])
def test_all_names_exist(module):
    assert all(hasattr(module, name) for name in module.__all__)
