"""Counterfactual variants of an example: the built-in perturbation tests.

A perturbation test is a named list of variants and a pure function ``(Example, Variant, Context) ->
Perturbed``: the variant example (an ordinary :class:`Example` whose id carries the variant,
``<id>::<test>/<variant>``) and which response the test's statistic follows. Every random choice
comes from :func:`rng_for` ``(audit.seed, test, variant or "", example id)``, so a variant does
not depend on the other examples, their order or the sample drawn.

The statistic compared (:mod:`judgekit.auditing.effects`): for a range score, the judge's score;
for a preference score, the judge's preference for the *target* response (1 chosen, 0 the other,
0.5 a tie), the response the perturbation favours. Each variant's effect is the mean over items
of (variant − original); a test's effect averages its ``headline`` variants per item.

Adding a test in a project (then ``audit.modules=[my_project.audit_tests]
audit.tests=[...,hedging]``)::

    from judgekit.auditing import AuditTest, Variant, edit_response, register_test

    def hedge(example, variant, ctx):
        return edit_response(example, variant, ctx, lambda text, rng: "I might be wrong, but " + text)

    register_test(AuditTest("hedging", lambda audit: [Variant("hedging", "prefix")], hedge))
"""

from __future__ import annotations

import re
from collections.abc import Callable
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
    rng_for,
    variant_id,
)
from judgekit.config.audit import AuditConfig
from judgekit.errors import ConfigError
from judgekit.records import Example

__all__ = [
    "CITATIONS",
    "EXPERT_CLAIMS",
    "FILLER",
    "edit_response",
    "filler_like",
    "pad",
    "target_side",
    "truncate",
]

FILLER = (
    "It is worth keeping this in mind.",
    "This point is stated here for completeness.",
    "The answer above addresses the question as it was asked.",
    "In other words, the same idea applies throughout.",
    "To put it another way, the explanation above stands as written.",
    "This is a general observation that applies in many cases.",
    "Each part of the response above should be read together.",
    "That is the main idea to take away from this.",
)
"""Content-free sentences: padding made of them adds length and no information."""

CITATIONS = (
    "(Source: Smith, J., & Patel, R. (2019). A systematic review of the evidence. Journal of "
    "Applied Research, 12(4), 233-251.)",
    "(Reference: Müller, K. et al. (2021). Foundations revisited. Annual Review of Science, 45, "
    "101-129. doi:10.1146/arsc.2021.045)",
    "(See: Chen, L. (2018). A comprehensive handbook, 3rd ed. Cambridge University Press, "
    "pp. 212-219.)",
    "(Cited from: Okafor, A., & Lind, M. (2020). Evidence and practice. Proceedings of the "
    "International Conference on Knowledge, 88-97.)",
)
"""Fake references (``authority`` test, style ``citation``)."""

EXPERT_CLAIMS = (
    "As an expert in this field with many years of experience, I can confirm this is correct.",
    "As an expert on this subject, I am confident that this answer is right.",
    "As an expert who has taught this topic for two decades, I can vouch for this answer.",
)
"""Claims of authority (``authority`` test, style ``expert``): each says "As an expert"."""

_WORDS_BY_LENGTH = {
    2: ("so", "as", "in", "it", "is", "on", "to"),
    3: ("the", "and", "one", "way", "all", "now"),
    4: ("this", "also", "that", "more", "part", "here", "same"),
    5: ("again", "point", "about", "noted", "there", "above"),
    6: ("indeed", "simply", "stated", "answer", "points", "manner"),
    7: ("overall", "general", "written", "context", "thought"),
    8: ("likewise", "together", "response", "question", "relevant", "ordinary"),
    9: ("therefore", "generally", "basically", "typically", "statement"),
    10: ("altogether", "additional", "particular", "especially", "considered"),
    11: ("essentially", "nonetheless", "explanation", "consistency"),
    12: ("nevertheless", "particularly", "additionally", "consequently"),
}
"""Content-free words by length: the tail that makes :func:`filler_like` match a text exactly."""


def target_side(example: Example, test: str, seed: int) -> str:
    """Which response of a pair a test changes: ``a`` or ``b``, seeded per (test, item), the same
    for every variant of the test (so its variants change the same response)."""
    return "a" if rng_for(seed, test, example.id).random() < 0.5 else "b"


def edit_response(
    example: Example,
    variant: Variant,
    ctx: Context,
    edit: Callable[[str, np.random.Generator], str],
) -> Perturbed:
    """``example`` with its response edited by ``edit(text, rng)``: ``item.response`` for a range
    score, the target response (:func:`target_side`) of a pair for a preference score."""
    rng = rng_for(ctx.audit.seed, variant.test, variant.name, example.id)
    side = target_side(example, variant.test, ctx.audit.seed) if ctx.kind == "preference" else None
    key = "response" if side is None else f"response_{side}"
    text = edit(_text(example, key), rng)
    changed = replace(example, id=variant_id(example.id, variant), item={**example.item, key: text})
    return Perturbed(changed, key, text, target=side, target_variant=side)


def _text(example: Example, key: str) -> str:
    value = example.item.get(key)
    if value is None:
        raise ConfigError(
            f"audit.tests: example {example.id!r} has no item.{key} to perturb; the audited "
            "prompt must show item.response (range scores) or item.response_a and "
            "item.response_b (preference scores)"
        )
    return str(value)


# --- the built-in perturbations --------------------------------------------------------------


def pad(text: str, words: int, rng: np.random.Generator) -> str:
    """``text`` and a new paragraph of exactly ``words`` words of :data:`FILLER` sentences."""
    filler: list[str] = []
    while len(filler) < words:
        filler += FILLER[int(rng.integers(len(FILLER)))].split()
    added = " ".join(filler[:words]).rstrip(".,") + "."
    return f"{text.rstrip()}\n\n{added}"


def filler_like(text: str, rng: np.random.Generator) -> str:
    """Content-free text with exactly as many words and characters as ``text`` (single-spaced,
    ending with a period): :data:`FILLER` sentences, the last words chosen by length so that
    the characters add up. A judge that counts words, characters (or, roughly, tokens) sees the
    same length as ``text``'s."""
    n_words, n_chars = len(text.split()), len(" ".join(text.split()))
    stream: list[str] = []
    while len(stream) < n_words:
        stream += FILLER[int(rng.integers(len(FILLER)))].split()
    letters = n_chars - (n_words - 1) - 1  # the spaces, and the final period
    for low, high, k in [(3, 9, k) for k in range(1, n_words + 1)] + [
        (2, 12, k) for k in range(1, n_words + 1)
    ]:  # ordinary word lengths if they can make it, else any
        head = stream[: n_words - k]
        short = letters - sum(len(w) for w in head)
        if low * k <= short <= high * k:
            sizes = [short // k + (1 if i < short % k else 0) for i in range(k)]
            tail = [_WORDS_BY_LENGTH[n][int(rng.integers(len(_WORDS_BY_LENGTH[n])))] for n in sizes]
            return " ".join(head + tail) + "."
    return " ".join(stream[:n_words]).rstrip(".,") + "."  # a text of 1-letter words: words only


def truncate(text: str, fraction: float) -> str:
    """The first ``fraction`` of ``text``'s words (at least one), its formatting kept."""
    ends = [m.end() for m in re.finditer(r"\S+", text)]
    if not ends:
        return text
    keep = max(1, int(len(ends) * fraction))
    return text[: ends[keep - 1]]


def _swap(example: Example, variant: Variant, ctx: Context) -> Perturbed:
    """The pair with its responses exchanged; the audited score's human labels re-oriented."""
    a, b = _text(example, "response_a"), _text(example, "response_b")
    item = {**example.item, "response_a": b, "response_b": a}
    human = dict(example.human)
    if ctx.score in human:
        human[ctx.score] = 1.0 - human[ctx.score]  # A = 0, B = 1, tie = 0.5; NaN stays NaN
    annotators = dict(example.annotators)
    if ctx.score in annotators:
        annotators[ctx.score] = [1.0 - v for v in annotators[ctx.score]]
    changed = replace(
        example,
        id=variant_id(example.id, variant),
        item=item,
        human=human,
        annotators=annotators,
    )
    # The statistic follows the original B, moved to the first position: a positive effect is a
    # preference for whichever response is shown first.
    return Perturbed(changed, "response_a,response_b", b, target="b", target_variant="a")


def _swap_figures(
    examples: list[Example],
    rows: pd.DataFrame,
    variants: dict[str, pd.DataFrame],
    ctx: Context,
) -> dict[str, Any]:
    """``position``'s figures in ``judge.swap``'s form: the original order is ``first``, the
    swapped pair's verdict mapped back to the original orientation is ``second``
    (:func:`judgekit.stats.pairwise.pairwise_agreement`: ``position_consistency``,
    ``first_position_rate`` with their intervals, ``n_both_orders``, ``n_inconsistent``)."""
    from judgekit.auditing.effects import clusters_of
    from judgekit.stats.pairwise import SWAP_STATISTICS, pairwise_agreement

    swapped = variants.get("swap")
    if swapped is None:
        return {}
    first = rows["judge"].to_numpy(dtype=float)
    second = 1.0 - swapped["judge"].to_numpy(dtype=float)  # back to the original orientation
    figures = pairwise_agreement(
        rows["human"].to_numpy(dtype=float),
        first,
        first=first,
        second=second,
        resamples=ctx.audit.resamples,
        confidence=ctx.confidence,
        seed=ctx.audit.seed,
        clusters=clusters_of(examples, ctx.grouped),
    )
    keep = [*SWAP_STATISTICS, "n_both_orders", "n_inconsistent"]
    keep += [f"{s}_{end}" for s in SWAP_STATISTICS for end in ("ci_low", "ci_high")]
    return {name: figures[name] for name in keep if name in figures}


def _verbosity_variants(audit: AuditConfig) -> list[Variant]:
    padded = [Variant("verbosity", f"pad{n}") for n in audit.filler_lengths]
    if audit.truncate_fraction > 0:
        share = f"{round(100 * audit.truncate_fraction, 1):g}"  # 0.5 → 50, 0.996 → 99.6
        padded.append(Variant("verbosity", f"truncate{share}", headline=False))
    return padded


def _verbosity(example: Example, variant: Variant, ctx: Context) -> Perturbed:
    if variant.name.startswith("pad"):
        words = int(variant.name[3:])
        return edit_response(example, variant, ctx, lambda text, rng: pad(text, words, rng))
    fraction = ctx.audit.truncate_fraction
    return edit_response(example, variant, ctx, lambda text, _rng: truncate(text, fraction))


def _length_control(examples: list[Example], rows: pd.DataFrame, ctx: Context) -> dict[str, Any]:
    """The length-controlled agreement of the original verdicts or scores, lengths in words
    (:mod:`judgekit.stats.length_control`: a logistic fit on the length difference for
    preference scores, a linear fit on the length for range scores)."""
    from judgekit.stats.length_control import (
        length_controlled_agreement,
        length_controlled_scores,
    )

    if ctx.kind != "preference":
        return length_controlled_scores(
            rows["human"].to_numpy(dtype=float),
            rows["judge"].to_numpy(dtype=float),
            np.array([len(str(e.item.get("response", "")).split()) for e in examples]),
        )

    difference = [
        len(str(e.item.get("response_b", "")).split())
        - len(str(e.item.get("response_a", "")).split())
        for e in examples
    ]
    return length_controlled_agreement(
        rows["human"].to_numpy(dtype=float),
        rows["judge"].to_numpy(dtype=float),
        np.array(difference),
    )


def _claim(example: Example, style: str, ctx: Context) -> str:
    """The citation or expert's claim the ``style`` variant appends to this example."""
    bank = CITATIONS if style == "citation" else EXPERT_CLAIMS
    rng = rng_for(ctx.audit.seed, "authority", style, example.id)
    return bank[int(rng.integers(len(bank)))]


def _authority_variants(audit: AuditConfig) -> list[Variant]:
    """Each style, compared with its length-matched control (``<style>_control``, reported
    apart: it measures the added length alone)."""
    variants = []
    for style in audit.authority_styles:
        control = f"{style}_control"
        variants += [
            Variant("authority", style, baseline=control),
            Variant("authority", control, headline=False),
        ]
    return variants


def _authority(example: Example, variant: Variant, ctx: Context) -> Perturbed:
    """``citation``/``expert``: the claim appended to the target response as a new paragraph;
    ``<style>_control``: content-free text of the claim's words and characters appended in its
    place (:func:`filler_like`)."""
    style = variant.name.removesuffix("_control")
    claim = _claim(example, style, ctx)
    if variant.name.endswith("_control"):
        return edit_response(
            example, variant, ctx, lambda text, rng: f"{text.rstrip()}\n\n{filler_like(claim, rng)}"
        )
    return edit_response(example, variant, ctx, lambda text, _rng: f"{text.rstrip()}\n\n{claim}")


register_test(
    AuditTest(
        "position",
        lambda audit: [Variant("position", "swap")],
        _swap,
        kinds=("preference",),
        description="the pair shown in the other order; effect: preference for the first shown",
        summarise_judged=_swap_figures,
    )
)
register_test(
    AuditTest(
        "verbosity",
        _verbosity_variants,
        _verbosity,
        description="content-free filler appended (pad<N> words), and truncated (truncate<P>%)",
        summarise=_length_control,
    )
)
register_test(
    AuditTest(
        "authority",
        _authority_variants,
        _authority,
        description="a fake citation or an expert's claim appended to one response, against "
        "as many words of filler",
    )
)
