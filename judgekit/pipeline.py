"""Run one judge experiment; the only place that knows the order of the steps.

load → check → sample → render → judge → parse → results → agreement → outputs → MLflow.
Every setup check happens before the first judge call (cross-group ones when the config is
composed: :class:`judgekit.config.schema.Config`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from judgekit.config.schema import Config, JudgeConfig
from judgekit.data.complete import complete_examples
from judgekit.data.loading import Example, load_examples
from judgekit.data.sampling import sample_examples
from judgekit.design import (
    build_requests,
    draw_index,
    one_draw,
    per_example,
    render_all,
    row_of,
    split_orders,
    swaps,
)
from judgekit.errors import RunError, SecretError
from judgekit.judge.caching import cached, open_cache
from judgekit.judge.client import JudgeClient, LiteLLMClient, RetryingClient
from judgekit.judge.structured import response_format_for
from judgekit.results import RunResult, check_coverage, parse_responses, results_table, write_run
from judgekit.runner import JudgeRequest, StopRules, judge_all, run_async
from judgekit.stats.agreement import agreement_report, annotator_labels, failure_counts
from judgekit.stats.human_scale import human_scale
from judgekit.tracking.log import check_logged, log_run, open_run
from judgekit.tracking.traces import TraceLog, open_traces

__all__ = ["PreparedRun", "RunResult", "judge_and_score", "member_run", "prepare", "run"]

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
    calibration: dict[str, Any] | None = None
    """The maps ``stats.apply_calibration`` applies (:func:`judgekit.calibrated.load_calibration`)."""


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
    if cfg.judge.is_panel:
        if client is not None:
            raise RunError("a judge panel calls each member's own client; pass no client")
        return _run_panel(prepared, out_dir, tags, on_progress)
    with ExitStack() as stack:
        cache = open_cache(stack, cfg)
        judge, server_pid = local_judge(stack, cfg.judge) if client is None else (cfg.judge, None)
        mlrun = stack.enter_context(
            open_run(
                cfg,
                judge,
                out_dir,
                server_pid=server_pid,
                tags=tags,
                parent_run=prepared.parent_run,
                dataset_digest=prepared.dataset_digest,
            )
        )
        traces = stack.enter_context(open_traces(cfg, prepared.examples, mlrun))
        call = cached(client or client_for(prepared, judge), cache, cfg)
        responses, stopped = _judge(prepared, call, on_progress, traces)
        result = _finish(prepared, responses, out_dir, mlrun, cache, traces)
        if stopped is not None:  # inside the MLflow run: it ends FAILED
            raise RunError(f"{stopped}; results so far are in {out_dir or 'memory'}")
        check_coverage(result, out_dir)
        check_logged(result, mlrun)
    return result


def judge_and_score(prepared: PreparedRun, client: JudgeClient) -> tuple[RunResult, dict[int, Any]]:
    """Judge ``prepared.examples`` with ``client`` and compare with the humans; nothing is written
    or logged (``judgekit optimize`` scores candidate prompts this way). Returns the result and
    the responses by request index; a run stopped by a stop rule raises :class:`RunError`."""
    responses, stopped = _judge(prepared, client)
    if stopped is not None:
        raise RunError(stopped)
    return _finish(prepared, responses, None, None), responses


def prepare(cfg: Config, *, require_key: bool = True) -> PreparedRun:
    """Load, check and sample the data and render every request: every setup error surfaces here."""
    examples = load_examples(cfg.dataset, cfg.score, tracking_uri=cfg.tracking.uri)
    digest = _digest(examples) if cfg.tracking.enabled else ""
    examples, dropped = complete_examples(examples, cfg.dataset, cfg.prompt)
    stratify = next((n for n in cfg.score.names if n in cfg.dataset.fields.scores), None)
    examples = sample_examples(
        examples, cfg.runner.limit_samples, seed=cfg.runner.seed, stratify_by=stratify
    )
    render_all(examples, cfg.prompt, cfg.score, swap=swaps(cfg))  # every template error, no call
    for judge in cfg.judge.members:  # a panel: every member's key, before any call
        resolve_api_key(judge) if require_key else None
    if cfg.judge.is_panel and cfg.judge.aggregate == "weighted":
        _check_weights_split(cfg, examples)
    if cfg.runner.samples > 1 and not cfg.judge.is_panel and cfg.judge.temperature == 0:
        log.warning(
            "runner.samples=%d at judge.temperature=0: the draws differ only through "
            "judge.extra_params.seed (many endpoints decode greedily at temperature 0 whatever "
            "the seed); see <score>/flip_rate",
            cfg.runner.samples,
        )
    api_key = resolve_api_key(cfg.judge) if require_key else None
    prepared = PreparedRun(
        cfg, examples, api_key, dataset_digest=digest, dropped_incomplete=dropped
    )
    prepared.calibration = _prepare_calibration(cfg, examples)
    if cfg.runner.rejudge == "failed" and cfg.runner.rejudge_from:
        from judgekit.rejudge import load_previous, reuse

        previous = load_previous(cfg.runner.rejudge_from, cfg.tracking)
        prepared.reused, failed = reuse(previous, examples)
        prepared.parent_run = previous.run_id
        log.info(
            "re-judging %d failed of %d examples from %s", failed, len(examples), previous.where
        )
    return prepared


def _prepare_calibration(cfg: Config, examples: list[Example]) -> dict[str, Any] | None:
    """``stats.calibrate``/``stats.apply_calibration`` checked (the applied maps loaded)."""
    if cfg.stats.calibrate == "none" and not cfg.stats.apply_calibration:
        return None
    from judgekit.calibrated import prepare_calibration

    return prepare_calibration(cfg, examples)


def _check_weights_split(cfg: Config, examples: list[Example]) -> None:
    """``judge.aggregate=weighted`` needs labelled rows to fit on and rows left to report."""
    from judgekit.errors import ConfigError
    from judgekit.panel import calibration_rows

    fit = calibration_rows(cfg, [e.group for e in examples])
    labelled = sum(
        any(not _missing(e.human.get(s)) for s in cfg.score.names)
        for e in (examples[i] for i in fit)
    )
    shown = len(examples) - len(fit)
    if labelled < 2 or shown < 2:
        raise ConfigError(
            f"judge.weights_split: {cfg.judge.weights_split} of {len(examples)} examples (whole "
            f"groups, dataset.fields.group) leaves {labelled} labelled rows to fit the weights on "
            f"and {shown} to report; each needs 2 or more: change judge.weights_split, use more "
            "examples or smaller groups, or another judge.aggregate"
        )


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _run_panel(
    prepared: PreparedRun,
    out_dir: Path | None,
    tags: dict[str, str] | None,
    on_progress: Callable[[int, int], None] | None,
) -> RunResult:
    """``run`` for a judge panel: each member judges in turn (its own client, cache keys and
    local server, stopped before the next member starts), then :func:`_finish_panel`."""
    cfg = prepared.config
    names = ",".join(m.name for m in cfg.judge.members)
    with ExitStack() as stack:
        cache = open_cache(stack, cfg)
        mlrun = stack.enter_context(
            open_run(
                cfg,
                cfg.judge,
                out_dir,
                tags={**(tags or {}), "judgekit.panel_members": names},
                dataset_digest=prepared.dataset_digest,
            )
        )
        responses, stopped = _judge_members(prepared, cache, on_progress)
        result = _finish_panel(prepared, responses, out_dir, mlrun, cache)
        if stopped is not None:
            raise RunError(f"{stopped}; results so far are in {out_dir or 'memory'}")
        check_coverage(result, out_dir)
        check_logged(result, mlrun)
    return result


def member_run(prepared: PreparedRun, index: int, *, key: bool = True) -> PreparedRun:
    """Panel member ``index`` as a run of that judge alone (the panel's ``judge.swap``), with
    its API key when ``key``."""
    cfg = prepared.config
    member = replace(cfg.judge.members[index], swap=cfg.judge.swap)
    api_key = resolve_api_key(member) if key else None
    return replace(prepared, config=replace(cfg, judge=member), api_key=api_key)


def _judge_members(
    prepared: PreparedRun, cache: Any, on_progress: Callable[[int, int], None] | None
) -> tuple[list[dict[int, Any]], str | None]:
    """Every member's responses by request index, in member order; a member stopped by a stop
    rule stops the panel (later members are not run: their rows are ``not_run``)."""
    cfg = prepared.config
    members = cfg.judge.members
    each = len(prepared.examples) * per_example(swaps(cfg), cfg.runner.samples)
    found: list[dict[int, Any]] = [{} for _ in members]
    for index, member in enumerate(members):
        alone = member_run(prepared, index)
        log.info("panel member %d of %d: %s", index + 1, len(members), member.name)

        def progress(done: int, _total: int, base: int = index * each) -> None:
            if on_progress is not None:
                on_progress(base + done, each * len(members))

        with ExitStack() as stack:
            judge, _ = local_judge(stack, alone.config.judge)
            call = cached(client_for(alone, judge), cache, alone.config)
            found[index], stopped = _judge(alone, call, progress)
        if stopped is not None:
            return found, f"judge.members.{index} ({member.name}): {stopped}"
    return found, None


def _finish_panel(
    prepared: PreparedRun,
    responses: list[dict[int, Any]],
    out_dir: Path | None,
    mlrun: Any,
    cache: Any = None,
) -> RunResult:
    """Each member's table, the panel's (:mod:`judgekit.panel`), the agreement of both with the
    humans on the rows the panel is reported on; written and logged as ``_finish`` does."""
    from judgekit.panel import assemble_panel, write_panel

    cfg, examples = prepared.config, prepared.examples
    tables = [_tabulate(member_run(prepared, i, key=False), r) for i, r in enumerate(responses)]
    frame, panel, annotators = assemble_panel(cfg, examples, tables)
    report, aggregate = agreement_report(frame, cfg, annotators)
    result = RunResult(cfg, examples, frame, report, aggregate, failure_counts(frame), panel=panel)
    result.cache_stats = cache.stats() if cache is not None else {}
    result.dropped_incomplete = prepared.dropped_incomplete
    result.human_scale = human_scale(cfg, examples, frame)  # on the rows the panel reports
    if out_dir is None:
        return result
    result.out_dir = out_dir
    result.run_id = mlrun.run_id if mlrun is not None else None
    try:
        paths = write_panel(panel, out_dir)
    except OSError as err:
        raise RunError(f"could not write the panel's tables to {out_dir}: {err}") from None
    paths += write_run(result, out_dir)
    paths += result.human_scale.write(out_dir) if result.human_scale is not None else []
    if mlrun is not None:
        log_run(mlrun, result, paths)
    return result


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


def _digest(examples: list[Example]) -> str:
    from judgekit.tracking.runs import dataset_digest

    return dataset_digest(examples)


def _check_out_dir(out_dir: Path | None) -> None:
    """Before any judge call: ``out_dir`` can be written and holds no other run's results."""
    if out_dir is not None:
        from judgekit.outdir import check_out_dir

        check_out_dir(out_dir, "output directory")


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


def _effective_parallelism(cfg: Config) -> int:
    """llama.cpp's server answers one request at a time: more would only queue into timeouts.

    Silent: ``_judge`` logs the cap once per run (``client_for`` asks too)."""
    if cfg.judge.local is not None and cfg.runner.parallelism > 1:
        return 1
    return cfg.runner.parallelism


def _judge(
    prepared: PreparedRun,
    client: JudgeClient,
    on_progress: Callable[[int, int], None] | None = None,
    traces: TraceLog | None = None,
) -> tuple[dict[int, Any], str | None]:
    """Every response by request index, and why the run stopped early (None when it did not);
    each response also goes to the run's MLflow traces as it arrives."""
    cfg, runner, swap = prepared.config, prepared.config.runner, swaps(prepared.config)
    k = runner.samples
    total = (len(prepared.examples) - len(prepared.reused)) * per_example(swap, k)
    done = 0

    def count(request: JudgeRequest, response: Any) -> None:
        nonlocal done
        done += 1
        if traces is not None and request.sample == 0:  # a trace per row: the first draw's
            traces.add(draw_index(request.index, swap, k), response)
        if on_progress is not None:
            on_progress(done, total)

    def describe(request: JudgeRequest) -> str:
        draw = f", draw {request.sample}" if k > 1 else ""
        return f"row {row_of(request.index, swap, k)} (id {request.example_id!r}{draw})"

    parallelism = _effective_parallelism(cfg)
    if parallelism < runner.parallelism:
        log.info("local judge: runner.parallelism %d capped at 1", runner.parallelism)
    rules = StopRules(
        judge=cfg.judge,
        max_consecutive_failures=runner.max_consecutive_failures,
        stop_on_failure=not runner.ignore_request_failure,
        describe=describe,
    )
    requests = build_requests(
        prepared.examples, cfg.prompt, cfg.score, swap=swap, skip=prepared.reused, samples=k
    )
    outcome = run_async(
        judge_all(
            requests,
            client,
            parallelism=parallelism,
            total=total,
            progress=runner.progress,
            on_response=count,
            rules=rules,
        )
    )
    return {**prepared.reused, **outcome.responses}, outcome.stop_reason


def _tabulate(prepared: PreparedRun, responses: dict[int, Any]) -> dict[str, Any]:
    """The parse and results steps: ``results``, the table of every (example, score), and with
    ``runner.samples`` > 1 the other fields of the draws (:func:`_reduced`)."""
    cfg, examples = prepared.config, prepared.examples
    if cfg.runner.samples > 1:
        return _reduced(prepared, responses)
    given, swapped = split_orders(responses, swap=swaps(cfg))
    parsed = parse_responses(examples, given, cfg.score)
    second = parse_responses(examples, swapped, cfg.score) if swapped is not None else None
    return {"results": results_table(examples, parsed, cfg.score, second)}


def _reduced(prepared: PreparedRun, responses: dict[int, Any]) -> dict[str, Any]:
    """With ``runner.samples`` > 1, the :class:`RunResult` fields of the draws
    (:mod:`judgekit.draws`): ``results`` (reduced values), ``samples`` (every draw),
    ``stability`` (test–retest figures per score) and ``unstable`` (the least stable items)."""
    from judgekit.draws import (
        draw_tables,
        reduce_tables,
        samples_table,
        stability_by_score,
        unstable_items,
    )

    cfg = prepared.config
    tables = draw_tables(
        prepared.examples, responses, cfg.score, swap=swaps(cfg), samples=cfg.runner.samples
    )
    frame = reduce_tables(tables, cfg.score.scores, str(cfg.runner.reduce))
    return {
        "results": frame,
        "samples": samples_table(tables),
        "stability": stability_by_score(tables, cfg.score.scores),
        "unstable": unstable_items(tables, frame, cfg.score.scores),
    }


def _write_draws(result: RunResult, out_dir: Path) -> list[Path]:
    """The draws' files (``samples.parquet``, the agreement-vs-draws curve, the unstable items)."""
    if result.samples is None or result.unstable is None:
        return []
    from judgekit.draws import write_draws

    try:
        return write_draws(result.samples, result.unstable, result.config, out_dir)
    except OSError as err:
        raise RunError(f"could not write the draws to {out_dir}: {err}") from None


def _finish(
    prepared: PreparedRun,
    responses: dict[int, Any],
    out_dir: Path | None,
    mlrun: Any,
    cache: Any = None,
    traces: TraceLog | None = None,
) -> RunResult:
    """Parse, tabulate and compare with the humans; write the run directory and log it."""
    cfg, examples = prepared.config, prepared.examples
    draws = _tabulate(prepared, responses)
    frame = draws.pop("results")
    report, aggregate = agreement_report(
        frame, cfg, annotator_labels(examples, cfg.dataset.fields.annotators)
    )
    result = RunResult(cfg, examples, frame, report, aggregate, failure_counts(frame), **draws)
    result.cache_stats = cache.stats() if cache is not None else {}
    result.dropped_incomplete = prepared.dropped_incomplete
    result.calibration = _calibrate(prepared, frame, responses)
    result.human_scale = human_scale(cfg, examples, frame)  # stats.ppi; annotators: the alt-test
    if out_dir is None:
        return result
    result.out_dir = out_dir
    result.run_id = mlrun.run_id if mlrun is not None else None
    paths = _write_draws(result, out_dir) + _write_calibration(result, out_dir)
    paths += write_run(result, out_dir)
    paths += result.human_scale.write(out_dir) if result.human_scale is not None else []
    if traces is not None:
        first = one_draw(responses, swap=swaps(cfg), samples=cfg.runner.samples, sample=0)
        traces.close(first)
    if mlrun is not None:
        log_run(mlrun, result, paths)
    return result


def _calibrate(prepared: PreparedRun, frame: Any, responses: dict[int, Any]) -> Any:
    """Calibration maps and the judge's probability calibration (:mod:`judgekit.calibrated`):
    with ``stats.calibrate``/``stats.apply_calibration``, or when the judge returned logprobs."""
    cfg = prepared.config
    logprobs = cfg.judge.logprobs and frame["judge_expected"].notna().any()
    if prepared.calibration is None and cfg.stats.calibrate == "none" and not logprobs:
        return None
    from judgekit.calibrated import calibrate

    swap = swaps(cfg)
    first, _ = split_orders(
        one_draw(responses, swap=swap, samples=cfg.runner.samples, sample=0), swap=swap
    )
    return calibrate(cfg, prepared.examples, frame, prepared.calibration, first)


def _write_calibration(result: RunResult, out_dir: Path) -> list[Path]:
    if result.calibration is None:
        return []
    from judgekit.calibrated import write_calibration

    return write_calibration(result.calibration, out_dir)
