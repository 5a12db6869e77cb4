"""Benchmark (not a test): litellm vs a direct OpenAI-compatible POST, at latency 0.

Run: ``python bench/bench_direct.py`` (about 3 min; ``--requests`` to change the size).

Where the endpoint is fast and local (latency 0), the client's CPU cost per request is the
limit. At concurrency 64 against the fake judge (its own process; ``--api-base URL`` and
``--model`` for an endpoint of your own), the same JSON body goes out through:

* ``litellm``: ``litellm.acompletion`` (what judgekit uses), the baseline;
* ``httpx``: one ``httpx.AsyncClient`` POSTing to ``/chat/completions``;
* ``aiohttp``: one ``aiohttp.ClientSession`` doing the same;
* ``judgekit litellm`` and ``judgekit direct``: judgekit's judging stage end to end (retries,
  parsing, results) with ``judge.client=litellm`` (the default) and ``judge.client=direct``
  (:mod:`judgekit.judge.direct`, built on aiohttp).

Each path sends ``--requests`` requests (also stopped after ``--budget-s`` seconds), ``--repeats``
times interleaved; the median requests/s and CPU milliseconds per request (this process only;
the server's CPU is not counted) are printed as ratios to litellm. The server answers every path
alike, so a path that nears the server's own ceiling (one Python process) is understated.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from _common import (
    add_endpoint_args,
    counted,
    endpoint,
    judgekit_config,
    machine,
    request_params,
    synthetic_rows,
    timed_run,
    with_runner,
)

Send = Callable[[dict[str, Any]], Awaitable[str]]


async def _drive(
    send: Send, params: list[dict[str, Any]], concurrency: int, budget_s: float
) -> int:
    """Send requests from a fixed pool of workers until done or out of time; returns how many."""
    source = iter(params)
    done = 0
    deadline = time.monotonic() + budget_s

    async def worker() -> None:
        nonlocal done
        for p in source:
            if time.monotonic() > deadline:
                return
            text = await send(p)
            json.loads(text)  # every path parses the judge's JSON answer
            done += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done


def _body(p: dict[str, Any]) -> dict[str, Any]:
    """The chat-completions JSON litellm sends for these parameters (model without prefix)."""
    body = {k: v for k, v in p.items() if k not in ("api_base",)}
    body["model"] = p["model"].split("/", 1)[1]
    return body


async def _litellm(params: list[dict[str, Any]], c: int, budget: float) -> int:
    import litellm

    async def send(p: dict[str, Any]) -> str:
        r = await litellm.acompletion(
            **p, api_key="no-key", timeout=60, num_retries=0, max_retries=0
        )
        return r.choices[0].message.content

    return await _drive(send, params, c, budget)


async def _httpx(params: list[dict[str, Any]], c: int, budget: float) -> int:
    import httpx

    url = params[0]["api_base"].rstrip("/") + "/chat/completions"
    limits = httpx.Limits(max_connections=c, max_keepalive_connections=c)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:

        async def send(p: dict[str, Any]) -> str:
            r = await client.post(url, json=_body(p), headers={"Authorization": "Bearer no-key"})
            r.raise_for_status()
            return r.json()["choices"][0]["message"]["content"]

        return await _drive(send, params, c, budget)


async def _aiohttp(params: list[dict[str, Any]], c: int, budget: float) -> int:
    import aiohttp

    url = params[0]["api_base"].rstrip("/") + "/chat/completions"
    connector = aiohttp.TCPConnector(limit=c)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def send(p: dict[str, Any]) -> str:
            headers = {"Authorization": "Bearer no-key"}
            async with session.post(url, json=_body(p), headers=headers) as r:
                r.raise_for_status()
                return (await r.json())["choices"][0]["message"]["content"]

        return await _drive(send, params, c, budget)


PATHS: dict[str, Callable[[list[dict[str, Any]], int, float], Awaitable[int]]] = {
    "litellm": _litellm,
    "httpx": _httpx,
    "aiohttp": _aiohttp,
}


JUDGEKIT = ("judgekit litellm", "judgekit direct")


def measure_judgekit(name: str, cfg: Any, rows: int) -> dict[str, float]:
    """Requests/s and CPU ms per request of judgekit's judging stage with one client."""
    from dataclasses import replace

    client = name.split()[-1]
    cfg = replace(cfg, judge=replace(cfg.judge, client=client))
    timed = timed_run(with_runner(cfg, limit_samples=rows))
    done = int(timed.result.aggregate["helpfulness"]["count"])
    seconds, cpu = timed.stages["_judge"], timed.cpu["_judge"]
    return {"rps": done / seconds, "cpu_ms": 1000 * cpu / max(done, 1), "done": done}


def measure(name: str, params: list[dict[str, Any]], c: int, budget: float) -> dict[str, float]:
    """Requests/s and CPU ms per request of one path."""
    cpu, wall = time.process_time(), time.perf_counter()
    done = asyncio.run(PATHS[name](params, c, budget))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"rps": done / wall, "cpu_ms": 1000 * cpu / max(done, 1), "done": done}


def main() -> None:
    """Start the fake judge at latency 0 and compare the paths."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=3000, help="requests per path and repeat")
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--budget-s", type=float, default=60.0, help="time limit per path and repeat")
    add_endpoint_args(p)
    args = p.parse_args()
    print(f"bench_direct: {machine()}")
    with endpoint(args, 0.0) as server:
        cfg = judgekit_config(synthetic_rows(args.requests), server.url, args.concurrency)
        params = request_params(cfg)
        for name in PATHS:  # warm up: imports, first-call costs
            measure(name, params[:50], 8, 30)
        for name in JUDGEKIT:
            measure_judgekit(name, cfg, 50)
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in (*PATHS, *JUDGEKIT)}
        for _ in range(args.repeats):
            for name in PATHS:
                runs[name].append(measure(name, params, args.concurrency, args.budget_s))
            for name in JUDGEKIT:
                runs[name].append(measure_judgekit(name, cfg, args.requests))
        counters = server.counters()
    print(
        f"concurrency {args.concurrency}, latency 0, {args.requests} requests per run, "
        f"median of {args.repeats}; server answered {counted(counters, 'by_kind')}"
    )
    base_rps = statistics.median(r["rps"] for r in runs["litellm"])
    base_cpu = statistics.median(r["cpu_ms"] for r in runs["litellm"])
    print(f"  {'path':<17} {'req/s':>8} {'x litellm':>9} {'CPU ms/req':>10} {'x litellm':>9}")
    for name, values in runs.items():
        rps = statistics.median(r["rps"] for r in values)
        cpu = statistics.median(r["cpu_ms"] for r in values)
        print(
            f"  {name:<17} {rps:>8.0f} {rps / base_rps:>9.2f} {cpu:>10.2f} {cpu / base_cpu:>9.2f}"
        )
    best = statistics.median(r["rps"] for r in runs["aiohttp"])
    jk = {n: statistics.median(r["rps"] for r in runs[n]) for n in JUDGEKIT}
    print(
        f"overall: a direct aiohttp POST does {best / base_rps:.1f}x litellm's requests/s; "
        f"judgekit with judge.client=direct does {jk['judgekit direct'] / jk['judgekit litellm']:.1f}x "
        "judgekit with litellm (reported; no target)"
    )


if __name__ == "__main__":
    main()
