"""Turn a judge's answer text into scores, each a number or NaN with the reason it is missing.

The answer passes through small steps; each step that fails names its reason::

    text ── None / blank ──────────────────────────────────────────────► empty_response
      └─ strip_reasoning: <think>…</think>, a bare </think> (DeepSeek-R1)
           │                 └─ <think> never closed, or nothing after it ─► parse_error
           ├─ regex parser: re.search(pattern), first group ── no match ───► parse_error
           └─ find_json_object: fences, prose, repeated examples ── none ──► parse_error
                └─ ScoreSpec.key, a dotted path ────────────────── absent ──► missing_key
                     └─ a number, or a rubric label ─► parse_error / invalid_label
                          └─ within [minimum, maximum], inclusive ─────────► out_of_range

A failure is data, not an exception: ``ParsedScore(value=nan, failure=<reason>, detail=<why>)``.
The value is never 0 or another number that could pass for a score, and it is never clamped.

Shapes tolerated because judges emit them and they have a single reading:

- reasoning in ``<think>``/``<thinking>`` blocks, or before a bare ``</think>``;
- the object inside a ```` ```json ```` or plain ```` ``` ```` fence, or inside prose;
- several objects (the model restates the format first): the last one holding an expected key
  wins, and an object in a fence beats one outside;
- trailing commas (``{"score": 3,}``) and single-quoted Python dicts (``ast.literal_eval``);
- a key that differs only in case or surrounding spaces, when exactly one key matches;
- numbers as strings (``"3"``, ``" 3 "``, ``"3.0"``) and non-integers within the range;
- ``"N/M"`` read as N when M equals the score's maximum (``"3/4"`` on 0..4 is 3); any other M is
  ambiguous (``"3/5"`` on 0..4 could be 3 or 2.4) and is a parse_error;
- rubric labels in any case with surrounding spaces, or a number equal to a label's value.

Rejected on purpose: booleans and null (parse_error: ``true`` is not 1), NaN and infinities,
``"3 out of 4"``, JSON with comments. :func:`expected_score_from_logprobs` gives the G-Eval style
probability-weighted score where the judge's endpoint returns ``top_logprobs``.
"""

from __future__ import annotations

import ast
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from judgekit.config.schema import ScoreSpec
from judgekit.errors import ConfigError
from judgekit.records import PARSE_FAILURES, FailureReason

__all__ = [
    "FAILURE_REASONS",
    "ParsedScore",
    "expected_score_from_logprobs",
    "level_probabilities_from_logprobs",
    "find_json_object",
    "parse_scores",
    "strip_reasoning",
]

FAILURE_REASONS = PARSE_FAILURES
"""Every value :attr:`ParsedScore.failure` can take besides None (``records.PARSE_FAILURES``)."""

_NAN = float("nan")
_THINK_TAG = re.compile(r"<(/?)think(?:ing)?\s*>", re.IGNORECASE)
_FENCE = re.compile(r"```[ \t]*[\w+.-]*[ \t]*\n?(.*?)```", re.DOTALL)
_BRACE_SCAN = re.compile(r'[{}"\\]')
_TRAILING_COMMA = re.compile(r'("(?:[^"\\]|\\.)*")|,\s*(?=[}\]])', re.DOTALL)
_TRAILING_COMMA_HINT = re.compile(r",\s*[}\]]")
_PYTHON_HINT = re.compile(r"'|\b(?:True|False|None)\b")
_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)"
_NUMBER_TEXT = re.compile(_NUMBER)
_FRACTION_TEXT = re.compile(rf"({_NUMBER})\s*/\s*({_NUMBER})")
_INTEGER_RUN = re.compile(r"[+-]?\d+(?![\d.])")
_MAX_LITERAL_CHARS = 20_000


@dataclass(frozen=True)
class ParsedScore:
    """One score read from a judge's answer, or why it could not be read."""

    value: float
    """The score; NaN whenever ``failure`` is set (never 0 or another sentinel)."""
    failure: str | None = None
    """None on success, else one of :data:`FAILURE_REASONS`."""
    detail: str = ""
    """Why the score is missing, for people reading the results; empty on success."""

    @property
    def ok(self) -> bool:
        """True when the score was read."""
        return self.failure is None


class _Failed(Exception):
    """A step could not read a score; carries the failure reason and the detail."""

    def __init__(self, reason: FailureReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail

    def as_score(self) -> ParsedScore:
        """The failed score this stands for."""
        return ParsedScore(_NAN, self.reason, self.detail)


@dataclass(frozen=True)
class _Candidate:
    """A JSON object found in the answer, with where it sits."""

    obj: dict[Any, Any]
    start: int
    end: int
    fenced: bool


# --- public steps -------------------------------------------------------------------------------


def parse_scores(text: str | None, scores: Sequence[ScoreSpec]) -> dict[str, ParsedScore]:
    """Read every score of a schema from one judge answer.

    Args:
        text: The judge's answer as returned (None when the call returned no content).
        scores: The score specs to read, e.g. ``ScoreSchemaConfig.scores``.

    Returns:
        Score name -> :class:`ParsedScore`, in schema order; failed scores hold NaN and a reason.

    Raises:
        ConfigError: A regex parser's pattern does not compile (a setup error, not a row's).
    """
    try:
        answer = _answer_text(text)
    except _Failed as failed:
        return {spec.name: failed.as_score() for spec in scores}
    json_keys = [spec.key for spec in scores if spec.parser.kind == "json"]
    found = _pick_candidate(_candidates(answer), json_keys) if json_keys else None
    return {spec.name: _parse_one(answer, found, spec) for spec in scores}


def strip_reasoning(text: str) -> str:
    """Return the answer part of a reasoning model's output, without its thinking.

    Removes ``<think>…</think>`` (and ``<thinking>…</thinking>``) blocks and everything up to a
    bare ``</think>`` whose opening tag was part of the prompt (DeepSeek-R1). A ``<think>`` that
    never closes holds the rest of the text, so when it opens the text the result is ``""``.
    """
    try:
        spans = _reasoning_spans(text)
    except _Failed:
        return ""
    return _cut(text, spans).strip()


def find_json_object(text: str, keys: Sequence[str] = ()) -> dict[Any, Any] | None:
    """Find the JSON object a judge meant as its answer in text that may hold prose and fences.

    Every balanced ``{…}`` is a candidate (braces inside strings do not count); the outermost
    one that parses is kept, as JSON, as JSON with trailing commas, or as a Python dict literal.
    The choice, in order: the last candidate inside a fence holding one of ``keys``; the last
    candidate holding one of ``keys``; the last candidate. With no ``keys`` every candidate
    qualifies. Reasoning blocks are not stripped here; see :func:`strip_reasoning`.

    Args:
        text: The text to search.
        keys: Dotted key paths the answer should hold, e.g. ``["scores.helpfulness"]``.

    Returns:
        The object, or None when no candidate parses.
    """
    found = _pick_candidate(_candidates(text), keys)
    return found.obj if found else None


def expected_score_from_logprobs(logprobs_content: Sequence[Any], spec: ScoreSpec) -> float:
    """Compute the probability-weighted score (G-Eval) from the token where the score was emitted.

    Rebuilds the answer from the tokens, finds the score's value with the same steps as
    :func:`parse_scores`, maps its characters to the one token that holds them, and returns
    ``Σ v·p(v) / Σ p(v)`` over that token's alternatives that are an integer ``v`` within the
    range (surrounding spaces and quotes ignored).

    Args:
        logprobs_content: ``choices[0].logprobs.content``: items with ``token``, ``logprob`` and
            ``top_logprobs`` (a list of ``token``/``logprob``), as dicts or objects.
        spec: The score to weigh.

    Returns:
        The expected score, or NaN when it cannot be computed: no logprobs, a rubric or a
        non-integer scale, a value that does not parse, or a value split over several tokens
        (e.g. ``"10"`` as ``"1"`` + ``"0"``).
    """
    weights = level_probabilities_from_logprobs(logprobs_content, spec)
    if not weights:
        return _NAN
    return sum(value * p for value, p in weights.items())


def level_probabilities_from_logprobs(
    logprobs_content: Sequence[Any], spec: ScoreSpec
) -> dict[int, float]:
    """The judge's distribution over the integer levels at the token where the score was emitted.

    Found as :func:`expected_score_from_logprobs` finds its token: ``p(v) / Σ p(v)`` over that
    token's alternatives that are an integer ``v`` within the range.

    Returns:
        Probability per level the alternatives name (summing to 1); empty when it cannot be
        computed (the cases where :func:`expected_score_from_logprobs` gives NaN).
    """
    if not logprobs_content or spec.labels or not spec.is_integer_scale:
        return {}
    tokens = [str(_field(item, "token") or "") for item in logprobs_content]
    text = "".join(tokens)
    try:
        start, end = _value_span(_blank_out(text, _reasoning_spans(text)), spec)
    except _Failed:
        return {}
    index = _token_holding(tokens, start, end)
    if index is None:
        return {}
    return _level_weights(logprobs_content[index], spec)


# --- reasoning ----------------------------------------------------------------------------------


def _answer_text(text: str | None) -> str:
    """The answer without reasoning; raises when there is no answer to read."""
    if text is None or not text.strip():
        shown = "None" if text is None else repr(text)
        raise _Failed(FailureReason.EMPTY_RESPONSE, f"the judge returned no text ({shown})")
    answer = _cut(text, _reasoning_spans(text)).strip()
    if not answer:
        raise _Failed(FailureReason.PARSE_ERROR, "no answer after the </think> reasoning block")
    return answer


def _reasoning_spans(text: str) -> list[tuple[int, int]]:
    """Where the reasoning is, as (start, end) spans; raises when a <think> leaves no answer."""
    spans: list[tuple[int, int]] = []
    open_at: int | None = None
    for tag in _THINK_TAG.finditer(text):
        closing = tag.group(1) == "/"
        if not closing and open_at is None:
            open_at = tag.start()
        elif closing and open_at is not None:
            spans.append((open_at, tag.end()))
            open_at = None
        elif closing:  # a bare </think>: the opening tag was in the prompt template
            spans = [(0, tag.end())]
    if open_at is not None:
        if not _blank_out(text[:open_at], spans).strip():
            raise _Failed(
                FailureReason.PARSE_ERROR,
                "no answer after <think>: the reasoning block never closes "
                "(the answer was probably cut off by judge.max_tokens)",
            )
        spans.append((open_at, len(text)))
    return spans


def _cut(text: str, spans: list[tuple[int, int]]) -> str:
    """The text with the spans removed."""
    kept, position = [], 0
    for start, end in spans:
        kept.append(text[position:start])
        position = end
    return "".join(kept) + text[position:]


def _blank_out(text: str, spans: list[tuple[int, int]]) -> str:
    """The text with the spans replaced by spaces, so that offsets still match the original."""
    chars = list(text)
    for start, end in spans:
        chars[start:end] = " " * (end - start)
    return "".join(chars)


# --- finding the object -------------------------------------------------------------------------


def _candidates(text: str) -> list[_Candidate]:
    """Every outermost balanced {…} in the text that parses, in text order."""
    fences = [match.span(1) for match in _FENCE.finditer(text)]
    ends: dict[int, int | None] = {}
    found: list[_Candidate] = []
    start = text.find("{")
    while start != -1:
        if start not in ends:
            ends.update(_brace_ends(text, start))
        end = ends[start]
        obj = _load_object(text[start:end]) if end is not None else None
        if obj is None or end is None:
            start = text.find("{", start + 1)
            continue
        fenced = any(low <= start and end <= high for low, high in fences)
        found.append(_Candidate(obj, start, end, fenced))
        start = text.find("{", end)
    return found


def _brace_ends(text: str, start: int) -> dict[int, int | None]:
    """Where each { closes (exclusive end, None if never), scanning from the { at ``start``.

    Braces inside strings do not count, and quotes count only inside braces. The answer for each
    { met outside a string is the same as a scan starting at that {, so one pass serves them all
    and the search stays linear unless braces hide inside strings.
    """
    ends: dict[int, int | None] = {}
    open_at: list[int] = []
    in_string, skip_to = False, -1
    for match in _BRACE_SCAN.finditer(text, start):
        position, char = match.start(), match.group()
        if position < skip_to:
            continue
        if char == '"' and open_at:
            in_string = not in_string
        elif in_string:
            if char == "\\":
                skip_to = position + 2
        elif char == "{":
            open_at.append(position)
        elif char == "}" and open_at:
            ends[open_at.pop()] = position + 1
    ends.update(dict.fromkeys(open_at))
    return ends


def _load_object(span: str) -> dict[Any, Any] | None:
    """The span as a dict: strict JSON, JSON with trailing commas, or a Python dict literal."""
    for load in (json.loads, _loads_without_trailing_commas, _python_literal):
        try:
            obj = load(span)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
        if isinstance(obj, dict):
            return obj
    return None


def _loads_without_trailing_commas(span: str) -> Any:
    """Parse JSON after dropping commas that directly precede } or ] (outside strings)."""
    if not _TRAILING_COMMA_HINT.search(span):
        raise ValueError("no trailing comma")
    return json.loads(_TRAILING_COMMA.sub(lambda match: match.group(1) or "", span))


def _python_literal(span: str) -> Any:
    """Parse a Python literal such as ``{'score': 3}`` without evaluating any code."""
    if len(span) > _MAX_LITERAL_CHARS or not _PYTHON_HINT.search(span):
        raise ValueError("not a Python literal")
    return ast.literal_eval(span)


def _pick_candidate(found: list[_Candidate], keys: Sequence[str]) -> _Candidate | None:
    """The candidate meant as the answer (see :func:`find_json_object` for the order)."""
    holding = [c for c in found if not keys or any(_holds(c.obj, key) for key in keys)]
    for group in ([c for c in holding if c.fenced], holding, found):
        if group:
            return group[-1]
    return None


def _holds(obj: dict[Any, Any], path: str) -> bool:
    """True when the dotted path resolves in the object."""
    try:
        _resolve(obj, path)
    except _Failed:
        return False
    return True


# --- reading one score --------------------------------------------------------------------------


def _parse_one(answer: str, found: _Candidate | None, spec: ScoreSpec) -> ParsedScore:
    """Read one score with the spec's parser."""
    try:
        if spec.parser.kind == "regex":
            value = _read_value(_regex_group(answer, spec)[0], spec)
        elif found is None:
            raise _Failed(
                FailureReason.PARSE_ERROR, f"no JSON object found in the answer: {_preview(answer)}"
            )
        else:
            value = _read_value(_resolve(found.obj, spec.key)[0], spec)
    except _Failed as failed:
        return failed.as_score()
    return ParsedScore(value)


def _regex_group(answer: str, spec: ScoreSpec) -> tuple[str, int]:
    """The pattern's first group (the whole match if it has none) and where it starts."""
    pattern = spec.parser.pattern or ""
    try:
        compiled = re.compile(pattern, re.DOTALL | re.IGNORECASE)
    except re.error as err:
        raise ConfigError(
            f"score {spec.name!r}: parser.pattern '{pattern}' is not a valid regular expression "
            f"({err}); fix the pattern"
        ) from err
    match = compiled.search(answer)
    if match is None:
        raise _Failed(
            FailureReason.PARSE_ERROR,
            f"pattern '{pattern}' found nothing in the answer: {_preview(answer)}",
        )
    group = 1 if compiled.groups else 0
    if match.group(group) is None:
        raise _Failed(
            FailureReason.PARSE_ERROR, f"pattern '{pattern}' matched but its first group is empty"
        )
    return match.group(group), match.start(group)


def _resolve(obj: dict[Any, Any], path: str) -> tuple[Any, list[str]]:
    """The value at a dotted key path and the keys as written; raises missing_key."""
    if path in obj:
        return obj[path], [path]
    node: Any = obj
    walked: list[str] = []
    for part in path.split("."):
        where = f" in {'.'.join(walked)!r}" if walked else ""
        if not isinstance(node, dict):
            raise _Failed(
                FailureReason.MISSING_KEY,
                f"key {path!r} not found; {'.'.join(walked)!r} holds {_kind(node)}, not an object",
            )
        key = _matching_key(node, part)
        if key is None:
            keys = ", ".join(str(k) for k in node) or "(none)"
            raise _Failed(
                FailureReason.MISSING_KEY, f"key {path!r} not found; keys present{where}: {keys}"
            )
        node = node[key]
        walked.append(key)
    return node, walked


def _matching_key(node: dict[Any, Any], part: str) -> str | None:
    """The key equal to ``part``, else the only key equal to it ignoring case and spaces."""
    if part in node:
        return part
    folded = [k for k in node if isinstance(k, str) and k.strip().casefold() == part.casefold()]
    return folded[0] if len(folded) == 1 else None


def _read_value(raw: Any, spec: ScoreSpec) -> float:
    """The score a raw JSON value or regex group stands for; raises with the reason."""
    if raw is None:
        raise _Failed(FailureReason.PARSE_ERROR, "value is null")
    if isinstance(raw, bool):
        raise _Failed(
            FailureReason.PARSE_ERROR, f"value {json.dumps(raw)} is a boolean, not a score"
        )
    if spec.labels:
        return _label_value(raw, spec)
    return _in_range(_number(raw, spec), spec)


def _number(raw: Any, spec: ScoreSpec) -> float:
    """A number given as a JSON number or as text ("3", " 3 ", "3.0", "3/4")."""
    if isinstance(raw, str):
        text = raw.strip()
        fraction = _FRACTION_TEXT.fullmatch(text)
        if fraction:
            return _fraction(raw, float(fraction.group(1)), float(fraction.group(2)), spec)
        if not _NUMBER_TEXT.fullmatch(text):
            raise _Failed(FailureReason.PARSE_ERROR, f"value {raw!r} is not a number")
        raw = text
    elif not isinstance(raw, int | float):
        raise _Failed(
            FailureReason.PARSE_ERROR, f"value {_short(raw)} is {_kind(raw)}, not a number"
        )
    try:
        value = float(raw)
    except OverflowError:
        value = math.inf
    if not math.isfinite(value):
        raise _Failed(FailureReason.PARSE_ERROR, f"value {_short(raw)} is not a finite number")
    return value


def _fraction(raw: str, numerator: float, denominator: float, spec: ScoreSpec) -> float:
    """N of "N/M" when M is the score's maximum; any other M is ambiguous."""
    if denominator != spec.maximum:
        raise _Failed(
            FailureReason.PARSE_ERROR,
            f"value {raw!r} is ambiguous: {_fmt(denominator)} is not the maximum "
            f"{_fmt(spec.maximum)}, so it is unclear whether it is a score or a ratio",
        )
    return numerator


def _in_range(value: float, spec: ScoreSpec) -> float:
    """The value itself when it lies within [minimum, maximum]; never clamped."""
    low, high = spec.minimum, spec.maximum
    assert low is not None and high is not None
    if not low <= value <= high:
        raise _Failed(
            FailureReason.OUT_OF_RANGE,
            f"value {_fmt(value)} is outside the range [{_fmt(low)}, {_fmt(high)}]",
        )
    return value


_VERDICT_WRAPPER = re.compile(
    r"^(?:\[\[\s*(.+?)\s*\]\]|(?:response|output|assistant)\s+(.+))$", re.I
)


def _label_value(raw: Any, spec: ScoreSpec) -> float:
    """The value of a rubric label named by ``raw``, or ``raw`` when it equals a label's value."""
    if isinstance(raw, str):
        wanted = _VERDICT_WRAPPER.sub(lambda m: m.group(1) or m.group(2), raw.strip()).casefold()
        for name, label in spec.labels.items():
            if name.strip().casefold() == wanted:
                return float(label.value)
    if spec.kind == "preference":
        # A bare 1 or 2 from a judge usually means "response 1/2", not the label's value.
        raise _Failed(
            FailureReason.INVALID_LABEL,
            f"verdict {_short(raw)} is not one of {', '.join(map(repr, spec.labels))}",
        )
    number = _label_number(raw)
    if number is not None and any(number == label.value for label in spec.labels.values()):
        return number
    labels = ", ".join(spec.labels)
    values = ", ".join(_fmt(label.value) for label in spec.labels.values())
    raise _Failed(
        FailureReason.INVALID_LABEL,
        f"value {_short(raw)} is not a label; valid labels: {labels} (or their values {values})",
    )


def _label_number(raw: Any) -> float | None:
    """``raw`` as a number when it is one (a JSON number or numeric text), else None."""
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return float(raw)
    if isinstance(raw, str) and _NUMBER_TEXT.fullmatch(raw.strip()):
        return float(raw.strip())
    return None


# --- logprobs -----------------------------------------------------------------------------------


def _value_span(text: str, spec: ScoreSpec) -> tuple[int, int]:
    """Where the score's integer value is written in the text; raises when it cannot be found."""
    if spec.parser.kind == "regex":
        raw, position = _regex_group(text, spec)
    else:
        found = _pick_candidate(_candidates(text), [spec.key])
        if found is None:
            raise _Failed(FailureReason.PARSE_ERROR, "no JSON object")
        raw, keys = _resolve(found.obj, spec.key)
        position = found.start
        for key in keys:
            pattern = rf"[\"']{re.escape(key)}[\"']\s*:\s*[\"']?\s*"
            match = re.compile(pattern).search(text, position, found.end)
            if match is None:
                raise _Failed(FailureReason.PARSE_ERROR, f"key {key!r} not located")
            position = match.end()
    run = _INTEGER_RUN.match(text, position)
    if run is None or float(run.group()) != _read_value(raw, spec):
        raise _Failed(
            FailureReason.PARSE_ERROR, "value is not an integer written where it was parsed"
        )
    return run.start(), run.end()


def _token_holding(tokens: list[str], start: int, end: int) -> int | None:
    """Index of the one token holding characters [start, end), or None if it is split."""
    offset = 0
    for index, token in enumerate(tokens):
        token_end = offset + len(token)
        if offset <= start < token_end:
            return index if end <= token_end else None
        offset = token_end
    return None


def _level_weights(item: Any, spec: ScoreSpec) -> dict[int, float]:
    """p(v) / Σ p(v) over the item's alternatives that are integers within the range."""
    alternatives = {
        str(_field(alt, "token")): _field(alt, "logprob")
        for alt in _field(item, "top_logprobs") or []
    }
    alternatives.setdefault(str(_field(item, "token")), _field(item, "logprob"))
    low, high = spec.minimum, spec.maximum
    assert low is not None and high is not None
    weights: dict[int, float] = {}
    for token, logprob in alternatives.items():
        value = _integer_token(token)
        if value is not None and low <= value <= high and isinstance(logprob, int | float):
            weights[value] = weights.get(value, 0.0) + math.exp(logprob)
    total = sum(weights.values())
    if total <= 0:
        return {}
    return {value: weight / total for value, weight in sorted(weights.items())}


def _integer_token(token: str) -> int | None:
    """The integer a token spells, ignoring surrounding spaces and quotes, else None."""
    text = token.strip().strip("\"'")
    return int(text) if re.fullmatch(r"[+-]?\d+", text) else None


def _field(item: Any, name: str) -> Any:
    """A field of a logprobs item given as a dict or as an object (litellm returns objects)."""
    return item.get(name) if isinstance(item, dict) else getattr(item, name, None)


# --- messages -----------------------------------------------------------------------------------


def _fmt(number: float | None) -> str:
    """A number as people write it: 3 rather than 3.0."""
    if number is None:
        return "None"
    if float(number).is_integer() and abs(number) < 1e15:
        return str(int(number))
    return repr(float(number))


def _kind(value: Any) -> str:
    """What a JSON value is, in words."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list | tuple | set):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int | float):
        return "a number"
    return f"a {type(value).__name__}"


def _short(value: Any, limit: int = 60) -> str:
    """A value as it appears in a message, cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _preview(text: str, limit: int = 80) -> str:
    """The start of an answer, quoted, for messages."""
    return _short(" ".join(text.split()), limit)
