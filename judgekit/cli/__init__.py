"""Front ends: argv in, calls into the layers below, errors printed and exit codes chosen here.

``judgekit`` (:mod:`judgekit.cli.run`), its subcommands (:mod:`judgekit.cli.commands`) and the job
commands (:mod:`judgekit.cli.jobs`). Nothing in judgekit imports this package.
"""

from __future__ import annotations

from judgekit.cli.run import main

__all__ = ["main"]
