"""Typed schemas for every config group; Hydra composes YAML on top of them.

Each dataclass is registered in Hydra's ConfigStore by ``judgekit.config.compose`` so that an unknown key or a
wrong type fails at compose time. Checks that types cannot express (ranges, combinations) live in
``__post_init__`` and raise :class:`judgekit.errors.ConfigError` naming the key. Code below the CLI
receives these dataclasses, never a ``DictConfig``.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from judgekit.config.audit import AuditConfig, audited_score
from judgekit.config.labels import label_lookup
from judgekit.config.optimize import OptimizeConfig, check_objective
from judgekit.errors import ConfigError, TemplateError
from judgekit.secrets import looks_like_secret

__all__ = [
    "Aggregate",
    "CacheConfig",
    "CacheMode",
    "Config",
    "DatasetConfig",
    "DatasetSource",
    "FieldsConfig",
    "JudgeClientKind",
    "JudgeConfig",
    "LocalModelConfig",
    "Message",
    "OptimizeConfig",
    "ParserConfig",
    "ParserKind",
    "PromptConfig",
    "Reduce",
    "Rejudge",
    "Role",
    "RubricLabel",
    "RunnerConfig",
    "ScoreKind",
    "ScoreSchemaConfig",
    "ScoreSpec",
    "StatsConfig",
    "Switch",
    "TrackingConfig",
]

HELPSTEER2_SCORES = ["helpfulness", "correctness", "coherence", "complexity", "verbosity"]


# Choice types. OmegaConf looks an Enum member up by its NAME, so each name equals its value; a
# StrEnum member equals its string (``cfg.cache.mode == "off"``) and prints and serialises as it.
class JudgeClientKind(StrEnum):
    """``judge.client``: how judge calls are sent."""

    litellm = "litellm"
    direct = "direct"


class Role(StrEnum):
    """``prompt.messages[].role``: the chat role of one message."""

    system = "system"
    user = "user"
    assistant = "assistant"


class ParserKind(StrEnum):
    """``score.scores[].parser.kind``: how a score is read from the answer."""

    json = "json"
    regex = "regex"


class ScoreKind(StrEnum):
    """``score.scores[].kind``: a value per response, or a verdict between two."""

    pointwise = "pointwise"
    preference = "preference"


class DatasetSource(StrEnum):
    """``dataset.source``: where the examples come from."""

    hub = "hub"
    file = "file"
    inline = "inline"
    mlflow = "mlflow"


class Rejudge(StrEnum):
    """``runner.rejudge``: which examples of an earlier run are judged again."""

    failed = "failed"


class Reduce(StrEnum):
    """``runner.reduce``: how the ``runner.samples`` draws of one item become its score.

    A preference score always takes the majority verdict (no strict majority: a tie)."""

    mean = "mean"
    median = "median"
    mode = "mode"
    expected = "expected"


class Aggregate(StrEnum):
    """``judge.aggregate``: how a panel's members' scores of one item become the panel's.

    ``mean``/``median`` of the members that answered; ``majority``: the value more than half of
    them give (a preference with none is a tie; any other score abstains); ``strict_majority``:
    the value more than half of *all* members give, else the item abstains (``no_majority``),
    also when any member failed; ``weighted``: a weighted mean, the weights fitted on
    ``judge.weights_split`` of the rows (left out of the reported agreement)."""

    mean = "mean"
    median = "median"
    majority = "majority"
    strict_majority = "strict_majority"
    weighted = "weighted"


class Calibrate(StrEnum):
    """``stats.calibrate``: the monotone map fitted from judge scores to the human scale."""

    none = "none"
    isotonic = "isotonic"
    ordinal = "ordinal"


class CacheMode(StrEnum):
    """``cache.mode``: how the response cache is used."""

    read_write = "read_write"
    read_only = "read_only"
    refresh = "refresh"
    off = "off"


class Switch(StrEnum):
    """``auto`` | ``true`` | ``false`` (``runner.progress``, ``judge.structured_output``).

    The schema types these keys ``str`` so that YAML booleans (``runner.progress=false`` on the
    command line) keep working: OmegaConf refuses a bool for an Enum field. ``__post_init__``
    turns the value into a member, and refuses anything else naming the key.
    """

    auto = "auto"
    true = "true"
    false = "false"

    @classmethod
    def parse(cls, value: Any, key: str) -> Switch:
        """``value`` (a string or a YAML bool) as a member; ConfigError naming ``key`` if invalid."""
        try:
            return cls(str(value).lower())
        except ValueError:
            raise ConfigError(f"{key}: {value!r} is not valid; use auto, true or false") from None


def _choice(kind: type[StrEnum], value: Any, key: str) -> Any:
    """``value`` as a member of ``kind``; ConfigError naming ``key`` and the valid values."""
    try:
        return kind(value)
    except ValueError:
        valid = [member.value for member in kind]
        listed = ", ".join(valid[:-1]) + f" or {valid[-1]}" if len(valid) > 1 else valid[0]
        raise ConfigError(f"{key}: {value!r} is not valid; use {listed}") from None


def _require_finite(obj: Any, prefix: str) -> None:
    """Refuse NaN and infinity in every float field of the dataclass ``obj`` (``prefix.key``)."""
    for item in dataclasses.fields(obj):
        value = getattr(obj, item.name)
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{prefix}.{item.name}: {value} is not valid; use a finite number")


@dataclass
class LocalModelConfig:
    """How judgekit starts its own llama.cpp server for ``judge=local*``."""

    weights: str = "qwen2.5-coder-0.5b"
    """Name of a known weights entry (see ``judgekit.local.weights.KNOWN_WEIGHTS``)."""
    model_path: str | None = None
    """A GGUF file to use instead of the known weights; takes precedence when set."""
    n_threads: int = 1
    """llama.cpp threads. 1 is steady on a busy 2-core machine; spinning workers collapse at 2."""
    n_ctx: int = 4096
    """Context window in tokens; prompts longer than this fail as rows."""
    startup_timeout_s: float = 180.0
    """How long to wait for the server's ``/v1/models`` to answer before giving up."""

    def __post_init__(self) -> None:
        _require_finite(self, "judge.local")
        if self.n_threads < 1:
            raise ConfigError(
                f"judge.local.n_threads: {self.n_threads} is not valid; use 1 or more"
            )
        if self.n_ctx < 256:
            raise ConfigError(f"judge.local.n_ctx: {self.n_ctx} is too small; use 256 or more")


@dataclass
class JudgeConfig:
    """The judge model and how it is called through litellm."""

    name: str = "custom"
    """Short name of this judge option, used in tags and tables."""
    model: str = "???"
    """A litellm model string, e.g. ``openai/gpt-4o-mini`` or ``openai/NAME`` for any server."""
    api_base: str | None = None
    """Base URL of an OpenAI-compatible endpoint; null means the provider's default."""
    api_key_env: str | None = None
    """NAME of the environment variable holding the API key (never the key itself)."""
    temperature: float = 0.0
    """Sampling temperature; 0.0 for reproducible judgements."""
    max_tokens: int = 512
    """Upper bound on the judge's answer length in tokens."""
    timeout_s: float = 60.0
    """Per-call timeout in seconds; a call that takes longer is retried, then recorded as failed."""
    max_retries: int = 3
    """Retries after the first attempt on 429, 5xx and timeouts (not on other 4xx)."""
    retry_backoff_s: float = 1.0
    """Base of the exponential backoff between retries (seconds, with jitter)."""
    retry_max_wait_s: float = 60.0
    """Upper bound on one wait between retries, including a server's ``Retry-After``."""
    rpm: float | None = None
    """Requests per minute, enforced client-side; null = no limit."""
    tpm: float | None = None
    """Tokens per minute (prompt + completion, estimated before the call and corrected after),
    enforced client-side; null = no limit."""
    structured_output: str = "auto"  # a Switch; typed str so that YAML booleans parse
    """``auto`` | ``true`` | ``false``: send a JSON schema of the scores as ``response_format``."""
    logprobs: bool = False
    """Ask for ``top_logprobs`` and report logprob-weighted expected scores next to parsed ones."""
    top_logprobs: int = 10
    """How many alternatives per token to ask for when ``logprobs`` is on."""
    swap: bool = False
    """Pairwise: judge every pair in both orders (A/B and B/A). Consistent verdicts stand; an
    inconsistent pair counts as a tie (and is counted as inconsistent)."""
    local: LocalModelConfig | None = None
    """When set, judgekit starts a llama.cpp server for this judge and stops it afterwards."""
    extra_params: dict[str, Any] = field(default_factory=dict)
    """Further keyword arguments passed to ``litellm.acompletion`` unchanged."""
    client: JudgeClientKind = JudgeClientKind.litellm
    """``litellm`` (any provider) | ``direct``: a plain HTTP POST to an OpenAI-compatible
    ``api_base`` (``openai/<model>`` only), for fast local endpoints where litellm's CPU cost per
    call is the limit. Same retries, cache keys and failure reasons."""
    header_env: dict[str, str] = field(default_factory=dict)
    """Secret HTTP headers sent with every call: header name -> NAME of the environment variable
    holding its value (``{X-Api-Token: MY_TOKEN_VAR}``); values are never written anywhere."""
    max_response_bytes: int = 1_000_000
    """Largest answer body read from the endpoint; reading stops beyond it and the row fails
    with ``response_too_large`` (a judge's answer is a few kB)."""
    members: list[Any] = field(default_factory=list)
    """A panel (``judge=panel``): its members, judge option names (``[local, local_1_5b]``),
    each one a judge config once composed; ``judge.members.1.temperature=0.7`` overrides one
    member. Empty for a single judge."""
    aggregate: str = "mean"  # an Aggregate; a str so that a single judge's YAML needs no key
    """A panel: how its members' scores become the panel's (:class:`Aggregate`)."""
    weights_split: float = 0.3
    """A panel with ``aggregate: weighted``: the share of rows its member weights are fitted on
    (seeded, whole groups); those rows are left out of the reported agreement."""
    member_overrides: dict[str, Any] = field(default_factory=dict)
    """Where ``judge.members.N.KEY=VALUE`` overrides are kept until the members are composed
    (judgekit rewrites them so: Hydra would replace a member's name by the override)."""

    @property
    def is_panel(self) -> bool:
        """Whether this judge is a panel of member judges."""
        return bool(self.members)

    def __post_init__(self) -> None:
        _require_finite(self, "judge")
        if self.temperature < 0:
            raise ConfigError(
                f"judge.temperature: {self.temperature} is not valid; use 0.0 or more"
            )
        if self.max_tokens < 1:
            raise ConfigError(f"judge.max_tokens: {self.max_tokens} is not valid; use 1 or more")
        if self.timeout_s <= 0:
            raise ConfigError(
                f"judge.timeout_s: {self.timeout_s} is not valid; use a positive number"
            )
        if self.max_retries < 0:
            raise ConfigError(f"judge.max_retries: {self.max_retries} is not valid; use 0 or more")
        if self.max_response_bytes < 1:
            raise ConfigError(
                f"judge.max_response_bytes: {self.max_response_bytes} is not valid; "
                "use 1 or more (the default is 1000000)"
            )
        for key, limit in (("rpm", self.rpm), ("tpm", self.tpm)):
            if limit is not None and not limit > 0:
                raise ConfigError(
                    f"judge.{key}: {limit} is not valid; use a positive number, or null for no limit"
                )
        self.structured_output = Switch.parse(self.structured_output, "judge.structured_output")
        self.client = _choice(JudgeClientKind, self.client, "judge.client")
        if self.client == "direct" and self.local is None:
            if self.model != "???" and not self.model.startswith("openai/"):
                raise ConfigError(
                    f"judge.client: direct speaks only the OpenAI chat-completions protocol, but "
                    f"judge.model is {self.model!r}; use openai/<model> with judge.api_base, or "
                    "judge.client=litellm"
                )
            if not self.api_base:
                raise ConfigError(
                    "judge.client: direct needs judge.api_base (the endpoint's URL, e.g. "
                    "http://127.0.0.1:8000/v1); found none"
                )
        if self.api_key_env is not None:
            _require_variable_name("judge.api_key_env", self.api_key_env, "the key")
        for header, name in self.header_env.items():
            if not re.fullmatch(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+", str(header)):
                raise ConfigError(
                    f"judge.header_env: {header!r} is not a valid HTTP header name; use letters, "
                    "digits and dashes (e.g. X-Api-Token)"
                )
            _require_variable_name(f"judge.header_env.{header}", name, f"header {header}")
        self.aggregate = _choice(Aggregate, self.aggregate, "judge.aggregate")
        if not 0 < self.weights_split < 1:
            raise ConfigError(
                f"judge.weights_split: {self.weights_split} is not valid; use a share of the "
                "rows between 0 and 1 (the default is 0.3)"
            )
        if self.members:
            _check_members(self)


def _check_members(panel: JudgeConfig) -> None:
    """A panel has two or more composed members, none a panel itself, with distinct names."""
    if len(panel.members) < 2:
        raise ConfigError(
            f"judge.members: a panel needs two or more members; found {len(panel.members)} "
            "(e.g. judge.members=[local,local_1_5b]); for one judge choose it with judge=NAME"
        )
    for index, member in enumerate(panel.members):
        if not isinstance(member, JudgeConfig):  # composed by judgekit.config.panel
            raise ConfigError(f"judge.members.{index}: {member!r} is not a composed judge")
        if member.members:
            raise ConfigError(f"judge.members.{index}: a member cannot be a panel itself")
        if member.swap and not panel.swap:
            raise ConfigError(
                f"judge.members.{index}.swap: set judge.swap=true on the panel instead (every "
                "member judges both orders, or none does)"
            )
    names = [m.name for m in panel.members]
    if len(set(names)) < len(names):
        raise ConfigError(f"judge.members: member names must differ; found {names}")
    for index, name in enumerate(names):
        if name == "panel" or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
            raise ConfigError(
                f"judge.members.{index}.name: {name!r} is not valid; use letters, digits, '_', "
                "'.' or '-' (and not 'panel', which names the whole panel's figures)"
            )
    for a, b in itertools.combinations(range(len(names)), 2):
        first, second = (_without_name(panel.members[i]) for i in (a, b))
        if first == second:
            raise ConfigError(
                f"judge.members.{a} and judge.members.{b} are the same judge (same model and "
                f"settings): their calls are the same requests, so {names[b]} would repeat "
                f"{names[a]}'s answers from the cache; make them differ (e.g. "
                f"judge.members.{b}.temperature=0.7 and +judge.members.{b}.extra_params.seed=1)"
            )
    defaults = JudgeConfig()
    for key in _MEMBER_ONLY_KEYS:
        if getattr(panel, key) != getattr(defaults, key):
            raise ConfigError(
                f"judge.{key}: a panel's members keep their own settings, so this would be "
                f"ignored; set judge.members.N.{key} for the members it is meant for"
            )


def _without_name(judge: JudgeConfig) -> JudgeConfig:
    """``judge`` without its name (two members are the same judge when these are equal)."""
    return dataclasses.replace(judge, name="")


_MEMBER_ONLY_KEYS = (
    *("api_base", "api_key_env", "temperature", "max_tokens", "timeout_s", "max_retries"),
    *("retry_backoff_s", "retry_max_wait_s", "rpm", "tpm", "structured_output", "logprobs"),
    *("top_logprobs", "local", "extra_params", "client", "header_env", "max_response_bytes"),
)
"""Keys of one judge's calls: on a panel they belong to its members (``judge.members.N.KEY``)."""


def _require_variable_name(key: str, name: str, what: str) -> None:
    """``name`` must be an environment variable name; a pasted secret is never echoed back.

    A name that looks like a secret (digits in a lower- or mixed-case name) and is not set in
    the environment is refused here, so that no command (a run, ``doctor``, ``submit``) writes
    or prints it as a variable name.
    """
    if name.replace("_", "").isalnum():
        if looks_like_secret(name) and not os.environ.get(name):
            raise ConfigError(
                f"{key} must name an environment variable; the value given is not set as one and "
                f"looks like a secret itself (not shown); give the NAME of the variable that holds "
                f"{what} (e.g. OPENAI_API_KEY) and export it"
            )
        return
    shown = (
        "the value given (not shown: it looks like a secret)"
        if looks_like_secret(name)
        else repr(name)
    )
    raise ConfigError(
        f"{key}: {shown} is not an environment variable name; give the NAME of the variable that "
        f"holds {what} (e.g. OPENAI_API_KEY), never the secret itself"
    )


@dataclass
class Message:
    """One chat message of a prompt template."""

    role: Role = Role.user
    """``system``, ``user`` or ``assistant``."""
    content: str = ""
    """Jinja2 text; ``{{item.<field>}}`` inserts a data field, ``scores`` is the score schema."""
    content_file: str | None = None
    """A file holding the Jinja2 text instead of ``content`` (e.g. ``prompts/rubric.j2``),
    relative to the config directory (``--config-dir``), then to the working directory."""
    content_sha256: str | None = None
    """Set by judgekit when it reads ``content_file``: the file's sha256 (logged as a param)."""

    def __post_init__(self) -> None:
        self.role = _choice(Role, self.role, "prompt.messages[].role")
        if self.content_file is None:
            if self.content_sha256 is not None:
                raise ConfigError(
                    "prompt.messages[].content_sha256 is set by judgekit from content_file; "
                    "remove it"
                )
            return
        if self.content_sha256 is None:  # built in Python, not composed: read it here
            from judgekit.config.userdirs import read_content_file

            if self.content:
                raise ConfigError(
                    "prompt.messages[]: give content or content_file, not both "
                    f"(content_file is {self.content_file!r})"
                )
            where = "prompt.messages[].content_file"
            self.content, self.content_sha256 = read_content_file(self.content_file, [], where)


@dataclass
class PromptConfig:
    """A prompt version: chat messages rendered once per example."""

    name: str = "custom"
    """Version name, e.g. ``v1``; logged as a tag."""
    description: str = ""
    """What this version changes, for people comparing versions."""
    messages: list[Message] = field(default_factory=list)
    """The chat messages; at least one."""

    def __post_init__(self) -> None:
        if not self.messages:
            raise ConfigError("prompt.messages: the list is empty; give at least one message")


@dataclass
class ParserConfig:
    """How one score is read from the judge's answer."""

    kind: ParserKind = ParserKind.json
    """``json`` (find a JSON object, read ``json_path``) or ``regex`` (first group of ``pattern``)."""
    json_path: str | None = None
    """Dotted key path in the JSON object; null means the score's name."""
    pattern: str | None = None
    """Regular expression with one group, for ``kind: regex``."""

    def __post_init__(self) -> None:
        self.kind = _choice(ParserKind, self.kind, "score parser kind")
        if self.kind == "regex" and not self.pattern:
            raise ConfigError("score parser: kind is regex but no pattern is given")
        if self.pattern:
            try:
                groups = re.compile(self.pattern).groups
            except re.error as err:
                raise ConfigError(f"score parser pattern {self.pattern!r}: {err}") from None
            if groups > 1:
                raise ConfigError(
                    f"score parser pattern {self.pattern!r} has {groups} groups; use one group "
                    "around the value (or (?:...) for the others)"
                )


@dataclass
class RubricLabel:
    """One rubric label and the number it stands for."""

    value: float = 0.0
    """The number this label counts as in the statistics."""
    description: str = ""
    """What the label means, shown to the judge."""

    def __post_init__(self) -> None:
        _require_finite(self, "score label")


@dataclass
class ScoreSpec:
    """One score: a numeric range or a set of rubric labels, and how to parse it."""

    name: str = "???"
    """The score's name; also the default JSON key and the metric prefix."""
    kind: ScoreKind = ScoreKind.pointwise
    """``pointwise`` (a value per response) or ``preference`` (a verdict between responses A and
    B, with labels ``A``, ``B`` and ``tie``): preference scores get pairwise statistics."""
    description: str = ""
    """What the score measures, shown to the judge."""
    # Typed Any, not float: OmegaConf would turn ``0`` into ``0.0`` and lose what the user wrote,
    # which is what tells an integer scale (``1``..``5``) from a continuous one (``0.0``..``1.0``).
    minimum: Any = None
    """Lowest valid value of a numeric score (a number)."""
    maximum: Any = None
    """Highest valid value of a numeric score (a number)."""
    integer: bool | None = None
    """Whether the scale's levels are the whole numbers ``minimum..maximum`` (QWK, within-1
    agreement, per-level figures). Null (the default): decided by how the bounds are written —
    whole numbers (``1``..``5``, ``-2``..``2``, ``0``..``100``) make an integer scale, a bound
    written with a decimal point (``0.0``..``1.0``) a continuous one. Set it to say otherwise."""
    levels: dict[str, str] = field(default_factory=dict)
    """Optional meaning of each numeric level (``"0": "not helpful"``), shown to the judge."""
    labels: dict[str, RubricLabel] = field(default_factory=dict)
    """Rubric labels (label -> value, description); use instead of ``minimum``/``maximum``."""
    parser: ParserConfig = field(default_factory=ParserConfig)
    """How the value is read from the judge's answer."""

    def __post_init__(self) -> None:
        where = f"score {self.name!r}"
        self.kind = _choice(ScoreKind, self.kind, f"{where}: kind")
        if self.kind == "preference" and set(self.labels) != {"A", "B", "tie"}:
            raise ConfigError(
                f"{where}: a preference score needs exactly the labels A, B and tie "
                f"(found {sorted(self.labels)})"
            )
        if self.labels:
            values = [label.value for label in self.labels.values()]
            span = (float(min(values)), float(max(values)))
            given = (self.minimum, self.maximum)
            if given != (None, None) and given != span:  # a rebuilt spec repeats its own span
                raise ConfigError(f"{where}: give either labels or minimum/maximum, not both")
            self.minimum, self.maximum = span
            return
        if self.minimum is None or self.maximum is None:
            raise ConfigError(
                f"{where}: a numeric score needs both minimum and maximum "
                f"(found minimum={self.minimum}, maximum={self.maximum}), or give labels"
            )
        for key in ("minimum", "maximum"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"{where}: {key} {value!r} is not valid; use a number")
        written_whole = isinstance(self.minimum, int) and isinstance(self.maximum, int)
        if not (math.isfinite(self.minimum) and math.isfinite(self.maximum)):
            raise ConfigError(f"{where}: minimum and maximum must be finite numbers")
        if self.minimum > self.maximum:
            raise ConfigError(
                f"{where}: minimum {self.minimum} is greater than maximum {self.maximum}; "
                "swap them or fix the range"
            )
        whole = float(self.minimum).is_integer() and float(self.maximum).is_integer()
        if self.integer and not whole:
            raise ConfigError(
                f"{where}: integer=true needs whole-number bounds (found minimum={self.minimum:g}, "
                f"maximum={self.maximum:g}); fix the range or set integer=false"
            )
        if self.integer is None:  # decided once, and kept (snapshots, resolved_config.json)
            self.integer = written_whole

    @property
    def key(self) -> str:
        """The JSON key path the parser reads."""
        return self.parser.json_path or self.name

    @property
    def is_integer_scale(self) -> bool:
        """True when the levels are the whole numbers of the range (e.g. 0..4), so they can be
        enumerated: whole-number bounds, unless ``integer`` is false."""
        assert self.minimum is not None and self.maximum is not None
        whole = float(self.minimum).is_integer() and float(self.maximum).is_integer()
        return whole and self.integer is not False


@dataclass
class ScoreSchemaConfig:
    """The score schema: every score one judge call returns."""

    name: str = "custom"
    """Name of this schema option, logged as a tag."""
    scores: list[ScoreSpec] = field(default_factory=list)
    """The scores; at least one, names unique."""

    def __post_init__(self) -> None:
        if not self.scores:
            raise ConfigError("score.scores: the list is empty; give at least one score")
        names = [s.name for s in self.scores]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ConfigError(
                f"score.scores: duplicate score names {duplicates}; names must be unique"
            )

    @property
    def names(self) -> list[str]:
        """Score names in schema order."""
        return [s.name for s in self.scores]


@dataclass
class FieldsConfig:
    """Which dataset columns hold the prompt, the response, the id and each human score."""

    prompt: str = "prompt"
    """Column with the user prompt (``item.prompt`` in templates)."""
    response: str | None = "response"
    """Column with the response to judge (``item.response``); null for datasets without one."""
    id: str | None = None
    """Column with a unique example id; null numbers the rows from 0."""
    group: str | None = None
    """Column whose equal values mark rows that share a prompt; null groups by the prompt text."""
    system: str | None = None
    """Column naming the system/model that wrote the response."""
    scores: dict[str, str] = field(default_factory=dict)
    """Score name -> column with the human score; a score missing here has no human label."""
    extra: dict[str, str] = field(default_factory=dict)
    """Further template names -> columns (``item.<name>``), e.g. ``response_a: output_1``."""
    label_map: dict[Any, Any] = field(default_factory=dict)
    """Raw values of the human-label columns (``scores`` and ``annotators``) -> label names, or
    numbers for a numeric score, e.g. ``{-1: A, 1: B, 0: tie}``, ``{true: pass, false: fail}``.
    Keys may be numbers, booleans or text; a value matches by :mod:`judgekit.config.labels`'s rule
    (``1``, ``1.0`` and ``"1"`` are one key; booleans never equal numbers). When the map is not
    empty, a non-null value it does not cover is a setup error."""
    annotators: dict[str, list[str]] = field(default_factory=dict)
    """Score name -> columns with each annotator's own label, for the human-human ceiling."""

    def __post_init__(self) -> None:
        label_lookup(self.label_map, "dataset.fields.label_map")


@dataclass
class DatasetConfig:
    """Where the examples come from."""

    name: str = "custom"
    """Name of this dataset option, logged as a tag."""
    source: DatasetSource = DatasetSource.file
    """``hub`` (Hugging Face ``datasets``), ``file`` (local path), ``inline`` (``rows``) or
    ``mlflow`` (labelled traces of the MLflow experiment ``experiment`` in ``tracking.uri``)."""
    path: str | None = None
    """Hub dataset id for ``hub``; a .jsonl, .jsonl.gz, .csv or .parquet file for ``file``."""
    split: str | None = None
    """Split to load (``hub``), e.g. ``validation``."""
    data_files: dict[str, str] | None = None
    """For ``hub``: split -> file inside the dataset repository, e.g. validation.jsonl.gz."""
    rows: list[Any] | None = None
    """For ``inline``: the rows themselves, as mappings."""
    data_root: str | None = None
    """Folder the dataset files live under (paths in dataset options are built on it); defaults
    to ``$JUDGEKIT_DATA_ROOT`` or ``../shared/data`` in the options that use it."""
    adapter: str | None = None
    """Name of a row adapter in ``judgekit.data.adapters`` that reshapes each raw row (e.g. ``pandalm``:
    joins instruction and input, takes the annotators' majority)."""
    fields: FieldsConfig = field(default_factory=FieldsConfig)
    """Which columns mean what."""
    drop_incomplete: bool = False
    """False: a row in which a field the prompt shows is missing or null is a setup error naming
    the rows. True: such rows are left out, counted (``dropped_incomplete`` in the summary) and
    logged."""
    experiment: str | None = None
    """For ``mlflow``: the MLflow experiment (name) whose traces carry the human labels, as
    expectations or HUMAN-source feedback named like the scores; read from ``tracking.uri``."""
    run_id: str | None = None
    """For ``mlflow``: only the traces of this run of ``experiment``; null = all its traces."""

    def __post_init__(self) -> None:
        self.source = _choice(DatasetSource, self.source, "dataset.source")
        if self.source == "mlflow" and not self.experiment:
            raise ConfigError(
                "dataset.experiment: not set; dataset.source=mlflow needs the MLflow experiment "
                "holding the labelled traces (e.g. dataset.experiment=judgekit)"
            )
        if self.source in {"hub", "file"} and not self.path:
            raise ConfigError(
                f"dataset.path: not set; dataset.source={self.source} needs a path "
                "(e.g. dataset.path=data/validation.jsonl.gz)"
            )
        if self.source == "inline" and not self.rows:
            raise ConfigError("dataset.rows: empty; dataset.source=inline needs at least one row")


@dataclass
class RunnerConfig:
    """How many examples are judged and how many calls run at once."""

    parallelism: int = 4
    """Judge calls in flight at most."""
    limit_samples: int | None = None
    """Judge a seeded sample of this many examples (stratified by the human score); null = all."""
    seed: int = 0
    """Seed for sampling and for retry jitter."""
    ignore_request_failure: bool = True
    """True: a row whose call still fails after retries is recorded as failed and the run goes
    on. False: the first such row stops the run with an error (results so far are kept)."""
    progress: str = "auto"  # a Switch; typed str so that YAML booleans parse (see Switch)
    """``auto`` (a bar when attached to a terminal), ``true`` or ``false``."""
    min_coverage: float | None = None
    """Fail the run (MLflow status FAILED, exit code 1) when a score has a smaller share of
    examples scored than this, e.g. 0.95; results are still written. null (the default): fail
    only when a score was scored on no example at all; 0 accepts even that."""
    rejudge: Rejudge | None = None
    """``failed``: judge again only the examples that failed in ``rejudge_from``, reuse the rest."""
    rejudge_from: str | None = None
    """The earlier run: its output directory, its results.parquet, or its MLflow run id."""
    max_consecutive_failures: int = 10
    """Stop the run (exit code 1, results kept) after this many judge calls in a row failed
    (refused connections, timeouts, 5xx after their retries); a success resets the count.
    0 never stops."""
    samples: int = 1
    """Draws per request (repeat sampling): each is its own call and cache entry; needs
    ``judge.temperature`` > 0 or a ``judge.extra_params.seed`` (each draw gets its own seed)."""
    reduce: Reduce = Reduce.mean
    """How an item's successful draws become its score: ``mean``, ``median``, ``mode`` (a tie
    between modes: their mean) or ``expected`` (the mean of the draws' logprob-expected scores,
    needs ``judge.logprobs``). A preference score takes the majority, ties as ties."""

    def __post_init__(self) -> None:
        _require_finite(self, "runner")
        self.progress = Switch.parse(self.progress, "runner.progress")
        if self.parallelism < 1:
            raise ConfigError(f"runner.parallelism: {self.parallelism} is not valid; use 1 or more")
        if self.min_coverage is not None and not 0.0 <= self.min_coverage <= 1.0:
            raise ConfigError(
                f"runner.min_coverage: {self.min_coverage} is not valid; use a share from 0 to 1"
            )
        if self.rejudge is not None:
            self.rejudge = _choice(Rejudge, self.rejudge, "runner.rejudge")
        if self.rejudge and not self.rejudge_from:
            raise ConfigError(
                "runner.rejudge_from: not set; runner.rejudge=failed needs the earlier run "
                "(its output directory, results.parquet or MLflow run id)"
            )
        if self.limit_samples is not None and self.limit_samples < 1:
            raise ConfigError(
                f"runner.limit_samples: {self.limit_samples} is not valid; use 1 or more, or null for all"
            )
        if self.max_consecutive_failures < 0:
            raise ConfigError(
                f"runner.max_consecutive_failures: {self.max_consecutive_failures} is not valid; "
                "use 1 or more, or 0 to never stop"
            )
        if self.samples < 1:
            raise ConfigError(f"runner.samples: {self.samples} is not valid; use 1 or more")
        self.reduce = _choice(Reduce, self.reduce, "runner.reduce")


@dataclass
class StatsConfig:
    """How agreement statistics and their uncertainty are computed."""

    bootstrap_resamples: int = 1000
    """Bootstrap resamples for confidence intervals; 0 turns intervals off."""
    confidence: float = 0.95
    """Confidence level of the intervals."""
    calibrate: Calibrate = Calibrate.none
    """``none`` | ``isotonic`` | ``ordinal``: fit a monotone map from the judge's score (its
    ``judge_expected`` when present) to the human scale on ``calibration_split`` of the rows and
    report raw and calibrated agreement on the other rows (:mod:`judgekit.calibrated`)."""
    calibration_split: float = 0.3
    """Share of the examples (whole ``dataset.fields.group`` groups, seeded by ``runner.seed``)
    the calibration map is fitted on; the rest are the rows it is reported on."""
    apply_calibration: str | None = None
    """A fitted map to apply instead of fitting one: an MLflow run id in ``tracking.uri``, a
    ``calibration.json``, or a run directory holding it; every row is then reported calibrated."""
    ppi: bool = False
    """Also log the prediction-powered (PPI++) estimate of the mean human score (a preference
    score: the human win rate) from the labelled rows and the judge's scores of the unlabelled
    ones, beside the judge-only and human-only means (``<score>/ppi_mean``, ...)."""
    ppi_width: float | None = None
    """With ``stats.ppi``: also log how many labelled rows the PPI interval needs to be this wide
    (``<score>/labels_needed``); null: not computed."""
    alt_test_epsilon: float = 0.2
    """The alt-test's cost-benefit margin epsilon (run when the examples carry annotators)."""

    def __post_init__(self) -> None:
        _require_finite(self, "stats")
        if self.ppi_width is not None and not self.ppi_width > 0:
            raise ConfigError(
                f"stats.ppi_width: {self.ppi_width} is not valid; use a positive interval width "
                "or null"
            )
        if not 0 <= self.alt_test_epsilon < 1:
            raise ConfigError(
                f"stats.alt_test_epsilon: {self.alt_test_epsilon} is not valid; use a value in "
                "[0, 1) (the paper's default is 0.2)"
            )
        self.calibrate = _choice(Calibrate, self.calibrate, "stats.calibrate")
        if not 0 < self.calibration_split < 1:
            raise ConfigError(
                f"stats.calibration_split: {self.calibration_split} is not valid; "
                "use a value in (0, 1)"
            )
        if self.apply_calibration is not None and not str(self.apply_calibration).strip():
            raise ConfigError(
                "stats.apply_calibration: '' is not valid; use an MLflow run id, a "
                "calibration.json or a run directory holding one"
            )
        if self.apply_calibration and self.calibrate != Calibrate.none:
            raise ConfigError(
                f"stats.apply_calibration: applying a fitted map fits nothing, but "
                f"stats.calibrate is {self.calibrate.value!r}; drop one of the two"
            )
        if self.bootstrap_resamples < 0:
            raise ConfigError(
                f"stats.bootstrap_resamples: {self.bootstrap_resamples} is not valid; use 0 or more"
            )
        if not 0 < self.confidence < 1:
            raise ConfigError(
                f"stats.confidence: {self.confidence} is not valid; use a value in (0, 1)"
            )


@dataclass
class CacheConfig:
    """The response cache: a rerun sends no call it already paid for."""

    mode: CacheMode = CacheMode.read_write
    """``read_write`` (reuse answers, store new ones: a rerun after a crash sends only what was
    never answered) | ``read_only`` | ``refresh`` (call again, overwrite) | ``off``."""
    dir: str | None = None
    """Directory of the cache database; null = judgekit's cache directory in the user cache home."""

    def __post_init__(self) -> None:
        self.mode = _choice(CacheMode, self.mode, "cache.mode")


@dataclass
class TrackingConfig:
    """Where the run is logged in MLflow."""

    uri: str = "sqlite:///mlflow.db"
    """MLflow tracking URI; the default is a SQLite file in the directory the command runs in."""
    experiment: str = "judgekit"
    """MLflow experiment name."""
    enabled: bool = True
    """False: write the run directory only, log nothing to MLflow."""
    run_name: str | None = None
    """MLflow run name; null = ``<judge>-<prompt>-<score>-<dataset>``."""
    register_dataset: bool = False
    """True: also register the run's examples as an MLflow GenAI evaluation dataset (inputs =
    item fields, expectations = human labels), reused while the data's digest is unchanged."""
    register_judge: bool = True
    """True: register the run's judge (model, prompt, score schema) as a judge of the
    experiment (MLflow's Judges view); a judge already registered the same is not repeated."""
    traces: str = "auto"  # a Switch; typed str so that YAML booleans parse (see Switch)
    """One MLflow trace per judged row, with the judge's feedback and the human expectations:
    ``auto`` (the first ``max_traces`` rows), ``true`` (every row) or ``false`` (none)."""
    max_traces: int = 2000
    """With ``traces: auto``, the most rows of a run that get a trace (0: none)."""

    def __post_init__(self) -> None:
        self.traces = Switch.parse(self.traces, "tracking.traces")
        if self.max_traces < 0:
            raise ConfigError(
                f"tracking.max_traces: {self.max_traces} is not valid; use 0 or more (the most "
                "rows of a run that get an MLflow trace with tracking.traces=auto)"
            )


@dataclass
class Config:
    """A whole run: one option of each group."""

    judge: JudgeConfig = field(default_factory=JudgeConfig)
    prompt: PromptConfig = field(default_factory=lambda: PromptConfig(messages=[Message()]))
    score: ScoreSchemaConfig = field(
        default_factory=lambda: ScoreSchemaConfig(
            scores=[ScoreSpec(name="score", minimum=0, maximum=1)]
        )
    )
    dataset: DatasetConfig = "???"  # type: ignore[assignment]  # OmegaConf's MISSING: from a group
    runner: RunnerConfig = field(default_factory=RunnerConfig)
    stats: StatsConfig = field(default_factory=StatsConfig)
    cache: CacheConfig = field(default_factory=CacheConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    optimize: OptimizeConfig = field(default_factory=OptimizeConfig)
    """Used by ``judgekit optimize`` only; not logged with an ordinary run."""
    audit: AuditConfig = field(default_factory=AuditConfig)
    """Used by ``judgekit audit`` only; not logged with an ordinary run."""

    def __post_init__(self) -> None:
        """Checks across groups, run when the config is composed (OmegaConf builds the typed
        groups first), so a mismatch fails before any data is loaded."""
        _check_prompt_kind(self.prompt, self.score)
        if isinstance(self.dataset, DatasetConfig):
            check_objective(self.optimize, self.score, self.dataset)
            audited_score(self.audit, self.score, self.dataset)
        preference = any(spec.kind == "preference" for spec in self.score.scores)
        if self.judge.swap and not preference:
            raise ConfigError(swap_needs_preference(self.score.name))
        if self.judge.swap and self.runner.rejudge:
            raise ConfigError("runner.rejudge: not available with judge.swap=true yet")
        for index, judge in enumerate(self.judge.members or [self.judge]):
            try:
                _check_samples(self.runner, judge)
            except ConfigError as err:
                if not self.judge.members:
                    raise
                mine = str(err).replace("judge.", f"judge.members.{index}.")
                raise ConfigError(f"judge.members.{index} ({judge.name}): {mine}") from None
        if self.judge.members and self.runner.rejudge:
            raise ConfigError("runner.rejudge: not available with a judge panel yet")


def _check_samples(runner: RunnerConfig, judge: JudgeConfig) -> None:
    """Repeat sampling needs draws that can differ, and ``reduce=expected`` needs logprobs."""
    if runner.samples > 1 and judge.temperature == 0 and "seed" not in judge.extra_params:
        raise ConfigError(
            f"runner.samples: {runner.samples} draws at judge.temperature=0 would repeat one "
            "answer; set judge.temperature above 0 (e.g. 0.7), or judge.extra_params.seed where "
            "the endpoint takes a seed"
        )
    if runner.samples > 1 and runner.rejudge:
        raise ConfigError("runner.rejudge: not available with runner.samples > 1 yet")
    if runner.reduce == Reduce.expected and not judge.logprobs:
        raise ConfigError(
            "runner.reduce: expected averages the draws' logprob-expected scores; set "
            "judge.logprobs=true, or use mean, median or mode"
        )


def swap_needs_preference(score_name: str) -> str:
    """The message for ``judge.swap: true`` without a preference score."""
    return (
        f"judge.swap: true needs a preference score (score=preference); "
        f"score {score_name!r} has none"
    )


def _check_prompt_kind(prompt: PromptConfig, score: ScoreSchemaConfig) -> None:
    """A preference score needs a prompt that shows both responses, and the other way round.

    A template that does not parse is left to the render pre-pass, which names the message and line.
    """
    from judgekit.prompts.fields import template_fields

    try:
        fields = template_fields(prompt.name, tuple(m.content for m in prompt.messages))
    except TemplateError:
        return
    pairwise_prompt = {"response_a", "response_b"} <= fields
    preference = any(spec.kind == "preference" for spec in score.scores)
    if preference and not pairwise_prompt:
        raise ConfigError(
            f"prompt {prompt.name!r} does not show item.response_a and item.response_b, but "
            f"score {score.name!r} asks for a preference; use prompt=pairwise_v1 or pairwise_v2"
        )
    if pairwise_prompt and not preference:
        raise ConfigError(
            f"prompt {prompt.name!r} compares two responses, but score {score.name!r} has "
            "no preference score; use score=preference"
        )
