"""Benchmark (not a test): judgekit end to end vs a bare litellm loop vs the ideal rate.

Run: ``python bench/bench_throughput.py`` (15-20 min on a busy 2-core machine: 3 pairs of runs
per concurrency; ``--rows 500 --repeats 1`` for a quicker look).

The fake judge runs in its own process with a fixed latency (default 0.2 s); ``--api-base URL``
(and ``--model``) point the same measurement at an OpenAI-compatible endpoint of your own, whose
latency is then measured one request at a time first. At each concurrency
C this process sends the same requests (the exact litellm arguments judgekit builds) three ways:

* ideal: C / latency requests per second (every slot always busy, zero client cost);
* bare litellm: ``litellm.acompletion`` under an ``asyncio.Semaphore(C)``, all tasks at once;
* judgekit: ``judgekit.pipeline.run`` on a typed config (tracking off, cache off, no bootstrap,
  no out_dir); the judging stage (``_judge``) and the whole run are timed separately.

Rows: ``--rows`` at every concurrency except 1, where ``--rows-c1`` (default 100: 2,000 rows at
C=1 would take 400 s of pure latency). Targets: judgekit's judging stage >= 0.9x bare litellm at
every C, and >= 0.9x the ideal wherever bare litellm reaches 0.9x the ideal itself.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

from _common import (
    add_endpoint_args,
    counted,
    endpoint,
    judgekit_config,
    machine,
    ratio,
    request_params,
    synthetic_rows,
    timed_run,
    verdict,
)

TARGET = 0.9


async def _bare(params: list[dict[str, Any]], concurrency: int, budget_s: float) -> int:
    """Send every request with at most ``concurrency`` in flight; returns the failures."""
    import litellm

    semaphore = asyncio.Semaphore(concurrency)
    failures = 0

    async def one(p: dict[str, Any]) -> None:
        nonlocal failures
        async with semaphore:
            try:
                r = await litellm.acompletion(
                    **p, api_key="no-key", timeout=120, num_retries=0, max_retries=0
                )
                if not r.choices[0].message.content:
                    failures += 1
            except Exception:  # noqa: BLE001 - counted, the loop goes on
                failures += 1

    await asyncio.wait_for(asyncio.gather(*(one(p) for p in params)), timeout=budget_s)
    return failures


def bare_litellm(params: list[dict[str, Any]], concurrency: int, budget_s: float) -> dict:
    """Requests/s and CPU ms per request of the bare loop."""
    start, cpu = time.perf_counter(), time.process_time()
    failures = asyncio.run(_bare(params, concurrency, budget_s))
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    n = len(params)
    return {"seconds": seconds, "rps": n / seconds, "cpu_ms": 1000 * cpu / n, "failures": failures}


def judgekit_end_to_end(cfg: Any) -> dict:
    """Requests/s and CPU ms per request of the judging stage, and of the whole run."""
    timed = timed_run(cfg)
    n = len(timed.result.examples)
    judge_s = timed.stages["_judge"]
    return {
        "seconds": timed.total,
        "rps": n / judge_s,
        "rps_total": n / timed.total,
        "cpu_ms": 1000 * timed.cpu["_judge"] / n,
        "stages": timed.stages,
        "failures": sum(timed.result.failures.values()),
    }


def warm_up(url: str) -> None:
    """Import litellm and make a few calls through both paths, so no timing pays for that."""
    cfg = judgekit_config(synthetic_rows(8), url, 4)
    bare_litellm(request_params(cfg), 4, 60)
    timed_run(cfg)


def measure(url: str, concurrency: int, rows: int, latency: float, repeats: int) -> dict[str, Any]:
    """``repeats`` pairs (bare litellm, then judgekit) at one concurrency."""
    cfg = judgekit_config(synthetic_rows(rows), url, concurrency)
    params = request_params(cfg)
    ideal = concurrency / latency
    budget = 20 * rows / ideal + 120
    pairs = []
    for _ in range(repeats):
        pairs.append((bare_litellm(params, concurrency, budget), judgekit_end_to_end(cfg)))
    return {"concurrency": concurrency, "rows": rows, "ideal": ideal, "pairs": pairs}


def _median(values: list[float]) -> float:
    return statistics.median(values)


def report(results: list[dict[str, Any]], latency: float, source: str = "fake judge") -> bool:
    """Print the table and the verdicts; True when every target is met.

    Figures are medians over the repeats; ``jk/bare`` is the median of the per-pair ratios
    (each pair ran back to back, so a change in the machine's load hits both sides of it).
    """
    print(f"\n{source} latency {latency:.3g} s; requests/s, medians of the repeats")
    head = f"{'C':>3} {'rows':>5} {'ideal':>6} {'bare':>6} {'bare/id':>7} {'jk':>6} {'jk/bare':>7} "
    head += f"{'jk/id':>5} {'run':>6} {'run/bare':>8} {'CPU ms bare':>11} {'jk':>5} {'ratio':>5}  target"
    print(head)
    all_ok = True
    for r in results:
        ideal, pairs = r["ideal"], r["pairs"]
        bare = _median([b["rps"] for b, _ in pairs])
        ours = _median([j["rps"] for _, j in pairs])
        run = _median([j["rps_total"] for _, j in pairs])
        vs_bare = _median([ratio(j["rps"], b["rps"]) for b, j in pairs])
        run_vs_bare = _median([ratio(j["rps_total"], b["rps"]) for b, j in pairs])
        cpu_bare = _median([b["cpu_ms"] for b, _ in pairs])
        cpu_ours = _median([j["cpu_ms"] for _, j in pairs])
        ok = vs_bare >= TARGET
        if ratio(bare, ideal) >= TARGET:
            ok = ok and ratio(ours, ideal) >= TARGET
        all_ok = all_ok and ok
        print(
            f"{r['concurrency']:>3} {r['rows']:>5} {ideal:>6.1f} {bare:>6.1f} "
            f"{ratio(bare, ideal):>7.2f} {ours:>6.1f} {vs_bare:>7.2f} {ratio(ours, ideal):>5.2f} "
            f"{run:>6.1f} {run_vs_bare:>8.2f} {cpu_bare:>11.2f} {cpu_ours:>5.2f} "
            f"{ratio(cpu_ours, cpu_bare):>5.2f}  {verdict(ok)}"
        )
    print(
        "\nper repeat: bare req/s | judgekit judging req/s | judgekit stages prepare/_judge/_finish s"
    )
    for r in results:
        for b, j in r["pairs"]:
            s = j["stages"]
            print(
                f"  C={r['concurrency']:<3} {b['rps']:7.1f} | {j['rps']:7.1f} | "
                f"{s.get('prepare', 0):5.2f} {s['_judge']:7.2f} {s.get('_finish', 0):5.2f}   "
                f"failures: bare {b['failures']}, judgekit {j['failures']}"
            )
    print(
        f"\ntargets: judgekit judging >= {TARGET}x bare litellm at every C; >= {TARGET}x ideal "
        f"where bare litellm reaches {TARGET}x ideal.  overall: {verdict(all_ok)}"
    )
    return all_ok


def main() -> None:
    """Start the fake judge, measure every concurrency, print the ratios."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=2000, help="rows at C > 1 (default 2000)")
    p.add_argument("--rows-c1", type=int, default=100, help="rows at C = 1 (default 100)")
    p.add_argument("--latency", type=float, default=0.2, help="fake judge latency, s")
    p.add_argument("--concurrency", default="1,8,32,64", help="comma-separated (default 1,8,32,64)")
    p.add_argument("--repeats", type=int, default=3, help="pairs of runs per C (default 3)")
    add_endpoint_args(p)
    args = p.parse_args()
    print(f"bench_throughput: {machine()}")
    results = []
    with endpoint(args, args.latency) as server:
        warm_up(server.url)
        latency = args.latency
        if args.api_base:  # the ideal needs the endpoint's own latency: one request at a time
            cfg = judgekit_config(synthetic_rows(20), server.url, 1)
            latency = 1 / bare_litellm(request_params(cfg), 1, 600)["rps"]
            print(f"  {server.url}: {latency:.3f} s per request, one at a time")
        for c in (int(x) for x in args.concurrency.split(",")):
            rows = args.rows_c1 if c == 1 else args.rows
            results.append(measure(server.url, c, rows, latency, args.repeats))
            print(f"  C={c}: done ({machine()})", flush=True)
        counters = server.counters()
    print(
        f"endpoint counters: {counted(counters, 'by_kind')}, "
        f"max in flight {counted(counters, 'max_in_flight')}"
    )
    report(results, latency, "measured" if args.api_base else "fake judge")


if __name__ == "__main__":
    main()
