"""What ``judgekit optimize`` prints, writes (``summary.json``, ``paired.csv``, ``comparison.md``) and
logs on its parent run (``test/seed/<stat>``, ``test/chosen/<stat>``, ``test/difference/<stat>``
with ``_ci_low``/``_ci_high``/``_p_value``)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from judgekit.optimizer.result import OptimizationResult

__all__ = ["format_text", "summary", "write_report"]


def _num(value: Any) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "n/a"
    return "n/a" if math.isnan(number) else f"{number:.3f}"


def summary(result: OptimizationResult) -> dict[str, float]:
    """The parent run's final metrics: each test statistic for seed and chosen, the difference."""
    out: dict[str, float] = {}
    for _, row in result.paired.iterrows():
        stat = str(row["statistic"])
        out[f"test/seed/{stat}"] = _float(row["a"])
        out[f"test/chosen/{stat}"] = _float(row["b"])
        for key in ("difference", "ci_low", "ci_high", "p_value"):
            suffix = "" if key == "difference" else f"_{key}"
            out[f"test/difference/{stat}{suffix}"] = _float(row[key])
    if result.paired.empty:
        out[f"test/seed/{result.objective}"] = result.test_value("seed")
    out["calls/spent"] = float(result.calls.get("spent", 0))
    out["calls/judge"] = float(result.calls.get("judge", 0))
    out["calls/reflection"] = float(result.calls.get("reflection", 0))
    out["candidates"] = float(len(result.candidates))
    return out


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _objective_row(result: OptimizationResult) -> dict[str, Any] | None:
    rows = (
        result.paired[result.paired["statistic"] == result.objective]
        if not result.paired.empty
        else None
    )
    if rows is None or rows.empty:
        return None
    return dict(rows.iloc[0])


def format_text(result: OptimizationResult) -> str:
    """The lines printed at the end of ``judgekit optimize``."""
    sizes = result.splits
    lines = [
        f"judgekit optimize: {result.score}, objective {result.objective}; split train "
        f"{sizes['train']} / dev {sizes['dev']} / test {sizes['test']} rows "
        f"({sizes['unlabelled']} unlabelled left out)",
        f"search: {len(result.candidates)} candidates, {result.calls.get('spent', 0)} requests "
        f"judged ({result.calls.get('judge', 0)} judge and {result.calls.get('reflection', 0)} "
        f"reflection calls sent, the rest from the cache); stopped: {result.stopped}",
        f"chosen on dev: {result.chosen.name} (dev {result.objective} {_num(result.chosen.dev)}; "
        f"seed {result.seed.name}: {_num(result.seed.dev)})",
    ]
    if result.chosen.path is not None:
        lines.append(f"prompt file: {result.chosen.path}")
    if result.paired.empty:
        lines.append(
            f"no candidate beat the seed on dev: the test split was judged once, with the seed "
            f"({result.objective} {_num(result.test_value('seed'))})"
        )
        return "\n".join(lines)
    lines.append(f"held-out test ({sizes['test']} rows), chosen vs seed:")
    lines.append(
        f"  {'statistic':<22}{'seed':>8}{'chosen':>8}{'diff':>8}  {'95% CI':<18}{'p':>7}  verdict"
    )
    for _, row in result.paired.iterrows():
        ci = f"[{_num(row['ci_low'])}, {_num(row['ci_high'])}]"
        lines.append(
            f"  {row['statistic']:<22}{_num(row['a']):>8}{_num(row['b']):>8}"
            f"{_num(row['difference']):>8}  {ci:<18}{_num(row['p_value']):>7}  {row['verdict']}"
        )
    return "\n".join(lines)


def write_report(result: OptimizationResult) -> list[Path]:
    """``summary.json``, ``paired.csv`` (``judgekit compare``'s paired table: chosen vs seed on
    test) and ``comparison.md`` in the output directory."""
    out = result.out_dir
    paths = [out / "summary.json"]
    body = {
        "score": result.score,
        "objective": result.objective,
        "splits": result.splits,
        "calls": result.calls,
        "stopped": result.stopped,
        "seed": {"name": result.seed.name, "dev": result.seed.dev},
        "chosen": {
            "name": result.chosen.name,
            "dev": result.chosen.dev,
            "path": str(result.chosen.path or ""),
        },
        "test_runs": {
            "seed": result.test_seed.run_id,
            "chosen": result.test_chosen.run_id if result.test_chosen else None,
        },
        "test": summary(result),
        "run_id": result.run_id,
    }
    paths[0].write_text(json.dumps(_finite(body), indent=2, default=str) + "\n")
    if not result.paired.empty:
        result.paired.to_csv(out / "paired.csv", index=False)
        (out / "comparison.md").write_text(format_text(result) + "\n")
        paths += [out / "paired.csv", out / "comparison.md"]
    return paths


def _finite(value: Any) -> Any:
    """NaN as null: ``summary.json`` stays standard JSON."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
