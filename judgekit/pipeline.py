"""Run one judge experiment; the only place that knows the order of the steps.

load → check → sample → render → judge → parse → results → agreement → plots → MLflow.
Every setup check happens before the first judge call.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from judgekit.config.schema import Config, JudgeConfig
from judgekit.data.loading import Example, find_incomplete, load_examples
from judgekit.data.sampling import sample_examples
from judgekit.design import swapped_example, swaps
from judgekit.errors import ConfigError, DatasetError, RunError, SecretError
from judgekit.judge.client import JudgeClient, LiteLLMClient, RetryingClient
from judgekit.judge.structured import response_format_for
from judgekit.prompts.render import check_template_fields, item_fields, render, shown_fields
from judgekit.results import build_results, write_results
from judgekit.runner import JudgeRequest, StopRules, judge_all, run_async
from judgekit.stats.agreement import agreement_report, failure_counts, metrics_from_report
from judgekit.stats.report import AgreementReport

__all__ = ["PreparedRun", "RunResult", "prepare", "run"]

log = logging.getLogger("judgekit")


@dataclass
class PreparedRun:
    """A checked run, ready to judge: nothing has been sent yet."""

    config: Config
    examples: list[Example]
    api_key: str | None
    reused: dict[int, Any] = field(default_factory=dict)
    """Responses reused from an earlier run (``runner.rejudge=failed``), by example index."""
    parent_run: str | None = None
    dataset_digest: str = ""
    """sha256 of every example loaded, before sampling (tag ``judgekit.dataset_digest``)."""
    dropped_incomplete: int = 0
    """Rows left out by ``dataset.drop_incomplete`` (a field the prompt shows missing or null)."""


@dataclass
class RunResult:
    """Everything a run produced."""

    config: Config
    examples: list[Example]
    results: pd.DataFrame
    agreement: AgreementReport
    aggregate: dict[str, dict[str, Any]]
    failures: dict[str, int]
    out_dir: Path | None = None
    run_id: str | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    cache_stats: dict[str, int] = field(default_factory=dict)
    dropped_incomplete: int = 0
    """Rows left out by ``dataset.drop_incomplete`` before sampling."""

    @property
    def row_scores(self) -> list[dict[str, Any]]:
        """Per example: its index, its item and the judge's scores (NaN where failed)."""
        rows = []
        by_example = self.results.groupby("example_index", sort=True)
        for index, part in by_example:
            example = self.examples[int(index)]
            rows.append(
                {
                    "index": int(index),
                    "item": example.item,
                    "scores": dict(zip(part["score"], part["judge"], strict=True)),
                    "failures": {
                        s: r
                        for s, r in zip(part["score"], part["failure_reason"], strict=True)
                        if r
                    },
                }
            )
        return rows

    def summary(self) -> dict[str, Any]:
        """A JSON-able summary: agreement or aggregates per score, failures, where outputs are."""
        return {
            "judge": self.config.judge.model,
            "prompt": self.config.prompt.name,
            "score": self.config.score.name,
            "dataset": self.config.dataset.name,
            "n_examples": len(self.examples),
            "dropped_incomplete": self.dropped_incomplete,
            "agreement": self.agreement.to_flat(),
            "aggregate": self.aggregate,
            "failures": self.failures,
            "cache": self.cache_stats,
            "mlflow_run_id": self.run_id,
            "outputs": self.outputs,
        }


def resolve_api_key(judge: JudgeConfig) -> str | None:
    """The key from the environment variable the config names; the name only is ever stored."""
    if not judge.api_key_env:
        return None
    value = os.environ.get(judge.api_key_env)
    if not value:
        raise SecretError(
            f"judge.api_key_env: environment variable {judge.api_key_env} is not set; "
            f"export {judge.api_key_env}=... (the key for {judge.model}) or choose another judge"
        )
    return value


def prepare(cfg: Config, *, require_key: bool = True) -> PreparedRun:
    """Load, check and sample the data and render every request: every setup error surfaces here."""
    examples = load_examples(cfg.dataset, cfg.score)
    digest = _digest(examples) if cfg.tracking.enabled else ""
    examples, dropped = _complete_examples(cfg, examples)
    stratify = next((n for n in cfg.score.names if n in cfg.dataset.fields.scores), None)
    examples = sample_examples(
        examples, cfg.runner.limit_samples, seed=cfg.runner.seed, stratify_by=stratify
    )
    _check_prompt_kind(cfg)
    if swaps(cfg) and cfg.runner.rejudge:
        raise ConfigError("runner.rejudge: not available with judge.swap=true yet")
    _render_all(cfg, examples)
    api_key = resolve_api_key(cfg.judge) if require_key else None
    prepared = PreparedRun(
        cfg, examples, api_key, dataset_digest=digest, dropped_incomplete=dropped
    )
    if cfg.runner.rejudge == "failed" and cfg.runner.rejudge_from:
        from judgekit.rejudge import load_previous, reuse

        previous = load_previous(cfg.runner.rejudge_from, cfg.tracking)
        prepared.reused, failed = reuse(previous, examples)
        prepared.parent_run = previous.run_id
        log.info(
            "re-judging %d failed of %d examples from %s", failed, len(examples), previous.where
        )
    return prepared


def _digest(examples: list[Example]) -> str:
    from judgekit.tracking.runs import dataset_digest

    return dataset_digest(examples)


def _complete_examples(cfg: Config, examples: list[Example]) -> tuple[list[Example], int]:
    """The examples holding every field the prompt shows, and how many were left out.

    A row in which such a field is missing or null is a setup error naming the rows, unless
    ``dataset.drop_incomplete`` leaves those rows out (counted and logged).
    """
    where = f"dataset {cfg.dataset.name!r}"
    incomplete = find_incomplete(examples, item_fields(cfg.prompt), shown_fields(cfg.prompt))
    if not incomplete:
        return examples, 0
    if len(incomplete) == len(examples):
        for name in item_fields(cfg.prompt):
            if not any(name in e.item for e in examples):
                check_template_fields(cfg.prompt, examples[0], where)  # not in the data at all
    rows = "; ".join(_incomplete_row(cfg, examples, i, why) for i, why in incomplete[:5])
    more = f"; ... ({len(incomplete)} rows in all)" if len(incomplete) > 5 else ""
    lacking = (
        f"{where}: {len(incomplete)} of {len(examples)} rows lack a value for a field prompt "
        f"{cfg.prompt.name!r} shows: {rows}{more}"
    )
    if not cfg.dataset.drop_incomplete:
        raise DatasetError(
            f"{lacking}; fill them in, or set dataset.drop_incomplete=true to leave them out"
        )
    if len(incomplete) == len(examples):
        raise DatasetError(f"{lacking}; dataset.drop_incomplete=true would leave no row to judge")
    skip = {i for i, _ in incomplete}
    log.info(
        "dataset.drop_incomplete: left out %d of %d rows of %s lacking a field the prompt shows "
        "(%s%s)",
        len(skip),
        len(examples),
        where,
        rows,
        more,
    )
    return [e for i, e in enumerate(examples) if i not in skip], len(skip)


def _incomplete_row(cfg: Config, examples: list[Example], index: int, why: str) -> str:
    named = f" (id {examples[index].id!r})" if cfg.dataset.fields.id else ""
    return f"row {index}{named}: {why}"


def _render_all(cfg: Config, examples: list[Example]) -> None:
    """Render every request once and keep none of them: a template that fails on any row (in
    either order with ``judge.swap``) fails here, before the first judge call, in little memory."""
    swap = swaps(cfg)
    for example in examples:
        render(cfg.prompt, example, cfg.score)
        if swap:
            render(cfg.prompt, swapped_example(example), cfg.score)


def _check_prompt_kind(cfg: Config) -> None:
    """A preference score needs a prompt that shows both responses, and the other way round."""
    from judgekit.prompts.render import item_fields

    pairwise_prompt = {"response_a", "response_b"} <= item_fields(cfg.prompt)
    preference = any(spec.kind == "preference" for spec in cfg.score.scores)
    if preference and not pairwise_prompt:
        raise ConfigError(
            f"prompt {cfg.prompt.name!r} does not show item.response_a and item.response_b, but "
            f"score {cfg.score.name!r} asks for a preference; use prompt=pairwise_v1 or pairwise_v2"
        )
    if pairwise_prompt and not preference:
        raise ConfigError(
            f"prompt {cfg.prompt.name!r} compares two responses, but score {cfg.score.name!r} has "
            "no preference score; use score=preference"
        )


def _requests(prepared: PreparedRun) -> Iterator[JudgeRequest]:
    """One request per example, or two (original, swapped; indexes 2i and 2i+1) with swap."""
    cfg = prepared.config
    swap = swaps(cfg)
    for index, example in enumerate(prepared.examples):
        if index in prepared.reused:
            continue
        if not swap:
            yield JudgeRequest(index, example.id, render(cfg.prompt, example, cfg.score))
            continue
        yield JudgeRequest(2 * index, example.id, render(cfg.prompt, example, cfg.score))
        flipped = swapped_example(example)
        yield JudgeRequest(2 * index + 1, example.id, render(cfg.prompt, flipped, cfg.score))


def _judge(
    prepared: PreparedRun,
    client: JudgeClient,
    on_progress: Callable[[int, int], None] | None = None,
) -> tuple[dict[int, Any], str | None]:
    """Every response by request index, and why the run stopped early (None when it did not)."""
    cfg = prepared.config
    runner = cfg.runner
    per_example = 2 if swaps(cfg) else 1
    total = (len(prepared.examples) - len(prepared.reused)) * per_example
    done = 0

    def count(request: JudgeRequest, response: Any) -> None:
        nonlocal done
        done += 1
        if on_progress is not None:
            on_progress(done, total)

    def describe(request: JudgeRequest) -> str:
        return f"row {request.index // per_example} (id {request.example_id!r})"

    parallelism = _effective_parallelism(cfg)
    if parallelism < runner.parallelism:
        log.info("local judge: runner.parallelism %d capped at 1", runner.parallelism)
    rules = StopRules(
        judge=cfg.judge,
        max_consecutive_failures=runner.max_consecutive_failures,
        stop_on_failure=not runner.ignore_request_failure,
        describe=describe,
    )
    outcome = run_async(
        judge_all(
            _requests(prepared),
            client,
            parallelism=parallelism,
            total=total,
            progress=runner.progress,
            on_response=count,
            rules=rules,
        )
    )
    return {**prepared.reused, **outcome.responses}, outcome.stop_reason


def _write_outputs(result: RunResult, out_dir: Path) -> list[Path]:
    """Write results, figures and summary; a write that fails (disk full) is one clear RunError."""
    from judgekit.plots import save_figures

    summary, writing = out_dir / "summary.json", out_dir / "results.parquet"
    try:
        paths = [write_results(result.results, writing)]
        writing = out_dir
        paths.extend(save_figures(result.results, result.config.score.scores, out_dir))
        result.outputs = {"dir": str(out_dir), "results": str(paths[0]), "summary": str(summary)}
        writing = summary
        summary.write_text(json.dumps(result.summary(), indent=2, default=_json_default) + "\n")
    except OSError as err:
        raise RunError(_unwritten(result, writing, err)) from None
    paths.append(summary)
    return paths


def _unwritten(result: RunResult, path: Path, err: OSError) -> str:
    """Which output could not be written and why, and whether a rerun pays for the calls again."""
    import errno

    why = err.strerror or str(err)
    if err.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        why += " (the disk is full, or a file size limit such as ulimit -f was reached)"
    mode = result.config.cache.mode
    if mode in ("read_write", "refresh"):
        from judgekit.judge.cache import ResponseCache

        rerun = (
            f"the judge's answers are in the response cache at "
            f"{ResponseCache(result.config.cache.dir).path}: make room and rerun the same command "
            "to write them without paying for the calls again"
        )
    else:
        rerun = (
            f"the response cache is off (cache.mode={mode}), so a rerun pays for every call "
            "again; keep cache.mode=read_write to make a rerun free"
        )
    return f"could not write the results to {path}: {why}; {rerun}"


def _check_out_dir(out_dir: Path | None) -> None:
    """Before any judge call: ``out_dir`` can be written and holds no other run's results."""
    if out_dir is not None:
        from judgekit.outdir import check_out_dir

        check_out_dir(out_dir, "output directory")


def _json_default(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    return str(value)


def client_for(prepared: PreparedRun, judge: JudgeConfig) -> RetryingClient:
    """The client for ``judge`` (litellm, or ``judge.client: direct``): retries, ``judge.rpm``/``tpm``
    and adaptive backoff."""
    from judgekit.judge.ratelimit import build_client_limits

    limiter, concurrency = build_client_limits(judge, _effective_parallelism(prepared.config))
    kind: Callable[..., RetryingClient] = LiteLLMClient
    if judge.client == "direct":
        from judgekit.judge.direct import DirectClient

        kind = DirectClient
    return kind(
        judge,
        api_key=prepared.api_key,
        response_format=response_format_for(judge, prepared.config.score),
        seed=prepared.config.runner.seed,
        limiter=limiter,
        concurrency=concurrency,
    )


def local_judge(stack: ExitStack, judge: JudgeConfig) -> tuple[JudgeConfig, int | None]:
    """Start judgekit's own llama.cpp server for a local judge (the stack stops it).

    Returns the judge pointed at the server, and the server's process id (None when not local).
    """
    if judge.local is None:
        return judge, None
    from judgekit.local.judge import start_local_judge

    server = stack.enter_context(start_local_judge(judge.local, logprobs=judge.logprobs))
    log.info("local judge %s serving on %s (pid %s)", server.model, server.api_base, server.pid)
    return replace(judge, model=server.model, api_base=server.api_base), server.pid


def _effective_parallelism(cfg: Config) -> int:
    """llama.cpp's server answers one request at a time: more would only queue into timeouts.

    Silent: ``_judge`` logs the cap once per run (``client_for`` asks too)."""
    if cfg.judge.local is not None and cfg.runner.parallelism > 1:
        return 1
    return cfg.runner.parallelism


def run(
    cfg: Config,
    out_dir: Path | None = None,
    *,
    client: JudgeClient | None = None,
    prepared: PreparedRun | None = None,
    tags: dict[str, str] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> RunResult:
    """Run the experiment ``cfg`` end to end; outputs go to ``out_dir`` when one is given.

    ``tags`` are added to the MLflow run (the CLI adds the sweep id and job number of a multirun);
    ``on_progress(done, total)`` is called after each judged request (durable jobs report it).
    """
    _check_out_dir(out_dir)
    prepared = prepared or prepare(cfg)
    with ExitStack() as stack:
        cache = _open_cache(stack, cfg)
        judge, server_pid = local_judge(stack, cfg.judge) if client is None else (cfg.judge, None)
        tracked = cfg.tracking.enabled and out_dir is not None
        mlrun = stack.enter_context(
            _tracking(cfg, judge, server_pid, tags, prepared.parent_run, prepared.dataset_digest)
            if tracked
            else nullcontext()
        )
        call = _cached(client or client_for(prepared, judge), cache, cfg)
        responses, stopped = _judge(prepared, call, on_progress)
        result = _finish(prepared, responses, out_dir, mlrun, cache)
        if stopped is not None:  # inside the MLflow run: it ends FAILED
            raise RunError(f"{stopped}; results so far are in {out_dir or 'memory'}")
        _check_coverage(result, out_dir)
        _check_logged(result, mlrun)
    return result


def _check_logged(result: RunResult, mlrun: Any) -> None:
    """A store that failed while the run was logged: the results are kept, the run exits 1."""
    if mlrun is None or mlrun.failure is None:
        return
    cfg = result.config
    rerun = (
        "rerun the same command once the store answers: the response cache makes it free"
        if cfg.cache.mode != "off"
        else "rerun the same command once the store answers (cache.mode=off: calls are paid again)"
    )
    from judgekit.tracking.store import display_uri, scrub

    why = scrub(mlrun.failure, cfg.tracking.uri)
    err = RunError(
        f"tracking.uri: logging to {display_uri(cfg.tracking.uri)} failed ({why}); "
        f"not logged: {', '.join(mlrun.not_logged)}; the results are in {result.out_dir}; {rerun}"
    )
    err.result = result  # type: ignore[attr-defined]  # the CLI prints the report first
    raise err


def _annotator_labels(examples: list[Example], cfg: Config) -> dict[str, Any]:
    """Per score, an (examples × annotators) array of each annotator's label, when the data has them."""
    import numpy as np

    labels = {}
    for name in cfg.dataset.fields.annotators:
        rows = [e.annotators.get(name) for e in examples]
        if rows and all(r is not None for r in rows):
            labels[name] = np.array(rows, dtype=float)
    return labels


def _check_coverage(result: RunResult, out_dir: Path | None) -> None:
    """Fail the run when a score was scored on fewer examples than ``runner.min_coverage``, or,
    when it is null (the default), on no example at all (an explicit 0 accepts that)."""
    floor = result.config.runner.min_coverage
    for spec in result.config.score.scores:
        part = result.results[result.results["score"] == spec.name]
        coverage = float(part["judge"].notna().mean()) if len(part) else 0.0
        if floor is None and coverage == 0.0 and len(part):
            raise RunError(
                f"runner.min_coverage: {spec.name} was scored on no example at all (failures "
                f"by reason: {result.failures}); results are in {out_dir or 'memory'}; set "
                "runner.min_coverage=0 to accept a run in which a score was never scored"
            )
        if floor is not None and coverage < floor:
            raise RunError(
                f"runner.min_coverage: {spec.name} was scored on {coverage:.1%} of examples, "
                f"below {floor:.1%}; failures by reason: {result.failures}; results are in "
                f"{out_dir or 'memory'}"
            )


def _open_cache(stack: ExitStack, cfg: Config) -> Any:
    """The response cache, opened now so an unusable ``cache.dir`` fails before any call;
    ``read_only`` opens the file read-only (it may sit in a read-only folder)."""
    if cfg.cache.mode == "off":
        return None
    from judgekit.judge.cache import ResponseCache

    cache = ResponseCache(cfg.cache.dir, read_only=cfg.cache.mode == "read_only")
    return stack.enter_context(cache.open())


def _cached(client: JudgeClient, cache: Any, cfg: Config) -> JudgeClient:
    """Wrap ``client`` so answers already paid for come from the cache (resume after a crash)."""
    params_for = client.request_params
    if cache is None or params_for is None:
        return client
    from judgekit.judge.cache import CachingClient

    if cfg.judge.local is not None:
        # The local server's port changes every run; its weights, not its address, fix the answer.
        def params_for_local(messages: list[dict[str, str]]) -> dict[str, Any]:
            return {**params_for(messages), "api_base": "judgekit-local"}

        return CachingClient(
            client, cache, _cache_mode(cfg), params_for_local, lease_s=_call_budget_s(cfg)
        )
    return CachingClient(client, cache, _cache_mode(cfg), params_for, lease_s=_call_budget_s(cfg))


def _cache_mode(cfg: Config) -> str:
    """Re-judging failures must not replay a cached unparseable answer: call again instead
    (and store the new answer, unless the cache is read-only)."""
    if cfg.runner.rejudge != "failed":
        return cfg.cache.mode
    return "off" if cfg.cache.mode == "read_only" else "refresh"


def _call_budget_s(cfg: Config) -> float:
    """The longest one call may take, every attempt and wait included: how long another
    process sharing the cache waits for this one's answer before calling itself."""
    judge = cfg.judge
    attempts = judge.max_retries + 1
    return judge.timeout_s * attempts + judge.retry_max_wait_s * judge.max_retries + 5.0


def _tracking(  # type: ignore[no-untyped-def]
    cfg: Config,
    judge: JudgeConfig,
    server_pid: int | None,
    tags: dict[str, str] | None,
    parent_run: str | None = None,
    dataset_digest: str = "",
):
    from judgekit.tracking.runs import DATASET_DIGEST_TAG, default_run_name, mlflow_run, run_tags

    name = cfg.tracking.run_name or default_run_name(cfg)
    from judgekit.secrets import redact_url

    extra = {
        "judgekit.endpoint": redact_url(judge.api_base or ""),
        "judgekit.judge_model": judge.model,
    }
    if dataset_digest:
        extra[DATASET_DIGEST_TAG] = dataset_digest
    extra.update(tags or {})
    if parent_run:
        extra["judgekit.parent_run"] = parent_run
        extra["mlflow.parentRunId"] = parent_run
    if server_pid is not None:
        extra["judgekit.local_server_pid"] = str(server_pid)
    return mlflow_run(cfg.tracking, name, run_tags(cfg, extra), keep_going=True)


def _finish(
    prepared: PreparedRun,
    responses: dict[int, Any],
    out_dir: Path | None,
    mlrun: Any,
    cache: Any = None,
) -> RunResult:
    cfg = prepared.config
    if swaps(cfg):
        first = {i // 2: r for i, r in responses.items() if i % 2 == 0}
        second = {i // 2: r for i, r in responses.items() if i % 2 == 1}
        frame = build_results(prepared.examples, first, cfg.score, second)
    else:
        frame = build_results(prepared.examples, responses, cfg.score)
    report, aggregate = agreement_report(frame, cfg, _annotator_labels(prepared.examples, cfg))
    result = RunResult(cfg, prepared.examples, frame, report, aggregate, failure_counts(frame))
    result.cache_stats = cache.stats() if cache is not None else {}
    result.dropped_incomplete = prepared.dropped_incomplete
    if out_dir is None:
        return result
    result.out_dir = out_dir
    result.run_id = mlrun.run_id if mlrun is not None else None
    paths = _write_outputs(result, out_dir)
    if mlrun is not None:
        from judgekit.secrets import redact_config
        from judgekit.tracking.runs import flatten_params

        mlrun.log_params(flatten_params(redact_config(cfg)))
        metrics = metrics_from_report(report, aggregate, result.failures)
        metrics.update({f"cache/{k}": float(v) for k, v in result.cache_stats.items()})
        if cfg.dataset.drop_incomplete:
            metrics["data/dropped_incomplete"] = float(result.dropped_incomplete)
        mlrun.log_metrics(metrics)
        mlrun.log_table(frame, "results_table.json")
        config_path = out_dir / "resolved_config.json"
        config_path.write_text(
            json.dumps(_config_dict(redact_config(cfg)), indent=2, default=str) + "\n"
        )
        mlrun.log_artifacts([*paths, config_path])
    return result


def _config_dict(cfg: Config) -> dict[str, Any]:
    import dataclasses

    return dataclasses.asdict(cfg)
