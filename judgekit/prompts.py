"""Render a prompt version's chat messages for one Example with a sandboxed Jinja2 environment.

Templates see ``item`` (the example's fields), ``scores`` (the score schema's ScoreSpecs) and
``json_example`` (the JSON answer shape the schema expects). Data values are inserted literally:
a ``{{ ... }}`` inside a response is text, never evaluated.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.sandbox import SandboxedEnvironment

from judgekit.config import PromptConfig, ScoreSchemaConfig, ScoreSpec
from judgekit.data import Example
from judgekit.errors import TemplateError

__all__ = ["check_template_fields", "item_fields", "json_example", "render", "template_context"]


@lru_cache(maxsize=1)
def _environment() -> SandboxedEnvironment:
    return SandboxedEnvironment(
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False
    )


@lru_cache(maxsize=256)
def _compile(source: str) -> jinja2.Template:
    return _environment().from_string(source)


def _parse(source: str, where: str) -> nodes.Template:
    try:
        return _environment().parse(source)
    except jinja2.TemplateSyntaxError as err:
        raise TemplateError(
            f"{where}: template syntax error on line {err.lineno}: {err.message}"
        ) from None


def item_fields(prompt: PromptConfig) -> set[str]:
    """The ``item.<field>`` names the prompt's messages use."""
    return set(_item_fields(prompt.name, tuple(m.content for m in prompt.messages)))


@lru_cache(maxsize=256)
def _item_fields(name: str, sources: tuple[str, ...]) -> frozenset[str]:
    """Parsed once per prompt: the pipeline checks every example against the same templates."""
    fields: set[str] = set()
    for i, source in enumerate(sources):
        tree = _parse(source, f"prompt {name!r} message {i}")
        for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
            target = node.node
            if isinstance(target, nodes.Name) and target.name == "item":
                if isinstance(node, nodes.Getattr):
                    fields.add(node.attr)
                elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
                    fields.add(node.arg.value)
    return frozenset(fields)


def check_template_fields(prompt: PromptConfig, example: Example, where: str) -> None:
    """Fail before any call when a template uses a field the data does not have."""
    missing = sorted(item_fields(prompt) - set(example.item))
    if missing:
        raise TemplateError(
            f"prompt {prompt.name!r}: template variable(s) {', '.join('item.' + m for m in missing)} "
            f"not in the data; fields in {where}: {', '.join(sorted(example.item))} "
            "(map a column with dataset.fields.extra.<name>=<column>)"
        )


def json_example(scores: list[ScoreSpec]) -> str:
    """The answer shape for the schema, e.g. ``{"helpfulness": <integer 0-4>}``."""
    parts = []
    for spec in scores:
        if spec.labels:
            shape = "<one of " + " | ".join(json.dumps(label) for label in spec.labels) + ">"
        elif spec.is_integer_scale:
            shape = f"<integer {int(spec.minimum or 0)}-{int(spec.maximum or 0)}>"
        else:
            shape = f"<number {spec.minimum:g}-{spec.maximum:g}>"
        parts.append(f'"{spec.key}": {shape}')
    return "{" + ", ".join(parts) + "}"


def template_context(example: Example, schema: ScoreSchemaConfig) -> dict[str, Any]:
    """What a template can see for one example."""
    return {
        "item": example.item,
        "scores": schema.scores,
        "json_example": json_example(schema.scores),
    }


def render(
    prompt: PromptConfig, example: Example, schema: ScoreSchemaConfig
) -> list[dict[str, str]]:
    """The chat messages for one example, in the OpenAI ``[{role, content}]`` shape."""
    context = template_context(example, schema)
    messages = []
    for i, message in enumerate(prompt.messages):
        try:
            content = _compile(message.content).render(context)
        except jinja2.UndefinedError as err:
            raise TemplateError(
                f"prompt {prompt.name!r} message {i}: {err.message} (example {example.id!r}); "
                f"fields available: {', '.join(sorted(example.item))}"
            ) from None
        except jinja2.TemplateError as err:
            raise TemplateError(f"prompt {prompt.name!r} message {i}: {err}") from None
        messages.append({"role": message.role, "content": content})
    return messages
