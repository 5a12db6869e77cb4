"""Prompts: render a chat template for one example (:mod:`judgekit.prompts.render`) in a bounded
Jinja2 sandbox (:mod:`judgekit.prompts.sandbox`)."""

from __future__ import annotations

from judgekit.prompts.render import (
    MAX_TEXT,
    check_template_fields,
    item_fields,
    json_example,
    render,
    shown_fields,
    template_context,
)

__all__ = [
    "MAX_TEXT",
    "check_template_fields",
    "item_fields",
    "json_example",
    "render",
    "shown_fields",
    "template_context",
]
