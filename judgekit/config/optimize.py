"""The ``optimize`` config group: how ``judgekit optimize`` searches for a better judge prompt.

The judge, the seed prompt version, the score and the dataset come from the ordinary groups; this
group holds the rest. (It imports nothing of :mod:`judgekit.config.schema`, which imports it: the
score and dataset arguments below are that module's ``ScoreSchemaConfig`` and ``DatasetConfig``.) Checks that need the score (which objectives a preference score has) run
in :class:`judgekit.config.schema.Config`'s ``__post_init__`` through :func:`check_objective`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from judgekit.config.scorepick import pick_score
from judgekit.errors import ConfigError

__all__ = [
    "MINIMISED",
    "POINTWISE_OBJECTIVES",
    "PREFERENCE_OBJECTIVES",
    "OptimizeConfig",
    "OptimizeMethod",
    "check_objective",
    "default_objective",
    "optimised_score",
]

POINTWISE_OBJECTIVES = (
    *("qwk", "spearman", "kendall", "pearson", "krippendorff_alpha_ordinal"),
    *("krippendorff_alpha_interval", "exact_agreement", "within1_agreement", "mae", "rmse"),
)
"""Objectives of a range score: every agreement statistic judgekit computes for it."""
PREFERENCE_OBJECTIVES = ("kappa", "accuracy", "accuracy_with_ties")
"""Objectives of a preference score."""
MINIMISED = frozenset({"mae", "rmse"})
"""Objectives where lower is better."""


class OptimizeMethod(StrEnum):
    """``optimize.method``: what the search changes."""

    gepa = "gepa"
    fewshot = "fewshot"
    both = "both"


@dataclass
class OptimizeConfig:
    """``judgekit optimize``: search a better prompt on train/dev, prove it on held-out test."""

    objective: str | None = None
    """The agreement statistic optimised, computed on a whole split: ``qwk`` (default for range
    scores), ``kappa`` (default for preference scores), ``spearman``, ``accuracy``, ...;
    ``mae``/``rmse`` are minimised."""
    score: str | None = None
    """Which score to optimise; null: the first score the dataset has human labels for."""
    split: list[float] = field(default_factory=lambda: [0.5, 0.25, 0.25])
    """Train / dev / test fractions: seeded, stratified by the human label, and clustered by
    ``dataset.fields.group`` (rows sharing a prompt stay in one split)."""
    method: OptimizeMethod = OptimizeMethod.gepa
    """``gepa`` (reflective instruction evolution), ``fewshot`` (demonstrations chosen from the
    train split) or ``both`` (instructions, then demonstrations)."""
    reflection_model: str | None = None
    """The model that proposes new instructions (``gepa``/``both``): a judge option name (e.g.
    ``local_1_5b``) or a litellm model string (e.g. ``openai/gpt-4o-mini``); null: the judge."""
    reflection_api_base: str | None = None
    """Endpoint of a litellm ``reflection_model`` (a judge option brings its own)."""
    reflection_api_key_env: str | None = None
    """Environment variable holding the reflection model's key (the name only is stored)."""
    budget_calls: int = 200
    """The most calls the search may send (judge and reflection calls; cache hits are free).
    The held-out test, judged after the search, is not part of it."""
    seed: int = 0
    """Seed of the split, of the search, and of every sampled choice."""
    max_demos: int = 4
    """``fewshot``: the most demonstrations in one prompt."""
    minibatch_size: int = 8
    """``gepa``: train rows judged per reflection step."""
    out_dir: str | None = None
    """Where candidates (when no ``--config-dir`` is given), the test runs and the summary go;
    null: ``outputs/optimize/<date>/<time>-<prompt>-<id>``."""

    def __post_init__(self) -> None:
        try:
            self.method = OptimizeMethod(self.method)
        except ValueError:
            valid = ", ".join(m.value for m in OptimizeMethod)
            raise ConfigError(
                f"optimize.method: {self.method!r} is not valid; use {valid}"
            ) from None
        _check_split(list(self.split))
        if self.seed < 0:
            raise ConfigError(f"optimize.seed: {self.seed} is not valid; use 0 or more")
        for key in ("budget_calls", "max_demos", "minibatch_size"):
            if getattr(self, key) < 1:
                raise ConfigError(
                    f"optimize.{key}: {getattr(self, key)} is not valid; use 1 or more"
                )
        known = (*POINTWISE_OBJECTIVES, *PREFERENCE_OBJECTIVES)
        if self.objective is not None and self.objective not in known:
            raise ConfigError(
                f"optimize.objective: {self.objective!r} is not an agreement statistic; use one of "
                f"{', '.join(POINTWISE_OBJECTIVES)} (range scores) or "
                f"{', '.join(PREFERENCE_OBJECTIVES)} (preference scores)"
            )


def _check_split(split: list[Any]) -> None:
    valid = "give three fractions (train, dev, test), each above 0, that sum to 1"
    if len(split) != 3 or not all(isinstance(x, int | float) for x in split):
        raise ConfigError(f"optimize.split: {split} is not valid; {valid}, e.g. [0.5, 0.25, 0.25]")
    if min(split) <= 0 or not math.isclose(sum(split), 1.0, abs_tol=1e-6):
        raise ConfigError(f"optimize.split: {split} is not valid; {valid}")


def optimised_score(opt: OptimizeConfig, score: Any, dataset: Any) -> Any:
    """The score ``optimize.score`` names, else the first one the dataset labels."""
    return pick_score("optimize.score", opt.score, score, dataset)


def default_objective(spec: Any) -> str:
    """``kappa`` for a preference score, ``qwk`` for a range score."""
    return "kappa" if spec.kind == "preference" else "qwk"


def check_objective(opt: OptimizeConfig, score: Any, dataset: Any) -> None:
    """The objective must be a statistic of the optimised score's kind (checked at compose)."""
    spec = optimised_score(opt, score, dataset)
    if opt.objective is None:
        return
    valid = PREFERENCE_OBJECTIVES if spec.kind == "preference" else POINTWISE_OBJECTIVES
    if opt.objective not in valid:
        raise ConfigError(
            f"optimize.objective: {opt.objective!r} is not a statistic of {spec.kind} score "
            f"{spec.name!r}; use one of {', '.join(valid)}"
        )
