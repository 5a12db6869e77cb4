"""The offline default end to end: the real local model judges the demo set, MLflow gets the run,
and no llama.cpp process outlives judgekit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from helpers import assert_gone, run_cli, shared_data

pytestmark = [pytest.mark.slow, pytest.mark.local_model]


def _runs(workdir: Path, experiment: str = "judgekit"):  # noqa: ANN202
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{workdir}/mlflow.db")
    exp = client.get_experiment_by_name(experiment)
    return client.search_runs([exp.experiment_id]) if exp else []


def test_default_run_judges_with_the_local_model_and_logs_to_mlflow(
    model_path: Path, tmp_path: Path
) -> None:
    proc = run_cli(["runner.limit_samples=10", "hydra.run.dir=out"], tmp_path, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    [run] = _runs(tmp_path)
    metrics, tags = run.data.metrics, run.data.tags
    assert (
        tags["judgekit.judge"] == "local"
        and "local-qwen2.5-coder-0.5b" in tags["judgekit.judge_model"]
    )
    assert metrics["helpfulness/n_total"] == 10
    assert metrics["helpfulness/n_scored"] >= 9, "at least 90 % of rows parsed"
    assert "helpfulness/pearson" in metrics and "helpfulness/qwk" in metrics
    pid = int(tags["judgekit.local_server_pid"])
    assert_gone(pid)


def test_doctor_probes_the_local_judge(model_path: Path, tmp_path: Path) -> None:
    proc = run_cli(["doctor"], tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    assert "[ok] judge endpoint: openai/local-qwen2.5-coder-0.5b" in proc.stdout


def test_ctrl_c_during_a_run_stops_the_server(model_path: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "judgekit.cli",
            "hydra.run.dir=out",
            "hydra.job_logging.root.level=INFO",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    pid = None
    deadline = time.monotonic() + 300
    assert proc.stdout is not None
    for line in proc.stdout:
        if "local judge" in line and "(pid " in line:
            pid = int(line.rsplit("(pid ", 1)[1].split(")")[0])
            break
        assert time.monotonic() < deadline, "the local server did not start"
    assert pid is not None
    time.sleep(2)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=180)
    assert_gone(pid)


def test_an_init_project_runs_with_the_local_judge(model_path: Path, tmp_path: Path) -> None:
    """`judgekit init` then the scaffold's sweep with judge=local, as its README says (3 rows)."""
    assert run_cli(["init", "proj"], tmp_path).returncode == 0
    project = tmp_path / "proj"
    proc = run_cli(
        ["-cd", "conf", "experiment=two_prompts", "judge=local", "runner.limit_samples=3"],
        project,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = _runs(project, "my-project")
    assert sorted(r.data.params["prompt.name"] for r in runs) == ["my_prompt", "v2"]
    assert all(r.data.metrics["quality/n_total"] == 3 for r in runs)
    assert all(r.data.metrics["quality/n_scored"] >= 2 for r in runs)


def test_optimize_with_the_local_judge_as_judge_and_reflection_model(
    model_path: Path, tmp_path: Path
) -> None:
    """gepa's whole path on the real model: minibatch, reflection through llama.cpp, dev, test."""
    import json

    proc = run_cli(
        [
            "optimize",
            "optimize.reflection_model=local",
            "optimize.budget_calls=27",  # the seed on 10 dev rows, then one reflection step
            "optimize.minibatch_size=3",
            "optimize.out_dir=opt",
        ],
        tmp_path,
        timeout=1800,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((tmp_path / "opt" / "summary.json").read_text())
    assert sum(summary["splits"].values()) == 40 and min(summary["splits"].values()) >= 0
    assert summary["calls"]["spent"] <= 27
    assert summary["calls"]["reflection"] >= 1 or summary["stopped"] != "budget"
    assert summary["test_runs"]["seed"]  # the held-out test, judged with the seed at least
    assert (tmp_path / "opt" / "candidates.csv").exists()


def test_the_audit_experiment_runs_on_the_local_judge(model_path: Path, tmp_path: Path) -> None:
    """`judgekit audit +experiment=local_audit_mtbench` on the real model (3 pairs, position):
    the README's audit command, cut short."""
    data = shared_data("llmbar/Processed/MT-Bench/dataset.json")
    proc = run_cli(
        [
            "audit",
            "+experiment=local_audit_mtbench",
            "runner.limit_samples=3",
            "audit.tests=[position]",
            "audit.resamples=100",
            "audit.out_dir=audit",
            f"dataset.data_root={data.parents[3]}",
            f"tracking.uri=sqlite:///{tmp_path}/mlflow.db",
        ],
        tmp_path,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = pd.read_parquet(tmp_path / "audit" / "results.parquet")
    assert len(rows) == 3 and set(rows["variant"]) == {"swap"}
    assert "position" in proc.stdout
