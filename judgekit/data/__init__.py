"""Data: sources (hub, files, inline) and adapters → :class:`Example` rows, and seeded sampling."""

from __future__ import annotations

from judgekit.data.adapters import (
    ADAPTERS,
    PANDALM_LABELS,
    USR_QUALITIES,
    get_adapter,
    pandalm,
    register,
    usr_topicalchat,
)
from judgekit.data.loading import (
    FILE_FORMATS,
    Example,
    find_incomplete,
    load_examples,
    load_rows,
    to_examples,
)
from judgekit.data.sampling import (
    sample_examples,
)

__all__ = [
    "ADAPTERS",
    "Example",
    "FILE_FORMATS",
    "PANDALM_LABELS",
    "USR_QUALITIES",
    "find_incomplete",
    "get_adapter",
    "load_examples",
    "load_rows",
    "pandalm",
    "register",
    "sample_examples",
    "to_examples",
    "usr_topicalchat",
]
