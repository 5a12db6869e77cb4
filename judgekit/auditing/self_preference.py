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
  A judge that errs at random is pulled towards 0.5, so where the humans favour one side the
  plain effect moves with the judge's noise; ``balanced_effect`` does not:
  ``(P(judge picks own | humans picked own) + P(judge picks own | humans picked the other)) / 2
  − 1/2`` (0 for a judge whose errors ignore the family; pairs the humans tied left out), with its
  interval. Also ``n_both_own`` (pairs with both responses of the family: left out) and
  ``human_own_rate``.
- Range scores: the effect is ``b2`` in ``judge = b0 + b1 · human + b2 · own`` (least squares;
  own = 1 on the family's responses), with an interval of refits on resampled clusters: how much
  higher the judge scores its own family than the human scores explain. A judge whose scale is a
  squeezed or shifted copy of the humans' has no effect. Beside it, ``gap_difference``: the mean
  (judge − human) on the family's responses minus on the others, with its interval. Robustness:
  the share of the family's responses where the judge's score equals the human's.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pandas as pd

from judgekit.auditing.effects import preference_for
from judgekit.auditing.registry import AuditTest, Context, Paired, register_test
from judgekit.errors import ConfigError
from judgekit.records import Example

__all__ = ["balanced_preference", "judge_family", "own_side", "systems_of"]

_NOT_A_FAMILY = frozenset(
    {"local", "chat", "instruct", "fake", "judge", "model", "hf", "the", "anthropic", "meta", "ai"}
)
_ALIASES = {"o": "gpt", "chatgpt": "gpt"}
"""Families whose model names do not start with the family's name (``o1-mini``, ``o3``)."""


def judge_family(model: str) -> str:
    """The first word of ``model``'s name after any ``provider/`` prefix, skipping words that
    name no family: ``openai/gpt-4o`` → ``gpt``, ``claude-3-5-sonnet`` → ``claude``,
    ``openai/local-qwen2.5-coder-1.5b`` → ``qwen``; ``""`` when there is none."""
    name = model.rsplit("/", 1)[-1].lower()
    words = [w for w in re.findall(r"[a-z]+", name) if w not in _NOT_A_FAMILY]
    return _ALIASES.get(words[0], words[0]) if words else ""


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


def _figures(examples: list[Example], rows: pd.DataFrame, ctx: Context) -> dict[str, Any]:
    """The further figures (see the module): ``balanced_effect`` or ``gap_difference``."""
    from judgekit.auditing.effects import clusters_of
    from judgekit.stats.bootstrap import clustered_mean_difference_ci

    paired = _compare(examples, rows, ctx)
    keep = paired.applies & np.isfinite(paired.baseline) & np.isfinite(paired.observed)
    clusters = clusters_of(examples, ctx.grouped)[keep]
    args: dict[str, Any] = {
        "resamples": ctx.audit.resamples,
        "confidence": ctx.confidence,
        "seed": ctx.audit.seed,
    }
    human, judge = paired.baseline[keep], paired.observed[keep]
    if paired.contrast is not None:
        gap, low, high, _, _ = clustered_mean_difference_ci(
            judge - human, paired.contrast[keep], clusters, **args
        )
        return {"gap_difference": gap, "gap_difference_ci_low": low, "gap_difference_ci_high": high}
    both = sum(1 for e in examples if _both_own(e, ctx))
    decided = human != 0.5
    figures: dict[str, Any] = {"n_both_own": both, "human_own_rate": float(human[decided].mean())}
    value, low, high = balanced_preference(
        human[decided], judge[decided], clusters[decided], **args
    )
    return figures | {
        "balanced_effect": value,
        "balanced_effect_ci_low": low,
        "balanced_effect_ci_high": high,
    }


def balanced_preference(
    human: np.ndarray,
    judge: np.ndarray,
    clusters: np.ndarray,
    *,
    resamples: int,
    confidence: float,
    seed: int,
) -> tuple[float, float, float]:
    """``(mean(judge | human = 1) + mean(judge | human = 0)) / 2 − 1/2`` with a percentile
    interval over resampled clusters (NaN when either group is empty)."""
    from judgekit.stats.bootstrap import _percentile_interval, _unit_counts

    own = human == 1.0

    def value(weights: np.ndarray) -> float:
        w_own, w_other = weights * own, weights * ~own
        if w_own.sum() == 0 or w_other.sum() == 0:
            return math.nan
        return float(((w_own @ judge) / w_own.sum() + (w_other @ judge) / w_other.sum()) / 2 - 0.5)

    if human.size == 0:
        return math.nan, math.nan, math.nan
    point = value(np.ones(human.size))
    units = np.unique(clusters, return_inverse=True)[1].ravel()
    n_units = int(units.max()) + 1
    if n_units < 2 or math.isnan(point):
        return point, math.nan, math.nan
    counts = _unit_counts(n_units, resamples, rng=np.random.default_rng(seed))
    (low, high), _ = _percentile_interval(np.array([value(c[units]) for c in counts]), confidence)
    return point, low, high


def _both_own(example: Example, ctx: Context) -> bool:
    family = _family(ctx)
    return all(family in s.lower() for s in systems_of(example, ctx))


register_test(
    AuditTest(
        "self_preference",
        description="the judge's preference for its own family's responses vs the humans'",
        compare=_compare,
        check=_check,
        summarise=_figures,
    )
)
