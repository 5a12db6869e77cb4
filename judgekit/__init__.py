"""judgekit: declarative LLM-as-a-judge experiments, scored against human labels.

The public API is small: :func:`evaluate` runs a judge in this process, :func:`submit` runs it
as a durable job (:class:`Job`) on a local process or Slurm, :func:`optimize` searches a better
prompt and proves it on held-out data, :func:`audit` measures a judge's biases; the config dataclasses
describe a run; the errors are what a user can fix. Heavy libraries (litellm, mlflow, datasets)
load only when a run needs them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from judgekit.config.schema import (
    Config,
    DatasetConfig,
    FieldsConfig,
    JudgeConfig,
    Message,
    PromptConfig,
    ScoreSchemaConfig,
    ScoreSpec,
)
from judgekit.errors import ConfigError, DatasetError, JudgekitError, RunError, TemplateError

if TYPE_CHECKING:
    from judgekit.api import audit, build_config, evaluate, optimize
    from judgekit.auditing import AuditResult
    from judgekit.jobs import Job, JobStatus, submit
    from judgekit.optimizer import OptimizationResult
    from judgekit.pipeline import RunResult

_LAZY = {
    "audit": "judgekit.api",
    "AuditResult": "judgekit.auditing",
    "build_config": "judgekit.api",
    "evaluate": "judgekit.api",
    "optimize": "judgekit.api",
    "OptimizationResult": "judgekit.optimizer",
    "RunResult": "judgekit.pipeline",
    "Job": "judgekit.jobs",
    "JobStatus": "judgekit.jobs",
    "submit": "judgekit.jobs",
}


def __getattr__(name: str) -> Any:
    """Load the pipeline (pandas, scipy) only when its names are first used."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'judgekit' has no attribute {name!r}")


__all__ = [
    "AuditResult",
    "Config",
    "ConfigError",
    "DatasetConfig",
    "DatasetError",
    "FieldsConfig",
    "Job",
    "JobStatus",
    "JudgeConfig",
    "JudgekitError",
    "Message",
    "OptimizationResult",
    "PromptConfig",
    "RunError",
    "RunResult",
    "ScoreSchemaConfig",
    "ScoreSpec",
    "TemplateError",
    "audit",
    "build_config",
    "evaluate",
    "optimize",
    "submit",
]
__version__ = "0.1.0"
