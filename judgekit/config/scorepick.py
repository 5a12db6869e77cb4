"""Which score of a schema a command works on (``optimize.score``, ``audit.score``)."""

from __future__ import annotations

from typing import Any

from judgekit.errors import ConfigError

__all__ = ["pick_score"]


def pick_score(key: str, name: str | None, score: Any, dataset: Any) -> Any:
    """The score ``name`` (the config key ``key``'s value) of ``score``; null: the first one the
    dataset has human labels for, else the first."""
    by_name = {s.name: s for s in score.scores}
    if name is not None:
        if name not in by_name:
            raise ConfigError(
                f"{key}: {name!r} is not a score of score={score.name}; "
                f"its scores: {', '.join(by_name)}"
            )
        return by_name[name]
    labelled = [s for s in score.scores if s.name in dataset.fields.scores]
    return labelled[0] if labelled else score.scores[0]
