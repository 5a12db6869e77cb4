"""``tracking.uri=http://HOST:PORT``: a job logged to a real ``mlflow server`` on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from helpers import TEST_KEY, TEST_KEY_ENV, assert_gone, judge_overrides, row_number

import judgekit
from judgekit.testing.server import FakeJudge, json_scores

N_ROWS = 30


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(url: str, proc: subprocess.Popen, log: Path, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"mlflow server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"mlflow server did not answer within {timeout} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A real ``mlflow server`` (SQLite backend, proxied artifacts); stopped by process group."""
    root = tmp_path_factory.mktemp("mlflow-server")
    port, log = _free_port(), root / "server.log"
    command = [
        str(Path(sys.executable).parent / "mlflow"),
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--backend-store-uri",
        f"sqlite:///{root}/backend.db",
        "--artifacts-destination",
        str(root / "artifacts"),
    ]
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(url, proc, log)
        yield url, root
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        assert_gone(proc.pid)


def _score(request) -> dict:  # noqa: ANN001
    return {"helpfulness": row_number(request) % 5}


@pytest.mark.slow
def test_a_job_logs_its_run_progress_and_artifacts_to_a_remote_mlflow_server(
    workdir: Path, mlflow_server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow.tracking import MlflowClient

    url, server_root = mlflow_server
    rows = [
        {"prompt": f"q{i}", "response": f"a [row={i}]", "helpfulness": i % 5} for i in range(30)
    ]
    (workdir / "val.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    monkeypatch.setenv(TEST_KEY_ENV, TEST_KEY)
    with FakeJudge(json_scores(_score), latency_s=0.1) as judge:
        job = judgekit.submit(
            "openai_compatible",
            "v1",
            "helpfulness",
            "val.jsonl",
            parallelism=1,
            overrides=[
                *judge_overrides(judge)[1:],
                f"tracking.uri={url}",
                "tracking.experiment=remote",
            ],
        )
        status = job.wait(timeout=240)
    assert status.state == "succeeded", status.detail
    result = job.result()
    client = MlflowClient(tracking_uri=url)
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED" and run.data.tags["judgekit.job_id"] == job.job_id
    assert client.get_experiment(run.info.experiment_id).name == "remote"
    assert run.data.metrics["helpfulness/pearson"] == pytest.approx(1.0)
    history = client.get_metric_history(run.info.run_id, "job/rows_done")
    assert history[-1].value == N_ROWS and [m.step for m in history] == sorted(
        m.step for m in history
    )
    local = client.download_artifacts(run.info.run_id, "results.parquet", str(workdir))
    pd.testing.assert_frame_equal(pd.read_parquet(local), result.results)
    assert not (workdir / "mlflow.db").exists()  # nothing was logged locally
    assert any((server_root / "artifacts").rglob("results.parquet"))
    for root in (workdir, server_root):
        for path in root.rglob("*"):
            if path.is_file():
                assert TEST_KEY.encode() not in path.read_bytes(), f"key leaked into {path}"
