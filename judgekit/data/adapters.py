"""Row adapters: reshape one raw row of a published dataset into judgekit's columns.

Chosen by name with ``dataset.adapter``; each takes a raw row (a dict) and returns a new dict.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from judgekit.errors import ConfigError

__all__ = ["ADAPTERS", "PANDALM_LABELS", "get_adapter", "pandalm", "register"]

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


PANDALM_LABELS = {0: "tie", 1: "A", 2: "B"}
"""PandaLM's annotator codes: 0 = tie (or similar quality), 1 = response1 better, 2 = response2."""


@register("pandalm")
def pandalm(row: dict[str, Any]) -> dict[str, Any]:
    """Read one row of PandaLM's human-annotated test set (``testset-v1.json``).

    Adds ``prompt`` (the instruction, then a blank line and the input when there is one),
    ``response_a``/``response_b`` (``response1``/``response2``) and ``label``, the majority of
    ``annotator1..3``; rewrites ``annotator1..3`` from codes 0/1/2 to ``tie``/``A``/``B``. The
    majority is the label more than half of the annotators gave; a three-way split (none in v1,
    whose majorities are A 422, B 472, tie 105) counts as ``tie``: the annotators did not agree
    that either response is better. Six responses are JSON ``true`` in v1 (idx 157-164, a
    statement-checking prompt); they become the text ``True``.
    """
    out = dict(row)
    instruction, extra = str(row["instruction"]), str(row.get("input") or "")
    out["prompt"] = f"{instruction}\n\n{extra}" if extra.strip() else instruction
    out["response_a"], out["response_b"] = _text(row["response1"]), _text(row["response2"])
    votes = [_pandalm_label(row[f"annotator{k}"]) for k in (1, 2, 3)]
    for k, vote in enumerate(votes, start=1):
        out[f"annotator{k}"] = vote
    out["label"] = next((v for v in set(votes) if votes.count(v) * 2 > len(votes)), "tie")
    return out


def _text(value: Any) -> str:
    """A response as text: ``None`` is empty, a JSON ``true`` or a number its Python text."""
    return "" if value is None else str(value)


def _pandalm_label(code: Any) -> str:
    """An annotator code (0, 1, 2, as int or text) as ``tie``, ``A`` or ``B``."""
    number = float(code)
    if number not in PANDALM_LABELS:
        raise ValueError(f"annotator code {code!r} is not 0 (tie), 1 (response1) or 2 (response2)")
    return PANDALM_LABELS[int(number)]
