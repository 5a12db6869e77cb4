"""``judgekit.evaluate``: the same pipeline as the CLI, for quick in-process checks.

import judgekit
result = judgekit.evaluate(
    judge="openai_compatible", prompt="v1", score="helpfulness",
    dataset=[{"prompt": "What is the capital of France?", "response": "Paris."},
             {"prompt": "What should I eat for breakfast?", "response": "Eggs."}],
    overrides=["judge.model=openai/NAME", "judge.api_base=http://127.0.0.1:8000/v1"],
)
result.row_scores, result.aggregate, result.agreement
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from judgekit.config.schema import (
    HELPSTEER2_SCORES,
    Config,
    DatasetConfig,
    DatasetSource,
    FieldsConfig,
    JudgeConfig,
    PromptConfig,
    ScoreSchemaConfig,
)
from judgekit.pipeline import RunResult, run

if TYPE_CHECKING:
    from judgekit.auditing import AuditResult
    from judgekit.optimizer import OptimizationResult

__all__ = ["audit", "build_config", "evaluate", "optimize"]


def _override(group: str, value: Any) -> list[str]:
    return [f"{group}={value}"] if isinstance(value, str) else []


def _dataset(value: Any, fields: FieldsConfig | None) -> DatasetConfig | None:
    """A DatasetConfig from rows, a path or a config; None means a config-group name."""
    if isinstance(value, DatasetConfig):
        return value
    if isinstance(value, list):
        rows = [dict(r) for r in value]
        return DatasetConfig(
            name="inline",
            source=DatasetSource.inline,
            rows=rows,
            fields=fields or _inline_fields(rows),
        )
    if isinstance(value, Path) or (isinstance(value, str) and Path(value).suffix):
        return DatasetConfig(
            name=Path(value).name,
            source=DatasetSource.file,
            path=str(value),
            fields=fields or _helpsteer2_fields(),
        )
    return None


def _helpsteer2_fields() -> FieldsConfig:
    """A file in HelpSteer2's schema: prompt, response and the five score columns."""
    return FieldsConfig(scores={name: name for name in HELPSTEER2_SCORES})


def _inline_fields(rows: list[dict[str, Any]]) -> FieldsConfig:
    """Rows in HelpSteer2's schema: human scores from whichever of its score columns they have."""
    columns = set().union(*(r.keys() for r in rows))
    return FieldsConfig(scores={name: name for name in HELPSTEER2_SCORES if name in columns})


def build_config(
    judge: str | JudgeConfig,
    prompt: str | PromptConfig,
    score: str | ScoreSchemaConfig,
    dataset: str | Path | list[dict[str, Any]] | DatasetConfig,
    *,
    parallelism: int | None = None,
    fields: FieldsConfig | None = None,
    overrides: list[str] | None = None,
    config_dir: str | Path | None = None,
) -> Config:
    """Compose a typed Config: names go through Hydra's config groups, dataclasses are used as is.

    ``config_dir`` adds your own config groups (as ``judgekit --config-dir DIR`` does).
    """
    from judgekit.config.compose import compose_config, to_config

    dataset_cfg = _dataset(dataset, fields)
    names = [
        *_override("judge", judge),
        *_override("prompt", prompt),
        *_override("score", score),
        *([] if dataset_cfg is not None else _override("dataset", dataset)),
        *(overrides or []),
    ]
    dirs = [config_dir] if config_dir is not None else []
    cfg: Config = to_config(compose_config(names, config_dirs=dirs), config_dirs=dirs)
    changes: dict[str, Any] = {}
    for key, value in (("judge", judge), ("prompt", prompt), ("score", score)):
        if not isinstance(value, str):
            changes[key] = value
    if dataset_cfg is not None:
        changes["dataset"] = dataset_cfg
    if parallelism is not None:
        changes["runner"] = replace(cfg.runner, parallelism=parallelism)
    return replace(cfg, **changes)


def evaluate(
    judge: str | JudgeConfig,
    prompt: str | PromptConfig,
    score: str | ScoreSchemaConfig,
    dataset: str | Path | list[dict[str, Any]] | DatasetConfig,
    *,
    parallelism: int | None = None,
    fields: FieldsConfig | None = None,
    overrides: list[str] | None = None,
    out_dir: str | Path | None = None,
    tracking: bool = False,
    config_dir: str | Path | None = None,
) -> RunResult:
    """Judge ``dataset`` in this process and return the scores, aggregates and agreement.

    Nothing is written unless ``out_dir`` is given; MLflow logging needs ``tracking=True`` and an
    ``out_dir`` (the tracking URI comes from the config, ``tracking.uri``). ``config_dir`` adds
    your own config groups: ``evaluate("fake", "my_prompt", ..., config_dir="conf")``.
    """
    cfg = build_config(
        judge,
        prompt,
        score,
        dataset,
        parallelism=parallelism,
        fields=fields,
        overrides=overrides,
        config_dir=config_dir,
    )
    cfg = replace(cfg, tracking=replace(cfg.tracking, enabled=tracking))
    return run(cfg, Path(out_dir) if out_dir is not None else None)


def optimize(
    judge: str | JudgeConfig,
    prompt: str | PromptConfig,
    score: str | ScoreSchemaConfig,
    dataset: str | Path | list[dict[str, Any]] | DatasetConfig,
    *,
    overrides: list[str] | None = None,
    fields: FieldsConfig | None = None,
    tracking: bool = True,
    config_dir: str | Path | None = None,
) -> OptimizationResult:
    """Search a better prompt than ``prompt`` on train/dev and prove it on the held-out test split,
    as ``judgekit optimize`` does; ``optimize.*`` keys go in ``overrides``::

        judgekit.optimize("local_1_5b", "pairwise_v1", "preference", "mtbench_human",
                          overrides=["optimize.method=fewshot", "optimize.budget_calls=300"])

    Candidates are written into ``config_dir`` when one is given (``<config_dir>/prompt/``), else
    into the output directory (``optimize.out_dir``). MLflow logging follows ``tracking``.
    """
    from judgekit.optimizer import optimize_config

    cfg = build_config(
        judge, prompt, score, dataset, fields=fields, overrides=overrides, config_dir=config_dir
    )
    cfg = replace(cfg, tracking=replace(cfg.tracking, enabled=tracking))
    dirs = [Path(config_dir)] if config_dir is not None else []
    return optimize_config(cfg, config_dirs=dirs)


def audit(
    judge: str | JudgeConfig,
    prompt: str | PromptConfig,
    score: str | ScoreSchemaConfig,
    dataset: str | Path | list[dict[str, Any]] | DatasetConfig,
    *,
    overrides: list[str] | None = None,
    fields: FieldsConfig | None = None,
    tracking: bool = True,
    config_dir: str | Path | None = None,
) -> AuditResult:
    """Judge the items and counterfactual variants of them, as ``judgekit audit`` does, and
    return each test's paired effect and robustness; ``audit.*`` keys go in ``overrides``::

        judgekit.audit("local_1_5b", "pairwise_v1", "preference", "mtbench_human",
                       overrides=["audit.tests=[position,verbosity]"])

    Tests a project registers (``judgekit.auditing.register_test``) before the call can be
    named in ``audit.tests``. MLflow logging follows ``tracking``.
    """
    from judgekit.auditing import audit_config

    cfg = build_config(
        judge, prompt, score, dataset, fields=fields, overrides=overrides, config_dir=config_dir
    )
    cfg = replace(cfg, tracking=replace(cfg.tracking, enabled=tracking))
    return audit_config(cfg)
