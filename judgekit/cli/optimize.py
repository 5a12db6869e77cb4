"""``judgekit optimize [-cd DIR] [overrides]``: the command line of :mod:`judgekit.optimizer`."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from judgekit.cli.errors import report
from judgekit.errors import JudgekitError

__all__ = ["main"]

USAGE = """usage: judgekit optimize [-cd DIR] [GROUP=OPTION ...] [optimize.KEY=VALUE ...]

Search a better judge prompt than prompt=SEED against the human labels on train/dev, then judge
the held-out test split with the seed and the chosen prompt and compare them (paired bootstrap).

  judgekit optimize judge=local_1_5b prompt=pairwise_v1 score=preference dataset=mtbench_human \\
      optimize.method=fewshot optimize.budget_calls=300

optimize.* keys (conf/optimize/default.yaml): objective, score, split, method (gepa|fewshot|both),
reflection_model, budget_calls, seed, max_demos, minibatch_size, out_dir. Candidates are written
as prompt files into DIR/prompt/ with -cd DIR, else into the output directory's conf/prompt/."""


def main(argv: list[str]) -> int:
    """Compose the config from ``argv``, optimise, print the held-out comparison."""
    from judgekit.config.compose import compose_config, to_config
    from judgekit.config.userdirs import split_config_dirs
    from judgekit.logs import quiet_third_party_loggers
    from judgekit.optimizer import optimize_config
    from judgekit.optimizer.report import format_text

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
        result = optimize_config(cfg, config_dirs=[Path(d) for d in dirs])
    except JudgekitError as err:
        return report(err)
    print(format_text(result))
    print(f"outputs: {result.out_dir}")
    return 0
