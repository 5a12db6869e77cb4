"""Where judgekit keeps its own files on this machine."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["default_cache_dir"]


def default_cache_dir() -> Path:
    """judgekit's cache directory (responses, assembled weights): ``$JUDGEKIT_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/judgekit``, else ``~/.cache/judgekit``; an empty variable counts as unset."""
    if explicit := os.environ.get("JUDGEKIT_CACHE_DIR"):
        return Path(explicit).expanduser()
    if xdg := os.environ.get("XDG_CACHE_HOME"):
        return Path(xdg).expanduser() / "judgekit"
    return Path.home() / ".cache" / "judgekit"
