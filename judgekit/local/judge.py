"""Start the llama.cpp server for a ``judge=local*`` config, for the length of a run."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from judgekit.config.schema import LocalModelConfig
from judgekit.local.server import LocalServer
from judgekit.local.weights import resolve_weights

__all__ = ["alias_for", "start_local_judge"]


def alias_for(cfg: LocalModelConfig) -> str:
    """The model name the server answers to: ``local-<weights>`` (or the file's stem)."""
    name = (
        cfg.weights
        if not cfg.model_path
        else cfg.model_path.rsplit("/", 1)[-1].removesuffix(".gguf")
    )
    return "local-" + re.sub(r"[^A-Za-z0-9._-]+", "-", name)


@contextmanager
def start_local_judge(cfg: LocalModelConfig, *, logprobs: bool = False) -> Iterator[LocalServer]:
    """Resolve and verify the weights, start the server, and stop it however the block ends."""
    path = resolve_weights(cfg)
    server = LocalServer(
        path,
        alias=alias_for(cfg),
        n_threads=cfg.n_threads,
        n_ctx=cfg.n_ctx,
        startup_timeout_s=cfg.startup_timeout_s,
        logits_all=logprobs,
    )
    with server:
        yield server
