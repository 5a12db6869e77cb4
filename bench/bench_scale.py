"""Benchmark (not a test): time and peak memory of a 10k- and a 100k-row run.

Run: ``python bench/bench_scale.py`` (about 25 min on a busy 2-core machine: the 100k run is
bounded by litellm's CPU cost per call); ``--sizes 2000,20000`` for a quicker look.

Each size runs ``judgekit.pipeline.run`` in its own child process (so each peak RSS is that
run's alone) against the fake judge in another process (latency ``--latency``, default 0),
with ``score=helpsteer2`` (5 scores: the results table has 5 rows per example) and the default
1,000-resample bootstrap, on a .jsonl file. The child reports its peak RSS after imports and a
warm-up call (the fixed cost) and at the end (``resource.getrusage(RUSAGE_SELF).ru_maxrss``);
the parent cross-checks with ``RUSAGE_CHILDREN``.

Targets, smallest size as the baseline: peak RSS of the largest run well under 10x (here: under
5x) the smallest; the memory a run adds above the fixed cost grows at most linearly (per-row
bytes at most 1.25x the baseline's); seconds per row at most 1.25x the baseline's, for the whole
run and for each stage.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import (
    add_endpoint_args,
    counted,
    die_with_parent,
    endpoint,
    judgekit_config,
    machine,
    ratio,
    synthetic_rows,
    timed_run,
    verdict,
)

SCORES = ("helpfulness", "correctness", "coherence", "complexity", "verbosity")
RSS_TARGET, LINEAR_TARGET = 5.0, 1.25


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(rows: int, url: str, concurrency: int, workdir: str) -> None:
    """One run, in this process; prints one JSON line with its figures."""
    path = Path(workdir) / f"rows{rows}.jsonl"
    with path.open("w") as f:
        for row in synthetic_rows(rows, scores=SCORES):
            f.write(json.dumps(row) + "\n")
    overrides = ["stats.bootstrap_resamples=1000", "judge.max_retries=3"]
    warm = judgekit_config(str(path), url, 4, score="helpsteer2", overrides=overrides)
    from dataclasses import replace

    warm = replace(warm, runner=replace(warm.runner, limit_samples=4))
    timed_run(warm)  # imports litellm, pandas, scipy; first-call costs
    fixed_mb = _rss_mb()
    cfg = judgekit_config(str(path), url, concurrency, score="helpsteer2", overrides=overrides)
    timed = timed_run(cfg)
    result = timed.result
    figures = {
        "rows": rows,
        "table_rows": len(result.results),
        "failures": result.failures,
        "total_s": timed.total,
        "stages": timed.stages,
        "cpu": timed.cpu,
        "fixed_mb": fixed_mb,
        "peak_mb": _rss_mb(),
    }
    print("RESULT " + json.dumps(figures), flush=True)


def run_child(rows: int, args: argparse.Namespace, workdir: str) -> dict[str, Any]:
    """Start the fake judge and one child run; return the child's figures."""
    with endpoint(args, args.latency) as server:
        cmd = [sys.executable, __file__, "--child", str(rows), "--url", server.url]
        cmd += ["--model", args.model]
        cmd += ["--concurrency", str(args.concurrency), "--workdir", workdir]
        start = time.perf_counter()
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=args.timeout, preexec_fn=die_with_parent
        )
        wall = time.perf_counter() - start
        counters = server.counters()
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(
            f"child for {rows} rows failed ({done.returncode}): {done.stderr[-2000:]}"
        )
    figures = json.loads(lines[-1][len("RESULT ") :])
    figures["children_maxrss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    figures["wall_s"] = wall
    figures["requests"] = counted(counters, "requests_total")
    return figures


def report(runs: list[dict[str, Any]]) -> bool:
    """Print each run and the ratios against the smallest; True when every target is met."""
    base = runs[0]
    print(
        f"\n{'rows':>7} {'table':>7} {'total s':>8} {'prepare':>8} {'judge':>8} {'finish':>7} "
        f"{'fixed MB':>8} {'peak MB':>8} {'added MB':>8} {'req':>7}"
    )
    for r in runs:
        s = r["stages"]
        print(
            f"{r['rows']:>7} {r['table_rows']:>7} {r['total_s']:>8.1f} {s['prepare']:>8.2f} "
            f"{s['_judge']:>8.1f} {s['_finish']:>7.2f} {r['fixed_mb']:>8.0f} {r['peak_mb']:>8.0f} "
            f"{r['peak_mb'] - r['fixed_mb']:>8.0f} {r['requests']!s:>7}"
        )
    ok = True
    for r in runs[1:]:
        scale = r["rows"] / base["rows"]
        peak = ratio(r["peak_mb"], base["peak_mb"])
        added = ratio(r["peak_mb"] - r["fixed_mb"], base["peak_mb"] - base["fixed_mb"]) / scale
        print(f"\n{r['rows']} vs {base['rows']} rows ({scale:g}x the rows):")
        print(
            f"  peak RSS ratio {peak:.2f} (target < {RSS_TARGET:g}): {verdict(peak < RSS_TARGET)}"
        )
        line = f"  added memory per row, ratio {added:.2f} (target <= {LINEAR_TARGET:g})"
        per_row_kb = 1024 * (r["peak_mb"] - r["fixed_mb"]) / r["rows"]
        print(f"{line}: {verdict(added <= LINEAR_TARGET)}; {per_row_kb:.1f} KB per example")
        ok = ok and peak < RSS_TARGET and added <= LINEAR_TARGET
        for name, key in (
            ("whole run", "total_s"),
            ("prepare", "prepare"),
            ("judging", "_judge"),
            ("results+stats", "_finish"),
        ):
            now = r[key] if key == "total_s" else r["stages"][key]
            then = base[key] if key == "total_s" else base["stages"][key]
            per_row = ratio(now, then) / scale
            small = now < 1.0  # a stage under a second is not a growth problem
            good = per_row <= LINEAR_TARGET or small
            ok = ok and good
            cpu = ""
            if key != "total_s" and "cpu" in r and "cpu" in base:
                cpu = f"; CPU s per row ratio {ratio(r['cpu'][key], base['cpu'][key]) / scale:5.2f}"
            print(
                f"  seconds per row, {name:<13} ratio {per_row:5.2f} (target <= "
                f"{LINEAR_TARGET:g}{'; under 1 s' if small else ''}): {verdict(good)}{cpu}"
            )
    print(f"\noverall: {verdict(ok)}")
    return ok


def main() -> None:
    """Run each size in a child process and print the ratios."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="10000,100000", help="comma-separated row counts")
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--latency", type=float, default=0.0, help="fake judge latency, s")
    p.add_argument("--timeout", type=float, default=3600, help="seconds allowed per child run")
    add_endpoint_args(p)
    p.add_argument("--child", type=int, help=argparse.SUPPRESS)
    p.add_argument("--url", help=argparse.SUPPRESS)
    p.add_argument("--workdir", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        endpoint(args)  # sets the model; the parent owns the endpoint
        child(args.child, args.url, args.concurrency, args.workdir)
        return
    print(f"bench_scale: {machine()}")
    runs = []
    with tempfile.TemporaryDirectory(prefix="judgekit-bench-") as workdir:
        for rows in (int(x) for x in args.sizes.split(",")):
            runs.append(run_child(rows, args, workdir))
            print(f"  {rows} rows: {runs[-1]['total_s']:.1f} s ({machine()})", flush=True)
    report(runs)


if __name__ == "__main__":
    main()
