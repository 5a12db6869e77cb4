"""Length-controlled agreement of a pairwise judge (AlpacaEval 2's length control, for verdicts).

The judge's verdict is regressed on the human verdict and the length difference of the pair::

    logit P(judge says B) = b0 + b1 * h + b2 * tanh((len_B - len_A) / sd)

with ``h`` = -1 (humans prefer A), 0 (a tie), +1 (B), lengths in words, ``sd`` the standard
deviation of the differences, and a tie counted as half a B (a binomial GLM with fractional
outcomes, statsmodels). ``b2 > 0`` is a preference for the longer response beyond what the
humans saw. The agreement with the humans on the pairs they decided is then computed from the
fitted probabilities with the length term as fitted (``agreement``) and zeroed
(``lc_agreement``: what the judge's agreement would be if lengths were equal), beside the raw
agreement of the verdicts (a tie counted as half). Undefined fits are NaN with a ``reason``.

A range score (:func:`length_controlled_scores`) is the same idea with a linear model: the
judge's score regressed (OLS) on the human score and the response's standardised length,
``judge = b0 + b1 * human + b2 * (words - mean) / sd``; ``lc_agreement`` is the Spearman
correlation with the humans of the scores with the length term removed (``judge - b2 * z``),
beside the raw scores' (``raw_agreement``).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
from scipy.special import expit

__all__ = ["length_controlled_agreement", "length_controlled_scores"]


def _nan(n: int, reason: str) -> dict[str, Any]:
    figures = ("length_coefficient", "raw_agreement", "agreement", "lc_agreement")
    return {"lc_n": n, **dict.fromkeys(figures, math.nan), "reason": reason}


def _agreement(human: np.ndarray, p_b: np.ndarray) -> float:
    """Mean probability of the humans' verdict, on pairs they decided (A = 0, B = 1)."""
    decided = human != 0.5
    return float(np.where(human[decided] == 1.0, p_b[decided], 1.0 - p_b[decided]).mean())


def length_controlled_agreement(
    human: np.ndarray, judge: np.ndarray, length_difference: np.ndarray
) -> dict[str, Any]:
    """The fit above on rows where all three are defined. Returns ``lc_n`` (the rows fitted), ``length_coefficient``
    (b2), ``raw_agreement``, ``agreement``, ``lc_agreement`` and ``reason`` ('' when defined)."""
    import statsmodels.api as sm

    h, y, d = (np.asarray(a, dtype=float) for a in (human, judge, length_difference))
    keep = np.isfinite(h) & np.isfinite(y) & np.isfinite(d)
    h, y, d = h[keep], y[keep], d[keep]
    n = int(h.size)
    if not ((h == 0.0).any() and (h == 1.0).any()):
        return _nan(n, "the humans prefer A on some pairs and B on others: needed to fit")
    sd = float(d.std(ddof=1)) if n > 1 else 0.0
    if sd == 0.0:
        return _nan(n, "every pair has the same length difference: no length term to fit")
    x = np.tanh(d / sd)
    design = np.column_stack([np.ones(n), 2.0 * h - 1.0, x])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a perfect separation warns: the fit is undefined
            fit = sm.GLM(y, design, family=sm.families.Binomial()).fit()
    except Exception as err:  # noqa: BLE001 - statsmodels raises several kinds on a bad fit
        return _nan(n, f"the fit failed ({type(err).__name__}: perfect separation or collinear)")
    b0, b1, b2 = (float(b) for b in fit.params)
    decided = h != 0.5
    raw = float((1.0 - np.abs(y[decided] - h[decided])).mean())
    return {
        "lc_n": n,
        "length_coefficient": b2,
        "raw_agreement": raw,
        "agreement": _agreement(h, fit.predict(design)),
        "lc_agreement": _agreement(h, expit(b0 + b1 * design[:, 1])),
        "reason": "",
    }


def length_controlled_scores(
    human: np.ndarray, judge: np.ndarray, length: np.ndarray
) -> dict[str, Any]:
    """A range score's fit (see the module) on rows where all three are defined. Returns ``lc_n``,
    ``length_coefficient`` (b2: score points per standard deviation of words),
    ``raw_agreement`` and ``lc_agreement`` (Spearman), ``agreement`` (Spearman of the fitted
    scores) and ``reason`` ('' when defined)."""
    import statsmodels.api as sm
    from scipy.stats import spearmanr

    h, y, words = (np.asarray(a, dtype=float) for a in (human, judge, length))
    keep = np.isfinite(h) & np.isfinite(y) & np.isfinite(words)
    h, y, words = h[keep], y[keep], words[keep]
    n = int(h.size)
    if n < 4:
        return _nan(n, f"{n} rows with a human score, a judge score and a length: 4 needed")
    sd = float(words.std(ddof=1))
    if sd == 0.0:
        return _nan(n, "every response has the same length: no length term to fit")
    if np.ptp(h) == 0.0 or np.ptp(y) == 0.0:
        return _nan(n, "the human or the judge scores are all equal: no correlation to report")
    z = (words - words.mean()) / sd
    design = np.column_stack([np.ones(n), h, z])
    if np.linalg.matrix_rank(design) < 3:
        return _nan(n, "the length is collinear with the human score: the fit is undefined")
    fit = sm.OLS(y, design).fit()
    b2 = float(fit.params[2])
    return {
        "lc_n": n,
        "length_coefficient": b2,
        "raw_agreement": float(spearmanr(h, y).statistic),
        "agreement": float(spearmanr(h, fit.fittedvalues).statistic),
        "lc_agreement": float(spearmanr(h, y - b2 * z).statistic),
        "reason": "",
    }
