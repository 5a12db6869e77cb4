"""Judge every request with at most ``parallelism`` calls in flight, keeping input order.

Requests are pulled lazily from an iterable by a fixed pool of workers, so memory holds only the
calls in flight, not one coroutine per row. One failed row never stops the others, unless a
:class:`StopRules` says the run cannot succeed: the endpoint refused the key or does not know the
model, too many calls in a row failed, or the caller asked to stop at the first failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from judgekit.config.schema import JudgeConfig
from judgekit.judge.client import JudgeClient, JudgeResponse, complete_draw
from judgekit.records import JudgeOutcome, JudgeRequest
from judgekit.secrets import redact_url

__all__ = [
    "JudgeOutcome",
    "JudgeRequest",
    "ProgressLog",
    "StopRules",
    "judge_all",
    "run_async",
]

log = logging.getLogger("judgekit")


def _safe_url(url: str | None) -> str:
    """``url`` with any ``user:password@`` masked, for messages."""
    return redact_url(url) if url else "the provider's default endpoint"


@dataclass
class StopRules:
    """When a run stops before its last row, because going on cannot succeed.

    - HTTP 401/403 at the first such answer: the key is wrong (``judge.api_key_env``);
    - HTTP 404 at the first such answer: no such model or endpoint (``judge.model``,
      ``judge.api_base``);
    - ``max_consecutive_failures`` failed calls in a row (any reason: refused connections,
      timeouts, 5xx after retries; a success resets the count; 0 never stops);
    - ``stop_on_failure``: the first failed call (``runner.ignore_request_failure=false``).

    Calls are counted in the order they finish. :meth:`check` returns the message, or None.
    """

    judge: JudgeConfig | None = None
    max_consecutive_failures: int = 0
    stop_on_failure: bool = False
    describe: Callable[[JudgeRequest], str] = lambda r: f"row {r.index} (id {r.example_id!r})"
    streak: int = field(default=0, init=False)

    def check(self, request: JudgeRequest, response: JudgeResponse) -> str | None:
        """The reason to stop after ``response``, or None to go on."""
        if response.failure is None:
            self.streak = 0
            return None
        self.streak += 1
        refused = self._refused(response)
        if refused is not None:
            return refused
        if self.stop_on_failure:
            return (
                f"runner.ignore_request_failure=false: {self.describe(request)} failed with "
                f"{response.failure} ({response.detail})"
            )
        if self.max_consecutive_failures and self.streak >= self.max_consecutive_failures:
            return (
                f"runner.max_consecutive_failures: the last {self.streak} judge calls all failed "
                f"(the last with {response.failure}: {response.detail}); check that "
                f"{self._where()} is up and answering (judge.api_base), or set "
                "runner.max_consecutive_failures=0 to never stop"
            )
        return None

    def _where(self) -> str:
        if self.judge is None:
            return "the judge endpoint"
        return f"{self.judge.model} at {_safe_url(self.judge.api_base)}"

    def _refused(self, response: JudgeResponse) -> str | None:
        status = response.status
        if status in (401, 403):
            env = self.judge.api_key_env if self.judge is not None else None
            key = (
                f"judge.api_key_env={env}: check that {env} holds a valid key for this endpoint"
                if env
                else "judge.api_key_env is null, so no key was sent: set it to the NAME of the "
                "environment variable holding the key"
            )
            return (
                f"the judge endpoint refused the request with HTTP {status} "
                f"({'unauthorized' if status == 401 else 'forbidden'}) from {self._where()}; "
                f"{key} ({response.detail})"
            )
        if status == 404:
            model = self.judge.model if self.judge is not None else "?"
            return (
                f"the judge endpoint answered HTTP 404 (not found) from {self._where()}: check "
                f"judge.model ({model!r}: does the endpoint serve it?) and judge.api_base (the "
                f"URL up to /v1) ({response.detail})"
            )
        return None


class ProgressLog:
    """Progress as log lines, for runs without a progress bar (stderr not a terminal).

    Nothing for the first ``every_s`` seconds (a short run stays quiet); after that a line
    ``judging: done/total (p%), F failed, R calls/s, ETA Ts`` at each 10 % of the requests and
    whenever ``every_s`` seconds passed without one. ``clock`` is injectable for tests.
    """

    def __init__(
        self, total: int, clock: Callable[[], float] = time.monotonic, every_s: float = 30.0
    ) -> None:
        self.total = total
        self.clock = clock
        self.every_s = every_s
        self.start = self.last = clock()
        self.next_tenth = 1
        self.done = 0
        self.failed = 0

    def update(self, response: JudgeResponse) -> None:
        """Count one finished request; log a line when one is due."""
        self.done += 1
        self.failed += response.failure is not None
        now = self.clock()
        tenth = self.done * 10 // self.total if self.total else 0
        crossed = tenth >= self.next_tenth
        if crossed:
            self.next_tenth = tenth + 1
        quiet = now - self.start < self.every_s
        if quiet or not (crossed or now - self.last >= self.every_s):
            return
        self.last = now
        log.info("%s", self.line(now))

    def line(self, now: float) -> str:
        """The progress line at time ``now``."""
        elapsed = max(now - self.start, 1e-9)
        rate = self.done / elapsed
        left = max(self.total - self.done, 0)
        eta = f"{left / rate:.0f}s" if rate > 0 else "unknown"
        share = f" ({self.done / self.total:.0%})" if self.total else ""
        return (
            f"judging: {self.done}/{self.total}{share}, {self.failed} failed, "
            f"{rate:.2f} calls/s, ETA {eta}"
        )


def _progress_bar(total: int | None, mode: str) -> object | None:
    enabled = sys.stderr.isatty() if mode == "auto" else mode.lower() == "true"
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="judging", unit="call")


async def judge_all(
    requests: Iterable[JudgeRequest],
    client: JudgeClient,
    *,
    parallelism: int,
    stop_on_failure: bool = False,
    total: int | None = None,
    progress: str = "false",
    on_response: Callable[[JudgeRequest, JudgeResponse], None] | None = None,
    rules: StopRules | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> JudgeOutcome:
    """Send every request through ``client``; at most ``parallelism`` are in flight at once.

    ``rules`` decide when the run stops early (``stop_on_failure`` is the same as
    ``StopRules(stop_on_failure=True)``); after a stop no new request is sent, the ones in flight
    finish. Without a progress bar, progress goes to the log (see :class:`ProgressLog`).
    """
    outcome = JudgeOutcome(responses={})
    source = iter(requests)
    stop = asyncio.Event()
    bar = _progress_bar(total, progress)
    rules = rules or StopRules(stop_on_failure=stop_on_failure)
    lines = ProgressLog(total, clock) if bar is None and total else None

    async def worker() -> None:
        while not stop.is_set():
            request = next(source, None)
            if request is None:
                return
            response = await complete_draw(client, request.messages, request.sample)
            outcome.responses[request.index] = response
            if on_response is not None:
                on_response(request, response)
            if bar is not None:
                bar.update(1)  # type: ignore[attr-defined]
            if lines is not None:
                lines.update(response)
            reason = rules.check(request, response)
            if reason is not None and outcome.stopped_at is None:
                outcome.stopped_at = request.index
                outcome.stop_reason = reason
                stop.set()

    try:
        await asyncio.gather(*(worker() for _ in range(parallelism)))
    finally:
        if bar is not None:
            bar.close()  # type: ignore[attr-defined]
        # After Ctrl-C the loop is shutting down: a failed close must not print a traceback
        # over the one-line message (the connections go with the process anyway).
        with contextlib.suppress(Exception):
            await client.aclose()
    return outcome


def run_async(coroutine):  # type: ignore[no-untyped-def]
    """Run a coroutine from synchronous code, also inside a running loop (e.g. Jupyter)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()
