"""Shared pieces of the benchmarks (not a test): the fake endpoint, synthetic rows, timed runs.

Every benchmark talks to :mod:`judgekit.testing.cli` started in its own process on
127.0.0.1 (so the server does not share the client's GIL), and stops it on the way out.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

OFFLINE_ENV = {
    "LITELLM_OFFLINE_MODE": "true",
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "HF_HUB_OFFLINE": "1",
}
for _name, _value in OFFLINE_ENV.items():
    os.environ.setdefault(_name, _value)

if threading.current_thread() is threading.main_thread():
    # SIGTERM (e.g. from run_all.py's time limit) unwinds like Ctrl-C, so servers are stopped.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))

REPO = Path(__file__).resolve().parent.parent
MODEL = "openai/fake-judge"
WORDS = (
    "the answer explains each step clearly and gives a short example so that a reader can check "
    "it against the question while noting limits assumptions and the sources it relied upon"
).split()


def machine() -> str:
    """One line about where the figures come from: cores, load, Python."""
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} CPUs, load average {load}, Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d %H:%M:%S')}"
    )


def _text(seed: str, words: int) -> str:
    digest = hashlib.sha256(seed.encode()).digest()
    picked = [WORDS[(digest[i % 32] + i) % len(WORDS)] for i in range(words)]
    return f"{seed}: " + " ".join(picked)


def synthetic_rows(n: int, *, scores: tuple[str, ...] = ("helpfulness",)) -> list[dict[str, Any]]:
    """``n`` distinct prompt/response rows with 0..4 human labels (about 600 bytes each)."""
    rows = []
    for i in range(n):
        digest = hashlib.sha256(f"row{i}".encode()).digest()
        row: dict[str, Any] = {
            "id": f"r{i}",
            "prompt": _text(f"question {i}", 30),
            "response": _text(f"answer {i}", 60),
        }
        for k, name in enumerate(scores):
            row[name] = digest[k] % 5
        rows.append(row)
    return rows


def die_with_parent() -> None:
    """In the child, before exec: on Linux, SIGTERM it when this process dies, even by kill -9."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


class FakeServer:
    """``python -m judgekit.testing.cli`` in a child process; a context manager that stops it.

    Args:
        latency_s: Seconds each answer waits (``--latency``).
        extra: Further command-line flags of the fake judge.
        start_timeout_s: How long to wait for its "listening on" line.
    """

    def __init__(
        self, latency_s: float = 0.0, extra: list[str] | None = None, start_timeout_s: float = 60
    ) -> None:
        self.latency_s = latency_s
        self.extra = extra or []
        self.start_timeout_s = start_timeout_s
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""

    def __enter__(self) -> FakeServer:
        cmd = [sys.executable, "-m", "judgekit.testing.cli", "--port", "0"]
        cmd += ["--latency", str(self.latency_s), "--max-bodies", "0", *self.extra]
        self.proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=os.environ,
            preexec_fn=die_with_parent,
        )
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(self.proc.stdout.readline()))  # type: ignore[union-attr]
        reader.daemon = True
        reader.start()
        reader.join(self.start_timeout_s)
        if not line or "listening on" not in line[0]:
            self.stop()
            raise RuntimeError(f"fake judge did not start: {line!r}")
        self.url = line[0].strip().rsplit(" ", 1)[-1]
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s; idempotent."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.proc = None

    def _call(self, path: str, method: str = "GET") -> dict[str, Any]:
        request = urllib.request.Request(
            self.url + path, method=method, data=b"" if method == "POST" else None
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.loads(answer.read())

    def counters(self) -> dict[str, Any]:
        """``GET /v1/counters`` without the per-key table: totals, kinds, max in flight."""
        snapshot = self._call("/counters")
        snapshot.pop("bodies", None)
        snapshot["distinct_requests"] = len(snapshot.pop("request_keys", {}))
        return snapshot

    def reset(self) -> None:
        """Zero the server's counters."""
        self._call("/counters/reset", "POST")


class ExternalEndpoint:
    """An OpenAI-compatible endpoint of the user's own (``--api-base``): nothing to start or stop.

    It has no request counters; the scripts print ``n/a`` where the fake judge's would go.
    """

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def __enter__(self) -> ExternalEndpoint:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def counters(self) -> dict[str, Any] | None:
        """Unknown for an endpoint judgekit does not run."""
        return None

    def reset(self) -> None:
        """Nothing to reset."""


def add_endpoint_args(p: Any) -> None:
    """``--api-base`` and ``--model``: run against an endpoint of your own instead of the fake."""
    p.add_argument(
        "--api-base",
        help="an OpenAI-compatible endpoint of your own (http://host:port/v1) instead of the "
        "fake judge this script starts; no key is sent",
    )
    p.add_argument(
        "--model",
        default=MODEL,
        help=f"the litellm model name to ask for there (default {MODEL}: the fake judge's)",
    )


def endpoint(args: Any, latency_s: float = 0.0) -> FakeServer | ExternalEndpoint:
    """The endpoint the benchmark talks to: ``--api-base`` if given, else a fresh fake judge.

    Also makes ``--model`` the model every :func:`judgekit_config` asks for.
    """
    global MODEL
    MODEL = args.model
    if args.api_base:
        return ExternalEndpoint(args.api_base)
    return FakeServer(latency_s)


def counted(counters: dict[str, Any] | None, key: str) -> Any:
    """A fake-judge counter, or ``"n/a"`` for an external endpoint."""
    return "n/a" if counters is None else counters[key]


def judgekit_config(
    rows: list[dict[str, Any]] | str,
    api_base: str,
    parallelism: int,
    *,
    score: str = "helpfulness",
    overrides: list[str] | None = None,
) -> Any:
    """A typed Config for the fake endpoint: no tracking, no cache, no bootstrap, no progress bar.

    ``rows`` is a list of inline rows, or the path of a .jsonl file.
    """
    import judgekit

    base = [
        f"judge.model={MODEL}",
        f"judge.api_base={api_base}",
        "judge.timeout_s=120",
        "tracking.enabled=false",
        "cache.mode=off",
        "stats.bootstrap_resamples=0",
        "runner.progress=false",
    ]
    dataset: Any = rows
    if isinstance(rows, str):
        from judgekit.config.schema import DatasetConfig, FieldsConfig

        fields = FieldsConfig(id="id", scores={"helpfulness": "helpfulness"})
        dataset = DatasetConfig(name=Path(rows).name, source="file", path=rows, fields=fields)
    cfg = judgekit.build_config(
        "openai_compatible",
        "v1",
        score,
        dataset,
        parallelism=parallelism,
        overrides=[*base, *(overrides or [])],
    )
    return cfg


def with_runner(cfg: Any, **changes: Any) -> Any:
    """``cfg`` with some ``runner`` fields changed."""
    return replace(cfg, runner=replace(cfg.runner, **changes))


@dataclass
class Timed:
    """Seconds spent in each stage of one ``judgekit.pipeline.run``."""

    total: float = 0.0
    stages: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)
    """CPU seconds of this process (all threads) in each stage."""
    result: Any = None


@contextlib.contextmanager
def _timing(module: Any, names: list[str], timed: Timed) -> Iterator[None]:
    """Time every call of ``module.<name>`` for each name (instrumentation, restored after)."""
    saved = {name: getattr(module, name) for name in names}

    def wrap(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start, cpu = time.perf_counter(), time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                wall = time.perf_counter() - start
                timed.stages[name] = timed.stages.get(name, 0.0) + wall
                timed.cpu[name] = timed.cpu.get(name, 0.0) + time.process_time() - cpu

        return wrapper

    for name, fn in saved.items():
        setattr(module, name, wrap(name, fn))
    try:
        yield
    finally:
        for name, fn in saved.items():
            setattr(module, name, fn)


def timed_run(cfg: Any) -> Timed:
    """``judgekit.pipeline.run(cfg)`` (out_dir None) with its stages timed.

    Stages: ``prepare`` (load, check, render one), ``_judge`` (every call: the judging stage),
    ``_finish`` (results table, statistics).
    """
    from judgekit import pipeline

    timed = Timed()
    with _timing(pipeline, ["prepare", "_judge", "_finish"], timed):
        start = time.perf_counter()
        timed.result = pipeline.run(cfg)
        timed.total = time.perf_counter() - start
    return timed


def request_params(cfg: Any, rows_or_examples: Any = None) -> list[dict[str, Any]]:
    """The exact litellm arguments judgekit sends for each example of ``cfg`` (same body)."""
    from judgekit.judge.client import LiteLLMClient
    from judgekit.judge.structured import response_format_for
    from judgekit.pipeline import prepare
    from judgekit.prompts.render import render

    prepared = prepare(cfg)
    client = LiteLLMClient(
        cfg.judge, api_key=None, response_format=response_format_for(cfg.judge, cfg.score)
    )
    return [client.request_params(render(cfg.prompt, e, cfg.score)) for e in prepared.examples]


def ratio(value: float, baseline: float) -> float:
    """``value / baseline``, NaN when the baseline is 0."""
    return value / baseline if baseline else float("nan")


def verdict(ok: bool) -> str:
    """PASS or FAIL."""
    return "PASS" if ok else "FAIL"
