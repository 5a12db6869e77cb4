"""Render a prompt version's chat messages for one Example with a sandboxed Jinja2 environment.

Templates see ``item`` (the example's fields), ``scores`` (the score schema's ScoreSpecs) and
``json_example`` (the JSON answer shape the schema expects). Data values are inserted literally:
a ``{{ ... }}`` inside a response is text, never evaluated.

Templates run in :mod:`judgekit.prompts.sandbox`, which bounds what they can build (``range()``,
``"x" * n``, the rendered text: :data:`MAX_TEXT`). A limit hit, recursion that does not end, a
template that loads another (``include``, ``import``, ``extends``) or any error of a template on
one row's data is a :class:`TemplateError` naming the prompt, the message and the example.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import jinja2
from jinja2.sandbox import SecurityError

from judgekit.config.schema import PromptConfig, ScoreSchemaConfig, ScoreSpec
from judgekit.data.loading import Example
from judgekit.errors import TemplateError
from judgekit.prompts.fields import _guarded_fields, _item_fields, _parse
from judgekit.prompts.sandbox import MAX_TEXT, environment, render_text

__all__ = [
    "MAX_TEXT",
    "check_template_fields",
    "item_fields",
    "json_example",
    "render",
    "shown_fields",
    "template_context",
]


@lru_cache(maxsize=256)
def _compile(source: str, where: str) -> jinja2.Template:
    return environment().from_string(_parse(source, where))


def item_fields(prompt: PromptConfig) -> set[str]:
    """The ``item.<field>`` names the prompt's messages use."""
    return set(_item_fields(prompt.name, tuple(m.content for m in prompt.messages)))


def shown_fields(prompt: PromptConfig) -> set[str]:
    """The ``item.<field>`` names a prompt prints whatever their value (a null must not reach it).

    A field the template tests first (``{% if item.x %}``, ``item.x is none``, ``item.x or ...``,
    ``item.x | default(...)``) is optional: it may be null.
    """
    sources = tuple(m.content for m in prompt.messages)
    return set(_item_fields(prompt.name, sources) - _guarded_fields(prompt.name, sources))


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
        where = f"prompt {prompt.name!r} message {i}"
        template = _compile(message.content, where)
        try:
            content = render_text(template, context)
        except Exception as err:  # noqa: BLE001  # any error of a template on this row's data
            raise TemplateError(f"{where}: {_explain(err, example)}") from None
        messages.append({"role": message.role, "content": content})
    return messages


def _explain(err: Exception, example: Example) -> str:
    """One line saying what went wrong while rendering ``example``."""
    row = f"(example {example.id!r})"
    if isinstance(err, jinja2.UndefinedError):
        return f"{err.message} {row}; fields available: {', '.join(sorted(example.item))}"
    if isinstance(err, RecursionError):
        return f"recursion too deep (a macro that calls itself without end?) {row}"
    if isinstance(err, MemoryError):
        return f"ran out of memory building the text (a value or loop too large?) {row}"
    if isinstance(err, SecurityError | OverflowError):
        return f"sandbox: {err} {row}"
    if isinstance(err, jinja2.TemplateError):
        return f"{err} {row}"
    return f"{type(err).__name__}: {err} {row}"
