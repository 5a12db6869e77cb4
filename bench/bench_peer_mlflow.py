"""Benchmark (not a test): the same 500-row job through ``mlflow.genai.evaluate`` and judgekit.

Run: ``python bench/bench_peer_mlflow.py`` (about 3 min; ``--rows``, ``--concurrency``).

Both send the identical chat request per row (judgekit's v1 prompt, rendered once by judgekit)
through litellm to the same fake judge (its own process, latency 0.2 s; ``--api-base URL`` and
``--model`` for an endpoint of your own), at the same concurrency, and read the same JSON score:

* MLflow: ``mlflow.genai.evaluate(data=[{inputs, outputs, expectations}], scorers=[s])`` where
  ``s`` is a ``@scorer`` that calls ``litellm.completion`` and returns the score. MLflow runs
  scorers on a thread pool of ``MLFLOW_GENAI_EVAL_MAX_WORKERS`` (= the concurrency); its
  client-side rate limits are switched off (``MLFLOW_GENAI_EVAL_PREDICT_RATE_LIMIT=0``,
  ``..._SCORER_RATE_LIMIT=0``: the default ``auto`` starts at 10 requests/s) and its SQLAlchemy
  pool is sized to the thread count (the default 5 + 10 overflow times out under 16+ threads).
  It always logs a run, one trace per row and the assessments (SQLite store in a temp dir).
* judgekit, no tracking: ``pipeline.run`` with ``tracking.enabled=false``, no out_dir.
* judgekit, tracked: the same with an out_dir and MLflow on the same kind of SQLite store
  (params, metrics, results table, figures, artifacts) - the like-for-like comparison.

MLflow's built-in ``make_judge`` is not used for the timing: it needs the model to answer its
own ``{"result", "rationale"}`` format with its own prompt, so neither the request nor the
parsing would be the same job; the ``@scorer`` keeps the HTTP traffic identical.
Printed: wall seconds and the ratio MLflow / judgekit (above 1: judgekit is faster).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path
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
)


def _mlflow_env(concurrency: int) -> None:
    os.environ["MLFLOW_GENAI_EVAL_MAX_WORKERS"] = str(concurrency)
    os.environ["MLFLOW_GENAI_EVAL_PREDICT_RATE_LIMIT"] = "0"
    os.environ["MLFLOW_GENAI_EVAL_SCORER_RATE_LIMIT"] = "0"
    os.environ["MLFLOW_SQLALCHEMYSTORE_POOL_SIZE"] = str(2 * concurrency)
    os.environ["MLFLOW_SQLALCHEMYSTORE_MAX_OVERFLOW"] = str(2 * concurrency)
    os.environ.setdefault("TQDM_DISABLE", "1")


def mlflow_evaluate(rows: list[dict[str, Any]], params: list[dict[str, Any]], store: str) -> dict:
    """Wall seconds of ``mlflow.genai.evaluate`` with a litellm ``@scorer``, and its mean score."""
    import litellm
    import mlflow
    from mlflow.genai.scorers import scorer

    mlflow.set_tracking_uri(store)
    mlflow.set_experiment("peer-mlflow")
    by_id = {row["id"]: p for row, p in zip(rows, params, strict=True)}

    @scorer(name="helpfulness")
    def helpfulness(inputs: dict[str, Any], outputs: str) -> float:
        p = by_id[inputs["id"]]
        r = litellm.completion(**p, api_key="no-key", timeout=120, num_retries=0, max_retries=0)
        return float(json.loads(r.choices[0].message.content)["helpfulness"])

    data = [
        {
            "inputs": {"id": row["id"], "prompt": row["prompt"]},
            "outputs": row["response"],
            "expectations": {"helpfulness": row["helpfulness"]},
        }
        for row in rows
    ]
    start = time.perf_counter()
    result = mlflow.genai.evaluate(data=data, scorers=[helpfulness])
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "mean": float(result.metrics.get("helpfulness/mean", "nan"))}


def judgekit_run(cfg: Any, out_dir: Path | None = None) -> dict:
    """Wall seconds of ``pipeline.run`` (and of its judging stage), and its mean score."""
    from judgekit import pipeline

    if out_dir is None:
        timed = timed_run(cfg)
        result, seconds, judge_s = timed.result, timed.total, timed.stages["_judge"]
    else:
        start = time.perf_counter()
        result = pipeline.run(cfg, out_dir)
        seconds, judge_s = time.perf_counter() - start, float("nan")
    mean = float(result.results["judge"].mean())
    return {"seconds": seconds, "judge_s": judge_s, "mean": mean}


def _served(server: Any) -> dict[str, Any]:
    counters = server.counters()
    return {
        "requests": counted(counters, "requests_total"),
        "in_flight": counted(counters, "max_in_flight"),
    }


def main() -> None:
    """Run the three ways against one fake judge and print the ratios."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=500)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--latency", type=float, default=0.2, help="fake judge latency, s")
    add_endpoint_args(p)
    args = p.parse_args()
    _mlflow_env(args.concurrency)
    print(f"bench_peer_mlflow: {machine()}")
    rows = synthetic_rows(args.rows)
    with (
        tempfile.TemporaryDirectory(prefix="judgekit-peer-") as tmp,
        contextlib.chdir(tmp),  # MLflow's SQLite store puts artifacts in ./mlruns: keep them in tmp
        endpoint(args, args.latency) as server,
    ):
        cfg = judgekit_config(rows, server.url, args.concurrency)
        params = request_params(cfg)
        tracked = replace(
            cfg,
            tracking=replace(cfg.tracking, enabled=True, uri=f"sqlite:///{tmp}/jk.db"),
        )
        # warm up: imports (litellm, mlflow, its store schema), first-call costs
        mlflow_evaluate(rows[:8], params[:8], f"sqlite:///{tmp}/warm.db")
        judgekit_run(replace(tracked, runner=replace(cfg.runner, limit_samples=8)), Path(tmp) / "w")
        server.reset()
        figures = {}
        figures["mlflow.genai.evaluate"] = mlflow_evaluate(rows, params, f"sqlite:///{tmp}/ml.db")
        figures["mlflow.genai.evaluate"].update(_served(server))
        server.reset()
        figures["judgekit (no tracking)"] = judgekit_run(cfg)
        figures["judgekit (no tracking)"].update(_served(server))
        server.reset()
        figures["judgekit (MLflow tracking)"] = judgekit_run(tracked, Path(tmp) / "out")
        figures["judgekit (MLflow tracking)"].update(_served(server))
    latency = float("nan") if args.api_base else args.latency
    ideal = args.rows * latency / args.concurrency
    print(
        f"{args.rows} rows, concurrency {args.concurrency}, latency {latency:g} s "
        f"(ideal {ideal:.2f} s)"
    )
    mlflow_s = figures["mlflow.genai.evaluate"]["seconds"]
    for label, f in figures.items():
        print(
            f"  {label:<28} {f['seconds']:7.2f} s  requests {f['requests']!s:>5} "
            f"(max {f['in_flight']!s:>3} in flight)  "
            f"mean score {f['mean']:.3f}  MLflow/this {mlflow_s / f['seconds']:5.2f}  "
            f"ideal/this {ideal / f['seconds']:.2f}"
        )
    ours = figures["judgekit (no tracking)"]["seconds"]
    print(
        f"overall: MLflow takes {mlflow_s / ours:.1f}x judgekit's wall time (reported; no target)"
    )


if __name__ == "__main__":
    main()
