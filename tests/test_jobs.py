"""Durable jobs: submit → status → wait → result, across processes, a kill, a cancel, Slurm."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import (
    TEST_KEY,
    TEST_KEY_ENV,
    file_run,
    judge_overrides,
    needs_launchers,
    row_number,
    run_cli,
    write_jsonl,
)

import judgekit
from judgekit.config.schema import Config, DatasetConfig, RubricLabel, ScoreSchemaConfig, ScoreSpec
from judgekit.errors import ConfigError, RunError, SecretError
from judgekit.jobs import Job
from judgekit.jobs.executors import make_executor, process_alive, process_start
from judgekit.jobs.store import JobStore, config_from_dict, config_to_dict
from judgekit.jobs.submission import durable_config
from judgekit.testing.server import FakeJudge, json_scores

pytestmark = needs_launchers  # every test here runs a launcher or submitit

INLINE = DatasetConfig(source="inline", rows=[{"prompt": "p", "response": "r"}])


def _dataset(path: Path, n: int) -> None:
    rows = [
        {"prompt": f"q{i}", "response": f"answer [row={i}]", "helpfulness": i % 5} for i in range(n)
    ]
    write_jsonl(path, rows)


def _score(request) -> dict:  # noqa: ANN001
    """The fake judge's helpfulness: the row number mod 5 (so every result is predictable)."""
    return {"helpfulness": row_number(request) % 5}


def _overrides(judge: FakeJudge, parallelism: int = 2) -> list[str]:
    return [
        *file_run(judge, "val.jsonl"),
        "prompt=v1",
        "score=helpfulness",
        f"runner.parallelism={parallelism}",
    ]


def _submit(
    workdir: Path, judge: FakeJudge, n: int, *, parallelism: int = 2, extra: tuple = (), **kwargs
) -> Job:
    """``judgekit.submit`` of an n-row file, in process (the test's environment is the job's)."""
    _dataset(workdir / "val.jsonl", n)
    overrides = [*judge_overrides(judge)[1:], *extra]
    return judgekit.submit("openai_compatible", "v1", "helpfulness", "val.jsonl",
                           parallelism=parallelism, overrides=overrides, **kwargs)  # fmt: skip


def _until(condition, timeout: float = 120.0, what: str = "condition") -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _runs(workdir: Path, job_id: str) -> list:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{workdir}/mlflow.db")
    experiment = client.get_experiment_by_name("judgekit")
    query = f"tags.`judgekit.job_id` = '{job_id}'"
    runs = client.search_runs([experiment.experiment_id], filter_string=query)
    return sorted(runs, key=lambda r: r.data.tags["judgekit.job_attempt"])


def _assert_key_nowhere(root: Path) -> None:
    for path in root.rglob("*"):
        if path.is_file():
            assert TEST_KEY.encode() not in path.read_bytes(), f"key leaked into {path}"


# -- the job directory, without running a job ---------------------------------------------------


def test_config_snapshot_restores_the_exact_config_including_labelled_scores() -> None:
    labels = {"good": RubricLabel(1.0, "fine"), "bad": RubricLabel(0.0, "not fine")}
    schema = ScoreSchemaConfig(name="rubric", scores=[ScoreSpec("q", labels=labels)])
    cfg = Config(score=schema, dataset=INLINE)
    data = json.loads(json.dumps(config_to_dict(cfg)))
    assert config_from_dict(data) == cfg
    # Rebuilding through __init__ works too: the span derived from the labels is accepted again.
    assert dataclasses.replace(cfg.score.scores[0]) == cfg.score.scores[0]
    with pytest.raises(ConfigError, match="either labels or minimum/maximum"):
        dataclasses.replace(cfg.score.scores[0], maximum=5.0)


def test_durable_config_pins_a_relative_sqlite_store_and_the_cache(tmp_path: Path) -> None:
    cfg = durable_config(Config(dataset=INLINE), tmp_path)
    assert cfg.tracking.uri == f"sqlite:///{tmp_path}/mlflow.db"
    assert Path(cfg.cache.dir) == Path(os.environ["JUDGEKIT_CACHE_DIR"]).resolve()
    server = Config(dataset=INLINE)
    server.tracking.uri = "http://127.0.0.1:5000"
    assert durable_config(server, tmp_path).tracking.uri == "http://127.0.0.1:5000"


def test_setup_errors_stop_submit_before_anything_is_written(
    workdir: Path, fake_judge: FakeJudge, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(TEST_KEY_ENV, raising=False)
    with pytest.raises(SecretError, match=f"{TEST_KEY_ENV} is not set"):
        _submit(workdir, fake_judge, 3)
    monkeypatch.setenv(TEST_KEY_ENV, TEST_KEY)
    with pytest.raises(ConfigError, match="not an option of the local executor"):
        _submit(workdir, fake_judge, 3, executor_options={"partition": "gpu"}, tracking=False)
    with pytest.raises(ConfigError, match="executor: 'cloud' is not valid"):
        _submit(workdir, fake_judge, 3, executor="cloud", tracking=False)
    with pytest.raises(SecretError, match="appears in the config or the executor options"):
        _submit(workdir, fake_judge, 3, extra=[f"+judge.extra_params.api_key={TEST_KEY}"])
    assert list((workdir / "judgekit-jobs").glob("*/job.json")) == []
    assert fake_judge.counters.requests_total == 0


def test_process_checks_name_one_process_even_after_its_pid_is_reused() -> None:
    me = os.getpid()
    assert process_alive(me, process_start(me), None) is True
    assert process_alive(me, process_start(me) + 1, None) is False  # same pid, another process
    assert process_alive(me, None, "another-host") is None  # cannot be checked from here
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    assert process_start(child.pid) is not None or child.poll() is not None
    child.wait()
    assert process_alive(child.pid, None, None) is False


def test_job_commands_answer_without_loading_heavy_libraries(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from judgekit.cli.run import main\n"
        f"assert main(['status', '--jobs-dir', {str(tmp_path)!r}]) == 0\n"
        "print('HEAVY', [m for m in ('litellm', 'mlflow', 'pandas', 'submitit') if m in sys.modules])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "no jobs" in proc.stdout and "HEAVY []" in proc.stdout


def test_a_job_whose_process_vanished_is_reported_failed(workdir: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # a submitit controller that is gone
    store = JobStore(workdir / "jobs" / "j1")
    store.create(
        {
            "id": "j1",
            "executor": "local",
            "host": socket.gethostname(),
            "attempt": 1,
            "submitit_job_id": str(child.pid),
            "state": {"state": "running", "detail": "judging"},
        }
    )
    status = Job.load("j1", workdir / "jobs").status()
    assert (status.state, status.finished) == ("failed", True)
    assert status.detail.startswith("job vanished: its process ended without reporting how")
    with pytest.raises(RunError, match="judgekit submit --resume j1"):
        Job.load("j1", workdir / "jobs").result()
    with pytest.raises(ConfigError, match=r"job .j2. not found .* \(recent jobs there: j1\)"):
        Job.load("j2", workdir / "jobs")


def test_load_result_rebuilds_the_run_result_evaluate_returned(
    workdir: Path, fake_judge: FakeJudge
) -> None:
    from judgekit.jobs import load_result
    from judgekit.jobs.worker import write_examples

    _dataset(workdir / "val.jsonl", 6)
    overrides = judge_overrides(fake_judge, key=False)[1:]
    ran = judgekit.evaluate("openai_compatible", "v1", "helpfulness", "val.jsonl",
                            overrides=overrides, out_dir=workdir / "out")  # fmt: skip
    with pytest.raises(ConfigError, match="no resolved_config.json"):
        load_result(workdir / "out")  # untracked: the config is not in the directory
    loaded = load_result(workdir / "out", ran.config)  # no examples.jsonl: loaded again
    assert loaded.config == ran.config and loaded.examples == ran.examples
    assert loaded.row_scores == ran.row_scores and loaded.run_id == ran.run_id
    assert (loaded.agreement, loaded.aggregate, loaded.failures) == (
        ran.agreement,
        ran.aggregate,
        ran.failures,
    )
    write_examples(workdir / "out", ran.examples)  # a job's directory: examples are saved
    (workdir / "val.jsonl").unlink()
    assert load_result(workdir / "out", ran.config).examples == ran.examples


def _fake_slurm(bin_dir: Path, state_file: Path, log: Path) -> None:
    """srun, sbatch, sacct and scancel stand-ins: submitit's real Slurm code path runs on them."""
    scripts = {
        "srun": "exit 0",
        "sbatch": f'echo "sbatch $@" >> {log}; echo "Submitted batch job 4242"',
        "sacct": f'echo "JobID|State|NodeList"; echo "4242|$(cat {state_file})|node1"',
        "scancel": f'echo "scancel $@" >> {log}',
    }
    bin_dir.mkdir()
    for name, body in scripts.items():
        path = bin_dir / name
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(path.stat().st_mode | stat.S_IEXEC)


def test_a_slurm_job_is_submitted_with_its_resources_and_followed_through_sacct(
    workdir: Path, fake_judge: FakeJudge, monkeypatch: pytest.MonkeyPatch
) -> None:
    state, log = workdir / "slurm_state", workdir / "slurm.log"
    state.write_text("PENDING\n")
    _fake_slurm(workdir / "bin", state, log)
    monkeypatch.setenv("PATH", f"{workdir / 'bin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv(TEST_KEY_ENV, TEST_KEY)
    options = {"partition": "gpu", "timeout_min": 30, "cpus_per_task": 4, "mem_gb": 8}
    job = _submit(workdir, fake_judge, 3, executor="slurm", executor_options=options,
                  tracking=False)  # fmt: skip
    record = job.store.record()
    assert (record["executor"], record["submitit_job_id"]) == ("slurm", "4242")
    [script] = job.store.submitit_dir.rglob("*_submission.sh")
    text = script.read_text()
    for line in ("--partition=gpu", "--time=30", "--cpus-per-task=4", "--mem=8GB"):
        assert f"#SBATCH {line}" in text
    assert "-m submitit.core._submit" in text and log.read_text().startswith("sbatch ")
    assert job.status().state == "pending"
    state.write_text("TIMEOUT\n")
    status = Job.load(job.job_id).status()
    assert (status.state, status.detail) == ("failed", "slurm reports the job TIMEOUT")
    executor = make_executor("slurm", workdir / "x", {"qos": "high", "account": "lab"})
    assert executor._executor.parameters["qos"] == "high"
    _assert_key_nowhere(job.job_dir)
    assert fake_judge.counters.requests_total == 0


# -- real jobs through submitit's local executor -----------------------------------------------


@pytest.mark.slow
def test_submit_status_wait_result_round_trip_across_processes(workdir: Path) -> None:
    n = 40
    _dataset(workdir / "val.jsonl", n)
    with FakeJudge(json_scores(_score), latency_s=0.15) as judge:
        proc = run_cli(["submit", *_overrides(judge, parallelism=2)], workdir)  # exits at once
        assert proc.returncode == 0, proc.stderr
        job_id = re.search(r"submitted job (\S+)", proc.stdout)[1]
        job = Job.load(job_id, workdir / "judgekit-jobs")
        seen = []
        while not (status := job.status()).finished:
            seen.append(status)
            time.sleep(0.2)
        assert judge.counters.requests_total == n
    assert status.state == "succeeded", status.detail
    assert status.detail == f"{n} examples judged" and (status.done, status.total) == (n, n)
    assert {"pending", "running"} >= {s.state for s in seen} and seen[-1].state == "running"
    assert any(s.total == n and 0 < (s.done or 0) < n for s in seen), seen  # progress, live
    result = job.result()
    assert isinstance(result, judgekit.RunResult)
    assert [r["scores"]["helpfulness"] for r in result.row_scores] == [i % 5 for i in range(n)]
    assert result.row_scores[3]["item"]["response"] == "answer [row=3]"
    assert result.agreement["helpfulness"]["pearson"] == pytest.approx(1.0)
    # A second process finds the job by its id alone: its status and its result.
    other = run_cli(["status", job_id], workdir)
    assert other.returncode == 0 and f"{job_id}  succeeded  {n}/{n} rows (100%)" in other.stdout
    other = run_cli(["result", job_id, "--json"], workdir)
    assert other.returncode == 0, other.stderr
    summary = json.loads(other.stdout)
    assert summary["mlflow_run_id"] == result.run_id == status.mlflow_run_id
    assert summary["agreement"]["helpfulness"]["n_scored"] == n
    [run] = _runs(workdir, job_id)
    assert run.info.run_id == result.run_id and run.info.status == "FINISHED"
    assert run.data.metrics["job/rows_done"] == run.data.metrics["job/rows_total"] == n
    assert run.data.params["judge.api_key_env"] == TEST_KEY_ENV
    assert job.store.record()["key_env"] == TEST_KEY_ENV
    with pytest.raises(ConfigError, match="is succeeded; only a failed or cancelled job"):
        job.resubmit()
    _assert_key_nowhere(workdir)  # job.json, submitit's pickles and logs, results, mlflow.db


def _cached_answers(cache_dir: Path) -> int:
    with sqlite3.connect(cache_dir / "responses.sqlite3") as conn:
        return conn.execute("select count(*) from responses").fetchone()[0]


@pytest.mark.slow
def test_a_killed_job_is_reported_failed_and_resubmitting_it_resumes_from_the_cache(
    workdir: Path, private_cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    n = 60
    monkeypatch.setenv(TEST_KEY_ENV, TEST_KEY)
    with FakeJudge(json_scores(_score), latency_s=0.15) as judge:
        job = _submit(workdir, judge, n, parallelism=2)
        _until(lambda: judge.counters.completed >= n // 3, what="a third of the rows")
        worker = job.store.record()["state"]["worker_pid"]
        os.kill(worker, signal.SIGKILL)
        failed = job.wait(timeout=60)
        assert failed.state == "failed"
        assert failed.detail.startswith("process killed (signal 9, SIGKILL)")
        answered, sent = _cached_answers(private_cache_dir), judge.counters.requests_total
        assert 0 < answered < n
        resumed = Job.load(job.job_id).resubmit().wait(timeout=180)
        assert (resumed.state, resumed.attempt) == ("succeeded", 2), resumed.detail
        assert judge.counters.requests_total - sent == n - answered  # nothing paid for twice
    result = job.result()
    assert int(result.results["cached"].sum()) == answered
    assert list(result.results["judge"]) == [i % 5 for i in range(n)]
    first, second = _runs(workdir, job.job_id)
    assert first.info.status == "FAILED" and "signal 9" in first.data.tags["judgekit.failure"]
    assert second.info.status == "FINISHED" and second.info.run_id == result.run_id


@pytest.mark.slow
def test_cancel_from_another_process_stops_the_job(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TEST_KEY_ENV, TEST_KEY)
    rows = 300  # 300 × 2 s: the job is still running when `cancel` arrives, even under load
    with FakeJudge(json_scores(_score), latency_s=2.0) as judge:
        job = _submit(workdir, judge, rows, parallelism=1)
        _until(lambda: judge.counters.completed >= 3, what="three rows")
        proc = run_cli(["cancel", job.job_id], workdir)
        assert proc.returncode == 0, proc.stderr
        final = job.wait(timeout=120)
        sent = judge.counters.requests_total
        time.sleep(1.0)
        assert judge.counters.requests_total == sent  # nothing more is sent
    assert (final.state, final.detail) == ("cancelled", "cancelled on request")
    assert sent < rows
    [run] = _runs(workdir, job.job_id)
    assert run.info.status == "FAILED"


def test_only_a_judgekit_worker_is_ever_signalled_directly() -> None:
    from judgekit.jobs.executors import signal_local_worker

    assert signal_local_worker(os.getpid()) is False  # this pytest process is not a worker
    assert signal_local_worker(2**22 + 12345) is False  # no such process
