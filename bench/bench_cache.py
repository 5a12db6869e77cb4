"""Benchmark (not a test): a rerun whose every answer is in the response cache.

Run: ``python bench/bench_cache.py`` (about 1 min; ``--rows`` to change the size).

A first run fills a fresh cache (``cache.mode=read_write`` in a temporary ``cache.dir``) from the
fake judge in its own process; its counters are then zeroed and the same run is repeated.
Targets for the rerun: 0 requests reach the endpoint (the fake's own counters), and the judging
stage handles at least 2,000 rows/s. The first, uncached run is printed beside it as the
baseline measured in the same run.

The cache is on by default, so filling it must not slow a first run either: the same rows with
``cache.mode=off`` are the baseline for the first run (target: >= 0.9x their judging rate).
"""

from __future__ import annotations

import argparse
import tempfile

from _common import (
    add_endpoint_args,
    endpoint,
    judgekit_config,
    machine,
    ratio,
    synthetic_rows,
    timed_run,
    verdict,
)

TARGET_ROWS_S = 2000.0
FILL_TARGET = 0.9


def _sent(counters: dict | None, timed: object) -> int:
    """Requests the endpoint received: its own counter (fake judge), else the run's uncached rows
    (an endpoint of your own has no counter; judgekit marks every row answered by the cache)."""
    if counters is not None:
        return int(counters["requests_total"])
    return int((~timed.result.results["cached"].astype(bool)).sum())  # type: ignore[attr-defined]


def main() -> None:
    """Fill the cache, rerun, print the endpoint's counters and the rates."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=2000)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--latency", type=float, default=0.0, help="fake judge latency, s")
    p.add_argument("--repeats", type=int, default=3, help="cached reruns; the median is kept")
    add_endpoint_args(p)
    args = p.parse_args()
    print(f"bench_cache: {machine()}")
    rows = synthetic_rows(args.rows)
    with (
        tempfile.TemporaryDirectory(prefix="judgekit-cache-") as cache_dir,
        endpoint(args, args.latency) as server,
    ):
        timed_run(judgekit_config(rows[:50], server.url, 8))  # warm up: imports, first calls
        plain = timed_run(judgekit_config(rows, server.url, args.concurrency))  # cache off
        server.reset()
        overrides = ["cache.mode=read_write", f"cache.dir={cache_dir}"]
        cfg = judgekit_config(rows, server.url, args.concurrency, overrides=overrides)
        first = timed_run(cfg)
        sent = _sent(server.counters(), first)
        server.reset()
        reruns = [timed_run(cfg) for _ in range(args.repeats)]
        counters = server.counters()
    reruns.sort(key=lambda t: t.stages["_judge"])
    rerun = reruns[len(reruns) // 2]
    n = len(rerun.result.examples)
    hits = rerun.result.cache_stats.get("hits", 0)
    cached_rows = int(rerun.result.results["cached"].sum())
    first_rate, judge_rate = n / first.stages["_judge"], n / rerun.stages["_judge"]
    run_rate = n / rerun.total
    print(f"{n} rows, concurrency {args.concurrency}, fake judge latency {args.latency:g} s")
    plain_rate = n / plain.stages["_judge"]
    fill = ratio(first_rate, plain_rate)
    fill_ok = fill >= FILL_TARGET
    print(f"  the same run with cache.mode=off:        judging {plain_rate:8.0f} rows/s")
    print(f"  first run (fills the cache): {sent} requests, judging {first_rate:8.0f} rows/s")
    print(
        f"  filling the cache vs cache off: ratio {fill:.2f} (target >= {FILL_TARGET:g}): "
        f"{verdict(fill_ok)}"
    )
    print(
        f"  cached rerun (median of {args.repeats}): judging {judge_rate:8.0f} rows/s, whole run "
        f"{run_rate:6.0f} rows/s ({rerun.total:.2f} s; stages "
        + ", ".join(f"{k} {v:.2f} s" for k, v in rerun.stages.items())
        + ")"
    )
    print(
        f"  speed-up of the cached judging stage over the first run: {judge_rate / first_rate:.1f}x"
    )
    print(f"  cache hits {hits}, rows marked cached {cached_rows} of {n} (in the median rerun)")
    reached = _sent(counters, rerun)
    print(
        f"  requests that reached the endpoint during the reruns: {reached} (target 0): "
        f"{verdict(reached == 0)}"
    )
    good = judge_rate >= TARGET_ROWS_S
    print(
        f"  judging rows/s vs target {TARGET_ROWS_S:g}: ratio {ratio(judge_rate, TARGET_ROWS_S):.2f}"
        f" (>= 1 meets it): {verdict(good)}"
    )
    print(f"overall: {verdict(good and fill_ok and reached == 0 and hits == n)}")


if __name__ == "__main__":
    main()
