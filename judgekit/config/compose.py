"""The Hydra service: compose ``conf/`` with overrides into a typed :class:`~judgekit.config.Config`.

The only module below the CLI that imports Hydra. The CLI, the Python API, ``doctor`` and the job
worker all compose through it, so a config means the same thing wherever it is run from.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from judgekit.config.userdirs import check_config_dirs, group_options, resolve_content_files
from judgekit.errors import ConfigError

__all__ = [
    "UID_ENV",
    "compose_config",
    "conf_dir",
    "data_file",
    "normalize_overrides",
    "one_line",
    "register",
    "run_uid",
    "sweep_combinations",
    "to_config",
]


UID_ENV = "JUDGEKIT_RUN_UID"
"""The variable holding this command's random id: ``main`` sets it, worker processes inherit it."""


def conf_dir() -> Path:
    """The config tree: ``judgekit/_conf`` in an installed wheel, else the repository's ``conf/``."""
    packaged = Path(__file__).resolve().parent.parent / "_conf"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent.parent / "conf"


def data_file(name: str) -> str:
    """Path of a file shipped in ``judgekit/bundled`` (the ``${judgekit_data:NAME}`` resolver)."""
    return str(resources.files("judgekit") / "bundled" / name)


def run_uid() -> str:
    """A short random id of this command (the ``${judgekit_uid:}`` resolver).

    It makes run and sweep directories unique even for commands started in the same second.
    ``main`` draws it once and puts it in the environment, so every job of a sweep, also in
    joblib or submitit worker processes, resolves the same sweep directory.
    """
    uid = os.environ.get(UID_ENV)
    if not uid:
        uid = os.environ[UID_ENV] = secrets.token_hex(3)
    return uid


def register() -> None:
    from hydra.core.config_store import ConfigStore
    from omegaconf import OmegaConf

    from judgekit.config.schema import Config

    ConfigStore.instance().store(name="judgekit_schema", node=Config)
    if not OmegaConf.has_resolver("judgekit_data"):
        OmegaConf.register_new_resolver("judgekit_data", data_file)
    if not OmegaConf.has_resolver("judgekit_uid"):
        OmegaConf.register_new_resolver("judgekit_uid", run_uid)


def _choice_error(err: BaseException) -> str | None:
    """OmegaConf's "Invalid value 'x', expected one of [a, b]" as ``key: 'x' is not valid; use a or b``."""
    cause = err.__cause__ or err.__context__
    found = re.search(r"Invalid value '(.*)', expected one of \[(.*)\]", str(cause or err))
    if found is None:
        return None
    key = str(getattr(cause, "full_key", None) or getattr(err, "full_key", None) or "")
    override = re.match(r"Error merging override ([^=]+)=", str(err))
    if override and not key.startswith(override.group(1)):
        key = f"{override.group(1)}: {key}" if key else override.group(1)
    *rest, last = found.group(2).split(", ")
    valid = f"{', '.join(rest)} or {last}" if rest else last
    return f"{key}: {found.group(1)!r} is not valid; use {valid}"


def one_line(err: BaseException) -> str:
    """Hydra/OmegaConf messages without their stack hints, folded onto one line."""
    choice = _choice_error(err)
    if choice is not None:
        return choice
    text = str(err)
    cause = err.__cause__ or err.__context__
    if cause is not None and str(cause) and str(cause) not in text:
        text += "\n" + str(cause)
    text = text.split("Config search path:")[0]
    skip = ("Set the environment variable", "object_type=", "full_key:", "reference_type=")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    lines = [ln.rstrip(".:") for ln in lines if not ln.startswith(skip)]
    return "; ".join(dict.fromkeys(lines)) or type(err).__name__


def _unknown_keys(node: Any, where: str = "") -> None:
    """Refuse keys a schema does not have, however they were added.

    Hydra adds ``+key=value`` and ``++key=value`` with OmegaConf's ``force_add``, which lifts struct
    mode, and ``OmegaConf.to_object`` then sets such a key as a plain attribute: a typo like
    ``+runner.paralelism=4`` would pass silently. This walk finds them in every schema node.
    """
    import dataclasses

    from omegaconf import DictConfig, ListConfig

    if not isinstance(node, DictConfig | ListConfig) or node._is_none() or node._is_missing():
        return
    if node._is_interpolation():
        return
    if isinstance(node, ListConfig):
        for index in range(len(node)):
            _unknown_keys(node._get_node(index), f"{where}[{index}]")
        return
    schema = node._metadata.object_type
    fields = (
        {f.name for f in dataclasses.fields(schema)} if dataclasses.is_dataclass(schema) else None
    )
    for key in node.keys():
        full = f"{where}.{key!s}" if where else str(key)
        if fields is not None and key not in fields:
            name = schema.__name__  # type: ignore[union-attr]
            raise ConfigError(
                f"Key {key!r} not in {name!r} ({full}); valid keys: {', '.join(sorted(fields))}"
            )
        _unknown_keys(node._get_node(key), full)


def to_config(cfg: Any, *, config_dirs: Sequence[str | Path] = ()) -> Any:
    """A composed DictConfig → the typed :class:`judgekit.config.schema.Config` (runs the checks).

    A prompt message's ``content_file`` is read here, looked for in ``config_dirs`` (the
    ``--config-dir`` directories ``cfg`` was composed with), then judgekit's tree, then the working directory.
    """
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        _expand_panel(cfg, config_dirs)
    except OmegaConfBaseException as err:
        raise ConfigError(one_line(err)) from None
    _unknown_keys(cfg)
    try:
        resolve_content_files(cfg, [*(Path(d) for d in config_dirs), conf_dir()])
    except OmegaConfBaseException as err:
        raise ConfigError(one_line(err)) from None
    try:
        return OmegaConf.to_object(cfg)
    except OmegaConfBaseException as err:
        raise ConfigError(one_line(err)) from None


def _expand_panel(cfg: Any, config_dirs: Sequence[str | Path]) -> None:
    """A panel's members (``judge.members``) composed from their judge options, in place."""
    from omegaconf import DictConfig

    from judgekit.config.panel import expand_members

    judge = cfg.get("judge") if isinstance(cfg, DictConfig) else None
    if judge is None or not (judge.get("members") or judge.get("member_overrides")):
        return

    def compose_judge(name: str) -> Any:
        return compose_config([f"judge={name}"], config_dirs=config_dirs).judge

    expand_members(cfg, compose_judge, one_line)


def normalize_overrides(overrides: list[str]) -> list[str]:
    """``+experiment=NAME`` as ``experiment=NAME``: the defaults list holds ``experiment: null``, so
    both spellings select an experiment file (Hydra refuses ``+`` for a group already listed).
    ``judge.members.N.KEY=VALUE`` is kept as ``judge.member_overrides.N.KEY`` until the panel's
    members are composed (:mod:`judgekit.config.panel`)."""
    from judgekit.config.panel import rewrite_member_overrides

    return rewrite_member_overrides([re.sub(r"^\+{1,2}(experiment=)", r"\1", o) for o in overrides])


def compose_config(
    overrides: list[str],
    *,
    config_dirs: Sequence[str | Path] = (),
    return_hydra_config: bool = False,
) -> Any:
    """Compose ``conf/config.yaml`` with overrides through Hydra's compose API (a DictConfig).

    ``config_dirs`` are the user's config directories (``--config-dir``): searched after
    judgekit's own tree, as Hydra's ``--config-dir`` is; give them to :func:`to_config` too, so
    that it finds prompt files beside them.
    """
    from hydra import compose
    from hydra.errors import HydraException, MissingConfigException
    from omegaconf.errors import OmegaConfBaseException
    from yaml import MarkedYAMLError, YAMLError

    register()
    dirs = check_config_dirs(config_dirs, conf_dir())
    try:
        with _initialized(dirs):
            cfg = compose(
                "config",
                overrides=normalize_overrides(overrides),
                return_hydra_config=return_hydra_config,
            )
    except MissingConfigException as err:
        raise ConfigError(_missing_option(err, dirs)) from None
    except (HydraException, OmegaConfBaseException) as err:
        raise ConfigError(one_line(err)) from None
    except YAMLError as err:  # a config or experiment file that is not valid YAML
        mark = err.problem_mark if isinstance(err, MarkedYAMLError) else None
        where = f"{mark.name}, line {mark.line + 1}" if mark is not None else "a config file"
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"{where}: not valid YAML: {problem}") from None
    return cfg


@contextmanager
def _initialized(dirs: Sequence[Path]) -> Iterator[None]:
    """Hydra's ``initialize_config_dir`` for judgekit's tree, with the user's directories added
    where Hydra's ``--config-dir`` adds them (after the primary tree, before the schema)."""
    from hydra._internal.hydra import Hydra
    from hydra._internal.utils import create_config_search_path
    from hydra.core.config_search_path import SearchPathQuery
    from hydra.core.global_hydra import GlobalHydra
    from hydra.initialize import get_gh_backup, restore_gh_from_backup
    from hydra.version import setbase

    backup = get_gh_backup()
    setbase("1.3")
    search = create_config_search_path(str(conf_dir()))
    for path in dirs:
        search.prepend("command-line", f"file://{path}", anchor=SearchPathQuery(provider="schema"))
    try:
        GlobalHydra.instance().clear()
        Hydra.create_main_hydra2(task_name="judgekit", config_search_path=search)
        yield
    finally:
        restore_gh_from_backup(backup)


def _missing_option(err: BaseException, dirs: Sequence[Path]) -> str:
    """Hydra's "Could not find 'dataset/mine'" with judgekit's and the user's options listed."""
    missing = str(getattr(err, "missing_cfg_file", "") or "")
    group, _, name = missing.rpartition("/")
    if not group:
        return one_line(err)
    builtin = group_options(conf_dir(), group)
    own = {str(d): group_options(d, group) for d in dirs}
    parts = [f"{group}={name}: Could not find '{missing}'"]
    parts.append(f"judgekit's {group} options: {', '.join(builtin) or 'none'}")
    for where, names in own.items():
        parts.append(f"yours in {where}: {', '.join(names) or 'none'}")
    if not dirs:
        parts.append("add your own with --config-dir DIR (DIR/" + group + "/NAME.yaml)")
    return "; ".join(parts)


def sweep_combinations(overrides: list[str]) -> list[list[str]]:
    """Every job's override list of a ``-m`` sweep (Hydra's own basic sweeper logic)."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except HydraException as err:
        raise ConfigError(one_line(err)) from None
    batches = BasicSweeper.split_arguments(parsed, None)
    return [job for batch in batches for job in batch] or [[]]
