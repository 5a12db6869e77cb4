"""A rerun sends no call already paid for: cached answers, and resume after ``kill -9``."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from helpers import TEST_KEY, TEST_KEY_ENV, file_run, run_cli, write_jsonl

from judgekit.testing.server import FakeJudge

N_ROWS = 120


def _dataset(path: Path) -> None:
    rows = [
        {
            "prompt": f"q{i}",
            "response": f"answer {i}",
            "helpfulness": i % 5,
            "correctness": 1,
            "coherence": 1,
            "complexity": 1,
            "verbosity": 1,
        }
        for i in range(N_ROWS)
    ]
    write_jsonl(path, rows)


def _args(judge: FakeJudge, out: str) -> list[str]:
    return [
        *file_run(judge, "val.jsonl"),
        "prompt=v1",
        "score=helpfulness",
        "runner.parallelism=4",
        f"hydra.run.dir={out}",
    ]


def _cached_answers(cache_dir: Path) -> int:
    with sqlite3.connect(cache_dir / "responses.sqlite3") as conn:
        return conn.execute("select count(*) from responses").fetchone()[0]


@pytest.mark.slow
def test_a_second_run_is_served_from_the_cache(workdir: Path) -> None:
    _dataset(workdir / "val.jsonl")
    with FakeJudge() as judge:
        assert run_cli(_args(judge, "first"), workdir).returncode == 0
        assert judge.counters.requests_total == N_ROWS
        proc = run_cli(_args(judge, "second"), workdir)
        assert proc.returncode == 0, proc.stderr
        assert judge.counters.requests_total == N_ROWS  # nothing new was sent
    first = pd.read_parquet(workdir / "first" / "results.parquet")
    second = pd.read_parquet(workdir / "second" / "results.parquet")
    assert second["cached"].all() and not first["cached"].any()
    assert list(first["judge"]) == list(second["judge"])


@pytest.mark.slow
def test_kill_9_then_rerun_sends_only_unanswered_requests(
    workdir: Path, private_cache_dir: Path
) -> None:
    _dataset(workdir / "val.jsonl")
    with FakeJudge(latency_s=0.05) as judge:
        env = {**os.environ, TEST_KEY_ENV: TEST_KEY}
        proc = subprocess.Popen(
            [sys.executable, "-m", "judgekit.cli", *_args(judge, "killed")],
            cwd=workdir,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120
        while judge.counters.completed < N_ROWS // 2:
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        answered = _cached_answers(private_cache_dir)
        assert 0 < answered < N_ROWS
        sent_before = judge.counters.requests_total
        rerun = run_cli(_args(judge, "resumed"), workdir)
        assert rerun.returncode == 0, rerun.stderr
        # Only the requests that never got an answer stored are sent again.
        assert judge.counters.requests_total - sent_before == N_ROWS - answered
        repeated = [k for k, n in judge.counters.request_keys.items() if n > 1]
        # At most the 4 calls in flight at the kill: each answer is committed before its worker
        # sends the next request (tests/test_hardening_cache.py kills right at an answer).
        assert len(repeated) <= 4
    with FakeJudge() as fresh:  # the same answers, uninterrupted and uncached
        clean = run_cli([*_args(fresh, "clean"), "cache.mode=off"], workdir)
        assert clean.returncode == 0
    resumed = pd.read_parquet(workdir / "resumed" / "results.parquet")
    uninterrupted = pd.read_parquet(workdir / "clean" / "results.parquet")
    assert list(resumed["judge"]) == list(uninterrupted["judge"])
    assert resumed["cached"].sum() == answered


def _runs(workdir: Path):  # noqa: ANN202
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{workdir}/mlflow.db")
    exp = client.get_experiment_by_name("judgekit")
    return client.search_runs([exp.experiment_id], order_by=["attributes.start_time ASC"])


@pytest.mark.slow
def test_rejudge_failed_sends_only_the_failed_examples_and_links_the_runs(workdir: Path) -> None:
    from judgekit.testing.server import FaultPlan

    _dataset(workdir / "val.jsonl")
    with FakeJudge(faults=FaultPlan(garbage=0.25, seed=3)) as flaky:
        assert run_cli(_args(flaky, "first"), workdir).returncode == 0
    first = pd.read_parquet(workdir / "first" / "results.parquet")
    failed = int(first["failure_reason"].notna().sum())
    assert 0 < failed < N_ROWS and set(first["failure_reason"].dropna()) == {"parse_error"}
    with FakeJudge() as healthy:
        proc = run_cli(
            [*_args(healthy, "second"), "runner.rejudge=failed", "runner.rejudge_from=first"],
            workdir,
        )
        assert proc.returncode == 0, proc.stderr
        assert healthy.counters.requests_total == failed  # the cached garbage is not replayed
    second = pd.read_parquet(workdir / "second" / "results.parquet")
    assert second["failure_reason"].isna().all()
    ok = first["failure_reason"].isna()
    assert list(second.loc[ok, "judge"]) == list(first.loc[ok, "judge"])
    old, new = _runs(workdir)
    assert new.data.tags["judgekit.parent_run"] == old.info.run_id


@pytest.mark.slow
def test_min_coverage_fails_the_run_and_keeps_the_results(workdir: Path) -> None:
    from judgekit.testing.server import FaultPlan

    _dataset(workdir / "val.jsonl")
    with FakeJudge(faults=FaultPlan(garbage=0.5, seed=1)) as judge:
        proc = run_cli([*_args(judge, "out"), "runner.min_coverage=0.9"], workdir)
    assert proc.returncode == 1
    assert "runner.min_coverage: helpfulness was scored on" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert (workdir / "out" / "results.parquet").exists()
    [run] = _runs(workdir)
    assert run.info.status == "FAILED"
    assert run.data.metrics["failures/parse_error"] > 0
