"""Repeat sampling (``runner.samples = k``): every draw kept, one reduced value per item.

Where the draws go (a decision): ``results.parquet`` stays one row per (example, score), and its
``judge`` holds the item's **reduced** value (``runner.reduce``; the majority verdict for a
preference score), so every consumer of the results table (``judgekit compare``, re-judging,
traces, the agreement report) reads it as before. The draws themselves are in
``samples.parquet``: one row per (example, score, sample), the columns of ``results.parquet``
plus ``sample`` (0 .. k - 1), each row's ``judge`` the value of that draw — this is the issue's
"``sample`` column".

No silent decisions: a failed draw is NaN with its ``failure_reason`` in ``samples.parquet``,
counted (``<score>/n_failed_draws``), and left out of its item's reduction, which then uses only
the successful draws and says so in ``failure_detail`` (``reduced (mean) from 2 of 3 draws; ...``);
an item with no successful draw is a failed row whose reason is its first draw's.

Alongside: ``agreement_vs_samples.csv``/``.png`` (agreement of the reduction of the first j draws,
j = 1..k, with bootstrap intervals) and ``unstable_items.csv`` (the items whose draws disagree
most, with their draws and the human label).
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from judgekit.config.schema import Config, ScoreSchemaConfig, ScoreSpec
from judgekit.design import split_samples
from judgekit.judge.client import JudgeResponse
from judgekit.records import Example, FailureReason
from judgekit.results import parse_responses, results_table
from judgekit.stats.agreement import headline_estimates
from judgekit.stats.repeats import Level, SampleStability, majority, reduce_draws, stability

__all__ = [
    "UNSTABLE_SHOWN",
    "agreement_curve",
    "draw_tables",
    "level_of",
    "reduce_tables",
    "samples_table",
    "score_draws",
    "stability_by_score",
    "tables_of",
    "unstable_items",
    "write_draws",
]

UNSTABLE_SHOWN = 20
"""Items per score in ``unstable_items.csv`` (those whose draws disagree most)."""


def draw_tables(
    examples: list[Example],
    responses: dict[int, JudgeResponse],
    schema: ScoreSchemaConfig,
    *,
    swap: bool,
    samples: int,
) -> list[pd.DataFrame]:
    """Per draw, the results table of that draw alone (as a run without repeats makes it)."""
    tables = []
    for given, swapped in split_samples(responses, swap=swap, samples=samples):
        first = parse_responses(examples, given, schema)
        second = parse_responses(examples, swapped, schema) if swapped is not None else None
        tables.append(results_table(examples, first, schema, second))
    return tables


def samples_table(tables: list[pd.DataFrame]) -> pd.DataFrame:
    """The draws in one table (``samples.parquet``): ``sample`` after ``score``."""
    parts = []
    for sample, table in enumerate(tables):
        part = table.copy()
        part.insert(int(part.columns.get_loc("score")) + 1, "sample", sample)  # type: ignore[arg-type]
        parts.append(part)
    return pd.concat(parts, ignore_index=True).sort_values(
        ["example_index", "score", "sample"], kind="stable", ignore_index=True
    )


def tables_of(samples: pd.DataFrame) -> list[pd.DataFrame]:
    """``samples.parquet`` back to its per-draw tables (rows in the results table's order)."""
    draws = int(samples["sample"].max()) + 1 if len(samples) else 0
    return [
        samples[samples["sample"] == s].drop(columns="sample").reset_index(drop=True)
        for s in range(draws)
    ]


def level_of(spec: ScoreSpec) -> Level:
    """The level a score's draws are compared at: nominal for labels (rubric, preference),
    ordinal for an integer scale, interval for a continuous one."""
    if spec.kind == "preference" or spec.labels:
        return "nominal"
    return "ordinal" if spec.is_integer_scale else "interval"


def _matrix(tables: list[pd.DataFrame], column: str) -> np.ndarray:
    return np.column_stack([t[column].to_numpy(dtype=float) for t in tables])


def reduce_tables(tables: list[pd.DataFrame], specs: list[ScoreSpec], how: str) -> pd.DataFrame:
    """The results table of reduced values: one row per (example, score), ``judge`` the
    reduction of the item's successful draws (see the module docstring)."""
    reduced = tables[0].copy()
    values, expected = _matrix(tables, "judge"), _matrix(tables, "judge_expected")
    preference = (reduced["score"].map({s.name: s.kind for s in specs}) == "preference").to_numpy()
    hows = np.where(preference, "majority", how)
    sources = np.where((hows == "expected")[:, None], expected, values)
    reasons = np.column_stack([t["failure_reason"].to_numpy(dtype=object) for t in tables])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: NaN, said below
        reduced["judge_expected"] = np.nanmean(expected, axis=1)
    reduced["judge"] = [reduce_draws(v, str(h)) for v, h in zip(sources, hows, strict=True)]
    for column in ("judge_first", "judge_second"):
        reduced[column] = [majority(v) for v in _matrix(tables, column)]
    explained = [
        _explain(list(r), v, str(h)) for r, v, h in zip(reasons, sources, hows, strict=True)
    ]
    for i, column in enumerate(("failure_reason", "failure_detail")):  # typed as without draws
        reduced[column] = pd.DataFrame({column: [e[i] for e in explained]})[column]
    _sum_costs(reduced, tables)
    return reduced


def _explain(reasons: list[object], used: np.ndarray, how: str) -> tuple[str | None, str | None]:
    """(failure_reason, failure_detail) of a reduced row: which draws it stands on."""
    failed = Counter(str(r) for r in reasons if isinstance(r, str) and r)
    ok, k = int(np.isfinite(used).sum()), len(reasons)
    listed = ", ".join(f"{reason} ×{n}" for reason, n in sorted(failed.items()))
    listed = listed or "no usable value (e.g. no logprobs for reduce=expected)"
    if ok == 0:
        first = next((str(r) for r in reasons if isinstance(r, str) and r), None)
        return first or FailureReason.BAD_RESPONSE.value, f"no successful draw of {k}: {listed}"
    return None, (f"reduced ({how}) from {ok} of {k} draws; failed: {listed}" if ok < k else None)


def _sum_costs(reduced: pd.DataFrame, tables: list[pd.DataFrame]) -> None:
    """Attempts, latency and tokens of every draw summed; cached when every draw was."""
    for column in ("attempts", "latency_s", "prompt_tokens", "completion_tokens"):
        reduced[column] = sum((t[column] for t in tables[1:]), tables[0][column])
    reduced["cached"] = np.logical_and.reduce([t["cached"].to_numpy(dtype=bool) for t in tables])


def score_draws(tables: list[pd.DataFrame], name: str) -> tuple[pd.DataFrame, np.ndarray]:
    """One score's rows of the first draw, and its (items × draws) values (NaN = failed)."""
    keep = (tables[0]["score"] == name).to_numpy()
    return tables[0][keep], _matrix(tables, "judge")[keep]


def stability_by_score(
    tables: list[pd.DataFrame], specs: list[ScoreSpec]
) -> dict[str, SampleStability]:
    """The test–retest figures of every score, at the score's level (:func:`level_of`)."""
    return {
        spec.name: stability(score_draws(tables, spec.name)[1], level_of(spec)) for spec in specs
    }


def agreement_curve(tables: list[pd.DataFrame], cfg: Config) -> pd.DataFrame:
    """Agreement with humans of the reduction of the first j draws, j = 1..k: one row per
    (score, statistic, j) with ``value``, ``ci_low``, ``ci_high`` and ``n_scored``."""
    rows = []
    for spec in cfg.score.scores:
        part, draws = score_draws(tables, spec.name)
        if part["human"].isna().all():
            continue
        how = "majority" if spec.kind == "preference" else str(cfg.runner.reduce)
        source = draws
        if how == "expected":
            source = score_draws([t.assign(judge=t["judge_expected"]) for t in tables], spec.name)[
                1
            ]
        for j in range(1, len(tables) + 1):
            judged = np.array([reduce_draws(r[:j], how) for r in source])
            scored = int((np.isfinite(judged) & part["human"].notna().to_numpy()).sum())
            for name, est in headline_estimates(part.assign(judge=judged), spec, cfg).items():
                rows.append(
                    {
                        "score": spec.name,
                        "statistic": name,
                        "draws": j,
                        "value": est.value,
                        "ci_low": est.ci_low,
                        "ci_high": est.ci_high,
                        "n_scored": scored,
                    }
                )
    columns = ["score", "statistic", "draws", "value", "ci_low", "ci_high", "n_scored"]
    return pd.DataFrame(rows, columns=columns)


def unstable_items(
    tables: list[pd.DataFrame], reduced: pd.DataFrame, specs: list[ScoreSpec]
) -> pd.DataFrame:
    """Per score, up to :data:`UNSTABLE_SHOWN` items whose successful draws disagree, most
    spread first (distinct values, then the within-item standard deviation)."""
    rows = []
    for spec in specs:
        part, draws = score_draws(tables, spec.name)
        judged = reduced.loc[part.index, "judge"].to_numpy(dtype=float)
        found = []
        for i, values in enumerate(draws):
            ok = values[np.isfinite(values)]
            if np.unique(ok).size < 2:
                continue
            found.append(
                {
                    "score": spec.name,
                    "example_id": part["example_id"].iloc[i],
                    "example_index": int(part["example_index"].iloc[i]),
                    "human": float(part["human"].iloc[i]),
                    "judge": float(judged[i]),
                    "draws": ", ".join("failed" if math.isnan(v) else f"{v:g}" for v in values),
                    "n_distinct": int(np.unique(ok).size),
                    "draw_std": float(np.std(ok, ddof=1)),
                }
            )
        found.sort(key=lambda r: (-r["n_distinct"], -r["draw_std"], r["example_index"]))
        rows.extend(found[:UNSTABLE_SHOWN])
    columns = ["score", "example_id", "example_index", "human", "judge", "draws", "n_distinct"]
    return pd.DataFrame(rows, columns=[*columns, "draw_std"])


def write_draws(
    samples: pd.DataFrame, unstable: pd.DataFrame, cfg: Config, out_dir: Path
) -> list[Path]:
    """Write ``samples.parquet``, ``agreement_vs_samples.csv``/``.png`` and
    ``unstable_items.csv`` into ``out_dir``; returns their paths."""
    from judgekit.plots import agreement_vs_samples
    from judgekit.results import write_results

    tables = tables_of(samples)
    paths = [write_results(samples, out_dir / "samples.parquet")]
    curve = agreement_curve(tables, cfg)
    curve.to_csv(out_dir / "agreement_vs_samples.csv", index=False)
    agreement_vs_samples(curve).savefig(out_dir / "agreement_vs_samples.png", dpi=100)
    unstable.to_csv(out_dir / "unstable_items.csv", index=False)
    names = ("agreement_vs_samples.csv", "agreement_vs_samples.png", "unstable_items.csv")
    return paths + [out_dir / name for name in names]
