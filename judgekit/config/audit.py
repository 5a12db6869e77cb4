"""The ``audit`` config group: which bias tests ``judgekit audit`` runs, and how.

The judge, prompt, score and dataset come from the ordinary groups; this group holds the rest.
Which tests exist is decided by :mod:`judgekit.auditing.perturbations`'s registry (a project can
register its own), so the names in ``audit.tests`` are checked there, before any call; the shape
of every key is checked here, when the config is composed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from judgekit.config.scorepick import pick_score
from judgekit.errors import ConfigError

__all__ = ["AuditConfig", "BUILT_IN_TESTS", "audited_score"]

BUILT_IN_TESTS = ("position", "verbosity", "authority")
"""The tests run by default (``self_preference`` and ``commit_first`` are also built in; see
``judgekit.auditing.registry.TESTS``)."""


@dataclass
class AuditConfig:
    """``judgekit audit``: judge originals and counterfactual variants; report paired effects."""

    tests: list[str] = field(default_factory=lambda: list(BUILT_IN_TESTS))
    """The tests to run: ``position`` and ``self_preference`` (preference scores),
    ``verbosity``, ``authority``, or a test a module of ``audit.modules`` registers."""
    score: str | None = None
    """Which score the effects are computed on; null: the first score the dataset labels
    (else the first score)."""
    seed: int = 0
    """Seed of every perturbation (filler, citations, which response of a pair is changed)."""
    filler_lengths: list[int] = field(default_factory=lambda: [50, 200])
    """``verbosity``: words of content-free filler appended, one variant per length."""
    truncate_fraction: float = 0.5
    """``verbosity``: the share of the response's words the truncated variant keeps (0 skips
    the truncated variant)."""
    authority_styles: list[str] = field(default_factory=lambda: ["citation", "expert"])
    """``authority``: ``citation`` (a fake reference) and/or ``expert`` (an expert's claim)."""
    resamples: int = 2000
    """Bootstrap resamples of each effect's interval (whole ``dataset.fields.group`` clusters
    are resampled; each item is its own cluster without groups). The level is
    ``stats.confidence``."""
    judge_family: str | None = None
    """``self_preference``: the judge's model family, a name found in the systems' names (any
    case), e.g. ``gpt``; null: the first word of ``judge.model``'s name (``openai/gpt-4o`` →
    ``gpt``, ``local-qwen2.5-coder-1.5b`` → ``qwen``; ``local``, ``chat``, ``instruct`` and
    ``fake`` are skipped)."""
    system_fields: list[str] | None = None
    """``self_preference``: null reads each response's model from ``dataset.fields.system``
    (a range score: the model of ``item.response``; a preference score: both models, as a list
    ``[model_a, model_b]`` or a text ``"model_a vs model_b"``). Or the item fields naming them:
    one for a range score, two (response A's, response B's) for a preference score, mapped with
    ``dataset.fields.extra.system_a=COLUMN``."""
    modules: list[str] = field(default_factory=list)
    """Python modules imported before the tests are looked up: where a project registers its own
    tests (``judgekit.auditing.register_test``)."""
    out_dir: str | None = None
    """Where the table, plot, ``results.parquet`` and ``summary.json`` go; null:
    ``outputs/audit/<date>/<time>-<judge>-<prompt>-<id>``."""

    def __post_init__(self) -> None:
        if not self.tests or not all(isinstance(t, str) and t for t in self.tests):
            raise ConfigError(
                f"audit.tests: {list(self.tests)} is not valid; name one or more tests, "
                f"e.g. [{', '.join(BUILT_IN_TESTS)}]"
            )
        if len(set(self.tests)) != len(self.tests):
            raise ConfigError(f"audit.tests: {list(self.tests)} names a test twice")
        if self.seed < 0:
            raise ConfigError(f"audit.seed: {self.seed} is not valid; use 0 or more")
        lengths = list(self.filler_lengths)
        if not all(isinstance(n, int) and n >= 1 for n in lengths) or len(set(lengths)) < len(
            lengths
        ):
            raise ConfigError(
                f"audit.filler_lengths: {lengths} is not valid; give distinct word counts of 1 "
                "or more, e.g. [50, 200] (an empty list skips the padded variants)"
            )
        fraction = self.truncate_fraction
        if not isinstance(fraction, int | float) or math.isnan(fraction) or not 0 <= fraction < 1:
            raise ConfigError(
                f"audit.truncate_fraction: {fraction} is not valid; use a share in [0, 1) "
                "(0 skips the truncated variant)"
            )
        styles = {"citation", "expert"}
        bad = [s for s in self.authority_styles if s not in styles]
        if (
            bad
            or not self.authority_styles
            or len(set(self.authority_styles)) < len(self.authority_styles)
        ):
            raise ConfigError(
                f"audit.authority_styles: {list(self.authority_styles)} is not valid; use one "
                "or both of citation, expert"
            )
        fields = self.system_fields
        if fields is not None and (
            len(fields) not in (1, 2)
            or len(set(fields)) != len(fields)
            or not all(isinstance(f, str) and f for f in fields)
        ):
            raise ConfigError(
                f"audit.system_fields: {list(fields)} is not valid; name the item field holding "
                "the response's model (range scores) or the two holding the models of responses "
                "A and B (preference scores), e.g. [system_a, system_b]; null reads "
                "dataset.fields.system"
            )
        if self.resamples < 100:
            raise ConfigError(f"audit.resamples: {self.resamples} is not valid; use 100 or more")


def audited_score(audit: AuditConfig, score: Any, dataset: Any) -> Any:
    """The score ``audit.score`` names, else the first one the dataset labels, else the first."""
    return pick_score("audit.score", audit.score, score, dataset)
