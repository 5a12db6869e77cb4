"""The Jinja2 sandbox prompt templates run in, with what a template can build bounded.

Jinja's :class:`~jinja2.sandbox.SandboxedEnvironment` already refuses unsafe attributes and caps
``range()`` at ``MAX_RANGE`` (100,000). This one also caps what could exhaust memory before a
single character is sent: repeated text or lists (``"x" * n``), joined ones (``a + b``), huge
powers, format widths (``"%99999999s"``, ``center``, ``indent``), ``lipsum``; :func:`render_text`
stops a message growing past :data:`MAX_TEXT`. Each refusal is a ``SecurityError`` with a message
that says what was too large.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import jinja2
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment, SecurityError

__all__ = ["MAX_TEXT", "environment", "render_text"]

MAX_TEXT = 10_000_000
"""Most characters (or list items) a template may build in one value or render in one message:
far above any judge's context window, far below what would exhaust memory."""
_MAX_POWER_BITS = 4096
_HUGE_WIDTH = re.compile(r"%[-+ #0]*\.?\d{8,}|%[-+ #0]*\d*\.\d{8,}|\{[^{}]*:[^{}]*\d{8,}")
"""A ``%`` or ``{:...}`` format spec whose width or precision alone has 8 digits or more."""


class _BoundedSandbox(SandboxedEnvironment):
    """Jinja's sandbox with repetition, joining, powers and format widths bounded."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        """The operator as usual, refused when its result would be too large."""
        if operator == "*":
            _check_repeat(left, right)
        elif operator == "**":
            _check_power(left, right)
        elif operator == "%" and isinstance(left, str):
            _check_format(left)
        elif isinstance(left, (str, list, tuple)) and isinstance(right, (str, list, tuple)):
            _check_size(len(left) + len(right), "'+' joining them")
        return super().call_binop(context, operator, left, right)

    def wrap_str_format(self, value: Any) -> Any:
        """``"{:>9}".format(...)`` as usual, refused for a width of 8 digits or more."""
        wrapped = super().wrap_str_format(value)
        if wrapped is not None:
            _check_format(str(value.__self__))
        return wrapped


def _check_repeat(left: Any, right: Any) -> None:
    for seq, times in ((left, right), (right, left)):
        if isinstance(seq, (str, list, tuple)) and isinstance(times, int):
            unit = "character(s)" if isinstance(seq, str) else "item(s)"
            _check_size(len(seq) * times, f"'*' repeating {len(seq)} {unit} {times} times")


def _check_power(base: Any, exponent: Any) -> None:
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0:
        if abs(base) > 1 and abs(base).bit_length() * exponent > _MAX_POWER_BITS:
            raise SecurityError(
                f"{base} ** {exponent} is too large a number; the sandbox allows results of "
                f"{_MAX_POWER_BITS} bits at most"
            )


def _check_format(spec: str) -> None:
    found = _HUGE_WIDTH.search(spec)
    if found is not None:
        raise SecurityError(
            f"the format {found.group()!r} asks for a width or precision of 8 digits or more; "
            f"the sandbox allows {MAX_TEXT} characters"
        )


def _check_size(size: int, what: str) -> None:
    if size > MAX_TEXT:
        raise SecurityError(f"{what} would make {size} in all; the sandbox allows {MAX_TEXT}")


def _center(value: Any, width: int = 80) -> str:
    _check_size(int(width), f"center({width})")
    return str(value).center(width)


def _indent(value: Any, width: int | str = 4, first: bool = False, blank: bool = False) -> str:
    lines = str(value).count("\n") + 1
    size = len(width) if isinstance(width, str) else int(width)
    _check_size(size * lines, f"indent({size}) of {lines} line(s)")
    return str(jinja2.filters.do_indent(str(value), width, first, blank))


def _format(value: str, *args: Any, **kwargs: Any) -> str:
    _check_format(str(value))
    return str(jinja2.filters.do_format(value, *args, **kwargs))


def _lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:  # noqa: A002
    from jinja2.utils import generate_lorem_ipsum

    if n > 100 or max > 1000:
        raise SecurityError(f"lipsum({n}, max={max}) is too long; use n <= 100 and max <= 1000")
    return str(generate_lorem_ipsum(n=n, html=html, min=min, max=max))


@lru_cache(maxsize=1)
def environment() -> SandboxedEnvironment:
    """The one environment every prompt template is parsed and rendered with."""
    env = _BoundedSandbox(
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False
    )
    env.filters.update(center=_center, indent=_indent, format=_format)
    env.globals["lipsum"] = _lipsum
    return env


def render_text(template: jinja2.Template, context: dict[str, Any]) -> str:
    """The rendered text, stopped as soon as it grows past :data:`MAX_TEXT` characters."""
    pieces, size = [], 0
    for piece in template.generate(context):
        size += len(piece)
        if size > MAX_TEXT:
            raise SecurityError(
                f"the rendered message grows past {MAX_TEXT} characters (a loop too long?)"
            )
        pieces.append(piece)
    return "".join(pieces)
