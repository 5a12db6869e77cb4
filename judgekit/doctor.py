"""``judgekit doctor [overrides]``: check that a run would work, without running it.

Checks the key's environment variable (never printing it), the dataset and its schema, where
MLflow will log, and the judge endpoint with a one-row probe (starting the local server if the
judge is local). Exit 0 when every check passes, 1 when one fails, 2 for a config error.

The probe is bounded as a whole by ``PROBE_LIMIT_S`` (15 s, retries included; ``judge.timeout_s``
still bounds each attempt), so a hung endpoint is reported in seconds, not minutes.
"""

from __future__ import annotations

import asyncio
import os
import time
from contextlib import ExitStack
from dataclasses import dataclass, replace
from typing import Any

from judgekit.config.schema import Config
from judgekit.errors import JudgekitError

__all__ = ["PROBE_LIMIT_S", "Check", "run_checks"]

PROBE_LIMIT_S = 15.0
"""Seconds the endpoint probe may take in all, whatever ``judge.timeout_s`` and retries allow."""


@dataclass
class Check:
    """One line of the doctor's report."""

    name: str
    ok: bool
    detail: str


def _check_key(cfg: Config) -> Check:
    env = cfg.judge.api_key_env
    if not env:
        return Check("api key", True, "no key needed (judge.api_key_env is null)")
    if os.environ.get(env):
        return Check("api key", True, f"{env} is set (value not shown)")
    return Check("api key", False, f"{env} is not set; export {env}=... before running")


def _check_data(cfg: Config) -> tuple[Check, Any]:
    from judgekit.pipeline import prepare

    try:
        prepared = prepare(cfg, require_key=False)
    except JudgekitError as err:
        return Check("dataset", False, str(err)), None
    n = len(prepared.examples)
    labelled = [s for s in cfg.score.names if s in cfg.dataset.fields.scores]
    detail = f"{cfg.dataset.name}: {n} examples pass the schema check; human labels for {labelled}"
    return Check("dataset", True, detail), prepared


def _check_tracking(cfg: Config) -> Check:
    if not cfg.tracking.enabled:
        return Check("mlflow", True, "tracking.enabled=false: nothing is logged to MLflow")
    uri = cfg.tracking.uri
    where = f"experiment {cfg.tracking.experiment!r} at {uri}"
    if uri.startswith(("http://", "https://")):
        import urllib.request

        try:
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=5) as reply:
                ok = reply.status == 200
        except OSError as err:
            return Check("mlflow", False, f"{where}: server does not answer ({err})")
        return Check("mlflow", ok, where)
    return Check("mlflow", True, where + f" (working directory {os.getcwd()})")


def _check_endpoint(cfg: Config, prepared: Any) -> Check:
    from judgekit.parsing import parse_scores
    from judgekit.pipeline import client_for, local_judge, resolve_api_key
    from judgekit.prompts.render import render
    from judgekit.runner import run_async

    if prepared is None:
        return Check("judge endpoint", False, "not probed: the dataset check failed")
    prepared.api_key = resolve_api_key(cfg.judge)
    with ExitStack() as stack:
        try:
            judge, _ = local_judge(stack, cfg.judge)
        except JudgekitError as err:
            return Check("judge endpoint", False, str(err))
        messages = render(cfg.prompt, prepared.examples[0], cfg.score)
        probe = replace(judge, timeout_s=min(judge.timeout_s, PROBE_LIMIT_S))
        start = time.perf_counter()
        response = run_async(_probe(client_for(prepared, probe), messages))
        took = time.perf_counter() - start
    where = f"{judge.model} at {judge.api_base or 'the provider default'}"
    if response.failure:
        return Check("judge endpoint", False, f"{where}: {response.failure} ({response.detail})")
    parsed = parse_scores(response.text, cfg.score.scores)
    failed = {k: v.failure for k, v in parsed.items() if v.failure}
    note = (
        f"parsed {dict((k, v.value) for k, v in parsed.items())}"
        if not failed
        else f"answered but {failed}"
    )
    return Check(
        "judge endpoint", True, f"{where}: answered a one-row probe in {took:.1f} s; {note}"
    )


async def _probe(client: Any, messages: list[dict[str, str]]) -> Any:
    """One call, cut at ``PROBE_LIMIT_S``; the client's connections are closed after."""
    from judgekit.judge.client import JudgeResponse
    from judgekit.records import FailureReason

    try:
        await client.ready()  # imports and warm-up: not the endpoint's time
        return await asyncio.wait_for(client.complete(messages), PROBE_LIMIT_S)
    except TimeoutError:
        detail = f"no answer within {PROBE_LIMIT_S:g} s, the doctor's probe limit"
        return JudgeResponse(None, FailureReason.TIMEOUT, detail, latency_s=PROBE_LIMIT_S)
    finally:
        await client.aclose()


def run_checks(cfg: Config) -> list[Check]:
    """Every check, in the order a run would meet them; a panel's key and endpoint checks are
    each member's, named after it."""
    data, prepared = _check_data(cfg)
    judges = [replace(m, swap=cfg.judge.swap) for m in cfg.judge.members] or [cfg.judge]
    keys, endpoints = [], []
    for judge in judges:
        alone = replace(cfg, judge=judge)
        key = _check_key(alone)
        if key.ok:
            mine = replace(prepared, config=alone) if prepared is not None else None
            endpoint = _check_endpoint(alone, mine)
        else:
            endpoint = Check("judge endpoint", False, "not probed: the api key is missing")
        if cfg.judge.is_panel:
            key.name, endpoint.name = f"api key ({judge.name})", f"judge endpoint ({judge.name})"
        keys.append(key)
        endpoints.append(endpoint)
    return [*keys, data, _check_tracking(cfg), *endpoints]
