"""The ``commit_first`` test: the same items judged with a prompt in which the judge first writes
its own answer to the user's prompt, then scores the response; compared with the original prompt.

It is a prompt transformation any prompt version can get: the instruction
(:data:`INSTRUCTION`) is appended to the prompt's last user message, the prompt is named
``<prompt>+commit_first``, and, as the judge now writes prose before its JSON, the variant is
judged with ``judge.structured_output=false`` and ``judge.max_tokens`` of at least
:data:`MIN_TOKENS`. For reference-free range scores only (a prompt showing a reference answer
already gives the judge one). The effect is the mean change of the score; beside it, the
agreement with the humans of both prompts is compared on the same items (a paired bootstrap,
:func:`judgekit.stats.bootstrap.paired_comparison`): ``audit/commit_first/<statistic>_original``,
``<statistic>_commit_first``, ``<statistic>_change`` with ``_ci_low``, ``_ci_high`` and
``_p_value``, for ``qwk``, ``spearman`` and ``mae``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from judgekit.auditing.registry import (
    AuditTest,
    Context,
    Perturbed,
    Variant,
    register_test,
    variant_id,
)
from judgekit.config.schema import Config, Message, Role
from judgekit.errors import ConfigError
from judgekit.prompts.fields import template_fields
from judgekit.records import Example

__all__ = ["AGREEMENT", "INSTRUCTION", "MIN_TOKENS", "commit_first_config"]

INSTRUCTION = (
    "Before you rate, first write your own answer to the user's prompt, under the heading "
    '"My answer:". Then compare the response with your answer, and give your rating last, in '
    "exactly the JSON form asked for."
)
MIN_TOKENS = 1024
"""Room for the judge's own answer before its rating."""


def commit_first_config(cfg: Config, ctx: Context) -> Config:
    """``cfg`` with the instruction appended to the last user message (see the module)."""
    messages = list(cfg.prompt.messages)
    last = max(i for i, m in enumerate(messages) if m.role == Role.user)
    content = f"{messages[last].content.rstrip()}\n\n{INSTRUCTION}"
    messages[last] = Message(role=Role.user, content=content)
    prompt = replace(cfg.prompt, name=f"{cfg.prompt.name}+commit_first", messages=messages)
    judge = replace(
        cfg.judge, structured_output="false", max_tokens=max(cfg.judge.max_tokens, MIN_TOKENS)
    )
    return replace(cfg, prompt=prompt, judge=judge)


def _check(examples: list[Example], ctx: Context) -> None:
    del examples
    prompt = ctx.prompt
    if prompt is None:
        return
    if not any(m.role == Role.user for m in prompt.messages):
        raise ConfigError(
            f"audit.tests: commit_first appends its instruction to the last user message; "
            f"prompt {prompt.name!r} has none"
        )
    shown = template_fields(prompt.name, tuple(m.content for m in prompt.messages))
    references = sorted(f for f in shown if "reference" in f.lower() or "gold" in f.lower())
    if references:
        raise ConfigError(
            f"audit.tests: commit_first is for reference-free prompts; prompt {prompt.name!r} "
            f"shows item.{references[0]}"
        )


AGREEMENT = ("qwk", "spearman", "mae")
"""The agreement statistics compared between the original prompt and the commit-first one."""


def _agreement_change(
    examples: list[Example],
    rows: pd.DataFrame,
    variants: dict[str, pd.DataFrame],
    ctx: Context,
) -> dict[str, Any]:
    """The agreement of both prompts with the humans on the same items (see the module)."""
    from judgekit.auditing.effects import clusters_of
    from judgekit.stats.bootstrap import paired_comparison

    judged = variants.get("own_answer_first")
    human = rows["human"].to_numpy(dtype=float)
    if judged is None or ctx.spec is None or not np.isfinite(human).any():
        return {}
    compared = paired_comparison(
        human,
        rows["judge"].to_numpy(dtype=float),
        judged["judge"].to_numpy(dtype=float),
        minimum=ctx.spec.minimum,
        maximum=ctx.spec.maximum,
        integer=ctx.spec.integer,
        resamples=ctx.audit.resamples,
        confidence=ctx.confidence,
        seed=ctx.audit.seed,
        clusters=clusters_of(examples, ctx.grouped),
        statistics=AGREEMENT,
    )
    figures: dict[str, Any] = {}
    for row in compared:
        name = row["statistic"]
        figures |= {
            f"{name}_original": row["a"],
            f"{name}_commit_first": row["b"],
            f"{name}_change": row["difference"],
            f"{name}_change_ci_low": row["ci_low"],
            f"{name}_change_ci_high": row["ci_high"],
            f"{name}_change_p_value": row["p_value"],
        }
    figures["n_common"] = compared[0]["n_common"] if compared else 0
    return figures


def _same_items(example: Example, variant: Variant, ctx: Context) -> Perturbed:
    """The example unchanged (its id carries the variant): the prompt is what changes."""
    del ctx
    return Perturbed(replace(example, id=variant_id(example.id, variant)), "prompt", INSTRUCTION)


register_test(
    AuditTest(
        "commit_first",
        lambda audit: [Variant("commit_first", "own_answer_first")],
        _same_items,
        kinds=("pointwise",),
        description="the judge writes its own answer first, then scores (a prompt variant)",
        check=_check,
        configure=commit_first_config,
        summarise_judged=_agreement_change,
    )
)
