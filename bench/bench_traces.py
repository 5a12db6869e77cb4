"""Benchmark (not a test): what per-row MLflow traces add to a tracked run's wall time.

Run: ``python bench/bench_traces.py`` (about 6 min: 2,000 rows at 0.3 s per call,
parallelism 8; ``--rows``, ``--latency``, ``--parallelism``, ``--repeats``).

The same run twice, back to back, against the fake judge in its own process (0.3 s per answer,
parallelism 8, so about 75 s of judging), both tracked in one local SQLite MLflow store (params,
metrics, results table, figures, artifacts): ``tracking.traces=false``, then
``tracking.traces=true`` (a trace per row with its feedback and expectation). Target: the traced
run takes at most 1.20x the untraced one's wall time. With ``--repeats N`` the pairs alternate
which goes first and the median ratio is the verdict. Also printed: how long the trace writer
was busy (wall seconds in its writes, while the run judged) and how long the run waited for it
after judging (the part of the writing the judging did not hide).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from _common import (
    add_endpoint_args,
    endpoint,
    judgekit_config,
    machine,
    ratio,
    synthetic_rows,
    verdict,
)

TARGET = 1.20


def tracked_run(cfg: Any, store: str, traces: str, out_dir: Path) -> dict[str, float]:
    """Wall seconds of ``pipeline.run`` tracked in ``store`` with ``tracking.traces=traces``,
    and the seconds spent waiting for the trace writer once judging ended."""
    from judgekit import pipeline
    from judgekit.tracking.traces import TraceLog

    tracking = replace(cfg.tracking, enabled=True, uri=store, traces=traces)
    waited = busy = 0.0
    close, write = TraceLog.close, TraceLog._write

    def timed_close(self: TraceLog, responses: dict[int, Any]) -> None:
        nonlocal waited
        start = time.perf_counter()
        close(self, responses)
        waited += time.perf_counter() - start

    def timed_write(self: TraceLog, items: list[Any]) -> None:
        nonlocal busy
        start = time.perf_counter()
        write(self, items)
        busy += time.perf_counter() - start

    TraceLog.close, TraceLog._write = timed_close, timed_write  # type: ignore[method-assign]
    try:
        start = time.perf_counter()
        result = pipeline.run(replace(cfg, tracking=tracking), out_dir)
        seconds = time.perf_counter() - start
    finally:
        TraceLog.close, TraceLog._write = close, write  # type: ignore[method-assign]
    return {
        "seconds": seconds,
        "waited": waited,
        "busy": busy,
        "failed": float(result.results["judge"].isna().sum()),
    }


def count_traces(store: str, run_id: str | None) -> int:
    """How many traces the run left in the store."""
    import mlflow
    from mlflow import MlflowClient

    run = MlflowClient(store).get_run(run_id)
    mlflow.set_tracking_uri(store)
    found = mlflow.search_traces(
        locations=[run.info.experiment_id], run_id=run_id, return_type="list", max_results=100_000
    )
    return len(found)


def main() -> None:
    """Run the untraced and traced runs and print the ratio."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=2000)
    p.add_argument("--parallelism", type=int, default=8)
    p.add_argument("--latency", type=float, default=0.3, help="fake judge latency, s")
    p.add_argument("--repeats", type=int, default=1, help="pairs of runs (median ratio)")
    add_endpoint_args(p)
    args = p.parse_args()
    print(f"bench_traces: {machine()}")
    rows = synthetic_rows(args.rows)
    ratios = []
    with (
        tempfile.TemporaryDirectory(prefix="judgekit-traces-") as tmp,
        contextlib.chdir(tmp),  # the SQLite store's artifacts (and traces) go to ./mlruns
        endpoint(args, args.latency) as server,
    ):
        store = f"sqlite:///{tmp}/mlflow.db"
        cfg = judgekit_config(rows, server.url, args.parallelism)
        warm = replace(cfg, runner=replace(cfg.runner, limit_samples=16))
        tracked_run(warm, store, "true", Path(tmp) / "warm")  # imports, the store's tables
        for pair in range(args.repeats):
            figures = {}
            order = ["false", "true"] if pair % 2 == 0 else ["true", "false"]
            for traces in order:
                out = Path(tmp) / f"{pair}-{traces}"
                figures[traces] = tracked_run(cfg, store, traces, out)
                run_id = _run_id(out)
                figures[traces]["traces"] = count_traces(store, run_id)
            r = ratio(figures["true"]["seconds"], figures["false"]["seconds"])
            ratios.append(r)
            for traces in ("false", "true"):
                f = figures[traces]
                print(
                    f"  pair {pair + 1}  tracking.traces={traces:<5}  {f['seconds']:7.2f} s  "
                    f"traces {f['traces']:>5.0f}  writer busy {f['busy']:5.2f} s, "
                    f"waited for after judging {f['waited']:5.2f} s  "
                    f"failed rows {f['failed']:.0f}"
                )
            print(f"  pair {pair + 1}  traced / untraced {r:.3f}")
    median = statistics.median(ratios)
    print(
        f"{args.rows} rows, parallelism {args.parallelism}, latency {args.latency:g} s, "
        f"local SQLite store"
    )
    print(
        f"overall: traced / untraced wall time {median:.3f} (target <= {TARGET:.2f}) "
        f"{verdict(median <= TARGET)}"
    )


def _run_id(out: Path) -> str | None:
    import json

    return json.loads((out / "summary.json").read_text())["mlflow_run_id"]


if __name__ == "__main__":
    main()
