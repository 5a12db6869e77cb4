"""Log a run to MLflow: params, ``<score>/<statistic>`` metrics, the results table, figures, tags.

Only the env var *name* of a key is ever in the config, so params never hold a secret. The
tracking URI is always set explicitly from ``tracking.uri``. The store is checked before the run
opens (:mod:`judgekit.tracking.store`: a setup error, before any judge call); a store that fails
later does not lose the run's results (:class:`MlflowRun` with ``keep_going``: what could not be
logged is listed). Each run is tagged with the process that owns it, so that the next run of the
same configuration ends a run left RUNNING by a killed process (:mod:`judgekit.tracking.process`).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import subprocess
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from judgekit.config.schema import Config, TrackingConfig
from judgekit.errors import ConfigError, JudgekitError
from judgekit.tracking.process import (
    FINGERPRINT_TAG,
    RESUMED_TAG,
    active_runs,
    end_active_runs,
    end_ghosts,
    is_active,
    process_tags,
    sigterm_ends_runs,
)
from judgekit.tracking.store import bound_http_retries, check_store, display_uri, first_line, scrub

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DATASET_DIGEST_TAG",
    "MlflowRun",
    "config_fingerprint",
    "dataset_digest",
    "end_active_runs",
    "flatten_params",
    "git_commit",
    "mlflow_run",
    "run_tags",
    "store_lock",
]

DATASET_DIGEST_TAG = "judgekit.dataset_digest"

_MAX_PARAM_CHARS = 500


_DATA_KEYED = "dataset.fields.label_map"
"""A map keyed by data values (``-1``, ``true``, ``A>B``), not by config names: one param whose
value is the whole map, since MLflow refuses param names holding characters such as ``>``."""


def _member(member: dict[str, Any]) -> dict[str, Any]:
    """A panel member's params: what sets its answers (no panel keys of its own)."""
    for key in ("members", "aggregate", "weights_split", "member_overrides"):
        member.pop(key, None)
    return {k: v.value if hasattr(v, "value") else v for k, v in member.items()}


def flatten_params(cfg: Config) -> dict[str, str]:
    """The resolved config as flat ``a.b.c`` params; long values shortened, inline rows counted;
    ``dataset.fields.label_map`` is one param (its keys are data values)."""
    data = dataclasses.asdict(cfg)
    data.pop("optimize", None)  # judgekit optimize logs it on its own parent run
    data.pop("audit", None)  # judgekit audit logs it on its own parent run
    judge = data["judge"]
    judge.pop("member_overrides", None)  # empty once the members are composed
    if judge["members"]:  # a panel: each member's keys (judge.members.N.KEY)
        judge["members"] = {str(i): _member(m) for i, m in enumerate(judge["members"])}
    else:
        for key in ("members", "aggregate", "weights_split"):
            judge.pop(key)
    rows = data["dataset"].pop("rows", None)
    data["dataset"]["n_inline_rows"] = len(rows) if rows else 0
    flat: dict[str, str] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict) and value and prefix != _DATA_KEYED:
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), inner)
        else:
            text = str(value)
            flat[prefix] = (
                text if len(text) <= _MAX_PARAM_CHARS else text[: _MAX_PARAM_CHARS - 3] + "..."
            )

    walk("", data)
    for index, message in enumerate(cfg.prompt.messages):  # a prompt file: which, and its hash
        if message.content_file:
            flat[f"prompt.messages.{index}.content_file"] = message.content_file
            flat[f"prompt.messages.{index}.content_sha256"] = str(message.content_sha256)
    return flat


def git_commit(cwd: Path | None = None) -> str | None:
    """The commit of the git checkout judgekit runs from, when there is one."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def dataset_digest(examples: Iterable[Any]) -> str:
    """A hash of the examples (id, fields, human scores, group), whatever their order.

    About 1.5 s per 100k rows: each row is encoded as canonical JSON (keys sorted, non-ASCII
    escaped, so a lone surrogate hashes too) and hashed; the sorted row hashes are hashed again.
    """
    encode = json.JSONEncoder(sort_keys=True, default=str).encode
    rows = sorted(
        hashlib.blake2b(encode([e.id, e.item, e.human, e.group]).encode(), digest_size=16).digest()
        for e in examples
    )
    return hashlib.sha256(b"".join(rows)).hexdigest()[:16]


def config_fingerprint(cfg: Config, digest: str = "") -> str:
    """What makes two runs the same run: the resolved config and the data's digest."""
    data = dataclasses.asdict(cfg)
    data.pop("optimize", None)  # how a prompt was searched does not change what a run judged
    data.pop("audit", None)  # nor does an audit's plan
    text = json.dumps(_text_keys(data), sort_keys=True, default=str) + digest
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _text_keys(value: Any) -> Any:
    """``value`` with every dict key as JSON writes it (``1`` -> ``"1"``, ``True`` -> ``"true"``),
    so ``sort_keys`` can order a label map whose keys mix numbers, booleans and text."""
    if isinstance(value, dict):
        return {k if isinstance(k, str) else json.dumps(k): _text_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_text_keys(v) for v in value]
    return value


def run_tags(cfg: Config, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Tags that let runs be filtered and grouped in the MLflow UI, and find a run's earlier try.

    ``judgekit.config_fingerprint`` covers the config and ``extra``'s dataset digest, if any.
    """
    tags = {
        "judgekit.judge": cfg.judge.name,
        "judgekit.judge_model": cfg.judge.model,
        "judgekit.prompt": cfg.prompt.name,
        "judgekit.score": cfg.score.name,
        "judgekit.dataset": cfg.dataset.name,
    }
    commit = git_commit(Path(__file__).resolve().parent)
    if commit:
        tags["mlflow.source.git.commit"] = commit
    tags.update(extra or {})
    tags[FINGERPRINT_TAG] = config_fingerprint(cfg, tags.get(DATASET_DIGEST_TAG, ""))
    return tags


def default_run_name(cfg: Config) -> str:
    """``<judge>-<prompt>-<score>-<dataset>``."""
    return f"{cfg.judge.name}-{cfg.prompt.name}-{cfg.score.name}-{cfg.dataset.name}"


class MlflowRun:
    """An open MLflow run that judgekit logs into through an explicit client.

    With ``keep_going`` an MLflow failure does not raise: it is kept in ``failure``, later calls
    are skipped (the store is gone: each would wait for its retries), and what was not logged is
    listed in ``not_logged``, for the caller to report.
    """

    def __init__(
        self, client: Any, run_id: str, experiment_id: str, *, keep_going: bool = False
    ) -> None:
        self.client = client
        self.run_id = run_id
        self.experiment_id = experiment_id
        self.keep_going = keep_going
        self.failure: str | None = None
        self.not_logged: list[str] = []

    def _guard(self, what: str, call: Callable[[], Any]) -> None:
        if self.failure is not None:
            self.not_logged.append(what)
            return
        try:
            call()
        except JudgekitError:
            raise
        except Exception as err:
            if not self.keep_going:
                raise
            self.failure = first_line(err)
            self.not_logged.append(what)

    def log_params(self, params: dict[str, str]) -> None:
        """Log params in batches (MLflow takes at most 100 per call)."""
        from mlflow.entities import Param

        items = [Param(k, v) for k, v in params.items()]

        def log() -> None:
            for start in range(0, len(items), 100):
                self.client.log_batch(self.run_id, params=items[start : start + 100])

        self._guard("params", log)

    def log_metrics(self, metrics: dict[str, float], step: int = 0) -> None:
        """Log metrics in batches; NaN is kept as NaN (MLflow stores it), never turned into 0."""
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, step) for k, v in metrics.items() if v is not None]

        def log() -> None:
            for start in range(0, len(items), 500):
                self.client.log_batch(self.run_id, metrics=items[start : start + 500])

        self._guard("metrics", log)

    def log_artifacts(self, paths: list[Path], artifact_path: str | None = None) -> None:
        """Copy files into the run's artifact store."""
        for path in paths:
            self._guard(Path(path).name, functools.partial(self._log_artifact, path, artifact_path))

    def _log_artifact(self, path: Path, artifact_path: str | None) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_path)

    def log_table(self, frame: pd.DataFrame, artifact_file: str) -> None:
        """Log a table so the MLflow UI shows it."""
        import mlflow

        safe = frame.copy()
        for column in safe.columns:
            if safe[column].dtype.name in {"Int64", "boolean"}:
                safe[column] = safe[column].astype(object).where(safe[column].notna(), None)
        self._guard(
            artifact_file,
            lambda: mlflow.log_table(data=safe, artifact_file=artifact_file, run_id=self.run_id),
        )

    def set_tags(self, tags: dict[str, str]) -> None:
        """Set several tags."""

        def log() -> None:
            for key, value in tags.items():
                self.client.set_tag(self.run_id, key, value)

        self._guard("tags", log)

    def end(self, status: str) -> None:
        """End the run with ``status``; with ``keep_going`` a failure only lists ``run status``."""
        self._guard(f"run status {status}", lambda: self.client.set_terminated(self.run_id, status))


def _experiment_id(client: Any, name: str) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return str(experiment.experiment_id)
    try:
        return str(client.create_experiment(name))
    except Exception:  # another process of a multirun created it first
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return str(experiment.experiment_id)


@contextmanager
def store_lock(uri: str) -> Iterator[None]:
    """Hold an exclusive lock on ``<db>.lock`` next to a SQLite tracking store.

    MLflow creates a new SQLite store's tables on first use, without a lock of its own: two
    processes doing it at once (the jobs of a parallel sweep) fail with ``duplicate column name``
    or ``table ... already exists``. Other stores need no lock.
    """
    if not uri.startswith("sqlite:///"):
        yield
        return
    import fcntl

    path = Path(uri.removeprefix("sqlite:///"))
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{path}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _open(tracking: TrackingConfig, key: str) -> tuple[Any, str]:
    """A client on the checked store and the experiment's id; a store MLflow cannot open is a
    setup error naming it."""
    from mlflow.tracking import MlflowClient

    bound_http_retries()
    check_store(tracking.uri, key)
    try:
        with store_lock(tracking.uri):  # the first client of a new SQLite store creates its tables
            client = MlflowClient(tracking_uri=tracking.uri)
            return client, _experiment_id(client, tracking.experiment)
    except JudgekitError:
        raise
    except Exception as err:  # MlflowException, SQLAlchemy, requests: the store is unusable
        shown, why = display_uri(tracking.uri), scrub(first_line(err), tracking.uri)
        raise ConfigError(f"{key}: cannot use the MLflow store {shown} ({why})") from None


def _create(client: Any, experiment_id: str, run_name: str, tags: dict[str, str]) -> str:
    """Create the run; an earlier run of this config left RUNNING by a dead process is ended."""
    tags = {**tags, **process_tags()}
    ghosts = (
        end_ghosts(client, experiment_id, tags[FINGERPRINT_TAG]) if FINGERPRINT_TAG in tags else []
    )
    if ghosts:
        tags[RESUMED_TAG] = ghosts[0]
    return str(client.create_run(experiment_id, run_name=run_name, tags=tags).info.run_id)


@contextmanager
def mlflow_run(
    tracking: TrackingConfig,
    run_name: str,
    tags: dict[str, str],
    *,
    keep_going: bool = False,
    key: str = "tracking.uri",
) -> Iterator[MlflowRun]:
    """Open a run; it ends FINISHED, FAILED when the body raises, KILLED on Ctrl-C (and on
    SIGTERM where :mod:`judgekit.tracking.process`'s handler or the CLI's ends it).

    The store is checked first (a :class:`ConfigError` naming ``key`` when it cannot be used).
    ``keep_going``: see :class:`MlflowRun`.
    """
    import mlflow

    client, experiment_id = _open(tracking, key)
    mlflow.set_tracking_uri(tracking.uri)
    try:
        run_id = _create(client, experiment_id, run_name, tags)
    except Exception as err:
        shown, why = display_uri(tracking.uri), scrub(first_line(err), tracking.uri)
        raise ConfigError(f"{key}: cannot create a run in {shown} ({why})") from None
    run = MlflowRun(client, run_id, experiment_id, keep_going=keep_going)
    with active_runs(client, run_id), sigterm_ends_runs():
        try:
            yield run
        except BaseException as err:
            run.keep_going = True  # the body's error is the one to report
            if is_active(run_id):  # else a signal handler has ended it already
                run.end("KILLED" if isinstance(err, KeyboardInterrupt) else "FAILED")
            raise
        run.end("FINISHED")


def finite_or_nan(value: Any) -> float:
    """A metric value as float (None → NaN)."""
    if value is None:
        return math.nan
    return float(value)
