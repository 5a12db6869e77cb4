"""Every judged row as an MLflow trace: what the judge saw and said, its scores, the humans' labels.

One trace per request (an example; with ``judge.swap`` two, one per order), linked to the run
(trace metadata ``mlflow.sourceRun``, so ``mlflow.search_traces(run_id=...)`` and MLflow's
Evaluation runs view find it):

* inputs: the item fields the prompt shows, as that request showed them (the swapped order has
  ``response_a`` and ``response_b`` exchanged); output: the judge's raw answer (None when the
  call failed);
* one **feedback** per score: source ``LLM_JUDGE`` / the judge model, value the parsed score,
  rationale the judge's answer; a row that failed has no value but an error whose code is the
  :class:`~judgekit.records.FailureReason` (never a made-up value);
* one **expectation** per human label: source ``HUMAN``; id ``human`` for the label the
  statistics use (metadata ``judgekit.label``: ``aggregate`` when the data also has per-annotator
  columns, else ``single``), and one per annotator column (``dataset.fields.annotators``) whose
  source id is that column (``judgekit.label: annotator``).

A swapped request's trace holds its verdict as the judge gave it for the order it was shown
(0 = A as shown), and the human label mapped to that order, so the trace reads consistently in
the UI; its metadata ``judgekit.order`` is ``swapped`` (``given`` otherwise), and its value is
``1 - judge_second`` of ``results.parquet`` (the given order's is ``judge_first``; without swap
every value equals ``judge``).

How it is written: MLflow's trace store commits each trace on its own (``start_trace``: about
30 ms against a local SQLite file, mostly the commit's fsync; measured, 2,000 rows ≈ 60 s), and
has no call that writes many traces with their assessments in one transaction. So the traces are
written *while the run judges*: the runner hands each response to :meth:`TraceLog.add` as it
arrives, and one background thread writes them in batches — on MLflow's SQL store the rows
``start_trace`` would write, one transaction per batch (:func:`_start_traces`); on any other
store (an ``mlflow server``) ``start_trace`` per trace — then each trace's span as a file in its
artifact location. The thread waits on the store, not on the CPU, so the judging goes on
meanwhile; ``bench/bench_traces.py`` measures the cost. A store that fails follows
:class:`~judgekit.tracking.runs.MlflowRun`'s keep-going rule: the run's results are kept, the rest
of the traces are skipped, and ``traces`` is listed as not logged (the run exits 1).
"""

from __future__ import annotations

import json
import logging
import math
import queue
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from judgekit.config.schema import Config, Switch
from judgekit.design import per_example, row_of, swapped_example, swaps
from judgekit.parsing import ParsedScore, parse_scores
from judgekit.records import Example, JudgeResponse
from judgekit.tracking.process import BEFORE_END

__all__ = ["TRACES_TAG", "TraceLog", "open_traces", "trace_rows"]

log = logging.getLogger("judgekit")

TRACES_TAG = "judgekit.traces"
"""Run tag: how many rows got a trace, e.g. ``2000 of 5000 rows``."""
BATCH = 100
"""The most responses the writer takes from its queue at once."""
PREVIEW_CHARS = 1000
ABANDON_WAIT_S = 5.0
"""On a signal, how long the writer's batch in progress may take before the runs are marked."""
_DONE = None


def trace_rows(cfg: Config, n_examples: int) -> int:
    """How many rows (examples, from the first) get a trace under ``tracking.traces``."""
    mode = cfg.tracking.traces
    if mode == Switch.false:
        return 0
    if mode == Switch.true:
        return n_examples
    return min(n_examples, cfg.tracking.max_traces)


@contextmanager
def open_traces(cfg: Config, examples: list[Example], mlrun: Any) -> Iterator[TraceLog | None]:
    """A :class:`TraceLog` for the run (None when there is no MLflow run or no row gets a
    trace); leaving the context stops its writer (pending traces are dropped after an error)."""
    limit = trace_rows(cfg, len(examples)) if mlrun is not None else 0
    if limit == 0:
        if mlrun is not None and cfg.tracking.traces != Switch.false and examples:
            _say_capped(mlrun, 0, len(examples))
        yield None
        return
    traces = TraceLog(cfg, examples, mlrun, limit)
    try:
        yield traces
    finally:
        traces.stop()


def _say_capped(mlrun: Any, limit: int, total: int) -> None:
    log.info(
        "tracking.traces=auto: MLflow traces for the first %d of %d rows (tracking.max_traces=%d); "
        "set tracking.traces=true to trace every row",
        limit,
        total,
        limit,
    )
    mlrun.set_tags({TRACES_TAG: f"{limit} of {total} rows"})


class TraceLog:
    """Writes the traces of one run from a background thread, fed as responses arrive."""

    def __init__(self, cfg: Config, examples: list[Example], mlrun: Any, limit: int) -> None:
        from judgekit.prompts.fields import template_fields

        self.cfg, self.examples, self.mlrun, self.limit = cfg, examples, mlrun, limit
        self.swap = swaps(cfg)
        self.fields = template_fields(
            cfg.prompt.name, tuple(m.content for m in cfg.prompt.messages)
        )
        self.written = 0
        self._seen: set[int] = set()
        self._queue: queue.Queue[tuple[int, JudgeResponse] | None] = queue.Queue()
        self._stopped = False
        self._client: Any = None
        self._idle = threading.Event()
        self._idle.set()
        self._thread = threading.Thread(target=self._write_all, name="judgekit-traces", daemon=True)
        self._thread.start()
        BEFORE_END.add(self._abandon)  # a signal: stop writing before the run is marked KILLED

    def _abandon(self) -> None:
        """No further batch; wait (briefly) for the one being written, whose transaction holds
        SQLite's write lock that the KILLED mark needs."""
        self._stopped = True
        self._idle.wait(ABANDON_WAIT_S)

    def add(self, index: int, response: JudgeResponse) -> None:
        """Queue request ``index``'s response (called by the runner as each one arrives)."""
        if row_of(index, self.swap) < self.limit and index not in self._seen:
            self._seen.add(index)
            self._queue.put((index, response))

    def close(self, responses: dict[int, JudgeResponse]) -> None:
        """Queue the rows never handed to :meth:`add` (reused by a re-judge, or never sent:
        ``not_run``), wait for the writer, and tag the run with how many rows got a trace (and
        say so in the log when ``auto`` stopped early)."""
        from judgekit.results import not_run_response

        for index in range(self.limit * per_example(self.swap)):
            self.add(index, responses.get(index) or not_run_response())
        self._queue.put(_DONE)
        self._thread.join()
        if self.mlrun.failure is not None:
            return  # "traces" is listed as not logged; a tag would not reach the store either
        total = len(self.examples)
        if self.limit < total:
            _say_capped(self.mlrun, self.limit, total)
        else:
            self.mlrun.set_tags({TRACES_TAG: f"{self.limit} of {total} rows"})

    def stop(self) -> None:
        """Stop the writer without waiting for pending traces (the run failed or was stopped)."""
        BEFORE_END.discard(self._abandon)
        if self._thread.is_alive():
            self._stopped = True
            self._queue.put(_DONE)
            self._thread.join(timeout=30)

    def _write_all(self) -> None:
        done = False
        while not done:
            batch = [self._queue.get()]
            while len(batch) < BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            done = _DONE in batch
            items = [item for item in batch if item is not _DONE]
            if items and not self._stopped:
                self._idle.clear()
                try:
                    self._write(items)
                finally:
                    self._idle.set()

    def _write(self, items: list[tuple[int, JudgeResponse]]) -> None:
        if self.mlrun.failure is not None:
            return  # the store failed: MlflowRun lists "traces" as not logged once
        from mlflow.entities import TraceData
        from mlflow.tracing.client import TracingClient

        built = [b for b in (self._built(index, response) for index, response in items) if b]

        def write() -> None:
            client = self._client = self._client or TracingClient(self.cfg.tracking.uri)
            infos = _start_traces(client, [info for info, _ in built])
            for info, (_, span) in zip(infos, built, strict=True):
                # The span goes where MLflow's own exporter puts it for a trace whose info is
                # written first: a JSON file in the trace's artifact location. Not log_spans: it
                # strips one JSON layer off a string output that parses as JSON (MLflow's
                # sanitize_attributes), so a judge's answer {"score": 3} would read back as a
                # dict, not as the text the judge sent.
                client._upload_trace_data(info, TraceData(spans=[span]))
            self.written += len(built)

        if built:
            self.mlrun._guard("traces", write)

    def _built(self, index: int, response: JudgeResponse) -> tuple[Any, Any] | None:
        """:meth:`_build`, or None (logged) when it fails: a row that cannot be shown as a trace
        must not count as a store failure, which would stop the rest of the run's logging."""
        try:
            return self._build(index, response)
        except Exception as err:
            log.warning("MLflow trace of request %d not logged: %s", index, err)
            return None

    def _build(self, index: int, response: JudgeResponse) -> tuple[Any, Any]:
        """The trace info (with its assessments) and root span of request ``index``."""
        from mlflow.entities import TraceInfo, TraceLocation, TraceState
        from mlflow.tracing.constant import (
            TRACE_SCHEMA_VERSION,
            TRACE_SCHEMA_VERSION_KEY,
            TraceMetadataKey,
            TraceTagKey,
        )

        row = row_of(index, self.swap)
        swapped = self.swap and index % 2 == 1
        example = self.examples[row]
        shown = swapped_example(example) if swapped else example
        inputs = {k: v for k, v in shown.item.items() if k in self.fields}
        order = "swapped" if swapped else "given"
        trace_id = "tr-" + uuid.uuid4().hex
        end_ns = time.time_ns()
        start_ns = end_ns - int(response.latency_s * 1e9)
        text = response.text
        info = TraceInfo(
            trace_id=trace_id,
            trace_location=TraceLocation.from_experiment_id(self.mlrun.experiment_id),
            request_time=start_ns // 1_000_000,
            execution_duration=(end_ns - start_ns) // 1_000_000,
            state=TraceState.ERROR if response.failure else TraceState.OK,
            request_preview=_json(inputs)[:PREVIEW_CHARS],
            response_preview=(text or "")[:PREVIEW_CHARS],
            client_request_id=f"{self.mlrun.run_id}/{index}",
            trace_metadata={
                TraceMetadataKey.SOURCE_RUN: self.mlrun.run_id,
                TRACE_SCHEMA_VERSION_KEY: str(TRACE_SCHEMA_VERSION),
                "judgekit.example_id": example.id,
                "judgekit.example_index": str(row),
                "judgekit.order": order,
            },
            tags={TraceTagKey.TRACE_NAME: "judge"},
            assessments=[
                *self._feedback(trace_id, response, order),
                *self._expectations(trace_id, example, swapped),
            ],
        )
        return info, _root_span(
            trace_id, inputs, text, start_ns, end_ns, self._attributes(response)
        )

    def _attributes(self, response: JudgeResponse) -> dict[str, Any]:
        return {
            "judgekit.model": self.cfg.judge.model,
            "judgekit.attempts": response.attempts,
            "judgekit.cached": response.cached,
            "judgekit.failure_reason": response.failure,
        }

    def _feedback(self, trace_id: str, response: JudgeResponse, order: str) -> list[Any]:
        from mlflow.entities import AssessmentError, AssessmentSource, Feedback

        source = AssessmentSource(source_type="LLM_JUDGE", source_id=self.cfg.judge.model)
        feedback = []
        specs = {spec.name: spec for spec in self.cfg.score.scores}
        for name, score in _scores(response, self.cfg).items():
            error = None
            if score.failure is not None:
                error = AssessmentError(
                    error_code=str(score.failure), error_message=score.detail or str(score.failure)
                )
            feedback.append(
                Feedback(
                    name=name,
                    value=None if error else _label_name(specs[name], score.value),
                    error=error,
                    source=source,
                    trace_id=trace_id,
                    rationale=response.text,
                    metadata={"judgekit.order": order},
                )
            )
        return feedback

    def _expectations(self, trace_id: str, example: Example, swapped: bool) -> list[Any]:
        from mlflow.entities import AssessmentSource, Expectation

        out = []
        columns = self.cfg.dataset.fields.annotators
        for spec in self.cfg.score.scores:
            flip = swapped and spec.kind == "preference"
            labels = [("human", example.human.get(spec.name, math.nan))]
            each = example.annotators.get(spec.name, [])  # one value per annotator column
            labels += zip(columns.get(spec.name, [])[: len(each)], each, strict=True)
            kind = "aggregate" if len(labels) > 1 else "single"
            for i, (who, value) in enumerate(labels):
                if value is None or math.isnan(value):
                    continue
                value = 1.0 - value if flip else float(value)
                out.append(
                    Expectation(
                        name=spec.name,
                        value=_label_name(spec, value),
                        source=AssessmentSource(source_type="HUMAN", source_id=who),
                        trace_id=trace_id,
                        metadata={"judgekit.label": kind if i == 0 else "annotator"},
                    )
                )
        return out


def _label_name(spec: Any, value: float) -> Any:
    """A rubric score's label name for ``value`` (so the judge's feedback and the humans'
    expectations compare as labels in MLflow, and ``dataset=mlflow`` reads them back); the number
    itself for a numeric score."""
    for name, label in spec.labels.items():
        if label.value == value:
            return name
    return value


def _scores(response: JudgeResponse, cfg: Config) -> dict[str, ParsedScore]:
    """The parse step for one response (as :func:`judgekit.results.parse_responses` does it)."""
    if response.failure is not None:
        failed = ParsedScore(math.nan, response.failure, response.detail)
        return {spec.name: failed for spec in cfg.score.scores}
    return parse_scores(response.text, cfg.score.scores)


def _json(value: Any) -> str:
    return json.dumps(value, default=str, ensure_ascii=False)


def _root_span(
    trace_id: str,
    inputs: dict[str, Any],
    output: str | None,
    start_ns: int,
    end_ns: int,
    attributes: dict[str, Any],
) -> Any:
    """The trace's one span (type LLM): the item fields in, the judge's answer out."""
    from mlflow.entities import Span
    from mlflow.tracing.constant import SpanAttributeKey

    failed = attributes.get("judgekit.failure_reason")
    return Span.from_dict(
        {
            "trace_id": trace_id,
            "span_id": uuid.uuid4().hex[:16],
            "parent_span_id": None,
            "name": "judge",
            "start_time_unix_nano": start_ns,
            "end_time_unix_nano": end_ns,
            "status": {
                "code": "STATUS_CODE_ERROR" if failed else "STATUS_CODE_OK",
                "message": str(failed or ""),
            },
            "attributes": {
                SpanAttributeKey.REQUEST_ID: _json(trace_id),
                SpanAttributeKey.SPAN_TYPE: _json("LLM"),
                SpanAttributeKey.INPUTS: _json(inputs),
                SpanAttributeKey.OUTPUTS: _json(output),
                **{k: _json(v) for k, v in attributes.items()},
            },
        }
    )


def _start_traces(client: Any, infos: list[Any]) -> list[Any]:
    """Write the trace infos (with their metadata, tags and assessments); returns them as the
    store has them (with the artifact location of each trace's spans).

    MLflow's SQL store writes one trace per ``start_trace`` and commits it (two commits, about
    35 ms per trace against a local SQLite file, most of it fsync): 2,000 rows would take over
    a minute. For that store the same rows (those ``start_trace`` writes on its happy path) go in
    one transaction per batch; any other store (an HTTP server, whose own store commits), or an
    MLflow whose internals differ, gets ``start_trace`` per trace.
    """
    store = client.store
    try:
        return _sql_start_traces(store, infos)
    except _NoBulkPath:
        return [client.start_trace(info) for info in infos]


class _NoBulkPath(Exception):
    """The store is not MLflow's SQLAlchemy store, or not the one this code knows."""


def _sql_start_traces(store: Any, infos: list[Any]) -> list[Any]:
    """``SqlAlchemyStore.start_trace`` for many new traces in one transaction (MLflow 3.x)."""
    try:
        from mlflow.store.tracking.dbmodels.models import (
            SqlAssessments,
            SqlTraceInfo,
            SqlTraceMetadata,
            SqlTraceTag,
        )
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
        from mlflow.store.tracking.utils.sql_trace_rollups import (
            RollupFamily,
            enqueue_rollup_rebuild_partitions,
        )
        from mlflow.store.tracking.utils.trace_analytics import (
            PROMOTED_TRACE_METADATA_KEYS,
            analytics_columns_from_metadata,
            validate_trace_name,
        )
        from mlflow.tracing.constant import TraceMetadataKey, TraceTagKey
        from mlflow.utils.mlflow_tags import MLFLOW_ARTIFACT_LOCATION
    except ImportError:
        raise _NoBulkPath from None
    if not isinstance(store, SqlAlchemyStore) or not hasattr(
        store, "_get_trace_artifact_location_tag"
    ):
        raise _NoBulkPath
    experiment_id = infos[0].experiment_id
    experiment = store.get_experiment(experiment_id)
    store._check_experiment_is_active(experiment)
    written = []
    with store.ManagedSessionMaker(read_only=False) as session:
        for info in infos:
            trace_id, metadata = info.trace_id, dict(info.trace_metadata)
            sql = SqlTraceInfo(
                request_id=trace_id,
                experiment_id=experiment_id,
                timestamp_ms=info.request_time,
                execution_time_ms=info.execution_duration,
                status=info.state.value,
                client_request_id=info.client_request_id,
                request_preview=info.request_preview,
                response_preview=info.response_preview,
                trace_name=validate_trace_name(info.tags.get(TraceTagKey.TRACE_NAME)),
                **analytics_columns_from_metadata(metadata),
            )
            location = store._get_trace_artifact_location_tag(experiment, trace_id)
            sql.tags = [
                SqlTraceTag(request_id=trace_id, key=k, value=v)
                for k, v in info.tags.items()
                if k != TraceTagKey.TRACE_NAME
            ] + [location]
            for key in PROMOTED_TRACE_METADATA_KEYS:
                metadata.pop(key, None)
            metadata[TraceMetadataKey.TRACE_INFO_FINALIZED] = "true"
            sql.request_metadata = [
                SqlTraceMetadata(request_id=trace_id, key=k, value=v)
                for k, v in sorted(metadata.items())
            ]
            assessments = []
            for assessment in info.assessments:
                row = SqlAssessments.from_mlflow_entity(assessment)
                row.trace_id, row.experiment_id = trace_id, int(experiment_id)
                row.trace_timestamp_ms = info.request_time
                assessments.append(row)
            sql.assessments = assessments
            session.add(sql)
            info.tags[MLFLOW_ARTIFACT_LOCATION] = location.value
            written.append(info)
        times = [info.request_time for info in infos]
        enqueue_rollup_rebuild_partitions(
            session,
            [
                (family, int(experiment_id), times)
                for family in (RollupFamily.TRACE_METRIC, RollupFamily.ASSESSMENT)
            ],
        )
        session.flush()
    return written
