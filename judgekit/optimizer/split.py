"""Train / dev / test splits for ``judgekit optimize``: seeded, stratified, group-clustered.

Every row sharing a ``group`` (a prompt) goes to one split, so a judge is never tested on a
prompt whose other responses it was tuned on. Groups are dealt out stratum by stratum (the
stratum of a group is its most common human label), in a seeded random order, each to the
split furthest below its share of the rows dealt so far, in its stratum and overall.

Why not scikit-learn: ``StratifiedGroupKFold`` gives k equal folds, not arbitrary fractions such
as ``[0.6, 0.2, 0.2]``, and ``GroupShuffleSplit`` does not stratify.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass

import numpy as np

from judgekit.data.loading import Example
from judgekit.errors import DatasetError

__all__ = ["SPLITS", "Splits", "split_examples"]

SPLITS = ("train", "dev", "test")
MAX_STRATA = 6
"""A continuous or wide label is binned into at most this many quantile strata."""


@dataclass(frozen=True)
class Splits:
    """The labelled examples of a dataset in three disjoint parts."""

    train: list[Example]
    dev: list[Example]
    test: list[Example]
    unlabelled: int = 0
    """Rows left out because they have no human label for the optimised score."""

    def part(self, name: str) -> list[Example]:
        """The split called ``name`` (``train``, ``dev`` or ``test``)."""
        parts: list[Example] = getattr(self, name)
        return parts


def split_examples(
    examples: list[Example], score: str, fractions: list[float], *, seed: int
) -> Splits:
    """Split the examples labelled for ``score`` by ``fractions`` (train, dev, test).

    Raises a :class:`DatasetError` when a split would be empty.
    """
    labelled = [e for e in examples if math.isfinite(e.human.get(score, math.nan))]
    groups: dict[str, list[Example]] = defaultdict(list)
    for example in labelled:
        groups[example.group or example.id].append(example)
    strata = _strata(groups, score)
    rng = np.random.default_rng(seed)
    parts: list[list[Example]] = [[], [], []]
    dealt = _Dealt(fractions)
    for stratum in sorted(strata, key=str):
        names = strata[stratum]
        dealt.new_stratum()
        for i in rng.permutation(len(names)):
            rows = groups[names[i]]
            parts[dealt.give(len(rows), rng)].extend(rows)
    _check(parts, len(labelled), len(groups), fractions, score)
    train, dev, test = parts
    return Splits(train, dev, test, unlabelled=len(examples) - len(labelled))


def _strata(groups: dict[str, list[Example]], score: str) -> dict[object, list[str]]:
    """Group names by stratum: the group's most common label (binned when labels are many)."""
    values = np.array([e.human[score] for rows in groups.values() for e in rows], dtype=float)
    distinct = np.unique(values)
    edges = None
    if distinct.size > MAX_STRATA:
        edges = np.unique(np.quantile(values, np.linspace(0, 1, MAX_STRATA + 1)[1:-1]))
    out: dict[object, list[str]] = defaultdict(list)
    for name, rows in groups.items():
        labels = [e.human[score] for e in rows]
        if edges is not None:
            labels = [int(np.searchsorted(edges, v, side="right")) for v in labels]
        out[Counter(labels).most_common(1)[0][0]].append(name)
    return out


class _Dealt:
    """Rows given to each split, overall and in the current stratum."""

    def __init__(self, fractions: list[float]) -> None:
        self.fractions = np.asarray(fractions, dtype=float)
        self.total = np.zeros(3)
        self.stratum = np.zeros(3)

    def new_stratum(self) -> None:
        self.stratum = np.zeros(3)

    def give(self, size: int, rng: np.random.Generator) -> int:
        """The split for a group of ``size`` rows: the one furthest below its share, in this
        stratum plus overall (so small strata do not all start with train); ties broken at
        random (seeded)."""
        deficit = self._deficit(self.stratum, size) + self._deficit(self.total, size)
        best = np.flatnonzero(np.isclose(deficit, deficit.max()))
        target = int(best[rng.integers(len(best))]) if best.size > 1 else int(best[0])
        self.stratum[target] += size
        self.total[target] += size
        return target

    def _deficit(self, given: np.ndarray, size: int) -> np.ndarray:
        return self.fractions * (given.sum() + size) - given


def _check(
    parts: list[list[Example]], n_rows: int, n_groups: int, fractions: list[float], score: str
) -> None:
    empty = [name for name, part in zip(SPLITS, parts, strict=True) if not part]
    if empty:
        raise DatasetError(
            f"optimize.split: {fractions} of {n_rows} rows labelled for {score!r} "
            f"({n_groups} groups) leaves the {' and '.join(empty)} split empty; use more data "
            "(runner.limit_samples) or larger fractions for it"
        )
