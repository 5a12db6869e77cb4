"""Score-distribution figures; one function per figure, each returns a matplotlib Figure."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from judgekit.config.schema import ScoreSpec

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["confusion_heatmap", "percentile_table", "save_figures", "score_histogram"]

PERCENTILES = (25, 50, 75, 90)


def _figure(width: float = 6.0, height: float = 4.0) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _levels(spec: ScoreSpec) -> np.ndarray:
    if spec.is_integer_scale:
        return np.arange(int(spec.minimum or 0), int(spec.maximum or 0) + 1)
    return np.linspace(spec.minimum or 0, spec.maximum or 1, 11)


def score_histogram(frame: pd.DataFrame, spec: ScoreSpec) -> Figure:
    """Human vs judge score counts side by side on the score's scale."""
    fig = _figure()
    ax = fig.add_subplot()
    levels = _levels(spec)
    width = 0.4 * (levels[1] - levels[0] if len(levels) > 1 else 1)
    for offset, column, colour in (
        (-width / 2, "human", "#4C72B0"),
        (width / 2, "judge", "#DD8452"),
    ):
        values = frame[column].dropna().round().to_numpy()
        counts = [int((values == level).sum()) for level in levels]
        ax.bar(levels + offset, counts, width=width, label=column, color=colour)
    failed = int(frame["judge"].isna().sum())
    ax.set_xticks(levels)
    ax.set_xlabel(spec.name)
    ax.set_ylabel("rows")
    ax.set_title(f"{spec.name}: human vs judge ({failed} failed rows not shown)")
    ax.legend()
    return fig


def confusion_frame(frame: pd.DataFrame, spec: ScoreSpec) -> pd.DataFrame:
    """Human (rows) × judge (columns) counts over the declared levels, rows where both exist."""
    levels = _levels(spec)
    both = frame.dropna(subset=["human", "judge"])
    matrix = np.zeros((len(levels), len(levels)), dtype=int)
    index = {float(level): i for i, level in enumerate(levels)}
    for human, judge in zip(both["human"].round(), both["judge"].round(), strict=True):
        if float(human) in index and float(judge) in index:
            matrix[index[float(human)], index[float(judge)]] += 1
    labels = [f"{level:g}" for level in levels]
    return pd.DataFrame(matrix, index=pd.Index(labels, name="human"), columns=labels)


def confusion_heatmap(frame: pd.DataFrame, spec: ScoreSpec) -> Figure:
    """Human × judge counts over the declared levels, rows where both exist."""
    levels = _levels(spec)
    both = frame.dropna(subset=["human", "judge"])
    matrix = confusion_frame(frame, spec).to_numpy()
    fig = _figure(5.0, 4.5)
    ax = fig.add_subplot()
    image = ax.imshow(matrix, cmap="Blues", origin="lower")
    for (i, j), count in np.ndenumerate(matrix):
        colour = "white" if count > matrix.max() / 2 else "black"
        ax.text(j, i, str(count), ha="center", va="center", color=colour)
    labels = [f"{level:g}" for level in levels]
    ax.set_xticks(range(len(levels)), labels)
    ax.set_yticks(range(len(levels)), labels)
    ax.set_xlabel("judge")
    ax.set_ylabel("human")
    ax.set_title(f"{spec.name}: human × judge (n={len(both)})")
    fig.colorbar(image, ax=ax, shrink=0.8)
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
