"""The train / dev / test split of ``judgekit optimize``: disjoint, seeded, stratified by the human
label, and clustered by group (rows sharing a prompt never straddle two splits)."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from judgekit.data.loading import Example
from judgekit.errors import DatasetError
from judgekit.optimizer.split import split_examples

FRACTIONS = [0.5, 0.25, 0.25]


def _examples(n_groups: int = 80, seed: int = 0, continuous: bool = False) -> list[Example]:
    """Groups of 1-3 rows; labels 0-4 with unequal frequencies, mostly shared within a group."""
    rng = np.random.default_rng(seed)
    out = []
    for g in range(n_groups):
        base = int(rng.choice(5, p=[0.1, 0.15, 0.2, 0.25, 0.3]))
        for k in range(int(rng.integers(1, 4))):
            label = (
                float(rng.random())
                if continuous
                else float(base if rng.random() < 0.8 else (base + 1) % 5)
            )
            out.append(
                Example(f"g{g}-{k}", {"prompt": f"p{g}"}, {"helpfulness": label}, group=f"p{g}")
            )
    out.append(Example("unlabelled", {"prompt": "x"}, {}, group="px"))
    return out


def test_splits_are_disjoint_cover_the_labelled_rows_and_keep_groups_whole() -> None:
    examples = _examples()
    splits = split_examples(examples, "helpfulness", FRACTIONS, seed=1)
    ids = [{e.id for e in splits.part(name)} for name in ("train", "dev", "test")]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
    assert set().union(*ids) == {e.id for e in examples if e.human}
    assert splits.unlabelled == 1
    where = {e.group: name for name in ("train", "dev", "test") for e in splits.part(name)}
    for name in ("train", "dev", "test"):
        assert all(where[e.group] == name for e in splits.part(name))


def test_each_label_is_shared_out_close_to_the_fractions() -> None:
    examples = _examples(n_groups=200)
    splits = split_examples(examples, "helpfulness", FRACTIONS, seed=2)
    total = Counter(e.human["helpfulness"] for e in examples if e.human)
    for name, fraction in zip(("train", "dev", "test"), FRACTIONS, strict=True):
        part = Counter(e.human["helpfulness"] for e in splits.part(name))
        n = sum(part.values())
        assert n / sum(total.values()) == pytest.approx(fraction, abs=0.05)
        for label, count in total.items():  # groups of up to 3 rows: a few rows either way
            assert part[label] / count == pytest.approx(fraction, abs=0.1), (name, label)


def test_the_split_is_seeded() -> None:
    examples = _examples()
    a = split_examples(examples, "helpfulness", FRACTIONS, seed=5)
    b = split_examples(examples, "helpfulness", FRACTIONS, seed=5)
    c = split_examples(examples, "helpfulness", FRACTIONS, seed=6)
    assert [e.id for e in a.test] == [e.id for e in b.test]
    assert {e.id for e in a.test} != {e.id for e in c.test}


def test_continuous_labels_are_stratified_by_quantile_bins() -> None:
    examples = _examples(n_groups=150, continuous=True)
    splits = split_examples(examples, "helpfulness", FRACTIONS, seed=0)
    means = [
        np.mean([e.human["helpfulness"] for e in splits.part(n)]) for n in ("train", "dev", "test")
    ]
    assert max(means) - min(means) < 0.1  # uniform labels: each split's mean near 0.5
    assert all(math.isfinite(m) for m in means)


def test_too_few_rows_for_a_split_is_a_dataset_error() -> None:
    examples = _examples(n_groups=3)
    with pytest.raises(DatasetError, match=r"optimize.split: .* leaves the .* split empty"):
        split_examples(examples, "helpfulness", [0.9, 0.05, 0.05], seed=0)


@pytest.mark.parametrize(
    ("n", "n_labels", "fractions", "sizes"),
    [
        (60, 10, [0.5, 0.25, 0.25], (30, 15, 15)),
        (30, 3, [0.6, 0.2, 0.2], (18, 6, 6)),
        (12, 6, [0.5, 0.25, 0.25], (6, 3, 3)),  # two rows per stratum: test is not starved
    ],
)
def test_split_sizes_follow_the_fractions_even_with_small_strata(
    n: int, n_labels: int, fractions: list[float], sizes: tuple[int, int, int]
) -> None:
    examples = [Example(f"r{i}", {}, {"s": float(i % n_labels)}, group=f"g{i}") for i in range(n)]
    for seed in range(5):
        splits = split_examples(examples, "s", fractions, seed=seed)
        got = (len(splits.train), len(splits.dev), len(splits.test))
        assert all(abs(a - b) <= 1 for a, b in zip(got, sizes, strict=True)), (seed, got)
