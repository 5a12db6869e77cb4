"""A llama.cpp server that judgekit starts, owns and always stops.

``LocalServer`` runs ``python -m llama_cpp.server`` on a free port of 127.0.0.1, in a process group
of its own, with its output in a log file. It waits until ``/v1/models`` lists the model alias,
and stops the whole group on ``stop()``: at the end of a ``with`` block (also after an error or
Ctrl-C), at interpreter exit through ``atexit``, or through :func:`stop_all`, which a SIGTERM
handler can call. On Linux the server also gets SIGKILL if the thread that started it dies, so
not even ``kill -9`` of judgekit leaves it running.
"""

from __future__ import annotations

import atexit
import ctypes
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from judgekit.errors import EndpointError

__all__ = ["LocalServer", "stop_all"]

STOP_WAIT_S = 10.0
"""How long ``stop()`` waits after SIGTERM before it sends SIGKILL."""
_POLL_S = 0.2
_PORT_ATTEMPTS = 3
_LOG_TAIL_LINES = 15
_SERVER_MODULES = ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context")
# llama_cpp.server reads every setting it is not given from an environment variable of the same
# name (any case), e.g. API_KEY, SEED or VERBOSE, and takes a CONFIG_FILE over all arguments:
# the child gets none of them. tests/test_local_server.py checks the list against the settings.
SERVER_SETTING_NAMES = frozenset(
    """api_key cache cache_size cache_type chat_format chat_template_kwargs clip_model_path
    config_file disable_ping_events draft_model draft_model_num_pred_tokens embedding flash_attn
    hf_model_repo_id hf_pretrained_model_name_or_path hf_tokenizer_config_path host
    interrupt_requests kv_overrides last_n_tokens_size logits_all lora_base lora_path main_gpu
    model model_alias mul_mat_q n_batch n_ctx n_gpu_layers n_threads n_threads_batch n_ubatch numa
    offload_kqv port root_path rope_freq_base rope_freq_scale rope_scaling_type rpc_servers seed
    split_mode ssl_certfile ssl_keyfile tensor_split type_k type_v use_mlock use_mmap verbose
    vocab_only yarn_attn_factor yarn_beta_fast yarn_beta_slow yarn_ext_factor yarn_orig_ctx
    """.split()
)

_RUNNING: set[LocalServer] = set()


def stop_all() -> None:
    """Stop every server this process started and has not stopped yet (e.g. on SIGTERM)."""
    for server in list(_RUNNING):
        server.stop()


class LocalServer:
    """A llama.cpp server for one GGUF file, reachable as ``openai/<alias>`` at ``api_base``.

    Use it as a context manager (``with LocalServer(...) as server:``) or call ``start()`` and
    ``stop()``. Start it from a thread that lives as long as the server should (the main thread,
    normally): on Linux the server is killed when that thread ends.
    """

    def __init__(
        self,
        model_path: Path,
        *,
        alias: str,
        n_threads: int,
        n_ctx: int,
        startup_timeout_s: float,
        log_path: Path | None = None,
        logits_all: bool = False,
    ) -> None:
        """Describe the server; nothing starts before ``start()`` or ``with``.

        Args:
            model_path: The GGUF file to serve.
            alias: The model name clients send; litellm calls it as ``openai/<alias>``.
            n_threads: Threads for generation and for prompt processing.
            n_ctx: Context window in tokens.
            startup_timeout_s: How long to wait for ``/v1/models`` to answer.
            log_path: Where the server's output goes; None means a temporary file that is
                deleted when the server stops after a good start.
            logits_all: Keep the logits of every token; llama_cpp.server needs it to return
                ``logprobs``. Off by default: it makes prompt processing slower.
        """
        self.model_path = Path(model_path)
        self.alias = alias
        self.n_threads = n_threads
        self.n_ctx = n_ctx
        self.startup_timeout_s = startup_timeout_s
        self.logits_all = logits_all
        self.log_path = log_path
        self.port: int | None = None
        self.startup_s: float | None = None
        """Seconds from launch until ``/v1/models`` answered."""
        self._own_log = log_path is None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def api_base(self) -> str:
        """The OpenAI-compatible base URL, ``http://127.0.0.1:PORT/v1``."""
        if self.port is None:
            raise RuntimeError("the server has not been started")
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def model(self) -> str:
        """The litellm model string for this server."""
        return f"openai/{self.alias}"

    @property
    def pid(self) -> int | None:
        """Process id of the server (also its process group id); None before ``start()``."""
        return None if self._proc is None else self._proc.pid

    @property
    def running(self) -> bool:
        """True while the server process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def command(self, port: int) -> list[str]:
        """The command line that starts the server on ``port``."""
        return [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(self.model_path),
            "--model_alias",
            self.alias,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_threads",
            str(self.n_threads),
            "--n_threads_batch",
            str(self.n_threads),
            "--n_ctx",
            str(self.n_ctx),
            "--n_batch",
            "512",
            "--logits_all",
            str(self.logits_all).lower(),
            # A new request would otherwise cut a streamed answer short; judges wait their turn.
            "--interrupt_requests",
            "false",
        ]

    def start(self) -> LocalServer:
        """Launch the server and wait until it answers.

        Raises:
            EndpointError: llama-cpp-python[server] is missing, or the server exited or did not
                answer within ``startup_timeout_s``; the message ends with the log's last lines.
        """
        if self.running:
            return self
        _require_server_modules()
        if not self.model_path.is_file():
            raise EndpointError(f"local judge: model file {self.model_path} does not exist")
        began = time.monotonic()
        deadline = began + self.startup_timeout_s
        try:
            for _ in range(_PORT_ATTEMPTS):
                self._launch()
                if self._wait_until_ready(deadline):
                    self.startup_s = time.monotonic() - began
                    return self
            raise EndpointError(
                f"local judge: no free port for the llama.cpp server after {_PORT_ATTEMPTS} "
                f"tries; {self._log_tail()}"
            )
        except BaseException:
            self._own_log = False  # keep the log of a failed start for the user to read
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the server's process group: SIGTERM, then SIGKILL after ``STOP_WAIT_S``.

        Safe to call more than once, and again while a previous call is being interrupted.
        """
        proc = self._proc
        if proc is not None and proc.poll() is None:
            _signal_group(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_WAIT_S)
            except subprocess.TimeoutExpired:
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait()
        _RUNNING.discard(self)
        atexit.unregister(self.stop)
        if self._own_log and self.log_path is not None:
            self.log_path.unlink(missing_ok=True)

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"pid={self.pid} api_base={self.api_base}" if self.running else "stopped"
        return f"LocalServer({self.alias!r}, {self.model_path.name}, {state})"

    def _launch(self) -> None:
        if self.log_path is None:
            fd, name = tempfile.mkstemp(prefix="judgekit-llama-", suffix=".log")
            os.close(fd)
            self.log_path = Path(name)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                self.command(self.port),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=_child_env(),
                start_new_session=True,
                preexec_fn=kill_with_parent(),
            )
        _RUNNING.add(self)
        atexit.register(self.stop)

    def _wait_until_ready(self, deadline: float) -> bool:
        """Poll ``/v1/models``; True when it lists the alias, False when the port was taken."""
        assert self._proc is not None
        while True:
            code = self._proc.poll()
            if code is not None:
                tail = self._log_tail()
                if "address already in use" in tail.lower():
                    return False
                raise EndpointError(
                    f"local judge: the llama.cpp server for {self.model_path.name} exited with "
                    f"code {code} before answering; {tail}"
                )
            if self._lists_alias():
                return True
            if time.monotonic() > deadline:
                raise EndpointError(
                    f"local judge: the llama.cpp server did not answer {self.api_base}/models "
                    f"within {self.startup_timeout_s:g} s; raise judge.local.startup_timeout_s "
                    f"if the machine is slow; {self._log_tail()}"
                )
            time.sleep(_POLL_S)

    def _lists_alias(self) -> bool:
        # No proxies: an HTTP(S)_PROXY of the environment must not see loopback traffic.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(f"{self.api_base}/models", timeout=2) as response:
                listed = json.load(response)
        except urllib.error.HTTPError as err:  # it is up but refuses us: waiting will not help
            raise EndpointError(
                f"local judge: the llama.cpp server answered {self.api_base}/models with HTTP "
                f"{err.code} {err.reason}; {self._log_tail()}"
            ) from err
        except (OSError, ValueError):
            return False
        return any(m.get("id") == self.alias for m in listed.get("data", []))

    def _log_tail(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return "no server log was written"
        with self.log_path.open(encoding="utf-8", errors="replace") as log:
            lines = deque((line.rstrip() for line in log), maxlen=_LOG_TAIL_LINES)
        body = "\n".join(f"    {line}" for line in lines if line)
        return f"last lines of {self.log_path}:\n{body}"


def _require_server_modules() -> None:
    missing = [name for name in _SERVER_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise EndpointError(
            f"local judge: {', '.join(missing)} not installed in {sys.executable}; "
            "install the server with `pip install 'judgekit[local]'` "
            "(or `pip install 'llama-cpp-python[server]'`)"
        )


def _child_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.lower() not in SERVER_SETTING_NAMES}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def kill_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` asking Linux to SIGKILL the child when the starting thread dies."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()
    pr_set_pdeathsig = 1

    def set_parent_death_signal() -> None:
        prctl(pr_set_pdeathsig, int(signal.SIGKILL))
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return set_parent_death_signal
