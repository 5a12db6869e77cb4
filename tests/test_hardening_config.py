"""Issue 12, config and secrets: the schema, the CLI pre-check and secrets.

Bad input is one line, exit code 2, no traceback, no judge call and nothing written; a key echoed
by the endpoint, a secret header and URL credentials are found in no file written and no output.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from helpers import (
    TEST_KEY,
    assert_one_line_error,
    file_run,
    judge_overrides,
    needs_launchers,
    run_cli,
)

from judgekit.config.compose import compose_config, to_config
from judgekit.config.schema import CacheMode, Config, Switch
from judgekit.errors import ConfigError
from judgekit.testing.server import FakeJudge

ROW = {"prompt": "p", "response": "r", "helpfulness": 2}
PASTED_KEY = "ZZTESTKEY123xyz"
HEADER_SECRET = "hdr-secret-9c41e7d2b8"
URL_PASSWORD = "pw-secret-5d2e8a13"


@pytest.fixture(scope="module")
def judge() -> Iterator[FakeJudge]:
    with FakeJudge() as server:
        yield server


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    (root / "good.jsonl").write_text(json.dumps(ROW) + "\n" + json.dumps({**ROW, "prompt": "q"}))
    experiments = root / "searchpath" / "experiment"
    experiments.mkdir(parents=True)
    (experiments / "broken.yaml").write_text(
        "# @package _global_\nrunner:\n  seed: 1\nkey: value: more\n"
    )
    return root


BAD_INPUTS = {
    "malformed experiment yaml": (
        ["+experiment=broken", "hydra.searchpath=[file://{data}/searchpath]"],
        "broken.yaml, line 4: not valid YAML: mapping values are not allowed here",
    ),
    "unknown key added with +": (
        ["+runner.paralelism=4"],
        "Key 'paralelism' not in 'RunnerConfig'",
    ),
    "unknown key added with ++": (
        ["++runner.paralelism=4"],
        "Key 'paralelism' not in 'RunnerConfig'",
    ),
    "unknown nested key added with +": (
        ["+score.scores.0.parser.patern=x"],
        "Key 'patern' not in 'ParserConfig'",
    ),
    "unknown top-level key added with +": (["+runer.parallelism=4"], "Key 'runer' not in 'Config'"),
    "temperature nan": (["judge.temperature=nan"], "judge.temperature: nan is not valid"),
    "temperature inf": (["judge.temperature=inf"], "judge.temperature: inf is not valid"),
    "timeout nan": (["judge.timeout_s=nan"], "judge.timeout_s: nan is not valid"),
    "timeout inf": (["judge.timeout_s=inf"], "judge.timeout_s: inf is not valid"),
    "backoff nan": (["judge.retry_backoff_s=nan"], "judge.retry_backoff_s: nan is not valid"),
    "backoff -inf": (["judge.retry_backoff_s=-inf"], "judge.retry_backoff_s: -inf is not valid"),
    "max wait inf": (["judge.retry_max_wait_s=inf"], "judge.retry_max_wait_s: inf is not valid"),
    "rpm inf": (["judge.rpm=inf"], "judge.rpm: inf is not valid"),
    "coverage nan": (["runner.min_coverage=nan"], "runner.min_coverage: nan is not valid"),
    "confidence nan": (["stats.confidence=nan"], "stats.confidence: nan is not valid"),
    "progress not a choice": (
        ["runner.progress=sometimes"],
        "runner.progress: 'sometimes' is not valid; use auto, true or false",
    ),
    "client not a choice": (
        ["judge.client=fast"],
        "judge.client: 'fast' is not valid; use litellm or direct",
    ),
    "structured output not a choice": (
        ["judge.structured_output=maybe"],
        "judge.structured_output: 'maybe' is not valid; use auto, true or false",
    ),
    "dataset source not a choice": (
        ["dataset.source=web"],
        "dataset.source: 'web' is not valid; use hub, file, inline or mlflow",
    ),
    "rejudge not a choice": (["runner.rejudge=all"], "runner.rejudge: 'all' is not valid"),
    "message role not a choice": (
        ["prompt.messages=[{role: bot, content: 'Rate {{ item.response }}'}]"],
        "'bot' is not valid; use system, user or assistant",
    ),
    "parser kind not a choice": (
        ["score.scores=[{name: helpfulness, minimum: 0, maximum: 4, parser: {kind: xml}}]"],
        "'xml' is not valid; use json or regex",
    ),
    "key pasted as the variable name": (
        [f"judge.api_key_env={PASTED_KEY}"],
        "judge.api_key_env must name an environment variable",
    ),
    "secret header variable not set": (
        ["+judge.header_env.X-Judge-Token=H2_UNSET_TOKEN_VAR"],
        "judge.header_env.X-Judge-Token: environment variable H2_UNSET_TOKEN_VAR is not set",
    ),
    "secret header value pasted": (
        [f"+judge.header_env.X-Judge-Token={HEADER_SECRET}"],
        "judge.header_env.X-Judge-Token: the value given (not shown",
    ),
    "secret header name invalid": (
        ["+judge.header_env={X@Token: H2_TOKEN_VAR}"],
        "judge.header_env: 'X@Token' is not a valid HTTP header name",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_one_line_exit_2_no_call_nothing_written(
    case: str, judge: FakeJudge, data_dir: Path, tmp_path: Path
) -> None:
    extra, needle = BAD_INPUTS[case]
    before = judge.counters.requests_total
    args = [
        *file_run(judge, f"{data_dir}/good.jsonl"),
        "prompt=v1",
        "score=helpfulness",
        *(e.replace("{data}", str(data_dir)) for e in extra),
    ]
    proc = run_cli(args, tmp_path, timeout=120)
    assert_one_line_error(proc, needle)
    assert judge.counters.requests_total == before
    assert list(tmp_path.iterdir()) == []  # no outputs/, no mlflow.db, no .hydra files
    for secret in (PASTED_KEY, HEADER_SECRET):
        assert secret not in proc.stdout + proc.stderr


@pytest.mark.parametrize(
    "launcher",
    [[], pytest.param(["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"], marks=needs_launchers)],
)
def test_sweep_whose_second_job_has_no_data_runs_no_job(
    launcher: list[str], judge: FakeJudge, data_dir: Path, tmp_path: Path
) -> None:
    before = judge.counters.requests_total
    args = [
        "-m",
        *launcher,
        *file_run(judge, f"{data_dir}/good.jsonl,{data_dir}/absent.jsonl"),
        "prompt=v1",
        "score=helpfulness",
    ]
    proc = run_cli(args, tmp_path, timeout=120)
    assert_one_line_error(proc, "absent.jsonl")
    assert "HYDRA_FULL_ERROR" not in proc.stderr
    assert judge.counters.requests_total == before
    assert list(tmp_path.iterdir()) == []


def test_sweep_whose_second_job_has_a_bad_template_runs_no_job(
    judge: FakeJudge, data_dir: Path, tmp_path: Path
) -> None:
    before = judge.counters.requests_total
    template = "prompt.messages=[{role: user, content: 'Rate {{ item.response }}'}],"
    template += "[{role: user, content: 'Rate {{ item.context }}'}]"
    args = [
        "-m",
        *file_run(judge, f"{data_dir}/good.jsonl"),
        "score=helpfulness",
        template,
    ]
    proc = run_cli(args, tmp_path, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "item.context" in proc.stderr and "Traceback" not in proc.stderr
    assert judge.counters.requests_total == before


# --- choices, numbers and unknown keys at compose time (no subprocess) -------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", Switch.true), ("false", Switch.false), ("auto", Switch.auto), ("True", Switch.true)],
)
def test_progress_keeps_accepting_yaml_booleans(value: str, expected: Switch) -> None:
    cfg = to_config(compose_config([f"runner.progress={value}"]))
    assert cfg.runner.progress == expected and cfg.runner.progress == expected.value


def test_choices_compare_and_serialise_as_their_plain_values() -> None:
    from omegaconf import OmegaConf

    from judgekit.tracking.runs import flatten_params

    composed = compose_config(["cache.mode=off", "judge.client=litellm"])
    cfg: Config = to_config(composed)
    assert cfg.cache.mode == "off" and cfg.cache.mode is CacheMode.off
    assert cfg.judge.client == "litellm" and cfg.score.scores[0].kind == "pointwise"
    params = flatten_params(cfg)
    assert params["cache.mode"] == "off" and params["runner.progress"] == "auto"
    assert params["judge.structured_output"] == "auto" and params["judge.client"] == "litellm"
    dumped = json.loads(json.dumps(dataclasses.asdict(cfg), default=str))
    assert dumped["cache"]["mode"] == "off" and dumped["dataset"]["source"] == "file"
    assert dumped["prompt"]["messages"][0]["role"] in {"system", "user"}
    assert "mode: 'off'" in OmegaConf.to_yaml(composed) or "mode: off" in OmegaConf.to_yaml(
        composed
    )


def test_choice_fields_are_checked_when_built_in_python_too() -> None:
    from judgekit.config.schema import CacheConfig, RunnerConfig

    assert CacheConfig(mode="refresh").mode is CacheMode.refresh  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="cache.mode: 'sometimes' is not valid"):
        CacheConfig(mode="sometimes")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="runner.rejudge: 'all' is not valid; use failed"):
        RunnerConfig(rejudge="all", rejudge_from="x")  # type: ignore[arg-type]


def test_every_float_key_refuses_nan_naming_the_key() -> None:
    from judgekit.config.schema import (
        JudgeConfig,
        LocalModelConfig,
        RubricLabel,
        RunnerConfig,
        StatsConfig,
    )

    for kind, prefix in [
        (JudgeConfig, "judge"),
        (LocalModelConfig, "judge.local"),
        (RunnerConfig, "runner"),
        (StatsConfig, "stats"),
        (RubricLabel, "score label"),
    ]:
        floats = [f.name for f in dataclasses.fields(kind) if "float" in str(f.type)]
        assert floats, kind
        for name in floats:
            with pytest.raises(ConfigError, match=f"{prefix}.{name}: nan is not valid"):
                kind(**{name: float("nan")})


# --- secrets: an endpoint that echoes the key, a secret header, credentials in a URL -----------


class EchoServer:
    """A tiny OpenAI-compatible endpoint on 127.0.0.1 (real HTTP) that records request headers.

    (The fake judge's responders do not see request headers, hence this server.)

    ``echo_key=True``: every call gets 401 with the ``Authorization`` header echoed in the error
    body, as some proxies do. Else a valid chat completion with a helpfulness score.
    """

    def __init__(self, *, echo_key: bool) -> None:
        self.echo_key = echo_key
        self.headers: list[dict[str, str]] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.url = ""

    async def _chat(self, request: web.Request) -> web.Response:
        self.headers.append({k.lower(): v for k, v in request.headers.items()})
        await request.read()
        auth = request.headers.get("Authorization", "")
        if self.echo_key:
            error = {"message": f"invalid key {auth}", "type": "invalid_request_error"}
            return web.json_response({"error": error}, status=401)
        message = {"role": "assistant", "content": json.dumps({"helpfulness": 3})}
        usage = {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10}
        body = {
            "id": "chatcmpl-echo",
            "object": "chat.completion",
            "created": 0,
            "model": "echo",
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": usage,
        }
        return web.json_response(body)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/v1"

    def __enter__(self) -> EchoServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


def _leaks(secret: str, *roots: Path) -> list[Path]:
    return [
        path
        for root in roots
        for path in root.rglob("*")
        if path.is_file() and secret.encode() in path.read_bytes()
    ]


def _run_against(server: EchoServer, workdir: Path, extra: list[str], **kwargs: Any) -> Any:
    (workdir / "val.jsonl").write_text(
        "".join(json.dumps({**ROW, "prompt": f"q{i}"}) + "\n" for i in range(3))
    )
    args = [
        "judge=openai_compatible",
        "judge.model=openai/echo",
        f"judge.api_base={server.url}",
        "judge.api_key_env=JUDGEKIT_TEST_KEY",
        "judge.max_retries=0",
        "dataset=jsonl",
        "dataset.path=val.jsonl",
        "prompt=v1",
        "score=helpfulness",
        "runner.parallelism=1",
        "hydra.run.dir=out",
        *extra,
    ]
    return run_cli(args, workdir, **kwargs)


@pytest.mark.parametrize("client", ["litellm", "direct"])
def test_a_key_echoed_by_the_endpoint_is_found_in_no_file_and_no_output(
    client: str, workdir: Path, private_cache_dir: Path
) -> None:
    with EchoServer(echo_key=True) as server:
        proc = _run_against(server, workdir, [f"judge.client={client}"])
        doctor = run_cli(
            [
                "doctor",
                "judge=openai_compatible",
                "judge.model=openai/echo",
                f"judge.api_base={server.url}",
                "judge.api_key_env=JUDGEKIT_TEST_KEY",
                "judge.max_retries=0",
                f"judge.client={client}",
                "dataset=jsonl",
                "dataset.path=val.jsonl",
            ],
            workdir,
            timeout=120,
        )
    assert server.headers and all(
        h["authorization"] == f"Bearer {TEST_KEY}" for h in server.headers
    )
    assert proc.returncode in (0, 1), proc.stderr[-2000:]  # 0 today; 1 once 401 stops the run
    assert "Traceback" not in proc.stderr
    import pandas as pd

    results = pd.read_parquet(workdir / "out" / "results.parquet")
    details = " ".join(str(d) for d in results["failure_detail"])
    assert "invalid key Bearer ***" in details  # the echo arrived, and was redacted
    assert (workdir / "out" / "cli.log").exists() and (workdir / "mlflow.db").exists()
    assert doctor.returncode == 1 and "[FAIL] judge endpoint" in doctor.stdout
    for output in (proc.stdout, proc.stderr, doctor.stdout, doctor.stderr):
        assert TEST_KEY not in output
    assert _leaks(TEST_KEY, workdir, private_cache_dir) == []


def test_a_secret_header_is_sent_by_variable_name_and_written_nowhere(
    workdir: Path, private_cache_dir: Path
) -> None:
    with EchoServer(echo_key=False) as server:
        proc = _run_against(
            server,
            workdir,
            ["+judge.header_env.X-Judge-Token=H2_HEADER_VAR"],
            env={"H2_HEADER_VAR": HEADER_SECRET},
        )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(server.headers) == 3
    assert all(h.get("x-judge-token") == HEADER_SECRET for h in server.headers)
    params = json.loads((workdir / "out" / "resolved_config.json").read_text())
    assert params["judge"]["header_env"] == {"X-Judge-Token": "H2_HEADER_VAR"}
    assert HEADER_SECRET not in proc.stdout + proc.stderr
    assert _leaks(HEADER_SECRET, workdir, private_cache_dir) == []


def test_credentials_in_the_endpoint_url_are_redacted_wherever_the_config_is_written(
    workdir: Path, private_cache_dir: Path
) -> None:
    with EchoServer(echo_key=False) as server:
        url = server.url.replace("http://", f"http://judge-user:{URL_PASSWORD}@")
        proc = _run_against(server, workdir, [f"judge.api_base={url}"])
    # litellm's HTTP client refuses URL credentials next to its Authorization header, so the rows
    # fail; what matters here is that the URL is written nowhere with its password.
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    assert (workdir / "out" / "results.parquet").exists()
    hydra_config = (workdir / "out" / ".hydra" / "config.yaml").read_text()
    assert "http://***@127.0.0.1" in hydra_config
    resolved = json.loads((workdir / "out" / "resolved_config.json").read_text())
    assert resolved["judge"]["api_base"].startswith("http://***@127.0.0.1:")
    import mlflow

    client = mlflow.tracking.MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    run = client.search_runs([client.get_experiment_by_name("judgekit").experiment_id])[0]
    assert run.data.params["judge.api_base"].startswith("http://***@127.0.0.1:")
    assert URL_PASSWORD not in proc.stdout + proc.stderr
    assert _leaks(URL_PASSWORD, workdir, private_cache_dir) == []


def test_doctor_does_not_print_a_key_pasted_as_the_variable_name(
    judge: FakeJudge, tmp_path: Path
) -> None:
    args = ["doctor", *judge_overrides(judge, key=False), f"judge.api_key_env={PASTED_KEY}"]
    proc = run_cli(args, tmp_path, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "judge.api_key_env must name an environment variable" in proc.stderr
    assert PASTED_KEY not in proc.stdout + proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_run_loads_its_data_once_the_pre_check_setup_is_reused(
    judge: FakeJudge, data_dir: Path, tmp_path: Path
) -> None:
    # The real pipeline.prepare, wrapped to count its calls in the judgekit process.
    code = (
        "import sys\n"
        "from judgekit import pipeline\n"
        "from judgekit.cli.run import main\n"
        "real, calls = pipeline.prepare, []\n"
        "def counted(*args, **kwargs):\n"
        "    calls.append(1)\n"
        "    return real(*args, **kwargs)\n"
        "pipeline.prepare = counted\n"
        "code = main(sys.argv[1:])\n"
        "print('PREPARE_CALLS', len(calls))\n"
        "sys.exit(code)\n"
    )
    args = [
        *file_run(judge, f"{data_dir}/good.jsonl"),
        "prompt=v1",
        "score=helpfulness",
        "tracking.enabled=false",
    ]
    env = {**os.environ, "JUDGEKIT_TEST_KEY": TEST_KEY}
    proc = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "PREPARE_CALLS 1" in proc.stdout
