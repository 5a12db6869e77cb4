"""The pairwise dataset options load the real files in ../shared/data with the preference schema.

Tests that read the files skip, with the reason printed, when ../shared/data is absent.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from helpers import SHARED_DATA, shared_data

from judgekit.config.compose import compose_config, to_config
from judgekit.config.schema import Config, DatasetConfig, FieldsConfig
from judgekit.data.adapters import pandalm
from judgekit.data.loading import Example, load_examples
from judgekit.errors import DatasetError
from judgekit.prompts.render import check_template_fields, render
from judgekit.stats.pairwise import majority_verdict

# option: (a file it reads, rows, human labels) - counts from each folder's PROVENANCE.md
DATASETS = {
    "pandalm": ("pandalm-testset/testset-v1.json", 999, {"A": 422, "B": 472, "tie": 105}),
    "mtbench_human": ("llmbar/Processed/MT-Bench/dataset.json", 200, {"A": 101, "B": 99}),
    "faireval": ("llmbar/Processed/FairEval/dataset.json", 66, {"A": 41, "B": 25}),
    "llmeval2": ("llmbar/Processed/LLMEval2/dataset.json", 200, {"A": 92, "B": 108}),
    "llmbar_natural": ("llmbar/LLMBar/Natural/dataset.json", 100, {"A": 42, "B": 58}),
    # Neighbor 75/59 + GPTInst 45/47 + GPTOut 22/25 + Manual 22/24
    "llmbar_adversarial": (
        "llmbar/LLMBar/Adversarial/Neighbor/dataset.json",
        319,
        {"A": 164, "B": 155},
    ),
    # gpt-4o 193/157 + claude 143/127
    "judgebench": ("judgebench/judgebench_gpt-4o-2024-05-13.jsonl", 620, {"A": 336, "B": 284}),
}
LABELS = {0.0: "A", 1.0: "B", 0.5: "tie"}


def _config(option: str, *overrides: str) -> Config:
    return to_config(
        compose_config([f"dataset={option}", "score=preference", "prompt=pairwise_v1", *overrides])
    )


def _load(option: str) -> tuple[Config, list[Example]]:
    shared_data(DATASETS[option][0])
    cfg = _config(option, f"dataset.data_root={SHARED_DATA}")
    return cfg, load_examples(cfg.dataset, cfg.score)


@pytest.mark.parametrize("option", sorted(DATASETS))
def test_dataset_loads_with_the_preference_schema(option: str) -> None:
    _, examples = _load(option)
    _, rows, labels = DATASETS[option]
    assert len(examples) == rows
    assert Counter(LABELS[e.human["preference"]] for e in examples) == labels
    assert len({e.id for e in examples}) == rows
    for e in examples:
        assert all(isinstance(e.item[k], str) for k in ("prompt", "response_a", "response_b"))
        assert e.item["prompt"].strip() and "response" not in e.item


@pytest.mark.parametrize("option", sorted(DATASETS))
def test_default_data_root_is_the_shared_folder(
    option: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JUDGEKIT_DATA_ROOT", raising=False)
    cfg = _config(option)
    assert cfg.dataset.data_root == "../shared/data"
    assert str(cfg.dataset.path).startswith("../shared/data/")
    moved = _config(option, "dataset.data_root=/elsewhere")
    assert str(moved.dataset.path).startswith("/elsewhere/")


@pytest.mark.parametrize("option", sorted(DATASETS))
def test_missing_data_root_names_the_path(option: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUDGEKIT_DATA_ROOT", "/nonexistent")
    cfg = _config(option)
    with pytest.raises(DatasetError, match=r"dataset.data_root: /nonexistent does not exist"):
        load_examples(cfg.dataset, cfg.score)


@pytest.mark.parametrize("prompt", ["pairwise_v1", "pairwise_v2"])
@pytest.mark.parametrize("option", sorted(DATASETS))
def test_pairwise_prompts_render_a_real_row(option: str, prompt: str) -> None:
    cfg, examples = _load(option)
    cfg = _config(option, f"prompt={prompt}")
    example = examples[0]
    check_template_fields(cfg.prompt, example, option)
    text = "\n".join(m["content"] for m in render(cfg.prompt, example, cfg.score))
    for field in ("prompt", "response_a", "response_b"):
        assert example.item[field] in text
    assert '{"preference": <one of "A" | "B" | "tie">}' in text
    marked = Example(id="m", item={"prompt": "<P>", "response_a": "<RA>", "response_b": "<RB>"})
    text = "\n".join(m["content"] for m in render(cfg.prompt, marked, cfg.score))
    assert text.index("<P>") < text.index("<RA>") < text.index("<RB>")


def test_pandalm_rows_joins_input_and_takes_the_majority() -> None:
    _, examples = _load("pandalm")
    raw = json.loads(shared_data("pandalm-testset/testset-v1.json").read_text())
    with_input = next(i for i, row in enumerate(raw) if row["input"])
    row, item = raw[with_input], examples[with_input].item
    assert item["prompt"] == f"{row['instruction']}\n\n{row['input']}"
    assert examples[with_input].id == str(row["idx"])
    votes = np.array([e.annotators["preference"] for e in examples])
    assert votes.shape == (999, 3)
    human = np.array([e.human["preference"] for e in examples])
    assert np.array_equal(majority_verdict(votes), human)


def test_subsets_and_files_are_tagged_with_their_source() -> None:
    _, adversarial = _load("llmbar_adversarial")
    counts = Counter(e.item["_source"] for e in adversarial)
    assert counts == {"Neighbor": 134, "GPTInst": 92, "GPTOut": 47, "Manual": 46}
    _, judgebench = _load("judgebench")
    by_file = Counter(e.item["_source"] for e in judgebench)
    assert by_file == {
        "judgebench_gpt-4o-2024-05-13.jsonl": 350,
        "judgebench_claude-3-5-sonnet-20240620.jsonl": 270,
    }


def test_pandalm_adapter_on_hand_made_rows() -> None:
    row = {"instruction": "Fix it.", "input": "  ", "response1": "x", "response2": "y"}
    out = pandalm({**row, "annotator1": 1, "annotator2": "2", "annotator3": 0})
    # A blank input adds nothing; one vote each for A, B and tie is a three-way split: tie.
    assert out["prompt"] == "Fix it." and (out["response_a"], out["response_b"]) == ("x", "y")
    assert [out[f"annotator{k}"] for k in (1, 2, 3)] == ["A", "B", "tie"]
    assert out["label"] == "tie"
    two_b = pandalm({**row, "response1": True, "annotator1": 2, "annotator2": 2, "annotator3": 1})
    assert two_b["label"] == "B" and two_b["response_a"] == "True"  # a JSON true in v1


def test_pandalm_adapter_names_a_bad_row(tmp_path: Path) -> None:
    row = {"instruction": "i", "input": "", "response1": "x", "response2": "y", "idx": 0}
    bad = [{**row, "annotator1": 1, "annotator2": 1, "annotator3": 1}, {**row, "annotator1": 3}]
    path = tmp_path / "panda.json"
    path.write_text(json.dumps(bad))
    cfg = DatasetConfig(source="file", path=str(path), adapter="pandalm", fields=FieldsConfig())
    schema = _config("pandalm").score
    with pytest.raises(DatasetError, match=r"row 1 cannot be read by dataset.adapter=pandalm"):
        load_examples(cfg, schema)
