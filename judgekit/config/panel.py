"""A judge panel's members, composed: ``judge.members: [local, local_1_5b]`` → judge configs.

``judge=panel`` lists its members by judge option name. Hydra cannot hold a name and the keys a
user overrides on it in one list element (``judge.members.1.temperature=0.7`` would replace the
name ``local_1_5b`` by ``{temperature: 0.7}``), so :func:`rewrite_member_overrides` moves such
overrides to ``judge.member_overrides.1.temperature`` before Hydra sees them, and
:func:`expand_members` composes each member's option (judgekit's, or the user's in
``--config-dir``) and applies them to it afterwards. A member may also be written as a mapping:
``{judge: local_1_5b, temperature: 0.7}`` (an option and keys over it) or a whole judge config
without ``judge:``. Members that share a name get ``_2``, ``_3``, ... in listed order.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from judgekit.errors import ConfigError

__all__ = ["expand_members", "rewrite_member_overrides"]

_MEMBER_KEY = re.compile(r"^\+{0,2}judge\.members\.(\d+)\.(.+)$")


def rewrite_member_overrides(overrides: list[str]) -> list[str]:
    """``judge.members.N.KEY=VALUE`` as ``++judge.member_overrides.N.KEY=VALUE``; others unchanged."""
    out = []
    for override in overrides:
        key, sep, value = override.partition("=")
        found = _MEMBER_KEY.match(key) if sep else None
        if found is None:
            out.append(override)
            continue
        out.append(f"++judge.member_overrides.{found.group(1)}.{found.group(2)}={value}")
    return out


def expand_members(
    cfg: Any, compose_judge: Callable[[str], Any], one_line: Callable[[BaseException], str]
) -> None:
    """Replace ``cfg.judge.members`` (names or mappings) by composed judge configs, in place.

    ``compose_judge(name)`` returns the judge option ``name`` as a DictConfig of the judge
    schema; ``one_line`` folds an OmegaConf error into one line. Every
    ``judge.member_overrides`` entry must name a member.
    """
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    judge = cfg.judge
    entries = list(judge.members or [])
    overrides = judge.member_overrides
    overrides = OmegaConf.to_container(overrides, resolve=False) if overrides else {}
    assert isinstance(overrides, dict)
    _check_indexes(overrides, len(entries))
    if not entries:
        return
    members = []
    for index, entry in enumerate(entries):
        where = f"judge.members.{index}"
        try:
            member = _compose_entry(entry, where, compose_judge)
            member = _override(member, overrides.get(str(index)) or {})
            OmegaConf.to_object(member)  # the member's own checks, its keys named as a member's
        except OmegaConfBaseException as err:
            raise ConfigError(f"{where}: {one_line(err)}") from None
        except ConfigError as err:
            raise ConfigError(re.sub(r"^judge\.(?!members\.)", f"{where}.", str(err))) from None
        members.append(member)
    for member, name in zip(members, _distinct_names([str(m.name) for m in members]), strict=True):
        member.name = name
    judge.members = members
    judge.member_overrides = {}


_OPEN_KEYS = ("extra_params", "header_env")
"""A member's keys whose own keys are free (``judge.members.0.extra_params.seed=7`` adds one)."""


def _override(member: Any, extra: dict[str, Any]) -> Any:
    """``member`` with the overrides ``extra`` merged in: the judge schema's keys checked, new
    keys allowed under :data:`_OPEN_KEYS`."""
    from omegaconf import OmegaConf, open_dict

    extra = dict(extra)
    free = {k: extra.pop(k) for k in _OPEN_KEYS if isinstance(extra.get(k), dict)}
    member = OmegaConf.merge(member, extra)
    for key, value in free.items():
        with open_dict(member):
            merged = OmegaConf.merge(OmegaConf.to_container(member[key]) or {}, value)
            member[key] = merged
    return member


def _compose_entry(entry: Any, where: str, compose_judge: Callable[[str], Any]) -> Any:
    from omegaconf import DictConfig, OmegaConf

    from judgekit.config.schema import JudgeConfig

    if isinstance(entry, str):
        return _composed(compose_judge, _option(entry, where), where)
    if isinstance(entry, DictConfig):
        fields = OmegaConf.to_container(entry, resolve=False)
        assert isinstance(fields, dict)
        base = fields.pop("judge", None)
        start = (
            _composed(compose_judge, _option(base, where), where)
            if base is not None
            else JudgeConfig
        )
        return OmegaConf.merge(OmegaConf.structured(start), fields)
    raise ConfigError(
        f"{where}: {entry!r} is not a judge; give a judge option name (e.g. local_1_5b) or a "
        "mapping ({judge: local_1_5b, temperature: 0.7})"
    )


def _composed(compose_judge: Callable[[str], Any], name: str, where: str) -> Any:
    try:
        return compose_judge(name)
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from None


def _option(name: Any, where: str) -> str:
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ConfigError(f"{where}: {name!r} is not a judge option name (e.g. local_1_5b)")
    if name == "panel":
        raise ConfigError(f"{where}: a member cannot be a panel itself")
    return name


def _check_indexes(overrides: dict[str, Any], count: int) -> None:
    for key in overrides:
        if not str(key).isdigit() or int(key) >= count:
            valid = f"0..{count - 1}" if count else "none: judge.members is empty"
            raise ConfigError(
                f"judge.members.{key}: there is no member {key}; the panel's members are "
                f"numbered {valid} (judge.members={_listed(count)})"
            )


def _listed(count: int) -> str:
    return f"a list of {count}" if count else "[]"


def _distinct_names(names: Sequence[str]) -> list[str]:
    """``[local, local, x]`` → ``[local, local_2, x]``: a later repeat gets its occurrence number."""
    seen: Counter[str] = Counter()
    taken = set(names)
    out = []
    for name in names:
        seen[name] += 1
        if seen[name] == 1:
            out.append(name)
            continue
        candidate, n = f"{name}_{seen[name]}", seen[name]
        while candidate in taken:
            n += 1
            candidate = f"{name}_{n}"
        taken.add(candidate)
        out.append(candidate)
    return out
