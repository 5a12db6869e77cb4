"""Calibration of a run's judge scores: ``stats.calibrate``, ``stats.apply_calibration``.

``stats.calibrate: isotonic | ordinal`` fits a monotone map (:func:`judgekit.stats.calibration.
fit_calibration`) from each pointwise score's judge value (``judge_expected`` when the judge gave
logprobs, else ``judge``) to the human scale on ``stats.calibration_split`` of the examples (whole
``dataset.fields.group`` groups, seeded by ``runner.seed``: :func:`calibration_split`), and
reports the raw and the calibrated agreement on the *other* examples only, side by side, with the
paired bootstrap difference (:func:`judgekit.stats.bootstrap.paired_comparison`). The maps are
saved in one ``calibration.json`` that ``stats.apply_calibration`` applies to a later run: then
nothing is fitted and every row is reported calibrated.

Where the judge's answers carry logprobs, each score's distribution over its levels at the token
holding the score also gives the judge's own probability calibration against the human labels
(``<score>/ece``, ``<score>/brier``, a reliability diagram: :func:`probability_calibration`).
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from judgekit.config.schema import Calibrate, Config, ScoreSpec
from judgekit.errors import ConfigError, RunError
from judgekit.records import Example
from judgekit.stats.bootstrap import COMPARABLE, bootstrap_ci, paired_comparison
from judgekit.stats.calibration import (
    CalibrationMap,
    calibration_split,
    fit_calibration,
    probability_calibration,
)
from judgekit.stats.pointwise import agreement, round_half_up

__all__ = [
    "CALIBRATION_FILE",
    "CalibrationResult",
    "ScoreCalibration",
    "calibrate",
    "load_calibration",
    "prepare_calibration",
    "write_calibration",
]

log = logging.getLogger("judgekit")

CALIBRATION_FILE = "calibration.json"
"""The fitted maps of a run, one per score (what ``stats.apply_calibration`` reads)."""
FORMAT = 1
"""Version of :data:`CALIBRATION_FILE`'s layout."""
KEY = "stats.apply_calibration"


@dataclass
class ScoreCalibration:
    """One score's map and its agreement, raw and calibrated, on the evaluation rows."""

    score: str
    input: str
    """The column the map reads: ``judge_expected`` (logprobs) or ``judge``."""
    map: CalibrationMap
    fitted: bool
    """True: fitted in this run (``stats.calibrate``); False: applied (``stats.apply_calibration``)."""
    fit_rows: list[int]
    """Example indexes the map was fitted on (none when applied)."""
    eval_rows: list[int]
    """Example indexes the figures are reported on: never one of ``fit_rows``."""
    table: list[dict[str, Any]] = field(default_factory=list)
    """Per statistic: raw and calibrated value with intervals, the paired difference, p."""

    def metrics(self) -> dict[str, float]:
        """``<score>/raw/<stat>``, ``<score>/calibrated/<stat>`` and ``..._change`` (each with
        ``_ci_low``/``_ci_high``), ``<score>/calibrated/n_fit`` and ``n_eval``."""
        s = self.score
        out = {f"{s}/calibrated/n_fit": float(self.map.n_fit)}
        out[f"{s}/calibrated/n_eval"] = float(len(self.eval_rows))
        for row in self.table:
            stat = row["statistic"]
            for side, name in (
                ("raw", f"{s}/raw/{stat}"),
                ("calibrated", f"{s}/calibrated/{stat}"),
            ):
                out[name] = row[side]
                out[f"{name}_ci_low"], out[f"{name}_ci_high"] = (
                    row[f"{side}_ci_low"],
                    row[f"{side}_ci_high"],
                )
            change = f"{s}/calibrated/{stat}_change"
            out[change] = row["difference"]
            out[f"{change}_ci_low"], out[f"{change}_ci_high"] = row["ci_low"], row["ci_high"]
        return out


@dataclass
class CalibrationResult:
    """A run's calibration: per score its map and figures, the judge's probability calibration
    (ECE, Brier, reliability bins) and the calibrated value of every row."""

    method: str
    """``isotonic``/``ordinal`` (fitted), or ``applied`` (``stats.apply_calibration``)."""
    scores: dict[str, ScoreCalibration]
    probability: dict[str, dict[str, Any]]
    rows: pd.DataFrame
    """``calibrated.parquet``: example, score, human, input, raw, calibrated and ``side``
    (``fit``, ``eval`` or ``applied``)."""
    source: str | None = None
    """Where an applied map came from."""

    def metrics(self) -> dict[str, float]:
        """Every calibration metric, flat; NaN figures are left out (MLflow refuses them)."""
        out: dict[str, float] = {}
        for score in self.scores.values():
            out.update(score.metrics())
        for name, found in self.probability.items():
            out[f"{name}/ece"], out[f"{name}/brier"] = found["ece"], found["brier"]
        return {k: float(v) for k, v in out.items() if v is not None and math.isfinite(v)}

    def summary(self) -> dict[str, Any]:
        """A JSON-able summary (``summary.json``'s ``calibration``)."""
        return {
            "method": self.method,
            "source": self.source,
            "scores": {
                name: {
                    "input": s.input,
                    "n_fit": s.map.n_fit,
                    "n_eval": len(s.eval_rows),
                    "reason": s.map.reason,
                    "table": s.table,
                }
                for name, s in self.scores.items()
            },
            "probability": self.probability,
        }


# --- setup: before any judge call ----------------------------------------------------------------


def prepare_calibration(cfg: Config, examples: list[Example]) -> dict[str, Any] | None:
    """Check the calibration keys against the data; the applied maps (by score) when
    ``stats.apply_calibration`` is set. Raises ConfigError naming the key: no judge call is made."""
    method, source = cfg.stats.calibrate, cfg.stats.apply_calibration
    if method == Calibrate.none and not source:
        return None
    key = KEY if source else "stats.calibrate"
    if cfg.judge.is_panel:
        raise ConfigError(f"{key}: not available with a judge panel (judge=panel) yet")
    if not _pointwise(cfg):
        raise ConfigError(
            f"{key}: calibration maps pointwise scores; score {cfg.score.name!r} has none"
        )
    if source:
        return load_calibration(source, cfg)
    _check_split(cfg, examples)
    return None


def _pointwise(cfg: Config) -> list[ScoreSpec]:
    return [s for s in cfg.score.scores if s.kind == "pointwise"]


def _check_split(cfg: Config, examples: list[Example]) -> None:
    fit, held = _split(cfg, examples)
    names = {s.name for s in _pointwise(cfg)}

    def labelled(rows: np.ndarray) -> int:
        return sum(any(not _missing(examples[i].human.get(n)) for n in names) for i in rows)

    if labelled(fit) < 2 or labelled(held) < 2:
        raise ConfigError(
            f"stats.calibration_split: {cfg.stats.calibration_split} of {len(examples)} examples "
            f"(whole groups, dataset.fields.group) leaves {labelled(fit)} labelled rows to fit "
            f"the map on and {labelled(held)} to report it on; each needs 2 or more: change "
            "stats.calibration_split or use more examples"
        )


def _split(cfg: Config, examples: list[Example]) -> tuple[np.ndarray, np.ndarray]:
    """``(fit, eval)`` example indexes: whole groups, seeded by ``runner.seed``."""
    groups = [e.group for e in examples]
    units = None if any(_missing(g) for g in groups) else np.array([str(g) for g in groups])
    return calibration_split(len(examples), units, cfg.stats.calibration_split, cfg.runner.seed)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def load_calibration(source: str, cfg: Config) -> dict[str, Any]:
    """The maps of ``source`` (a calibration.json, a run directory holding one, or an MLflow run
    id in ``tracking.uri``), checked against the run's pointwise scores and their scales."""
    text, where = _read_source(source, cfg)
    try:
        found = json.loads(text)
        entries = found["scores"]
        maps = {
            name: (e["input"], CalibrationMap.from_json(json.dumps(e["map"])))
            for name, e in entries.items()
        }
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise ConfigError(
            f"{KEY}: {where} is not a judgekit calibration file ({type(err).__name__}: {err})"
        ) from None
    for spec in _pointwise(cfg):
        if spec.name not in maps:
            raise ConfigError(
                f"{KEY}: {where} has no map for score {spec.name!r}; it maps "
                f"{', '.join(sorted(maps)) or 'no score'}: use a run of the same score"
            )
        fitted = maps[spec.name][1]
        if (fitted.minimum, fitted.maximum) != (float(spec.minimum or 0), float(spec.maximum or 0)):
            raise ConfigError(
                f"{KEY}: {where} maps score {spec.name!r} to {fitted.minimum:g}..{fitted.maximum:g}, "
                f"but its scale here is {spec.minimum:g}..{spec.maximum:g}"
            )
        if maps[spec.name][0] == "judge_expected" and not cfg.judge.logprobs:
            raise ConfigError(
                f"{KEY}: {where} maps score {spec.name!r} from the judge's logprob expected score "
                "(judge_expected), which this run would not have; set judge.logprobs=true"
            )
    log.info("calibration: applying the maps of %s (nothing is fitted)", where)
    return {"maps": maps, "where": where}


def _read_source(source: str, cfg: Config) -> tuple[str, str]:
    path = Path(source).expanduser()
    if path.is_dir():
        path = path / CALIBRATION_FILE
        if not path.is_file():
            raise ConfigError(f"{KEY}: directory {source!r} holds no {CALIBRATION_FILE}")
    if path.is_file():
        try:
            return path.read_text(), str(path)
        except (OSError, UnicodeDecodeError) as err:
            raise ConfigError(f"{KEY}: cannot read {path}: {err}") from None
    return _from_mlflow(source, cfg), f"MLflow run {source}"


def _from_mlflow(run_id: str, cfg: Config) -> str:
    from mlflow.tracking import MlflowClient

    from judgekit.tracking.store import bound_http_retries, check_store

    bound_http_retries()
    check_store(cfg.tracking.uri)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            local = MlflowClient(tracking_uri=cfg.tracking.uri).download_artifacts(
                run_id, CALIBRATION_FILE, tmp
            )
            return Path(local).read_text()
    except Exception as err:  # MLflow raises several types for a missing run or artifact
        raise ConfigError(
            f"{KEY}: {run_id!r} is not a {CALIBRATION_FILE}, a run directory holding one, or an "
            f"MLflow run with {CALIBRATION_FILE} at {cfg.tracking.uri} ({type(err).__name__})"
        ) from None


# --- after judging --------------------------------------------------------------------------------


def calibrate(
    cfg: Config,
    examples: list[Example],
    frame: pd.DataFrame,
    applied: dict[str, Any] | None,
    distributions: dict[int, Any] | None = None,
) -> CalibrationResult | None:
    """Fit (or apply) each pointwise score's map and compare raw with calibrated agreement on the
    rows the map never saw; with ``distributions`` (responses by example index), the judge's own
    probability calibration. None when no calibration key is set and no logprobs came back."""
    probability = _probabilities(cfg, frame, distributions or {})
    if applied is None and cfg.stats.calibrate == Calibrate.none:
        return CalibrationResult("none", {}, probability, pd.DataFrame()) if probability else None
    if applied is None:
        fit, held = _split(cfg, examples)
    else:
        fit, held = np.array([], dtype=int), np.arange(len(examples))
    scores, tables = {}, []
    for spec in _pointwise(cfg):
        part = frame[frame["score"] == spec.name].sort_values("example_index")
        if part["human"].isna().all():
            continue
        found = _one_score(cfg, spec, part, fit, held, applied)
        scores[spec.name], rows = found
        tables.append(rows)
        _log_score(scores[spec.name])
    method = "applied" if applied else str(cfg.stats.calibrate)
    rows = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    where = applied["where"] if applied else None
    return CalibrationResult(method, scores, probability, rows, where)


def _one_score(
    cfg: Config,
    spec: ScoreSpec,
    part: pd.DataFrame,
    fit: np.ndarray,
    held: np.ndarray,
    applied: dict[str, Any] | None,
) -> tuple[ScoreCalibration, pd.DataFrame]:
    index = part["example_index"].to_numpy()
    human = part["human"].to_numpy(dtype=float)
    if applied is not None:
        column, fitted = applied["maps"][spec.name]
    else:
        column = "judge_expected" if part["judge_expected"].notna().any() else "judge"
        on_fit = np.isin(index, fit)
        fitted = fit_calibration(
            part[column].to_numpy(dtype=float)[on_fit],
            human[on_fit],
            method=str(cfg.stats.calibrate),  # type: ignore[arg-type]
            minimum=float(spec.minimum or 0),
            maximum=float(spec.maximum or 0),
        )
    raw = part[column].to_numpy(dtype=float)
    calibrated = fitted.apply(raw)
    shown = np.isin(index, held)
    side = np.where(shown, "applied" if applied is not None else "eval", "fit")
    table = _compare(cfg, spec, human[shown], raw[shown], calibrated[shown], part["group"][shown])
    result = ScoreCalibration(
        spec.name,
        column,
        fitted,
        applied is None,
        sorted(map(int, index[~shown])),
        sorted(map(int, index[shown])),
        table,
    )
    rows = pd.DataFrame(
        {
            "example_id": part["example_id"].to_numpy(),
            "example_index": index,
            "group": part["group"].to_numpy(),
            "score": spec.name,
            "human": human,
            "input": column,
            "raw": raw,
            "calibrated": calibrated,
            "side": side,
        }
    )
    return result, rows


def _compare(
    cfg: Config,
    spec: ScoreSpec,
    human: np.ndarray,
    raw: np.ndarray,
    calibrated: np.ndarray,
    groups: pd.Series,
) -> list[dict[str, Any]]:
    """Per comparable statistic: raw and calibrated (each with its interval) and the paired
    bootstrap difference calibrated − raw, on the same rows and the same resamples."""
    bounds: dict[str, Any] = {
        "minimum": float(spec.minimum or 0),
        "maximum": float(spec.maximum or 0),
        "integer": spec.is_integer_scale,
    }
    codes, uniques = pd.factorize(groups)
    clusters = codes if len(uniques) < len(codes) else None
    both = np.isfinite(human) & np.isfinite(raw) & np.isfinite(calibrated)
    points = {
        "raw": agreement(human, raw, **bounds),
        "calibrated": agreement(human, calibrated, **bounds),
    }
    nan2 = (math.nan, math.nan)
    boot: dict[str, dict[str, tuple[float, float]]] = {"raw": {}, "calibrated": {}}
    paired: dict[str, dict[str, Any]] = {}
    args: dict[str, Any] = {
        "resamples": cfg.stats.bootstrap_resamples,
        "confidence": cfg.stats.confidence,
        "seed": cfg.runner.seed,
        "clusters": clusters,
    }
    if cfg.stats.bootstrap_resamples > 0 and both.sum() >= 2:
        for side, values in (("raw", raw), ("calibrated", calibrated)):
            boot[side] = bootstrap_ci(human, values, **bounds, **args).intervals
        for row in paired_comparison(human, raw, calibrated, **bounds, **args):
            paired[row["statistic"]] = row
    table = []
    for stat in COMPARABLE:
        if stat not in points["raw"]:
            continue
        raw_v, cal_v = points["raw"][stat], points["calibrated"][stat]
        pair = paired.get(stat, {})
        table.append(
            {
                "score": spec.name,
                "statistic": stat,
                "raw": raw_v,
                "raw_ci_low": boot["raw"].get(stat, nan2)[0],
                "raw_ci_high": boot["raw"].get(stat, nan2)[1],
                "calibrated": cal_v,
                "calibrated_ci_low": boot["calibrated"].get(stat, nan2)[0],
                "calibrated_ci_high": boot["calibrated"].get(stat, nan2)[1],
                "difference": cal_v - raw_v,
                "ci_low": pair.get("ci_low", math.nan),
                "ci_high": pair.get("ci_high", math.nan),
                "p_value": pair.get("p_value", math.nan),
                "verdict": pair.get("verdict", "undefined"),
                "n_eval": int(both.sum()),
            }
        )
    return table


def _log_score(found: ScoreCalibration) -> None:
    if found.map.reason is not None:
        log.warning(
            "calibration of %s: no map (%s); calibrated figures are NaN",
            found.score,
            found.map.reason,
        )
        return
    line = {r["statistic"]: r for r in found.table}.get("spearman")
    if line is None:
        return
    log.info(
        "calibration of %s (%s, %d fit rows, %d reported): spearman raw %.3f, calibrated %.3f, "
        "change %+.3f [%.3f, %.3f]",
        found.score,
        found.input,
        found.map.n_fit,
        len(found.eval_rows),
        line["raw"],
        line["calibrated"],
        line["difference"],
        line["ci_low"],
        line["ci_high"],
    )


def _probabilities(
    cfg: Config, frame: pd.DataFrame, responses: dict[int, Any]
) -> dict[str, dict[str, Any]]:
    """Per integer-scale pointwise score with human labels and logprobs: ECE, Brier and the
    reliability bins of the judge's distribution over the levels (human labels that are not a
    level, e.g. averaged ones, are rounded half up to the nearest level)."""
    from judgekit.parsing import level_probabilities_from_logprobs

    out = {}
    for spec in _pointwise(cfg):
        part = frame[frame["score"] == spec.name].sort_values("example_index")
        if (
            not spec.is_integer_scale
            or part["judge_expected"].isna().all()
            or part["human"].isna().all()
        ):
            continue
        levels = list(range(int(spec.minimum or 0), int(spec.maximum or 0) + 1))
        probs = np.full((len(part), len(levels)), math.nan)
        for row, (index, expected) in enumerate(
            zip(part["example_index"], part["judge_expected"], strict=True)
        ):
            response = responses.get(int(index))
            if response is None or not response.logprobs or not np.isfinite(expected):
                continue
            found = level_probabilities_from_logprobs(response.logprobs, spec)
            if not found:  # this draw did not parse (runner.samples: others did): no distribution
                continue
            probs[row] = [found.get(level, 0.0) for level in levels]
        human = part["human"].to_numpy(dtype=float)
        rounded = np.where(np.isfinite(human), round_half_up(human), math.nan)
        result = probability_calibration(probs, rounded, [float(v) for v in levels])
        result["human_rounded"] = int(np.sum(np.isfinite(human) & (rounded != human)))
        out[spec.name] = result
    return out


# --- outputs ----------------------------------------------------------------------------------------


def calibration_file(result: CalibrationResult) -> dict[str, Any]:
    """The JSON of :data:`CALIBRATION_FILE`: per score the map and the column it reads."""
    return {
        "format": FORMAT,
        "scores": {
            name: {"input": s.input, "map": json.loads(s.map.to_json())}
            for name, s in result.scores.items()
        },
    }


def write_calibration(result: CalibrationResult, out_dir: Path) -> list[Path]:
    """``calibration.json`` (fitted maps only), ``calibration.csv``, ``calibrated.parquet``,
    ``reliability.csv`` and ``reliability_<score>.png``; the paths written."""
    paths = []
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        if result.scores and result.method != "applied":
            path = out_dir / CALIBRATION_FILE
            path.write_text(json.dumps(calibration_file(result), indent=2) + "\n")
            paths.append(path)
        if result.scores:
            rows = [row | {"input": s.input} for s in result.scores.values() for row in s.table]
            pd.DataFrame(rows).to_csv(out_dir / "calibration.csv", index=False)
            result.rows.to_parquet(out_dir / "calibrated.parquet", index=False)
            paths += [out_dir / "calibration.csv", out_dir / "calibrated.parquet"]
        paths += _write_reliability(result, out_dir)
    except OSError as err:
        raise RunError(f"could not write the calibration outputs to {out_dir}: {err}") from None
    return paths


def _write_reliability(result: CalibrationResult, out_dir: Path) -> list[Path]:
    from judgekit.plots import reliability_diagram

    bins = [
        {"score": name} | b
        for name, found in result.probability.items()
        for b in found["reliability"]
    ]
    if not bins:
        return []
    paths = [out_dir / "reliability.csv"]
    pd.DataFrame(bins).to_csv(paths[0], index=False)
    for name, found in result.probability.items():
        figure = reliability_diagram(found["reliability"], name, found["ece"])
        paths.append(out_dir / f"reliability_{name}.png")
        figure.savefig(paths[-1], dpi=100)
    return paths
