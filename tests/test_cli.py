"""The CLI as a user meets it: bad input gives one line, exit code 2 and no judge call."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import assert_one_line_error, file_run, judge_overrides, run_cli

from judgekit.testing.server import FakeJudge

ROW = {
    "prompt": "p",
    "response": "r",
    "helpfulness": 2,
    "correctness": 2,
    "coherence": 2,
    "complexity": 2,
    "verbosity": 2,
}


@pytest.fixture(scope="module")
def judge() -> Iterator[FakeJudge]:
    with FakeJudge() as server:
        yield server


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    (root / "good.jsonl").write_text(json.dumps(ROW) + "\n" + json.dumps(ROW) + "\n")
    (root / "range.jsonl").write_text(
        json.dumps(ROW) + "\n" + json.dumps({**ROW, "helpfulness": 6}) + "\n"
    )
    (root / "latin1.jsonl").write_bytes(
        b'{"prompt": "caf\xe9", "response": "r", "helpfulness": 1}\n'
    )
    (root / "data.txt").write_text("hello\n")
    (root / "empty.jsonl").write_text("")
    (root / "broken.jsonl").write_text(json.dumps(ROW) + '\n{"prompt": \n')
    (root / "dupes.jsonl").write_text(
        "".join(json.dumps({**ROW, "id": "x"}) + "\n" for _ in range(2))
    )
    (root / "object.json").write_text(json.dumps({"prompt": "p"}))
    whole = gzip.compress(("".join(json.dumps(ROW) + "\n" for _ in range(200))).encode())
    (root / "truncated.jsonl.gz").write_bytes(whole[: len(whole) // 2])
    return root


BAD_INPUTS = {
    "unknown key": (["judge.colour=red"], "Key 'colour' not in 'JudgeConfig'"),
    "wrong type": (["runner.parallelism=many"], "could not be converted to Integer"),
    "missing column": (["dataset.fields.response=answer"], "column 'answer' not found"),
    "template variable": (
        ["prompt.messages=[{role: user, content: 'Context: {{item.context}}'}]"],
        "item.context not in the data",
    ),
    "key not set": (["judge.api_key_env=JUDGEKIT_UNSET_KEY"], "JUDGEKIT_UNSET_KEY is not set"),
    "human out of range": (["dataset.path={data}/range.jsonl"], "human score 6 is outside"),
    "missing file": (["dataset.path={data}/absent.jsonl"], "no such file"),
    "not utf-8": (["dataset.path={data}/latin1.jsonl"], "cannot be read"),
    "unknown extension": (["dataset.path={data}/data.txt"], "unknown extension '.txt'"),
    "unknown option": (["score=kindness"], "Could not find 'score/kindness'"),
    "bad range": (
        ["score.scores=[{name: helpfulness, minimum: 4, maximum: 0}]"],
        "greater than maximum",
    ),
    "empty file": (["dataset.path={data}/empty.jsonl"], "no rows; the dataset is empty"),
    "truncated gzip": (["dataset.path={data}/truncated.jsonl.gz"], "cannot be read as .jsonl.gz"),
    "broken json line": (["dataset.path={data}/broken.jsonl"], "line 2 is not valid JSON"),
    "json not an array": (["dataset.path={data}/object.json"], "expected a JSON array of rows"),
    "duplicate ids": (
        ["dataset.path={data}/dupes.jsonl", "dataset.fields.id=id"],
        "share the id 'x'",
    ),
    "bad regex": (
        [
            "score.scores=[{name: helpfulness, minimum: 0, maximum: 4, parser: {kind: regex, pattern: '(['}}]"
        ],
        "score parser pattern",
    ),
    "unknown adapter": (["dataset.adapter=nope"], "dataset.adapter: 'nope' is not a known adapter"),
    "missing data root": (
        ["dataset.data_root=/nonexistent/data"],
        "dataset.data_root: /nonexistent/data does not exist",
    ),
    "bad cache mode": (["cache.mode=sometimes"], "cache.mode: 'sometimes' is not valid"),
    "unusable cache dir": (["cache.dir=/proc/judgekit-cache"], "cache"),
    "swap without preference": (["judge.swap=true"], "judge.swap: true needs a preference score"),
    "rejudge without source": (["runner.rejudge=failed"], "runner.rejudge_from: not set"),
    "coverage above 1": (["runner.min_coverage=2"], "runner.min_coverage: 2.0 is not valid"),
    "confidence above 1": (["stats.confidence=1.5"], "stats.confidence: 1.5 is not valid"),
    "template syntax": (
        ["prompt.messages=[{role: user, content: 'Rate {{ item.prompt '}]"],
        "template syntax error",
    ),
    "local weights missing": (
        ["judge=local", "judge.local.model_path=/nonexistent/model.gguf"],
        "judge.local.model_path: /nonexistent/model.gguf does not exist",
    ),
    "negative timeout": (["judge.timeout_s=-1"], "judge.timeout_s: -1.0 is not valid"),
    "mistyped group key": (["runner.parralelism=2"], "Key 'parralelism' not in 'RunnerConfig'"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_one_line_exit_2_and_no_judge_call(
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
    assert not (tmp_path / "mlflow.db").exists()


def test_help_does_not_import_heavy_libraries() -> None:
    code = (
        "import sys\n"
        "from judgekit.cli.run import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('litellm', 'mlflow', 'datasets', 'pandas', 'scipy') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stdout
    assert "judgekit" in proc.stdout and "judge: " in proc.stdout  # Hydra's help lists groups


def test_cfg_job_prints_the_composed_config_without_running(tmp_path: Path) -> None:
    proc = run_cli(["--cfg", "job", "judge=openai", "prompt=v2"], tmp_path, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "model: openai/gpt-4o-mini" in proc.stdout and "name: v2" in proc.stdout
    assert "api_key_env: OPENAI_API_KEY" in proc.stdout


def test_multirun_with_one_bad_choice_runs_no_job(
    judge: FakeJudge, data_dir: Path, tmp_path: Path
) -> None:
    before = judge.counters.requests_total
    args = [
        "-m",
        *file_run(judge, f"{data_dir}/good.jsonl"),
        "prompt=v1,v7",
    ]
    proc = run_cli(args, tmp_path, timeout=120)
    assert proc.returncode == 2
    assert "Could not find 'prompt/v7'" in proc.stderr
    assert judge.counters.requests_total == before


def test_public_api_is_exactly_all() -> None:
    import judgekit

    assert sorted(judgekit.__all__) == sorted(
        name for name in judgekit.__all__ if getattr(judgekit, name, None) is not None
    )
    assert {"evaluate", "Config", "JudgekitError", "RunResult"} <= set(judgekit.__all__)


def test_doctor_passes_against_a_working_endpoint(
    judge: FakeJudge, data_dir: Path, tmp_path: Path
) -> None:
    before = judge.counters.requests_total
    args = [
        "doctor",
        *file_run(judge, f"{data_dir}/good.jsonl"),
    ]
    proc = run_cli(args, tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[ok] api key: JUDGEKIT_TEST_KEY is set (value not shown)" in proc.stdout
    assert "[ok] judge endpoint: openai/fake-judge" in proc.stdout
    assert "[ok] dataset: jsonl: 2 examples" in proc.stdout
    assert judge.counters.requests_total == before + 1  # one probe, nothing more
    from helpers import TEST_KEY

    assert TEST_KEY not in proc.stdout + proc.stderr


def test_doctor_fails_with_1_when_the_key_is_missing(judge: FakeJudge, tmp_path: Path) -> None:
    args = ["doctor", *judge_overrides(judge), "judge.api_key_env=JUDGEKIT_UNSET_KEY"]
    proc = run_cli(args, tmp_path, timeout=120)
    assert proc.returncode == 1
    assert "[FAIL] api key: JUDGEKIT_UNSET_KEY is not set" in proc.stdout


def test_doctor_fails_with_1_when_the_endpoint_is_down(tmp_path: Path) -> None:
    args = [
        "doctor",
        "judge=openai_compatible",
        "judge.model=openai/x",
        "judge.api_base=http://127.0.0.1:9/v1",
        "judge.max_retries=0",
        "judge.timeout_s=5",
    ]
    proc = run_cli(args, tmp_path, timeout=120)
    assert proc.returncode == 1
    assert "[FAIL] judge endpoint: openai/x at http://127.0.0.1:9/v1: request_error" in proc.stdout


def test_doctor_config_error_is_exit_2(tmp_path: Path) -> None:
    proc = run_cli(["doctor", "judge.nope=1"], tmp_path, timeout=60)
    assert proc.returncode == 2 and "Key 'nope' not in 'JudgeConfig'" in proc.stderr
