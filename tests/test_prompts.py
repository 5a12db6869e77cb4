"""Prompt rendering: every prompt version with every score schema, literal data, strict variables."""

from __future__ import annotations

import pytest

from judgekit.cli import compose_config, conf_dir, to_config
from judgekit.config import Message, PromptConfig
from judgekit.data import Example
from judgekit.errors import TemplateError
from judgekit.prompts import check_template_fields, item_fields, json_example, render

EXAMPLE = Example(id="0", item={"prompt": "What is 2+2?", "response": "4"}, human={})


def _names(group: str) -> list[str]:
    return sorted(p.stem for p in (conf_dir() / group).glob("*.yaml"))


@pytest.mark.parametrize("prompt", _names("prompt"))
@pytest.mark.parametrize("score", _names("score"))
def test_every_prompt_renders_with_every_schema(prompt: str, score: str) -> None:
    cfg = to_config(compose_config([f"prompt={prompt}", f"score={score}"]))
    messages = render(cfg.prompt, EXAMPLE, cfg.score)
    text = "\n".join(m["content"] for m in messages)
    assert "What is 2+2?" in text and messages[-1]["role"] == "user"
    for name in cfg.score.names:
        assert f'"{name}": <integer 0-4>' in text  # the JSON shape the parser expects


def test_v2_shows_every_level_definition() -> None:
    cfg = to_config(compose_config(["prompt=v2", "score=correctness"]))
    text = render(cfg.prompt, EXAMPLE, cfg.score)[-1]["content"]
    for level in cfg.score.scores[0].levels.values():
        assert level in text


def test_data_is_inserted_literally_never_evaluated() -> None:
    cfg = to_config(compose_config(["prompt=v1", "score=helpfulness"]))
    sneaky = Example(id="1", item={"prompt": "{{ 7 * 7 }}", "response": "{% for x in y %}"})
    text = render(cfg.prompt, sneaky, cfg.score)[-1]["content"]
    assert "{{ 7 * 7 }}" in text and "49" not in text and "{% for x in y %}" in text


def test_missing_field_is_named_with_the_fields_available() -> None:
    prompt = PromptConfig(
        name="p", messages=[Message("user", "{{ item.context }} {{ item['source'] }}")]
    )
    assert item_fields(prompt) == {"context", "source"}
    with pytest.raises(
        TemplateError,
        match=r"item.context, item.source not in the data; fields in d: prompt, response",
    ):
        check_template_fields(prompt, EXAMPLE, "d")


def test_sandbox_refuses_unsafe_attribute_access() -> None:
    cfg = to_config(compose_config(["score=helpfulness"]))
    prompt = PromptConfig(name="p", messages=[Message("user", "{{ item.__class__.__mro__ }}")])
    with pytest.raises(TemplateError):
        render(prompt, EXAMPLE, cfg.score)


def test_syntax_error_is_a_template_error() -> None:
    prompt = PromptConfig(name="p", messages=[Message("user", "{{ item.prompt ")])
    with pytest.raises(TemplateError, match="template syntax error on line 1"):
        item_fields(prompt)


def test_json_example_for_labels_and_ranges() -> None:
    cfg = to_config(
        compose_config(
            [
                "score.scores=[{name: v, labels: {yes: {value: 1}, no: {value: 0}}}, {name: s, minimum: 0, maximum: 1.5}]"
            ]
        )
    )
    assert json_example(cfg.score.scores) == '{"v": <one of "yes" | "no">, "s": <number 0-1.5>}'
