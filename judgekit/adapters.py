"""Row adapters: reshape one raw row of a published dataset into judgekit's columns.

Chosen by name with ``dataset.adapter``; each takes a raw row (a dict) and returns a new dict.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from judgekit.errors import ConfigError

__all__ = ["ADAPTERS", "get_adapter", "register"]

Adapter = Callable[[dict[str, Any]], dict[str, Any]]
ADAPTERS: dict[str, Adapter] = {}


def register(name: str) -> Callable[[Adapter], Adapter]:
    """Add an adapter to the registry under ``name``."""

    def add(fn: Adapter) -> Adapter:
        ADAPTERS[name] = fn
        return fn

    return add


def get_adapter(name: str) -> Adapter:
    """The adapter called ``name``; a ConfigError lists the known ones."""
    if name not in ADAPTERS:
        raise ConfigError(
            f"dataset.adapter: {name!r} is not a known adapter; use one of {', '.join(sorted(ADAPTERS))}"
        )
    return ADAPTERS[name]
