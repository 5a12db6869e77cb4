"""Judge a candidate prompt on rows of the train or dev split, within the call budget.

A candidate is judged by judgekit's own steps (render, the retrying client, the response cache,
the runner, the parser, the agreement report), so a candidate is scored exactly as a run of it
would be. Before any call, the requests the cache cannot answer are counted: when they do not
fit in what is left of ``optimize.budget_calls``, :class:`BudgetExhausted` is raised and nothing
is sent. The evaluator refuses rows outside the splits it was given (the held-out test split).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from judgekit.config.optimize import MINIMISED
from judgekit.config.schema import Config, JudgeConfig, PromptConfig, ScoreSpec
from judgekit.data.loading import Example
from judgekit.design import build_requests, per_example, render_all, swaps
from judgekit.errors import JudgekitError
from judgekit.judge.client import JudgeClient
from judgekit.records import JudgeResponse

__all__ = [
    "Budget",
    "misses",
    "search_objective",
    "BudgetExhausted",
    "Evaluation",
    "Evaluator",
    "request_key_for",
]


class BudgetExhausted(JudgekitError):
    """The next step of the search needs more calls than ``optimize.budget_calls`` leaves."""

    exit_code = 1


@dataclass
class Budget:
    """What the search may still spend: each distinct request (judge or reflection) costs one
    call the first time the search judges it, whether the cache answers it or not.

    So a request the search judges again is free, and a rerun of the same optimisation retraces
    the same search to the same stopping point, its answers all in the cache: it sends nothing.
    The calls really sent (``judge_calls``, ``reflection_calls``) are never more than ``spent``.
    """

    limit: int
    judge_calls: int = 0
    reflection_calls: int = 0
    seen: set[str] = field(default_factory=set)
    """Keys of the requests the search has judged."""

    @property
    def spent(self) -> int:
        return len(self.seen)

    def new(self, keys: Iterable[str]) -> list[str]:
        """The keys among ``keys`` the search has not judged yet (each once)."""
        return list(dict.fromkeys(k for k in keys if k not in self.seen))

    @property
    def left(self) -> int:
        return self.limit - self.spent

    @property
    def sent(self) -> int:
        return self.judge_calls + self.reflection_calls

    def charge(self, keys: list[str], misses: int, what: str) -> None:
        """Charge a step's requests, or raise :class:`BudgetExhausted` (nothing charged) when
        they do not fit: both the requests new to the search, and the calls the step would
        really send (``misses``: requests the cache cannot answer, e.g. an earlier failure, which
        is not cached and is called again)."""
        new = self.new(keys)
        if len(new) > self.left or self.sent + misses > self.limit:
            raise BudgetExhausted(
                f"optimize.budget_calls: {what} needs {len(new)} new requests "
                f"({misses} not in the cache), {self.left} of {self.limit} left"
            )
        self.seen.update(new)


class Counted:
    """A client below the response cache that counts the calls really sent; a guard too: a call
    past the budget raises :class:`BudgetExhausted` instead of being sent (never reached when
    each step is charged first)."""

    def __init__(self, inner: JudgeClient, budget: Budget, kind: str) -> None:
        self.inner, self.budget, self.kind = inner, budget, kind

    def request_params(self, messages: list[dict[str, str]]) -> dict[str, Any]:
        return self.inner.request_params(messages)

    async def complete(self, messages: list[dict[str, str]]) -> JudgeResponse:
        if self.budget.sent >= self.budget.limit:
            raise BudgetExhausted(f"optimize.budget_calls: {self.budget.limit} calls sent")
        if self.kind == "reflection":
            self.budget.reflection_calls += 1
        else:
            self.budget.judge_calls += 1
        return await self.inner.complete(messages)

    async def aclose(self) -> None:
        await self.inner.aclose()


@dataclass
class Evaluation:
    """A candidate judged on some rows: the objective on them, and each row's outcome."""

    value: float
    """The objective on these rows (NaN when undefined, e.g. a constant judge)."""
    rows: pd.DataFrame
    """The results table of the optimised score (``results.parquet``'s columns)."""
    answers: dict[str, str] = field(default_factory=dict)
    """The judge's text by example id (its first order with ``judge.swap``)."""


def request_key_for(judge: JudgeConfig, client: Any, messages: list[dict[str, Any]]) -> str:
    """The response cache's key of one request (a local judge's changing port left out, as the
    cache does)."""
    from judgekit.judge.cache import request_key

    params = client.request_params(messages)
    if judge.local is not None:
        params = {**params, "api_base": "judgekit-local"}
    return request_key(params)


def misses(cache: Any, keys: list[str]) -> int:
    """How many of ``keys`` the response cache cannot answer (every one without a cache)."""
    if cache is None:
        return len(set(keys))
    return sum(cache.get(k, count_miss=False) is None for k in dict.fromkeys(keys))


def search_objective(rows: pd.DataFrame, spec: ScoreSpec, objective: str) -> float:
    """The objective on ``rows`` with every failed row counted as the judge's worst answer
    (the other verdict of a pair; the far end of the scale from the human label), so a prompt
    that makes the judge fail on hard rows is not scored on the easy ones only. Used to choose
    between candidates; the figures reported on the test split are judgekit's usual ones."""
    human = rows["human"].to_numpy(dtype=float)
    judge = rows["judge"].to_numpy(dtype=float).copy()
    failed = ~np.isfinite(judge) & np.isfinite(human)
    low, high = _bounds(spec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if spec.kind == "preference":
            from judgekit.stats.pairwise import pairwise_agreement

            judge[failed] = np.where(human[failed] == 0.0, 1.0, 0.0)  # A <-> B, tie -> A
            stats = pairwise_agreement(human, judge, resamples=0)
        else:
            from judgekit.stats.pointwise import agreement

            h = human[failed]
            judge[failed] = np.where(h - low >= high - h, low, high)
            stats = agreement(
                human, judge, minimum=low, maximum=high, integer=spec.is_integer_scale
            )
    value = stats.get(objective)
    return math.nan if value is None else float(value)


def _bounds(spec: ScoreSpec) -> tuple[float, float]:
    if spec.minimum is not None and spec.maximum is not None:
        return float(spec.minimum), float(spec.maximum)
    values = [float(r.value) for r in spec.labels.values()] or [0.0, 1.0]
    return min(values), max(values)


class Evaluator:
    """Judges candidate prompts on allowed rows with one cache, one client kind, one budget."""

    def __init__(
        self,
        cfg: Config,
        judge: JudgeConfig,
        *,
        cache: Any,
        api_key: str | None,
        budget: Budget,
        spec: ScoreSpec,
        objective: str,
        allowed: Iterable[Example],
    ) -> None:
        search = replace(cfg.runner, progress="false", limit_samples=None)
        self.cfg = replace(cfg, judge=judge, runner=search)
        self.cfg = replace(self.cfg, stats=replace(cfg.stats, bootstrap_resamples=0))
        self.cache, self.api_key, self.budget = cache, api_key, budget
        self.spec, self.objective = spec, objective
        self.allowed = {e.id for e in allowed}

    def signed(self, value: float) -> float:
        """Higher is better: minimised objectives negated; undefined is the worst value."""
        if math.isnan(value):
            span = float((self.spec.maximum or 1) - (self.spec.minimum or 0))
            return -span if self.objective in MINIMISED else -1.0
        return -value if self.objective in MINIMISED else value

    def keys(self, cfg: Config, examples: list[Example], client: JudgeClient) -> list[str]:
        """The cache keys of ``cfg.prompt``'s requests on ``examples``, as ``client`` sends them."""
        requests = build_requests(examples, cfg.prompt, cfg.score, swap=swaps(cfg))
        return [request_key_for(cfg.judge, client, r.messages) for r in requests]

    def evaluate(self, prompt: PromptConfig, examples: list[Example], what: str) -> Evaluation:
        """Judge ``prompt`` on ``examples`` (render errors and the budget checked first)."""
        from judgekit.judge.caching import cached
        from judgekit.pipeline import PreparedRun, client_for, judge_and_score

        outside = [e.id for e in examples if e.id not in self.allowed]
        if outside:  # the held-out discipline, enforced where the calls are made
            raise AssertionError(f"the search asked to judge held-out rows: {outside[:3]}")
        cfg = replace(self.cfg, prompt=prompt)
        render_all(examples, prompt, cfg.score, swap=swaps(cfg))
        prepared = PreparedRun(cfg, examples, self.api_key)
        inner = client_for(prepared, cfg.judge)
        keys = self.keys(cfg, examples, inner)
        self.budget.charge(keys, misses(self.cache, keys), what)
        client = cached(Counted(inner, self.budget, "judge"), self.cache, cfg)
        with warnings.catch_warnings():  # an undefined objective is NaN, scored as the worst
            warnings.simplefilter("ignore")
            result, responses = judge_and_score(prepared, client)
        rows = result.results[result.results["score"] == self.spec.name].reset_index(drop=True)
        value = search_objective(rows, self.spec, self.objective)
        step = per_example(swaps(cfg))
        answers = {
            e.id: (responses.get(i * step) or JudgeResponse(None)).text or ""
            for i, e in enumerate(examples)
        }
        return Evaluation(value, rows, answers)
