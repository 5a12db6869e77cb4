"""A judge panel (``judge=panel``): every member's table, the panel's, and what they show together.

Each member judges every item as a run of that judge alone would (its own client, cache keys,
local server, ``runner.samples`` draws); :func:`panel_table` combines the members' tables row by
row into the panel's results table (``judge.aggregate``, :func:`judgekit.stats.panel.combine`).
With ``judge.swap`` the panel combines each order's verdicts on its own and then applies the swap
rule, so the panel's position consistency is a panel's.

No silent decisions: an item the panel cannot decide is NaN with ``failure_reason``
``no_majority`` and the members' values in ``failure_detail``; a member that failed is left out
of ``mean``/``median``/``majority``/``weighted`` and named in ``failure_detail``.

``weighted``: the weights are fitted on ``judge.weights_split`` of the rows (seeded, whole groups)
and the panel — and every figure beside it, the members' included — is reported on the other
rows only; ``members.parquet`` keeps every row with a ``split`` column.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from judgekit.config.schema import Config, ScoreSpec
from judgekit.judge.pricing import list_price_usd
from judgekit.records import Example, FailureReason
from judgekit.stats.panel import TIE, agreement_matrix, combine, fit_weights
from judgekit.stats.repeats import SampleStability, krippendorff_alpha_units
from judgekit.stats.report import AgreementReport

__all__ = [
    "PanelResult",
    "assemble_panel",
    "calibration_rows",
    "cost_table",
    "member_matrix",
    "objective_of",
    "panel_table",
    "write_panel",
]

_COSTS = ("attempts", "latency_s", "prompt_tokens", "completion_tokens")
ORDERS = ("judge_first", "judge_second")
SPLIT_TIE = "the members split: a tie"
"""The start of ``failure_detail`` of a preference a panel's split made a tie (``majority``,
``mean``, ``median``), counted as ``<score>/n_split_ties``."""


@dataclass
class PanelResult:
    """What a panel run shows beside the panel's own agreement (``RunResult.panel``)."""

    names: list[str]
    members: pd.DataFrame
    """Every member's results rows, ``member`` after ``score`` and ``split`` (``calibration``
    or ``evaluation``) last (``members.parquet``)."""
    reports: dict[str, AgreementReport]
    """Each member's agreement with the humans on the rows the panel is reported on."""
    stability: dict[str, dict[str, SampleStability]] = field(default_factory=dict)
    """With ``runner.samples`` > 1: each member's test–retest figures per score."""
    weights: dict[str, dict[str, float]] = field(default_factory=dict)
    """``aggregate: weighted``: per score, each member's fitted weight."""
    calibration: list[int] = field(default_factory=list)
    """``aggregate: weighted``: the example indexes the weights were fitted on."""
    inter_judge_alpha: dict[str, float] = field(default_factory=dict)
    matrices: dict[str, tuple[pd.DataFrame, str]] = field(default_factory=dict)
    """Per score, the member × member agreement and its statistic's name."""
    leave_one_out: pd.DataFrame | None = None
    cost: pd.DataFrame | None = None
    config_specs: list[ScoreSpec] = field(default_factory=list)
    """The run's scores (in order), for the printed report."""
    split_ties: dict[str, int] = field(default_factory=dict)
    """Per preference score, the items the members' split made a tie (``majority``, ``mean``,
    ``median``; ``failure_detail`` says so)."""

    def metrics(self) -> dict[str, float]:
        """``<score>/member/<name>/<stat>``, ``<score>/inter_judge_alpha``,
        ``<score>/member/<name>/loo_*`` and ``cost/<name>/...`` (``panel`` for the whole)."""
        out: dict[str, float] = {}
        for name, report in self.reports.items():
            for key, value in report.to_metrics().items():
                score, _, stat = key.partition("/")
                out[f"{score}/member/{name}/{stat}"] = value
        for name, by_score in self.stability.items():
            for score, figures in by_score.items():
                out |= {f"{score}/member/{name}/{k}": v for k, v in figures.to_flat().items()}
        shown = self.members[self.members["split"] == "evaluation"]
        for name, part in shown.groupby("member", sort=False):
            for reason, n in part["failure_reason"].dropna().value_counts().items():
                out[f"failures/member/{name}/{reason}"] = n
        for score, alpha in self.inter_judge_alpha.items():
            out[f"{score}/inter_judge_alpha"] = alpha
        out |= {f"{score}/n_split_ties": n for score, n in self.split_ties.items()}
        for score, by_member in self.weights.items():
            out |= {f"{score}/member/{name}/weight": w for name, w in by_member.items()}
        for row in _records(self.leave_one_out):
            prefix = f"{row['score']}/member/{row['member']}/loo"
            out[f"{prefix}_{row['statistic']}"] = row["without"]
            for key in ("change", "change_ci_low", "change_ci_high", "n_common"):
                out[f"{prefix}_{key}"] = row[key]
        for row in _records(self.cost):
            for key in ("items", "attempts", "prompt_tokens", "completion_tokens", "cost_usd"):
                out[f"cost/{row['member']}/{key}"] = row[key]
        return {k: float(v) for k, v in out.items() if v is not None and not pd.isna(v)}

    def summary(self) -> dict[str, Any]:
        """The ``panel`` entry of ``summary.json``."""
        return {
            "members": self.names,
            "agreement": {name: r.to_flat() for name, r in self.reports.items()},
            "inter_judge_alpha": self.inter_judge_alpha,
            "member_agreement": {
                score: {"statistic": stat, "matrix": frame.to_dict()}
                for score, (frame, stat) in self.matrices.items()
            },
            "weights": self.weights,
            "n_calibration_rows": len(self.calibration),
            "leave_one_out": _records(self.leave_one_out),
            "cost": _records(self.cost),
        }


def _records(frame: pd.DataFrame | None) -> list[dict[str, Any]]:
    return [] if frame is None else frame.to_dict("records")


def assemble_panel(
    cfg: Config, examples: list[Example], tables: list[dict[str, Any]]
) -> tuple[pd.DataFrame, PanelResult, dict[str, np.ndarray]]:
    """The panel's results rows (those it is reported on), its :class:`PanelResult`, and the
    annotators' labels of those rows, from each member's tabulated fields (``results``, and
    with ``runner.samples`` > 1 ``stability``)."""
    from judgekit.stats.agreement import agreement_report, annotator_labels

    members, specs, how = cfg.judge.members, cfg.score.scores, str(cfg.judge.aggregate)
    names = [m.name for m in members]
    frames = [t["results"] for t in tables]
    fit_rows = np.array([], dtype=int)
    if how == "weighted":
        fit_rows = calibration_rows(cfg, [e.group for e in examples])
    weights = fitted_weights(frames, specs, fit_rows) if how == "weighted" else None
    panel = panel_table(frames, names, specs, how, weights=weights)
    keep = ~panel["example_index"].isin(fit_rows).to_numpy()
    shown = np.setdiff1d(np.arange(len(examples)), fit_rows)
    annotators = {
        k: v[shown] for k, v in annotator_labels(examples, cfg.dataset.fields.annotators).items()
    }
    kept = [f[keep].reset_index(drop=True) for f in frames]
    reports = {}
    for member, frame in zip(members, kept, strict=True):
        alone = replace(cfg, judge=replace(member, swap=cfg.judge.swap))
        reports[member.name] = agreement_report(frame, alone, annotators)[0]
    result = PanelResult(
        names=names,
        members=members_table(frames, names, fit_rows),
        reports=reports,
        stability=_stability(names, tables, shown, specs),
        weights={
            s: dict(zip(names, map(float, w), strict=True)) for s, w in (weights or {}).items()
        },
        calibration=[int(i) for i in fit_rows],
        inter_judge_alpha={s.name: inter_judge_alpha(kept, s) for s in specs},
        matrices={s.name: member_matrix(kept, names, s) for s in specs},
        leave_one_out=leave_one_out(frames, names, panel, cfg, weights, fit_rows),
        cost=cost_table(frames, names, [m.model for m in members]),
        config_specs=list(specs),
    )
    reported = panel[keep].reset_index(drop=True)
    ties = reported["failure_detail"].fillna("").str.startswith(SPLIT_TIE)
    result.split_ties = {
        s.name: int((ties & (reported["score"] == s.name)).sum())
        for s in specs
        if s.kind == "preference"
    }
    return reported, result, annotators


def _stability(
    names: list[str], tables: list[dict[str, Any]], shown: np.ndarray, specs: list[ScoreSpec]
) -> dict[str, dict[str, SampleStability]]:
    """With ``runner.samples`` > 1, each member's test–retest figures on the rows reported."""
    from judgekit.draws import stability_by_score, tables_of

    out = {}
    for name, table in zip(names, tables, strict=True):
        draws = table.get("samples")
        if draws is None:
            continue
        mine = draws[draws["example_index"].isin(shown)].reset_index(drop=True)
        out[name] = stability_by_score(tables_of(mine), specs)
    return out


def calibration_rows(cfg: Config, groups: list[Any]) -> np.ndarray:
    """The example indexes ``aggregate: weighted`` fits its weights on (whole groups, seeded)."""
    from judgekit.stats.calibration import calibration_split

    known = [g for g in groups if g is not None and not (isinstance(g, float) and math.isnan(g))]
    units = np.array([str(g) for g in groups]) if len(known) == len(groups) else None
    fit, _ = calibration_split(len(groups), units, cfg.judge.weights_split, cfg.runner.seed)
    return fit


def _aligned(frames: list[pd.DataFrame]) -> None:
    keys = frames[0][["example_index", "score"]].to_numpy()
    for frame in frames[1:]:
        if not np.array_equal(frame[["example_index", "score"]].to_numpy(), keys):
            raise AssertionError("the members' tables are not in one row order")


def _column(frames: list[pd.DataFrame], column: str, rows: np.ndarray) -> np.ndarray:
    return np.column_stack([f[column].to_numpy(dtype=float)[rows] for f in frames])


def fitted_weights(
    frames: list[pd.DataFrame], specs: list[ScoreSpec], fit_rows: np.ndarray
) -> dict[str, np.ndarray]:
    """Per score, the members' weights fitted on the rows whose example is in ``fit_rows``
    (equal weights, logged, when too few rows have every member's score and a label)."""
    import logging

    weights = {}
    for spec in specs:
        rows = (
            (frames[0]["score"] == spec.name) & frames[0]["example_index"].isin(fit_rows)
        ).to_numpy()
        x, human = _column(frames, "judge", rows), frames[0]["human"].to_numpy(dtype=float)[rows]
        try:
            weights[spec.name] = fit_weights(x, human)
        except ValueError as err:
            logging.getLogger("judgekit").warning(
                "judge.aggregate=weighted, %s: %s; equal weights used", spec.name, err
            )
            weights[spec.name] = np.full(len(frames), 1.0 / len(frames))
    return weights


def panel_table(
    frames: list[pd.DataFrame],
    names: list[str],
    specs: list[ScoreSpec],
    how: str,
    *,
    weights: dict[str, np.ndarray] | None = None,
) -> pd.DataFrame:
    """The panel's results table from its members' (same rows, same order)."""
    _aligned(frames)
    panel = frames[0].copy()
    for column in ("judge", "judge_expected", "judge_first", "judge_second"):
        panel[column] = math.nan
    panel["failure_reason"], panel["failure_detail"] = None, None
    panel["raw_text"] = None
    for spec in specs:
        rows = (panel["score"] == spec.name).to_numpy()
        w = None if weights is None else weights[spec.name]
        _combine_score(panel, frames, names, spec, how, w, rows)
    for column in _COSTS:
        panel[column] = sum((f[column] for f in frames[1:]), frames[0][column])
    panel["cached"] = np.logical_and.reduce([f["cached"].to_numpy(dtype=bool) for f in frames])
    for column in ("failure_reason", "failure_detail", "raw_text"):
        panel[column] = panel[column].astype(object)
    return panel


def _combine_score(
    panel: pd.DataFrame,
    frames: list[pd.DataFrame],
    names: list[str],
    spec: ScoreSpec,
    how: str,
    weights: np.ndarray | None,
    rows: np.ndarray,
) -> None:
    preference = spec.kind == "preference"
    judged = _column(frames, "judge", rows)
    swapped = preference and bool(np.isfinite(_column(frames, "judge_second", rows)).any())
    if swapped:  # a member that failed either order votes in neither
        failed = ~np.isfinite(judged)
        orders = [np.where(failed, math.nan, _column(frames, c, rows)) for c in ORDERS]
        first, abstain_first = combine(orders[0], how, preference=True, weights=weights)
        second, abstain_second = combine(orders[1], how, preference=True, weights=weights)
        value = np.where(first == second, first, TIE)
        value[~(np.isfinite(first) & np.isfinite(second))] = math.nan
        abstained = abstain_first | abstain_second
        panel.loc[rows, "judge_first"], panel.loc[rows, "judge_second"] = first, second
    else:
        value, abstained = combine(judged, how, preference=preference, weights=weights)
    panel.loc[rows, "judge"] = value
    reasons = np.column_stack([f["failure_reason"].to_numpy(dtype=object)[rows] for f in frames])
    explained = [
        _explain(names, v, r, bool(a), float(p), preference)
        for v, r, a, p in zip(judged, reasons, abstained, value, strict=True)
    ]
    index = panel.index[rows]
    panel.loc[index, "failure_reason"] = [e[0] for e in explained]
    panel.loc[index, "failure_detail"] = [e[1] for e in explained]


def _explain(
    names: list[str],
    values: np.ndarray,
    reasons: np.ndarray,
    abstained: bool,
    value: float,
    preference: bool,
) -> tuple[str | None, str | None]:
    """(failure_reason, failure_detail) of one panel row: who said what, who failed, and a
    preference tie the members did not give (their split)."""
    decided = math.isfinite(value)
    said = ", ".join(
        f"{n}={v:g}" if math.isfinite(v) else f"{n}=failed ({r or 'not_run'})"
        for n, v, r in zip(names, values, reasons, strict=True)
    )
    failed = [n for n, v in zip(names, values, strict=True) if not math.isfinite(v)]
    if abstained:
        return FailureReason.NO_MAJORITY.value, f"the panel did not decide: {said}"
    if not decided:
        first = next((str(r) for r in reasons if isinstance(r, str) and r), None)
        return first or FailureReason.BAD_RESPONSE.value, f"every member failed: {said}"
    answered = values[np.isfinite(values)]
    if preference and value == TIE and not (answered == TIE).all():
        return None, f"{SPLIT_TIE}: {said}"
    if failed:
        return None, f"from {len(names) - len(failed)} of {len(names)} members: {said}"
    return None, None


def members_table(
    frames: list[pd.DataFrame], names: list[str], fit_rows: np.ndarray
) -> pd.DataFrame:
    """``members.parquet``: every member's rows, ``member`` after ``score``, ``split`` last."""
    parts = []
    for name, frame in zip(names, frames, strict=True):
        part = frame.copy()
        part.insert(int(part.columns.get_loc("score")) + 1, "member", name)  # type: ignore[arg-type]
        parts.append(part)
    table = pd.concat(parts, ignore_index=True)
    table["split"] = np.where(table["example_index"].isin(fit_rows), "calibration", "evaluation")
    return table


def objective_of(spec: ScoreSpec) -> str:
    """The statistic the leave-one-member-out change is read on: ``kappa`` for a preference,
    ``qwk`` for an integer range, ``spearman`` otherwise."""
    if spec.kind == "preference":
        return "kappa"
    return "qwk" if spec.is_integer_scale and not spec.labels else "spearman"


def member_matrix(
    frames: list[pd.DataFrame], names: list[str], spec: ScoreSpec
) -> tuple[pd.DataFrame, str]:
    """The member × member agreement of one score (:func:`judgekit.stats.panel.agreement_matrix`)."""
    rows = (frames[0]["score"] == spec.name).to_numpy()
    nominal = spec.kind == "preference" or bool(spec.labels)
    return agreement_matrix(
        _column(frames, "judge", rows),
        names,
        nominal=nominal,
        minimum=spec.minimum,
        maximum=spec.maximum,
    )


def inter_judge_alpha(frames: list[pd.DataFrame], spec: ScoreSpec) -> float:
    """Krippendorff's α among the members (as coders) over one score's items."""
    from judgekit.draws import level_of

    rows = (frames[0]["score"] == spec.name).to_numpy()
    return krippendorff_alpha_units(_column(frames, "judge", rows), level_of(spec))


def leave_one_out(
    frames: list[pd.DataFrame],
    names: list[str],
    panel: pd.DataFrame,
    cfg: Config,
    weights: dict[str, np.ndarray] | None,
    fit_rows: np.ndarray,
) -> pd.DataFrame:
    """Per score and member: the objective statistic of the panel without that member, and its
    change from the panel's (``without - panel``) with a paired bootstrap interval, on the rows
    the panel is reported on (weights refitted without the member on the calibration rows)."""
    from judgekit.stats.bootstrap import paired_comparison
    from judgekit.stats.pairwise import paired_pairwise_comparison

    rows = []
    how = str(cfg.judge.aggregate)
    for spec in cfg.score.scores:
        mine = (panel["score"] == spec.name).to_numpy()
        keep = ~frames[0]["example_index"].isin(fit_rows).to_numpy()
        if panel.loc[mine & keep, "human"].isna().all():
            continue
        statistic = objective_of(spec)
        for m, name in enumerate(names):
            others = [f for k, f in enumerate(frames) if k != m]
            refit = fitted_weights(others, [spec], fit_rows) if weights is not None else None
            without = panel_table(
                others, [n for k, n in enumerate(names) if k != m], [spec], how, weights=refit
            )
            part = panel[mine & keep]
            alone = without[(without["score"] == spec.name).to_numpy() & keep]
            args: dict[str, Any] = {
                "resamples": max(cfg.stats.bootstrap_resamples, 1),
                "confidence": cfg.stats.confidence,
                "seed": cfg.runner.seed,
                "clusters": _clusters(part["group"]),
                "statistics": [statistic],
            }
            human = part["human"].to_numpy(dtype=float)
            a, b = part["judge"].to_numpy(dtype=float), alone["judge"].to_numpy(dtype=float)
            if spec.kind == "preference":
                found = paired_pairwise_comparison(human, a, b, **args)[0]
            else:
                found = paired_comparison(
                    human,
                    a,
                    b,
                    minimum=float(spec.minimum or 0),
                    maximum=float(spec.maximum or 0),
                    integer=spec.is_integer_scale,
                    **args,
                )[0]
            rows.append(
                {
                    "score": spec.name,
                    "member": name,
                    "statistic": statistic,
                    "panel": found["a"],
                    "without": found["b"],
                    "change": found["difference"],
                    "change_ci_low": found["ci_low"],
                    "change_ci_high": found["ci_high"],
                    "p_value": found["p_value"],
                    "n_common": found["n_common"],
                }
            )
    columns = ["score", "member", "statistic", "panel", "without", "change"]
    return pd.DataFrame(
        rows, columns=[*columns, "change_ci_low", "change_ci_high", "p_value", "n_common"]
    )


def _clusters(groups: pd.Series) -> np.ndarray | None:
    if groups.isna().all():
        return None
    return groups.astype(str).to_numpy()


def cost_table(frames: list[pd.DataFrame], names: list[str], models: list[str]) -> pd.DataFrame:
    """Per member and for the panel: ``items`` judged (cached answers included; a pair's two
    orders and an item's draws are one item),
    ``attempts`` (calls sent by this run, retries included: 0 when the cache answered), prompt
    and completion tokens of the answers (cached ones included: what the judgements cost), and
    USD at litellm's list price where it knows the model (the panel's only when every member's
    is known)."""
    rows = []
    for name, frame, model in zip(names, frames, models, strict=True):
        calls = frame.drop_duplicates("example_index")
        prompt = float(calls["prompt_tokens"].astype(float).sum(min_count=1))
        completion = float(calls["completion_tokens"].astype(float).sum(min_count=1))
        rows.append(
            {
                "member": name,
                "model": model,
                "items": float(len(calls)),
                "attempts": float(calls["attempts"].astype(float).sum()),
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "cost_usd": list_price_usd(model, prompt, completion),
            }
        )
    table = pd.DataFrame(rows)
    total: dict[str, Any] = {"member": "panel", "model": ", ".join(models)}
    for column in ("items", "attempts", "prompt_tokens", "completion_tokens"):
        total[column] = float(table[column].sum(min_count=len(table)))
    priced = table["cost_usd"].notna()
    total["cost_usd"] = float(table["cost_usd"].sum()) if priced.all() else math.nan
    return pd.concat([table, pd.DataFrame([total])], ignore_index=True)


def write_panel(panel: PanelResult, out_dir: Path) -> list[Path]:
    """``members.parquet``, ``member_agreement_<score>.csv``/``.png``, ``leave_one_out.csv``,
    ``panel_cost.csv`` and, with weights, ``panel_weights.json``; returns their paths."""
    from judgekit.plots import member_heatmap
    from judgekit.results import write_results

    paths = [write_results(panel.members, out_dir / "members.parquet")]
    for score, (frame, statistic) in panel.matrices.items():
        csv, png = (
            out_dir / f"member_agreement_{score}.csv",
            out_dir / f"member_agreement_{score}.png",
        )
        frame.to_csv(csv, index_label="member")
        figure = member_heatmap(frame, f"{score}: {statistic.replace('_', ' ')}")
        figure.savefig(png, dpi=100)
        paths += [csv, png]
    if panel.leave_one_out is not None:
        panel.leave_one_out.to_csv(out_dir / "leave_one_out.csv", index=False)
        paths.append(out_dir / "leave_one_out.csv")
    if panel.cost is not None:
        panel.cost.to_csv(out_dir / "panel_cost.csv", index=False)
        paths.append(out_dir / "panel_cost.csv")
    if panel.weights:
        weights = out_dir / "panel_weights.json"
        weights.write_text(
            json.dumps({"weights": panel.weights, "calibration_rows": panel.calibration}, indent=2)
            + "\n"
        )
        paths.append(weights)
    return paths
