"""The nouns of an audit test and the registry of tests.

A test is either a perturbation (``variants`` and ``perturb``: counterfactual examples judged
like any other, see :mod:`judgekit.auditing.perturbations`) or a comparison on the judged
originals (``compare``: e.g. ``self_preference``, the judge against the humans on pairs where
one response is by the judge's family). Both end as two numbers per item, a baseline and an
observed value, whose paired difference :mod:`judgekit.auditing.effects` summarises.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from judgekit.config.audit import BUILT_IN_TESTS, AuditConfig
from judgekit.config.schema import PromptConfig
from judgekit.errors import ConfigError
from judgekit.records import Example

__all__ = [
    "TESTS",
    "AuditTest",
    "Context",
    "Paired",
    "Perturbed",
    "Variant",
    "register_test",
    "resolve_tests",
    "rng_for",
    "variant_id",
]


@dataclass(frozen=True)
class Variant:
    """One counterfactual of a test (a child run): ``pad50``, ``truncate50``, ``citation``..."""

    test: str
    name: str
    headline: bool = True
    """Whether it enters the test's effect (a truncation removes content: reported apart)."""
    baseline: str = ""
    """The variant of the same test it is compared with; ``""``: the original. ``authority``'s
    ``citation`` is compared with ``citation_control``, the same number of content-free words
    appended, so that a judge rewarding length alone shows no authority effect."""


@dataclass(frozen=True)
class Context:
    """What a perturbation may depend on besides the example."""

    kind: str
    """``pointwise`` (a range score: the response is ``item.response``) or ``preference``
    (``item.response_a``/``item.response_b``)."""
    audit: AuditConfig
    score: str
    """The audited score (human labels of a preference score are re-oriented by ``position``)."""
    prompt: PromptConfig | None = None
    """The run's prompt (``commit_first`` checks and transforms it)."""
    confidence: float = 0.95
    """The intervals' level (``stats.confidence``)."""
    judge_model: str = ""
    """``judge.model`` (``self_preference`` infers the judge's family from it)."""
    spec: Any = None
    """The audited score's :class:`~judgekit.config.schema.ScoreSpec` (its scale)."""
    grouped: bool = False
    """Whether ``dataset.fields.group`` is set: the bootstrap resamples its groups (else items)."""


@dataclass
class Perturbed:
    """A variant example and what the statistic follows in it."""

    example: Example
    changed_field: str
    """The item field changed (``response``, ``response_a``, ``response_a,response_b``)."""
    text: str
    """The changed field's new text (the first of two for a swap)."""
    target: str | None = None
    """Preference scores: the side (``a``/``b``) of the target response in the original."""
    target_variant: str | None = None
    """... and in the variant (differs from ``target`` when the pair is swapped)."""
    extra: dict[str, Any] = field(default_factory=dict)


Perturb = Callable[[Example, Variant, Context], Perturbed]


@dataclass
class Paired:
    """A comparison test's two numbers per example (NaN: undefined, counted as failed)."""

    baseline: np.ndarray
    observed: np.ndarray
    applies: np.ndarray
    """Whether each example enters the test at all (others are neither used nor failed)."""
    contrast: np.ndarray | None = None
    """None: the effect is the mean of (observed - baseline) over the examples that apply.
    A bool per example: the difference of that mean between the examples marked and the others
    (``self_preference`` of a range score: own family's responses vs the rest)."""


Compare = Callable[[list[Example], pd.DataFrame, Context], Paired]
"""``(examples, the originals' results rows of the audited score in example order, ctx)``."""
Check = Callable[[list[Example], Context], None]
Summarise = Callable[[list[Example], pd.DataFrame, Context], dict[str, Any]]
"""Further figures of a test on the judged originals (``verbosity``: length-controlled
agreement): ``{name: number}`` logged as ``audit/<test>/<name>``, and a text ``reason``."""
SummariseJudged = Callable[
    [list[Example], pd.DataFrame, dict[str, pd.DataFrame], Context], dict[str, Any]
]
"""Further figures from the originals' and the variants' results rows (``position``: the
judge.swap figures): ``(examples, originals' rows, {variant name: its rows}, ctx)``, every rows
frame of the audited score in example order."""
Configure = Callable[[Any, Context], Any]
"""``(the run's Config, ctx) -> the Config the test's variants are judged with`` (a prompt
transformation: ``commit_first``)."""


@dataclass(frozen=True)
class AuditTest:
    """A named test: its variants and perturbation (or a comparison), the score kinds it takes."""

    name: str
    variants: Callable[[AuditConfig], list[Variant]] = lambda audit: []
    perturb: Perturb | None = None
    kinds: tuple[str, ...] = ("pointwise", "preference")
    description: str = ""
    compare: Compare | None = None
    """A comparison on the originals instead of variants."""
    check: Check | None = None
    """Setup checks on the loaded examples (before any call): raise a ConfigError."""
    configure: Configure | None = None
    """The config its variants are judged with; None: the run's own."""
    summarise: Summarise | None = None
    """Further figures on the originals (see :data:`Summarise`)."""
    summarise_judged: SummariseJudged | None = None
    """Further figures on the originals and the variants (see :data:`SummariseJudged`)."""


TESTS: dict[str, AuditTest] = {}
"""Every registered test by name (:func:`register_test`)."""


def register_test(test: AuditTest) -> AuditTest:
    """Add ``test`` to :data:`TESTS` (a name registered twice is refused)."""
    if test.name in TESTS and TESTS[test.name] is not test:
        raise ConfigError(f"audit test {test.name!r} is registered twice")
    TESTS[test.name] = test
    return test


def resolve_tests(names: list[str], kind: str) -> list[AuditTest]:
    """The registered tests ``names`` (``audit.tests``), each checked against the score kind;
    the default list keeps those the score kind takes (a range score: no ``position``)."""
    unknown = [n for n in names if n not in TESTS]
    if unknown:
        raise ConfigError(
            f"audit.tests: {unknown[0]!r} is not a registered test; registered: "
            f"{', '.join(TESTS)} (a project adds its own with audit.modules)"
        )
    tests = [TESTS[n] for n in names]
    if tuple(names) == BUILT_IN_TESTS:  # the default list: the tests this score can take
        return [t for t in tests if kind in t.kinds]
    for test in tests:
        if kind not in test.kinds:
            raise ConfigError(
                f"audit.tests: {test.name!r} needs a {' or '.join(test.kinds)} score; "
                f"the audited score is {kind} (see audit.score)"
            )
    return tests


def rng_for(seed: int, *keys: str) -> np.random.Generator:
    """A generator that depends only on ``seed`` and ``keys`` (sha256: stable across runs)."""
    digest = hashlib.sha256(json.dumps([seed, *keys]).encode()).digest()
    return np.random.default_rng([seed, int.from_bytes(digest[:8], "little")])


def variant_id(example_id: str, variant: Variant) -> str:
    return f"{example_id}::{variant.test}/{variant.name}"
