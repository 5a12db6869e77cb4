"""Prompt rendering: every prompt version with every score schema, literal data, strict variables."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from judgekit.config.compose import compose_config, conf_dir, to_config
from judgekit.config.schema import Message, PromptConfig
from judgekit.data.loading import Example
from judgekit.errors import TemplateError
from judgekit.prompts.render import check_template_fields, item_fields, json_example, render

EXAMPLE = Example(id="0", item={"prompt": "What is 2+2?", "response": "4"}, human={})
DIALOGUE = Example(id="0", item={**EXAMPLE.item, "fact": "2+2 is 4."})  # usr_v1 shows a fact
PAIR = Example(id="0", item={"prompt": "What is 2+2?", "response_a": "4", "response_b": "5"})


def _names(group: str) -> list[str]:
    return sorted(p.stem for p in (conf_dir() / group).glob("*.yaml"))


def _pairwise(group: str, option: str) -> bool:
    """Whether a prompt compares two responses, or a score schema holds a preference score."""
    node = compose_config([f"{group}={option}"])  # one group alone: no cross-group checks
    if group == "prompt":
        return "response_a" in item_fields(OmegaConf.to_object(node.prompt))
    return any(spec.kind == "preference" for spec in OmegaConf.to_object(node.score).scores)


def _combinations() -> list[tuple[str, str]]:
    """Every prompt with every score schema of its kind: pairwise with preference, else pointwise."""
    prompts = {name: _pairwise("prompt", name) for name in _names("prompt")}
    scores = {name: _pairwise("score", name) for name in _names("score")}
    return [(p, s) for p in prompts for s in scores if prompts[p] == scores[s]]


@pytest.mark.parametrize(("prompt", "score"), _combinations())
def test_every_prompt_renders_with_every_schema_of_its_kind(prompt: str, score: str) -> None:
    cfg = to_config(compose_config([f"prompt={prompt}", f"score={score}"]))
    pairwise = "response_a" in item_fields(cfg.prompt)
    messages = render(cfg.prompt, PAIR if pairwise else DIALOGUE, cfg.score)
    text = "\n".join(m["content"] for m in messages)
    assert "What is 2+2?" in text and messages[-1]["role"] == "user"
    for spec in cfg.score.scores:  # the JSON shape the parser expects
        numeric = f"<integer {spec.minimum:g}-{spec.maximum:g}>"
        shape = '<one of "A" | "B" | "tie">' if spec.kind == "preference" else numeric
        assert f'"{spec.name}": {shape}' in text


def test_every_prompt_and_score_has_a_partner_of_its_kind() -> None:
    pairs = _combinations()
    assert {p for p, _ in pairs} == set(_names("prompt"))
    assert {s for _, s in pairs} == set(_names("score"))


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
