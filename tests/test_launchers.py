"""Hydra launchers: a sweep's jobs run at the same time, each its own MLflow run and output dir.

``hydra/launcher=joblib`` runs them in local processes, ``submitit_local`` through submitit, and
``slurm`` (judgekit's defaults over ``submitit_slurm``) on a Slurm cluster. Every job shares the
response cache (SQLite in WAL mode) and the MLflow store.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from helpers import TEST_KEY, file_run, needs_launchers, row_number, run_cli, write_jsonl

from judgekit.config.compose import compose_config, conf_dir
from judgekit.testing.server import FakeJudge, json_scores

pytestmark = needs_launchers  # every test here runs a launcher or submitit

N_ROWS = 16
OWN = sorted(p.stem for p in (conf_dir() / "hydra" / "launcher").glob("*.yaml"))
TARGETS = {
    "joblib": "JoblibLauncher",
    "submitit_local": "LocalLauncher",
    "submitit_slurm": "SlurmLauncher",
    "slurm": "SlurmLauncher",
}


@pytest.mark.parametrize("choice", sorted({*TARGETS, *OWN}))
def test_every_launcher_option_composes_without_warnings(choice: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. Hydra's deprecated automatic schema matching
        cfg = compose_config([f"hydra/launcher={choice}"], return_hydra_config=True)
    assert cfg.hydra.launcher._target_.endswith("." + TARGETS[choice])


def test_judgekit_slurm_defaults_extend_the_plugin_and_stay_overridable() -> None:
    cfg = compose_config(
        ["hydra/launcher=slurm", "hydra.launcher.partition=gpu", "hydra.launcher.mem_gb=8"],
        return_hydra_config=True,
    )
    launcher = cfg.hydra.launcher
    assert (launcher.partition, launcher.mem_gb) == ("gpu", 8)
    assert (launcher.timeout_min, launcher.cpus_per_task, launcher.max_num_timeout) == (120, 2, 3)
    # The plugin's own keys are all still there: the file extends submitit_slurm, not replaces it.
    plain = compose_config(["hydra/launcher=submitit_slurm"], return_hydra_config=True)
    assert set(plain.hydra.launcher) == set(launcher)


def _dataset(path: Path) -> None:
    rows = [
        {"prompt": f"q{i}", "response": f"a [row={i}]", "helpfulness": i % 5} for i in range(16)
    ]
    write_jsonl(path, rows)


def _score(request) -> dict:  # noqa: ANN001
    return {"helpfulness": row_number(request) % 5}


def _sweep(workdir: Path, judge: FakeJudge, launcher: list[str], extra: tuple[str, ...] = ()):  # noqa: ANN202
    _dataset(workdir / "val.jsonl")
    args = [
        "-m",
        *launcher,
        *file_run(judge, "val.jsonl"),
        "prompt=v1,v2",
        "score=helpfulness",
        "runner.parallelism=1",
        "hydra.sweep.dir=sweep",
        *extra,
    ]
    return run_cli(args, workdir)


def _runs(workdir: Path) -> list:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{workdir}/mlflow.db")
    experiment = client.get_experiment_by_name("judgekit")
    return client.search_runs([experiment.experiment_id], order_by=["tags.`judgekit.prompt`"])


@pytest.mark.slow
@pytest.mark.parametrize(
    "launcher",
    [["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"], ["hydra/launcher=submitit_local"]],
    ids=["joblib", "submitit_local"],
)
def test_a_two_job_sweep_runs_concurrently_each_in_its_own_mlflow_run(
    workdir: Path, launcher: list[str]
) -> None:
    with FakeJudge(json_scores(_score), latency_s=0.25) as judge:
        proc = _sweep(workdir, judge, launcher)
        assert proc.returncode == 0, proc.stderr
        assert judge.counters.requests_total == 2 * N_ROWS
    runs = _runs(workdir)
    assert [r.data.tags["judgekit.prompt"] for r in runs] == ["v1", "v2"]
    assert all(r.info.status == "FINISHED" for r in runs)
    assert {r.data.tags["judgekit.sweep_id"] for r in runs} == {str(workdir / "sweep")}
    assert sorted(r.data.tags["judgekit.sweep_job"] for r in runs) == ["0", "1"]
    assert all(r.data.metrics["helpfulness/pearson"] == pytest.approx(1.0) for r in runs)
    first, second = (r.info for r in runs)  # the two runs were open at the same time
    assert first.start_time < second.end_time and second.start_time < first.end_time
    assert len(list((workdir / "sweep").glob("*/results.parquet"))) == 2
    if "submitit_local" in launcher[0]:
        assert len(list((workdir / "sweep" / ".submitit").glob("*/*_result.pkl"))) == 2
    for path in workdir.rglob("*"):
        if path.is_file():
            assert TEST_KEY.encode() not in path.read_bytes(), f"key leaked into {path}"


@pytest.mark.slow
def test_a_sweep_job_that_fails_in_a_worker_process_fails_the_command(workdir: Path) -> None:
    with FakeJudge(json_scores(_score)) as judge:
        proc = _sweep(
            workdir,
            judge,
            ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
            # A failure only a worker can find (the pre-check now stops an unset key before any
            # job starts): every answer lacks the key the parser looks for, so each job's
            # coverage is 0 < runner.min_coverage=1 and the job fails in its worker process.
            ("runner.min_coverage=1", "score.scores.0.parser.json_path=absent_key"),
        )
    assert proc.returncode == 1
    assert "judgekit: error: runner.min_coverage:" in proc.stderr
    assert "Traceback" not in proc.stderr
