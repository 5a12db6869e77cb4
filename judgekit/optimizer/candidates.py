"""Candidate prompts of ``judgekit optimize``: how one is built from the seed, and its YAML file.

A candidate is an ordinary prompt version. ``gepa`` changes its *instructions*: the first system
message (one is added before the others when the seed has none). ``fewshot`` adds
*demonstrations*: a user message (the seed's last user message rendered for a train row) and an
assistant message (the human label written as the answer the judge should give), inserted before
the seed's last user message. The rest of the seed is kept as written, placeholders included.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from judgekit.config.schema import Message, PromptConfig, ScoreSchemaConfig, ScoreSpec
from judgekit.data.loading import Example
from judgekit.errors import TemplateError

__all__ = [
    "Candidate",
    "answer_for",
    "build_prompt",
    "candidate_name",
    "demo_messages",
    "free_name",
    "instructions_of",
    "write_candidate",
]

INSTRUCTIONS = "instructions"
"""The component name gepa evolves."""
DEFAULT_INSTRUCTIONS = "You are an impartial judge. Follow the user's rating instructions exactly."
"""The instructions gepa starts from when the seed prompt has no system message."""


@dataclass
class Candidate:
    """One prompt the search judged: its name, where it came from and what it scored."""

    name: str
    prompt: PromptConfig
    parent: str | None = None
    method: str = "seed"
    """``seed``, ``gepa`` or ``fewshot``."""
    instructions: str = ""
    demos: list[str] = field(default_factory=list)
    """Example ids of its demonstrations."""
    dev: float | None = None
    """The objective on the dev split (None until judged there)."""
    train: float | None = None
    """The objective on the train rows it was judged on (a gepa minibatch), if any."""
    calls: int = 0
    """Calls the search had spent when it was proposed (for the best-so-far curve)."""
    cost: int = 0
    """Calls spent judging this candidate (requests new to the search)."""
    path: Path | None = None
    """Its prompt YAML, once written."""
    run_id: str | None = None


def instructions_of(prompt: PromptConfig) -> str:
    """The seed's instructions: its first system message, or :data:`DEFAULT_INSTRUCTIONS`."""
    for message in prompt.messages:
        if message.role == "system":
            return message.content
    return DEFAULT_INSTRUCTIONS


def build_prompt(
    seed: PromptConfig,
    name: str,
    *,
    instructions: str | None = None,
    demos: list[Message] | None = None,
    description: str = "",
    literal: bool = False,
) -> PromptConfig:
    """The seed with its instructions replaced and/or demonstrations inserted; ``literal`` shows
    the instructions as plain text even when they parse as a template."""
    messages = [replace(m) for m in seed.messages]
    if instructions is not None:
        text = _literal(instructions) if literal else _as_template(instructions)
        system = next((i for i, m in enumerate(messages) if m.role == "system"), None)
        if system is None:
            messages.insert(0, Message(role="system", content=text))  # type: ignore[arg-type]
        else:
            messages[system] = Message(role="system", content=text)  # type: ignore[arg-type]
    if demos:
        last = max(i for i, m in enumerate(messages) if m.role == "user")
        messages[last:last] = demos
    return PromptConfig(name=name, description=description or seed.description, messages=messages)


def _as_template(text: str) -> str:
    """Proposed instructions as a template: kept as written when they parse as Jinja2 (the seed's
    own syntax survives), else shown literally."""
    import jinja2

    try:
        jinja2.Environment().parse(text)
    except jinja2.TemplateSyntaxError:
        return _literal(text)
    return text


def _literal(text: str) -> str:
    """``text`` shown as is by Jinja2 (a ``{{`` in a demonstration is text, not a variable)."""
    if "{%" not in text and "{{" not in text and "{#" not in text:
        return text
    return (
        "{% raw %}"
        + text.replace("{% endraw %}", "{% endraw %}{{ '{% endraw %}' }}{% raw %}")
        + "{% endraw %}"
    )


def answer_for(example: Example, schema: ScoreSchemaConfig) -> str | None:
    """The answer a judge should give for ``example``: its human labels as the schema's JSON.

    None when a score has no human label, or a rubric score's label has no rubric value.
    """
    answer: dict[str, Any] = {}
    for spec in schema.scores:
        value = example.human.get(spec.name)
        if value is None or value != value:  # no label (or NaN)
            return None
        shown = _shown_value(spec, value)
        if shown is None:
            return None
        answer[spec.key] = shown
    return json.dumps(answer)


def _shown_value(spec: ScoreSpec, value: float) -> Any:
    if spec.labels:
        return next((label for label, r in spec.labels.items() if r.value == value), None)
    return int(value) if spec.is_integer_scale and float(value).is_integer() else value


def demo_messages(
    seed: PromptConfig, examples: list[Example], schema: ScoreSchemaConfig
) -> list[Message]:
    """A user/assistant pair per example: the seed's last user message rendered for it, then
    the answer its human labels give."""
    from judgekit.prompts import render

    last = max(i for i, m in enumerate(seed.messages) if m.role == "user")
    only_user = PromptConfig(name=seed.name, messages=[seed.messages[last]])
    pairs: list[Message] = []
    for example in examples:
        answer = answer_for(example, schema)
        if answer is None:
            raise TemplateError(f"example {example.id!r} has no complete human label to show")
        shown = render(only_user, example, schema)[0]["content"]
        pairs.append(Message(role="user", content=_literal(shown)))  # type: ignore[arg-type]
        pairs.append(Message(role="assistant", content=_literal(answer)))  # type: ignore[arg-type]
    return pairs


def candidate_name(seed: str, k: int) -> str:
    """``<seed>_opt<k>``."""
    return f"{seed}_opt{k}"


def write_candidate(candidate: Candidate, directory: Path, header: list[str]) -> Path:
    """Write ``candidate`` as ``DIR/prompt/<name>.yaml``, ``header`` lines as comments on top."""
    target = directory / "prompt" / f"{candidate.name}.yaml"
    target.parent.mkdir(parents=True, exist_ok=True)
    body = {
        "name": candidate.prompt.name,
        "description": candidate.prompt.description,
        "messages": [
            {"role": str(m.role), "content": m.content} for m in candidate.prompt.messages
        ],
    }
    comments = "".join(f"# {line}\n" for line in header)
    target.write_text(comments + yaml.dump(body, Dumper=_BlockDumper, sort_keys=False, width=100))
    return target


def same_messages(path: Path, prompt: PromptConfig) -> bool:
    """Whether the prompt file at ``path`` holds exactly ``prompt``'s messages."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return False
    mine = [{"role": str(m.role), "content": m.content} for m in prompt.messages]
    return isinstance(data, dict) and data.get("messages") == mine


def free_name(directory: Path, seed: str, prompt: PromptConfig, taken: set[str]) -> str:
    """The first ``<seed>_opt<k>`` not used by another prompt: a rerun finds its own file again
    (same messages), another optimisation's file is never overwritten."""
    k = 1
    while True:
        name = candidate_name(seed, k)
        path = directory / "prompt" / f"{name}.yaml"
        if name not in taken and (
            not path.exists() or same_messages(path, replace(prompt, name=name))
        ):
            return name
        k += 1


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings as ``|-`` blocks, so a prompt file reads like a hand-written one."""


def _str_presenter(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    long = "\n" in data or len(data) > 80
    if long and not re.search(r"[ \t]\n|[^\S\n]$|^\s", data):
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


_BlockDumper.add_representer(str, _str_presenter)
