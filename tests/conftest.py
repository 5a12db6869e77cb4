"""Shared fixtures: offline environment, a real fake judge server, a scratch working directory."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# Offline, as in CI: these must be set before litellm, mlflow or datasets are imported.
os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from helpers import skip_or_fail

from judgekit.config.schema import LocalModelConfig  # noqa: E402
from judgekit.errors import EndpointError, WeightsError  # noqa: E402
from judgekit.local import resolve_weights  # noqa: E402
from judgekit.local.server import _require_server_modules  # noqa: E402
from judgekit.testing.server import FakeJudge  # noqa: E402


def _cache_dir_at(path: Path) -> Path:
    """``path`` as a response cache whose ``weights`` are the user's (assembled GGUF files are
    shared, not rebuilt)."""
    from judgekit.local.weights import default_cache_dir

    shared_weights = (default_cache_dir() / "weights").resolve()
    shared_weights.mkdir(parents=True, exist_ok=True)
    (path / "weights").symlink_to(shared_weights)
    return path


@pytest.fixture(scope="session", autouse=True)
def session_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The response cache of module- and session-scoped fixtures: never the user's own, where an
    earlier test run's fake judge at the same port would answer from the cache."""
    path = _cache_dir_at(tmp_path_factory.mktemp("judgekit-session-cache"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JUDGEKIT_CACHE_DIR", str(path))
        yield path


@pytest.fixture(autouse=True)
def private_cache_dir(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Each test gets its own response cache (subprocesses inherit it through the environment)."""
    path = _cache_dir_at(tmp_path_factory.mktemp("judgekit-cache"))
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


@pytest.fixture(scope="module")
def server_installed() -> None:
    try:
        _require_server_modules()
    except EndpointError as err:
        skip_or_fail(f"llama.cpp server not available: {err}")


@pytest.fixture(scope="module")
def model_path(server_installed: None) -> Path:
    """The real 0.5B weights, from judgekit's cache or the installed packages (never the hub)."""
    old = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        return resolve_weights(LocalModelConfig(weights="qwen2.5-coder-0.5b"))
    except WeightsError as err:
        skip_or_fail(f"local weights not available: {err}")
    finally:
        if old is None:
            del os.environ["HF_HUB_OFFLINE"]
        else:
            os.environ["HF_HUB_OFFLINE"] = old
