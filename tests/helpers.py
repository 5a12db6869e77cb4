"""Plain helpers the tests share: the CLI in a subprocess, fake-judge overrides, data writers.

Fixtures live in conftest.py; everything a test calls directly lives here.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from judgekit.testing.server import FakeJudge  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("JUDGEKIT_DATA_ROOT", ROOT.parent / "shared" / "data"))
TEST_KEY_ENV = "JUDGEKIT_TEST_KEY"
TEST_KEY = "sk-judgekit-test-4f1c9e2a7b6d"  # distinctive: tests scan written files for it
FAST_RETRIES = ["judge.retry_backoff_s=0.01", "judge.retry_max_wait_s=0.2"]


PAIRS_FILE_OVERRIDES = [
    "score=preference",
    "prompt=pairwise_v1",
    "dataset=pairwise_jsonl",
    "dataset.path=pairs.jsonl",
    "dataset.fields.id=qid",
    "dataset.fields.prompt=question",
    "dataset.fields.extra.response_a=ans1",
    "dataset.fields.extra.response_b=ans2",
    "dataset.fields.scores.preference=winner",
    "++dataset.fields.label_map={model_a: A, model_b: B, tie: tie}",
]
"""A pairwise run on ``pairs.jsonl`` with columns qid, question, ans1, ans2 and winner
(model_a / model_b / tie), as several tests write it."""


def judge_overrides(judge: FakeJudge, *, key: bool = True) -> list[str]:
    """Overrides that point ``judge=openai_compatible`` at a fake judge."""
    return [
        "judge=openai_compatible",
        "judge.model=openai/fake-judge",
        f"judge.api_base={judge.url}",
        *([f"judge.api_key_env={TEST_KEY_ENV}"] if key else []),
        *FAST_RETRIES,
    ]


def run_cli(args: list[str], cwd: Path, *, env: dict[str, str] | None = None, timeout: float = 240):
    """``judgekit ARGS`` as a user runs it, in a subprocess; returns the CompletedProcess."""
    full_env = {**os.environ, TEST_KEY_ENV: TEST_KEY, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "judgekit.cli", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def shared_data(relative: str) -> Path:
    """A file under ../shared/data; skips the test (with the reason printed) when absent."""
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"{path} is absent: ../shared/data holds the real datasets (not in a clone)")
    return path


# The embedded local judge. CI sets JUDGEKIT_REQUIRE_LOCAL_MODEL=1, so a missing install fails
# there instead of skipping quietly; elsewhere the tests skip with the reason printed.
def skip_or_fail(reason: str) -> None:
    if os.environ.get("JUDGEKIT_REQUIRE_LOCAL_MODEL") == "1":
        pytest.fail(reason + " (JUDGEKIT_REQUIRE_LOCAL_MODEL=1)")
    pytest.skip(reason)


def assert_gone(pid: int, within_s: float = 10.0) -> None:
    """The process and its whole process group no longer exist (zombies count as gone)."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"process group {pid} is still alive")
        time.sleep(0.1)
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return
    assert state == "Z", f"process {pid} is still alive (state {state})"


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    """Write ``rows`` as a JSON-lines file; returns ``path``."""
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def row_number(request: Any) -> int:
    """The ``[row=N]`` marker test datasets put in each response, read from a judge request."""
    return int(re.search(r"\[row=(\d+)\]", request.last_user_text)[1])


def file_run(judge: Any, path: Path | str, *extra: str) -> list[str]:
    """Overrides for a run of the fake ``judge`` on the JSON-lines file ``path``."""
    return [*judge_overrides(judge), "dataset=jsonl", f"dataset.path={path}", *extra]


def _launchers_missing() -> str:
    """Why the ``[launchers]`` extra's tests cannot run here ('' when they can)."""
    for module in (
        "submitit",
        "hydra_plugins.hydra_joblib_launcher",
        "hydra_plugins.hydra_submitit_launcher",
    ):
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            return f"{module} is not installed: pip install -e '.[launchers]'"
    return ""


needs_launchers = pytest.mark.skipif(bool(_launchers_missing()), reason=_launchers_missing())
"""Tests that run jobs through Hydra's joblib/submitit launchers or submitit itself."""


def assert_one_line_error(proc: Any, needle: str, code: int = 2) -> str:
    """The command exited ``code`` with exactly one ``judgekit: error:`` line holding ``needle``,
    and no traceback; returns that line."""
    assert proc.returncode == code, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("judgekit: error:")]
    assert len(errors) == 1 and needle in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr
    return errors[0]
