"""``judgekit audit``: check → perturb → judge → effects → report, in order.

1. Check the plan and load, sample and render the data (``pipeline.prepare``); build every
   variant of every test (:mod:`judgekit.auditing.perturbations`) and render it too: every setup
   error surfaces before the first call.
2. Judge the originals once, then each variant, as ordinary examples (ids
   ``<id>::<test>/<variant>``) through ``pipeline.judge_and_score``: the run's own client,
   response cache, runner, parser and agreement report. A rerun sends no call.
3. Compute each variant's and each test's paired effect and robustness
   (:mod:`judgekit.auditing.effects`) on the audited score.
4. Write and log (:mod:`judgekit.auditing.report`): ``audit.csv``, ``forest.png``,
   ``results.parquet`` (every item's original and variant text and verdicts), ``summary.json``;
   an MLflow parent run with ``audit/<test>/effect`` (``_ci_low``, ``_ci_high``) and
   ``audit/<test>/robustness``, and a child run per variant (and one for the originals).
"""

from __future__ import annotations

import importlib
import logging
import os
import secrets
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from judgekit.auditing.effects import (
    Effect,
    clusters_of,
    contrast_effect_of,
    effect_of,
    preference_for,
)
from judgekit.auditing.registry import AuditTest, Context, Perturbed, Variant, resolve_tests
from judgekit.auditing.report import log_audit, parent_run, write_audit
from judgekit.auditing.result import AuditResult, JudgedVariant
from judgekit.config.audit import audited_score
from judgekit.config.schema import Config, ScoreSpec
from judgekit.design import render_all, swaps
from judgekit.errors import ConfigError, RunError
from judgekit.pipeline import (
    PreparedRun,
    RunResult,
    client_for,
    judge_and_score,
    local_judge,
    prepare,
)
from judgekit.records import Example

__all__ = ["Planned", "audit_config", "plan_variants"]

log = logging.getLogger("judgekit")


def audit_config(cfg: Config) -> AuditResult:
    """Run ``judgekit audit`` for the composed ``cfg`` (see the module docstring)."""
    spec, tests = check_audit(cfg)
    out_dir = _out_dir(cfg)
    prepared = prepare(cfg)
    ctx = Context(
        _kind(spec),
        cfg.audit,
        spec.name,
        cfg.prompt,
        cfg.stats.confidence,
        cfg.judge.model,
        spec,
        grouped=bool(cfg.dataset.fields.group),
    )
    for test in tests:
        if test.check is not None:
            test.check(prepared.examples, ctx)
    planned = plan_variants(cfg, prepared.examples, tests, ctx)
    for plan in planned:  # every template error of every variant, before any call
        examples = [p.example for p in plan.perturbed]
        render_all(examples, plan.config.prompt, cfg.score, swap=False)
    with ExitStack() as stack:
        parent = stack.enter_context(parent_run(cfg) if cfg.tracking.enabled else nullcontext())
        original, judged = _judge_everything(stack, prepared, planned)
        result = AuditResult(cfg, spec.name, original, judged, out_dir=out_dir)
        result.effects = effects_of(result, prepared.examples, tests, ctx)
        result.figures = figures_of(result, prepared.examples, tests, ctx)
        result.rows = results_rows(result, prepared.examples, ctx, tests)
        if parent is not None:
            result.run_id = parent.run_id  # before summary.json is written
        paths = write_audit(result)
        if parent is not None:
            log_audit(parent, result, paths)
            _check_logged(result, parent)
    return result


def _check_logged(result: AuditResult, parent: Any) -> None:
    """A store that failed while the audit was logged: the outputs are kept, the audit exits 1."""
    if parent.failure is None:
        return
    from judgekit.tracking.store import display_uri, scrub

    uri = result.config.tracking.uri
    err = RunError(
        f"tracking.uri: logging to {display_uri(uri)} failed ({scrub(parent.failure, uri)}); "
        f"not logged: {', '.join(parent.not_logged)}; the outputs are in {result.out_dir}; "
        "rerun the same command with another audit.out_dir once the store answers: the "
        "response cache makes it free"
    )
    err.result = result  # type: ignore[attr-defined]  # the CLI prints the table first
    raise err


def check_audit(cfg: Config) -> tuple[ScoreSpec, list[AuditTest]]:
    """The audited score and the tests, checked (``audit.modules`` imported first)."""
    import judgekit.auditing.commit_first
    import judgekit.auditing.perturbations
    import judgekit.auditing.self_preference  # noqa: F401  (the built-in tests register)

    for module in cfg.audit.modules:
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise ConfigError(f"audit.modules: cannot import {module!r} ({err})") from None
        except ConfigError:
            raise
        except Exception as err:  # the project's module failed while it loaded
            raise ConfigError(
                f"audit.modules: importing {module!r} failed: {type(err).__name__}: {err}"
            ) from None
    spec = audited_score(cfg.audit, cfg.score, cfg.dataset)
    tests = resolve_tests(list(cfg.audit.tests), _kind(spec))
    if cfg.judge.is_panel:
        raise ConfigError("judge: a judge panel cannot be audited yet; audit one member's judge")
    if swaps(cfg):
        raise ConfigError(
            "judge.swap: true is not used by judgekit audit, whose position test swaps each pair "
            "itself; use judge.swap=false"
        )
    if cfg.runner.samples > 1:
        raise ConfigError(
            f"runner.samples: {cfg.runner.samples} draws per request are not supported by "
            "judgekit audit yet; use runner.samples=1"
        )
    if cfg.runner.rejudge:
        raise ConfigError("runner.rejudge: not available with judgekit audit; leave it unset")
    return spec, tests


def _kind(spec: ScoreSpec) -> str:
    return "preference" if spec.kind == "preference" else "pointwise"


@dataclass
class Planned:
    """A variant to judge: its examples (aligned with the originals) and its config."""

    variant: Variant
    perturbed: list[Perturbed]
    config: Config


def plan_variants(
    cfg: Config, examples: list[Example], tests: list[AuditTest], ctx: Context
) -> list[Planned]:
    """Every variant of every test, each a list of perturbed examples aligned with
    ``examples``: a pure function of the config, the examples and the tests."""
    planned = []
    for test in tests:
        if test.perturb is None:
            continue
        config = test.configure(cfg, ctx) if test.configure is not None else cfg
        variants = test.variants(ctx.audit)
        if not any(v.headline for v in variants):
            raise ConfigError(
                f"audit.tests: {test.name!r} has no variant to measure its effect with these "
                f"settings ({', '.join(v.name for v in variants) or 'none'}); e.g. "
                "audit.filler_lengths must name at least one length for verbosity"
            )
        for variant in variants:
            perturbed = [test.perturb(e, variant, ctx) for e in examples]
            planned.append(Planned(variant, perturbed, config))
    return planned


def _judge_everything(
    stack: ExitStack, prepared: PreparedRun, planned: list[Planned]
) -> tuple[RunResult, list[JudgedVariant]]:
    """The originals' result, then each variant's, judged with one cache and judge."""
    from judgekit.judge.caching import cached, open_cache

    cfg = prepared.config
    cache = open_cache(stack, cfg)
    judge, _ = local_judge(stack, cfg.judge)

    def judged(examples: list[Example], config: Config, what: str) -> RunResult:
        log.info("audit: judging %s (%d examples)", what, len(examples))
        run = replace(prepared, config=config, examples=examples)
        resolved = replace(config.judge, model=judge.model, api_base=judge.api_base)
        result, _ = judge_and_score(run, cached(client_for(run, resolved), cache, config))
        return result

    original = judged(prepared.examples, cfg, "the originals")
    variants = []
    for plan in planned:
        examples = [p.example for p in plan.perturbed]
        result = judged(examples, plan.config, f"{plan.variant.test}/{plan.variant.name}")
        variants.append(JudgedVariant(plan.variant, plan.perturbed, result))
    return original, variants


def statistic(frame: pd.DataFrame, score: str, kind: str, sides: list[str | None]) -> np.ndarray:
    """Per example (in order): the judge's score, or its preference for the side given."""
    rows = frame[frame["score"] == score].sort_values("example_index")
    values = rows["judge"].to_numpy(dtype=float)
    if kind != "preference":
        return values
    return preference_for(values, np.array([s or "b" for s in sides]))


def effects_of(
    result: AuditResult, examples: list[Example], tests: list[AuditTest], ctx: Context
) -> list[Effect]:
    """Each test's headline effect, then each of its variants' effects."""
    cfg, kind = result.config, _kind(_spec(result))
    clusters = clusters_of(examples, ctx.grouped)
    common: dict[str, Any] = {
        "resamples": cfg.audit.resamples,
        "confidence": cfg.stats.confidence,
        "seed": cfg.audit.seed,
    }
    found = []
    for test in tests:
        if test.compare is not None:
            rows = _score_rows(result.original.results, result.score)
            paired = test.compare(examples, rows, ctx)
            keep = paired.applies
            if paired.contrast is not None:
                found.append(
                    contrast_effect_of(
                        test.name,
                        paired.baseline[keep],
                        paired.observed[keep],
                        paired.contrast[keep],
                        clusters[keep],
                        **common,
                    )
                )
                continue
            found.append(
                effect_of(
                    test.name,
                    "",
                    paired.baseline[keep],
                    paired.observed[keep],
                    clusters[keep],
                    **common,
                )
            )
            continue
        mine = [v for v in result.variants if v.variant.test == test.name]
        pairs = {v.variant.name: _pair(result, v, kind) for v in mine}
        head = [pairs[v.variant.name] for v in mine if v.variant.headline]
        if head:
            before = np.column_stack([h[0] for h in head])  # each variant's own baseline
            after = np.column_stack([h[1] for h in head])
            found.append(effect_of(test.name, "", before, after, clusters, **common))
        else:
            found.append(Effect(test.name, "", 0, len(examples), *(4 * [np.nan])))
        for v in mine:
            y0, y1 = pairs[v.variant.name]
            found.append(effect_of(test.name, v.variant.name, y0, y1, clusters, **common))
    return found


def figures_of(
    result: AuditResult, examples: list[Example], tests: list[AuditTest], ctx: Context
) -> dict[str, dict[str, Any]]:
    """Each test's further figures on the originals (its ``summarise``), by test."""
    rows = _score_rows(result.original.results, result.score)
    found: dict[str, dict[str, Any]] = {}
    for test in tests:
        figures: dict[str, Any] = {}
        if test.summarise is not None:
            figures |= test.summarise(examples, rows, ctx)
        if test.summarise_judged is not None:
            variants = {
                v.variant.name: _score_rows(v.result.results, result.score)
                for v in result.variants
                if v.variant.test == test.name
            }
            figures |= test.summarise_judged(examples, rows, variants, ctx)
        if figures:
            found[test.name] = figures
    return found


def _spec(result: AuditResult) -> ScoreSpec:
    return next(s for s in result.config.score.scores if s.name == result.score)


def _pair(result: AuditResult, judged: JudgedVariant, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """The statistic on the variant's baseline (the originals, or the variant its
    ``baseline`` names) and on the variant, per item."""
    score = result.score
    base = _baseline(result, judged)
    if base is None:
        sides = [p.target for p in judged.perturbed]
        before = statistic(result.original.results, score, kind, sides)
    else:
        sides = [p.target_variant for p in base.perturbed]
        before = statistic(base.result.results, score, kind, sides)
    after = statistic(
        judged.result.results, score, kind, [p.target_variant for p in judged.perturbed]
    )
    return before, after


def _baseline(result: AuditResult, judged: JudgedVariant) -> JudgedVariant | None:
    """The judged variant ``judged`` is compared with; None: the originals."""
    name = judged.variant.baseline
    if not name:
        return None
    for other in result.variants:
        if other.variant.test == judged.variant.test and other.variant.name == name:
            return other
    raise ConfigError(
        f"audit test {judged.variant.test!r}: variant {judged.variant.name!r} is compared with "
        f"{name!r}, which the test does not have"
    )


def results_rows(
    result: AuditResult, examples: list[Example], ctx: Context, tests: list[AuditTest]
) -> pd.DataFrame:
    """``results.parquet``: one row per (item, variant) of the audited score, with the variant's
    text and item, both verdicts and the statistic compared; a comparison test's rows (as
    ``self_preference``) are the originals it applies to, its baseline (the humans') and
    observed (the judge's) statistic."""
    kind = _kind(_spec(result))
    original = _score_rows(result.original.results, result.score)
    frames = [
        _compared_rows(result, examples, ctx, test, original) for test in tests if test.compare
    ]
    for judged in result.variants:
        y0, y1 = _pair(result, judged, kind)
        y_original = statistic(
            result.original.results, result.score, kind, [q.target for q in judged.perturbed]
        )
        after = _score_rows(judged.result.results, result.score)
        base = _baseline(result, judged)
        base_rows = original if base is None else _score_rows(base.result.results, result.score)
        p = judged.perturbed
        frames.append(
            pd.DataFrame(
                {
                    "example_id": [e.id for e in examples],
                    "variant_id": [q.example.id for q in p],
                    "test": judged.variant.test,
                    "variant": judged.variant.name,
                    "headline": judged.variant.headline,
                    "group": [e.group for e in examples],
                    "cluster": clusters_of(examples, ctx.grouped),
                    "score": result.score,
                    "human": original["human"].to_numpy(),
                    "changed_field": [q.changed_field for q in p],
                    "original_text": [
                        _original_text(e, q) for e, q in zip(examples, p, strict=True)
                    ],
                    "variant_text": [q.text for q in p],
                    "variant_item": [_json(q.example.item) for q in p],
                    "target": [q.target for q in p],
                    "target_variant": [q.target_variant for q in p],
                    "judge_original": original["judge"].to_numpy(),
                    "judge_variant": after["judge"].to_numpy(),
                    "baseline": judged.variant.baseline or "original",
                    "judge_baseline": base_rows["judge"].to_numpy(),
                    "statistic_original": y_original,
                    "statistic_baseline": y0,
                    "statistic_variant": y1,
                    "difference": y1 - y0,
                    "failure_original": original["failure_reason"].to_numpy(),
                    "failure_variant": after["failure_reason"].to_numpy(),
                }
            )
        )
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _compared_rows(
    result: AuditResult,
    examples: list[Example],
    ctx: Context,
    test: AuditTest,
    original: pd.DataFrame,
) -> pd.DataFrame:
    """A comparison test's rows in ``results.parquet``: the examples it applies to."""
    assert test.compare is not None
    paired = test.compare(examples, original, ctx)
    keep = np.asarray(paired.applies, dtype=bool)
    frame = pd.DataFrame(
        {
            "example_id": [e.id for e in examples],
            "variant_id": [e.id for e in examples],
            "test": test.name,
            "variant": "",
            "headline": True,
            "group": [e.group for e in examples],
            "cluster": clusters_of(examples, ctx.grouped),
            "score": result.score,
            "human": original["human"].to_numpy(),
            "system": [e.system for e in examples],
            "judge_original": original["judge"].to_numpy(),
            "baseline": "human",
            "statistic_baseline": paired.baseline,
            "statistic_variant": paired.observed,
            "difference": paired.observed - paired.baseline,
            "contrast": paired.contrast if paired.contrast is not None else True,
            "failure_original": original["failure_reason"].to_numpy(),
        }
    )
    return frame[keep].reset_index(drop=True)


def _score_rows(frame: pd.DataFrame, score: str) -> pd.DataFrame:
    return frame[frame["score"] == score].sort_values("example_index").reset_index(drop=True)


def _original_text(example: Example, perturbed: Perturbed) -> str:
    return str(example.item.get(perturbed.changed_field.split(",")[0], ""))


def _json(item: dict[str, Any]) -> str:
    import json

    return json.dumps(item, ensure_ascii=False, sort_keys=True, default=str)


def _out_dir(cfg: Config) -> Path:
    """Where the outputs go (made once every check has passed); a finished audit's is refused."""
    if cfg.audit.out_dir:
        out = Path(cfg.audit.out_dir).resolve()
    else:
        now = datetime.now()
        stamp = f"{now:%H-%M-%S}-{cfg.judge.name}-{cfg.prompt.name}-{secrets.token_hex(3)}"
        out = (Path("outputs") / "audit" / f"{now:%Y-%m-%d}" / stamp).resolve()
    if (out / "summary.json").exists():
        raise ConfigError(
            f"audit.out_dir: {out} holds a finished audit (summary.json); give another directory "
            "(the same command replays from the cache, sending no call)"
        )
    if out.exists() and not out.is_dir():
        raise ConfigError(f"audit.out_dir: {out} is a file; give a directory")
    existing = next(p for p in (out, *out.parents) if p.exists())
    if not existing.is_dir():
        raise ConfigError(f"audit.out_dir: {existing} is a file, so {out} cannot be made")
    if not os.access(existing, os.W_OK):
        raise ConfigError(f"audit.out_dir: {existing} is not writable")
    return out
