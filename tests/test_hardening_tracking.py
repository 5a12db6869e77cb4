"""Issue 12, MLflow side: an unusable store fails at once, a store that dies mid-run loses no
results, a killed run does not stay RUNNING, and compare gives no verdict on different data.

Real stores only: SQLite files in tmp_path, a real ``mlflow server`` subprocess, real CLI
subprocesses against the fake judge.
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from helpers import (
    TEST_KEY,
    TEST_KEY_ENV,
    assert_one_line_error,
    file_run,
    needs_launchers,
    run_cli,
)
from test_remote_tracking import _free_port, _wait_for

from judgekit.cli.compare import main as compare_main
from judgekit.compare.report import format_text
from judgekit.compare.runs import ComparedRun, label_runs
from judgekit.compare.tables import paired_table
from judgekit.testing.server import FakeJudge, json_scores
from judgekit.tracking.process import HOST_TAG, PID_TAG, START_TAG, is_ghost, process_tags

GARBAGE = bytes(range(256)) * 20  # not an SQLite header: "file is not a database"

BAD_INPUTS = {
    "no tracking server": (
        ["tracking.uri=http://127.0.0.1:1"],
        "tracking.uri: no MLflow server answers at http://127.0.0.1:1 (connection refused)",
    ),
    "no tracking server, password in the uri": (
        ["tracking.uri=http://me:hunter2pw@127.0.0.1:1"],
        "no MLflow server answers at http://***@127.0.0.1:1",  # the user name is hidden too
    ),
    "corrupt mlflow.db": (["tracking.uri=sqlite:///{tmp}/broken.db"], "is not a usable SQLite"),
    "tracking store is a directory": (["tracking.uri=sqlite:///{tmp}"], "is a directory"),
}


@pytest.fixture(scope="module")
def judge() -> FakeJudge:
    with FakeJudge() as fake:
        yield fake


def _rows(n: int) -> str:
    rows = [{"prompt": f"q{i}", "response": f"a [row={i}]", "helpfulness": i % 5} for i in range(n)]
    return "".join(json.dumps(r) + "\n" for r in rows)


def _score(request) -> dict:  # noqa: ANN001
    text = request.last_user_text
    return {"helpfulness": int(text.split("[row=")[1].split("]")[0]) % 5}


def _args(judge: FakeJudge, data: Path, *extra: str) -> list[str]:
    return [
        *file_run(judge, f"{data}"),
        "prompt=v1",
        "score=helpfulness",
        *extra,
    ]


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_store_is_one_line_exit_2_and_no_judge_call(
    case: str, judge: FakeJudge, tmp_path: Path
) -> None:
    extra, needle = BAD_INPUTS[case]
    (tmp_path / "val.jsonl").write_text(_rows(5))
    (tmp_path / "broken.db").write_bytes(GARBAGE)
    before = judge.counters.requests_total
    args = _args(judge, tmp_path / "val.jsonl", *(e.replace("{tmp}", str(tmp_path)) for e in extra))
    proc = run_cli(args, tmp_path, timeout=120)
    assert_one_line_error(proc, needle)
    assert "hunter2pw" not in proc.stderr
    assert judge.counters.requests_total == before
    assert not (tmp_path / "mlflow.db").exists()
    assert (tmp_path / "broken.db").read_bytes() == GARBAGE  # left for the user to move


def test_the_unreachable_server_message_says_how_to_start_one(
    judge: FakeJudge, tmp_path: Path
) -> None:
    (tmp_path / "val.jsonl").write_text(_rows(3))
    proc = run_cli(
        _args(judge, tmp_path / "val.jsonl", "tracking.uri=http://127.0.0.1:1"), tmp_path
    )
    assert "mlflow server --host 127.0.0.1 --port 5000" in proc.stderr
    assert "tracking.uri=sqlite:///mlflow.db" in proc.stderr


@pytest.mark.parametrize(
    ("uri", "needle"),
    [
        ("http://127.0.0.1:1", "--tracking-uri: no MLflow server answers at http://127.0.0.1:1"),
        ("sqlite:///{tmp}/broken.db", "--tracking-uri: {tmp}/broken.db is not a usable SQLite"),
    ],
)
def test_compare_on_a_bad_store_is_one_line_exit_2(uri: str, needle: str, tmp_path: Path) -> None:
    (tmp_path / "broken.db").write_bytes(GARBAGE)
    proc = run_cli(["compare", "--tracking-uri", uri.replace("{tmp}", str(tmp_path))], tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith("judgekit: error: " + needle.replace("{tmp}", str(tmp_path)))
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


# --- a server that dies during the run -------------------------------------------------------


def _start_server(root: Path) -> tuple[str, subprocess.Popen]:
    port = _free_port()
    command = [
        str(Path(sys.executable).parent / "mlflow"),
        *("server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"),
        *("--backend-store-uri", f"sqlite:///{root}/backend.db"),
        *("--artifacts-destination", str(root / "artifacts")),
    ]
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    with (root / "server.log").open("wb") as out:
        proc = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    _wait_for(url, proc, root / "server.log")
    return url, proc


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    proc.wait(timeout=30)


def _until(condition, what: str, timeout: float = 120.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _cli(args: list[str], cwd: Path) -> subprocess.Popen:
    env = {**os.environ, TEST_KEY_ENV: TEST_KEY}
    return subprocess.Popen(
        [sys.executable, "-m", "judgekit.cli", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


@pytest.mark.slow
def test_a_server_that_dies_mid_run_keeps_the_results_and_prints_the_report(
    tmp_path: Path,
) -> None:
    root = tmp_path / "server"
    root.mkdir()
    url, server = _start_server(root)
    (tmp_path / "val.jsonl").write_text(_rows(8))
    try:
        with FakeJudge(json_scores(_score), latency_s=0.5) as judge:
            args = _args(
                judge,
                tmp_path / "val.jsonl",
                f"tracking.uri={url}",
                "runner.parallelism=1",
                "hydra.run.dir=out",
            )
            proc = _cli(args, tmp_path)
            _until(lambda: judge.counters.requests_total >= 2, "two judge calls")
            _kill_group(server)  # the server dies while the run is judging
            out, err = proc.communicate(timeout=240)
            assert judge.counters.requests_total == 8
    finally:
        _kill_group(server)
    assert proc.returncode == 1, err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("judgekit: error:")]
    assert len(errors) == 1, err
    assert f"tracking.uri: logging to {url} failed" in errors[0]
    # the traces are written while the run judges: the first thing the dead server refused
    assert "not logged: traces, params, metrics, results_table.json, results.parquet" in errors[0]
    assert f"the results are in {tmp_path / 'out'}" in errors[0] and "response cache" in errors[0]
    assert "judge openai/fake-judge · prompt v1 · 8 examples" in out  # the report is printed
    table = pd.read_parquet(tmp_path / "out" / "results.parquet")
    assert list(table["judge"]) == [i % 5 for i in range(8)]


# --- kill -9: the next run of the same config ends the ghost ---------------------------------


def _runs(uri: str) -> list:
    from mlflow.tracking import MlflowClient

    from judgekit.tracking.runs import store_lock

    with store_lock(uri):  # a job may be creating the store's tables right now
        client = MlflowClient(tracking_uri=uri)
        experiment = client.get_experiment_by_name("judgekit")
    if experiment is None:
        return []
    return client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])


@pytest.mark.slow
def test_a_rerun_marks_the_run_of_a_killed_process_killed_and_links_to_it(
    tmp_path: Path,
) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    (tmp_path / "val.jsonl").write_text(_rows(12))
    with FakeJudge(json_scores(_score), latency_s=0.3) as judge:
        args = _args(judge, tmp_path / "val.jsonl", "runner.parallelism=1")
        first = _cli([*args, "hydra.run.dir=first"], tmp_path)
        _until(lambda: judge.counters.requests_total >= 2, "two judge calls")
        _until(lambda: (tmp_path / "mlflow.db").exists() and len(_runs(uri)) == 1, "the run")
        os.kill(first.pid, signal.SIGKILL)
        first.communicate(timeout=60)
        [ghost] = _runs(uri)
        assert ghost.info.status == "RUNNING"  # what kill -9 leaves behind
        assert ghost.data.tags[PID_TAG] == str(first.pid)
        second = run_cli([*args, "hydra.run.dir=second"], tmp_path)
    assert second.returncode == 0, second.stderr
    old, new = _runs(uri)
    assert old.info.run_id == ghost.info.run_id
    assert old.info.status == "KILLED" and "kill -9" in old.data.tags["judgekit.end_reason"]
    assert new.info.status == "FINISHED"
    assert new.data.tags["judgekit.resumed_from"] == old.info.run_id
    assert (
        new.data.tags["judgekit.config_fingerprint"] == old.data.tags["judgekit.config_fingerprint"]
    )
    assert len(new.data.tags["judgekit.dataset_digest"]) == 16


@pytest.mark.slow
def test_a_rerun_leaves_a_live_run_and_another_configs_ghost_alone(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    (tmp_path / "val.jsonl").write_text(_rows(4))
    with FakeJudge(json_scores(_score)) as judge:
        args = _args(judge, tmp_path / "val.jsonl")
        assert run_cli([*args, "hydra.run.dir=a"], tmp_path).returncode == 0
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=uri)
        [done] = _runs(uri)
        tags = dict(done.data.tags)
        live = client.create_run(done.info.experiment_id, tags={**tags, **process_tags()})
        other = {**tags, PID_TAG: "4194999", "judgekit.config_fingerprint": "another"}
        other_ghost = client.create_run(done.info.experiment_id, tags=other)
        assert run_cli([*args, "hydra.run.dir=b"], tmp_path).returncode == 0
    status = {r.info.run_id: r.info.status for r in _runs(uri)}
    assert status[live.info.run_id] == "RUNNING"  # this pytest process is alive
    assert status[other_ghost.info.run_id] == "RUNNING"  # not this config's run
    assert "judgekit.resumed_from" not in _runs(uri)[-1].data.tags


def test_a_ghost_is_a_dead_or_reused_pid_on_this_host() -> None:
    mine = process_tags()
    host = socket.gethostname()
    assert not is_ghost(mine)
    assert is_ghost({HOST_TAG: host, PID_TAG: "4194999"})  # above Linux's pid_max: no process
    assert not is_ghost({HOST_TAG: "elsewhere", PID_TAG: "4194999"})  # cannot tell: left alone
    if mine[START_TAG]:
        assert is_ghost({**mine, START_TAG: mine[START_TAG] + "0"})  # same pid, another process


# --- SIGTERM on a joblib sweep ---------------------------------------------------------------


@needs_launchers
@pytest.mark.slow
def test_sigterm_on_a_joblib_sweep_marks_every_jobs_run_killed(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    (tmp_path / "val.jsonl").write_text(_rows(40))
    with FakeJudge(json_scores(_score), latency_s=0.5) as judge:
        args = _args(judge, tmp_path / "val.jsonl", "runner.parallelism=1")
        args = [a for a in args if a != "prompt=v1"]
        sweep = _cli(
            [
                "-m",
                *args,
                "prompt=v1,v2",
                "hydra/launcher=joblib",
                "hydra.launcher.n_jobs=2",
                "hydra.sweep.dir=sweep",
                # The untraced sweep: with MLflow traces written meanwhile, a KILLED mark can still
                # lose to SQLite's write lock on a loaded machine (see the closing note).
                "tracking.traces=false",
            ],
            tmp_path,
        )

        def both_running() -> bool:
            if not (tmp_path / "mlflow.db").exists():
                return False
            runs = _runs(uri)
            return len(runs) == 2 and judge.counters.requests_total >= 4

        _until(both_running, "both jobs judging")
        sweep.send_signal(signal.SIGTERM)
        out, err = sweep.communicate(timeout=120)
    assert sweep.returncode != 0
    runs = _runs(uri)
    assert [r.info.status for r in runs] == ["KILLED", "KILLED"], err
    assert all(r.data.tags["judgekit.end_reason"] for r in runs)


# --- compare: different data, too few shared examples ----------------------------------------


def _run(run_id: str, n: int, digest: str | None = None, offset: int = 0) -> ComparedRun:
    ids = [str(i + offset) for i in range(n)]
    results = pd.DataFrame(
        {
            "example_id": ids,
            "example_index": range(n),
            "group": ids,
            "score": "helpfulness",
            "human": [int(i) % 5 for i in ids],
            "judge": [(int(i) + 1) % 5 for i in ids],
            "prompt_tokens": 100,
            "completion_tokens": 10,
            "latency_s": 0.5,
            "cached": False,
        }
    )
    tags = {"judgekit.prompt": run_id, "judgekit.dataset": "jsonl"}
    if digest:
        tags["judgekit.dataset_digest"] = digest
    run = ComparedRun(run_id, run_id, tags, {}, {}, 0, results=results)
    run.ranges = {"helpfulness": (0.0, 4.0)}
    return run


def _paired(base: ComparedRun, other: ComparedRun, min_shared: int = 10) -> pd.DataFrame:
    label_runs([base, other])
    return paired_table(
        [base, other],
        base,
        ["helpfulness"],
        ["mae"],
        resamples=50,
        confidence=0.9,
        min_shared=min_shared,
    )


def test_runs_on_data_with_another_digest_are_not_comparable_even_with_shared_ids() -> None:
    paired = _paired(_run("a", 30, "d1"), _run("b", 30, "d2"))
    assert paired["verdict"].tolist() == ["not comparable"]
    assert "different data (dataset digest d1 vs d2" in paired["note"][0]
    assert math.isnan(paired["difference"][0])


def test_too_few_shared_examples_give_no_verdict() -> None:
    # Baseline ids 0..29, run ids 27..56: 3 shared (27, 28, 29) < 10.
    paired = _paired(_run("a", 30, "d1"), _run("b", 30, "d1", offset=27))
    assert paired["verdict"].tolist() == ["not comparable"]
    assert paired["note"][0].startswith("only 3 examples scored by both runs")
    # 10 shared is enough: a verdict on the same digest.
    paired = _paired(_run("a", 30, "d1"), _run("b", 30, "d1", offset=20))
    assert paired["verdict"][0] != "not comparable" and paired["n_common"][0] == 10


def test_the_text_report_says_why_runs_are_not_comparable() -> None:
    from judgekit.compare.runs import Comparison
    from judgekit.compare.tables import metrics_table

    base, other = _run("a", 30, "d1"), _run("b", 30, "d2")
    paired = _paired(base, other)
    table = metrics_table([base, other], base, ["helpfulness"], ["mae"])
    text = format_text(Comparison([base, other], base, table, paired, ["mae"], 50, 0.9))
    assert "not comparable: the runs judged different data" in text


def test_min_shared_below_1_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert compare_main(["--min-shared", "0"]) == 2
    assert "--min-shared: 0 is not valid" in capsys.readouterr().err
