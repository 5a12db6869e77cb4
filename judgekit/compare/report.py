"""Render a :class:`judgekit.compare.runs.Comparison`: text, markdown, CSV, a forest plot, MLflow.

``format_text`` is what ``judgekit compare`` prints; ``write_outputs`` writes
``comparison.md``, ``comparison.csv`` (runs × statistics), ``paired.csv`` (each run against the
baseline), ``forest.png`` and, when two or more runs have an agreement-vs-draws curve,
``agreement_vs_samples.csv``/``.png`` (the curves overlaid); ``log_summary`` logs those files
and the differences as metrics ``<run label>/<score>/<statistic>/difference`` in a run tagged
``judgekit.kind=comparison``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from judgekit.compare.records import Comparison

__all__ = [
    "forest_plot",
    "format_markdown",
    "format_text",
    "log_summary",
    "metric_part",
    "summary_metrics",
    "write_outputs",
]

USAGE = {
    "coverage": ("coverage", ".3f"),
    "n_failed": ("n_failed", ".0f"),
    "failures": ("failures (all scores)", ".0f"),
    "tokens": ("tokens (prompt + completion)", ".0f"),
    "cost_usd": ("cost (USD, litellm list price)", ".4g"),
    "latency_s": ("mean latency (s, calls sent)", ".3f"),
}
"""Run columns of the table after the statistics: heading and number format."""
TEXT_WIDTH = 120
"""Widest statistics table printed with run labels as column headings."""
VERDICT_COLOURS = {"better": "#2a9d4b", "worse": "#c0392b"}


def _num(value: Any, spec: str = ".3f") -> str:
    return "nan" if pd.isna(value) else format(float(value), spec)


def _with_ci(value: Any, low: Any, high: Any, spec: str = ".3f") -> str:
    if pd.isna(low):
        return _num(value, spec)
    return f"{_num(value, spec)} [{_num(low, spec)}, {_num(high, spec)}]"


def _p(value: Any) -> str:
    return "nan" if pd.isna(value) else f"{float(value):.3g}"


def _text_table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return [line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def _run_name(row: Any) -> str:
    return f"{row['label']} (baseline)" if row["baseline"] else str(row["label"])


def _stat_cells(c: Comparison, row: Any) -> list[str]:
    names = c.statistics_for(row["score"])
    cells = [_with_ci(row[s], row[f"{s}_ci_low"], row[f"{s}_ci_high"]) for s in names]
    return cells + [_num(row[k], spec) for k, (_, spec) in USAGE.items()]


def _paired_cells(row: Any) -> list[str]:
    diff = _with_ci(row["difference"], row["ci_low"], row["ci_high"], "+.3f")
    return [str(row["label"]), str(row["statistic"]), _num(row["a"]), _num(row["b"]), diff]


def _header(c: Comparison) -> list[str]:
    level = f"{c.confidence:.0%}"
    return [
        f"judgekit compare · {len(c.runs)} runs · baseline {c.baseline.label}"
        + (f" · sweep {c.sweep_id}" if c.sweep_id else ""),
        f"statistics: logged value [{level} bootstrap interval]; differences: run - baseline "
        f"[{level} paired bootstrap, {c.resamples} resamples]; mae/rmse: lower is better",
    ]


def _coverage_lines(paired: pd.DataFrame) -> list[str]:
    lines = []
    for (label, score), part in paired.groupby(["label", "score"], sort=False):
        first = part.iloc[0]
        if first["verdict"] == "not comparable":
            lines.append(f"{label} · {score}: not comparable: {first['note']}")
            continue
        note = f"; {first['note']}" if first["note"] else ""
        lines.append(
            f"{label} · {score}: {int(first['n_common'])} examples scored by both, "
            f"{int(first['n_dropped'])} dropped, {first['scheme']} resampled{note}"
        )
    return lines


def _stats_text(c: Comparison, score: str, part: pd.DataFrame) -> list[str]:
    """Statistics × runs; runs are headed ``#1``, ``#2``... when their labels do not fit."""
    columns = [_stat_cells(c, row) for _, row in part.iterrows()]
    names = [*c.statistics_for(score), *(head for head, _ in USAGE.values())]
    rows = [[name, *(col[i] for col in columns)] for i, name in enumerate(names)]
    number = {run.run_id: i for i, run in enumerate(c.runs, 1)}
    short = [f"#{number[row['run_id']]}" for _, row in part.iterrows()]
    table = _text_table(["statistic", *(_run_name(row) for _, row in part.iterrows())], rows)
    return table if len(table[0]) <= TEXT_WIDTH else _text_table(["statistic", *short], rows)


def format_text(c: Comparison) -> str:
    """The plain-text report: per score, statistics × runs, then the paired differences."""
    lines = _header(c)
    base = c.baseline
    lines += [
        f"  #{i} {run.label}{' (baseline)' if run is base else ''}: run {run.run_id}"
        for i, run in enumerate(c.runs, 1)
    ]
    for score, part in c.table.groupby("score", sort=False):
        lines += ["", f"{score}: agreement with humans", *_stats_text(c, str(score), part)]
        pairs = c.paired[c.paired["score"] == score]
        if pairs.empty:
            continue
        lines += ["", f"{score}: paired differences vs baseline {base.label}"]
        header = ["run", "statistic", "baseline", "value", "difference", "p", "verdict"]
        rows = [[*_paired_cells(r), _p(r["p_value"]), r["verdict"]] for _, r in pairs.iterrows()]
        lines += [*_text_table(header, rows), *_coverage_lines(pairs)]
    return "\n".join(lines)


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    return [line(header), "|" + "---|" * len(header), *(line(r) for r in rows)]


def format_markdown(c: Comparison) -> str:
    """``comparison.md``: per score, a runs × statistics table and the paired differences."""
    lines = ["# judgekit comparison", "", *(f"{line}  " for line in _header(c))]
    for score, part in c.table.groupby("score", sort=False):
        lines += ["", f"## {score}", ""]
        rows = [[_run_name(row), *_stat_cells(c, row)] for _, row in part.iterrows()]
        heads = [*c.statistics_for(str(score)), *(head for head, _ in USAGE.values())]
        lines += _md_table(["run", *heads], rows)
        pairs = c.paired[c.paired["score"] == score]
        if pairs.empty:
            continue
        lines += ["", f"### Paired differences vs baseline {c.baseline.label}", ""]
        header = ["run", "statistic", "baseline", "value", "difference", "p", "verdict"]
        rows = [
            [*_paired_cells(r), _p(r["p_value"]), f"**{r['verdict']}**"]
            for _, r in pairs.iterrows()
        ]
        lines += _md_table(header, rows)
        lines += ["", *(f"- {line}" for line in _coverage_lines(pairs))]
    lines += [
        "",
        "Intervals are per comparison, not adjusted for comparing several runs or statistics.",
        "Runs:",
        *(f"- {run.label}: `{run.run_id}` ({run.name})" for run in c.runs),
    ]
    return "\n".join(lines) + "\n"


def forest_plot(c: Comparison) -> Figure:
    """Each run's difference from the baseline with its interval: a row per run × statistic."""
    from matplotlib.figure import Figure

    shown = c.paired[c.paired["difference"].notna()]
    scores = list(dict.fromkeys(shown["score"])) or ["no comparable runs"]
    heights = [max(1, int((shown["score"] == s).sum())) for s in scores]
    longest = max((len(str(label)) for label in shown["label"]), default=10)
    size = (6.0 + 0.07 * longest, 1.2 + 0.3 * sum(heights) + 0.5 * len(scores))
    fig = Figure(figsize=size, layout="constrained")
    axes = fig.subplots(len(scores), 1, squeeze=False, height_ratios=heights)[:, 0]
    for ax, score in zip(axes, scores, strict=True):
        _forest_rows(ax, shown[shown["score"] == score].iloc[::-1])
        ax.set_title(score, fontsize=10)
    fig.suptitle(
        f"run - baseline ({c.baseline.label}), {c.confidence:.0%} paired bootstrap intervals\n"
        "green: better, red: worse, grey: no detectable difference",
        fontsize=9,
    )
    return fig


def _forest_rows(ax: Any, rows: pd.DataFrame) -> None:
    from judgekit.stats.bootstrap import LOWER_IS_BETTER

    names = []
    for y, (_, row) in enumerate(rows.iterrows()):
        colour = VERDICT_COLOURS.get(row["verdict"], "#777777")
        if not pd.isna(row["ci_low"]):
            ax.plot([row["ci_low"], row["ci_high"]], [y, y], color=colour, linewidth=2)
        ax.plot([row["difference"]], [y], "o", color=colour)
        lower = " (lower better)" if row["statistic"] in LOWER_IS_BETTER else ""
        names.append(f"{row['label']} · {row['statistic']}{lower}")
    ax.set_yticks(range(len(names)), names, fontsize=9)
    ax.set_ylim(-0.7, max(len(names), 1) - 0.3)
    ax.axvline(0, color="black", linewidth=0.8)


def write_outputs(c: Comparison, out_dir: Path) -> list[Path]:
    """Write comparison.md, comparison.csv, paired.csv and forest.png into ``out_dir``, and
    agreement_vs_samples.csv/.png when the comparison has curves to overlay."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [
        out_dir / name for name in ("comparison.md", "comparison.csv", "paired.csv", "forest.png")
    ]
    paths[0].write_text(format_markdown(c))
    c.table.to_csv(paths[1], index=False)
    c.paired.to_csv(paths[2], index=False)
    forest_plot(c).savefig(paths[3], dpi=100)
    if c.curves is not None:
        from judgekit.plots import agreement_vs_samples_by_run

        table, figure = out_dir / "agreement_vs_samples.csv", out_dir / "agreement_vs_samples.png"
        c.curves.to_csv(table, index=False)
        agreement_vs_samples_by_run(c.curves).savefig(figure, dpi=100)
        paths += [table, figure]
    return paths


def metric_part(text: str) -> str:
    """One ``/``-free segment of an MLflow metric name: alphanumerics, ``_ - .`` and space."""
    part = re.sub(r"[^A-Za-z0-9_.\- ]", "_", text).strip()[:100]
    return "_" if part in {"", ".", ".."} else part


def summary_metrics(paired: pd.DataFrame) -> dict[str, float]:
    """``<label>/<score>/<statistic>/{difference,ci_low,ci_high,p_value}`` of comparable rows."""
    metrics = {}
    for _, row in paired[paired["difference"].notna()].iterrows():
        prefix = "/".join(metric_part(str(row[k])) for k in ("label", "score", "statistic"))
        for key in ("difference", "ci_low", "ci_high", "p_value"):
            metrics[f"{prefix}/{key}"] = float(row[key])
    return metrics


def log_summary(c: Comparison, paths: list[Path], uri: str, experiment: str) -> str:
    """Log the comparison as a run tagged ``judgekit.kind=comparison``; returns its run id."""
    from judgekit.config.schema import TrackingConfig
    from judgekit.tracking.runs import mlflow_run

    tags = {
        "judgekit.kind": "comparison",
        "judgekit.baseline": c.baseline.run_id,
        "judgekit.compared_runs": ",".join(dict.fromkeys(run.mlflow_run_id for run in c.runs)),
    }
    if c.sweep_id:
        tags["judgekit.compared_sweep"] = c.sweep_id
    name = f"compare-{Path(c.sweep_id).name if c.sweep_id else c.baseline.label}"
    params = {
        "baseline": c.baseline.label,
        "statistics": ",".join(c.statistics),
        "resamples": str(c.resamples),
        "confidence": str(c.confidence),
        "scores": ",".join(dict.fromkeys(c.table["score"])),
    }
    with mlflow_run(TrackingConfig(uri=uri, experiment=experiment), name, tags) as run:
        run.log_params(params)
        run.log_metrics(summary_metrics(c.paired))
        run.log_artifacts(paths)
    return run.run_id
