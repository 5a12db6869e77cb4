"""What ``judgekit optimize`` prints, writes (``summary.json``, ``metrics.csv``, ``paired.csv``,
``comparison.md``) and logs on its parent run (``test/seed/<stat>`` and ``test/chosen/<stat>``
with ``_ci_low``/``_ci_high``; ``test/difference/<stat>`` with ``_ci_low``/``_ci_high``/
``_p_value``)."""

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
        for role in ("seed", "chosen"):
            low, high = result.interval(role, stat)
            out[f"test/{role}/{stat}_ci_low"], out[f"test/{role}/{stat}_ci_high"] = low, high
        for key in ("difference", "ci_low", "ci_high", "p_value"):
            suffix = "" if key == "difference" else f"_{key}"
            out[f"test/difference/{stat}{suffix}"] = _float(row[key])
    if result.paired.empty:
        out[f"test/seed/{result.objective}"] = result.test_value("seed")
        low, high = result.interval("seed", result.objective)
        out[f"test/seed/{result.objective}_ci_low"] = low
        out[f"test/seed/{result.objective}_ci_high"] = high
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
        f"reflection calls sent, the rest from the cache); stopped: {result.stopped}"
        + (f" ({result.note})" if result.note else ""),
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
    lines.append(f"held-out test ({sizes['test']} rows), chosen vs seed (95% intervals):")
    header = ["statistic", "seed", "chosen", "chosen - seed", "p", "verdict"]
    rows = [header]
    for _, row in result.paired.iterrows():
        stat = str(row["statistic"])
        rows.append(
            [
                stat,
                _ci(row["a"], *result.interval("seed", stat)),
                _ci(row["b"], *result.interval("chosen", stat)),
                _ci(row["difference"], row["ci_low"], row["ci_high"]),
                _num(row["p_value"]),
                str(row["verdict"]),
            ]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines += ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    if result.compare_command:
        lines.append(f"the same tables: {result.compare_command}")
    return "\n".join(lines)


def _ci(value: Any, low: Any, high: Any) -> str:
    return f"{_num(value)} [{_num(low)}, {_num(high)}]"


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
        "note": result.note,
        "compare_command": result.compare_command,
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
    if not result.table.empty:
        result.table.to_csv(out / "metrics.csv", index=False)
        paths.append(out / "metrics.csv")
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
