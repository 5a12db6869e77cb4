"""``judge.client: direct``: same answers, cache keys and failures as litellm, without litellm.

The behaviours both clients share (retries, timeouts, 4xx, order) are tested for both in
test_client.py; here: a whole run, the cache shared across clients, refused connections, config
errors, and that the direct path never imports litellm.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import judge_overrides, run_cli

import judgekit
from judgekit.config.schema import JudgeConfig
from judgekit.errors import ConfigError
from judgekit.judge.direct import DirectClient
from judgekit.testing.server import FakeJudge

ROWS = [
    {"prompt": f"question {i}", "response": f"answer {i}", "helpfulness": i % 5} for i in range(12)
]


def _run(judge: FakeJudge, client: str, extra: list[str] | None = None) -> judgekit.RunResult:
    return judgekit.evaluate(
        "openai_compatible",
        "v1",
        "helpfulness",
        ROWS,
        parallelism=4,
        overrides=[*judge_overrides(judge, key=False), f"judge.client={client}", *(extra or [])],
    )


def test_a_direct_run_scores_exactly_like_litellm(fake_judge: FakeJudge) -> None:
    litellm_run = _run(fake_judge, "litellm", ["cache.mode=off"])
    direct_run = _run(fake_judge, "direct", ["cache.mode=off"])
    assert fake_judge.counters.requests_total == 2 * len(ROWS)
    assert direct_run.row_scores == litellm_run.row_scores
    assert direct_run.agreement == litellm_run.agreement
    # The same body reached the server both times (the fake keys requests by model + messages).
    assert len(fake_judge.counters.request_keys) == len(ROWS)


def test_the_cache_is_shared_between_clients(fake_judge: FakeJudge, tmp_path: Path) -> None:
    cache = [f"cache.dir={tmp_path}"]
    first = _run(fake_judge, "litellm", cache)
    assert fake_judge.counters.requests_total == len(ROWS)
    again = _run(fake_judge, "direct", cache)
    assert fake_judge.counters.requests_total == len(ROWS)  # every answer came from the cache
    assert again.row_scores == first.row_scores


def test_a_refused_connection_is_a_retried_request_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again before the call: nothing listens there
    cfg = JudgeConfig(
        name="x",
        model="openai/m",
        api_base=f"http://127.0.0.1:{port}/v1",
        client="direct",
        max_retries=1,
        retry_backoff_s=0.01,
    )
    client = DirectClient(cfg, api_key=None)

    async def once():  # noqa: ANN202
        try:
            return await client.complete([{"role": "user", "content": "hi"}])
        finally:
            await client.aclose()

    response = asyncio.run(once())
    assert response.failure == "request_error" and response.attempts == 2
    assert "ConnectionError" in response.detail


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"client": "httpx"}, "judge.client: 'httpx' is not valid; use litellm or direct"),
        (
            {"client": "direct", "model": "anthropic/claude", "api_base": "http://h/v1"},
            "judge.model is 'anthropic/claude'; use openai/<model>",
        ),
        ({"client": "direct", "model": "openai/m"}, "judge.client: direct needs judge.api_base"),
    ],
)
def test_bad_client_settings_are_config_errors(settings: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("*", r"\*")):
        JudgeConfig(name="x", **settings)


def test_bad_client_on_the_command_line_exits_2_before_any_call(tmp_path: Path) -> None:
    with FakeJudge() as judge:
        proc = run_cli([*judge_overrides(judge), "judge.client=grpc"], tmp_path)
        assert judge.counters.requests_total == 0
    assert proc.returncode == 2, proc.stderr
    assert "judge.client: 'grpc' is not valid; use litellm or direct" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_the_direct_path_never_imports_litellm(fake_judge: FakeJudge) -> None:
    code = (
        "import json, sys, judgekit\n"
        "r = judgekit.evaluate('openai_compatible', 'v1', 'helpfulness', "
        f"{ROWS!r}, overrides={[*judge_overrides(fake_judge, key=False), 'judge.client=direct', 'cache.mode=off']!r})\n"
        "print(json.dumps({'litellm': 'litellm' in sys.modules, "
        "'scored': r.aggregate['helpfulness']['count']}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"litellm": False, "scored": 12}
