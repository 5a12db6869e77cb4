"""``judgekit optimize``: improve a judge prompt against human labels, and prove it on held-out data.

:func:`optimize_config` runs the loop (:mod:`judgekit.optimizer.loop`); ``judgekit.optimize``
is its Python front end and ``judgekit optimize`` its command line.
"""

from __future__ import annotations

from judgekit.optimizer.loop import Interrupted, optimize_config
from judgekit.optimizer.result import OptimizationResult

__all__ = ["Interrupted", "OptimizationResult", "optimize_config"]
