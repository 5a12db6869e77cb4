"""A researcher's own config directories (``--config-dir``) and prompt files (``content_file``).

A user config directory holds config groups laid out like judgekit's ``conf/`` (``prompt/``,
``judge/``, ``score/``, ``dataset/``, ``runner/``, ``experiment/``, ...). It is added to Hydra's
search path after judgekit's own tree, exactly where Hydra's ``--config-dir`` puts it, so a user
option may extend a built-in one through its defaults list. A user file with the name of a
built-in option would be silently ignored by Hydra (the first match wins), so it is refused here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from judgekit.errors import ConfigError

__all__ = [
    "CONFIG_DIR_FLAGS",
    "check_config_dirs",
    "content_file_candidates",
    "dirs_digest",
    "group_options",
    "read_content_file",
    "split_config_dirs",
]

CONFIG_DIR_FLAGS = ("--config-dir", "-cd")
"""Hydra's own flags for an added config directory; judgekit's subcommands take them too."""


def split_config_dirs(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """``argv`` without ``--config-dir DIR`` / ``-cd DIR`` / ``--config-dir=DIR``, and the dirs.

    For the subcommands (``doctor``, ``submit``) whose other arguments are overrides or their own
    flags; the Hydra run parses the flag with Hydra's own parser.
    """
    rest: list[str] = []
    dirs: list[str] = []
    items = iter(argv)
    for arg in items:
        flag, sep, value = arg.partition("=")
        if flag in CONFIG_DIR_FLAGS:
            if not sep:
                value = next(items, "")
            if not value:
                raise ConfigError(f"{flag}: give a directory, e.g. {flag} conf")
            dirs.append(value)
        else:
            rest.append(arg)
    return rest, dirs


def check_config_dirs(dirs: Iterable[str | Path], builtin: Path) -> list[Path]:
    """The user config directories as absolute paths; a missing one or a shadowing file is an error."""
    checked: list[Path] = []
    for given in dirs:
        path = Path(given).expanduser().resolve()
        if not path.is_dir():
            what = "is a file, not a directory" if path.exists() else "not found"
            raise ConfigError(
                f"--config-dir {given}: {what} ({path}); give the directory that holds your "
                "config groups (prompt/, dataset/, score/, ...), e.g. the conf/ of `judgekit init`"
            )
        _refuse_shadowing(path, builtin)
        if path not in checked:
            checked.append(path)
    return checked


def _refuse_shadowing(user: Path, builtin: Path) -> None:
    """A user file at a path judgekit's tree also has would never be read: refuse it by name."""
    for file in sorted(user.rglob("*.yaml")):
        relative = file.relative_to(user)
        if not (builtin / relative).is_file():
            continue
        if len(relative.parts) == 1:
            raise ConfigError(
                f"{file}: judgekit's own {relative} is used instead (the first config on the "
                "search path wins); put your defaults in an experiment file "
                "(experiment/NAME.yaml) and select it with experiment=NAME"
            )
        group = "/".join(relative.parts[:-1])
        raise ConfigError(
            f"{file}: judgekit already has a {group} option {relative.stem!r}, which Hydra "
            f"would use instead of yours; give yours another name (e.g. my_{relative.stem}.yaml) "
            f"and select it with {group}=my_{relative.stem}"
        )


def group_options(root: Path, group: str) -> list[str]:
    """The option names of config group ``group`` (``dataset``, ``hydra/launcher``) under ``root``."""
    folder = root / group
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.yaml") if not p.name.startswith("_"))


def dirs_digest(dirs: Sequence[Path]) -> str:
    """sha256 over every file's path (relative to its directory) and content, in order.

    Recorded with a submitted job (and a run's params) so that the exact user configs a run was
    composed from can be told apart later, even after the files were edited.
    """
    digest = hashlib.sha256()
    for root in dirs:
        for file in sorted(p for p in root.rglob("*") if p.is_file()):
            digest.update(str(file.relative_to(root)).encode() + b"\0")
            digest.update(hashlib.sha256(file.read_bytes()).digest())
    return digest.hexdigest()


def content_file_candidates(name: str, search: Sequence[Path]) -> list[Path]:
    """Where ``content_file: NAME`` is looked for: each config directory, then the working one."""
    path = Path(name).expanduser()
    if path.is_absolute():
        return [path]
    return [root / path for root in search] + [Path.cwd() / path]


def read_content_file(name: str, search: Sequence[Path], where: str) -> tuple[str, str]:
    """The text of prompt file ``name`` and its sha256; a ConfigError naming ``where`` if absent."""
    candidates = content_file_candidates(name, search)
    for candidate in candidates:
        if candidate.is_file():
            try:
                data = candidate.read_bytes()
                text = data.decode("utf-8")
            except (OSError, UnicodeDecodeError) as err:
                raise ConfigError(f"{where}: cannot read {candidate}: {err}") from None
            return text, hashlib.sha256(data).hexdigest()
    looked = ", ".join(str(c) for c in dict.fromkeys(candidates))
    raise ConfigError(
        f"{where}: prompt file {name!r} not found; looked in {looked}. Give a path relative to "
        "your config directory (--config-dir) or to the directory you run judgekit in"
    )


def resolve_content_files(cfg: Any, search: Sequence[Path]) -> None:
    """Fill ``content`` of every prompt message that names a ``content_file`` (a DictConfig)."""
    from omegaconf import OmegaConf

    messages = OmegaConf.select(cfg, "prompt.messages", default=None)
    if messages is None:
        return
    for index, message in enumerate(messages):
        name = message.get("content_file") if hasattr(message, "get") else None
        if not name:
            continue
        where = f"prompt.messages[{index}].content_file"
        if message.get("content"):
            raise ConfigError(
                f"prompt.messages[{index}]: give content or content_file, not both "
                f"(content_file is {name!r})"
            )
        text, sha = read_content_file(str(name), search, where)
        message.content = text
        message.content_sha256 = sha
