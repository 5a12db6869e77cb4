"""Issue 12, outputs and signals: where a run writes, what a failed write or a signal says.

The cases run the real CLI in a subprocess (one calls the Python API) against the real fake judge
(HTTP on 127.0.0.1); a full disk is a real file size limit (RLIMIT_FSIZE) on the subprocess.
"""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
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
)

from judgekit.testing.server import ChatRequest, FakeJudge, json_scores

N_ROWS = 40


def _row_score(request: ChatRequest) -> dict[str, int]:
    return {"helpfulness": row_number(request) % 5}


def _dataset(path: Path, rows: int = N_ROWS) -> Path:
    lines = [
        {"prompt": f"q{i}", "response": f"a [row={i}]", "helpfulness": (i * 3) % 5}
        for i in range(rows)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    return path


def _args(judge: FakeJudge, data: Path, *extra: str, sweep: bool = False) -> list[str]:
    """One run of prompt v1, or with ``sweep`` a two-job ``-m`` sweep over prompts v1 and v2."""
    return [
        *(["-m"] if sweep else []),
        *file_run(judge, f"{data}"),
        "prompt=v1,v2" if sweep else "prompt=v1",
        "score=helpfulness",
        *extra,
    ]


def _errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("judgekit: error:")]


@pytest.fixture(scope="module")
def judge() -> Iterator[FakeJudge]:
    with FakeJudge(json_scores(_row_score)) as server:
        yield server


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _dataset(tmp_path_factory.mktemp("data") / "val.jsonl")


# Output directories a run cannot use. Tests run as root, which ignores permission bits (a chmod
# 0o500 directory stays writable for root), so the unwritable ones are places no permission lets
# anyone write: under a regular file, /proc (the kernel refuses new entries) and /sys (sysfs,
# mkdir is not permitted). "{old}" is a directory holding an earlier run's results.
BAD_OUTPUT_DIRS = {
    "run dir under a file": (
        ["hydra.run.dir=/etc/hostname/sub"],
        "/etc/hostname is not a directory",
    ),
    "new run dir in /proc": (["hydra.run.dir=/proc/judgekit-out"], "cannot create files in /proc"),
    "existing run dir /proc": (
        ["hydra.run.dir=/proc"],
        "hydra.run.dir: the output directory /proc",
    ),
    "run dir in /sys": (["hydra.run.dir=/sys/judgekit-out"], "cannot create files in /sys"),
    "sweep dir in /proc": (
        ["hydra.sweep.dir=/proc/judgekit-sweep"],
        "hydra.sweep.dir: the sweep directory /proc/judgekit-sweep cannot be written",
    ),
    "run dir of an earlier run": (
        ["hydra.run.dir={old}"],
        "already holds another run's results (results.parquet, summary.json)",
    ),
    "sweep dir of an earlier sweep": (
        ["hydra.sweep.dir={old}"],
        "already holds another sweep (multirun.yaml)",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_OUTPUT_DIRS))
def test_an_unusable_output_dir_is_one_line_exit_2_and_no_judge_call(
    case: str, judge: FakeJudge, data: Path, tmp_path: Path
) -> None:
    extra, needle = BAD_OUTPUT_DIRS[case]
    old = tmp_path / "old"
    old.mkdir()
    for name in ("results.parquet", "summary.json", "multirun.yaml"):
        (old / name).write_text("an earlier run's\n")
    before = judge.counters.requests_total
    extra = [e.replace("{old}", str(old)) for e in extra]
    args = _args(judge, data, *extra, sweep="sweep" in case)
    proc = run_cli(args, tmp_path, timeout=120)
    assert proc.returncode == 2, proc.stderr
    errors = _errors(proc.stderr)
    assert len(errors) == 1 and needle in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert judge.counters.requests_total == before
    assert not (tmp_path / "mlflow.db").exists()
    assert (old / "results.parquet").read_text() == "an earlier run's\n"  # never overwritten


def test_the_python_api_refuses_an_out_dir_holding_results(
    judge: FakeJudge, data: Path, tmp_path: Path
) -> None:
    import judgekit
    from judgekit.errors import ConfigError

    (tmp_path / "summary.json").write_text("{}\n")
    before = judge.counters.requests_total
    with pytest.raises(ConfigError, match="already holds another run's results"):
        judgekit.evaluate(
            "openai_compatible",
            "v1",
            "helpfulness",
            str(data),
            out_dir=tmp_path,
            overrides=judge_overrides(judge, key=False),
        )
    assert judge.counters.requests_total == before


def _noisy_answer(request: ChatRequest) -> str:
    """A score plus 600 characters that do not compress: results.parquet outgrows the limit."""
    row = _row_score(request)
    return json.dumps(row) + " " + os.urandom(300).hex()


FILE_LIMIT = 64 * 1024  # bytes; `ulimit -f 64` in a shell


def _limit_file_size() -> None:
    """In the child: files may not grow past FILE_LIMIT (disk full for one process).

    SIGXFSZ is ignored so the write fails with EFBIG instead of killing the process (CPython
    ignores it at start anyway: judgekit itself need not)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_LIMIT, FILE_LIMIT))


def test_results_that_cannot_be_written_are_one_error_naming_the_path(tmp_path: Path) -> None:
    data = _dataset(tmp_path / "val.jsonl", rows=200)
    with FakeJudge(_noisy_answer) as judge:
        args = _args(judge, data, "cache.mode=off", "tracking.enabled=false", "hydra.run.dir=out")
        proc = subprocess.run(
            [sys.executable, "-m", "judgekit.cli", *args],
            cwd=tmp_path,
            env={**os.environ, TEST_KEY_ENV: TEST_KEY},
            capture_output=True,
            text=True,
            timeout=240,
            preexec_fn=_limit_file_size,
        )
        assert judge.counters.requests_total == 200  # the calls were made, then the write failed
    assert proc.returncode == 1, proc.stderr
    [error] = _errors(proc.stderr)
    assert f"could not write the results to {tmp_path / 'out' / 'results.parquet'}" in error
    assert "File too large" in error and "ulimit -f" in error
    assert "cache.mode=off" in error and "a rerun pays for every call again" in error
    assert "Traceback" not in proc.stderr
    assert not list((tmp_path / "out").glob("results.parquet*"))  # no partial file left behind


def test_a_failed_write_with_the_cache_on_says_the_rerun_is_free(
    judge: FakeJudge, data: Path, tmp_path: Path, private_cache_dir: Path
) -> None:
    out = tmp_path / "out"
    (out / "results.parquet.tmp").mkdir(parents=True)  # the table's temporary file cannot be made
    proc = run_cli(_args(judge, data, "hydra.run.dir=out"), tmp_path)
    assert proc.returncode == 1, proc.stderr
    [error] = _errors(proc.stderr)
    assert f"could not write the results to {out / 'results.parquet'}" in error
    cache = private_cache_dir / "responses.sqlite3"
    assert f"the judge's answers are in the response cache at {cache}" in error
    assert "rerun the same command to write them without paying for the calls again" in error
    assert "Traceback" not in proc.stderr
    before = judge.counters.requests_total
    (out / "results.parquet.tmp").rmdir()
    rerun = run_cli(_args(judge, data, "hydra.run.dir=out"), tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    assert judge.counters.requests_total == before  # every answer came from the cache
    assert (out / "results.parquet").is_file()


def _start_together(args: list[str], cwd: Path, n: int = 2) -> list[subprocess.Popen[str]]:
    """``n`` identical commands started at once (a script loop, a CI matrix, two shells)."""
    env = {**os.environ, TEST_KEY_ENV: TEST_KEY}
    command = [sys.executable, "-m", "judgekit.cli", *args]
    return [
        subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(n)
    ]


def _finish(procs: list[subprocess.Popen[str]]) -> None:
    for proc in procs:
        _, stderr = proc.communicate(timeout=240)
        assert proc.returncode == 0, stderr.decode()


def _mlflow_runs(workdir: Path) -> list:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{workdir}/mlflow.db")
    experiment = client.get_experiment_by_name("judgekit")
    return client.search_runs([experiment.experiment_id])


def test_two_runs_started_together_never_share_a_directory(
    judge: FakeJudge, data: Path, workdir: Path
) -> None:
    _finish(_start_together(_args(judge, data), workdir))
    dirs = sorted(workdir.glob("outputs/*/*"))
    assert len(dirs) == 2, dirs  # same second, same judge, prompt and score: two directories
    assert all((d / "results.parquet").is_file() and (d / "summary.json").is_file() for d in dirs)
    runs = {json.loads((d / "summary.json").read_text())["mlflow_run_id"] for d in dirs}
    assert runs == {r.info.run_id for r in _mlflow_runs(workdir)} and len(runs) == 2


def test_two_sweeps_started_together_get_their_own_folder_and_sweep_id(
    judge: FakeJudge, data: Path, workdir: Path
) -> None:
    _finish(_start_together(_args(judge, data, sweep=True), workdir))
    sweeps = sorted(workdir.glob("multirun/*/*"))
    assert len(sweeps) == 2, sweeps
    assert all(len(list(s.glob("*/results.parquet"))) == 2 for s in sweeps)
    runs = _mlflow_runs(workdir)
    by_sweep: dict[str, list[str]] = {}
    for run in runs:
        by_sweep.setdefault(run.data.tags["judgekit.sweep_id"], []).append(
            run.data.tags["judgekit.sweep_job"]
        )
    assert sorted(by_sweep) == [str(s.resolve()) for s in sweeps]
    assert all(sorted(jobs) == ["0", "1"] for jobs in by_sweep.values())


def _cached_answers(cache_dir: Path) -> int:
    path = cache_dir / "responses.sqlite3"
    if not path.exists():
        return 0
    with sqlite3.connect(path) as conn:
        try:
            return conn.execute("select count(*) from responses").fetchone()[0]
        except sqlite3.OperationalError:  # the table is not created yet
            return 0


@pytest.mark.parametrize(
    ("sig", "code", "what"),
    [(signal.SIGINT, 130, "interrupted (Ctrl-C)"), (signal.SIGTERM, 143, "terminated (SIGTERM)")],
    ids=["ctrl-c", "sigterm"],
)
def test_a_signal_mid_run_is_one_line_saying_what_was_kept(
    sig: signal.Signals, code: int, what: str, workdir: Path, private_cache_dir: Path
) -> None:
    data = _dataset(workdir / "val.jsonl", rows=200)
    with FakeJudge(json_scores(_row_score), latency_s=0.2) as judge:
        [proc] = _start_together(_args(judge, data, "hydra.run.dir=out"), workdir, n=1)
        deadline = time.monotonic() + 180
        while _cached_answers(private_cache_dir) < 3:  # answered and stored: the run is judging
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=120)
    stderr = stderr.decode()
    assert proc.returncode == code, stderr
    assert "Traceback" not in stderr
    [line] = [ln for ln in stderr.splitlines() if ln.startswith("judgekit:")]
    cache = private_cache_dir / "responses.sqlite3"
    assert re.fullmatch(
        rf"judgekit: {re.escape(what)}; \d+ of 200 judge calls were answered; their answers are "
        rf"in the response cache at {re.escape(str(cache))}: rerun the same command to resume "
        "without paying for them again",
        line,
    ), line
    [run] = _mlflow_runs(workdir)
    assert run.info.status != "RUNNING"
    from judgekit import tracking

    if hasattr(tracking, "end_active_runs"):
        assert run.info.status == "KILLED"


def test_a_statistics_warning_is_one_plain_line_without_source_echo(
    data: Path, tmp_path: Path
) -> None:
    with FakeJudge(json_scores(lambda request: {"helpfulness": 3})) as constant:
        proc = run_cli(_args(constant, data, "hydra.run.dir=out"), tmp_path)
    assert proc.returncode == 0, proc.stderr
    printed = (proc.stdout + proc.stderr).splitlines()
    warned = [line for line in printed if "Warning" in line]
    # pearson, spearman and kendall of a constant judge are undefined: one line says so.
    assert len(warned) == 1, warned
    assert warned[0].endswith(
        "[judgekit][WARNING] - JudgekitStatsWarning: pearson, spearman, kendall undefined (NaN): "
        f"judge scores are all 3 over {N_ROWS} scored rows"
    )
    assert not any("agreement(" in line or ".py:" in line for line in printed)  # no source echo
    assert "JudgekitStatsWarning: pearson" in (tmp_path / "out" / "cli.log").read_text()


@needs_launchers
@pytest.mark.slow
@pytest.mark.parametrize(
    "launcher",
    [["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"], ["hydra/launcher=submitit_local"]],
    ids=["joblib", "submitit_local"],
)
def test_jobs_in_worker_processes_share_their_sweeps_one_directory(
    launcher: list[str], judge: FakeJudge, data: Path, workdir: Path
) -> None:
    # The random part of the sweep directory is drawn once by the command and inherited by the
    # workers through the environment: a worker drawing its own would split the sweep.
    proc = run_cli(_args(judge, data, *launcher, sweep=True), workdir)
    assert proc.returncode == 0, proc.stderr
    [sweep] = workdir.glob("multirun/*/*")
    assert len(list(sweep.glob("*/results.parquet"))) == 2
    assert {r.data.tags["judgekit.sweep_id"] for r in _mlflow_runs(workdir)} == {str(sweep)}
