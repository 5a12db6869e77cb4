"""Agreement with humans as records: an Estimate per statistic, per score, per run.

Read figures by attribute::

    report["helpfulness"].pearson.ci_low        # an Estimate(value, ci_low, ci_high)
    report["helpfulness"].n_scored              # counts are plain ints and floats
    report["helpfulness"].expected.qwk.value    # the logprob-expected score, when there is one
    report["helpfulness"].preference.accuracy   # pairs of rows sharing a prompt, compared
    report["preference"].ceiling.human_kappa    # the human–human ceiling of a preference score
    report["overall"].group_kendall.value       # within-group correlation, averaged over groups
    report["overall"].n_systems                 # systems behind the system-level correlations
    report["overall"].notes["within1_agreement"]  # why a statistic is absent or NaN

The legacy flat view stays readable for code written against the dicts judgekit returned before:
a :class:`ScoreAgreement` is a read-only mapping ``pearson``, ``pearson_ci_low``, ...,
``bootstrap_scheme`` (``"rows (1000 resamples)"``), and an :class:`AgreementReport` is a
read-only mapping over ``<score>``, ``<score>_expected`` and ``<score>_preference``, in that
order. :meth:`AgreementReport.to_flat` gives that dict (summary.json);
:meth:`AgreementReport.to_metrics` gives the ``<score>/<statistic>`` MLflow metrics, the only
place agreement metric names are made. :meth:`AgreementReport.from_flat` reads the flat dict back.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from judgekit.stats.pairwise import CEILING_STATISTICS

__all__ = [
    "DIAGNOSTICS",
    "AgreementReport",
    "BootstrapInfo",
    "Estimate",
    "HumanCeiling",
    "ScoreAgreement",
]

DIAGNOSTICS = ("mean_shift", "variance_ratio")
"""Point-only statistics of a pointwise score (no bootstrap interval)."""
_COUNTS = ("n_total", "n_failed", "n_scored", "coverage")
_SWAP_COUNTS = ("n_both_orders", "n_inconsistent")
_LEVEL_COUNTS = ("n_groups", "n_systems")
_CEILING_COUNTS = ("n_rows", "n_annotators")
_SCHEME = re.compile(r"(?P<scheme>\w+) \((?P<resamples>\d+) resamples\)")


@dataclass(frozen=True)
class Estimate:
    """A statistic's point value and its percentile bootstrap interval (NaN when none)."""

    value: float
    ci_low: float = math.nan
    ci_high: float = math.nan


@dataclass(frozen=True)
class BootstrapInfo:
    """How the intervals of a score were drawn."""

    scheme: str
    """``rows`` or ``clusters`` (whole prompts resampled); ``unrecorded`` when read back from a
    summary of a pairwise score, which never stored it."""
    resamples: int
    """Bootstrap resamples drawn (0 when unrecorded)."""

    def __str__(self) -> str:
        return f"{self.scheme} ({self.resamples} resamples)"

    @classmethod
    def parse(cls, text: str) -> BootstrapInfo:
        """Read back the legacy string ``"rows (1000 resamples)"``."""
        match = _SCHEME.fullmatch(text)
        if match is None:
            raise ValueError(f"bootstrap_scheme: {text!r} is not '<scheme> (<n> resamples)'")
        return cls(match["scheme"], int(match["resamples"]))


_UNRECORDED = BootstrapInfo("unrecorded", 0)


class _Statistics:
    """Attribute access by statistic name: ``.pearson`` is an :class:`Estimate`."""

    def _statistics(self) -> dict[str, Estimate]:
        estimates: dict[str, Estimate] = self.__dict__.get("estimates") or {}
        return estimates

    def __getattr__(self, name: str) -> Estimate:
        if name.startswith("_"):  # copy, pickle and friends probe for these
            raise AttributeError(name)
        statistics = self._statistics()
        if name in statistics:
            return statistics[name]
        known = ", ".join(statistics) or "none"
        raise AttributeError(f"{type(self).__name__} has no statistic {name!r}; it has: {known}")


@dataclass(frozen=True)
class HumanCeiling(_Statistics):
    """How well the human annotators agree with each other: the ceiling for a pairwise judge."""

    n_rows: int
    n_annotators: int
    estimates: dict[str, Estimate]
    """``human_kappa``, ``human_accuracy``, ``human_accuracy_with_ties``, ``human_loo_accuracy``."""

    def _flat(self, intervals: bool) -> dict[str, Any]:
        flat: dict[str, Any] = {"n_rows": self.n_rows, "n_annotators": self.n_annotators}
        return flat | _values_then_intervals(self.estimates, intervals)


@dataclass(frozen=True, eq=False)
class ScoreAgreement(_Statistics, Mapping[str, Any]):
    """Agreement of the judge with humans on one score.

    Attributes give :class:`Estimate`\\ s by statistic name (``.pearson``, ``.accuracy``); the
    mapping interface gives the legacy flat view (``["pearson_ci_low"]``). Two reports are equal
    when their flat views are, so a report equals the dict it was read back from.
    """

    kind: Literal["pointwise", "pairwise"]
    """``pairwise`` for a preference score and for ``.preference``; else ``pointwise``."""
    n_total: int
    """Rows of this score."""
    n_failed: int
    """Rows the judge failed on (excluded, never scored)."""
    n_scored: int
    """Rows with both a human and a judge value."""
    coverage: float
    """Share of rows the judge answered (NaN without rows)."""
    estimates: dict[str, Estimate]
    """Statistics with a bootstrap interval, by name, in the order they were computed."""
    diagnostics: dict[str, Estimate] = field(default_factory=dict)
    """Point-only statistics (``mean_shift``, ``variance_ratio`` of a pointwise score)."""
    bootstrap: BootstrapInfo | None = None
    """How the intervals were drawn; None when there are none (0 resamples, < 2 scored rows)."""
    n_both_orders: int | None = None
    """Pairs judged in both orders (pairwise with ``judge.swap``)."""
    n_inconsistent: int | None = None
    """Pairs whose two verdicts differ (pairwise with ``judge.swap``)."""
    ceiling: HumanCeiling | None = None
    """The human–human ceiling, when the data has each annotator's label."""
    expected: ScoreAgreement | None = None
    """The same statistics on the logprob-weighted expected score (legacy ``<score>_expected``)."""
    preference: ScoreAgreement | None = None
    """Pairs of rows sharing a prompt, as preferences (legacy ``<score>_preference``)."""
    n_groups: int | None = None
    """Groups that entered the ``group_*`` correlations (``dataset.fields.group`` set)."""
    n_systems: int | None = None
    """Systems behind the ``system_*`` correlations (``dataset.fields.system`` set)."""
    notes: dict[str, str] = field(default_factory=dict)
    """Why a statistic is absent or NaN, by statistic name (e.g. ``within1_agreement`` on a
    scale that is not an integer scale, ``system_pearson`` with fewer than 3 systems)."""

    def _statistics(self) -> dict[str, Estimate]:
        return {**super()._statistics(), **(self.__dict__.get("diagnostics") or {})}

    def point(self, name: str) -> float | None:
        """A count's or a statistic's point value by name (the ceiling's too); None if absent."""
        if name in _COUNTS or name in _SWAP_COUNTS or name in _LEVEL_COUNTS:
            count: float | None = getattr(self, name)
            return count
        if self.ceiling is not None and name in _CEILING_COUNTS:
            ceiling_count: int = getattr(self.ceiling, name)
            return ceiling_count
        for estimates in (self.estimates, self.diagnostics, getattr(self.ceiling, "estimates", {})):
            if name in estimates:
                return estimates[name].value
        return None

    def to_flat(self) -> dict[str, Any]:
        """The legacy dict: counts, values, ``<stat>_ci_low``/``_ci_high``, ``bootstrap_scheme``."""
        flat: dict[str, Any] = {name: getattr(self, name) for name in _COUNTS}
        if self.n_both_orders is not None and self.n_inconsistent is not None:
            flat |= {"n_both_orders": self.n_both_orders, "n_inconsistent": self.n_inconsistent}
        flat |= {
            name: getattr(self, name) for name in _LEVEL_COUNTS if getattr(self, name) is not None
        }
        intervals = self.bootstrap is not None
        flat |= _values_then_intervals(self.estimates, intervals, self.diagnostics)
        if self.bootstrap is not None and self.kind == "pointwise":  # pairwise never wrote it
            flat["bootstrap_scheme"] = str(self.bootstrap)
        if self.ceiling is not None:
            flat |= self.ceiling._flat(intervals)
        if self.notes:
            flat["notes"] = dict(self.notes)
        return flat

    @classmethod
    def from_flat(
        cls, flat: Mapping[str, Any], bootstrap: BootstrapInfo | None = None
    ) -> ScoreAgreement:
        """Read a legacy flat dict (as the stats functions and summary.json give it).

        Args:
            flat: ``n_total``, ``n_failed``, ``n_scored``, ``coverage``, statistics and their
                ``_ci_low``/``_ci_high``; a pairwise one has ``accuracy``.
            bootstrap: How the intervals were drawn; by default read from ``bootstrap_scheme``.
        """
        kind: Literal["pointwise", "pairwise"] = "pairwise" if "accuracy" in flat else "pointwise"
        has_intervals = any(k.endswith("_ci_low") for k in flat)
        if bootstrap is None and has_intervals:
            scheme = flat.get("bootstrap_scheme")
            bootstrap = BootstrapInfo.parse(scheme) if scheme else _UNRECORDED
        ceiling = None
        if "n_annotators" in flat:
            names = [k for k in _point_names(flat) if k in CEILING_STATISTICS]
            ceiling = HumanCeiling(
                int(flat["n_rows"]), int(flat["n_annotators"]), _estimates(flat, names)
            )
        names = [k for k in _point_names(flat) if ceiling is None or k not in ceiling.estimates]
        return cls(
            kind=kind,
            n_total=int(flat["n_total"]),
            n_failed=int(flat["n_failed"]),
            n_scored=int(flat["n_scored"]),
            coverage=float(flat["coverage"]),
            estimates=_estimates(flat, [k for k in names if k not in DIAGNOSTICS]),
            diagnostics=_estimates(flat, [k for k in names if k in DIAGNOSTICS]),
            bootstrap=bootstrap if has_intervals else None,
            n_both_orders=_count(flat, "n_both_orders"),
            n_inconsistent=_count(flat, "n_inconsistent"),
            ceiling=ceiling,
            n_groups=_count(flat, "n_groups"),
            n_systems=_count(flat, "n_systems"),
            notes=dict(flat.get("notes") or {}),
        )

    def __getitem__(self, key: str) -> Any:
        return self.to_flat()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_flat())

    def __len__(self) -> int:
        return len(self.to_flat())

    def __repr__(self) -> str:
        stats = ", ".join(f"{k}={e.value:.3g}" for k, e in self.estimates.items())
        return f"ScoreAgreement({self.kind}, n_scored={self.n_scored}, {stats})"


@dataclass(frozen=True, eq=False)
class AgreementReport(Mapping[str, ScoreAgreement]):
    """Agreement with humans of every score that has human labels, by score name.

    ``report["helpfulness"]`` is a :class:`ScoreAgreement`. As a mapping, the legacy keys
    ``<score>_expected`` and ``<score>_preference`` resolve to ``.expected`` and ``.preference``,
    and iteration gives every legacy key in the legacy order; :attr:`scores` holds the scores
    alone, with their variants nested.
    """

    scores: dict[str, ScoreAgreement] = field(default_factory=dict)

    def _entries(self) -> dict[str, ScoreAgreement]:
        entries: dict[str, ScoreAgreement] = {}
        for name, score in self.scores.items():
            entries[name] = score
            if score.expected is not None:
                entries[f"{name}_expected"] = score.expected
            if score.preference is not None:
                entries[f"{name}_preference"] = score.preference
        return entries

    def __getitem__(self, key: str) -> ScoreAgreement:
        return self._entries()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries())

    def __len__(self) -> int:
        return len(self._entries())

    def __repr__(self) -> str:
        return f"AgreementReport({self.scores!r})"

    def to_flat(self) -> dict[str, dict[str, Any]]:
        """The legacy JSON-able dict of dicts, as summary.json holds it."""
        return {key: score.to_flat() for key, score in self.items()}

    def to_metrics(self) -> dict[str, float]:
        """Every numeric figure of :meth:`to_flat` as an MLflow metric ``<key>/<statistic>``.

        For example ``helpfulness/pearson_ci_low``, ``helpfulness/group_kendall`` or
        ``helpfulness_expected/qwk``; strings (the bootstrap scheme, the notes) are left out.
        """
        return {
            f"{key}/{name}": float(value)
            for key, flat in self.to_flat().items()
            for name, value in flat.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool)
        }

    @classmethod
    def from_flat(cls, flat: Mapping[str, Mapping[str, Any]]) -> AgreementReport:
        """Read back the legacy dict of dicts (summary.json's ``agreement``)."""
        scores: dict[str, ScoreAgreement] = {}
        for key, stats in flat.items():
            score = ScoreAgreement.from_flat(stats)
            base, _, variant = key.rpartition("_")
            parent = scores.get(base)
            if variant == "expected" and parent is not None and parent.expected is None:
                scores[base] = replace(parent, expected=score)
            elif variant == "preference" and parent is not None and parent.preference is None:
                scores[base] = replace(parent, preference=score)
            else:
                scores[key] = score
        return cls(scores)


def _values_then_intervals(
    estimates: dict[str, Estimate], intervals: bool, point_only: dict[str, Estimate] | None = None
) -> dict[str, Any]:
    """Values (point-only ones after), then ``_ci_low``/``_ci_high`` of each when drawn."""
    flat: dict[str, Any] = {name: e.value for name, e in estimates.items()}
    flat |= {name: e.value for name, e in (point_only or {}).items()}
    if intervals:
        for name, e in estimates.items():
            flat[f"{name}_ci_low"], flat[f"{name}_ci_high"] = e.ci_low, e.ci_high
    return flat


_NOT_STATISTICS = {
    *_COUNTS,
    *_SWAP_COUNTS,
    *_CEILING_COUNTS,
    *_LEVEL_COUNTS,
    "bootstrap_scheme",
    "notes",
}


def _point_names(flat: Mapping[str, Any]) -> list[str]:
    return [k for k in flat if k not in _NOT_STATISTICS and not k.endswith(("_ci_low", "_ci_high"))]


def _count(flat: Mapping[str, Any], name: str) -> int | None:
    return int(flat[name]) if name in flat else None


def _estimates(flat: Mapping[str, Any], names: list[str]) -> dict[str, Estimate]:
    return {
        name: Estimate(
            flat[name], flat.get(f"{name}_ci_low", math.nan), flat.get(f"{name}_ci_high", math.nan)
        )
        for name in names
    }
