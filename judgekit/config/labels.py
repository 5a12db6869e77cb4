"""How a raw human label matches a key of ``dataset.fields.label_map``: one canonical key per value.

YAML and Hydra's override grammar give the map's keys as ints, floats, booleans or text; data
files give the same label as an int (JSON), a float (pandas reads an int column with a gap as
floats), a boolean, or text (CSV reads everything as text). Both sides are reduced to a canonical
key, and a label matches the map's key with the same canonical key:

- **numbers** by value: ``1``, ``1.0``, ``"1"`` and ``" 1.0 "`` are all the number 1; ``-1`` and
  ``"-1"`` match; ``0.5`` and ``"0.5"`` match;
- **booleans** by truth value, never equal to a number (in Python ``True == 1``, so a plain dict
  lookup would map the label ``True`` through the key ``1``; here it does not): ``true``,
  ``"true"``, ``"yes"``, ``"on"`` (in any case) are true, ``false``, ``"no"``, ``"off"`` false. A
  YAML file reads unquoted ``yes``/``no``/``on``/``off`` as booleans, Hydra's command line as
  text; either way they match the same labels;
- **other text** after stripping surrounding whitespace, in any case (``"Model_A"`` matches
  ``model_a``), like the rubric label names the mapped values are matched against.

Two keys of one map with the same canonical key (``1`` and ``"1.0"``, ``A`` and ``a``) are a
:class:`~judgekit.errors.ConfigError` naming both (:func:`label_lookup`). One limit lies before
judgekit sees the map: inside one YAML mapping or one ``{...}`` override, ``1``, ``1.0`` and
``true`` are one Python dict key, so YAML and Hydra keep only the last of them.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from judgekit.errors import ConfigError

__all__ = ["LabelKey", "label_key", "label_lookup"]

LabelKey = tuple[str, Any]
"""A canonical label: ``("number", 1)``, ``("number", 0.5)``, ``("bool", True)``, ``("text", "a>b")``."""

_TRUE = frozenset({"true", "yes", "on"})
_FALSE = frozenset({"false", "no", "off"})


def label_key(value: Any) -> LabelKey:
    """The canonical key of a label value or a map key (see the module docstring for the rule)."""
    if isinstance(value, bool) or type(value).__name__ == "bool_":  # numpy's bool too
        return ("bool", bool(value))
    if isinstance(value, numbers.Integral):
        return ("number", int(value))
    if isinstance(value, numbers.Real):
        number = float(value)
        return ("number", int(number) if number.is_integer() else number)
    text = str(value).strip()
    folded = text.casefold()
    if folded in _TRUE or folded in _FALSE:
        return ("bool", folded in _TRUE)
    spelled = _number(text)
    return label_key(spelled) if spelled is not None else ("text", folded)


def _number(text: str) -> int | float | None:
    """The finite number ``text`` spells (``"1"``, ``"-1"``, ``"0.5"``, ``"1e3"``), else None."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def label_lookup(label_map: dict[Any, Any], where: str) -> dict[LabelKey, Any]:
    """``label_map`` keyed by canonical key; a ConfigError names two keys that collide.

    Also refuses a key that is not a number, boolean or text, a NaN or infinite number key, and a
    value that is not a label name (text) or a finite number.
    """
    lookup: dict[LabelKey, Any] = {}
    first: dict[LabelKey, Any] = {}
    for key, value in label_map.items():
        _check_entry(key, value, where)
        canonical = label_key(key)
        if canonical in first:
            raise ConfigError(
                f"{where}: keys {first[canonical]!r} and {key!r} match the same data values "
                f"(numbers compare by value, booleans by truth, text in any case); keep one"
            )
        first[canonical], lookup[canonical] = key, value
    return lookup


def _check_entry(key: Any, value: Any, where: str) -> None:
    if key is None or not isinstance(key, str | numbers.Real):
        raise ConfigError(f"{where}: key {key!r} must be a number, true/false or text")
    if isinstance(key, float) and not math.isfinite(key):
        raise ConfigError(f"{where}: key {key!r} must be a finite number")
    number = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not (isinstance(value, str) or (number and math.isfinite(value))):
        raise ConfigError(
            f"{where}: {key!r} maps to {value!r}; a value must be a label name (text) or, for a "
            "numeric score, a finite number"
        )
