"""Score-distribution figures; one function per figure, each returns a matplotlib Figure."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from judgekit.config.schema import ScoreSpec
from judgekit.stats.pointwise import round_half_up

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "Categories",
    "agreement_vs_samples",
    "agreement_vs_samples_by_run",
    "categories",
    "confusion_frame",
    "confusion_heatmap",
    "member_heatmap",
    "percentile_table",
    "reliability_diagram",
    "save_figures",
    "score_histogram",
]

PERCENTILES = (25, 50, 75, 90)


def _figure(width: float = 6.0, height: float = 4.0) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


MAX_LEVELS_SHOWN = 21
"""Most levels of an integer scale drawn one per bar or cell (0..20); wider scales are binned."""
N_BINS = 10
"""Equal-width bins over the declared range for a wide integer scale or a continuous one."""


@dataclass(frozen=True)
class Categories:
    """How a score's values are shown: one category per level, label or bin of the scale."""

    labels: list[str]
    """Tick and table label of each category, in order."""
    how: str
    """How values were put into categories, said in each figure's title."""
    index: Callable[[np.ndarray], np.ndarray]
    """Category of each finite value (-1 when outside the declared range)."""


def categories(spec: ScoreSpec) -> Categories:
    """The categories of a score's declared scale (never of the values observed).

    Rubric labels: one per label (a value goes to the nearest label's value). An integer scale
    of at most :data:`MAX_LEVELS_SHOWN` levels: one per level, values rounded half up (a mean of
    annotators, 2.5, counts at 3, as in the statistics). A wider integer scale (0..100) or a
    continuous one (0.0–1.0): :data:`N_BINS` equal-width bins of the range, each holding its lower
    edge, the last one also the maximum.
    """
    low, high = float(spec.minimum or 0), float(spec.maximum or 0)
    if spec.labels:
        names = sorted(spec.labels, key=lambda name: spec.labels[name].value)
        values = np.array([spec.labels[name].value for name in names], dtype=float)
        return Categories(names, "one per label", partial(_nearest, values))
    if spec.is_integer_scale and high - low + 1 <= MAX_LEVELS_SHOWN:
        levels = np.arange(int(low), int(high) + 1)
        return Categories(
            [str(v) for v in levels], "one per level", partial(_level, int(low), int(high))
        )
    edges = np.linspace(low, high, N_BINS + 1)
    if spec.is_integer_scale:
        firsts = np.ceil(edges[:-1] - 1e-9).astype(int)
        lasts = [*(np.ceil(edges[1:-1] - 1e-9).astype(int) - 1), int(high)]
        labels = [f"{a}–{b}" if a != b else f"{a}" for a, b in zip(firsts, lasts, strict=True)]
    else:
        labels = [f"{a:g}–{b:g}" for a, b in zip(edges[:-1], edges[1:], strict=True)]
    width = (high - low) / N_BINS
    how = f"binned into {N_BINS} bins of width {width:g}"
    if spec.is_integer_scale:
        how += ", values rounded half up first"
    return Categories(labels, how, partial(_bin, low, high, spec.is_integer_scale))


def _nearest(values: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.abs(np.asarray(x, dtype=float)[:, None] - values[None, :]).argmin(axis=1)


def _level(low: int, high: int, x: np.ndarray) -> np.ndarray:
    rounded = round_half_up(x).astype(int)
    return np.where((rounded >= low) & (rounded <= high), rounded - low, -1)


def _bin(low: float, high: float, integer: bool, x: np.ndarray) -> np.ndarray:
    x = round_half_up(x) if integer else np.asarray(x, dtype=float)
    span = high - low
    position = (x - low) / span * N_BINS if span > 0 else np.zeros_like(x)
    index = np.minimum(np.floor(position + 1e-9), N_BINS - 1).astype(int)
    return np.where((x >= low) & (x <= high), index, -1)


def _rotation(labels: list[str]) -> int:
    """Tilt tick labels that would overlap: many of them, or long ones (bins)."""
    return 45 if len(labels) > 12 or max(map(len, labels), default=0) > 3 else 0


def _counts(values: pd.Series, cats: Categories) -> np.ndarray:
    index = cats.index(values.dropna().to_numpy(dtype=float))
    return np.bincount(index[index >= 0], minlength=len(cats.labels))


def score_histogram(frame: pd.DataFrame, spec: ScoreSpec) -> Figure:
    """Human vs judge score counts side by side over the categories of the score's scale."""
    fig = _figure()
    ax = fig.add_subplot()
    cats = categories(spec)
    positions = np.arange(len(cats.labels))
    for offset, column, colour in ((-0.2, "human", "#4C72B0"), (0.2, "judge", "#DD8452")):
        ax.bar(
            positions + offset, _counts(frame[column], cats), width=0.4, label=column, color=colour
        )
    failed = int(frame["judge"].isna().sum())
    ax.set_xticks(positions, cats.labels, rotation=_rotation(cats.labels))
    ax.set_xlabel(f"{spec.name} ({cats.how})")
    ax.set_ylabel("rows")
    ax.set_title(f"{spec.name}: human vs judge ({failed} failed rows not shown)")
    ax.legend()
    return fig


def confusion_frame(frame: pd.DataFrame, spec: ScoreSpec) -> pd.DataFrame:
    """Human (rows) × judge (columns) counts over the categories of the declared scale, rows
    where both exist (:func:`categories`: levels, labels, or bins of a wide scale)."""
    cats = categories(spec)
    both = frame.dropna(subset=["human", "judge"])
    k = len(cats.labels)
    human = cats.index(both["human"].to_numpy(dtype=float))
    judge = cats.index(both["judge"].to_numpy(dtype=float))
    inside = (human >= 0) & (judge >= 0)
    cells = np.bincount(human[inside] * k + judge[inside], minlength=k * k).reshape(k, k)
    index = pd.Index(cats.labels, name="human")
    return pd.DataFrame(cells, index=index, columns=pd.Index(cats.labels))


def confusion_heatmap(frame: pd.DataFrame, spec: ScoreSpec) -> Figure:
    """Human × judge counts over the categories of the declared scale, rows where both exist."""
    cats = categories(spec)
    both = frame.dropna(subset=["human", "judge"])
    matrix = confusion_frame(frame, spec).to_numpy()
    fig = _figure(5.0, 4.5)
    ax = fig.add_subplot()
    image = ax.imshow(matrix, cmap="Blues", origin="lower")
    for (i, j), count in np.ndenumerate(matrix):
        colour = "white" if count > matrix.max() / 2 else "black"
        ax.text(j, i, str(count), ha="center", va="center", color=colour, fontsize=8)
    ticks = range(len(cats.labels))
    ax.set_xticks(ticks, cats.labels, rotation=_rotation(cats.labels))
    ax.set_yticks(ticks, cats.labels)
    ax.set_xlabel("judge")
    ax.set_ylabel("human")
    ax.set_title(f"{spec.name}: human × judge (n={len(both)})\n{cats.how}", fontsize=9)
    fig.colorbar(image, ax=ax, shrink=0.8)
    return fig


def reliability_diagram(bins: list[dict[str, float]], score: str, ece: float) -> Figure:
    """Accuracy against mean confidence per confidence bin of the judge's most probable level
    (the bins of :func:`judgekit.stats.calibration.probability_calibration`); the diagonal is a
    perfectly calibrated judge."""
    fig = _figure(4.5, 4.5)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1)
    confidence = [b["mean_confidence"] for b in bins]
    accuracy = [b["accuracy"] for b in bins]
    sizes = [20 + 200 * b["count"] / max(sum(c["count"] for c in bins), 1) for b in bins]
    ax.plot(confidence, accuracy, marker="", color="tab:blue")
    ax.scatter(confidence, accuracy, s=sizes, color="tab:blue", zorder=3)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("judge confidence (probability of its most probable level)")
    ax.set_ylabel("share matching the human label")
    ax.set_title(f"{score}: reliability (ECE {ece:.3f}; marker size = rows)", fontsize=9)
    return fig


def percentile_frame(frame: pd.DataFrame, specs: list[ScoreSpec]) -> pd.DataFrame:
    """Percentiles 25/50/75/90 of human and judge scores, one row per (score, rater)."""
    rows = []
    for spec in specs:
        part = frame[frame["score"] == spec.name]
        for rater in ("human", "judge"):
            values = part[rater].dropna().to_numpy()
            cells = (
                np.percentile(values, PERCENTILES) if len(values) else [np.nan] * len(PERCENTILES)
            )
            rows.append(
                {
                    "score": spec.name,
                    "rater": rater,
                    **{f"p{q}": v for q, v in zip(PERCENTILES, cells, strict=True)},
                }
            )
    return pd.DataFrame(rows)


def percentile_table(frame: pd.DataFrame, specs: list[ScoreSpec]) -> Figure:
    """The percentile frame drawn as a table figure."""
    table = percentile_frame(frame, specs)
    fig = _figure(6.0, 0.6 + 0.3 * len(table))
    ax = fig.add_subplot()
    ax.axis("off")
    cells = [
        [row["score"], row["rater"], *(f"{row[f'p{q}']:.2f}" for q in PERCENTILES)]
        for _, row in table.iterrows()
    ]
    ax.table(
        cellText=cells, colLabels=["score", "rater", *(f"p{q}" for q in PERCENTILES)], loc="center"
    )
    ax.set_title("score percentiles")
    return fig


def agreement_vs_samples(curve: pd.DataFrame) -> Figure:
    """Agreement with humans of the reduction of the first j draws, j = 1..k, one line per
    (score, statistic) of ``curve`` (columns ``score``, ``statistic``, ``draws``, ``value``,
    ``ci_low``, ``ci_high``), the bootstrap interval as a band."""
    fig = _figure()
    ax = fig.add_subplot()
    for (score, statistic), part in curve.groupby(["score", "statistic"], sort=False):
        part = part.sort_values("draws")
        ax.plot(part["draws"], part["value"], marker="o", label=f"{score} {statistic}")
        ax.fill_between(part["draws"], part["ci_low"], part["ci_high"], alpha=0.2)
    ax.set_xlabel("draws reduced (first j of runner.samples)")
    ax.set_ylabel("agreement with humans")
    ax.set_xticks(sorted(curve["draws"].unique()) if len(curve) else [])
    ax.set_title("Agreement vs number of draws")
    if len(curve):
        ax.legend(fontsize="small")
    return fig


def member_heatmap(matrix: pd.DataFrame, title: str) -> Figure:
    """A square member × member agreement matrix (a judge panel) as a heatmap, values written."""
    values = matrix.to_numpy(dtype=float)
    fig = _figure(1.6 + 0.9 * len(matrix), 1.2 + 0.8 * len(matrix))
    ax = fig.add_subplot()
    image = ax.imshow(values, cmap="viridis", vmin=-1.0, vmax=1.0)
    for (i, j), value in np.ndenumerate(values):
        ax.text(
            j,
            i,
            "–" if np.isnan(value) else f"{value:.2f}",
            ha="center",
            va="center",
            color="white" if value < 0.3 else "black",
            fontsize=8,
        )
    names = [str(n) for n in matrix.index]
    ax.set_xticks(range(len(names)), names, rotation=_rotation(names))
    ax.set_yticks(range(len(names)), names)
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, shrink=0.8)
    return fig


def agreement_vs_samples_by_run(curves: pd.DataFrame) -> Figure:
    """Several runs' agreement-vs-draws curves overlaid: a panel per (score, statistic), a line
    with its bootstrap band per run (``curves``: a ``run`` column and those of
    :func:`agreement_vs_samples`), a run keeping its colour in every panel."""
    panels = list(dict.fromkeys(zip(curves["score"], curves["statistic"], strict=True)))
    runs = list(dict.fromkeys(curves["run"]))
    columns = max(1, min(3, len(panels)))
    rows = max(1, -(-len(panels) // columns))
    fig = _figure(4.0 * columns, 1.0 + 3.0 * rows)
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    colours = [f"C{i % 10}" for i in range(len(runs))]
    for ax, (score, statistic) in zip(axes, panels, strict=False):
        part = curves[(curves["score"] == score) & (curves["statistic"] == statistic)]
        for run, colour in zip(runs, colours, strict=True):
            line = part[part["run"] == run].sort_values("draws")
            if line.empty:
                continue
            ax.plot(line["draws"], line["value"], marker="o", color=colour, label=run)
            ax.fill_between(
                line["draws"], line["ci_low"], line["ci_high"], color=colour, alpha=0.15
            )
        ax.set_title(f"{score} {statistic}", fontsize=10)
        ax.set_xlabel("draws reduced (first j)")
        ax.set_xticks(sorted(part["draws"].unique()))
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    shown = {
        label: h for ax in axes for h, label in zip(*ax.get_legend_handles_labels(), strict=True)
    }
    if shown:
        fig.legend(list(shown.values()), list(shown), loc="outside lower center", fontsize="small")
    fig.suptitle("Agreement with humans vs number of draws, per run", fontsize=10)
    return fig


def save_figures(frame: pd.DataFrame, specs: list[ScoreSpec], out_dir: Path) -> list[Path]:
    """Draw every figure for the run and write them as PNG files into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for spec in specs:
        part = frame[frame["score"] == spec.name]
        figures = {f"hist_{spec.name}.png": score_histogram(part, spec)}
        if part["human"].notna().any():
            figures[f"confusion_{spec.name}.png"] = confusion_heatmap(part, spec)
            table = out_dir / f"confusion_{spec.name}.csv"
            confusion_frame(part, spec).to_csv(table)
            paths.append(table)
        for name, fig in figures.items():
            fig.savefig(out_dir / name, dpi=100)
            paths.append(out_dir / name)
    path = out_dir / "percentiles.png"
    percentile_table(frame, specs).savefig(path, dpi=100)
    percentile_frame(frame, specs).to_csv(out_dir / "percentiles.csv", index=False)
    paths += [path, out_dir / "percentiles.csv"]
    return paths
