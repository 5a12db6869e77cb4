"""The reflection model of ``gepa``: one chat call per proposal, through the response cache.

Its calls count against ``optimize.budget_calls`` like the judge's, and are cached like them, so
a rerun of the same optimisation proposes the same instructions without calling again.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from judgekit.config.schema import Config, JudgeConfig
from judgekit.errors import RunError
from judgekit.optimizer.evaluate import Budget, Counted, misses, request_key_for

__all__ = ["Reflector", "litellm_reflection_judge"]


def litellm_reflection_judge(
    model: str, api_base: str | None, api_key_env: str | None
) -> JudgeConfig:
    """A reflection model given as a litellm model string: plain text answers, room to write."""
    return JudgeConfig(
        name="reflection",
        model=model,
        api_base=api_base,
        api_key_env=api_key_env,
        max_tokens=1024,
        structured_output="false",
    )


class Reflector:
    """``gepa``'s ``reflection_lm``: a prompt (text or chat messages) in, the model's text out."""

    def __init__(
        self, cfg: Config, judge: JudgeConfig, *, cache: Any, api_key: str | None, budget: Budget
    ) -> None:
        self.cfg = replace(cfg, judge=replace(judge, max_tokens=max(judge.max_tokens, 1024)))
        self.cache, self.api_key, self.budget = cache, api_key, budget

    def __call__(self, prompt: str | list[dict[str, Any]]) -> str:
        from judgekit.judge.caching import cached
        from judgekit.judge.client import LiteLLMClient
        from judgekit.runner import run_async

        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
        inner = LiteLLMClient(self.cfg.judge, api_key=self.api_key, seed=self.cfg.optimize.seed)
        client = cached(Counted(inner, self.budget, "reflection"), self.cache, self.cfg)
        keys = [request_key_for(self.cfg.judge, inner, messages)]
        self.budget.charge(keys, misses(self.cache, keys), "a reflection step")
        response = run_async(_one(client, messages))
        if response.failure is not None or not response.text:
            raise RunError(
                f"optimize.reflection_model: {self.cfg.judge.model} gave no answer "
                f"({response.failure or 'empty'}: {response.detail})"
            )
        return response.text


async def _one(client: Any, messages: list[dict[str, Any]]) -> Any:
    try:
        return await client.complete(messages)
    finally:
        await client.aclose()
