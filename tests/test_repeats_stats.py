"""Test–retest statistics of repeated draws (judgekit.stats.repeats), against hand arithmetic and
independent references."""

from __future__ import annotations

import math

import numpy as np
import pytest

from judgekit.config.schema import RubricLabel, ScoreSpec
from judgekit.stats.pointwise import krippendorff_alpha
from judgekit.stats.repeats import (
    flip_rate,
    krippendorff_alpha_units,
    majority,
    reduce_draws,
    sample_std,
    stability,
)

NAN = math.nan

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: 4 observers
# (columns here) × 12 units (rows), missing values; the paper's published alphas below.
KRIPPENDORFF_2011 = np.array(
    [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
        [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN],
    ]
).T


@pytest.mark.parametrize(
    ("level", "published"), [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849)]
)
def test_alpha_matches_krippendorffs_published_example(level: str, published: float) -> None:
    assert krippendorff_alpha_units(KRIPPENDORFF_2011, level) == pytest.approx(published, abs=5e-4)  # type: ignore[arg-type]


@pytest.mark.parametrize("level", ["ordinal", "interval"])
def test_alpha_of_two_complete_draws_equals_the_pairwise_implementation(level: str) -> None:
    rng = np.random.default_rng(7)
    first = rng.integers(1, 6, 40).astype(float)
    second = np.clip(first + rng.integers(-1, 2, 40), 1, 5)
    ours = krippendorff_alpha_units(np.column_stack([first, second]), level)  # type: ignore[arg-type]
    assert ours == pytest.approx(krippendorff_alpha(first, second, level=level), abs=1e-12)  # type: ignore[arg-type]


def test_nominal_alpha_by_hand() -> None:
    # items × 2 draws: (A, A), (B, B), (A, B)  with A = 0, B = 1.
    # coincidences: o_AA = 2, o_BB = 2, o_AB = o_BA = 1; n_A = n_B = 3, n = 6.
    # D_o ∝ (n - 1) · Σ o_ck δ = 5 · 2 = 10; D_e ∝ Σ n_c n_k δ = 2 · 3 · 3 = 18;
    # alpha = 1 - 10 / 18 = 4 / 9.
    draws = np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    assert krippendorff_alpha_units(draws, "nominal") == pytest.approx(4 / 9)


def test_alpha_is_nan_when_every_draw_is_equal_or_nothing_pairs() -> None:
    assert math.isnan(krippendorff_alpha_units(np.array([[3.0, 3.0], [3.0, 3.0]]), "ordinal"))
    assert math.isnan(krippendorff_alpha_units(np.array([[3.0, NAN], [NAN, 2.0]]), "ordinal"))


def test_flip_rate_and_sample_std_by_hand() -> None:
    draws = np.array(
        [
            [3.0, 3.0, 3.0],  # agree: std 0
            [2.0, 4.0, 3.0],  # flips: std = sqrt(((-1)² + 1² + 0²) / 2) = 1
            [5.0, NAN, 5.0],  # one failed draw, the two left agree: std 0
            [1.0, NAN, NAN],  # a single successful draw cannot flip: left out
        ]
    )
    # flip rate: 1 of 3 repeated items = 1/3; sample std: (0 + 1 + 0) / 3 = 1/3
    assert flip_rate(draws) == pytest.approx(1 / 3)
    assert sample_std(draws) == pytest.approx(1 / 3)
    figures = stability(draws, "ordinal")
    assert (figures.n_items, figures.n_draws, figures.n_failed_draws) == (3, 12, 3)


def test_flip_rate_is_nan_without_repeated_items() -> None:
    assert math.isnan(flip_rate(np.array([[1.0, NAN]])))
    assert math.isnan(sample_std(np.empty((0, 3))))


@pytest.mark.parametrize(
    ("values", "how", "expected"),
    [
        ([1.0, 2.0, 4.0], "mean", 7 / 3),
        ([1.0, 2.0, 4.0], "median", 2.0),
        ([1.0, 4.0, 4.0], "mode", 4.0),
        ([1.0, 1.0, 4.0, 4.0], "mode", 2.5),  # two modes: their mean
        ([1.0, NAN, 3.0], "mean", 2.0),  # the failed draw is left out, not a zero
    ],
)
def test_reduce_draws(values: list[float], how: str, expected: float) -> None:
    assert reduce_draws(np.array(values), how) == pytest.approx(expected)


def test_reduce_with_no_successful_draw_is_nan() -> None:
    assert math.isnan(reduce_draws(np.array([NAN, NAN]), "median"))


@pytest.mark.parametrize(
    ("verdicts", "expected"),
    [
        ([0.0, 0.0, 1.0], 0.0),  # A twice of three: A
        ([0.0, 1.0], 0.5),  # one each: a tie
        ([0.0, 0.5, 1.0], 0.5),  # no majority: a tie
        ([1.0, 1.0, NAN], 1.0),  # B on both successful draws
    ],
)
def test_majority_ties_as_ties(verdicts: list[float], expected: float) -> None:
    assert majority(np.array(verdicts)) == expected


@pytest.mark.parametrize(
    ("settings", "level"),
    [
        ({"minimum": 0, "maximum": 4}, "ordinal"),  # an integer scale
        ({"minimum": 0.0, "maximum": 1.0, "integer": False}, "interval"),  # continuous
        ({"labels": {"good": RubricLabel(1.0), "bad": RubricLabel(0.0)}}, "nominal"),  # rubric
        (
            {
                "kind": "preference",
                "labels": {"A": RubricLabel(0.0), "B": RubricLabel(1.0), "tie": RubricLabel(0.5)},
            },
            "nominal",
        ),
    ],
)
def test_each_score_is_compared_across_draws_at_its_own_level(settings: dict, level: str) -> None:
    from judgekit.draws import level_of

    assert level_of(ScoreSpec(name="s", **settings)) == level
