"""Issue 12, judge calls: answers that are no chat completion, oversized and trickled bodies, hung
and refusing endpoints, runs that cannot succeed, client-side errors, latency, progress lines.

Everything runs against the real fake judge over HTTP, on both clients where the client matters.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from helpers import (
    TEST_KEY,
    TEST_KEY_ENV,
    assert_one_line_error,
    file_run,
    judge_overrides,
    run_cli,
    write_jsonl,
)

import judgekit
from judgekit.config.schema import JudgeConfig
from judgekit.errors import RunError
from judgekit.judge.client import REQUEST_FAILURES, JudgeResponse, LiteLLMClient, classify_error
from judgekit.judge.direct import DirectClient
from judgekit.runner import JudgeRequest, ProgressLog, judge_all
from judgekit.testing.server import FakeJudge, FaultPlan, Reply, constant, json_scores

MESSAGES = [{"role": "user", "content": "rate this"}]
ROWS = [
    {"prompt": f"question {i}", "response": f"answer {i}", "helpfulness": i % 5} for i in range(12)
]


@pytest.fixture(params=["litellm", "direct"])
def kind(request: pytest.FixtureRequest) -> str:
    """Which client: every behaviour here holds for both transports."""
    return str(request.param)


def _client(url: str, kind: str, **overrides: object) -> LiteLLMClient:
    settings = {"max_retries": 2, "retry_backoff_s": 0.01, "retry_max_wait_s": 0.2, **overrides}
    cfg = JudgeConfig(name="fake", model="openai/fake-judge", api_base=url, client=kind, **settings)
    return (DirectClient if kind == "direct" else LiteLLMClient)(cfg, api_key="sk-test")


def _complete(client: LiteLLMClient) -> JudgeResponse:
    async def once() -> JudgeResponse:
        try:
            return await client.complete(MESSAGES)
        finally:
            await client.aclose()

    return asyncio.run(once())


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again at once: nothing listens there
    return f"http://127.0.0.1:{port}/v1"


def _runs(workdir: Path) -> list:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{workdir}/mlflow.db")
    experiment = client.get_experiment_by_name("judgekit")
    return client.search_runs([experiment.experiment_id])


def _tracking(workdir: Path) -> str:
    """An absolute store: MLflow keeps one store per URI string in a process."""
    return f"tracking.uri=sqlite:///{workdir}/mlflow.db"


def _write_rows(path: Path, n: int) -> Path:
    rows = [{"prompt": f"q{i}", "response": f"a{i}", "helpfulness": i % 5} for i in range(n)]
    write_jsonl(path, rows)
    return path


def _cli_args(judge_url: str, data: Path, *extra: str) -> list[str]:
    return [
        "judge=openai_compatible",
        "judge.model=openai/fake-judge",
        f"judge.api_base={judge_url}",
        f"judge.api_key_env={TEST_KEY_ENV}",
        "judge.retry_backoff_s=0.01",
        "judge.retry_max_wait_s=0.2",
        "dataset=jsonl",
        f"dataset.path={data}",
        "prompt=v1",
        "score=helpfulness",
        "runner.parallelism=1",
        "cache.mode=off",
        "hydra.run.dir=out",
        *extra,
    ]


def _one_error_line(stderr: str) -> str:
    errors = [line for line in stderr.splitlines() if line.startswith("judgekit: error:")]
    assert len(errors) == 1, stderr
    assert "Traceback" not in stderr
    return errors[0]


# --- 1. answers that are no chat completion ------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "reason"), [("no_choices", "bad_response"), ("empty_choices", "empty_response")]
)
def test_an_answer_without_choices_is_a_failed_row_not_retried(
    kind: str, fault: str, reason: str
) -> None:
    with FakeJudge(faults=FaultPlan(**{fault: 1.0})) as judge:
        response = _complete(_client(judge.url, kind))
        assert judge.counters.requests_total == 1
        assert judge.counters.by_kind == {fault: 1}
    assert response.failure == reason and response.text is None
    assert response.attempts == 1


def test_a_run_with_answers_without_choices_goes_on_and_counts_them(kind: str) -> None:
    def answer(request) -> Reply | str:  # noqa: ANN001
        text = request.last_user_text
        if "answer 3" in text:
            return Reply('{"helpfulness": 1}', no_choices=True)
        if "answer 7" in text:
            return Reply('{"helpfulness": 1}', empty_choices=True)
        return '{"helpfulness": 2}'

    with FakeJudge(answer) as judge:
        result = judgekit.evaluate(
            "openai_compatible",
            "v1",
            "helpfulness",
            ROWS,
            overrides=[
                *judge_overrides(judge, key=False),
                f"judge.client={kind}",
                "cache.mode=off",
            ],
        )
    assert result.failures == {"bad_response": 1, "empty_response": 1}
    assert result.aggregate["helpfulness"]["count"] == len(ROWS) - 2
    table = result.results.set_index("example_id")
    assert table.loc["3", "failure_reason"] == "bad_response"
    assert pd.isna(table.loc["7", "judge"])


def test_every_request_failure_reason_is_in_the_vocabulary() -> None:
    for reason in ("bad_response", "empty_response", "response_too_large", "bad_request"):
        assert reason in REQUEST_FAILURES
    for reason in ("timeout", "rate_limited", "server_error", "request_error"):  # kept names
        assert reason in REQUEST_FAILURES


# --- 2. bounded bodies ----------------------------------------------------------------------------


def test_an_oversized_answer_fails_with_response_too_large(kind: str) -> None:
    plan = FaultPlan(oversize=1.0, oversize_bytes=3_000_000)
    with FakeJudge(constant('{"helpfulness": 3}'), faults=plan) as judge:
        response = _complete(_client(judge.url, kind))  # default limit: 1 MB
        assert judge.counters.requests_total == 1  # not retried
    assert response.failure == "response_too_large" and response.text is None
    assert "judge.max_response_bytes=1000000" in response.detail


def test_the_limit_is_judge_max_response_bytes(kind: str) -> None:
    big = Reply('{"helpfulness": 3}', size_bytes=200_000)
    with FakeJudge(constant(big)) as judge:
        fits = _complete(_client(judge.url, kind))
        refused = _complete(_client(judge.url, kind, max_response_bytes=100_000))
    assert fits.failure is None and fits.text.startswith('{"helpfulness": 3}')
    assert len(fits.text) > 100_000  # the padding arrived: the fake really sent that much
    assert refused.failure == "response_too_large"


def test_a_body_without_content_length_stops_being_read_at_the_limit(kind: str) -> None:
    huge = Reply('{"helpfulness": 3}', size_bytes=5_000_000, chunked=True)
    with FakeJudge(constant(huge)) as judge:
        response = _complete(_client(judge.url, kind))
        assert judge.counters.requests_total == 1
    assert response.failure == "response_too_large", response
    assert "reading stopped" in response.detail  # read in chunks, not refused by its header


def test_a_long_answer_from_a_provider_without_the_bounded_client_is_not_kept() -> None:
    # No api_base on an openai/ model: litellm's own client is used, the text is checked after.
    cfg = JudgeConfig(name="x", model="openai/fake-judge", max_response_bytes=10)
    client = LiteLLMClient(cfg, api_key=None)
    assert client.transport._bounded_client() is None  # type: ignore[attr-defined]
    from judgekit.judge.transport import Completion

    answer = Completion("x" * 11)
    with pytest.raises(Exception, match="over judge.max_response_bytes=10") as caught:
        client._check_answer(answer)
    assert classify_error(caught.value) == ("response_too_large", False, None)


# --- 3. time limits -------------------------------------------------------------------------------


def test_a_trickled_body_is_bounded_by_timeout_s_as_a_whole(kind: str) -> None:
    # ~350 bytes at 0.01 s each: about 3.5 s in all, but never 0.5 s without a byte, so only a
    # limit on the whole call stops it (litellm's own timeout is per read).
    slow = Reply('{"helpfulness": 3}', trickle_s=0.01)
    with FakeJudge(constant(slow)) as judge:
        response = _complete(_client(judge.url, kind, timeout_s=0.5, max_retries=0))
        assert judge.counters.by_kind == {"trickle": 1}
    assert response.failure == "timeout", response
    assert "judge.timeout_s=0.5" in response.detail


def test_a_trickled_body_within_the_limit_is_read_whole(kind: str) -> None:
    slow = Reply('{"helpfulness": 3}', trickle_s=0.001)
    with FakeJudge(constant(slow)) as judge:
        response = _complete(_client(judge.url, kind, timeout_s=30))
    assert response.failure is None and response.text == '{"helpfulness": 3}'


def test_a_run_against_a_hung_endpoint_stops_after_max_consecutive_failures(
    workdir: Path,
) -> None:
    data = _write_rows(workdir / "val.jsonl", 8)
    with FakeJudge(faults=FaultPlan(hang=1.0, hang_s=60)) as judge:
        proc = run_cli(
            _cli_args(
                judge.url,
                data,
                "judge.timeout_s=1",
                "judge.max_retries=0",
                "runner.max_consecutive_failures=3",
            ),
            workdir,
        )
        assert judge.counters.requests_total == 3  # then no new call
    assert proc.returncode == 1, proc.stderr
    line = _one_error_line(proc.stderr)
    assert "runner.max_consecutive_failures: the last 3 judge calls all failed" in line
    assert "timeout" in line
    table = pd.read_parquet(workdir / "out" / "results.parquet")
    assert table["failure_reason"].value_counts().to_dict() == {"not_run": 5, "timeout": 3}
    [run] = _runs(workdir)
    assert run.info.status == "FAILED"


def test_doctor_probes_a_hung_endpoint_within_its_own_short_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from judgekit import doctor

    monkeypatch.setattr(doctor, "PROBE_LIMIT_S", 2.0)  # 15 s in use; the test need not wait
    with FakeJudge(faults=FaultPlan(hang=1.0, hang_s=60)) as judge:
        cfg = judgekit.build_config(
            "openai_compatible",
            "v1",
            "helpfulness",
            ROWS,
            overrides=judge_overrides(judge, key=False),  # judge.timeout_s 60, 3 retries
        )
        [endpoint] = [c for c in doctor.run_checks(cfg) if c.name == "judge endpoint"]
        assert judge.counters.requests_total == 1  # one attempt, cut at the probe's limit
    assert not endpoint.ok
    assert "timeout" in endpoint.detail and "doctor's probe limit" in endpoint.detail


# --- 4. runs that cannot succeed stop with exit 1 -----------------------------------------------


@pytest.mark.parametrize(
    ("status", "needles"),
    [
        (401, ["HTTP 401", "judge.api_key_env"]),
        (403, ["HTTP 403", "judge.api_key_env"]),
        (404, ["HTTP 404", "judge.model", "judge.api_base"]),
    ],
)
def test_auth_and_not_found_stop_the_run_at_the_first_answer(
    kind: str, status: int, needles: list[str], workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TEST_KEY_ENV, TEST_KEY)
    with FakeJudge(constant(Reply("no", status=status))) as judge:
        cfg = judgekit.build_config(
            "openai_compatible",
            "v1",
            "helpfulness",
            ROWS,
            parallelism=1,
            overrides=[*judge_overrides(judge), f"judge.client={kind}", _tracking(workdir)],
        )
        from judgekit.pipeline import run

        with pytest.raises(RunError) as stopped:
            run(cfg, workdir / "out")
        assert judge.counters.requests_total == 1
    message = str(stopped.value)
    for needle in needles:
        assert needle in message, message
    assert f"results so far are in {workdir / 'out'}" in message
    table = pd.read_parquet(workdir / "out" / "results.parquet")
    assert len(table) == len(ROWS)
    assert table["failure_reason"].value_counts().to_dict() == {
        "not_run": len(ROWS) - 1,
        "bad_request": 1,
    }
    [mlrun] = _runs(workdir)
    assert mlrun.info.status == "FAILED"


def test_a_401_run_from_the_cli_exits_1_with_one_line(workdir: Path) -> None:
    data = _write_rows(workdir / "val.jsonl", 6)
    with FakeJudge(constant(Reply("invalid api key", status=401))) as judge:
        proc = run_cli(_cli_args(judge.url, data, "runner.parallelism=4"), workdir)
        assert judge.counters.requests_total <= 4  # the calls already in flight, no new one
    assert proc.returncode == 1, proc.stderr
    line = _one_error_line(proc.stderr)
    assert "HTTP 401" in line and f"judge.api_key_env={TEST_KEY_ENV}" in line
    [run] = _runs(workdir)
    assert run.info.status == "FAILED"


def test_a_refused_connection_stops_the_run_after_max_consecutive_failures(
    kind: str, workdir: Path
) -> None:
    cfg = judgekit.build_config(
        "openai_compatible",
        "v1",
        "helpfulness",
        ROWS,
        parallelism=1,
        overrides=[
            "judge.model=openai/fake-judge",
            f"judge.api_base={_closed_port_url()}",
            f"judge.client={kind}",
            "judge.max_retries=1",
            "judge.retry_backoff_s=0.01",
            "cache.mode=off",
            _tracking(workdir),
        ],
    )
    from judgekit.pipeline import run

    with pytest.raises(RunError, match=r"the last 10 judge calls all failed .*request_error"):
        run(cfg, workdir / "out")
    table = pd.read_parquet(workdir / "out" / "results.parquet")
    assert table["failure_reason"].value_counts().to_dict() == {
        "request_error": 10,
        "not_run": 2,
    }
    assert (table.loc[table["failure_reason"] == "request_error", "attempts"] == 2).all()
    [mlrun] = _runs(workdir)
    assert mlrun.info.status == "FAILED"


def test_a_success_resets_the_count_of_consecutive_failures(kind: str) -> None:
    def answer(request) -> Reply | str:  # noqa: ANN001
        row = int(request.last_user_text.rsplit("answer ", 1)[1].split()[0])
        return '{"helpfulness": 1}' if row % 3 == 2 else Reply("down", status=500)

    with FakeJudge(answer) as judge:
        result = judgekit.evaluate(
            "openai_compatible",
            "v1",
            "helpfulness",
            ROWS,
            parallelism=1,
            overrides=[
                *judge_overrides(judge, key=False),
                f"judge.client={kind}",
                "judge.max_retries=0",
                "runner.max_consecutive_failures=3",
                "cache.mode=off",
            ],
        )
    assert result.failures == {"server_error": 8}  # never 3 in a row: the run went to the end


def test_max_consecutive_failures_0_never_stops(kind: str) -> None:
    with FakeJudge(constant(Reply("down", status=500))) as judge:
        cfg = judgekit.build_config(
            "openai_compatible",
            "v1",
            "helpfulness",
            ROWS,
            parallelism=1,
            overrides=[
                *judge_overrides(judge, key=False),
                f"judge.client={kind}",
                "judge.max_retries=0",
                "runner.max_consecutive_failures=0",
                "runner.min_coverage=0",
                "cache.mode=off",
            ],
        )
        from judgekit.pipeline import run

        result = run(cfg)
        assert judge.counters.requests_total == len(ROWS)
    assert result.failures == {"server_error": len(ROWS)}


# --- 5. a score scored on no row ------------------------------------------------------------------


def test_a_score_scored_on_no_row_fails_the_run(workdir: Path) -> None:
    data = _write_rows(workdir / "val.jsonl", 6)
    with FakeJudge(json_scores(lambda r: {"helpfullness": 3})) as judge:  # the wrong key
        proc = run_cli(_cli_args(judge.url, data), workdir)
        assert judge.counters.requests_total == 6
    assert proc.returncode == 1, proc.stderr
    line = _one_error_line(proc.stderr)
    assert "runner.min_coverage: helpfulness was scored on no example at all" in line
    assert "'missing_key': 6" in line and "runner.min_coverage=0" in line
    assert (workdir / "out" / "results.parquet").exists()
    [run] = _runs(workdir)
    assert run.info.status == "FAILED"


def test_an_explicit_min_coverage_0_accepts_a_score_scored_on_no_row() -> None:
    with FakeJudge(json_scores(lambda r: {"helpfullness": 3})) as judge:
        result = judgekit.evaluate(
            "openai_compatible",
            "v1",
            "helpfulness",
            ROWS,
            overrides=[*judge_overrides(judge, key=False), "runner.min_coverage=0"],
        )
    assert result.failures == {"missing_key": len(ROWS)}
    with (
        FakeJudge(json_scores(lambda r: {"helpfullness": 3})) as judge,
        pytest.raises(RunError, match="scored on no example at all"),
    ):
        judgekit.evaluate(
            "openai_compatible",
            "v1",
            "helpfulness",
            ROWS,
            overrides=[*judge_overrides(judge, key=False), "cache.mode=off"],
        )


# --- 6. client-side errors ----------------------------------------------------------------------


def test_a_request_the_client_cannot_send_is_bad_request_and_not_retried(kind: str) -> None:
    # NaN is not JSON: both clients refuse to build the body, so nothing reaches the server.
    with FakeJudge() as judge:
        client = _client(judge.url, kind, extra_params={"top_p": float("nan")})
        response = _complete(client)
        assert judge.counters.requests_total == 0
    assert response.failure == "bad_request" and response.attempts == 1, response


def test_a_refused_connection_is_a_retried_request_error(kind: str) -> None:
    response = _complete(_client(_closed_port_url(), kind, max_retries=1))
    assert response.failure == "request_error" and response.attempts == 2, response


def test_classification_is_by_exception_type_not_message() -> None:
    assert classify_error(ConnectionRefusedError("no"))[:2] == ("request_error", True)
    assert classify_error(ValueError("Connection error."))[:2] == ("bad_request", False)
    try:
        try:
            raise ConnectionResetError("peer reset")
        except ConnectionResetError as inner:
            raise RuntimeError("wrapped") from inner
    except RuntimeError as outer:
        assert classify_error(outer)[:2] == ("request_error", True)


# --- 7. latency times the call, not the import --------------------------------------------------


def test_the_first_calls_clock_starts_after_litellm_is_imported(fake_judge: FakeJudge) -> None:
    code = f"""
import asyncio, json, sys, time
import judgekit.judge.client as client_module
from judgekit.judge.client import LiteLLMClient
from judgekit.config.schema import JudgeConfig

seen = []
real = time.perf_counter

class Clock:
    @staticmethod
    def perf_counter():
        seen.append("litellm" in sys.modules)
        return real()

client_module.time = Clock
cfg = JudgeConfig(name="x", model="openai/fake-judge", api_base={fake_judge.url!r})
client = LiteLLMClient(cfg, api_key=None)

async def once():
    try:
        return await client.complete([{{"role": "user", "content": "hi"}}])
    finally:
        await client.aclose()

response = asyncio.run(once())
print(json.dumps({{"failure": response.failure, "seen": seen}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["failure"] is None
    assert result["seen"] and all(result["seen"]), result  # litellm was there at every reading


# --- 8. progress lines without a bar ---------------------------------------------------------------


def test_progress_lines_at_each_tenth_after_a_quiet_start(caplog: pytest.LogCaptureFixture) -> None:
    ticks = iter(range(0, 10_000, 4))  # every clock reading is 4 s later than the one before

    def clock() -> float:
        return float(next(ticks))

    requests = [JudgeRequest(i, str(i), [{"role": "user", "content": f"r{i}"}]) for i in range(20)]
    with FakeJudge(constant('{"helpfulness": 1}')) as judge:
        client = _client(judge.url, "direct")
        with caplog.at_level(logging.INFO, logger="judgekit"):
            outcome = asyncio.run(
                judge_all(iter(requests), client, parallelism=1, total=20, clock=clock)
            )
    assert len(outcome.responses) == 20
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("judging:")]
    # Reading k (k = 1..20) is at 4k s: quiet before 30 s (k < 8), then each new tenth (every
    # second request) logs, or 30 s without a line would.
    done = [int(line.split()[1].split("/")[0]) for line in lines]
    assert done == [8, 10, 12, 14, 16, 18, 20]
    assert lines[-1].startswith("judging: 20/20 (100%), 0 failed, 0.25 calls/s, ETA 0s")


def test_a_heartbeat_line_comes_every_30_s_between_tenths() -> None:
    now = [0.0]
    progress = ProgressLog(1000, clock=lambda: now[0])
    logged: list[str] = []

    class Catch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            logged.append(record.getMessage())

    handler = Catch()
    logger = logging.getLogger("judgekit")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        for _ in range(10):  # 10 of 1000 requests, 12 s apart: 120 s, no tenth crossed
            now[0] += 12.0
            progress.update(JudgeResponse(None, "timeout"))
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    assert [line.split(",")[0] for line in logged] == [
        "judging: 3/1000 (0%)",  # 36 s: the first line after the quiet start
        "judging: 6/1000 (1%)",  # 72 s
        "judging: 9/1000 (1%)",  # 108 s
    ]
    assert "3 failed" in logged[0]


def test_the_local_parallelism_cap_is_logged_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from dataclasses import replace

    from judgekit import pipeline

    with FakeJudge() as judge:

        def fake_local(stack, cfg):  # noqa: ANN001, ANN202 - the llama.cpp server is not the point
            return replace(cfg, model="openai/fake-judge", api_base=judge.url), None

        monkeypatch.setattr(pipeline, "local_judge", fake_local)
        cfg = judgekit.build_config("local", "v1", "helpfulness", ROWS, parallelism=4)
        with caplog.at_level(logging.INFO, logger="judgekit"):
            pipeline.run(replace(cfg, cache=replace(cfg.cache, mode="off")))
        assert judge.counters.max_in_flight == 1
    capped = [r for r in caplog.records if "capped at 1" in r.getMessage()]
    assert len(capped) == 1


# --- config keys: bad values are one line, exit 2, no call ----------------------------------------

BAD_INPUTS = {
    "zero response bytes": (
        ["judge.max_response_bytes=0"],
        "judge.max_response_bytes: 0 is not valid",
    ),
    "negative consecutive failures": (
        ["runner.max_consecutive_failures=-1"],
        "runner.max_consecutive_failures: -1 is not valid",
    ),
    "negative min coverage": (["runner.min_coverage=-0.5"], "runner.min_coverage: -0.5"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_one_line_exit_2_and_no_judge_call(
    case: str, fake_judge: FakeJudge, tmp_path: Path
) -> None:
    extra, needle = BAD_INPUTS[case]
    data = _write_rows(tmp_path / "good.jsonl", 2)
    args = [
        *file_run(fake_judge, f"{data}"),
        "prompt=v1",
        "score=helpfulness",
        *extra,
    ]
    proc = run_cli(args, tmp_path, timeout=120)
    assert_one_line_error(proc, needle)
    assert fake_judge.counters.requests_total == 0
    assert not (tmp_path / "mlflow.db").exists()
