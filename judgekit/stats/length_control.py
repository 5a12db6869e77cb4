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
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
from scipy.special import expit

__all__ = ["length_controlled_agreement"]


def _nan(n: int, reason: str) -> dict[str, Any]:
    figures = ("length_coefficient", "raw_agreement", "agreement", "lc_agreement")
    return {"n": n, **dict.fromkeys(figures, math.nan), "reason": reason}


def _agreement(human: np.ndarray, p_b: np.ndarray) -> float:
    """Mean probability of the humans' verdict, on pairs they decided (A = 0, B = 1)."""
    decided = human != 0.5
    return float(np.where(human[decided] == 1.0, p_b[decided], 1.0 - p_b[decided]).mean())


def length_controlled_agreement(
    human: np.ndarray, judge: np.ndarray, length_difference: np.ndarray
) -> dict[str, Any]:
    """The fit above on rows where all three are defined. Returns ``n``, ``length_coefficient``
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
        "n": n,
        "length_coefficient": b2,
        "raw_agreement": raw,
        "agreement": _agreement(h, fit.predict(design)),
        "lc_agreement": _agreement(h, expit(b0 + b1 * design[:, 1])),
        "reason": "",
    }
