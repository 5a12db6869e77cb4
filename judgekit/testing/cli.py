"""``judgekit fake-judge``: serve a fault-injecting fake judge from a shell until Ctrl-C.

It prints one line, ``fake judge listening on http://HOST:PORT/v1`` (the real port when
``--port 0``), then serves :class:`judgekit.testing.server.FakeJudge` until SIGINT or SIGTERM and exits 0.
Its answers are JSON scores that depend only on the last user message (stable across runs and
processes), in the chosen ``--shape`` (``mixed`` picks a shape per answer, also stably). Example::

    judgekit fake-judge --port 8000 --latency 0.2 --rate-limit 0.1 --retry-after 1 --shape mixed
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable

from judgekit.testing.server import (
    DEFAULT_SCORE_NAMES,
    SHAPES,
    FakeJudge,
    FaultPlan,
    json_scores,
    stable_scores,
)

__all__ = ["build_parser", "main"]


def build_parser(prog: str = "judgekit fake-judge") -> argparse.ArgumentParser:
    """The argument parser of the fake-judge command."""
    p = argparse.ArgumentParser(
        prog=prog, description="Serve a fault-injecting, OpenAI-compatible fake judge until Ctrl-C."
    )
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port; 0 picks a free one (default 8000)")
    p.add_argument("--model-name", default="fake-judge", help="model listed by /v1/models")
    p.add_argument("--latency", type=float, default=0.0, help="seconds per answer (default 0)")
    faults = p.add_argument_group("faults (probabilities per request, decided by a seeded hash)")
    faults.add_argument("--rate-limit", type=float, default=0.0, help="429 with Retry-After")
    faults.add_argument("--retry-after", type=float, default=1.0, help="Retry-After seconds")
    faults.add_argument("--server-error", type=float, default=0.0, help="500")
    faults.add_argument("--hang", type=float, default=0.0, help="no answer for --hang-s seconds")
    faults.add_argument("--hang-s", type=float, default=3600.0, help="length of a hang")
    faults.add_argument("--malformed", type=float, default=0.0, help="200 with broken JSON")
    faults.add_argument("--garbage", type=float, default=0.0, help="200 whose content is no score")
    faults.add_argument("--no-choices", type=float, default=0.0, help="200 with no 'choices'")
    faults.add_argument("--empty-choices", type=float, default=0.0, help="200 with 'choices': []")
    faults.add_argument("--trickle", type=float, default=0.0, help="body sent a byte at a time")
    faults.add_argument(
        "--trickle-byte-s", type=float, default=0.05, help="seconds between trickled bytes"
    )
    faults.add_argument("--oversize", type=float, default=0.0, help="answer padded to a huge body")
    faults.add_argument(
        "--oversize-bytes", type=int, default=2_000_000, help="size of an oversized body"
    )
    faults.add_argument("--fail-first-n", type=int, default=0, help="429 for first n attempts")
    faults.add_argument("--seed", type=int, default=0, help="which requests draw which faults")
    answers = p.add_argument_group("answers")
    answers.add_argument("--shape", choices=list(SHAPES), default="json", help="answer wrapping")
    answers.add_argument(
        "--score-names", default=",".join(DEFAULT_SCORE_NAMES), help="comma-separated names"
    )
    answers.add_argument("--min", type=int, default=0, help="lowest score (default 0)")
    answers.add_argument("--max", type=int, default=4, help="highest score (default 4)")
    p.add_argument("--max-bodies", type=int, default=1000, help="request bodies kept in counters")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the fake judge until SIGINT/SIGTERM; returns the exit code (0, or 2 for bad flags)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        judge = _judge_from(args)
    except SystemExit as exit_:  # --help, or argparse rejected a flag (message already printed)
        return int(exit_.code or 0)
    except ValueError as err:
        parser.print_usage(sys.stderr)
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 2
    stop = threading.Event()
    restore = _on_signals(lambda *_: stop.set())
    try:
        judge.start()
    except RuntimeError as err:
        restore()
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 2
    print(f"fake judge listening on {judge.url}", flush=True)
    try:
        while not stop.wait(0.2):
            pass
    finally:
        judge.stop()
        restore()
    return 0


def _judge_from(args: argparse.Namespace) -> FakeJudge:
    names = [name.strip() for name in args.score_names.split(",") if name.strip()]
    if not names:
        raise ValueError("--score-names: give at least one name")
    faults = FaultPlan(
        rate_limit=args.rate_limit,
        retry_after_s=args.retry_after,
        server_error=args.server_error,
        hang=args.hang,
        hang_s=args.hang_s,
        malformed=args.malformed,
        garbage=args.garbage,
        no_choices=args.no_choices,
        empty_choices=args.empty_choices,
        trickle=args.trickle,
        trickle_byte_s=args.trickle_byte_s,
        oversize=args.oversize,
        oversize_bytes=args.oversize_bytes,
        fail_first_n_attempts=args.fail_first_n,
        seed=args.seed,
    )
    return FakeJudge(
        json_scores(stable_scores(names, args.min, args.max), shape=SHAPES[args.shape]),
        latency_s=args.latency,
        faults=faults,
        host=args.host,
        port=args.port,
        model_name=args.model_name,
        max_bodies=args.max_bodies,
    )


def _on_signals(handler: Callable[..., None]) -> Callable[[], None]:
    """Route SIGINT and SIGTERM to ``handler``; returns a function restoring the old handlers.

    Signal handlers can only be set from the main thread; elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    return restore


if __name__ == "__main__":
    raise SystemExit(main())
