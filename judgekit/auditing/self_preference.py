"""The ``self_preference`` test: does the judge favour responses of its own model family more than
the humans do?

Each response's model comes from ``dataset.fields.system`` (``audit.system_fields`` null): for a
range score the model of ``item.response``; for a preference score both models of the pair, a
list ``[model_a, model_b]`` or a text ``"model_a vs model_b"``. Or from item fields named by
``audit.system_fields`` (one, or two for a pair). A model is of the judge's family when
``audit.judge_family`` (null: inferred from ``judge.model``, :func:`judge_family`) appears in its
name, in any case.

- Preference scores: only pairs with exactly one response of the family enter the test; per pair
  the judge's preference for that response (1, 0, 0.5 a tie) is compared with the human's. The
  effect is the mean of (judge − human): positive when the judge prefers its own family more than
  the humans do. Robustness: the share of those pairs where the judge's verdict equals the human's.
- Range scores: the effect is the mean (judge − human) gap on the family's responses minus the
  gap on the other responses (a clustered bootstrap of the difference of means): positive when
  the judge scores its own family up, relative to the humans, more than it scores the others.
  Robustness: the share of the family's responses where the judge's score equals the human's.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from judgekit.auditing.effects import preference_for
from judgekit.auditing.registry import AuditTest, Context, Paired, register_test
from judgekit.errors import ConfigError
from judgekit.records import Example

__all__ = ["judge_family", "own_side", "systems_of"]

_NOT_A_FAMILY = frozenset({"local", "chat", "instruct", "fake", "judge", "model", "hf", "the"})


def judge_family(model: str) -> str:
    """The first word of ``model``'s name after any ``provider/`` prefix, skipping words that
    name no family: ``openai/gpt-4o`` → ``gpt``, ``claude-3-5-sonnet`` → ``claude``,
    ``openai/local-qwen2.5-coder-1.5b`` → ``qwen``; ``""`` when there is none."""
    name = model.rsplit("/", 1)[-1].lower()
    words = [w for w in re.findall(r"[a-z]+", name) if w not in _NOT_A_FAMILY]
    return words[0] if words else ""


def _family(ctx: Context) -> str:
    return str(ctx.audit.judge_family or judge_family(ctx.judge_model)).lower()


def systems_of(example: Example, ctx: Context) -> list[str]:
    """The models that wrote the example's response(s) (empty texts when unknown)."""
    fields = ctx.audit.system_fields
    if fields is not None:
        return [str(example.item.get(f) or "") for f in fields]
    if ctx.kind != "preference":
        return [example.system]
    parts = re.split(r"\s+vs\.?\s+", example.system.strip(), flags=re.IGNORECASE)
    return parts if len(parts) == 2 else [example.system, ""]


def own_side(example: Example, ctx: Context) -> str | None:
    """A pair: ``a`` or ``b`` when exactly one response is by the judge's family, else None."""
    family = _family(ctx)
    first, second = (s.lower() for s in systems_of(example, ctx))
    own = (family in first, family in second)
    if own == (True, False):
        return "a"
    if own == (False, True):
        return "b"
    return None


def _is_own(example: Example, ctx: Context) -> bool:
    return _family(ctx) in systems_of(example, ctx)[0].lower()


def _where(ctx: Context) -> str:
    fields = ctx.audit.system_fields
    if fields is not None:
        return f"audit.system_fields ({', '.join(f'item.{f}' for f in fields)})"
    return "dataset.fields.system"


def _check(examples: list[Example], ctx: Context) -> None:
    family = _family(ctx)
    if not family:
        raise ConfigError(
            f"audit.judge_family: no model family found in judge.model {ctx.judge_model!r}; "
            "set audit.judge_family to a name found in the systems' names (e.g. gpt)"
        )
    fields = ctx.audit.system_fields
    wanted = 2 if ctx.kind == "preference" else 1
    if fields is not None and len(fields) != wanted:
        raise ConfigError(
            f"audit.system_fields: {list(fields)} is not valid for a {ctx.kind} score; name "
            f"{wanted} item field(s): "
            + ("the models of responses A and B" if wanted == 2 else "the response's model")
        )
    if fields is None and not any(e.system for e in examples):
        raise ConfigError(
            "dataset.fields.system: self_preference needs each response's model; name the "
            "column holding it (for pairs: a list [model_a, model_b] or 'model_a vs model_b'), "
            "or set audit.system_fields"
        )
    for example in examples:
        systems = systems_of(example, ctx)
        if not all(systems):
            shown = example.system if fields is None else systems
            raise ConfigError(
                f"{_where(ctx)}: example {example.id!r} does not name "
                + (
                    f"both models of its pair (found {shown!r}); give [model_a, model_b] or "
                    "'model_a vs model_b'"
                    if wanted == 2
                    else f"the model of its response (found {shown!r})"
                )
            )
    names = sorted({s for e in examples for s in systems_of(e, ctx)})
    if ctx.kind == "preference":
        usable = any(own_side(e, ctx) for e in examples)
        what = "no pair has exactly one response"
    else:
        own = [_is_own(e, ctx) for e in examples]
        usable = any(own) and not all(own)
        what = "the responses are not split into some"
    if not usable:
        raise ConfigError(
            f"audit.judge_family: {what} by a model whose name contains {family!r} "
            f"(and others by other models); models in the data: {', '.join(names[:10])}"
        )


def _compare(examples: list[Example], rows: pd.DataFrame, ctx: Context) -> Paired:
    judge = rows["judge"].to_numpy(dtype=float)
    human = rows["human"].to_numpy(dtype=float)
    if ctx.kind != "preference":
        own = np.array([_is_own(e, ctx) for e in examples])
        return Paired(human, judge, applies=np.ones(len(examples), dtype=bool), contrast=own)
    sides = [own_side(e, ctx) for e in examples]
    applies = np.array([s is not None for s in sides])
    side = np.array([s or "a" for s in sides])
    return Paired(preference_for(human, side), preference_for(judge, side), applies=applies)


register_test(
    AuditTest(
        "self_preference",
        description="the judge's preference for its own family's responses vs the humans'",
        compare=_compare,
        check=_check,
    )
)
