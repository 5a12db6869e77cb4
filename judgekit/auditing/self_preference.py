"""The ``self_preference`` test: does the judge favour responses of its own model family more than
the humans do, on the same pairs?

A pair's two writers are the item fields ``audit.system_fields`` (default ``system_a`` and
``system_b``: map the data's columns with ``dataset.fields.extra.system_a=model_a ...``). A
system is the judge's family when ``audit.judge_family`` appears in its name (any case). Only
pairs with exactly one response of the family enter the test; per pair the judge's preference for
that response (1, 0, 0.5 a tie) is compared with the human's: the effect is the mean of (judge −
human), positive when the judge prefers its own family more than the humans do. Robustness is the
share of those pairs where the judge's verdict equals the human's.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from judgekit.auditing.effects import preference_for
from judgekit.auditing.registry import AuditTest, Context, Paired, register_test
from judgekit.errors import ConfigError
from judgekit.records import Example

__all__ = ["own_side"]


def own_side(example: Example, ctx: Context) -> str | None:
    """``a`` or ``b`` when exactly one response is by the judge's family, else None."""
    family = str(ctx.audit.judge_family or "").lower()
    first, second = (str(example.item.get(f, "")).lower() for f in ctx.audit.system_fields)
    own = (family in first, family in second)
    if own == (True, False):
        return "a"
    if own == (False, True):
        return "b"
    return None


def _check(examples: list[Example], ctx: Context) -> None:
    if not ctx.audit.judge_family:
        raise ConfigError(
            "audit.judge_family: self_preference needs the judge's model family, a name found in "
            "the systems' names (e.g. audit.judge_family=gpt-4)"
        )
    fields = list(ctx.audit.system_fields)
    for example in examples:
        missing = [f for f in fields if not example.item.get(f)]
        if missing:
            raise ConfigError(
                f"audit.system_fields: example {example.id!r} has no item.{missing[0]}; map the "
                f"column naming each response's model with dataset.fields.extra.{missing[0]}=COLUMN"
            )
    if not any(own_side(e, ctx) for e in examples):
        systems = sorted({str(e.item[f]) for e in examples for f in fields})
        raise ConfigError(
            f"audit.judge_family: no pair has exactly one response by a system whose name "
            f"contains {ctx.audit.judge_family!r}; systems in the data: {', '.join(systems[:10])}"
        )


def _compare(examples: list[Example], rows: pd.DataFrame, ctx: Context) -> Paired:
    sides = [own_side(e, ctx) for e in examples]
    applies = np.array([s is not None for s in sides])
    side = np.array([s or "a" for s in sides])
    judge = preference_for(rows["judge"].to_numpy(dtype=float), side)
    human = preference_for(rows["human"].to_numpy(dtype=float), side)
    return Paired(baseline=human, observed=judge, applies=applies)


register_test(
    AuditTest(
        "self_preference",
        kinds=("preference",),
        description="the judge's preference for its own family's responses vs the humans'",
        compare=_compare,
        check=_check,
    )
)
