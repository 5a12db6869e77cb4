"""Run every benchmark one after the other and print a summary (benchmarks are not tests).

Run: ``python bench/run_all.py`` (default sizes: about 1 h on a busy 2-core machine, most of it
the 100k-row scale run); ``python bench/run_all.py --quick`` (small sizes, about 10 min);
``--only throughput,cache`` to pick some. Each benchmark runs in its own process, one at a time
(they would disturb each other's timings), with a time limit; its full output is printed as it
comes, then one summary line per benchmark.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

BENCHMARKS: dict[str, tuple[list[str], list[str], float]] = {
    # name: (default arguments, --quick arguments, time limit in seconds)
    "startup": ([], ["-n", "5"], 900),
    "stats": ([], [], 900),
    "cache": ([], ["--rows", "1000", "--repeats", "1"], 1200),
    "throughput": ([], ["--rows", "300", "--rows-c1", "20", "--repeats", "1"], 3600),
    "direct": ([], ["--requests", "500", "--repeats", "1"], 1800),
    "peer_mlflow": ([], ["--rows", "100"], 1800),
    "traces": ([], ["--rows", "300"], 1800),
    "scale": ([], ["--sizes", "1000,10000"], 7200),
}


def run(name: str, args: list[str], limit: float) -> tuple[str, float, str]:
    """Run ``bench_<name>.py``; returns (verdict line, seconds, exit status text)."""
    cmd = [sys.executable, str(HERE / f"bench_{name}.py"), *args]
    print(f"\n=== {name}: {' '.join(cmd[1:])}", flush=True)
    start = time.perf_counter()
    lines: list[str] = []
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if time.perf_counter() - start > limit:
                raise subprocess.TimeoutExpired(cmd, limit)
            if not line.startswith("Evaluating"):  # MLflow's progress bar
                print(line, end="", flush=True)
            lines.append(line.rstrip())
        proc.wait(timeout=max(1.0, limit - (time.perf_counter() - start)))
        status = f"exit {proc.returncode}"
    except subprocess.TimeoutExpired:
        proc.terminate()  # the benchmark stops its own servers on SIGTERM's way out
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        status = f"stopped after {limit:g} s"
    seconds = time.perf_counter() - start
    verdicts = [ln.strip() for ln in lines if "overall:" in ln or ln.strip().startswith("MLflow")]
    return (verdicts[-1] if verdicts else "(see output)"), seconds, status


def main() -> None:
    """Run the chosen benchmarks and print one summary line each."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes")
    p.add_argument("--only", default=",".join(BENCHMARKS), help="comma-separated names")
    p.add_argument("--api-base", help="an OpenAI-compatible endpoint of your own (…/v1)")
    p.add_argument("--model", help="the litellm model name there (e.g. openai/my-judge)")
    args = p.parse_args()
    summary = []
    for name in args.only.split(","):
        default, quick, limit = BENCHMARKS[name]
        extra = []
        if name not in ("startup", "stats"):  # the others talk to an endpoint
            extra += ["--api-base", args.api_base] if args.api_base else []
            extra += ["--model", args.model] if args.model else []
        summary.append((name, *run(name, [*(quick if args.quick else default), *extra], limit)))
    print("\n=== summary")
    for name, verdict_line, seconds, status in summary:
        print(f"  {name:<12} {seconds:7.0f} s  {status:<10} {verdict_line}")


if __name__ == "__main__":
    main()
