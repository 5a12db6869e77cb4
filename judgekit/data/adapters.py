"""Row adapters: reshape one raw row of a published dataset into judgekit's columns.

Chosen by name with ``dataset.adapter``; each takes a raw row (a dict) and its position in the
file, and returns a new row, or a list of rows when one raw record holds several examples (USR
Topical-Chat: one context with six responses).
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Callable
from typing import Any

from judgekit.errors import ConfigError

__all__ = [
    "ADAPTERS",
    "PANDALM_LABELS",
    "USR_QUALITIES",
    "get_adapter",
    "pandalm",
    "register",
    "usr_topicalchat",
]

Row = dict[str, Any]
Adapter = Callable[[Row, int], Row | list[Row]]
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
def pandalm(row: Row, index: int = 0) -> Row:
    """Read one row of PandaLM's human-annotated test set (``testset-v1.json``); ``index`` unused.

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


USR_QUALITIES = {
    "Understandable": "understandable",
    "Natural": "natural",
    "Maintains Context": "maintains_context",
    "Engaging": "engaging",
    "Uses Knowledge": "uses_knowledge",
    "Overall": "overall",
}
"""USR's six qualities: the name in the released JSON -> judgekit's column and score name."""


@register("usr_topicalchat")
def usr_topicalchat(record: Row, index: int) -> list[Row]:
    """Split one context of USR Topical-Chat (``usr_topical_chat.json``) into six response rows.

    Each row has ``id`` (``c07-nucleus_decoding_p_0.5``: the context's position ``index`` and the
    model), ``context_id`` (``c07``), ``context`` (the conversation so far, one turn per line,
    stripped), ``fact``, ``response``, ``model``, ``annotator_ids`` (the context's three
    annotators, e.g. ``sm,me,er``), and for each quality (``overall``, ``natural``, ...) the mean
    of the three annotators' ratings and each rating in ``<quality>_1`` .. ``_3`` (in the order of
    ``annotator_ids``). A rating list that does not hold three numbers is a ValueError.
    """
    context_id = f"c{index:02d}"
    turns = [line.strip() for line in str(record["context"]).split("\n")]
    base = {
        "context_id": context_id,
        "context": "\n".join(turn for turn in turns if turn),
        "fact": str(record["fact"]).strip(),
        "annotator_ids": ",".join(str(a) for a in record["annotators"]),
    }
    return [{**base, **_usr_response(response, context_id)} for response in record["responses"]]


def _usr_response(response: Row, context_id: str) -> Row:
    """One response of a USR context: its text, model, id and per-quality ratings and mean."""
    model = str(response["model"])
    slug = re.sub(r"[^a-z0-9.]+", "_", model.lower()).strip("_")
    row: Row = {"id": f"{context_id}-{slug}", "model": model}
    row["response"] = str(response["response"]).strip()
    for name, column in USR_QUALITIES.items():
        ratings = response[name]
        if not isinstance(ratings, list) or len(ratings) != 3:
            raise ValueError(f"{name!r} is {ratings!r}, expected the three annotators' ratings")
        values = [_rating(value, name) for value in ratings]
        row[column] = statistics.fmean(values)
        for k, value in enumerate(values, start=1):
            row[f"{column}_{k}"] = value
    return row


def _rating(value: Any, name: str) -> float:
    """One annotator's rating as a number; a bool or text is a ValueError."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name!r} rating {value!r} is not a number")
    return float(value)
