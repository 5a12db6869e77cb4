"""``judgekit doctor [-cd DIR] [overrides]``: check the judge endpoint, the key, the data and MLflow."""

from __future__ import annotations

from judgekit.cli.errors import report
from judgekit.errors import ConfigError

__all__ = ["main"]


def main(argv: list[str]) -> int:
    """Compose the config from ``argv`` overrides, run the checks, print them, return the code."""
    from judgekit.config.compose import compose_config, to_config
    from judgekit.config.userdirs import split_config_dirs
    from judgekit.doctor import run_checks
    from judgekit.logs import quiet_third_party_loggers

    quiet_third_party_loggers()
    try:
        overrides, dirs = split_config_dirs(argv)
        cfg = to_config(compose_config(overrides, config_dirs=dirs), config_dirs=dirs)
    except ConfigError as err:
        return report(err, code=2)
    checks = run_checks(cfg)
    for check in checks:
        print(f"[{'ok' if check.ok else 'FAIL'}] {check.name}: {check.detail}")
    return 0 if all(c.ok for c in checks) else 1
