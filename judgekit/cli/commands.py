"""Subcommands of ``judgekit`` that are not a judge run: init, doctor, fake-judge, compare, optimize,
audit, estimate, alt-test, and the job commands submit, status, result, cancel."""

from __future__ import annotations

__all__ = ["dispatch"]


def dispatch(name: str, argv: list[str]) -> int:
    """Run subcommand ``name`` with its own arguments; returns the exit code."""
    if name == "fake-judge":
        from judgekit.testing.cli import main as fake_judge_main

        return fake_judge_main(argv)
    if name == "init":
        from judgekit.cli.init import main as init_main

        return init_main(argv)
    if name == "doctor":
        from judgekit.cli.doctor import main as doctor_main

        return doctor_main(argv)
    if name == "optimize":
        from judgekit.cli.optimize import main as optimize_main

        return optimize_main(argv)
    if name == "audit":
        from judgekit.cli.audit import main as audit_main

        return audit_main(argv)
    if name == "compare":
        from judgekit.cli.compare import main as compare_main

        return compare_main(argv)
    if name in ("estimate", "alt-test"):
        from judgekit.cli.estimate import main as estimate_main

        return estimate_main(name, argv)
    if name in ("submit", "status", "result", "cancel"):
        from judgekit.cli.jobs import main as jobs_main

        return jobs_main(name, argv)
    raise ValueError(f"unknown subcommand {name!r}")
