"""``judgekit estimate`` and ``judgekit alt-test``: a finished run's figures on the human scale.

``runs.py`` reads the run (a directory or an MLflow run) and logs a command's summary run,
``estimate.py`` the PPI++ estimates (:mod:`judgekit.stats.estimates`), ``alttest.py`` the
alternative annotator test and the pointwise human ceiling (:mod:`judgekit.stats.raters`).
"""

from __future__ import annotations

from judgekit.humanscale.alttest import AltTestReport, alt_test_run
from judgekit.humanscale.estimate import EstimateReport, estimate
from judgekit.humanscale.runs import FinishedRun, load_run

__all__ = ["AltTestReport", "EstimateReport", "FinishedRun", "alt_test_run", "estimate", "load_run"]
