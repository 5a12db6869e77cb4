"""Shared fixtures: offline environment, a real fake judge server, a scratch working directory."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# Offline, as in CI: these must be set before litellm, mlflow or datasets are imported.
os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from judgekit.testing import FakeJudge  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("JUDGEKIT_DATA_ROOT", ROOT.parent / "shared" / "data"))
TEST_KEY_ENV = "JUDGEKIT_TEST_KEY"
TEST_KEY = "sk-judgekit-test-4f1c9e2a7b6d"  # distinctive: tests scan written files for it
FAST_RETRIES = ["judge.retry_backoff_s=0.01", "judge.retry_max_wait_s=0.2"]


@pytest.fixture
def fake_judge() -> Iterator[FakeJudge]:
    """A fake OpenAI-compatible judge on 127.0.0.1 with the default stable JSON answers."""
    with FakeJudge() as judge:
        yield judge


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in a scratch directory, so ``sqlite:///mlflow.db`` and ``outputs/`` land there."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


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
