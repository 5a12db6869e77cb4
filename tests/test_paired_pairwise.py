"""Paired comparison of two pairwise (preference) judges: points by hand and by scikit-learn."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from judgekit.stats.bootstrap import paired_comparison
from judgekit.stats.pairwise import PAIRED_PAIRWISE_STATISTICS, paired_pairwise_comparison

VERDICTS = np.array([0.0, 0.5, 1.0])


def _judges(n: int = 200, seed: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Human verdicts, judge a agreeing on ~50% of rows and judge b on ~90% (else random)."""
    rng = np.random.default_rng(seed)
    human = rng.choice(VERDICTS, n)
    a = np.where(rng.random(n) < 0.5, human, rng.choice(VERDICTS, n))
    b = np.where(rng.random(n) < 0.9, human, rng.choice(VERDICTS, n))
    return human, a, b


def _accuracy(h: np.ndarray, j: np.ndarray) -> float:
    """Agreement on rows where neither says tie (the module docstring's ``accuracy``)."""
    decided = (h != 0.5) & (j != 0.5)
    return float(np.mean(h[decided] == j[decided]))


def _reference(h: np.ndarray, j: np.ndarray) -> dict[str, float]:
    return {
        "accuracy": _accuracy(h, j),
        "accuracy_with_ties": float(np.mean(h == j)),
        "kappa": float(cohen_kappa_score(h * 2, j * 2)),
    }


def _by_name(rows: list[dict]) -> dict[str, dict]:
    return {row["statistic"]: row for row in rows}


def test_points_match_numpy_and_scikit_learn_on_the_common_rows() -> None:
    human, a, b = _judges()
    human[:5], a[5:8], b[8:10] = math.nan, math.nan, math.nan  # 10 rows lack one of the three
    rows = _by_name(paired_pairwise_comparison(human, a, b, resamples=200))
    common = np.isfinite(human) & np.isfinite(a) & np.isfinite(b)
    ref_a, ref_b = _reference(human[common], a[common]), _reference(human[common], b[common])
    for name in PAIRED_PAIRWISE_STATISTICS:
        row = rows[name]
        assert row["a"] == pytest.approx(ref_a[name], abs=1e-12)
        assert row["b"] == pytest.approx(ref_b[name], abs=1e-12)
        assert row["difference"] == pytest.approx(ref_b[name] - ref_a[name], abs=1e-12)
        assert row["ci_low"] <= row["difference"] <= row["ci_high"]
        assert (row["n_common"], row["n_dropped"], row["scheme"]) == (190, 10, "rows")


def test_by_hand_on_six_rows() -> None:
    # human A A B B tie B; a: A B B tie tie A; b: A A B B B B.
    # a: no-tie rows 0, 1, 2, 5 -> agrees on 0, 2 -> accuracy 2/4; with ties 0, 2, 4 -> 3/6.
    # b: no-tie rows 0, 1, 2, 3, 5 -> all agree -> 5/5; with ties 5/6 (row 4 tie vs B).
    human = np.array([0, 0, 1, 1, 0.5, 1])
    a = np.array([0, 1, 1, 0.5, 0.5, 0])
    b = np.array([0, 0, 1, 1, 1, 1])
    rows = _by_name(paired_pairwise_comparison(human, a, b, resamples=50))
    assert rows["accuracy"]["a"] == 0.5 and rows["accuracy"]["b"] == 1.0
    assert rows["accuracy_with_ties"]["a"] == 0.5
    assert rows["accuracy_with_ties"]["b"] == pytest.approx(5 / 6)
    # b's kappa: p_o = 5/6; margins human (A 2, tie 1, B 3), b (A 2, tie 0, B 4);
    # p_e = (2*2 + 1*0 + 3*4) / 36 = 16/36; kappa = (5/6 - 4/9) / (1 - 4/9) = 0.7.
    assert rows["kappa"]["b"] == pytest.approx(0.7)


def test_identical_judges_differ_by_nothing() -> None:
    human, a, _ = _judges()
    for row in paired_pairwise_comparison(human, a, a.copy(), resamples=300):
        assert row["difference"] == 0 and row["ci_low"] == 0 and row["ci_high"] == 0
        assert row["verdict"] == "no detectable difference" and row["p_value"] == 1


def test_a_clearly_better_judge_is_better() -> None:
    human, a, b = _judges()
    rows = paired_pairwise_comparison(human, a, b, resamples=1000, seed=7)
    for row in rows:
        assert row["verdict"] == "better" and row["p_value"] < 0.05 and row["ci_low"] > 0, row
    worse = paired_pairwise_comparison(human, b, a, resamples=1000, seed=7)
    assert {row["verdict"] for row in worse} == {"worse"}


def test_the_same_keys_as_paired_comparison() -> None:
    human, a, b = _judges(n=40)
    ours = paired_pairwise_comparison(human, a, b, resamples=20)
    theirs = paired_comparison(human, a, b, minimum=0, maximum=1, resamples=20)
    assert [list(row) for row in ours] == [list(theirs[0])] * 3


def test_clusters_are_resampled_when_given() -> None:
    human, a, b = _judges()
    clusters = np.arange(human.size) // 4  # four rows per prompt
    rows = paired_pairwise_comparison(human, a, b, resamples=300, clusters=clusters)
    assert {row["scheme"] for row in rows} == {"clusters"}
    plain = paired_pairwise_comparison(human, a, b, resamples=300)
    for row, same in zip(rows, plain, strict=True):
        assert row["difference"] == same["difference"]  # the point does not depend on the scheme
        assert row["ci_low"] <= row["difference"] <= row["ci_high"]
    with pytest.raises(ValueError, match="clusters: expected one id per row"):
        paired_pairwise_comparison(human, a, b, resamples=10, clusters=clusters[:5])


def test_the_interval_agrees_with_a_naive_index_bootstrap() -> None:
    human, a, b = _judges(n=300, seed=11)
    rows = _by_name(paired_pairwise_comparison(human, a, b, resamples=2000, seed=1))
    rng = np.random.default_rng(99)
    naive: dict[str, list[float]] = {name: [] for name in PAIRED_PAIRWISE_STATISTICS}
    for _ in range(2000):
        i = rng.integers(0, human.size, human.size)
        ref_a, ref_b = _reference(human[i], a[i]), _reference(human[i], b[i])
        for name in naive:
            naive[name].append(ref_b[name] - ref_a[name])
    for name, values in naive.items():
        low, high = np.quantile(values, [0.025, 0.975])
        assert rows[name]["ci_low"] == pytest.approx(low, abs=0.02), name
        assert rows[name]["ci_high"] == pytest.approx(high, abs=0.02), name


def test_unknown_statistics_and_bad_settings_are_refused() -> None:
    human, a, b = _judges(n=10)
    with pytest.raises(ValueError, match=r"\['pearson'\] cannot be compared.*'accuracy'"):
        paired_pairwise_comparison(human, a, b, statistics=["pearson", "kappa"])
    with pytest.raises(ValueError, match="resamples: 0 is not valid"):
        paired_pairwise_comparison(human, a, b, resamples=0)
    with pytest.raises(ValueError, match="judge_b: row 0 is 3"):
        paired_pairwise_comparison(human, a, np.full(10, 3.0))


def test_empty_input_is_undefined_not_zero() -> None:
    rows = paired_pairwise_comparison(np.array([math.nan]), np.array([0.0]), np.array([1.0]))
    assert {row["verdict"] for row in rows} == {"undefined"}
    assert all(math.isnan(row["difference"]) for row in rows)
    assert rows[0]["n_common"] == 0 and rows[0]["n_dropped"] == 1
