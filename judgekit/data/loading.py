"""Load a dataset into Examples: hub, local files or inline rows, with its columns checked.

Every problem with the data is raised as :class:`DatasetError` naming the file, the column or the
row and the value, before any judge call is made. Reading the raw rows of each format is
:mod:`judgekit.data.files`; this module maps them to Examples and checks them.
"""

from __future__ import annotations

import difflib
import gc
import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from judgekit.config.labels import LabelKey, label_key, label_lookup
from judgekit.config.schema import DatasetConfig, ScoreSchemaConfig
from judgekit.data.files import FILE_FORMATS, check_mappings, check_text, load_hub, load_paths
from judgekit.errors import ConfigError, DatasetError
from judgekit.records import Example

__all__ = [
    "Example",
    "FILE_FORMATS",
    "find_incomplete",
    "load_examples",
    "load_rows",
    "to_examples",
]

_SHOWN_ROWS = 5
"""How many rows an error about several rows names before it gives the count."""


def load_examples(
    cfg: DatasetConfig, schema: ScoreSchemaConfig, *, tracking_uri: str | None = None
) -> list[Example]:
    """Load the rows ``cfg`` points at and turn them into checked Examples.

    ``tracking_uri`` is the MLflow store ``dataset.source=mlflow`` reads its traces from.
    """
    with _no_gc_passes():
        if cfg.source == "mlflow":
            from judgekit.data.mlflow_source import load_mlflow_rows

            rows, where, cfg = load_mlflow_rows(cfg, schema, tracking_uri or "sqlite:///mlflow.db")
        else:
            rows, where = load_rows(cfg)
        return to_examples(rows, cfg, schema, where=where)


@contextmanager
def _no_gc_passes() -> Iterator[None]:
    """Pause the cyclic garbage collector while millions of small objects are built.

    Building rows and Examples makes no reference cycles, but every few hundred new containers
    Python rescans the young heap, and now and then all of it (litellm, MLflow, pandas): on a
    100k-row file that was about a third of the loading time (``bench/bench_scale.py``).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def load_rows(cfg: DatasetConfig) -> tuple[list[dict[str, Any]], str]:
    """Read the raw rows and a short name of where they came from (for messages).

    ``dataset.source=mlflow`` needs the store: :func:`load_examples` with ``tracking_uri``.
    """
    if cfg.source == "mlflow":
        raise ConfigError("dataset.source: mlflow rows are read by load_examples(tracking_uri=...)")
    if cfg.source == "inline":
        rows = check_mappings([dict(r) for r in cfg.rows or []], "dataset.rows")
        for index, row in enumerate(rows):
            check_text(row, "dataset.rows", f"row {index}")
        return rows, "dataset.rows"
    if cfg.source == "hub":
        rows, where = load_hub(cfg), f"{cfg.path} ({cfg.split or 'train'})"
    else:
        rows, where = load_paths(cfg)
    return _adapt(rows, cfg.adapter, where), where


def _adapt(rows: list[dict[str, Any]], adapter: str | None, where: str) -> list[dict[str, Any]]:
    if adapter is None:
        return rows
    from judgekit.data.adapters import get_adapter

    convert = get_adapter(adapter)
    out: list[dict[str, Any]] = []
    for index, row in enumerate(rows):
        try:
            converted = convert(row, index)
        except (KeyError, TypeError, ValueError) as err:
            raise DatasetError(
                f"{where}: row {index} cannot be read by dataset.adapter={adapter}: "
                f"{type(err).__name__}: {err}"
            ) from None
        out.extend(converted if isinstance(converted, list) else [converted])
    if not out:
        raise DatasetError(f"{where}: dataset.adapter={adapter} made no rows; the dataset is empty")
    return out


def to_examples(
    rows: list[dict[str, Any]], cfg: DatasetConfig, schema: ScoreSchemaConfig, *, where: str
) -> list[Example]:
    """Map columns to template fields and human scores, checking columns, ids and ranges."""
    mapping = _field_mapping(cfg)
    _check_columns(rows[0], mapping, cfg, schema, where)
    _check_score_names(rows[0], cfg, schema, where)
    for key in ("id", "group", "system"):
        _check_key_column(rows, key, getattr(cfg.fields, key), where)
    lookup = label_lookup(cfg.fields.label_map, "dataset.fields.label_map")
    examples = [
        _to_example(i, row, mapping, lookup, cfg, schema, where) for i, row in enumerate(rows)
    ]
    _check_unique_ids(examples, cfg, where)
    return examples


def _field_mapping(cfg: DatasetConfig) -> dict[str, str]:
    mapping = {"prompt": cfg.fields.prompt}
    if cfg.fields.response:
        mapping["response"] = cfg.fields.response
    mapping.update(cfg.fields.extra)
    return mapping


def _check_columns(
    first: dict[str, Any],
    mapping: dict[str, str],
    cfg: DatasetConfig,
    schema: ScoreSchemaConfig,
    where: str,
) -> None:
    columns = list(first)
    wanted = [(f"dataset.fields.{name}", col) for name, col in mapping.items()]
    if cfg.fields.id:
        wanted.append(("dataset.fields.id", cfg.fields.id))
    if cfg.fields.group:
        wanted.append(("dataset.fields.group", cfg.fields.group))
    if cfg.fields.system:
        wanted.append(("dataset.fields.system", cfg.fields.system))
    for name in schema.names:
        if name in cfg.fields.scores:
            wanted.append((f"dataset.fields.scores.{name}", cfg.fields.scores[name]))
        for col in cfg.fields.annotators.get(name, []):
            wanted.append((f"dataset.fields.annotators.{name}", col))
    for key, col in wanted:
        if col not in first:
            raise DatasetError(
                f"{key}: column {col!r} not found; columns in {where}: {', '.join(columns)}"
            )


def _check_score_names(
    first: dict[str, Any], cfg: DatasetConfig, schema: ScoreSchemaConfig, where: str
) -> None:
    """A score with no human labels whose name is close to one the data has labels for is a typo.

    ``score.scores.0.name=helpfullness`` would otherwise run without human labels and say nothing.
    Only labels whose column is in the data count, so a score meant to be judged without labels
    (aggregates only) still runs when the dataset option maps labels the file does not hold.
    """
    mapped = cfg.fields.scores
    unused = [n for n, col in mapped.items() if n not in schema.names and col in first]
    for name in schema.names:
        if name in mapped or name in cfg.fields.annotators:
            continue
        close = difflib.get_close_matches(name, unused, n=1)
        if close:
            raise ConfigError(
                f"score.scores: score {name!r} has no human labels, but {where} maps human "
                f"labels for {', '.join(unused)}; did you mean {close[0]!r}? Rename the score, "
                f"or map its labels with dataset.fields.scores.{name}=COLUMN"
            )


def _check_key_column(rows: list[dict[str, Any]], key: str, column: str | None, where: str) -> None:
    """Every row needs a value in the id (group, system) column the config names."""
    if not column:
        return
    bad = [i for i, row in enumerate(rows) if _is_null(row.get(column))]
    if not bad:
        return
    fix = {
        "id": "give every row an id, or set dataset.fields.id=null to number the rows from 0",
        "group": "give every row a group, or set dataset.fields.group=null to group by the prompt",
        "system": "give every row its system, or set dataset.fields.system=null",
    }[key]
    raise DatasetError(
        f"dataset.fields.{key}: column {column!r} is missing or null in {_rows_text(bad)} of "
        f"{where}; {fix}"
    )


def _rows_text(indexes: list[int]) -> str:
    """``rows 3, 7, 9`` or ``12 rows (3, 7, 9, 11, 15, ...)``."""
    if len(indexes) == 1:
        return f"row {indexes[0]}"
    shown = ", ".join(str(i) for i in indexes[:_SHOWN_ROWS])
    if len(indexes) <= _SHOWN_ROWS:
        return f"rows {shown}"
    return f"{len(indexes)} rows ({shown}, ...)"


def _is_null(value: Any) -> bool:
    """None, or a float NaN (how pandas reads a missing value)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def find_incomplete(
    examples: list[Example], present: set[str], shown: set[str]
) -> list[tuple[int, str]]:
    """The examples lacking a template field: ``(index, "item.x is missing" / "... is null")``.

    ``present`` are the fields the template reads (each must exist); ``shown`` those it prints
    unguarded (each must also hold a value: a null would be shown to the judge as ``None``).
    """
    incomplete = []
    for index, example in enumerate(examples):
        item = example.item
        for name in sorted(present):
            if name not in item:
                incomplete.append((index, f"item.{name} is missing"))
                break
            if name in shown and _is_null(item[name]):
                incomplete.append((index, f"item.{name} is null"))
                break
    return incomplete


def _to_example(
    index: int,
    row: dict[str, Any],
    mapping: dict[str, str],
    lookup: dict[LabelKey, Any],
    cfg: DatasetConfig,
    schema: ScoreSchemaConfig,
    where: str,
) -> Example:
    item = dict(row)
    for name, col in mapping.items():
        if col in row:
            item[name] = row[col]
        elif not cfg.drop_incomplete:  # else left out: the prompt's check drops the row if shown
            raise DatasetError(
                f"{where}: row {index} has no column {col!r} (dataset.fields.{name}); fill it in, "
                "or set dataset.drop_incomplete=true to leave such rows out"
            )
    example_id = str(row[cfg.fields.id]) if cfg.fields.id else str(index)
    group = str(row[cfg.fields.group]) if cfg.fields.group else str(item.get("prompt", ""))
    human, annotators = {}, {}
    for spec in schema.scores:
        column = cfg.fields.scores.get(spec.name)
        if column is not None:
            raw = _mapped(row.get(column), lookup, cfg, index, column, where)
            human[spec.name] = _human_value(raw, spec, index, column, where)
        columns = cfg.fields.annotators.get(spec.name, [])
        if columns:
            annotators[spec.name] = [
                _human_value(
                    _mapped(row.get(c), lookup, cfg, index, c, where), spec, index, c, where
                )
                for c in columns
            ]
    system = _system_name(row[cfg.fields.system]) if cfg.fields.system else ""
    return Example(
        id=example_id, item=item, human=human, group=group, system=system, annotators=annotators
    )


def _system_name(value: Any) -> str:
    """The ``dataset.fields.system`` value as text; a pair's list of two models is
    ``"model_a vs model_b"``."""
    if hasattr(value, "tolist") and not isinstance(value, str):  # numpy (a parquet list column)
        value = value.tolist()
    if isinstance(value, list | tuple):
        return " vs ".join(str(v) for v in value)
    return str(value)


def _mapped(
    value: Any, lookup: dict[LabelKey, Any], cfg: DatasetConfig, index: int, column: str, where: str
) -> Any:
    """A raw human label through ``fields.label_map`` (matched by ``config.labels``'s rule).

    With no map the value passes as it is; with one, a null or blank value stays null and any
    other value the map does not cover is a DatasetError naming the column, value, row and map.
    """
    if not lookup or _is_null(value) or (isinstance(value, str) and not value.strip()):
        return value
    canonical = label_key(value)
    if canonical not in lookup:
        raise DatasetError(
            f"{where}: row {index}, column {column!r}: value {value!r} is not covered by "
            f"dataset.fields.label_map {_map_text(cfg.fields.label_map)}; add it to the map "
            f"(e.g. '++dataset.fields.label_map={{{_key_text(value)}: LABEL, ...}}' with every "
            "value of the column) or fix the data"
        )
    return lookup[canonical]


def _map_text(label_map: dict[Any, Any]) -> str:
    """The map as the user wrote it, e.g. ``{-1: 'A', 1: 'B'}``, cut after 12 entries."""
    shown = [f"{k!r}: {v!r}" for k, v in list(label_map.items())[:12]]
    more = ", ..." if len(label_map) > 12 else ""
    return "{" + ", ".join(shown) + more + "}"


def _key_text(value: Any) -> str:
    """How to write ``value`` as a key on Hydra's command line: ``-1``, ``0.5``, ``true``, ``yes``."""
    if isinstance(value, bool):
        return str(value).lower()
    return _label_text(value)


def _label_text(value: Any) -> str:
    """A raw label as text; a whole float as an integer (pandas reads ``1`` as ``1.0``)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _human_value(value: Any, spec: Any, index: int, column: str, where: str) -> float:
    """A human score as a float; NaN when absent; an error when not a number in range."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return math.nan
    if spec.labels:
        return _label_value(value, spec, index, column, where)
    try:
        number = float(value)
        if isinstance(value, bool):
            raise ValueError
    except (TypeError, ValueError):
        raise DatasetError(
            f"{where}: row {index}, column {column!r}: human score {value!r} is not a number; "
            f"{spec.name} takes numbers from {spec.minimum:g} to {spec.maximum:g}"
        ) from None
    if math.isnan(number):
        return math.nan
    if not spec.minimum <= number <= spec.maximum:
        raise DatasetError(
            f"{where}: row {index}, column {column!r}: human score {value!r} is outside "
            f"{spec.name}'s range {spec.minimum:g}..{spec.maximum:g}"
        )
    return number


def _label_value(value: Any, spec: Any, index: int, column: str, where: str) -> float:
    """A human label of a rubric score: one of its label names (any case), else an error."""
    if isinstance(value, float) and math.isnan(value):
        return math.nan
    text = _label_text(value).lower()
    label = next((k for k in spec.labels if k.lower() == text), None)
    if label is None:
        raise DatasetError(
            f"{where}: row {index}, column {column!r}: human label {value!r} is not one of "
            f"{spec.name}'s labels ({', '.join(spec.labels)}); map the data's values to them "
            "with dataset.fields.label_map, e.g. '++dataset.fields.label_map="
            f"{{{_key_text(value)}: {next(iter(spec.labels))}, ...}}'"
        )
    return float(spec.labels[label].value)


def _check_unique_ids(examples: list[Example], cfg: DatasetConfig, where: str) -> None:
    if not cfg.fields.id:
        return
    seen: dict[str, int] = {}
    for i, example in enumerate(examples):
        if example.id in seen:
            raise DatasetError(
                f"{where}: rows {seen[example.id]} and {i} share the id {example.id!r} "
                f"(column {cfg.fields.id!r}); ids must be unique"
            )
        seen[example.id] = i
