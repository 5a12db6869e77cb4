"""``judgekit audit``: judge items and counterfactual variants of them, and report each bias
test's paired effect (clustered bootstrap interval) and robustness rate.

Named ``auditing`` (not ``audit``) so that it never shadows the function :func:`judgekit.audit`.
"""

from judgekit.auditing.effects import Effect
from judgekit.auditing.perturbations import edit_response
from judgekit.auditing.registry import (
    TESTS,
    AuditTest,
    Context,
    Paired,
    Perturbed,
    Variant,
    register_test,
)
from judgekit.auditing.result import AuditResult, JudgedVariant
from judgekit.auditing.run import audit_config

__all__ = [
    "TESTS",
    "AuditResult",
    "AuditTest",
    "Context",
    "Effect",
    "JudgedVariant",
    "Paired",
    "Perturbed",
    "Variant",
    "audit_config",
    "edit_response",
    "register_test",
]
