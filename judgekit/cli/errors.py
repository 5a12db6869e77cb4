"""How every ``judgekit`` front end reports a problem: one line, and the exit code that goes with it.

Setup problems (``JudgekitError``) print ``judgekit: error: <message>`` on stderr and exit with the
error's code (2 for bad input, 1 for a run that stopped); argument mistakes become the same line
through :class:`Parser`. Nothing below the CLI prints errors: it raises them.
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from judgekit.errors import ConfigError, JudgekitError

__all__ = ["Parser", "error_line", "report"]


def error_line(message: object) -> str:
    """The one line a problem is printed as."""
    return f"judgekit: error: {message}"


def report(err: JudgekitError | str, code: int | None = None) -> int:
    """Print ``err`` as one line on stderr; returns its exit code (or ``code``)."""
    print(error_line(err), file=sys.stderr)
    if code is not None:
        return code
    return err.exit_code if isinstance(err, JudgekitError) else 2


class Parser(argparse.ArgumentParser):
    """An argument parser whose mistakes are setup errors: one ``judgekit: error:`` line, exit 2."""

    def error(self, message: str) -> NoReturn:
        raise ConfigError(f"{message} (see {self.prog} --help)")
