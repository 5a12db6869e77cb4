"""``judgekit optimize``: measure → improve → prove, in order.

1. Load, check and render the data with the seed prompt (every setup error before any call);
   split the labelled rows into train / dev / test (:mod:`judgekit.optimizer.split`).
2. Search on train and dev only (:mod:`judgekit.optimizer.search`), within
   ``optimize.budget_calls``; every candidate is written as a prompt file and logged as a child
   MLflow run of the optimisation's parent run, with the best-so-far dev curve on the parent.
3. Choose the candidate with the best dev objective, and judge the held-out test split exactly
   twice, as two ordinary judgekit runs: the seed prompt and the chosen one (composed by Hydra
   from the file just written). Compare them as ``judgekit compare`` does (the same function on
   the same two runs): every statistic with its interval, and the paired, clustered bootstrap
   difference with its interval, p-value and verdict.

Ctrl-C during the search stops it: every candidate judged so far is kept (files, child runs,
``candidates.csv``), the parent run ends KILLED, and :class:`Interrupted` says which was best.
Rerunning the same command retraces the search from the response cache without a call.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import secrets
from contextlib import ExitStack, nullcontext
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from judgekit.config.optimize import default_objective, optimised_score
from judgekit.config.schema import Config, JudgeConfig
from judgekit.errors import ConfigError, JudgekitError
from judgekit.optimizer.candidates import Candidate, instructions_of, write_candidate
from judgekit.optimizer.evaluate import Budget, Evaluator
from judgekit.optimizer.result import OptimizationResult
from judgekit.optimizer.search import Search, fewshot_search, gepa_search
from judgekit.optimizer.split import Splits, split_examples
from judgekit.pipeline import (
    PreparedRun,
    RunResult,
    client_for,
    local_judge,
    prepare,
    resolve_api_key,
    run,
)

__all__ = ["Interrupted", "OptimizationResult", "optimize_config"]

log = logging.getLogger("judgekit")
KIND_TAG = "judgekit.kind"


class Interrupted(JudgekitError, KeyboardInterrupt):
    """Ctrl-C stopped the search; what it found is kept. A KeyboardInterrupt too, so the
    optimisation's MLflow run ends KILLED, as an interrupted run does."""

    exit_code = 130


def optimize_config(cfg: Config, *, config_dirs: list[Path] | None = None) -> OptimizationResult:
    """Run ``judgekit optimize`` for the composed ``cfg`` (see the module docstring)."""
    opt, dirs = cfg.optimize, list(config_dirs or [])
    spec = optimised_score(opt, cfg.score, cfg.dataset)
    objective = opt.objective or default_objective(spec)
    if spec.name not in cfg.dataset.fields.scores:
        raise ConfigError(
            f"optimize.score: {spec.name!r} has no human labels in dataset={cfg.dataset.name} "
            f"(dataset.fields.scores: {', '.join(cfg.dataset.fields.scores) or 'none'})"
        )
    if cfg.runner.samples > 1:
        raise ConfigError(
            f"runner.samples: {cfg.runner.samples} draws per request are not supported by "
            "judgekit optimize yet; use runner.samples=1"
        )
    if cfg.cache.mode != "read_write":
        raise ConfigError(
            f"cache.mode: {cfg.cache.mode} cannot be used by judgekit optimize; it needs "
            "read_write (the budget and a rerun rely on every answer being stored)"
        )
    reflection = _reflection_judge(cfg, dirs)
    out_dir = _out_dir(cfg)
    prepared = prepare(cfg)
    splits = split_examples(prepared.examples, spec.name, list(opt.split), seed=opt.seed)
    _check_budget(cfg, splits)
    home = dirs[0].resolve() if dirs else out_dir / "conf"
    with ExitStack() as stack:
        return _optimize(stack, cfg, prepared, splits, reflection, out_dir, home, dirs, objective)


def _optimize(
    stack: ExitStack,
    cfg: Config,
    prepared: PreparedRun,
    splits: Splits,
    reflection: JudgeConfig | None,
    out_dir: Path,
    home: Path,
    dirs: list[Path],
    objective: str,
) -> OptimizationResult:
    from judgekit.judge.caching import open_cache

    opt = cfg.optimize
    spec = optimised_score(opt, cfg.score, cfg.dataset)
    cache = open_cache(stack, cfg)
    judge, _ = local_judge(stack, cfg.judge)
    if reflection is not None and reflection.local is not None:
        same = cfg.judge.local is not None and reflection.local == cfg.judge.local
        reflection = judge if same else local_judge(stack, reflection)[0]
    if cfg.optimize.method != "fewshot" and not cfg.optimize.reflection_model:
        log.info("optimize.reflection_model not set: the judge reflects on its own answers")
    _make_out_dir(out_dir)  # once every setup check has passed and the judge is up
    _write_splits(out_dir, splits)
    parent = stack.enter_context(_parent_run(cfg, objective, splits))
    _log_setup(parent, cfg, objective, splits)
    budget = Budget(opt.budget_calls)
    evaluator = Evaluator(
        cfg,
        judge,
        cache=cache,
        api_key=prepared.api_key,
        budget=budget,
        spec=spec,
        objective=objective,
        allowed=[*splits.train, *splits.dev],
    )
    seed = Candidate(cfg.prompt.name, cfg.prompt, instructions=instructions_of(cfg.prompt))
    search = Search(cfg, evaluator, seed, home, splits.train, splits.dev)
    try:
        _search(search, cfg, reflection, cache, prepared.api_key)
    except KeyboardInterrupt:
        search.stopped = "interrupted"
    except BaseException as err:  # SIGTERM's SystemExit, a run error: recorded, then raised
        search.stopped, search.note = "error", str(err).splitlines()[0] if str(err) else ""
        raise
    finally:
        _record(search, parent, out_dir, objective)
    chosen = search.best()
    if search.stopped == "interrupted":
        raise Interrupted(
            f"interrupted: the search kept {len(search.candidates)} candidates; best on dev: "
            f"{chosen.name} ({objective} {_fmt(chosen.dev)}); files in {home / 'prompt'}; "
            "rerun the same command to resume from the cache"
        )
    run_id = getattr(parent, "run_id", None)
    tests = _judge_test(cfg, prepared, splits, seed, chosen, judge, dirs, home, out_dir, run_id)
    paired, table, command = _compare(cfg, tests, spec, objective)
    calls = {
        "spent": budget.spent,
        "judge": budget.judge_calls,
        "reflection": budget.reflection_calls,
    }
    result = OptimizationResult(
        spec.name,
        objective,
        seed,
        chosen,
        search.candidates,
        _sizes(splits),
        out_dir,
        tests[0],
        tests[1] if len(tests) > 1 else None,
        paired,
        calls,
        search.stopped,
        run_id,
        table,
        command,
        search.note,
    )
    _finish(result, parent)
    return result


def _search(
    search: Search, cfg: Config, reflection: JudgeConfig | None, cache: Any, api_key: str | None
) -> None:
    from judgekit.optimizer.reflection import Reflector

    method, budget = cfg.optimize.method, search.evaluator.budget
    if method == "fewshot":
        fewshot_search(search)
        return
    assert reflection is not None
    reflect = Reflector(
        cfg, reflection, cache=cache, api_key=resolve_api_key(reflection), budget=budget
    )
    if method == "gepa":
        gepa_search(search, reflect)
        return
    limit = budget.limit  # both: instructions with half the budget, then demonstrations
    budget.limit = limit // 2
    gepa_search(search, reflect)
    budget.limit = limit
    fewshot_search(search, base=search.best())


def _reflection_judge(cfg: Config, dirs: list[Path]) -> JudgeConfig | None:
    """The reflection model's judge config: a judge option by name, else a litellm model; the
    run's own judge when none is named."""
    opt = cfg.optimize
    if opt.method == "fewshot":
        return None
    if not opt.reflection_model:  # the judge reflects on its own answers (logged later)
        return _as_reflection(cfg.judge)
    from judgekit.config.compose import compose_config, conf_dir, to_config
    from judgekit.config.userdirs import group_options

    options = {o for d in [conf_dir(), *dirs] for o in group_options(Path(d), "judge")}
    if opt.reflection_model in options:
        composed = compose_config([f"judge={opt.reflection_model}"], config_dirs=dirs)
        judge = _as_reflection(to_config(composed, config_dirs=dirs).judge)
    else:
        from judgekit.optimizer.reflection import litellm_reflection_judge

        _check_litellm_model(opt.reflection_model, sorted(options))
        judge = litellm_reflection_judge(
            opt.reflection_model, opt.reflection_api_base, opt.reflection_api_key_env
        )
    resolve_api_key(judge)  # a missing key is a setup error now, not after the first judge call
    return judge


def _check_budget(cfg: Config, splits: Splits) -> None:
    """The budget must at least pay for judging the seed on dev (``both``: with half of it,
    the instructions' share), before any call."""
    from judgekit.design import per_example, swaps

    opt = cfg.optimize
    seed_on_dev = len(splits.dev) * per_example(swaps(cfg))
    share, what = opt.budget_calls, "optimize.budget_calls"
    if opt.method == "both":
        share, what = opt.budget_calls // 2, "optimize.budget_calls (half of it, with method=both)"
    if share < seed_on_dev:
        raise ConfigError(
            f"{what}: {share} cannot pay for judging the seed prompt on the {len(splits.dev)} "
            f"dev rows ({seed_on_dev} calls), let alone a candidate; give "
            f"{seed_on_dev * (2 if opt.method == 'both' else 1)} or more for "
            f"optimize.budget_calls (a candidate costs about as much again)"
        )


def _check_litellm_model(model: str, options: list[str]) -> None:
    """A reflection model that is no judge option must be a model litellm can route."""
    import litellm

    litellm.suppress_debug_info = True  # its provider list would be printed on stdout
    try:
        litellm.get_llm_provider(model)
    except Exception:  # litellm's BadRequestError: no provider for this name
        raise ConfigError(
            f"optimize.reflection_model: {model!r} is neither a judge option "
            f"({', '.join(options)}) nor a litellm model (provider/name, e.g. "
            "openai/gpt-4o-mini)"
        ) from None


def _as_reflection(judge: JudgeConfig) -> JudgeConfig:
    """A judge config used to write instructions: free text, and room to write them."""
    return replace(judge, structured_output="false", max_tokens=max(judge.max_tokens, 1024))


def _out_dir(cfg: Config) -> Path:
    """Where the outputs go (made later): refused if it holds a finished optimisation, whose
    test runs and summary would be overwritten; an interrupted one's is resumed."""
    if cfg.optimize.out_dir:
        out = Path(cfg.optimize.out_dir).resolve()
    else:
        now = datetime.now()
        stamp = f"{now:%H-%M-%S}-{cfg.prompt.name}-{secrets.token_hex(3)}"
        out = (Path("outputs") / "optimize" / f"{now:%Y-%m-%d}" / stamp).resolve()
    if (out / "summary.json").exists() or any(out.glob("test/*/results.parquet")):
        raise ConfigError(
            f"optimize.out_dir: {out} holds a finished optimisation (summary.json, test runs); "
            "give another directory (the same command replays from the cache, sending no call)"
        )
    if out.exists() and not os.access(out, os.W_OK):
        raise ConfigError(f"optimize.out_dir: {out} is not writable")
    return out


def _make_out_dir(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"optimize.out_dir: cannot create {out} ({err.strerror})") from None


def _write_splits(out_dir: Path, splits: Splits) -> None:
    ids = {name: [e.id for e in splits.part(name)] for name in ("train", "dev", "test")}
    (out_dir / "splits.json").write_text(json.dumps(ids, indent=1) + "\n")


def _sizes(splits: Splits) -> dict[str, int]:
    sizes = {name: len(splits.part(name)) for name in ("train", "dev", "test")}
    return sizes | {"unlabelled": splits.unlabelled}


def _fmt(value: float | None) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.3f}"


# --- MLflow ----------------------------------------------------------------------------------


def _parent_run(cfg: Config, objective: str, splits: Splits) -> Any:
    if not cfg.tracking.enabled:
        return nullcontext(None)
    from judgekit.tracking.runs import mlflow_run

    name = f"optimize-{cfg.judge.name}-{cfg.prompt.name}-{cfg.score.name}-{cfg.dataset.name}"
    tags = {
        KIND_TAG: "optimization",
        "judgekit.judge": cfg.judge.name,
        "judgekit.prompt": cfg.prompt.name,
        "judgekit.score": cfg.score.name,
        "judgekit.dataset": cfg.dataset.name,
    }
    return mlflow_run(cfg.tracking, name, tags, keep_going=True)


def _log_setup(parent: Any, cfg: Config, objective: str, splits: Splits) -> None:
    """The parent run's params: the run's config (the seed), every ``optimize.*`` key, the
    objective in use and the split sizes."""
    if parent is None:
        return
    from judgekit.secrets import redact_config
    from judgekit.tracking.runs import flatten_params

    params = flatten_params(redact_config(cfg))
    params |= {f"optimize.{k}": str(v) for k, v in dataclasses.asdict(cfg.optimize).items()}
    params["optimize.objective"] = objective
    params |= {f"split.{name}": str(n) for name, n in _sizes(splits).items()}
    parent.log_params(params)


def _record(search: Search, parent: Any, out_dir: Path, objective: str) -> None:
    """Write every candidate's prompt file, ``candidates.csv`` and the curve; log them.

    A candidate proposed but never judged (the budget ran out first) is dropped, file and all.
    """
    run_id = getattr(parent, "run_id", None)
    judged = [search.seed]
    for candidate in search.candidates[1:]:
        if candidate.train is None and candidate.dev is None:
            if candidate.path is not None:
                candidate.path.unlink(missing_ok=True)
            continue
        judged.append(candidate)
        header = [
            f"{candidate.name}: found by judgekit optimize ({candidate.method}) from "
            f"{candidate.parent}",
            f"parent: {candidate.parent} · dev {objective}: {_fmt(candidate.dev)}"
            f" · train {objective}: {_fmt(candidate.train)}",
            f"optimisation run: {run_id or 'not tracked'} · output: {out_dir}",
            f"run it: judgekit -cd {search.directory} prompt={candidate.name} ...",
        ]
        candidate.path = write_candidate(candidate, search.directory, header)
    search.candidates[:] = judged
    table = pd.DataFrame(
        [
            {
                "name": c.name,
                "parent": c.parent,
                "method": c.method,
                f"train_{objective}": c.train,
                f"dev_{objective}": c.dev,
                "calls": c.cost,
                "calls_total": c.calls,
                "demos": ",".join(c.demos),
                "path": str(c.path or ""),
            }
            for c in search.candidates
        ]
    )
    table.to_csv(out_dir / "candidates.csv", index=False)
    curve = pd.DataFrame(search.curve, columns=["calls", f"best_dev_{objective}"])
    curve.to_csv(out_dir / "curve.csv", index=False)
    if parent is None:
        return
    _log_children(search, parent, objective)
    for calls, best in search.curve:
        parent.log_metrics({f"best_dev_{objective}": best}, step=calls)
    parent.log_artifacts(
        [out_dir / "candidates.csv", out_dir / "curve.csv", out_dir / "splits.json"]
    )
    parent.set_tags({"judgekit.search_stopped": search.stopped})
    if search.note:
        parent.set_tags({"judgekit.search_note": search.note[:500]})


def _log_children(search: Search, parent: Any, objective: str) -> None:
    from mlflow.entities import RunStatus

    client = parent.client
    for candidate in search.candidates:
        tags = {
            "mlflow.parentRunId": parent.run_id,
            KIND_TAG: "optimization_candidate",
            "judgekit.prompt": candidate.name,
            "judgekit.candidate_parent": candidate.parent or "",
        }
        child = client.create_run(parent.experiment_id, run_name=candidate.name, tags=tags)
        child_id = child.info.run_id
        params = {
            "candidate": candidate.name,
            "parent": candidate.parent or "",
            "method": candidate.method,
        }
        for key, value in params.items():
            client.log_param(child_id, key, value)
        scores = {f"train_{objective}": candidate.train, f"dev_{objective}": candidate.dev}
        for metric, score in scores.items():
            if score is not None:
                client.log_metric(child_id, metric, float(score))
        client.log_metric(child_id, "calls", float(candidate.cost))
        client.log_metric(child_id, "calls_total", float(candidate.calls))
        if candidate.path is not None:
            client.log_artifact(child_id, str(candidate.path))
        client.set_terminated(child_id, RunStatus.to_string(RunStatus.FINISHED))
        candidate.run_id = child_id


# --- the held-out test -----------------------------------------------------------------------


def _judge_test(
    cfg: Config,
    prepared: PreparedRun,
    splits: Splits,
    seed: Candidate,
    chosen: Candidate,
    judge: JudgeConfig,
    dirs: list[Path],
    home: Path,
    out_dir: Path,
    parent_id: str | None,
) -> list[RunResult]:
    """The seed's test run and the chosen candidate's (composed from its file by Hydra)."""
    from judgekit.tracking.runs import dataset_digest

    prompts = (
        [cfg.prompt] if chosen is seed else [cfg.prompt, _compose_prompt(chosen, cfg, home, dirs)]
    )
    digest = dataset_digest(splits.test)
    results = []
    for role, prompt in zip(("seed", "chosen"), prompts, strict=False):
        test_cfg = replace(cfg, prompt=prompt)
        test = PreparedRun(test_cfg, splits.test, prepared.api_key, dataset_digest=digest)
        tags = {"judgekit.optimization": parent_id or "", "judgekit.optimize_role": f"test_{role}"}
        if parent_id:
            tags["mlflow.parentRunId"] = parent_id
        where = out_dir / "test" / f"{role}-{prompt.name}"
        client = client_for(test, judge) if cfg.judge.local is not None else None
        results.append(run(test_cfg, where, prepared=test, tags=tags, client=client))
    return results


def _compose_prompt(chosen: Candidate, cfg: Config, home: Path, dirs: list[Path]) -> Any:
    """The chosen candidate read back through Hydra from its file, as any run would."""
    from judgekit.config.compose import compose_config, to_config

    where = [home, *[d for d in dirs if d != home]]
    kind = ["score=preference"] if any(s.kind == "preference" for s in cfg.score.scores) else []
    composed = compose_config([f"prompt={chosen.name}", *kind], config_dirs=where)
    prompt = to_config(composed, config_dirs=where).prompt
    if [dataclasses.astuple(m)[:2] for m in prompt.messages] != [
        dataclasses.astuple(m)[:2] for m in chosen.prompt.messages
    ]:
        raise JudgekitError(f"prompt={chosen.name}: {chosen.path} does not hold the chosen prompt")
    return prompt


def _compare(
    cfg: Config, tests: list[RunResult], spec: Any, objective: str
) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """Chosen vs seed on test by ``judgekit compare``'s own functions on the two runs (its
    default statistics for the score's kind, and the objective): the paired table, the table
    of each run's statistics with their intervals, and the ``judgekit compare`` command that
    gives the same tables."""
    from judgekit.compare.runs import DEFAULT_STATISTICS, PREFERENCE_STATISTICS
    from judgekit.compare.tables import metrics_table, paired_table

    defaults = PREFERENCE_STATISTICS if spec.kind == "preference" else DEFAULT_STATISTICS
    statistics = list(dict.fromkeys([objective, *defaults]))
    resamples, confidence = cfg.stats.bootstrap_resamples or 1000, cfg.stats.confidence
    common: dict[str, Any] = {"resamples": resamples, "confidence": confidence, "min_shared": 1}
    ids = [str(t.run_id) for t in tests]
    command = (
        f"judgekit compare --tracking-uri {cfg.tracking.uri} --experiment "
        f"{cfg.tracking.experiment} --runs {' '.join(ids)} --baseline {ids[0]} --score "
        f"{spec.name} --statistics {','.join(statistics)} --resamples {resamples} "
        f"--confidence {confidence} --min-shared 1"
    )
    if len(tests) == 2 and cfg.tracking.enabled and all(t.run_id for t in tests):
        import mlflow

        from judgekit.compare import compare

        client = mlflow.MlflowClient(cfg.tracking.uri)
        found = compare(
            client,
            cfg.tracking.experiment,
            run_ids=ids,
            baseline=ids[0],
            scores=[spec.name],
            statistics=statistics,
            **common,
        )
        return found.paired, found.table, command
    runs = [_compared(t, name) for t, name in zip(tests, ("seed", "chosen"), strict=False)]
    table = metrics_table(runs, runs[0], [spec.name], statistics)
    if len(runs) < 2:
        return pd.DataFrame(), table, ""
    paired = paired_table(runs, runs[0], [spec.name], statistics, **common)
    return paired, table, command if cfg.tracking.enabled else ""


def _compared(result: RunResult, name: str) -> Any:
    """A run held in memory as ``judgekit compare`` sees one from MLflow."""
    from judgekit.compare import ComparedRun
    from judgekit.stats.agreement import metrics_from_report

    metrics = metrics_from_report(result.agreement, result.aggregate, result.failures)
    run = ComparedRun(name, name, {}, metrics, {"runner.seed": str(result.config.runner.seed)}, 0)
    run.label, run.results = name, result.results
    specs = result.config.score.scores
    run.ranges = {
        s.name: (float(s.minimum), float(s.maximum))
        for s in specs
        if s.minimum is not None and s.maximum is not None
    }
    run.integer = {s.name: bool(s.integer) for s in specs if s.integer is not None}
    run.kinds = {s.name: str(s.kind) for s in specs}
    return run


def _finish(result: OptimizationResult, parent: Any) -> None:
    """``summary.json`` and the comparison in the output directory, and on the parent run."""
    from judgekit.optimizer.report import summary, write_report

    paths = write_report(result)
    if parent is None:
        return
    parent.log_metrics(summary(result))
    parent.log_artifacts(paths)
    if result.chosen.path is not None:
        parent.log_artifacts([result.chosen.path], "chosen_prompt")
    parent.set_tags({"judgekit.chosen_prompt": result.chosen.name})
