"""Read a dataset's raw rows: one file, every file a glob matches, or the Hugging Face hub.

Each format (.jsonl, .jsonl.gz, .json, .csv, .parquet) is read strictly: a corrupt or truncated
file, a bad JSON line, a CSV row with the wrong number of fields or text holding a lone surrogate
is a :class:`DatasetError` naming the file and the row, before any judge call.
"""

from __future__ import annotations

import csv
import gzip
import json
import re
import zlib
from pathlib import Path
from typing import Any

from judgekit.config.schema import DatasetConfig
from judgekit.errors import DatasetError

__all__ = ["FILE_FORMATS", "check_mappings", "check_text", "load_hub", "load_paths"]

FILE_FORMATS = (".jsonl", ".jsonl.gz", ".json", ".csv", ".parquet")
_GLOB_CHARS = set("*?[")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
"""A JSON escape of a UTF-16 surrogate: only text holding one can hold a lone surrogate."""
_SURROGATE = re.compile("[\ud800-\udfff]")
_SHOWN_FILES = 5
"""How many files a message about a directory names before it gives the count."""


def load_paths(cfg: DatasetConfig) -> tuple[list[dict[str, Any]], str]:
    """One file, or every file a glob pattern matches (each row tagged with its ``_source``)."""
    _check_data_root(cfg)
    text = str(cfg.path)
    if not _GLOB_CHARS & set(text):
        path = Path(text).expanduser()
        return _load_file(path), path.name
    base = Path(text).expanduser()
    anchor = next(p for p in [base, *base.parents] if not _GLOB_CHARS & set(str(p)))
    matches = sorted(anchor.glob(str(base.relative_to(anchor))))
    if not matches:
        raise DatasetError(f"dataset.path: no file matches {text!r}")
    rows: list[dict[str, Any]] = []
    for path in matches:
        source = str(path.parent.relative_to(anchor)) if path.parent != anchor else path.name
        rows.extend({**row, "_source": source} for row in _load_file(path))
    return rows, f"{text} ({len(matches)} files)"


def _check_data_root(cfg: DatasetConfig) -> None:
    if cfg.data_root and not Path(cfg.data_root).expanduser().is_dir():
        raise DatasetError(
            f"dataset.data_root: {cfg.data_root} does not exist (working directory {Path.cwd()}); "
            "set dataset.data_root=DIR or JUDGEKIT_DATA_ROOT to the folder holding the datasets"
        )


def check_mappings(rows: list[Any], where: str) -> list[dict[str, Any]]:
    """The rows, each checked to be a mapping of columns; none at all is an error."""
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise DatasetError(
                f"{where}: row {i} is {type(row).__name__}, expected a mapping of columns"
            )
    if not rows:
        raise DatasetError(f"{where}: no rows; the dataset is empty")
    return rows


def _file_format(path: Path) -> str:
    name = path.name.lower()
    for ext in sorted(FILE_FORMATS, key=len, reverse=True):
        if name.endswith(ext):
            return ext
    raise DatasetError(
        f"dataset.path: {path}: unknown extension {''.join(path.suffixes) or '(none)'!r}; "
        f"use one of {', '.join(FILE_FORMATS)}"
    )


def _load_file(path: Path) -> list[dict[str, Any]]:
    if path.is_dir():
        raise DatasetError(_directory_message(path))
    fmt = _file_format(path)
    if not path.is_file():
        raise DatasetError(f"dataset.path: {path}: no such file (working directory: {Path.cwd()})")
    try:
        if fmt == ".csv":
            rows = _read_csv(path)
        elif fmt == ".parquet":
            rows = _read_parquet(path)
        elif fmt == ".json":
            rows = _read_json(path)
        else:
            rows = _read_jsonl(path, compressed=fmt == ".jsonl.gz")
    except (OSError, EOFError, UnicodeDecodeError, gzip.BadGzipFile) as err:
        raise DatasetError(f"dataset.path: {path}: cannot be read as {fmt}: {err}") from None
    except zlib.error as err:  # a corrupt deflate stream (a flipped byte), not a short one
        raise DatasetError(
            f"dataset.path: {path}: cannot be read as {fmt}: the compressed data is corrupt "
            f"({err}); download or write the file again"
        ) from None
    return check_mappings(rows, str(path))


def _directory_message(path: Path) -> str:
    """What to say when ``dataset.path`` names a folder: the data files in it and a glob."""
    files = sorted(
        p.name for p in path.iterdir() if p.is_file() and p.name.lower().endswith(FILE_FORMATS)
    )
    if not files:
        return (
            f"dataset.path: {path} is a directory, not a file, and holds no data file "
            f"({', '.join(FILE_FORMATS)}); give the path of a file"
        )
    shown = ", ".join(files[:_SHOWN_FILES]) + (
        f", ... ({len(files)} files)" if len(files) > _SHOWN_FILES else ""
    )
    suffix = _file_format(Path(files[0]))
    return (
        f"dataset.path: {path} is a directory, not a file; it holds {shown}: give one of them "
        f"(dataset.path={path / files[0]}), or a glob to read them all "
        f"(dataset.path='{path}/*{suffix}')"
    )


def _read_jsonl(path: Path, *, compressed: bool) -> list[dict[str, Any]]:
    opener = gzip.open if compressed else open
    rows: list[dict[str, Any]] = []
    with opener(path, "rt", encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise DatasetError(
                    f"{path}: line {lineno} is not valid JSON ({err.msg} at column {err.colno})"
                ) from None
            if _SURROGATE_ESCAPE.search(line):
                check_text(rows[-1], str(path), f"row {len(rows) - 1} (line {lineno})")
    return rows


def check_text(value: Any, where: str, row: str, column: str | None = None) -> None:
    """Refuse text holding a lone UTF-16 surrogate (e.g. ``"\\ud800"`` in JSON).

    Python reads such an escape into a string that cannot be encoded as UTF-8, so the results
    table, the summary and MLflow could not be written after the judge calls were paid for.
    """
    if isinstance(value, str):
        found = _SURROGATE.search(value)
        if found is not None and not _encodes(value):
            raise DatasetError(
                f"{where}: {row}, column {column!r}: the text holds a lone surrogate "
                f"{found.group()!r} (an unpaired \\u{ord(found.group()):04x} escape), which is "
                "not a character and cannot be written as UTF-8; remove or replace it in the data"
            )
    elif isinstance(value, dict):
        for key, item in value.items():
            check_text(str(key), where, row, column or str(key))
            check_text(item, where, row, column or str(key))
    elif isinstance(value, list):
        for item in value:
            check_text(item, where, row, column)


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _read_json(path: Path) -> list[dict[str, Any]]:
    """A JSON array of rows (or an object holding one under ``data``, ``rows`` or ``examples``)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DatasetError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from None
    if isinstance(data, dict):
        data = next((data[k] for k in ("data", "rows", "examples") if k in data), None)
    if not isinstance(data, list):
        raise DatasetError(f"{path}: expected a JSON array of rows (or {{'data': [...]}})")
    if _SURROGATE_ESCAPE.search(path.read_text(encoding="utf-8")):
        for index, row in enumerate(data):
            check_text(row, str(path), f"row {index}")
    return data


def _read_csv(path: Path) -> list[dict[str, Any]]:
    """The rows under the header line; a row with fewer or more fields than the header is refused
    (its missing fields would be judged as empty text)."""
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            return []
        rows: list[dict[str, Any]] = []
        for fields in reader:
            if not fields:
                continue
            if len(fields) != len(header):
                raise DatasetError(
                    f"{path}: row {len(rows)} (line {reader.line_num}) has {len(fields)} "
                    f"field(s) but the header has {len(header)} ({', '.join(header)}); "
                    "fill in the missing fields (or quote a field that holds a comma)"
                )
            rows.append(dict(zip(header, fields, strict=True)))
    return rows


def _read_parquet(path: Path) -> list[dict[str, Any]]:
    import pandas as pd

    try:
        frame = pd.read_parquet(path)
    except Exception as err:  # pyarrow raises several unrelated types for a bad file
        raise DatasetError(f"dataset.path: {path}: cannot be read as parquet: {err}") from None
    return frame.to_dict(orient="records")


def load_hub(cfg: DatasetConfig) -> list[dict[str, Any]]:
    """The rows of a Hugging Face hub dataset (or a local folder laid out like one)."""
    import datasets

    split = cfg.split or "train"
    try:
        data = datasets.load_dataset(str(cfg.path), data_files=cfg.data_files, split=split)
    except Exception as err:  # datasets raises many types: offline, missing repo, bad split
        raise DatasetError(
            f"dataset.path: cannot load {cfg.path!r} split {split!r} from the Hugging Face hub "
            f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}). Offline? "
            "Download the file once and use dataset=jsonl dataset.path=FILE"
        ) from None
    return [dict(row) for row in data]
