"""The examples that hold every field the prompt shows (``dataset.drop_incomplete``)."""

from __future__ import annotations

import logging

from judgekit.config.schema import DatasetConfig, PromptConfig
from judgekit.data.loading import Example, find_incomplete
from judgekit.errors import DatasetError
from judgekit.prompts.render import check_template_fields, item_fields, shown_fields

__all__ = ["complete_examples"]

log = logging.getLogger("judgekit")


def complete_examples(
    examples: list[Example], dataset: DatasetConfig, prompt: PromptConfig
) -> tuple[list[Example], int]:
    """The examples holding every field the prompt shows, and how many were left out.

    A row in which such a field is missing or null is a setup error naming the rows, unless
    ``dataset.drop_incomplete`` leaves those rows out (counted and logged).
    """
    where = f"dataset {dataset.name!r}"
    incomplete = find_incomplete(examples, item_fields(prompt), shown_fields(prompt))
    if not incomplete:
        return examples, 0
    if len(incomplete) == len(examples):
        for name in item_fields(prompt):
            if not any(name in e.item for e in examples):
                check_template_fields(prompt, examples[0], where)  # not in the data at all
    rows = "; ".join(_incomplete_row(dataset, examples, i, why) for i, why in incomplete[:5])
    more = f"; ... ({len(incomplete)} rows in all)" if len(incomplete) > 5 else ""
    lacking = (
        f"{where}: {len(incomplete)} of {len(examples)} rows lack a value for a field prompt "
        f"{prompt.name!r} shows: {rows}{more}"
    )
    if not dataset.drop_incomplete:
        raise DatasetError(
            f"{lacking}; fill them in, or set dataset.drop_incomplete=true to leave them out"
        )
    if len(incomplete) == len(examples):
        raise DatasetError(f"{lacking}; dataset.drop_incomplete=true would leave no row to judge")
    skip = {i for i, _ in incomplete}
    log.info(
        "dataset.drop_incomplete: left out %d of %d rows of %s lacking a field the prompt shows "
        "(%s%s)",
        len(skip),
        len(examples),
        where,
        rows,
        more,
    )
    return [e for i, e in enumerate(examples) if i not in skip], len(skip)


def _incomplete_row(dataset: DatasetConfig, examples: list[Example], index: int, why: str) -> str:
    named = f" (id {examples[index].id!r})" if dataset.fields.id else ""
    return f"row {index}{named}: {why}"
