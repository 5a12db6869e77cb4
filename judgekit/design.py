"""How an example becomes judge requests and back: one request, or the pair in both orders.

With ``judge.swap`` and a preference score, example ``i`` is judged as request ``2i`` (as given)
and ``2i + 1`` (``response_a`` and ``response_b`` exchanged); everything else is one request per
example.
"""

from __future__ import annotations

from dataclasses import replace

from judgekit.config import Config
from judgekit.errors import ConfigError, TemplateError
from judgekit.records import Example

__all__ = ["swaps", "swapped_example"]


def swaps(cfg: Config) -> bool:
    """True when every pair is judged in both orders (``judge.swap`` with a preference score)."""
    if not cfg.judge.swap:
        return False
    if not any(spec.kind == "preference" for spec in cfg.score.scores):
        raise ConfigError(
            f"judge.swap: true needs a preference score (score=preference); "
            f"score {cfg.score.name!r} has none"
        )
    return True


def swapped_example(example: Example) -> Example:
    """The same pair with ``item.response_a`` and ``item.response_b`` exchanged."""
    item = example.item
    if "response_a" not in item or "response_b" not in item:
        raise TemplateError(
            "judge.swap: the data has no item.response_a/item.response_b to swap; map them with "
            "dataset.fields.extra.response_a=<column> and dataset.fields.extra.response_b=<column>"
        )
    swapped = {**item, "response_a": item["response_b"], "response_b": item["response_a"]}
    return replace(example, item=swapped)
