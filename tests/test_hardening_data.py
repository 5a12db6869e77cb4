"""Issue 12, data and templates: bad data or a bad template is one line, exit 2 and no judge call.

The corpus below runs the CLI as a user does, against the fake judge; the unit tests after it
check the same rules one function at a time, and the runs at the end what still has to work
(``dataset.drop_incomplete``, a score judged without human labels).
"""

from __future__ import annotations

import gzip
import json
import math
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import assert_one_line_error, judge_overrides, run_cli

from judgekit.config.schema import (
    DatasetConfig,
    FieldsConfig,
    Message,
    PromptConfig,
    RubricLabel,
    ScoreSchemaConfig,
    ScoreSpec,
)
from judgekit.data.loading import Example, load_examples
from judgekit.errors import ConfigError, DatasetError, TemplateError
from judgekit.prompts.render import MAX_TEXT, render, shown_fields
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
PAIR = {"prompt": "p", "response_a": "a", "response_b": "b", "label": "A"}
HEADER = list(ROW)


def _jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def _corrupt_gzip() -> bytes:
    """A .jsonl.gz with one byte flipped in the middle that zlib itself refuses (not only the CRC)."""
    rows = [
        {
            **ROW,
            "prompt": f"question {i} on topic {i % 7}",
            "response": f"answer {i * 31 % 97} " * 5,
        }
        for i in range(200)
    ]
    whole = gzip.compress(_jsonl(rows).encode(), mtime=0)
    for position in range(len(whole) // 2, len(whole) - 8):
        flipped = bytearray(whole)
        flipped[position] ^= 0xFF
        try:
            gzip.decompress(bytes(flipped))
        except zlib.error:
            return bytes(flipped)
        except (gzip.BadGzipFile, EOFError):
            continue
    raise AssertionError("no single flipped byte made a zlib error")


@pytest.fixture(scope="module")
def judge() -> Iterator[FakeJudge]:
    with FakeJudge() as server:
        yield server


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    (root / "good.jsonl").write_text(_jsonl([ROW, ROW]))
    (root / "corrupt.jsonl.gz").write_bytes(_corrupt_gzip())
    (root / "some_ids.jsonl").write_text(
        _jsonl([{**ROW, "id": "a"}, ROW, {**ROW, "id": "c"}, {**ROW, "id": None}])
    )
    surrogate = json.dumps({**ROW, "response": "before"}).replace("before", "bad \\ud800 text")
    (root / "surrogate.jsonl").write_text(_jsonl([ROW]) + surrogate + "\n")
    meta = [{**ROW, "meta": {"lang": "en"}} for _ in range(40)]
    meta[30] = {**ROW, "meta": {}}
    (root / "meta.jsonl").write_text(_jsonl(meta))
    (root / "null_response.jsonl").write_text(
        _jsonl(
            [
                {**ROW, "prompt": f"p{i}", "response": None if i in (4, 7) else "r"}
                for i in range(10)
            ]
        )
    )
    (root / "all_null.jsonl").write_text(_jsonl([{**ROW, "response": None}] * 3))
    (root / "no_response.jsonl").write_text(
        _jsonl([ROW, {k: v for k, v in ROW.items() if k != "response"}])
    )
    (root / "some_context.jsonl").write_text(_jsonl([{**ROW, "context": "c"}, ROW, ROW]))
    (root / "short.csv").write_text(",".join(HEADER) + "\np,r,2,2,2,2,2\np,r,2\n")
    (root / "long.csv").write_text(",".join(HEADER) + "\np,r,2,2,2,2,2,9\n")
    (root / "pairs.jsonl").write_text(_jsonl([PAIR, {**PAIR, "label": "C"}]))
    (root / "pairs_codes.jsonl").write_text(_jsonl([{**PAIR, "label": 1}]))
    boom = [PAIR] * 6
    boom[5] = {**PAIR, "response_b": "boom"}
    (root / "pairs_boom.jsonl").write_text(_jsonl(boom))
    (root / "folder").mkdir()
    (root / "folder" / "part1.jsonl").write_text(_jsonl([ROW]))
    (root / "folder" / "part2.jsonl").write_text(_jsonl([ROW]))
    (root / "empty_folder").mkdir()
    return root


def _template(content: str) -> str:
    return f"prompt.messages=[{{role: user, content: '{content}'}}]"


PAIRWISE = [
    "dataset=pairwise_jsonl",
    "prompt=pairwise_v1",
    "score=preference",
]

BAD_INPUTS = {
    # 1. a flipped byte inside a .jsonl.gz
    "corrupt gzip": (
        ["dataset.path={data}/corrupt.jsonl.gz"],
        "corrupt.jsonl.gz: cannot be read as .jsonl.gz: the compressed data is corrupt",
    ),
    # 2. an id column that some rows lack (or hold null in)
    "id missing in some rows": (
        ["dataset.path={data}/some_ids.jsonl", "dataset.fields.id=id"],
        "dataset.fields.id: column 'id' is missing or null in rows 1, 3",
    ),
    # 3. a lone surrogate from a JSON escape
    "lone surrogate": (
        ["dataset.path={data}/surrogate.jsonl"],
        "row 1 (line 2), column 'response': the text holds a lone surrogate",
    ),
    # 4. templates that hit the sandbox's limits or load other templates
    "template range too big": (
        [_template("{% for i in range(10**9) %}x{% endfor %}")],
        "prompt 'v1' message 0: sandbox: Range too big",
    ),
    "template repetition too big": (
        [_template('{{ "x" * 10**10 }}')],
        "'*' repeating 1 character(s) 10000000000 times",
    ),
    "template list repetition too big": (
        [_template("{{ [1, 2] * 10**9 }}")],
        "'*' repeating 2 item(s) 1000000000 times",
    ),
    "template power too big": ([_template("{{ 7 ** 1000000000 }}")], "too large a number"),
    "template output too long": (
        [
            _template(
                "{% for i in range(99999) %}{% for j in range(99999) %}xx{% endfor %}{% endfor %}"
            )
        ],
        "the rendered message grows past",
    ),
    "template format width too big": (
        [_template('{{ "%-10000000000s" % "x" }}')],
        "the format '%-10000000000' asks for a width",
    ),
    "template str.format width too big": (
        [_template('{{ "{:>10000000000}".format("x") }}')],
        "the format '{:>10000000000' asks for a width",
    ),
    "template center too wide": (
        [_template('{{ "x" | center(10**10) }}')],
        "center(10000000000) would make",
    ),
    "template recursion": (
        [_template("{% macro m(n) %}{{ m(n) }}{% endmacro %}{{ m(1) }}")],
        "prompt 'v1' message 0: recursion too deep",
    ),
    "template include": (
        [_template('{% include "other.j2" %}')],
        "{% include %} is not supported",
    ),
    "template import": (
        [_template('{% import "other.j2" as o %}{{ item.prompt }}')],
        "{% import %} is not supported",
    ),
    "template extends": ([_template('{% extends "base.j2" %}')], "{% extends %} is not supported"),
    # 5. a template that fails on one row only: found before the first call
    "template fails on row 30": (
        ["dataset.path={data}/meta.jsonl", _template("{{ item.prompt }} {{ item.meta.lang }}")],
        "'dict object' has no attribute 'lang' (example '30')",
    ),
    "template error on one row's data": (
        ["dataset.path={data}/meta.jsonl", _template("{{ item.meta.lang + 1 }}")],
        "TypeError: can only concatenate str",
    ),
    "template fails only in the swapped order": (
        [
            *PAIRWISE,
            "dataset.path={data}/pairs_boom.jsonl",
            "judge.swap=true",
            _template(
                "{{ item.prompt }} {{ item.response_a }} {{ item.response_b }}"
                '{% if item.response_a == "boom" %}{{ 1 / 0 }}{% endif %}'
            ),
        ],
        "ZeroDivisionError: division by zero (example '5')",
    ),
    # 6. a field the prompt shows that is null or missing in some rows
    "null response": (
        ["dataset.path={data}/null_response.jsonl"],
        "2 of 10 rows lack a value for a field prompt 'v1' shows: row 4: item.response is null; "
        "row 7: item.response is null; fill them in, or set dataset.drop_incomplete=true",
    ),
    "mapped column missing in a row": (
        ["dataset.path={data}/no_response.jsonl"],
        "row 1 has no column 'response' (dataset.fields.response)",
    ),
    "template field missing in some rows": (
        ["dataset.path={data}/some_context.jsonl", _template("{{ item.context }}")],
        "row 1: item.context is missing; row 2: item.context is missing",
    ),
    "every row dropped": (
        [
            "dataset.path={data}/some_context.jsonl",
            _template("{{ item.context }} {{ item.nothing }}"),
            "dataset.drop_incomplete=true",
        ],
        "template variable(s) item.nothing not in the data",
    ),
    "drop_incomplete leaves no row": (
        ["dataset.path={data}/all_null.jsonl", "dataset.drop_incomplete=true"],
        "3 of 3 rows lack a value for a field prompt 'v1' shows: row 0: item.response is null; "
        "row 1: item.response is null; row 2: item.response is null; dataset.drop_incomplete=true "
        "would leave no row to judge",
    ),
    # 7. short CSV rows, labels outside the rubric, a directory as the path
    "short csv row": (
        ["dataset.path={data}/short.csv"],
        "short.csv: row 1 (line 3) has 3 field(s) but the header has 7",
    ),
    "long csv row": (["dataset.path={data}/long.csv"], "row 0 (line 2) has 8 field(s)"),
    "human label outside the rubric": (
        [*PAIRWISE, "dataset.path={data}/pairs.jsonl"],
        "row 1, column 'label': human label 'C' is not one of preference's labels (A, B, tie)",
    ),
    "human code instead of a label": (
        [*PAIRWISE, "dataset.path={data}/pairs_codes.jsonl"],
        "human label 1 is not one of preference's labels",
    ),
    "directory as the path": (
        ["dataset.path={data}/folder"],
        "folder is a directory, not a file; it holds part1.jsonl, part2.jsonl",
    ),
    "empty directory as the path": (
        ["dataset.path={data}/empty_folder"],
        "empty_folder is a directory, not a file, and holds no data file",
    ),
    # 8. a score renamed by mistake
    "score renamed by mistake": (
        ["score.scores.0.name=helpfullness"],
        "score 'helpfullness' has no human labels, but good.jsonl maps human labels for "
        "helpfulness, correctness",
    ),
}


def _args(data_dir: Path, judge: FakeJudge, extra: list[str]) -> list[str]:
    """The base command, with each base key the case sets itself left out."""
    extra = [e.replace("{data}", str(data_dir)) for e in extra]
    base = [
        "dataset=jsonl",
        f"dataset.path={data_dir}/good.jsonl",
        "prompt=v1",
        "score=helpfulness",
    ]
    given = {e.split("=", 1)[0] for e in extra}
    return [*judge_overrides(judge), *(b for b in base if b.split("=", 1)[0] not in given), *extra]


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_data_or_template_is_one_line_exit_2_and_no_judge_call(
    case: str, judge: FakeJudge, data_dir: Path, tmp_path: Path
) -> None:
    extra, needle = BAD_INPUTS[case]
    before = judge.counters.requests_total
    proc = run_cli(_args(data_dir, judge, extra), tmp_path, timeout=180)
    assert_one_line_error(proc, needle)
    assert judge.counters.requests_total == before
    assert not (tmp_path / "mlflow.db").exists()


# --- the same rules, one function at a time ------------------------------------------------------

SCHEMA = ScoreSchemaConfig(name="h", scores=[ScoreSpec(name="helpfulness", minimum=0, maximum=4)])
PREFERENCE = ScoreSchemaConfig(
    name="preference",
    scores=[
        ScoreSpec(
            name="preference",
            kind="preference",
            labels={"A": RubricLabel(0), "B": RubricLabel(1), "tie": RubricLabel(0.5)},
        )
    ],
)


def _cfg(path: Path, **fields: object) -> DatasetConfig:
    scores = fields.pop("scores", {"helpfulness": "helpfulness"})
    return DatasetConfig(
        source="file", path=str(path), fields=FieldsConfig(scores=scores, **fields)
    )


def test_the_corrupt_gzip_is_one_zlib_itself_refuses(data_dir: Path) -> None:
    with pytest.raises(zlib.error):
        gzip.decompress((data_dir / "corrupt.jsonl.gz").read_bytes())
    with pytest.raises(DatasetError, match="the compressed data is corrupt"):
        load_examples(_cfg(data_dir / "corrupt.jsonl.gz"), SCHEMA)


def test_a_null_id_names_the_rows_and_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text(_jsonl([{**ROW, "id": i if i % 3 else None} for i in range(1, 21)]))
    # rows 2, 5, 8, 11, 14, 17 hold ids 3, 6, ... (null): six rows, five named
    with pytest.raises(
        DatasetError,
        match=r"column 'id' is missing or null in 6 rows \(2, 5, 8, 11, 14, \.\.\.\).*"
        r"dataset.fields.id=null",
    ):
        load_examples(_cfg(path, id="id"), SCHEMA)


def test_a_missing_group_is_named(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text(_jsonl([{**ROW, "g": 1}, ROW]))
    with pytest.raises(DatasetError, match="dataset.fields.group: column 'g' .* in row 1"):
        load_examples(_cfg(path, group="g"), SCHEMA)


def test_the_system_column_is_loaded_and_its_mistakes_are_named(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text(_jsonl([{**ROW, "model": "gpt"}, {**ROW, "model": 7}]))
    examples = load_examples(_cfg(path, system="model"), SCHEMA)
    assert [e.system for e in examples] == ["gpt", "7"]
    assert load_examples(_cfg(path), SCHEMA)[0].system == ""  # not set: no system
    with pytest.raises(DatasetError, match="dataset.fields.system: column 'sys' not found"):
        load_examples(_cfg(path, system="sys"), SCHEMA)
    path.write_text(_jsonl([{**ROW, "model": "gpt"}, ROW, {**ROW, "model": None}]))
    with pytest.raises(
        DatasetError,
        match=r"dataset.fields.system: column 'model' is missing or null in rows 1, 2 .*"
        r"dataset.fields.system=null",
    ):
        load_examples(_cfg(path, system="model"), SCHEMA)


@pytest.mark.parametrize("suffix", [".jsonl", ".json"])
def test_a_lone_surrogate_is_named_and_a_valid_pair_is_kept(tmp_path: Path, suffix: str) -> None:
    emoji = json.dumps({**ROW, "response": "\U0001f600"})  # written as \ud83d\ude00: a pair
    lone = json.dumps({**ROW, "response": "x"}).replace('"x"', '"a \\udc00 b"')
    path = tmp_path / f"d{suffix}"
    text = f"[{emoji}, {lone}]" if suffix == ".json" else f"{emoji}\n{lone}\n"
    path.write_text(text)
    with pytest.raises(DatasetError, match=r"row 1.*column 'response'.*'\\udc00'"):
        load_examples(_cfg(path), SCHEMA)
    path.write_text(f"[{emoji}]" if suffix == ".json" else f"{emoji}\n")
    assert load_examples(_cfg(path), SCHEMA)[0].item["response"] == "\U0001f600"


def test_a_lone_surrogate_in_inline_rows_is_named() -> None:
    cfg = DatasetConfig(
        source="inline",
        rows=[ROW, {**ROW, "prompt": "\ud800"}],
        fields=FieldsConfig(scores={"helpfulness": "helpfulness"}),
    )
    with pytest.raises(DatasetError, match=r"dataset.rows: row 1, column 'prompt'"):
        load_examples(cfg, SCHEMA)


def test_labels_are_matched_by_name_in_any_case_and_through_the_label_map(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text(_jsonl([{**PAIR, "label": "b"}, {**PAIR, "label": 2}, {**PAIR, "label": None}]))
    cfg = _cfg(path, response=None, scores={"preference": "label"})
    with pytest.raises(DatasetError, match="human label 2 is not one of preference's labels"):
        load_examples(cfg, PREFERENCE)  # no map: values pass as they are, and 2 is no label
    cfg = _cfg(path, response=None, scores={"preference": "label"}, label_map={"2": "A", "B": "B"})
    human = [e.human["preference"] for e in load_examples(cfg, PREFERENCE)]
    assert human[:2] == [1.0, 0.0] and math.isnan(human[2])  # "b" -> B = 1, 2 -> A = 0, null
    cfg = _cfg(path, response=None, scores={"preference": "label"}, label_map={"2": "A"})
    with pytest.raises(DatasetError, match="row 0, column 'label': value 'b' is not covered"):
        load_examples(cfg, PREFERENCE)  # with a map, every non-null value must be in it


def test_labels_read_as_whole_floats_match_and_map(tmp_path: Path) -> None:
    """A parquet column with a gap holds floats: 1 is read as 1.0, and must still be label 1."""
    import pandas as pd

    path = tmp_path / "d.parquet"
    pd.DataFrame({"prompt": ["p"] * 3, "label": [1, 2, None]}).to_parquet(path)
    numbered = ScoreSchemaConfig(
        scores=[ScoreSpec(name="v", labels={"1": RubricLabel(0), "2": RubricLabel(1)})]
    )
    cfg = _cfg(path, response=None, scores={"v": "label"})
    assert [e.human["v"] for e in load_examples(cfg, numbered)][:2] == [0.0, 1.0]
    cfg = _cfg(path, response=None, scores={"preference": "label"}, label_map={"1": "A", "2": "B"})
    assert [e.human["preference"] for e in load_examples(cfg, PREFERENCE)][:2] == [0.0, 1.0]


def test_a_score_renamed_by_mistake_suggests_the_nearest_name(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text(_jsonl([ROW]))
    typo = ScoreSchemaConfig(scores=[ScoreSpec(name="corectness", minimum=0, maximum=4)])
    cfg = _cfg(path, scores={"helpfulness": "helpfulness", "correctness": "correctness"})
    with pytest.raises(ConfigError, match="did you mean 'correctness'"):
        load_examples(cfg, typo)


@pytest.mark.parametrize(
    ("name", "row"),
    [
        ("toxicity", ROW),  # a new score, judged without labels: aggregates only
        ("helpfullness", {"prompt": "p", "response": "r"}),  # the data holds no labels at all
    ],
)
def test_a_score_without_labels_still_loads(tmp_path: Path, name: str, row: dict) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text(_jsonl([row]))
    schema = ScoreSchemaConfig(scores=[ScoreSpec(name=name, minimum=0, maximum=4)])
    cfg = _cfg(path, scores={n: n for n in HEADER[2:]})
    assert load_examples(cfg, schema)[0].human == {}


def test_a_directory_with_many_files_suggests_a_glob(tmp_path: Path) -> None:
    for i in range(7):
        (tmp_path / f"part{i}.jsonl").write_text(_jsonl([ROW]))
    with pytest.raises(DatasetError, match=r"\.\.\. \(7 files\).*dataset.path='.*/\*\.jsonl'"):
        load_examples(_cfg(tmp_path), SCHEMA)
    cfg = _cfg(tmp_path / "*.jsonl")  # the suggested glob reads them all
    assert len(load_examples(cfg, SCHEMA)) == 7


EXAMPLE = Example(id="e1", item={"prompt": "p", "response": "r"})


def _prompt(content: str) -> PromptConfig:
    return PromptConfig(name="t", messages=[Message("user", content)])


def test_repetition_up_to_the_limit_still_renders() -> None:
    source = f'{{{{ "ab" * {MAX_TEXT // 2 - 2} }}}}{{{{ 2 ** 10 }}}}'  # MAX_TEXT - 4, then 4
    text = render(_prompt(source), EXAMPLE, SCHEMA)[0]["content"]
    assert len(text) == MAX_TEXT and text.endswith("ab1024")


def test_formats_and_filters_within_the_limits_still_render() -> None:
    source = (
        '{{ "%5s|" | format("x") }}{{ "%.3f" % 2 }}{{ "{:>4}".format(1) }}{{ "x" | center(5) }}'
        '|{{ "a\nb" | indent(2) }}|{{ 7 % 3 }}'
    )
    assert render(_prompt(source), EXAMPLE, SCHEMA)[0]["content"] == (
        "    x|2.000   1  x  |a\n  b|1"
    )


def test_lipsum_is_bounded() -> None:
    with pytest.raises(TemplateError, match="lipsum"):
        render(_prompt("{{ lipsum(10**9) }}"), EXAMPLE, SCHEMA)


def test_shown_fields_leave_out_the_fields_a_template_tests() -> None:
    prompt = _prompt(
        "{{ item.a }}{% if item.b %}{{ item.b }}{% endif %}{{ item.c or '' }}"
        "{{ item['d'] | default('none') }}{{ item.e if item.e else '' }}{{ item.f is none }}"
    )
    assert shown_fields(prompt) == {"a"}


def test_the_pre_pass_renders_every_row_and_keeps_none() -> None:
    """20,000 prompts of 10 kB each would hold 200 MB; the pre-pass holds about one at a time."""
    import tracemalloc

    from judgekit.config.compose import compose_config, to_config
    from judgekit.design import render_all

    cfg = to_config(compose_config(["prompt=v1", "score=helpfulness"]))
    big = "x" * 10_000
    examples = [Example(id=str(i), item={"prompt": "p", "response": big}) for i in range(20_000)]
    tracemalloc.start()
    try:
        render_all(examples, cfg.prompt, cfg.score, swap=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000, peak
    examples[-1] = Example(id="last", item={"prompt": "p"})  # only the last row lacks a field
    with pytest.raises(TemplateError, match="'dict object' has no attribute 'response'.*'last'"):
        render_all(examples, cfg.prompt, cfg.score, swap=False)


# --- what must still work ------------------------------------------------------------------------


def _prepared(path: Path, *overrides: str):  # noqa: ANN202
    from judgekit.config.compose import compose_config, to_config
    from judgekit.pipeline import prepare

    cfg = to_config(
        compose_config(["dataset=jsonl", f"dataset.path={path}", "prompt=v1", *overrides])
    )
    return prepare(cfg, require_key=False)


def test_drop_incomplete_also_leaves_out_rows_without_a_mapped_column(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    rows = [ROW, {k: v for k, v in ROW.items() if k != "response"}, {**ROW, "response": None}, ROW]
    path.write_text(_jsonl(rows))
    prepared = _prepared(path, "dataset.drop_incomplete=true")
    assert prepared.dropped_incomplete == 2 and [e.id for e in prepared.examples] == ["0", "3"]


def test_a_field_the_template_tests_first_may_be_null(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text(_jsonl([{**ROW, "context": "c"}, {**ROW, "context": None}]))
    optional = _template("{{ item.prompt }}{% if item.context %} ({{ item.context }}){% endif %}")
    prepared = _prepared(path, optional)
    assert prepared.dropped_incomplete == 0 and len(prepared.examples) == 2


def test_drop_incomplete_leaves_out_counts_and_reports_the_rows(
    judge: FakeJudge, data_dir: Path, tmp_path: Path
) -> None:
    before = judge.counters.requests_total
    extra = ["dataset.path={data}/null_response.jsonl", "dataset.drop_incomplete=true"]
    proc = run_cli(_args(data_dir, judge, extra), tmp_path, timeout=240)
    assert proc.returncode == 0, proc.stderr
    assert judge.counters.requests_total == before + 8  # 10 rows, rows 4 and 7 left out
    logged = [line for line in (proc.stdout + proc.stderr).splitlines() if "left out" in line]
    assert len(logged) == 1 and "left out 2 of 10 rows of dataset 'jsonl'" in logged[0]
    (summary,) = tmp_path.glob("outputs/*/*/summary.json")
    data = json.loads(summary.read_text())
    assert data["dropped_incomplete"] == 2 and data["n_examples"] == 8
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("judgekit").experiment_id])
    assert run.data.metrics["data/dropped_incomplete"] == 2.0
