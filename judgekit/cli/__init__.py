"""Front ends: argv in, calls into the layers below, errors printed and exit codes chosen here.

``judgekit`` (:mod:`judgekit.cli.run`), its subcommands (:mod:`judgekit.cli.commands`) and the job
commands (:mod:`judgekit.cli.jobs`). Nothing in judgekit imports this package.

``compose_config``, ``to_config`` and ``conf_dir`` live in :mod:`judgekit.config.compose` (the Hydra
service the CLI and the Python API share); they are re-exported here for scripts written against
the CLI module before the package was layered.
"""

from __future__ import annotations

from judgekit.cli.run import main
from judgekit.config.compose import compose_config, conf_dir, to_config

__all__ = ["compose_config", "conf_dir", "main", "to_config"]
