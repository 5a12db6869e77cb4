"""Secrets: read from the environment by name, used for calls, and redacted from all output.

The config holds only the NAMES of environment variables (``judge.api_key_env``,
``judge.header_env``); their values are read here, remembered, and :func:`redact` removes every
remembered value (and credentials in URLs, and ``Bearer``/``Basic`` tokens) from any text judgekit
writes or prints: failure details, log records (:class:`RedactFilter`), stdout and stderr
(:class:`RedactingStream`), written configs (:func:`redact_config`, :func:`redact_url`).
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import os
import re
from typing import Any, TextIO

from judgekit.errors import SecretError

__all__ = [
    "RedactFilter",
    "RedactingStream",
    "check_secrets",
    "install_log_filter",
    "looks_like_secret",
    "redact",
    "redact_config",
    "redact_url",
    "register",
    "resolve_headers",
]

MASK = "***"
_MIN_SECRET = 6
"""Shorter values are not remembered: redacting them would garble ordinary text."""
_MIN_PREFIX = 6
"""A cut-off secret (text truncated mid-key) is redacted when at least this much of it is left."""
_known: set[str] = set()
_URL_CREDENTIALS = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/\s@'\"<>]+@")
_TOKEN = re.compile(
    r"(?i)(?P<head>\bauthorization[\"']?\s*[:=]\s*[\"']?(?:(?:bearer|basic)\s+)?"
    r"|\bbearer\s+(?=\S*\d))[A-Za-z0-9._~+/=-]{6,}"
)
_VARIABLE_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")


def register(value: str | None) -> None:
    """Remember ``value`` as a secret, so :func:`redact` removes it from everything."""
    if value and len(value) >= _MIN_SECRET:
        _known.add(value)


def looks_like_secret(name: str) -> bool:
    """True when a value given as a variable NAME looks like a key pasted in its place.

    Variable names are conventionally UPPER_CASE; a name in another case that holds digits (or
    is very long, or is not a name at all) is not echoed back in messages.
    """
    if not name.replace("_", "").isalnum():
        return True
    if _VARIABLE_NAME.fullmatch(name):
        return len(name) > 64
    return any(c.isdigit() for c in name) or len(name) > 32


def _shown(name: str) -> str:
    return (
        "(the value given is not shown: it looks like a key)" if looks_like_secret(name) else name
    )


def _env_value(key: str, name: str, what: str) -> str:
    """The value of the environment variable ``name`` (config key ``key``), remembered."""
    value = os.environ.get(name)
    if value:
        register(value)
        return value
    if looks_like_secret(name):
        raise SecretError(
            f"{key} must name an environment variable, and the value given is not set as one "
            f"{_shown(name)}; give the NAME of the variable that holds {what} "
            "(e.g. OPENAI_API_KEY), never the secret itself"
        )
    raise SecretError(f"{key}: environment variable {name} is not set; export {name}=... ({what})")


def resolve_headers(judge: Any) -> dict[str, str]:
    """``judge.header_env`` ({Header-Name: ENV_VAR}) as {Header-Name: value}, values remembered."""
    return {
        header: _env_value(f"judge.header_env.{header}", name, f"the value of header {header}")
        for header, name in (getattr(judge, "header_env", None) or {}).items()
    }


def check_secrets(judge: Any) -> None:
    """Read (and remember) every secret ``judge`` names; SecretError naming the first unset one.

    The CLI calls this in its pre-check, before Hydra writes anything, so a pasted key is never
    written into ``.hydra/`` or ``cli.log``.
    """
    for member in getattr(judge, "members", None) or []:  # a judge panel: every member's
        check_secrets(member)
    for url in (judge.api_base,):
        _register_url_password(url)
    if judge.api_key_env:
        _env_value("judge.api_key_env", judge.api_key_env, f"the key for {judge.model}")
    resolve_headers(judge)


def _register_url_password(url: str | None) -> None:
    found = re.search(r"://[^/\s@:]*:([^/\s@]+)@", url or "")
    if found:
        register(found.group(1))


def redact_url(url: str) -> str:
    """``https://user:pass@host/v1`` → ``https://***@host/v1``; other text unchanged."""
    return _URL_CREDENTIALS.sub(lambda m: m.group("scheme") + MASK + "@", url)


def redact(text: str) -> str:
    """``text`` without any remembered secret, URL credentials or Authorization token."""
    if not text:
        return text
    for secret in sorted(_known, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
        text = _cut_off(text, secret)
    text = redact_url(text)
    return _TOKEN.sub(lambda m: m.group("head") + MASK, text)


def _cut_off(text: str, secret: str) -> str:
    """A secret truncated at the end of ``text`` (a body cut at N characters) is redacted too."""
    for size in range(min(len(secret) - 1, len(text)), _MIN_PREFIX - 1, -1):
        if text.endswith(secret[:size]):
            return text[:-size] + MASK
    return text


def redact_config(config: Any) -> Any:
    """A deep copy of a config dataclass with every string redacted (URL credentials, secrets)."""
    clean = copy.deepcopy(config)
    _redact_in_place(clean)
    return clean


def _redact_in_place(value: Any) -> Any:
    if isinstance(value, str):
        cleaned = redact(value)
        return value if cleaned == value else cleaned
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for item in dataclasses.fields(value):
            setattr(value, item.name, _redact_in_place(getattr(value, item.name)))
    elif isinstance(value, dict):
        for key in list(value):
            value[key] = _redact_in_place(value[key])
    elif isinstance(value, list):
        value[:] = [_redact_in_place(v) for v in value]
    return value


class RedactFilter(logging.Filter):
    """A handler filter that redacts every record's message and traceback text."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def install_log_filter() -> None:
    """Put a :class:`RedactFilter` on every handler of every logger that exists now."""
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    for logger in loggers:
        for handler in getattr(logger, "handlers", []):
            if not any(isinstance(f, RedactFilter) for f in handler.filters):
                handler.addFilter(RedactFilter())


class RedactingStream:
    """A text stream (stdout, stderr) that redacts what is written to it; the rest is delegated."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(redact(text))
        return len(text)

    def writelines(self, lines: list[str]) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
