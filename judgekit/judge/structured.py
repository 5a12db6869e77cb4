"""Structured output: a JSON schema of the score schema, sent as ``response_format``."""

from __future__ import annotations

from typing import Any

from judgekit.config.schema import JudgeConfig, ScoreSchemaConfig, ScoreSpec

__all__ = ["json_schema_for", "response_format_for", "wants_structured_output"]


def _property(spec: ScoreSpec) -> dict[str, Any]:
    if spec.labels:
        return {"type": "string", "enum": list(spec.labels), "description": spec.description}
    kind = "integer" if spec.is_integer_scale else "number"
    return {
        "type": kind,
        "minimum": spec.minimum,
        "maximum": spec.maximum,
        "description": spec.description,
    }


def json_schema_for(schema: ScoreSchemaConfig) -> dict[str, Any]:
    """A JSON schema with one required property per score (top-level keys only)."""
    properties = {spec.name: _property(spec) for spec in schema.scores}
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def wants_structured_output(judge: JudgeConfig) -> bool:
    """``true``/``false`` as given; ``auto`` is on for judgekit's local server, else off."""
    setting = str(judge.structured_output).lower()
    if setting == "auto":
        return judge.local is not None
    return setting == "true"


def response_format_for(judge: JudgeConfig, schema: ScoreSchemaConfig) -> dict[str, Any] | None:
    """The ``response_format`` argument for the judge call, or None when it is off.

    Only schemas whose scores are read from top-level JSON keys can be enforced this way; a
    nested ``json_path`` or a regex parser turns it off.
    """
    if not wants_structured_output(judge):
        return None
    if any(s.parser.kind != "json" or s.key != s.name for s in schema.scores):
        return None
    if judge.local is not None:
        # llama-cpp-python's server takes the schema inside a json_object response format and
        # turns it into a grammar; it refuses OpenAI's json_schema type.
        return {"type": "json_object", "schema": json_schema_for(schema)}
    return {
        "type": "json_schema",
        "json_schema": {"name": "scores", "schema": json_schema_for(schema), "strict": True},
    }
