"""judgekit as a user gets it: a non-editable install (the wheel, not ``-e``), run from a project
directory outside the repository with the user's own configs, against the fake judge.

The wheel is built from this checkout with its own build backend and installed with uv into a
private directory that is put first on ``PYTHONPATH``, so the commands below import the installed
copy (checked), never the checkout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT, write_jsonl

from judgekit.testing.server import ChatRequest, FakeJudge

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A non-editable install of this checkout (no dependencies: the test venv has them)."""
    target = tmp_path_factory.mktemp("installed")
    proc = subprocess.run(
        [sys.executable, "-m", "uv", "pip", "install", "--quiet", "--no-deps"]
        + ["--no-build-isolation", "--python", sys.executable, "--target", str(target), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode != 0:
        pytest.fail(f"installing the wheel failed: {proc.stderr}")
    assert not list(target.glob("*.pth")), "an editable install, not the wheel"
    assert (target / "judgekit" / "_conf" / "prompt" / "v2.yaml").is_file()
    return target


def _judgekit(installed: Path, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(installed)}
    return subprocess.run(
        [str(installed / "bin" / "judgekit"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _answer(request: ChatRequest) -> str:
    """A preference for the response holding GOOD; a 1-5 quality score otherwise."""
    text = request.last_user_text
    if "[RESPONSE A]" in text:
        a = text[text.index("[RESPONSE A]") : text.index("[/RESPONSE A]")]
        return json.dumps({"preference": "A" if "GOOD" in a else "B"})
    return json.dumps({"quality": 1 + len(text) % 5})


def _user_project(project: Path) -> None:
    """On top of ``judgekit init``: a pairwise dataset whose labels are -1/1, and a sweep of it."""
    conf = project / "conf"
    (conf / "dataset" / "my_pairs.yaml").write_text(
        "defaults:\n  - pairwise_jsonl\n  - _self_\nname: my_pairs\npath: data/pairs.jsonl\n"
        "fields:\n  prompt: question\n  extra: {response_a: first, response_b: second}\n"
        "  scores: {preference: winner}\n  label_map: {-1: A, 1: B}\n"
    )
    rows = []
    for i in range(8):
        first, second = (f"GOOD {i}", f"BAD {i}") if i % 2 else (f"BAD {i}", f"GOOD {i}")
        rows.append({"question": f"question {i}", "first": first, "second": second})
        rows[-1]["winner"] = -1 if i % 2 else 1  # the humans prefer GOOD, wherever it is
    write_jsonl(project / "data" / "pairs.jsonl", rows)
    (conf / "experiment" / "pairs.yaml").write_text(
        "# @package _global_\ndefaults:\n  - override /judge: fake\n"
        "  - override /dataset: my_pairs\n  - override /score: preference\n"
        "  - override /prompt: pairwise_v1\n"
        "tracking: {uri: 'sqlite:///mlflow.db', experiment: pairs}\n"
    )


def test_a_users_own_project_with_the_installed_wheel(installed: Path, tmp_path: Path) -> None:
    where = _judgekit(installed, ["fake-judge", "--help"], tmp_path)
    assert where.returncode == 0, where.stderr
    probe = subprocess.run(
        [sys.executable, "-c", "import judgekit; print(judgekit.__file__)"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(installed)},
        capture_output=True,
        text=True,
    )
    assert probe.stdout.startswith(str(installed)), probe.stdout  # the wheel, not the checkout

    init = _judgekit(installed, ["init", "proj"], tmp_path)
    assert init.returncode == 0, init.stderr
    project = tmp_path / "proj"
    _user_project(project)
    prompt = project / "conf" / "prompt" / "my_prompt.yaml"
    prompt.write_text(prompt.read_text().replace("You are an expert", "You are a careful"))

    with FakeJudge(_answer) as judge:
        api = f"judge.api_base={judge.url}"
        sweep = _judgekit(installed, ["-cd", "conf", "experiment=two_prompts", api], project)
        assert sweep.returncode == 0, sweep.stderr
        assert "prompt my_prompt" in sweep.stdout and "prompt v2" in sweep.stdout
        sent = [body["messages"][0]["content"] for body in judge.counters.bodies]
        assert any(text.startswith("You are a careful") for text in sent)  # the edited prompt

        pairs = _judgekit(
            installed,
            ["-cd", "conf", "-m", "experiment=pairs", api, "judge.swap=false,true"],
            project,
        )
        assert pairs.returncode == 0, pairs.stderr
        # The same file with judgekit's pairwise_jsonl, every field and the map on the command
        # line (the issue's reproduction: "Key -1 (int) is incompatible with (str)").
        cli_map = _judgekit(
            installed,
            ["-cd", "conf", "experiment=pairs", api, "tracking.experiment=pairs-cli"]
            + ["dataset=pairwise_jsonl", "dataset.path=data/pairs.jsonl"]
            + ["dataset.fields.prompt=question", "dataset.fields.extra.response_a=first"]
            + ["dataset.fields.extra.response_b=second", "dataset.fields.scores.preference=winner"]
            + ["++dataset.fields.label_map={-1: A, 1: B}"],
            project,
        )
        assert cli_map.returncode == 0, cli_map.stderr

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{project}/mlflow.db")
    for experiment, n_runs in (("pairs", 2), ("pairs-cli", 1)):
        runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
        assert len(runs) == n_runs
        for run in runs:  # the judge always picks GOOD, as the humans (-1 -> A, 1 -> B) did
            assert run.data.metrics["preference/accuracy"] == 1.0
            assert run.data.metrics["preference/n_scored"] == 8

    compare = _judgekit(installed, ["compare", "--experiment", "my-project", "--no-log"], project)
    assert compare.returncode == 0, compare.stderr
    assert "prompt=my_prompt" in compare.stdout
