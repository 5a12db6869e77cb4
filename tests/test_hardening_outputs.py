"""Issue 12, outputs and signals: where a run writes, what a failed write or a signal says.

Every case runs the real CLI in a subprocess against the real fake judge (HTTP on 127.0.0.1).
"""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import TEST_KEY, TEST_KEY_ENV, judge_overrides, run_cli

from judgekit.testing import ChatRequest, FakeJudge, json_scores

N_ROWS = 40


def _row_score(request: ChatRequest) -> dict[str, int]:
    return {"helpfulness": int(re.search(r"\[row=(\d+)\]", request.last_user_text)[1]) % 5}


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
        *judge_overrides(judge),
        "dataset=jsonl",
        f"dataset.path={data}",
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
