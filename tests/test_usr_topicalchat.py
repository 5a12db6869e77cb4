"""USR Topical-Chat (``dataset=usr_topicalchat``): one row per response, the means of the three
annotators as human labels, each annotator kept, contexts as groups and models as systems.

The expected figures are computed here from the raw JSON, independently of the adapter.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from helpers import SHARED_DATA, shared_data

from judgekit.config.compose import compose_config, to_config
from judgekit.config.schema import Config, DatasetConfig, FieldsConfig
from judgekit.data.adapters import usr_topicalchat
from judgekit.data.loading import load_examples, load_rows
from judgekit.errors import DatasetError
from judgekit.prompts.render import render

FILE = "usr-topicalchat/usr_topical_chat.json"
QUALITIES = {
    "usr_overall": ("overall", "Overall"),
    "usr_natural": ("natural", "Natural"),
    "usr_maintains_context": ("maintains_context", "Maintains Context"),
    "usr_engaging": ("engaging", "Engaging"),
    "usr_understandable": ("understandable", "Understandable"),
    "usr_uses_knowledge": ("uses_knowledge", "Uses Knowledge"),
}


def _config(score: str, *overrides: str) -> Config:
    return to_config(
        compose_config(["dataset=usr_topicalchat", f"score={score}", "prompt=usr_v1", *overrides])
    )


def _raw() -> list[dict]:
    return json.loads(shared_data(FILE).read_text())


@pytest.mark.parametrize("score", sorted(QUALITIES))
def test_every_response_is_a_row_with_the_mean_of_its_three_annotators(score: str) -> None:
    raw = _raw()
    cfg = _config(score, f"dataset.data_root={SHARED_DATA}")
    examples = load_examples(cfg.dataset, cfg.score)
    name, released = QUALITIES[score]
    assert len(examples) == 360 == 60 * 6
    assert len({e.id for e in examples}) == 360
    assert len({e.group for e in examples}) == 60
    # independent: walk the JSON in order, context by context, response by response
    expected = [
        (c["context"].strip(), r["response"].strip(), r["model"], r[released])
        for c in raw
        for r in c["responses"]
    ]
    for example, (context, response, _, ratings) in zip(examples, expected, strict=True):
        assert example.human[name] == pytest.approx(sum(ratings) / 3, abs=1e-12)
        assert example.annotators[name] == [float(v) for v in ratings]
        assert example.item["response"] == response
        assert example.item["prompt"].split() == context.split()  # turns one per line, as words
    models = Counter(model for _, _, model, _ in expected)
    assert len(models) == 6 and set(models.values()) == {60}
    assert Counter(e.item["model"] for e in examples) == models


def test_ids_groups_and_systems_name_the_context_and_the_model() -> None:
    cfg = _config("usr_overall", f"dataset.data_root={SHARED_DATA}")
    shared_data(FILE)
    examples = load_examples(cfg.dataset, cfg.score)
    assert cfg.dataset.fields.system == "model" and cfg.dataset.fields.group == "context_id"
    first = examples[:6]
    assert {e.group for e in first} == {"c00"} and examples[6].group == "c01"
    assert {e.id for e in first} == {
        "c00-original_ground_truth",
        "c00-new_human_generated",
        "c00-argmax_decoding",
        "c00-nucleus_decoding_p_0.3",
        "c00-nucleus_decoding_p_0.5",
        "c00-nucleus_decoding_p_0.7",
    }
    assert examples[0].item["annotator_ids"].count(",") == 2
    assert all(e.item["fact"] and "\n\n" not in e.item["prompt"] for e in examples)


def test_usr_v1_shows_the_conversation_the_fact_and_the_response() -> None:
    cfg = _config("usr_overall", f"dataset.data_root={SHARED_DATA}")
    shared_data(FILE)
    example = load_examples(cfg.dataset, cfg.score)[3]
    text = render(cfg.prompt, example, cfg.score)[-1]["content"]
    at = [text.index(example.item[k]) for k in ("prompt", "fact", "response")]
    assert at == sorted(at)
    assert '{"overall": <integer 1-5>}' in text
    for meaning in cfg.score.scores[0].levels.values():
        assert meaning in text


def test_default_data_root_is_the_shared_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JUDGEKIT_DATA_ROOT", raising=False)
    cfg = _config("usr_overall")
    assert cfg.dataset.path == "../shared/data/usr-topicalchat/usr_topical_chat.json"


def test_the_adapter_on_a_hand_made_context(tmp_path: Path) -> None:
    """Means by hand: (1+2+3)/3 = 2, (0+0+1)/3 = 1/3."""
    ratings = {q: [1, 2, 3] for q in ("Overall", "Natural", "Maintains Context", "Engaging")}
    response = {"response": " hi there \n", "model": "Nucleus Decoding (p = 0.3)", **ratings}
    response |= {"Understandable": [0, 0, 1], "Uses Knowledge": [1, 1, 1]}
    record = {"context": "a \n b \n\n", "fact": " f\n", "annotators": ["sm", "me", "er"]}
    rows = usr_topicalchat({**record, "responses": [response, {**response, "model": "X"}]}, 7)
    assert [r["id"] for r in rows] == ["c07-nucleus_decoding_p_0.3", "c07-x"]
    row = rows[0]
    assert (row["context"], row["fact"], row["response"]) == ("a\nb", "f", "hi there")
    assert row["overall"] == 2.0 and row["overall_3"] == 3.0
    assert row["understandable"] == pytest.approx(1 / 3)
    assert row["annotator_ids"] == "sm,me,er" and row["context_id"] == "c07"

    bad = {**record, "responses": [{**response, "Overall": [1, 2]}]}
    path = tmp_path / "usr.json"
    path.write_text(json.dumps([bad]))
    cfg = DatasetConfig(
        source="file", path=str(path), adapter="usr_topicalchat", fields=FieldsConfig()
    )
    with pytest.raises(
        DatasetError, match=r"row 0 cannot be read by dataset.adapter=usr_topicalchat"
    ):
        load_rows(cfg)
