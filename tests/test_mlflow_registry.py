"""A run's prompt version, dataset input, evaluation dataset and judge in MLflow's registries,
read back through the MLflow client from a real local SQLite store after CLI runs."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from helpers import file_run, row_number, run_cli, write_jsonl
from test_mlflow_ui import chromium  # noqa: F401  # Debian's Chromium, or a skip

from judgekit.config.schema import Message, PromptConfig
from judgekit.testing.server import FakeJudge, json_scores

N_ROWS = 8


def _rows() -> list[dict[str, Any]]:
    return [
        {"id": f"r{i}", "prompt": f"q{i}", "response": f"a [row={i}]", "helpfulness": i % 5}
        for i in range(N_ROWS)
    ]


def _score(request: Any) -> dict[str, int]:
    return {"helpfulness": row_number(request) % 5}


def _run(judge: FakeJudge, root: Path, name: str, *extra: str) -> dict[str, Any]:
    args = file_run(
        judge,
        root / "val.jsonl",
        "prompt=v1",
        "score=helpfulness",
        "dataset.fields.id=id",
        f"tracking.uri=sqlite:///{root}/mlflow.db",
        "tracking.experiment=registry",
        f"hydra.run.dir={name}",
        *extra,
    )
    proc = run_cli(args, root, env={"JUDGEKIT_CACHE_DIR": str(root / "cache")})
    assert proc.returncode == 0, proc.stderr
    return dict(json.loads((root / name / "summary.json").read_text()))


def _client(root: Path) -> Any:
    """A client on the runs' store, also set as MLflow's current one (evaluation datasets read
    their records, and scorers are looked up, through it)."""
    import mlflow
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(f"sqlite:///{root}/mlflow.db")
    return MlflowClient(tracking_uri=f"sqlite:///{root}/mlflow.db")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Any]]:
    """Three runs on one store: two alike (8 rows, register_dataset=true), then one with an
    edited prompt on 5 of the rows and register_judge=false. Returns the store's directory and
    the three MLflow runs."""
    root = tmp_path_factory.mktemp("registry")
    write_jsonl(root / "val.jsonl", _rows())
    edited = "prompt.messages.1.content='Rate {{ item.response }} [edited]'"
    with FakeJudge(json_scores(_score)) as judge:
        one = _run(judge, root, "one", "tracking.register_dataset=true")
        two = _run(judge, root, "two", "tracking.register_dataset=true")
        write_jsonl(root / "val.jsonl", _rows()[:5])
        three = _run(
            judge,
            root,
            "three",
            edited,
            "tracking.register_dataset=true",
            "tracking.register_judge=false",
        )
    client = _client(root)
    return root, [client.get_run(s["mlflow_run_id"]) for s in (one, two, three)]


def test_the_prompt_is_registered_once_per_text_and_the_run_points_at_its_version(
    runs: tuple[Path, list[Any]],
) -> None:
    root, (one, two, three) = runs
    client = _client(root)
    versions = sorted(client.search_prompt_versions("judgekit.v1"), key=lambda v: v.version)
    assert [v.version for v in versions] == [1, 2]  # the same text twice: one version
    assert "[edited]" not in json.dumps(versions[0].template)
    assert "[edited]" in json.dumps(versions[1].template)
    assert [m["role"] for m in versions[0].template] == ["system", "user"]
    assert [r.data.tags["judgekit.prompt_uri"] for r in (one, two, three)] == [
        "prompts:/judgekit.v1/1",
        "prompts:/judgekit.v1/1",
        "prompts:/judgekit.v1/2",
    ]
    linked = json.loads(three.data.tags["mlflow.linkedPrompts"])
    assert linked == [{"name": "judgekit.v1", "version": "2"}]
    listed = client.search_prompts(filter_string=f'experiment_id = "{one.info.experiment_id}"')
    assert [p.name for p in listed] == ["judgekit.v1"]  # the experiment's Prompts tab


def test_register_prompt_version_is_the_same_for_a_candidate(tmp_path: Path) -> None:
    from judgekit.tracking.registry import register_prompt_version

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = _client(tmp_path)
    candidate = PromptConfig(name="cand", messages=[Message(content="Judge {{ item.response }}")])
    one = register_prompt_version(client, candidate, tracking_uri=uri)
    again = register_prompt_version(client, candidate, tracking_uri=uri)
    assert (one.uri, one.created, again.uri, again.created) == (
        "prompts:/judgekit.cand/1",
        True,
        "prompts:/judgekit.cand/1",
        False,
    )
    assert client.get_prompt_version("judgekit.cand", 1).template == [
        {"role": "user", "content": "Judge {{ item.response }}"}
    ]


def test_the_run_logs_its_dataset_input_with_name_source_and_digest(
    runs: tuple[Path, list[Any]],
) -> None:
    root, (one, _, three) = runs
    for run, rows in ((one, N_ROWS), (three, 5)):
        [dataset_input] = run.inputs.dataset_inputs
        dataset = dataset_input.dataset
        assert dataset.name == "jsonl"
        assert dataset.digest == run.data.tags["judgekit.dataset_digest"]  # no sampling: same
        assert json.loads(dataset.source) == {"uri": str((root / "val.jsonl").resolve())}
        schema = json.loads(dataset.schema)["mlflow_colspec"]
        assert {c["name"] for c in schema} == {"id", "prompt", "response", "human.helpfulness"}
        assert json.loads(dataset.profile)["num_rows"] == rows
    assert (
        one.inputs.dataset_inputs[0].dataset.digest != three.inputs.dataset_inputs[0].dataset.digest
    )


def test_register_dataset_makes_one_evaluation_dataset_per_digest_with_the_labels(
    runs: tuple[Path, list[Any]],
) -> None:
    root, (one, two, three) = runs
    client = _client(root)
    ids = [r.data.tags["judgekit.evaluation_dataset"] for r in (one, two, three)]
    assert ids[0] == ids[1]  # the same examples: the dataset is reused
    assert ids[2] != ids[0]  # other examples: a new one
    records = client.get_dataset(ids[0]).to_df()
    assert len(records) == N_ROWS
    by_prompt = {r["inputs"]["prompt"]: r for r in records.to_dict("records")}
    assert by_prompt["q3"]["inputs"] == {"id": "r3", "prompt": "q3", "response": "a [row=3]"}
    assert by_prompt["q3"]["expectations"] == {"helpfulness": 3.0}
    assert len(client.get_dataset(ids[2]).to_df()) == 5
    assert client.get_dataset(ids[0]).name == "judgekit.jsonl"


def test_the_judge_is_registered_in_the_experiment_once_per_definition(
    runs: tuple[Path, list[Any]],
) -> None:
    from mlflow.genai.scorers import get_scorer
    from mlflow.genai.scorers.registry import list_scorer_versions

    root, (one, two, three) = runs
    name = one.data.tags["judgekit.mlflow_judge"]
    assert (
        name
        == two.data.tags["judgekit.mlflow_judge"]
        == "judgekit-openai_compatible-v1-helpfulness"
    )
    assert "judgekit.mlflow_judge" not in three.data.tags  # tracking.register_judge=false
    _client(root)
    experiment_id = one.info.experiment_id
    judge = get_scorer(name=name, experiment_id=experiment_id)
    assert judge.model == "openai:/fake-judge"
    assert "{{ inputs }}" in judge.instructions and "[inputs.response]" in judge.instructions
    assert "helpfulness (0 to 4)" in judge.instructions
    assert len(list_scorer_versions(name=name, experiment_id=experiment_id)) == 1  # not twice


def _config(**judge: Any) -> Any:
    from judgekit.config.schema import Config, DatasetConfig, JudgeConfig, PromptConfig

    return Config(
        judge=JudgeConfig(name="j", model="openai/x", **judge),
        prompt=PromptConfig(name="p", messages=[Message(content="Rate {{ item.response }}")]),
        dataset=DatasetConfig(source="inline", rows=[{"prompt": "q", "response": "a"}]),
    )


def _open_run(root: Path) -> Any:
    from judgekit.tracking.runs import MlflowRun

    client = _client(root)
    experiment_id = client.create_experiment("unit")
    run_id = client.create_run(experiment_id).info.run_id
    return MlflowRun(client, run_id, experiment_id, keep_going=True)


def test_a_store_failure_in_the_registries_is_kept_and_listed_not_raised(tmp_path: Path) -> None:
    from judgekit.tracking.registry import register_judge, register_run_prompt

    mlrun = _open_run(tmp_path)
    cfg = _config()
    cfg.tracking.uri = f"sqlite:///{tmp_path}/mlflow.db"

    def gone(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("Connection refused")

    mlrun.client.search_prompt_versions = gone  # the store dies before the prompt is registered
    register_run_prompt(mlrun, cfg)
    register_judge(mlrun, cfg)  # skipped: the store is gone
    assert mlrun.failure == "ConnectionError: Connection refused"
    assert mlrun.not_logged == ["prompt registry", "judge registry"]


def test_the_judge_never_carries_a_credential_of_its_endpoint(tmp_path: Path) -> None:
    from mlflow.genai.scorers import get_scorer

    from judgekit.tracking.registry import register_judge

    mlrun = _open_run(tmp_path)
    for api_base in ("http://user:s3cr3t-pass@127.0.0.1:9/v1", "http://127.0.0.1:9/v1"):
        cfg = _config(api_base=api_base)
        cfg.tracking.uri = f"sqlite:///{tmp_path}/mlflow.db"
        register_judge(mlrun, cfg)
        assert mlrun.failure is None
        stored = json.dumps(
            get_scorer(name="judgekit-j-p-custom", experiment_id=mlrun.experiment_id).model_dump()
        )
        assert "s3cr3t" not in stored
        assert "127.0.0.1:9/v1" in stored  # the endpoint is named in the description


@pytest.mark.parametrize(
    ("overrides", "value_type"),
    [
        (["prompt=v1"], "int"),
        (["score=helpsteer2", "prompt=v2"], "dict[str, float]"),
        (["score=preference", "prompt=pairwise_v2"], "typing.Literal['A', 'B', 'tie']"),
    ],
)
def test_mlflow_accepts_the_judge_of_every_kind_of_score_schema(
    overrides: list[str], value_type: str
) -> None:
    from mlflow.genai.judges import make_judge

    from judgekit.config.compose import compose_config, to_config
    from judgekit.tracking.registry import _value_type, judge_instructions, mlflow_model

    cfg = to_config(compose_config(overrides))
    kind = _value_type(cfg.score)
    assert getattr(kind, "__name__", None) == value_type or str(kind) == value_type
    instructions = judge_instructions(cfg)
    assert "{{ inputs }}" in instructions and "item." not in instructions
    judge = make_judge(
        name="j",
        instructions=instructions,
        model=mlflow_model(cfg.judge.model),
        feedback_value_type=kind,
    )
    assert judge.instructions == instructions


@pytest.mark.slow
def test_the_prompts_datasets_and_judges_views_show_the_run(
    runs: tuple[Path, list[Any]],
    chromium: Path,  # noqa: F811  # the fixture imported above
) -> None:
    """MLflow's own pages, rendered by headless Chromium from a real ``mlflow server`` on the
    runs' store, list the prompt, the evaluation datasets and the judge."""
    from test_mlflow_ui import _mlflow_server, _render, _wait_all_gone

    root, (one, _, _) = runs
    experiment = f"#/experiments/{one.info.experiment_id}"
    expected = {
        "prompts": "judgekit.v1",
        "datasets": "judgekit.jsonl",
        "judges": "judgekit-openai_compatible-v1-helpfulness",
    }
    expected["evaluation-runs"] = one.info.run_name  # the run, with its traces' assessments
    expected["traces"] = "helpfulness"  # the traces, with the judge's and the humans' columns
    groups: list[int] = []
    with _mlflow_server(root, groups) as url:
        for view, name in expected.items():
            dom = _render(chromium, f"{url}/{experiment}/{view}", root, view, groups)
            assert name in dom, f"{view}: {name} not shown; see {root / 'ui' / f'{view}.png'}"
    assert not _wait_all_gone(groups, str(root))
    keep = os.environ.get("JUDGEKIT_UI_SCREENSHOTS")  # the README's pictures come from here
    if keep:
        for view in expected:
            shutil.copy(root / "ui" / f"{view}.png", Path(keep) / f"mlflow-{view}.png")
