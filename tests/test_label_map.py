"""``dataset.fields.label_map`` with keys of any type: the matching rule, YAML, the command line.

The rule (``judgekit.config.labels``): numbers match by value (``1``, ``1.0``, ``"1"``), booleans
by truth and never a number (``True == 1`` in Python), other text in any case. A value the map
does not cover is a setup error (exit 2, no judge call); two keys that collide are a config error.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from helpers import judge_overrides, run_cli, write_jsonl

from judgekit.config.compose import compose_config, to_config
from judgekit.config.labels import label_key, label_lookup
from judgekit.config.schema import FieldsConfig
from judgekit.data.loading import load_examples
from judgekit.errors import ConfigError, DatasetError
from judgekit.testing.server import ChatRequest, FakeJudge

# preference values: A = 0, B = 1, tie = 0.5


@pytest.mark.parametrize(
    ("a", "b"),
    [(1, 1.0), (1, "1"), (1, " 1.0 "), (-1, "-1"), (0.5, "0.5"), (1000, "1e3"), (True, "true"),
     (True, "YES"), (True, "on"), (False, "no"), (False, "Off"), ("model_a", " Model_A ")],
)  # fmt: skip
def test_values_that_match(a: Any, b: Any) -> None:
    assert label_key(a) == label_key(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [(True, 1), (False, 0), (True, "1"), (1, 1.5), ("nan", float("nan")), ("a", "b")],
)
def test_values_that_do_not_match(a: Any, b: Any) -> None:
    """Booleans never equal numbers, although ``True == 1`` and ``hash(True) == hash(1)``."""
    assert label_key(a) != label_key(b)


@pytest.mark.parametrize(
    ("label_map", "first", "second"),
    [({1: "A", "1.0": "B"}, "1", "'1.0'"), ({"A": "A", "a": "B"}, "'A'", "'a'"),
     ({True: "pass", "yes": "fail"}, "True", "'yes'"), ({0.5: "tie", "0.50": "A"}, "0.5", "'0.50'")],
)  # fmt: skip
def test_keys_that_collide_are_a_config_error_naming_both(
    label_map: dict[Any, Any], first: str, second: str
) -> None:
    with pytest.raises(ConfigError, match=f"keys {first} and {second} match the same data values"):
        FieldsConfig(label_map=label_map)


def test_bool_and_number_keys_live_side_by_side() -> None:
    """``{1: B, true: pass}`` is two keys here (a plain dict built from the pairs keeps one)."""
    lookup = label_lookup({1: "B", "true": "pass", 0: "A", "false": "fail"}, "m")
    assert lookup[label_key(True)] == "pass" and lookup[label_key(1.0)] == "B"
    assert lookup[label_key("False")] == "fail" and lookup[label_key("0")] == "A"


@pytest.mark.parametrize("value", [None, [1], True, math.nan])
def test_a_map_value_must_be_a_label_name_or_a_number(value: Any) -> None:
    with pytest.raises(ConfigError, match="a value must be a label name"):
        FieldsConfig(label_map={1: value})


# --- from a user's dataset YAML, through real Hydra composition ------------------------------

PAIRS_YAML = """\
name: mine
source: inline
rows:
{rows}
fields:
  response: null
  extra: {{response_a: response_a, response_b: response_b}}
  scores: {{preference: label}}
  label_map: {label_map}
"""


def _yaml_dataset(root: Path, labels: list[Any], label_map: str) -> list[str]:
    """A dataset option ``mine`` of inline pairs with these labels; the overrides that choose it."""
    (root / "dataset").mkdir(parents=True, exist_ok=True)
    rows = "\n".join(
        f"  - {{prompt: p{i}, response_a: a, response_b: b, label: {json.dumps(v)}}}"
        for i, v in enumerate(labels)
    )
    (root / "dataset" / "mine.yaml").write_text(PAIRS_YAML.format(rows=rows, label_map=label_map))
    return [f"hydra.searchpath=[file://{root}]", "dataset=mine", "score=preference",
            "prompt=pairwise_v1"]  # fmt: skip


@pytest.mark.parametrize(
    ("label_map", "labels", "expected"),
    [
        # int keys, the -1/1 preference file; 1.0 and "1" in the data are the same label
        ("{-1: A, 1: B, 0: tie}", [-1, 1, 0, 1.0, "1", "-1"], [0, 1, 0.5, 1, 1, 0]),
        ("{0.5: tie, 0: A, 1: B}", [0.5, "0.5", 0.0, 1], [0.5, 0.5, 0, 1]),  # float keys
        ("{true: A, false: B}", [True, False, "true", "False"], [0, 1, 0, 1]),  # bool keys
        # YAML reads unquoted yes/no as booleans; the text "yes" in the data still matches
        ("{yes: A, no: B, maybe: tie}", ["yes", "no", "Maybe", "YES"], [0, 1, 0.5, 0]),
        ("{model_a: A, model_b: B}", ["model_a", "Model_B"], [0, 1]),  # text keys, any case
    ],
)
def test_label_maps_of_each_type_from_a_dataset_yaml(
    tmp_path: Path, label_map: str, labels: list[Any], expected: list[float]
) -> None:
    cfg = to_config(compose_config(_yaml_dataset(tmp_path, labels, label_map)))
    assert [e.human["preference"] for e in load_examples(cfg.dataset, cfg.score)] == expected


def test_a_yaml_map_that_misses_a_value_is_a_dataset_error(tmp_path: Path) -> None:
    cfg = to_config(compose_config(_yaml_dataset(tmp_path, [-1, 1, 2], "{-1: A, 1: B}")))
    with pytest.raises(DatasetError) as err:
        load_examples(cfg.dataset, cfg.score)
    assert str(err.value).startswith(
        "dataset.rows: row 2, column 'label': value 2 is not covered by dataset.fields.label_map "
        "{-1: 'A', 1: 'B'}; add it to the map (e.g. '++dataset.fields.label_map={2: LABEL, ...}'"
    )


def test_yaml_keys_that_collide_are_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"keys 1 and '1\.0' match the same data values"):
        to_config(compose_config(_yaml_dataset(tmp_path, [1], "{1: A, '1.0': B}")))


def test_null_and_blank_labels_stay_unlabelled_through_a_map(tmp_path: Path) -> None:
    cfg = to_config(compose_config(_yaml_dataset(tmp_path, [None, " ", -1], "{-1: A, 1: B}")))
    human = [e.human["preference"] for e in load_examples(cfg.dataset, cfg.score)]
    assert math.isnan(human[0]) and math.isnan(human[1]) and human[2] == 0


def test_a_map_to_numbers_feeds_a_numeric_score(tmp_path: Path) -> None:
    """``{true: 1, false: 0}`` for a 0-1 score; the annotators' columns go through the map too."""
    rows = [
        {"prompt": "p", "response": "r", "ok": True, "a1": "yes", "a2": False},
        {"prompt": "p", "response": "r", "ok": False, "a1": "no", "a2": "true"},
    ]
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    overrides = ["dataset=jsonl", f"dataset.path={path}", "score=usr_understandable",
                 "++dataset.fields.scores={understandable: ok}", "prompt=v1",
                 "++dataset.fields.annotators={understandable: [a1, a2]}",
                 "++dataset.fields.label_map={true: 1, false: 0}"]  # fmt: skip
    cfg = to_config(compose_config(overrides))
    examples = load_examples(cfg.dataset, cfg.score)
    assert [e.human["understandable"] for e in examples] == [1.0, 0.0]
    assert [e.annotators["understandable"] for e in examples] == [[1.0, 0.0], [0.0, 1.0]]


# --- on the command line, through the CLI --------------------------------------------------


def _pairs_file(path: Path, labels: list[Any]) -> None:
    rows = [
        {"question": f"q{i}", "ans1": "a", "ans2": "b", "winner": v} for i, v in enumerate(labels)
    ]
    if path.suffix == ".csv":
        pd.DataFrame(rows).to_csv(path, index=False)
    else:
        write_jsonl(path, rows)


def _cli_pairs(workdir: Path, judge: FakeJudge, name: str, label_map: str) -> list[str]:
    return [
        *judge_overrides(judge),
        "score=preference",
        "prompt=pairwise_v1",
        "dataset=pairwise_jsonl",
        f"dataset.path={name}",
        "dataset.fields.prompt=question",
        "dataset.fields.extra.response_a=ans1",
        "dataset.fields.extra.response_b=ans2",
        "dataset.fields.scores.preference=winner",
        f"++dataset.fields.label_map={label_map}",
        "tracking.enabled=false",
        "hydra.run.dir=out",
    ]


def _always_a(request: ChatRequest) -> str:
    return '{"preference": "A"}'


@pytest.mark.parametrize(
    ("name", "labels", "label_map", "expected"),
    [
        ("pairs.jsonl", [-1, 1, 0, 1.0], "{-1: A, 1: B, 0: tie}", [0, 1, 0.5, 1]),  # int keys
        ("pairs.csv", [-1, 1, 0], "{-1: A, 1: B, 0: tie}", [0, 1, 0.5]),  # CSV: text "-1"
        ("pairs.jsonl", [0.5, 0, 1], "{0.5: tie, 0: A, 1: B}", [0.5, 0, 1]),  # float keys
        ("pairs.jsonl", [True, False], "{true: A, false: B}", [0, 1]),  # bool keys
        ("pairs.csv", ["yes", "no"], "{yes: A, no: B}", [0, 1]),  # text keys
    ],
)
def test_label_maps_of_each_type_on_the_command_line(
    workdir: Path, name: str, labels: list[Any], label_map: str, expected: list[float]
) -> None:
    _pairs_file(workdir / name, labels)
    with FakeJudge(_always_a) as judge:
        proc = run_cli(_cli_pairs(workdir, judge, name, label_map), workdir)
    assert proc.returncode == 0, proc.stderr
    table = pd.read_parquet(workdir / "out" / "results.parquet")
    assert table.sort_values("example_id")["human"].tolist() == expected


def test_a_value_the_command_line_map_misses_stops_before_any_call(workdir: Path) -> None:
    _pairs_file(workdir / "pairs.jsonl", [-1, 1, 2])
    with FakeJudge(_always_a) as judge:
        proc = run_cli(_cli_pairs(workdir, judge, "pairs.jsonl", "{-1: A, 1: B}"), workdir)
        assert judge.counters.requests_total == 0
    assert proc.returncode == 2
    assert (
        "judgekit: error: pairs.jsonl: row 2, column 'winner': value 2 is not covered by "
        "dataset.fields.label_map {-1: 'A', 1: 'B'}"
    ) in proc.stderr
    assert "Traceback" not in proc.stderr


def test_command_line_keys_that_collide_stop_with_exit_2(workdir: Path) -> None:
    _pairs_file(workdir / "pairs.jsonl", [1])
    with FakeJudge(_always_a) as judge:
        proc = run_cli(_cli_pairs(workdir, judge, "pairs.jsonl", "{-1: A, yes: B, true: tie}"), workdir)  # fmt: skip
    assert proc.returncode == 2
    assert "dataset.fields.label_map: keys 'yes' and True match the same data values" in proc.stderr


def test_a_map_of_mixed_key_types_is_fingerprinted_and_logged_as_one_param(tmp_path: Path) -> None:
    """JSON's ``sort_keys`` cannot order ``-1`` and ``"A>B"``, and MLflow refuses ``>`` in a
    param name: the fingerprint writes keys as JSON does, the params hold the map as one value."""
    from judgekit.tracking.runs import config_fingerprint, flatten_params

    overrides = _yaml_dataset(tmp_path, [-1], "{-1: A, 'A>B': B, true: tie}")
    cfg = to_config(compose_config(overrides))
    same = to_config(compose_config(overrides))
    assert config_fingerprint(cfg) == config_fingerprint(same)
    params = flatten_params(cfg)
    assert params["dataset.fields.label_map"] == "{-1: 'A', 'A>B': 'B', True: 'tie'}"
    assert not [k for k in params if k.startswith("dataset.fields.label_map.")]


def test_a_run_with_a_mixed_map_is_logged_to_mlflow(workdir: Path) -> None:
    overrides = _yaml_dataset(workdir / "conf", [-1, 1, "A>B"], "{-1: A, 1: B, 'A>B': tie}")
    with FakeJudge(_always_a) as judge:
        proc = run_cli([*judge_overrides(judge), *overrides, "hydra.run.dir=out"], workdir)
    assert proc.returncode == 0, proc.stderr
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{workdir}/mlflow.db")
    (run,) = client.search_runs([client.get_experiment_by_name("judgekit").experiment_id])
    assert run.data.params["dataset.fields.label_map"] == "{-1: 'A', 1: 'B', 'A>B': 'tie'}"
    table = pd.read_parquet(workdir / "out" / "results.parquet")
    assert table.sort_values("example_id")["human"].tolist() == [0, 1, 0.5]
