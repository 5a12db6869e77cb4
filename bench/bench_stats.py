"""Benchmark (not a test): agreement + 1,000-resample bootstrap on 20,000 rows x 5 scores.

Run: ``python bench/bench_stats.py``. Prints wall-clock seconds, the ratio to the 2 s target
(below 1.0 meets it), and the speed-up over scoring each resample row by row (the slow path
used for continuous scores), measured on a few resamples in the same run and scaled up.
"""

from __future__ import annotations

import time

import numpy as np

from judgekit.stats import bootstrap as stats_bootstrap
from judgekit.stats.bootstrap import bootstrap_ci
from judgekit.stats.pointwise import agreement

ROWS, SCORES, RESAMPLES, TARGET_S = 20_000, 5, 1000, 2.0
SLOW_RESAMPLES = 10


def synthetic_scores(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Human and judge 0..4 scores (rows x scores) with 2% failed judge calls, 1% no label."""
    rng = np.random.default_rng(seed)
    human = rng.integers(0, 5, size=(ROWS, SCORES)).astype(float)
    judge = np.clip(human + rng.integers(-1, 2, size=human.shape), 0, 4)
    judge[rng.random(judge.shape) < 0.02] = np.nan
    human[rng.random(human.shape) < 0.01] = np.nan
    return human, judge


def run(human: np.ndarray, judge: np.ndarray, resamples: int, clusters: np.ndarray | None) -> float:
    """Seconds for agreement + bootstrap_ci on every score column (agreement only if 0)."""
    start = time.perf_counter()
    for k in range(human.shape[1]):
        agreement(human[:, k], judge[:, k], minimum=0, maximum=4)
        if resamples:
            bootstrap_ci(
                human[:, k],
                judge[:, k],
                minimum=0,
                maximum=4,
                resamples=resamples,
                clusters=clusters,
            )
    return time.perf_counter() - start


def main() -> None:
    """Time the fast path (rows and clusters) and a slow-path baseline; print the ratios."""
    human, judge = synthetic_scores()
    run(human[:200], judge[:200], 10, None)  # warm up imports and caches
    agreement_s = run(human, judge, 0, None)
    rows_s = run(human, judge, RESAMPLES, None)
    clusters_s = run(human, judge, RESAMPLES, np.arange(ROWS) // 4)
    saved = stats_bootstrap.MAX_LEVELS
    stats_bootstrap.MAX_LEVELS = 0  # force the row-by-row path
    try:
        slow_run_s = run(human, judge, SLOW_RESAMPLES, None)
    finally:
        stats_bootstrap.MAX_LEVELS = saved
    slow_s = agreement_s + (slow_run_s - agreement_s) * RESAMPLES / SLOW_RESAMPLES
    print(f"{ROWS} rows x {SCORES} scores, agreement + {RESAMPLES}-resample bootstrap")
    print(f"  target: {TARGET_S:g} s (ratio below 1 meets it)")
    for label, seconds in (("rows scheme", rows_s), ("clusters of 4 rows", clusters_s)):
        print(f"  {label:<20} {seconds:6.3f} s  ratio to target {seconds / TARGET_S:.3f}")
    print(f"  row-by-row path: {slow_s:6.1f} s (est. from {SLOW_RESAMPLES} resamples)")
    print(f"  speed-up of the table path over row-by-row: {slow_s / rows_s:.0f}x")
    met = max(rows_s, clusters_s) < TARGET_S
    print(f"overall: {'PASS' if met else 'FAIL'} (both schemes under {TARGET_S:g} s)")


if __name__ == "__main__":
    main()
