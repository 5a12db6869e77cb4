"""A researcher's own config directory (``--config-dir``/``-cd``), ``judgekit init`` and prompt
files (``content_file``): composed by real Hydra, run against the fake judge over HTTP."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import TEST_KEY_ENV, assert_one_line_error, judge_overrides, run_cli, write_jsonl

from judgekit.config.compose import compose_config, to_config
from judgekit.errors import ConfigError
from judgekit.testing.server import FakeJudge, json_scores, stable_scores

RUBRIC = "Rate {{ item.response }} (asked: {{ item.prompt }}). Answer {{ json_example }}\n"


def _project(root: Path) -> Path:
    """A user config directory: a prompt (text in a file), a dataset, a 1-5 score."""
    conf = root / "conf"
    for group in ("prompt", "dataset", "score", "experiment"):
        (conf / group).mkdir(parents=True)
    (conf / "prompt" / "mine.yaml").write_text(
        "name: mine\nmessages:\n  - role: user\n    content_file: prompts/rubric.j2\n"
    )
    (conf / "prompts").mkdir()
    (conf / "prompts" / "rubric.j2").write_text(RUBRIC)
    (conf / "dataset" / "mine.yaml").write_text(
        "defaults:\n  - jsonl\n  - _self_\nname: mine\npath: data.jsonl\n"
        "fields:\n  scores: {stars: stars}\n"
    )
    (conf / "score" / "stars.yaml").write_text(
        "name: stars\nscores:\n  - name: stars\n    minimum: 1\n    maximum: 5\n"
    )
    (conf / "experiment" / "both.yaml").write_text(
        "# @package _global_\ndefaults:\n  - override /dataset: mine\n  - override /score: stars\n"
        "hydra:\n  mode: MULTIRUN\n  sweeper:\n    params:\n      prompt: mine,v2\n"
    )
    rows = [{"prompt": f"q{i}", "response": f"r{i}", "stars": 1 + i % 5} for i in range(6)]
    write_jsonl(root / "data.jsonl", rows)
    return conf


def _stars_judge() -> FakeJudge:
    return FakeJudge(json_scores(stable_scores(["stars"], 1, 5)))


def test_user_options_compose_on_top_of_judgekits(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    conf = _project(tmp_path)
    monkeypatch.chdir(tmp_path)
    cfg = to_config(
        compose_config(["prompt=mine", "dataset=mine", "score=stars"], config_dirs=[conf]),
        config_dirs=[conf],
    )
    # The dataset extends judgekit's jsonl option through its defaults list.
    assert cfg.dataset.name == "mine" and cfg.dataset.fields.prompt == "prompt"
    assert cfg.dataset.fields.scores["stars"] == "stars"  # merged into jsonl's mapping
    assert cfg.score.scores[0].maximum == 5
    (message,) = cfg.prompt.messages
    assert message.content == RUBRIC
    import hashlib

    assert message.content_sha256 == hashlib.sha256(RUBRIC.encode()).hexdigest()


def test_unknown_option_lists_the_users_options_with_judgekits(tmp_path: Path) -> None:
    conf = _project(tmp_path)
    with pytest.raises(ConfigError) as info:
        compose_config(["dataset=mien"], config_dirs=[conf])
    text = str(info.value)
    assert "Could not find 'dataset/mien'" in text
    assert "judgekit's dataset options: demo" in text and "pairwise_jsonl" in text
    assert f"yours in {conf}: mine" in text


@pytest.mark.parametrize(
    ("layout", "needle"),
    [
        ({"prompt/v2.yaml": "name: v2\n"}, "judgekit already has a prompt option 'v2'"),
        ({"config.yaml": "defaults: []\n"}, "judgekit's own config.yaml is used instead"),
    ],
)
def test_a_user_file_hydra_would_ignore_is_refused(
    tmp_path: Path, layout: dict[str, str], needle: str
) -> None:
    for relative, text in layout.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text)
    with pytest.raises(ConfigError, match=needle):
        compose_config([], config_dirs=[tmp_path])


def test_missing_config_dir_is_one_line_and_exit_2(tmp_path: Path) -> None:
    proc = run_cli(["-cd", "no-such-dir", "dataset=mine"], tmp_path)
    assert_one_line_error(proc, "--config-dir no-such-dir: not found")


def test_single_run_and_sweep_with_user_configs(tmp_path: Path) -> None:
    conf = _project(tmp_path)
    with _stars_judge() as judge:
        single = run_cli(
            [*judge_overrides(judge), "-cd", str(conf), "prompt=mine", "dataset=mine"]
            + ["score=stars", "hydra.run.dir=single"],
            tmp_path,
        )
        assert single.returncode == 0, single.stderr
        assert judge.counters.requests_total == 6
        sweep = run_cli(
            [*judge_overrides(judge), "--config-dir", "conf", "experiment=both"]
            + ["hydra.sweep.dir=sweep"],
            tmp_path,
        )
        assert sweep.returncode == 0, sweep.stderr
        # mine was answered from the cache; v2 renders other text: 6 new calls.
        assert judge.counters.requests_total == 12
    summaries = sorted((tmp_path / "sweep").glob("*/summary.json"))
    assert len(summaries) == 2
    prompts = {json.loads(p.read_text())["prompt"] for p in summaries}
    assert prompts == {"mine", "v2"}
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("judgekit").experiment_id])
    mine = next(r for r in runs if r.data.params["prompt.name"] == "mine")
    assert mine.data.params["prompt.messages.0.content_file"] == "prompts/rubric.j2"
    assert len(mine.data.params["prompt.messages.0.content_sha256"]) == 64
    assert mine.data.tags["judgekit.config_dirs"] == str(conf.resolve())


def test_sweep_precheck_composes_with_user_configs(tmp_path: Path) -> None:
    """A bad user option in the sweep's second job stops the command before any call."""
    conf = _project(tmp_path)
    (conf / "score" / "broken.yaml").write_text(
        "name: broken\nscores:\n  - name: stars\n    minimum: 5\n    maximum: 1\n"
    )
    with _stars_judge() as judge:
        proc = run_cli(
            [*judge_overrides(judge), "-cd", "conf", "-m", "prompt=mine", "dataset=mine"]
            + ["score=stars,broken"],
            tmp_path,
        )
        assert_one_line_error(proc, "minimum 5 is greater than maximum 1")
        assert judge.counters.requests_total == 0


def test_content_file_is_read_from_the_config_dir_then_the_working_dir(tmp_path: Path) -> None:
    conf = _project(tmp_path)
    (conf / "prompts" / "rubric.j2").unlink()
    overrides = ["prompt=mine", "dataset=mine", "score=stars"]
    with pytest.raises(ConfigError) as info:
        to_config(compose_config(overrides, config_dirs=[conf]), config_dirs=[conf])
    assert "prompt.messages[0].content_file: prompt file 'prompts/rubric.j2' not found" in str(
        info.value
    )
    assert str(conf / "prompts" / "rubric.j2") in str(info.value)
    with _stars_judge() as judge:
        (tmp_path / "prompts").mkdir()
        (tmp_path / "prompts" / "rubric.j2").write_text(RUBRIC)  # found in the working directory
        base = [*judge_overrides(judge), "-cd", "conf", *overrides]
        first = run_cli([*base, "hydra.run.dir=a"], tmp_path)
        assert first.returncode == 0, first.stderr
        (tmp_path / "prompts" / "rubric.j2").write_text("Score it. " + RUBRIC)
        second = run_cli([*base, "hydra.run.dir=b"], tmp_path)
        assert second.returncode == 0, second.stderr
        # The file's text is part of what is sent, so an edited file is never a cache hit.
        assert judge.counters.requests_total == 12
        assert all(
            body["messages"][-1]["content"].startswith("Score it.")
            for body in list(judge.counters.bodies)[6:]
        )


def test_content_and_content_file_together_is_an_error(tmp_path: Path) -> None:
    conf = _project(tmp_path)
    (conf / "prompt" / "both.yaml").write_text(
        "name: both\nmessages:\n  - role: user\n    content: hi\n"
        "    content_file: prompts/rubric.j2\n"
    )
    with pytest.raises(ConfigError, match=r"give content or content_file, not both"):
        to_config(compose_config(["prompt=both"], config_dirs=[conf]), config_dirs=[conf])


def test_doctor_and_evaluate_take_the_config_dir(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    conf = _project(tmp_path)
    with _stars_judge() as judge:
        proc = run_cli(
            ["doctor", "-cd", "conf", *judge_overrides(judge), "prompt=mine", "dataset=mine"]
            + ["score=stars", f"tracking.uri=sqlite:///{tmp_path}/mlflow.db"],
            tmp_path,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "mine: 6 examples" in proc.stdout
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv(TEST_KEY_ENV, "sk-test")
        import judgekit

        result = judgekit.evaluate(
            "openai_compatible",
            "mine",
            "stars",
            "mine",
            overrides=judge_overrides(judge)[1:],
            config_dir=conf,
        )
        assert len(result.row_scores) == 6
        assert result.config.prompt.messages[0].content == RUBRIC


def test_init_scaffolds_a_project_that_runs_as_is(tmp_path: Path) -> None:
    proc = run_cli(["init", "proj"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    project = tmp_path / "proj"
    prompt = (project / "conf" / "prompt" / "my_prompt.yaml").read_text()
    assert "name: my_prompt" in prompt and "HelpSteer2's human" in prompt  # a copy of v2
    for relative in ("conf/dataset/my_data.yaml", "conf/score/my_score.yaml", "README.md"):
        assert (project / relative).is_file()
    assert len((project / "README.md").read_text().splitlines()) <= 12
    again = run_cli(["init", "proj"], tmp_path)
    assert_one_line_error(again, "already exists; nothing was written")
    with FakeJudge(json_scores(stable_scores(["quality"], 1, 5))) as judge:
        sweep = run_cli(
            ["-cd", "conf", "experiment=two_prompts", f"judge.api_base={judge.url}"], project
        )
        assert sweep.returncode == 0, sweep.stderr
        assert sweep.stdout.count("quality") >= 2
        rubric = run_cli(
            ["-cd", "conf", "prompt=my_rubric", "dataset=my_data", "score=my_score"]
            + ["judge=fake", f"judge.api_base={judge.url}", "tracking.uri=sqlite:///mlflow.db"],
            project,
        )
        assert rubric.returncode == 0, rubric.stderr
    compare = run_cli(["compare", "--experiment", "my-project", "--no-log"], project)
    assert compare.returncode == 0, compare.stderr
    assert "prompt=my_prompt" in compare.stdout


def test_submit_records_the_config_dir_and_its_content_hash(tmp_path: Path) -> None:
    from judgekit.config.userdirs import dirs_digest
    from judgekit.jobs.handle import Job

    conf = _project(tmp_path)
    digest = dirs_digest([conf.resolve()])
    with _stars_judge() as judge:
        proc = run_cli(
            ["submit", "-cd", "conf", *judge_overrides(judge), "prompt=mine", "dataset=mine"]
            + ["score=stars"],
            tmp_path,
        )
        assert proc.returncode == 0, proc.stderr
        job = Job.load(proc.stdout.split()[2], tmp_path / "judgekit-jobs")
        status = job.wait(120)
        assert status.state == "succeeded", status.detail
        assert judge.counters.requests_total == 6
    record = json.loads((job.job_dir / "job.json").read_text())
    assert record["config_dirs"] == [{"path": str(conf.resolve()), "sha256": digest}]
    assert record["config"]["prompt"]["messages"][0]["content"] == RUBRIC
    (conf / "prompts" / "rubric.j2").write_text("edited")  # the hash is of the files' content
    assert dirs_digest([conf.resolve()]) != digest
