"""Shared fixtures: offline environment, a real fake judge server, a scratch working directory."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

# Offline, as in CI: these must be set before litellm, mlflow or datasets are imported.
os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from judgekit.config.schema import LocalModelConfig  # noqa: E402
from judgekit.errors import EndpointError, WeightsError  # noqa: E402
from judgekit.local import resolve_weights  # noqa: E402
from judgekit.local.server import _require_server_modules  # noqa: E402
from judgekit.testing.server import FakeJudge  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("JUDGEKIT_DATA_ROOT", ROOT.parent / "shared" / "data"))
TEST_KEY_ENV = "JUDGEKIT_TEST_KEY"
TEST_KEY = "sk-judgekit-test-4f1c9e2a7b6d"  # distinctive: tests scan written files for it
FAST_RETRIES = ["judge.retry_backoff_s=0.01", "judge.retry_max_wait_s=0.2"]


@pytest.fixture(autouse=True)
def private_cache_dir(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Each test gets its own response cache (subprocesses inherit it through the environment)."""
    from judgekit.local.weights import default_cache_dir

    shared_weights = default_cache_dir() / "weights"
    path = tmp_path_factory.mktemp("judgekit-cache")
    shared_weights.mkdir(parents=True, exist_ok=True)
    (path / "weights").symlink_to(shared_weights)  # assembled GGUF files are shared, not rebuilt
    monkeypatch.setenv("JUDGEKIT_CACHE_DIR", str(path))
    return path


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


# The embedded local judge. CI sets JUDGEKIT_REQUIRE_LOCAL_MODEL=1, so a missing install fails
# there instead of skipping quietly; elsewhere the tests skip with the reason printed.
def _skip_or_fail(reason: str) -> None:
    if os.environ.get("JUDGEKIT_REQUIRE_LOCAL_MODEL") == "1":
        pytest.fail(reason + " (JUDGEKIT_REQUIRE_LOCAL_MODEL=1)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def server_installed() -> None:
    try:
        _require_server_modules()
    except EndpointError as err:
        _skip_or_fail(f"llama.cpp server not available: {err}")


@pytest.fixture(scope="module")
def model_path(server_installed: None) -> Path:
    """The real 0.5B weights, from judgekit's cache or the installed packages (never the hub)."""
    old = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        return resolve_weights(LocalModelConfig(weights="qwen2.5-coder-0.5b"))
    except WeightsError as err:
        _skip_or_fail(f"local weights not available: {err}")
    finally:
        if old is None:
            del os.environ["HF_HUB_OFFLINE"]
        else:
            os.environ["HF_HUB_OFFLINE"] = old


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
