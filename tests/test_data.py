"""Loading every file format, the column and range checks, and stratified sampling."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import pandas as pd
import pytest
from helpers import write_jsonl

from judgekit.config.schema import DatasetConfig, FieldsConfig, ScoreSchemaConfig, ScoreSpec
from judgekit.data.loading import load_examples
from judgekit.data.sampling import sample_examples
from judgekit.errors import DatasetError

SCHEMA = ScoreSchemaConfig(name="h", scores=[ScoreSpec(name="helpfulness", minimum=0, maximum=4)])
ROWS = [
    {"prompt": f"p{i // 2}", "response": f"r{i}", "helpfulness": i % 5, "extra": "x"}
    for i in range(10)
]


def _write(path: Path, rows: list[dict]) -> Path:
    if path.name.endswith(".jsonl.gz"):
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)
    elif path.suffix == ".jsonl":
        write_jsonl(path, rows)
    elif path.suffix == ".csv":
        pd.DataFrame(rows).to_csv(path, index=False)
    else:
        pd.DataFrame(rows).to_parquet(path)
    return path


def _cfg(path: Path, **fields: object) -> DatasetConfig:
    return DatasetConfig(
        source="file",
        path=str(path),
        fields=FieldsConfig(scores={"helpfulness": "helpfulness"}, **fields),
    )


@pytest.mark.parametrize("name", ["d.jsonl", "d.jsonl.gz", "d.csv", "d.parquet"])
def test_each_format_loads_the_same_examples(tmp_path: Path, name: str) -> None:
    examples = load_examples(_cfg(_write(tmp_path / name, ROWS)), SCHEMA)
    assert [e.human["helpfulness"] for e in examples] == [i % 5 for i in range(10)]
    assert examples[3].item["response"] == "r3" and examples[3].group == "p1"


def test_unknown_extension_names_the_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(
        DatasetError, match=r"unknown extension .\.txt.*\.jsonl, \.jsonl\.gz, \.json, \.csv"
    ):
        load_examples(_cfg(tmp_path / "d.txt"), SCHEMA)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no such file"):
        load_examples(_cfg(tmp_path / "absent.jsonl"), SCHEMA)


def test_missing_column_lists_the_columns(tmp_path: Path) -> None:
    path = _write(tmp_path / "d.jsonl", ROWS)
    with pytest.raises(
        DatasetError,
        match=r"dataset.fields.response: column 'answer' not found; columns in d.jsonl: prompt",
    ):
        load_examples(_cfg(path, response="answer"), SCHEMA)


def test_human_score_out_of_range_names_row_and_value(tmp_path: Path) -> None:
    rows = [dict(r) for r in ROWS]
    rows[7]["helpfulness"] = 9
    with pytest.raises(
        DatasetError, match=r"row 7, column 'helpfulness': human score 9 is outside"
    ):
        load_examples(_cfg(_write(tmp_path / "d.jsonl", rows)), SCHEMA)


def test_non_numeric_human_score_is_refused(tmp_path: Path) -> None:
    rows = [dict(r) for r in ROWS]
    rows[2]["helpfulness"] = "great"
    with pytest.raises(DatasetError, match=r"row 2.*'great' is not a number"):
        load_examples(_cfg(_write(tmp_path / "d.jsonl", rows)), SCHEMA)


def test_null_human_score_is_an_unlabelled_row(tmp_path: Path) -> None:
    rows = [dict(r) for r in ROWS]
    rows[4]["helpfulness"] = None
    examples = load_examples(_cfg(_write(tmp_path / "d.jsonl", rows)), SCHEMA)
    assert math.isnan(examples[4].human["helpfulness"])


def test_bad_json_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n{not json\n")
    with pytest.raises(DatasetError, match="line 2 is not valid JSON"):
        load_examples(_cfg(path), SCHEMA)


def test_truncated_gzip_is_a_dataset_error(tmp_path: Path) -> None:
    path = _write(tmp_path / "d.jsonl.gz", ROWS * 50)
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(DatasetError, match="cannot be read"):
        load_examples(_cfg(path), SCHEMA)


def test_empty_file_is_a_dataset_error(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text("")
    with pytest.raises(DatasetError, match="no rows"):
        load_examples(_cfg(path), SCHEMA)


def test_duplicate_ids_are_refused(tmp_path: Path) -> None:
    rows = [dict(r, id=f"x{i % 9}") for i, r in enumerate(ROWS)]
    with pytest.raises(DatasetError, match="rows 0 and 9 share the id 'x0'"):
        load_examples(_cfg(_write(tmp_path / "d.jsonl", rows), id="id"), SCHEMA)


def test_sample_is_seeded_stratified_and_in_file_order(tmp_path: Path) -> None:
    rows = [{"prompt": "p", "response": str(i), "helpfulness": i % 5} for i in range(100)]
    examples = load_examples(_cfg(_write(tmp_path / "d.jsonl", rows)), SCHEMA)
    sample = sample_examples(examples, 20, seed=3, stratify_by="helpfulness")
    # 100 rows, 20 per level; a sample of 20 takes 20 * 20/100 = 4 from each level.
    levels = [e.human["helpfulness"] for e in sample]
    assert sorted(levels.count(v) for v in range(5)) == [4, 4, 4, 4, 4]
    assert [int(e.id) for e in sample] == sorted(int(e.id) for e in sample)
    assert sample == sample_examples(examples, 20, seed=3, stratify_by="helpfulness")
    assert sample != sample_examples(examples, 20, seed=4, stratify_by="helpfulness")
    assert [e.id for e in sample] != [str(i) for i in range(20)]


def test_hub_loader_reads_a_hub_layout_through_datasets(tmp_path: Path) -> None:
    """The real ``datasets.load_dataset`` code path, on a local folder laid out like the hub repo."""
    repo = tmp_path / "HelpSteer2"
    repo.mkdir()
    _write(repo / "validation.jsonl.gz", ROWS)
    _write(repo / "train.jsonl.gz", ROWS[:4])
    cfg = DatasetConfig(
        source="hub",
        path=str(repo),
        split="validation",
        data_files={"train": "train.jsonl.gz", "validation": "validation.jsonl.gz"},
        fields=FieldsConfig(scores={"helpfulness": "helpfulness"}),
    )
    examples = load_examples(cfg, SCHEMA)
    assert len(examples) == 10 and examples[9].item["response"] == "r9"


def test_hub_unreachable_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg = DatasetConfig(source="hub", path="nvidia/HelpSteer2-not-cached", split="validation")
    with pytest.raises(
        DatasetError, match=r"cannot load 'nvidia/HelpSteer2-not-cached'.*dataset=jsonl"
    ):
        load_examples(cfg, SCHEMA)
