"""``judgekit audit [-cd DIR] [overrides]``: the command line of :mod:`judgekit.auditing`."""

from __future__ import annotations

import logging
import sys

from judgekit.cli.errors import report
from judgekit.errors import JudgekitError

__all__ = ["main"]

USAGE = """usage: judgekit audit [-cd DIR] [GROUP=OPTION ...] [audit.KEY=VALUE ...]

Judge the dataset's items and counterfactual variants of them (the pair swapped, content-free
filler, a fake citation, ...) and report, per test, the paired effect on the score (or on the
preference for the changed response) with a clustered bootstrap interval, and the robustness rate.

  judgekit audit judge=local_1_5b prompt=pairwise_v1 score=preference dataset=mtbench_human \\
      audit.tests=[position,verbosity,authority]

audit.* keys (conf/audit/default.yaml): tests, score, seed, filler_lengths, truncate_fraction,
authority_styles, resamples, judge_family, system_fields, modules, out_dir.
  judgekit audit +experiment=local_audit_mtbench      # the README's audit of the local judge"""


def main(argv: list[str]) -> int:
    """Compose the config from ``argv``, audit, print the table."""
    from judgekit.auditing import audit_config
    from judgekit.auditing.report import format_text
    from judgekit.config.compose import compose_config, to_config
    from judgekit.config.userdirs import split_config_dirs
    from judgekit.logs import quiet_third_party_loggers

    if argv and argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    quiet_third_party_loggers()
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO, format="[%(asctime)s] %(message)s", stream=sys.stderr
        )
    try:
        overrides, dirs = split_config_dirs(argv)
        cfg = to_config(compose_config(overrides, config_dirs=dirs), config_dirs=dirs)
        result = audit_config(cfg)
    except JudgekitError as err:
        done = getattr(err, "result", None)
        if done is not None:  # audited, but not all of it logged: the table still shows
            print(format_text(done))
            print(f"outputs: {done.out_dir}")
        return report(err)
    print(format_text(result))
    print(f"outputs: {result.out_dir}")
    return 0
