"""Choose a seeded, stratified subset of examples for ``runner.limit_samples``."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from judgekit.data.loading import Example

__all__ = ["sample_examples"]


def sample_examples(
    examples: list[Example], limit: int | None, *, seed: int, stratify_by: str | None
) -> list[Example]:
    """Return ``limit`` examples, stratified by one human score, in their original order.

    Each stratum (a human score level; unlabelled rows form their own stratum) gets a share
    proportional to its size, rounded by largest remainder, so a sample of 50 from HelpSteer2 keeps
    the spread of the labels instead of taking the head of the file. The same seed gives the same
    sample.
    """
    if limit is None or limit >= len(examples):
        return list(examples)
    strata: dict[str, list[int]] = defaultdict(list)
    for index, example in enumerate(examples):
        value = example.human.get(stratify_by, math.nan) if stratify_by else math.nan
        strata["none" if math.isnan(value) else f"{value:g}"].append(index)
    rng = np.random.default_rng(seed)
    chosen: list[int] = []
    for key, count in _allocate(strata, limit).items():
        members = strata[key]
        chosen.extend(int(i) for i in rng.choice(members, size=count, replace=False))
    return [examples[i] for i in sorted(chosen)]


def _allocate(strata: dict[str, list[int]], limit: int) -> dict[str, int]:
    """Largest-remainder allocation of ``limit`` across strata in proportion to their sizes."""
    total = sum(len(m) for m in strata.values())
    quotas = {key: limit * len(members) / total for key, members in strata.items()}
    counts = {key: int(math.floor(q)) for key, q in quotas.items()}
    leftover = limit - sum(counts.values())
    by_remainder = sorted(quotas, key=lambda k: (quotas[k] - counts[k], k), reverse=True)
    for key in by_remainder[:leftover]:
        counts[key] += 1
    return counts
