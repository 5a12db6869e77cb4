"""``dataset.source=mlflow``: labelled examples read back from an MLflow experiment's traces.

A team labels traces in MLflow (the UI's assessments, or ``mlflow.log_expectation`` /
``mlflow.log_feedback`` with a HUMAN source) and judges them in judgekit. Each trace with a human
label becomes one raw row: its root span's inputs are the item fields (mapped with
``dataset.fields`` as for a file), and the human label of score ``S`` is the expectation or
HUMAN-source feedback named ``S`` (or ``dataset.fields.scores.S``). Labels from different source
ids are different annotators: with two or more, each keeps its own column (the human–human
ceiling) and the human label is their mean (numeric scores) or majority (rubric labels; a split
vote on a preference score is a tie, on another rubric score no label), as ``fields.annotators``
and the ``pandalm`` adapter do for files.
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from dataclasses import replace
from typing import Any

from judgekit.config.schema import DatasetConfig, ScoreSchemaConfig, ScoreSpec
from judgekit.errors import DatasetError

__all__ = ["HUMAN_COLUMN", "MLFLOW_COLUMNS", "TRACE_ID_COLUMN", "load_mlflow_rows"]

log = logging.getLogger("judgekit")

TRACE_ID_COLUMN = "mlflow_trace_id"
"""The column holding each row's trace id (the example id when ``dataset.fields.id`` is null)."""
HUMAN_COLUMN = "mlflow_human.{score}"
"""The column holding the human label of ``score`` (the annotators' mean or majority)."""
_ANNOTATOR_COLUMN = "mlflow_annotator.{score}.{source}"
MLFLOW_COLUMNS = (TRACE_ID_COLUMN, "mlflow_human.", "mlflow_annotator.")
"""The columns (prefixes) this source adds to the trace's inputs."""
_PAGE = 500


def load_mlflow_rows(
    cfg: DatasetConfig, schema: ScoreSchemaConfig, tracking_uri: str
) -> tuple[list[dict[str, Any]], str, DatasetConfig]:
    """The labelled traces of ``cfg.experiment`` (``cfg.run_id``) as raw rows, a short name of
    where they came from, and ``cfg`` with ``fields`` pointing at the label columns.

    Raises:
        DatasetError: the experiment or run is unknown, it has no traces, or no trace has a
            human label for any of the schema's scores (naming what was found).
    """
    client, experiment_id = _open(cfg, tracking_uri)
    where = f"MLflow experiment {cfg.experiment!r}" + (f" run {cfg.run_id}" if cfg.run_id else "")
    traces = _search(client, experiment_id, cfg.run_id)
    if not traces:
        raise DatasetError(
            f"dataset.experiment: {where} has no traces; label traces there (MLflow UI, or "
            "mlflow.log_expectation) or choose another experiment with dataset.experiment=NAME"
        )
    label_names = {spec.name: cfg.fields.scores.get(spec.name, spec.name) for spec in schema.scores}
    labelled = []
    for trace in traces:
        if _metadata(trace).get("judgekit.order") == "swapped":
            continue  # a judgekit swap run's second order: the same example, responses exchanged
        labels = _human_labels(trace, set(label_names.values()))
        if labels:
            labelled.append((trace, labels))
    if not labelled:
        raise DatasetError(
            f"dataset.experiment: {where} has {len(traces)} traces but none with a human label "
            f"named {', '.join(repr(n) for n in label_names.values())} (an expectation, or "
            f"feedback from a HUMAN source); assessments found: {_found(traces)}"
        )
    if len(labelled) < len(traces):
        left_out = len(traces) - len(labelled)
        log.info("%s: %d of %d traces have no human label; left out", where, left_out, len(traces))
    rows, annotators = _rows(labelled, label_names, schema)
    fields = replace(
        cfg.fields,
        id=cfg.fields.id or TRACE_ID_COLUMN,
        scores={name: HUMAN_COLUMN.format(score=name) for name in label_names},
        annotators=annotators,
    )
    return rows, where, replace(cfg, fields=fields)


def _open(cfg: DatasetConfig, uri: str) -> tuple[Any, str]:
    """A client on the store (checked first: a setup error naming ``tracking.uri``) and the id
    of ``cfg.experiment``; an unknown experiment or run is a DatasetError naming what exists."""
    from mlflow.tracking import MlflowClient

    from judgekit.tracking.store import bound_http_retries, check_store, display_uri

    bound_http_retries()
    check_store(uri, "tracking.uri")
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(str(cfg.experiment))
    if experiment is None:
        names = sorted(e.name for e in client.search_experiments(max_results=50))
        raise DatasetError(
            f"dataset.experiment: no MLflow experiment {cfg.experiment!r} in {display_uri(uri)}; "
            f"experiments there: {', '.join(names) or 'none'}"
        )
    experiment_id = str(experiment.experiment_id)
    if cfg.run_id:
        try:
            run = client.get_run(cfg.run_id)
        except Exception:  # noqa: BLE001  # MLflow's RESOURCE_DOES_NOT_EXIST and kin
            run = None
        if run is None or str(run.info.experiment_id) != experiment_id:
            raise DatasetError(
                f"dataset.run_id: no run {cfg.run_id!r} in MLflow experiment {cfg.experiment!r} "
                f"({display_uri(uri)}); set dataset.run_id=null to read all its traces"
            )
    return client, experiment_id


def _search(client: Any, experiment_id: str, run_id: str | None) -> list[Any]:
    """Every trace of the experiment (of the run), oldest first, page by page."""
    traces: list[Any] = []
    token = None
    while True:
        page = client.search_traces(
            locations=[experiment_id],
            run_id=run_id,
            max_results=_PAGE,
            order_by=["timestamp_ms ASC"],
            page_token=token,
            include_spans=True,
        )
        traces.extend(page)
        token = page.token
        if not token or not page:
            break
    return sorted(traces, key=lambda t: (t.info.request_time, t.info.trace_id))


def _metadata(trace: Any) -> dict[str, str]:
    return dict(getattr(trace.info, "trace_metadata", None) or {})


def _is_human(assessment: Any) -> bool:
    """An expectation (from any source: ground truth is what people give) or HUMAN feedback;
    overridden (invalid) assessments, feedback holding an error, and the combined label of a
    judgekit run's traces (its annotators' own labels are read instead) are left out."""
    from mlflow.entities import Expectation, Feedback

    if getattr(assessment, "valid", True) is False:
        return False
    if (assessment.metadata or {}).get("judgekit.label") == "aggregate":
        return False  # a judgekit run's combined label: its annotators are logged beside it
    if isinstance(assessment, Expectation):
        return True
    return (
        isinstance(assessment, Feedback)
        and assessment.source.source_type == "HUMAN"
        and assessment.error is None
    )


def _human_labels(trace: Any, names: set[str]) -> dict[str, dict[str, Any]]:
    """Label name -> {source id: value}; per source the latest assessment wins, an expectation
    before feedback."""
    from mlflow.entities import Expectation

    ranked = sorted(
        (a for a in trace.info.assessments or [] if a.name in names and _is_human(a)),
        key=lambda a: (isinstance(a, Expectation), a.last_update_time_ms or 0),
    )
    labels: dict[str, dict[str, Any]] = {}
    for assessment in ranked:  # later (better) ones overwrite
        source = assessment.source.source_id or "human"
        labels.setdefault(assessment.name, {})[source] = assessment.value
    return labels


def _found(traces: list[Any]) -> str:
    """What assessments the traces hold: ``name (TYPE source) ×count``."""
    seen: Counter[str] = Counter()
    for trace in traces:
        for a in trace.info.assessments or []:
            kind = "expectation" if type(a).__name__ == "Expectation" else "feedback"
            seen[f"{a.name} ({a.source.source_type} {kind})"] += 1
    return ", ".join(f"{k} ×{n}" for k, n in seen.most_common(10)) or "none"


def _inputs(trace: Any) -> dict[str, Any]:
    """The trace's inputs (its root span's), as the item fields."""
    request = trace.data.request
    try:
        inputs = json.loads(request) if isinstance(request, str) else request
    except json.JSONDecodeError:
        inputs = None
    if not isinstance(inputs, dict):
        raise DatasetError(
            f"dataset.experiment: trace {trace.info.trace_id} has inputs that are not a mapping "
            f"of fields ({str(request)[:80]!r}); judgekit reads each input key as an item field"
        )
    return inputs


def _rows(
    labelled: list[tuple[Any, dict[str, dict[str, Any]]]],
    label_names: dict[str, str],
    schema: ScoreSchemaConfig,
) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    """Raw rows (inputs, trace id, human label and each annotator's label) and, per score with
    two or more annotators, their columns."""
    sources = {
        score: sorted({s for _, labels in labelled for s in labels.get(name, {})})
        for score, name in label_names.items()
    }
    specs = {spec.name: spec for spec in schema.scores}
    rows = []
    for trace, labels in labelled:
        row = {**_inputs(trace), TRACE_ID_COLUMN: trace.info.trace_id}
        for score, name in label_names.items():
            given = labels.get(name, {})
            row[HUMAN_COLUMN.format(score=score)] = _combined(list(given.values()), specs[score])
            if len(sources[score]) > 1:
                for source in sources[score]:
                    column = _ANNOTATOR_COLUMN.format(score=score, source=source)
                    row[column] = given.get(source)
        rows.append(row)
    annotators = {
        score: [_ANNOTATOR_COLUMN.format(score=score, source=s) for s in found]
        for score, found in sources.items()
        if len(found) > 1
    }
    return rows, annotators


def _combined(values: list[Any], spec: ScoreSpec) -> Any:
    """The human label from the annotators' values: the one value, their mean (numeric) or their
    majority (rubric labels). A value that is not a number is passed on as it is, so that the
    loader's check names it."""
    if len(values) <= 1:
        return values[0] if values else None
    if spec.labels:
        votes = Counter(_text(v) for v in values)
        label, count = votes.most_common(1)[0]
        if count * 2 > len(values):
            return next(v for v in values if _text(v) == label)
        return "tie" if spec.kind == "preference" else None
    numbers = []
    for value in values:
        try:
            numbers.append(float(value))
        except (TypeError, ValueError):
            return value
    return math.fsum(numbers) / len(numbers)


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip().lower()
