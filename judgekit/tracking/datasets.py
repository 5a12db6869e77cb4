"""A run's data in MLflow: its dataset input (the Runs table's Dataset column) and, with
``tracking.register_dataset``, a GenAI evaluation dataset whose records hold the human labels as
expectations (MLflow's Datasets view).

The dataset input is a ``mlflow.data`` pandas dataset of the examples judged (id, item fields,
human labels), named after the dataset option, with its source (the file, the hub id, the inline
rows or the MLflow experiment) and judgekit's digest of those examples. The evaluation dataset is
named ``judgekit.<dataset option>`` and tagged with that digest: a run on the same examples reuses
it, changed examples make a new one.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from judgekit.config.schema import Config, DatasetConfig
from judgekit.records import Example

if TYPE_CHECKING:
    import pandas as pd

    from judgekit.tracking.runs import MlflowRun

__all__ = [
    "EVAL_DATASET_TAG",
    "dataset_source",
    "evaluation_records",
    "examples_frame",
    "item_inputs",
    "log_dataset_input",
    "register_evaluation_dataset",
]

log = logging.getLogger("judgekit")

EVAL_DATASET_TAG = "judgekit.evaluation_dataset"
"""The run tag holding the id of the evaluation dataset its examples are in."""
_BATCH = 1000


def dataset_source(cfg: DatasetConfig) -> Any:
    """Where the examples came from, as an MLflow dataset source: the file (local), the hub
    dataset (Hugging Face), or for inline rows and an MLflow experiment a "code" source whose
    tags say which."""
    from mlflow.data.code_dataset_source import CodeDatasetSource

    if cfg.source == "file":  # MLflow resolves a local path to its "local" source
        import warnings

        from mlflow.data.dataset_source_registry import resolve_dataset_source

        path = str(Path(str(cfg.path)).expanduser().resolve())
        with warnings.catch_warnings():  # "can be interpreted in multiple ways": both are local
            warnings.simplefilter("ignore")
            return resolve_dataset_source(path)
    if cfg.source == "hub":
        from mlflow.data.huggingface_dataset_source import HuggingFaceDatasetSource

        files = dict(cfg.data_files) if cfg.data_files else None
        return HuggingFaceDatasetSource(path=str(cfg.path), data_files=files, split=cfg.split)
    if cfg.source == "mlflow":
        tags = {"mlflow_experiment": str(cfg.experiment)}
        if cfg.run_id:
            tags["mlflow_run_id"] = cfg.run_id
        return CodeDatasetSource(tags=tags)
    return CodeDatasetSource(tags={"inline": cfg.name})


def _label_columns(cfg: DatasetConfig) -> set[str]:
    """The raw columns holding human labels: not item fields of the evaluation data."""
    columns = set(cfg.fields.scores.values())
    for listed in cfg.fields.annotators.values():
        columns.update(listed)
    return columns


def item_inputs(example: Example, cfg: DatasetConfig) -> dict[str, Any]:
    """An example's item fields without the human-label columns (the judge never sees those)."""
    labels = _label_columns(cfg)
    return {k: v for k, v in example.item.items() if k not in labels and not _from_mlflow(k)}


def _from_mlflow(key: str) -> bool:
    """A column ``dataset=mlflow`` adds (trace id, human and annotator labels)."""
    from judgekit.data.mlflow_source import MLFLOW_COLUMNS

    return key.startswith(MLFLOW_COLUMNS)


def _human(value: float, spec: Any) -> Any:
    """A human label as people gave it: the rubric label's name, or the number."""
    for label, rubric in spec.labels.items():
        if float(rubric.value) == value:
            return label
    return value


def examples_frame(examples: list[Example], cfg: Config) -> pd.DataFrame:
    """One row per example: ``id``, the item fields and ``human.<score>``."""
    import pandas as pd

    rows = []
    for example in examples:
        row = {"id": example.id, **item_inputs(example, cfg.dataset)}
        for name, value in example.human.items():
            row[f"human.{name}"] = value
        rows.append(row)
    return pd.DataFrame(rows)


def log_dataset_input(mlrun: MlflowRun, cfg: Config, examples: list[Example], digest: str) -> None:
    """Log the run's examples as its MLflow dataset input (name, source, digest, schema).

    A frame MLflow cannot describe is a warning, not a store failure; only the call that writes
    to the store goes through the run's guard."""
    try:
        from mlflow.data.pandas_dataset import from_pandas
        from mlflow.entities import DatasetInput, InputTag

        frame = _printable(examples_frame(examples, cfg))
        data = from_pandas(
            frame, source=dataset_source(cfg.dataset), name=cfg.dataset.name, digest=digest
        )
        context = InputTag(key="mlflow.data.context", value="evaluation")
        dataset_input = DatasetInput(data._to_mlflow_entity(), [context])
    except Exception as err:  # noqa: BLE001  # MLflow refused the frame or its source
        log.warning("dataset input not logged to MLflow (%s: %s)", type(err).__name__, err)
        return
    mlrun._guard("dataset input", lambda: mlrun.client.log_inputs(mlrun.run_id, [dataset_input]))


def _printable(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns of mappings or lists as JSON text: MLflow's schema inference takes scalars."""
    import json

    out = frame.copy()
    for column in out.columns:
        if out[column].map(lambda v: isinstance(v, dict | list)).any():
            out[column] = out[column].map(lambda v: json.dumps(v, default=str))
    return out


def evaluation_records(examples: list[Example], cfg: Config) -> list[dict[str, Any]]:
    """The evaluation dataset's records: inputs = item fields, expectations = human labels."""
    specs = {spec.name: spec for spec in cfg.score.scores}
    records = []
    for example in examples:
        expectations = {
            name: _human(value, specs[name])
            for name, value in example.human.items()
            if name in specs and not math.isnan(value)
        }
        record: dict[str, Any] = {"inputs": item_inputs(example, cfg.dataset)}
        if expectations:
            record["expectations"] = expectations
        record["tags"] = {"judgekit.example_id": example.id}
        records.append(record)
    return records


def register_evaluation_dataset(
    mlrun: MlflowRun, cfg: Config, examples: list[Example], digest: str
) -> None:
    """Create (or reuse, for the same digest) the evaluation dataset and tag the run with it."""

    def register() -> None:
        from judgekit.tracking.runs import store_lock

        with store_lock(cfg.tracking.uri):
            dataset = _find(mlrun, cfg.dataset.name, digest)
            if dataset is None:
                dataset = mlrun.client.create_dataset(
                    name=_name(cfg.dataset.name),
                    experiment_id=[mlrun.experiment_id],
                    tags={"judgekit.dataset_digest": digest, "judgekit.dataset": cfg.dataset.name},
                )
                records = evaluation_records(examples, cfg)
                for start in range(0, len(records), _BATCH):
                    dataset.merge_records(records[start : start + _BATCH])
        mlrun.client.set_tag(mlrun.run_id, EVAL_DATASET_TAG, dataset.dataset_id)

    mlrun._guard("evaluation dataset", register)


def _name(dataset_name: str) -> str:
    return f"judgekit.{dataset_name}"


def _find(mlrun: MlflowRun, dataset_name: str, digest: str) -> Any:
    """The experiment's evaluation dataset of this name made from examples with ``digest``."""
    name = _name(dataset_name).replace("'", "''")
    found = mlrun.client.search_datasets(
        experiment_ids=[mlrun.experiment_id], filter_string=f"name = '{name}'", max_results=1000
    )  # filtered on the tag here: the stores differ on quoting a tag key with a dot
    return next((d for d in found if (d.tags or {}).get("judgekit.dataset_digest") == digest), None)
