"""``judgekit init``: a project of one's own, with config groups that add to judgekit's.

The template lives in ``judgekit/bundled/scaffold``; the prompt to edit is a copy of judgekit's
own ``v2``, read from the installed config tree, so it is always the version this judgekit has.
"""

from __future__ import annotations

from importlib import resources
from importlib.abc import Traversable
from pathlib import Path

from judgekit.config.compose import conf_dir
from judgekit.errors import ConfigError

__all__ = ["init_project"]

_PROMPT_HEADER = (
    "# Your prompt version, a copy of judgekit's v2 to edit. Select it with prompt=my_prompt\n"
    "# (judgekit -cd conf prompt=my_prompt ...); add more files beside it for more versions.\n"
)


def _template_files(root: Traversable, prefix: Path = Path()) -> dict[Path, bytes]:
    files: dict[Path, bytes] = {}
    for entry in root.iterdir():
        if entry.name.startswith((".", "__")):
            continue
        if entry.is_dir():
            files.update(_template_files(entry, prefix / entry.name))
        else:
            files[prefix / entry.name] = entry.read_bytes()
    return files


def _my_prompt() -> bytes:
    text = (conf_dir() / "prompt" / "v2.yaml").read_text(encoding="utf-8")
    body = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    body = body.replace("name: v2", "name: my_prompt", 1)
    return (_PROMPT_HEADER + body.strip() + "\n").encode()


def init_project(directory: str | Path, *, force: bool = False) -> list[Path]:
    """Write the project template into ``directory`` (created if needed); the files written.

    An existing file is never overwritten unless ``force``: the first one found is a ConfigError
    and nothing is written.
    """
    target = Path(directory)
    files = _template_files(resources.files("judgekit") / "bundled" / "scaffold")
    files[Path("conf/prompt/my_prompt.yaml")] = _my_prompt()
    if target.exists() and not target.is_dir():
        raise ConfigError(f"judgekit init {directory}: {target} is a file; give a directory")
    if not force:
        for relative in sorted(files):
            if (target / relative).exists() or (target / relative).is_symlink():
                raise ConfigError(
                    f"judgekit init: {target / relative} already exists; nothing was written. "
                    "Pick an empty directory, or add --force to overwrite the template's files"
                )
    written = []
    for relative, data in sorted(files.items()):
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written.append(path)
    # Experiment files live in experiments/, as in judgekit's own tree; the config group
    # experiment/ is a link to it, so `-cd conf experiment=NAME` finds them.
    link = target / "conf" / "experiment"
    if not link.is_symlink() and not link.exists():
        link.symlink_to(Path("..") / "experiments", target_is_directory=True)
        written.append(link)
    return written
