"""A distinctive API key goes through a whole run and is found in no file and no output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import TEST_KEY, file_run, run_cli

from judgekit.testing.server import FakeJudge, FaultPlan


def _files_with_key(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and TEST_KEY.encode() in p.read_bytes()]


@pytest.mark.slow
def test_the_key_is_in_no_file_log_or_output_even_with_litellm_debug_logging(
    workdir: Path, private_cache_dir: Path
) -> None:
    rows = [
        {
            "prompt": f"q{i}",
            "response": f"r{i}",
            "helpfulness": i % 5,
            "correctness": 1,
            "coherence": 1,
            "complexity": 1,
            "verbosity": 1,
        }
        for i in range(12)
    ]
    (workdir / "val.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    plan = FaultPlan(rate_limit=0.3, server_error=0.2, retry_after_s=0.05, seed=2)
    with FakeJudge(faults=plan) as judge:
        proc = run_cli(
            [
                *file_run(judge, "val.jsonl"),
                "prompt=v1",
                "score=helpfulness",
                "hydra.run.dir=out",
                "hydra.job_logging.root.level=DEBUG",
                "judge.max_retries=4",
            ],
            workdir,
            env={"LITELLM_LOG": "DEBUG"},
        )
        bodies = json.dumps(judge.counters.bodies)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (workdir / "out" / ".hydra" / "config.yaml").exists()
    assert (workdir / "mlflow.db").exists() and any(private_cache_dir.glob("responses.sqlite3*"))
    log = (workdir / "out" / "cli.log").read_text()
    assert "LiteLLM" in log and len(log) > 10_000  # litellm's debug log really was written
    assert TEST_KEY not in proc.stdout + proc.stderr
    assert _files_with_key(workdir) == []
    assert _files_with_key(private_cache_dir) == []
    assert TEST_KEY not in bodies  # the key travels only in the Authorization header
