"""The ``item.<field>`` names a prompt's templates use: parsed, never rendered.

Depends on Jinja2 and the sandbox only (not on the config schema), so the schema can ask which
fields a prompt shows when a config is composed.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

import jinja2
from jinja2 import nodes

from judgekit.errors import TemplateError
from judgekit.prompts.sandbox import environment

__all__ = ["template_fields"]

_LOADING_NODES = {
    nodes.Include: "include",
    nodes.Import: "import",
    nodes.FromImport: "from ... import",
    nodes.Extends: "extends",
}


def _parse(source: str, where: str) -> nodes.Template:
    try:
        tree = environment().parse(source)
    except jinja2.TemplateSyntaxError as err:
        raise TemplateError(
            f"{where}: template syntax error on line {err.lineno}: {err.message}"
        ) from None
    for node in tree.find_all(tuple(_LOADING_NODES)):
        raise TemplateError(
            f"{where}: line {node.lineno}: {{% {_LOADING_NODES[type(node)]} %}} is not supported: "
            "a prompt message cannot load other templates; put the text (or a macro) in the "
            "message itself"
        )
    return tree


def template_fields(name: str, sources: tuple[str, ...]) -> frozenset[str]:
    """The ``item.<field>`` names the templates ``sources`` of prompt ``name`` use."""
    return _item_fields(name, sources)


@lru_cache(maxsize=256)
def _item_fields(name: str, sources: tuple[str, ...]) -> frozenset[str]:
    """Parsed once per prompt: the pipeline checks every example against the same templates."""
    fields: set[str] = set()
    for i, source in enumerate(sources):
        fields |= _fields_in([_parse(source, f"prompt {name!r} message {i}")])
    return frozenset(fields)


@lru_cache(maxsize=256)
def _guarded_fields(name: str, sources: tuple[str, ...]) -> frozenset[str]:
    guarded: set[str] = set()
    for i, source in enumerate(sources):
        tree = _parse(source, f"prompt {name!r} message {i}")
        for node in tree.find_all((nodes.If, nodes.CondExpr, nodes.Test, nodes.Or, nodes.Filter)):
            if isinstance(node, (nodes.If, nodes.CondExpr)):
                guarded |= _fields_in([node.test])
            elif isinstance(node, nodes.Or):
                guarded |= _fields_in([node.left])
            elif isinstance(node, nodes.Test) or (
                isinstance(node, nodes.Filter) and node.name in ("default", "d")
            ):
                guarded |= _fields_in([node.node] if node.node is not None else [])
    return frozenset(guarded)


def _fields_in(trees: Iterable[nodes.Node]) -> set[str]:
    fields = set()
    for tree in trees:
        for node in [tree, *tree.find_all((nodes.Getattr, nodes.Getitem))]:
            if isinstance(node, nodes.Getattr | nodes.Getitem) and _is_item(node.node):
                field_name = node.attr if isinstance(node, nodes.Getattr) else _const(node.arg)
                if field_name is not None:
                    fields.add(field_name)
    return fields


def _is_item(node: nodes.Node) -> bool:
    return isinstance(node, nodes.Name) and node.name == "item"


def _const(node: nodes.Node) -> str | None:
    return node.value if isinstance(node, nodes.Const) and isinstance(node.value, str) else None
