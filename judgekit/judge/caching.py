"""The response cache around a run's client: opened before the first call, and the client wrapped
so answers already paid for come from it (resume after a crash, no paid call twice)."""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

from judgekit.config.schema import Config
from judgekit.judge.client import JudgeClient

__all__ = ["cache_mode", "call_budget_s", "cached", "open_cache"]


def open_cache(stack: ExitStack, cfg: Config) -> Any:
    """The response cache, opened now so an unusable ``cache.dir`` fails before any call;
    ``read_only`` opens the file read-only (it may sit in a read-only folder)."""
    if cfg.cache.mode == "off":
        return None
    from judgekit.judge.cache import ResponseCache

    cache = ResponseCache(cfg.cache.dir, read_only=cfg.cache.mode == "read_only")
    return stack.enter_context(cache.open())


def cached(client: JudgeClient, cache: Any, cfg: Config) -> JudgeClient:
    """Wrap ``client`` so answers already paid for come from the cache (resume after a crash)."""
    if cache is None:
        return client
    params_for = client.request_params
    from judgekit.judge.cache import CachingClient

    if cfg.judge.local is not None:
        # The local server's port changes every run; its weights, not its address, fix the answer.
        def params_for_local(messages: list[dict[str, str]]) -> dict[str, Any]:
            return {**params_for(messages), "api_base": "judgekit-local"}

        return CachingClient(
            client, cache, cache_mode(cfg), params_for_local, lease_s=call_budget_s(cfg)
        )
    return CachingClient(client, cache, cache_mode(cfg), params_for, lease_s=call_budget_s(cfg))


def cache_mode(cfg: Config) -> str:
    """Re-judging failures must not replay a cached unparseable answer: call again instead
    (and store the new answer, unless the cache is read-only)."""
    if cfg.runner.rejudge != "failed":
        return cfg.cache.mode
    return "off" if cfg.cache.mode == "read_only" else "refresh"


def call_budget_s(cfg: Config) -> float:
    """The longest one call may take, every attempt and wait included: how long another
    process sharing the cache waits for this one's answer before calling itself."""
    judge = cfg.judge
    attempts = judge.max_retries + 1
    return judge.timeout_s * attempts + judge.retry_max_wait_s * judge.max_retries + 5.0
