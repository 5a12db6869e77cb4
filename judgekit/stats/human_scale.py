"""What a run says on the human scale: the PPI estimates (``stats.ppi``) and, when the examples
carry each annotator's label (``dataset.fields.annotators``), the alt-test and the pointwise human
ceiling. :func:`human_scale` computes them for a run from its results table;
``judgekit estimate`` and ``judgekit alt-test`` recompute them for a finished one from its
``results.parquet`` and ``annotators.parquet`` (:func:`annotator_arrays`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from judgekit.config.schema import Config, ScoreSpec
from judgekit.errors import RunError
from judgekit.records import Example
from judgekit.stats.estimates import ScoreEstimates, estimates_from_table
from judgekit.stats.raters import RaterFigures, rater_figures

__all__ = [
    "ANNOTATORS_FILE",
    "HumanScale",
    "ScoreInfo",
    "annotator_arrays",
    "annotators_table",
    "human_scale",
    "raters_from_tables",
]

log = logging.getLogger("judgekit")

ANNOTATORS_FILE = "annotators.parquet"
"""Each annotator's label of each example, written by a run whose examples carry them."""


@dataclass(frozen=True)
class ScoreInfo:
    """What the human-scale figures need to know of a score."""

    name: str
    kind: str
    categorical: bool
    """Named labels (a rubric or a preference): the alt-test aligns by accuracy."""
    minimum: float
    maximum: float

    @classmethod
    def of(cls, spec: ScoreSpec) -> ScoreInfo:
        return cls(
            spec.name,
            str(spec.kind),
            bool(spec.labels),
            float(spec.minimum or 0),
            float(spec.maximum or 0),
        )


@dataclass
class HumanScale:
    """A run's human-scale figures per score, and the annotators' labels they were made from."""

    estimates: dict[str, ScoreEstimates] = field(default_factory=dict)
    raters: dict[str, RaterFigures] = field(default_factory=dict)
    annotators: pd.DataFrame | None = None

    def metrics(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for est in self.estimates.values():
            out |= est.to_metrics()
        for figures in self.raters.values():
            out |= figures.to_metrics()
        return out

    def summary(self) -> dict[str, Any]:
        return {
            "estimates": {k: v.to_flat() for k, v in self.estimates.items()},
            "raters": {k: v.to_flat() for k, v in self.raters.items()},
        }

    def write(self, out_dir: Path) -> list[Path]:
        """``annotators.parquet`` when the examples carry annotators (else nothing)."""
        if self.annotators is None:
            return []
        path = out_dir / ANNOTATORS_FILE
        try:
            self.annotators.to_parquet(path, index=False)
        except OSError as err:
            raise RunError(f"could not write the annotators' labels to {path}: {err}") from None
        return [path]


def human_scale(cfg: Config, examples: Sequence[Example], frame: pd.DataFrame) -> HumanScale | None:
    """The run's figures: PPI with ``stats.ppi`` (scores with a human label on some row), the
    alt-test and ceiling for scores whose examples all carry annotators; None without either."""
    infos = {spec.name: ScoreInfo.of(spec) for spec in cfg.score.scores}
    estimates = {}
    if cfg.stats.ppi:
        labelled = [n for n in infos if frame.loc[frame["score"] == n, "human"].notna().any()]
        if not labelled:
            log.warning("stats.ppi: no score has a human label in this run; nothing to estimate")
        kinds = {n: infos[n].kind for n in labelled}
        estimates = estimates_from_table(
            frame, kinds, confidence=cfg.stats.confidence, width=cfg.stats.ppi_width
        )
    table = annotators_table(examples, cfg.dataset.fields.annotators)
    raters = {}
    if table is not None:
        raters = raters_from_tables(frame, table, infos, epsilon=cfg.stats.alt_test_epsilon)
    if not estimates and table is None:
        return None
    return HumanScale(estimates, raters, table)


def annotators_table(
    examples: Sequence[Example], columns: dict[str, list[str]]
) -> pd.DataFrame | None:
    """Tidy annotator labels (``example_index``, ``example_id``, ``score``, ``annotator`` — the
    column's name — and ``label``, NaN where missing) of the scores every example carries them
    for; None when none does."""
    rows = []
    for score, names in columns.items():
        if not examples or any(e.annotators.get(score) is None for e in examples):
            continue
        for index, example in enumerate(examples):
            for name, label in zip(names, example.annotators[score], strict=True):
                rows.append((index, example.id, score, name, float(label)))
    if not rows:
        return None
    return pd.DataFrame(
        rows, columns=["example_index", "example_id", "score", "annotator", "label"]
    )


def annotator_arrays(
    table: pd.DataFrame, score: str, index: Iterable[int]
) -> tuple[np.ndarray, list[str]]:
    """One score's (examples × annotators) labels in the order of ``index`` (example indexes),
    NaN where an annotator did not label; and the annotators' names in column order."""
    part = table[table["score"] == score]
    names = list(dict.fromkeys(part["annotator"]))
    wide = part.pivot(index="example_index", columns="annotator", values="label")
    wide = wide.reindex(index=list(index), columns=names)
    return wide.to_numpy(dtype=float), names


def raters_from_tables(
    frame: pd.DataFrame,
    annotators: pd.DataFrame,
    infos: dict[str, ScoreInfo],
    *,
    epsilon: float,
) -> dict[str, RaterFigures]:
    """:func:`rater_figures` per score that has annotators: the judge column of the results table
    against the annotators' labels of the same examples."""
    out = {}
    for score in dict.fromkeys(annotators["score"]):
        info = infos.get(str(score))
        if info is None:
            continue
        part = frame[frame["score"] == info.name].sort_values("example_index")
        labels, names = annotator_arrays(annotators, info.name, part["example_index"])
        if labels.shape[1] < 2:
            continue
        out[info.name] = rater_figures(
            info.name,
            info.kind,
            labels,
            part["judge"].to_numpy(dtype=float),
            names=names,
            categorical=info.categorical,
            minimum=info.minimum,
            maximum=info.maximum,
            epsilon=epsilon,
        )
    return out
