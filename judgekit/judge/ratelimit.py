"""Client-side rate limits: token buckets for ``judge.rpm``/``judge.tpm`` and AIMD concurrency.

Two limits sit between the runner's workers and the judge endpoint, and every *attempt* (retries
included) passes both, in this order::

    runner worker pool (runner.parallelism: hard cap on calls in flight)
      -> AdaptiveConcurrency  at most ``current`` calls inside; halves on 429, +1 as calls succeed
        -> RateLimiter        waits until the rpm and tpm buckets hold enough for this call
          -> the HTTP call

:class:`RateLimiter` keeps the request and token rates under the configured per-minute budgets.
:class:`AdaptiveConcurrency` reacts to the 429s that still arrive (the provider's own limits are
unknown, shared with other clients, or lower than configured): it lowers the number of calls in
flight, pauses new calls until the server's ``Retry-After`` has passed, then probes its way back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType

from judgekit.config.schema import JudgeConfig

__all__ = ["AdaptiveConcurrency", "RateLimiter", "Slot", "build_client_limits"]

logger = logging.getLogger(__name__)

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class _Bucket:
    """A token bucket that refills at ``rate`` per second up to ``capacity`` and may go into debt.

    A request larger than the capacity is let through when the bucket is full and leaves it
    negative, so later requests wait until the debt is repaid: over any window of ``w`` seconds
    at most ``capacity + rate * w`` units pass, plus the one request that went into debt.
    """

    def __init__(self, per_minute: float, now: float) -> None:
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate)  # one second's budget, and at least one request
        self.level = self.capacity  # start full: the first second's budget may go at once
        self.updated = now

    def refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + (now - self.updated) * self.rate)
        self.updated = now

    def wait_s(self, amount: float) -> float:
        """Seconds until ``amount`` (at most the capacity) is available; 0 if it is now."""
        missing = min(amount, self.capacity) - self.level
        return max(0.0, missing / self.rate)

    def adjust(self, delta: float, now: float) -> None:
        self.refill(now)
        self.level = min(self.capacity, self.level + delta)


class RateLimiter:
    """Requests-per-minute and tokens-per-minute budgets, shared by every call of a run.

    Each budget is a token bucket whose capacity is one second's worth (``rpm / 60`` requests,
    at least 1; ``tpm / 60`` tokens, at least 1), so the burst after an idle spell is at most one
    second of budget. Callers wait in arrival order (FIFO): the first waiter sleeps until both
    buckets hold enough for it (or until a refund arrives), the others queue behind it; nobody
    polls.

    Token counts are estimates before the call (:meth:`acquire`); :meth:`record_usage` corrects
    the tpm bucket by the difference once the provider reports the real usage.

    Args:
        rpm: Requests per minute; ``None`` means no request limit.
        tpm: Tokens per minute (prompt + completion); ``None`` means no token limit.
        clock: Monotonic seconds; injectable for tests.
        sleep: Awaitable sleep; injectable for tests.
    """

    def __init__(
        self,
        rpm: float | None,
        tpm: float | None,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        for name, value in (("rpm", rpm), ("tpm", tpm)):
            if value is not None and not value > 0:
                raise ValueError(f"RateLimiter.{name}: {value} is not a positive number")
        self._clock = clock
        self._sleep = sleep
        now = clock()
        self.requests = _Bucket(rpm, now) if rpm is not None else None
        self.tokens = _Bucket(tpm, now) if tpm is not None else None
        self._queue: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None
        self._napping: asyncio.Future[None] | None = None

    async def acquire(self, tokens_estimate: int) -> float:
        """Wait until one request of ``tokens_estimate`` tokens fits; returns the seconds waited."""
        start = self._clock()
        async with self._fifo():
            while True:
                now = self._clock()
                delay = 0.0
                for bucket, amount in self._needs(tokens_estimate):
                    bucket.refill(now)
                    delay = max(delay, bucket.wait_s(amount))
                if delay <= 0:
                    break
                await self._nap(delay)
            for bucket, amount in self._needs(tokens_estimate):
                bucket.level -= amount
        return self._clock() - start

    def record_usage(self, estimate: int, actual: int | None) -> None:
        """Correct the tpm bucket once a call reports its real token count (``None``: unknown)."""
        if self.tokens is not None and actual is not None:
            self.tokens.adjust(estimate - actual, self._clock())
            if actual < estimate and self._napping is not None:
                self._napping.cancel()  # tokens came back: the first waiter looks again now

    async def _nap(self, delay: float) -> None:
        """Sleep ``delay`` seconds, or less if :meth:`record_usage` gives tokens back."""
        self._napping = asyncio.ensure_future(self._sleep(delay))
        try:
            await asyncio.wait([self._napping])  # returns, not raises, when the nap is cancelled
        finally:
            self._napping.cancel()
            self._napping = None

    def _fifo(self) -> asyncio.Lock:
        """The queue of waiters (asyncio.Lock wakes them in FIFO order), one per event loop."""
        loop = asyncio.get_running_loop()
        if self._queue is None or self._queue[0] is not loop:
            self._queue = (loop, asyncio.Lock())
        return self._queue[1]

    def _needs(self, tokens_estimate: int) -> list[tuple[_Bucket, float]]:
        needs = [(self.requests, 1.0), (self.tokens, float(tokens_estimate))]
        return [(bucket, amount) for bucket, amount in needs if bucket is not None]


@dataclass(frozen=True)
class Slot:
    """One admission through :class:`AdaptiveConcurrency`: when, and how long it waited."""

    epoch: int
    """How many decreases had happened at admission; a 429 counts only if it is still current."""
    waited_s: float
    """Seconds spent waiting for the slot (a full limit or a ``Retry-After`` pause)."""


class AdaptiveConcurrency:
    """An AIMD limit on calls in flight: halve on 429, add one per ``current`` successes.

    At most :attr:`current` holders are inside at once (``async with limiter:`` or, to learn the
    admission, ``async with limiter.slot() as slot:``); waiters enter in FIFO order.

    * :meth:`on_rate_limited` halves ``current`` (floor 1) at most once per window and pauses
      new entries until ``now + retry_after`` (capped at ``max_pause_s``); calls in flight go on.
      The window: a 429 from a call admitted before the last decrease does not count again (it
      reports the old limit), so 30 calls that all get 429 together halve the limit once. A 429
      reported without its slot counts only if ``cooldown_s`` has passed since the last decrease.
    * :meth:`on_success` adds one to ``current`` after ``current`` successes in a row since the
      last change (one step per "round" of calls), up to ``limit``.

    Args:
        limit: The most calls in flight ever allowed; where ``current`` starts.
        max_pause_s: Upper bound on one ``Retry-After`` pause.
        cooldown_s: Minimum time between decreases for 429s reported without a slot.
        clock: Monotonic seconds, the same clock as the event loop's (``time.monotonic``).
    """

    def __init__(
        self,
        limit: int,
        *,
        max_pause_s: float = 60.0,
        cooldown_s: float = 1.0,
        clock: Clock = time.monotonic,
    ) -> None:
        if limit < 1:
            raise ValueError(f"AdaptiveConcurrency.limit: {limit} is not valid; use 1 or more")
        self.limit = limit
        self.current = limit
        """How many calls may be in flight now."""
        self.min_seen = limit
        """The lowest ``current`` ever reached."""
        self.history: list[tuple[float, int]] = [(clock(), limit)]
        """``(clock time, current)`` at the start and after every change."""
        self.rate_limited = 0
        """429s reported, counted or not."""
        self.max_pause_s = max_pause_s
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._active = 0
        self._epoch = 0
        self._last_decrease = -float("inf")
        self._successes = 0
        self._not_before = -float("inf")
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._timer: tuple[asyncio.AbstractEventLoop, asyncio.TimerHandle] | None = None

    @property
    def active(self) -> int:
        """Holders inside now."""
        return self._active

    def slot(self) -> _SlotContext:
        """``async with limiter.slot() as slot:`` holds one slot and tells when it was admitted."""
        return _SlotContext(self)

    async def __aenter__(self) -> AdaptiveConcurrency:
        await self.acquire()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    async def acquire(self) -> Slot:
        """Wait for a slot (FIFO, honouring the pause); pair with :meth:`release`."""
        start = self._clock()
        if not self._waiters and self._active < self.current and start >= self._not_before:
            self._active += 1
            return Slot(self._epoch, 0.0)
        admitted = asyncio.get_running_loop().create_future()
        self._waiters.append(admitted)
        self._wake()
        try:
            await admitted
        except asyncio.CancelledError:
            if admitted.done() and not admitted.cancelled():
                self.release()  # the slot was handed over just as we were cancelled
            raise
        return Slot(self._epoch, self._clock() - start)

    def release(self) -> None:
        """Give a slot back and let the next waiter in if the limit and the pause allow."""
        self._active -= 1
        self._wake()

    def on_rate_limited(self, retry_after: float | None, slot: Slot | None = None) -> None:
        """A call got 429: lower the limit once per window and pause new entries."""
        now = self._clock()
        self.rate_limited += 1
        if retry_after is not None and retry_after > 0:
            self._not_before = max(self._not_before, now + min(retry_after, self.max_pause_s))
        fresh = (
            slot.epoch == self._epoch
            if slot is not None
            else now - self._last_decrease >= self.cooldown_s
        )
        if fresh and self.current > 1:
            self._set(max(1, self.current // 2), now)
            self._epoch += 1
            self._last_decrease = now
            logger.info(
                "judge rate limited (429): at most %d calls in flight now%s",
                self.current,
                f", pausing {retry_after:g} s" if retry_after else "",
            )
        self._successes = 0

    def on_success(self) -> None:
        """A call succeeded: after ``current`` successes in a row, allow one more in flight."""
        self._successes += 1
        if self._successes >= self.current and self.current < self.limit:
            self._set(self.current + 1, self._clock())
            self._wake()

    def _set(self, current: int, now: float) -> None:
        self.current = current
        self.min_seen = min(self.min_seen, current)
        self.history.append((now, current))
        self._successes = 0

    def _wake(self) -> None:
        """Hand free slots to waiters in order, or come back when the pause ends."""
        while self._waiters and self._active < self.current:
            delay = self._not_before - self._clock()
            if delay > 0:
                loop = asyncio.get_running_loop()
                if self._timer is None or self._timer[0] is not loop:  # none, or a past run's
                    self._timer = (loop, loop.call_later(delay, self._on_timer))
                return
            admitted = self._waiters.popleft()
            if admitted.done():  # its task was cancelled while waiting
                continue
            self._active += 1
            admitted.set_result(None)

    def _on_timer(self) -> None:
        self._timer = None
        self._wake()


class _SlotContext:
    def __init__(self, limiter: AdaptiveConcurrency) -> None:
        self._limiter = limiter

    async def __aenter__(self) -> Slot:
        return await self._limiter.acquire()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._limiter.release()


def build_client_limits(
    judge: JudgeConfig, parallelism: int
) -> tuple[RateLimiter | None, AdaptiveConcurrency]:
    """The limits one run's client shares: rpm/tpm buckets (if set) and AIMD up to parallelism."""
    limited = judge.rpm is not None or judge.tpm is not None
    limiter = RateLimiter(judge.rpm, judge.tpm) if limited else None
    return limiter, AdaptiveConcurrency(parallelism, max_pause_s=judge.retry_max_wait_s)
