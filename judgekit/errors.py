"""Errors judgekit raises for problems a user can fix.

Every setup problem is raised before any judge call, as one of these, and the CLI prints its
message on one line with exit code 2 (no traceback). Row failures (a judge call that still fails
after retries, an answer that cannot be parsed) are *not* exceptions: they are recorded as data.

    JudgekitError                 base class; ``str(err)`` is the whole user-facing message
    ├── ConfigError               a config key holds a value that cannot work
    │   └── SecretError           the environment variable named by ``judge.api_key_env`` is unset
    ├── DatasetError              a dataset file, column, row or value is unusable
    ├── TemplateError             a prompt template is invalid or names a variable the data lacks
    ├── WeightsError              local model weights are missing or fail their checksum
    ├── EndpointError             the judge endpoint cannot be started or reached at all
    └── RunError                  a run stopped on purpose (a failed row with
                                  ``runner.ignore_request_failure=false``, coverage below
                                  ``runner.min_coverage``); results computed so far are kept
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DatasetError",
    "EndpointError",
    "JudgekitError",
    "RunError",
    "SecretError",
    "TemplateError",
    "WeightsError",
]


class JudgekitError(Exception):
    """A problem the user can fix; the message names the key, file, row or value and the fix."""

    exit_code: int = 2


class ConfigError(JudgekitError):
    """A configuration value that cannot work (wrong range, unknown choice, bad combination)."""


class SecretError(ConfigError):
    """The environment variable that should hold the judge's API key is not set."""


class DatasetError(JudgekitError):
    """A dataset file, column, row or human score that cannot be used."""


class TemplateError(JudgekitError):
    """A prompt template that is invalid or uses a variable the data does not have."""


class WeightsError(JudgekitError):
    """Local model weights that are missing, incomplete, or fail their sha256 check."""


class EndpointError(JudgekitError):
    """A judge endpoint that cannot be started or reached at all."""


class RunError(JudgekitError):
    """A run stopped on purpose after it started; what was computed is kept and reported."""

    exit_code = 1
