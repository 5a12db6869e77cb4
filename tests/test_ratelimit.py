"""Client-side rate limits: bucket arithmetic on a fake clock, then caps and AIMD over real HTTP."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest

from judgekit.config.schema import JudgeConfig
from judgekit.errors import ConfigError
from judgekit.judge.client import LiteLLMClient
from judgekit.judge.ratelimit import AdaptiveConcurrency, RateLimiter, build_client_limits
from judgekit.runner import JudgeRequest, judge_all
from judgekit.testing.server import ChatRequest, FakeJudge, FaultPlan, Reply


class FakeClock:
    """A monotonic clock that only moves when someone sleeps on it."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


def _waits(limiter: RateLimiter, estimates: list[int]) -> list[float]:
    async def go() -> list[float]:
        return [round(await limiter.acquire(n), 6) for n in estimates]

    return asyncio.run(go())


# ---------------------------------------------------------------------------------------------
# RateLimiter arithmetic (fake clock)


def test_rpm_bucket_allows_one_seconds_burst_then_paces() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rpm=120, tpm=None, clock=clock, sleep=clock.sleep)
    # rpm 120 = 2 requests/s; capacity = one second's budget = 2, starting full.
    # Requests 1-2 take the burst; each later one waits 1/2 s for the next token.
    assert _waits(limiter, [0] * 5) == [0.0, 0.0, 0.5, 0.5, 0.5]
    assert clock.now == pytest.approx(1.5)


def test_rpm_below_60_holds_one_request() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rpm=30, tpm=None, clock=clock, sleep=clock.sleep)
    # rpm 30 = 0.5/s; capacity max(1, 0.5) = 1: no burst beyond a single request.
    assert _waits(limiter, [0] * 3) == [0.0, 2.0, 2.0]


def test_an_idle_bucket_refills_only_to_its_capacity() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rpm=120, tpm=None, clock=clock, sleep=clock.sleep)
    clock.now = 100.0  # 100 s idle would be 200 tokens, but the bucket holds 2
    assert _waits(limiter, [0] * 3) == [0.0, 0.0, 0.5]


def test_a_request_larger_than_the_tpm_bucket_goes_into_debt() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rpm=None, tpm=600, clock=clock, sleep=clock.sleep)
    # tpm 600 = 10 tokens/s; capacity 10. A 30-token call passes on a full bucket (10 -> -20);
    # the next 5-token call waits until the level is back to 5: (5 - -20) / 10 = 2.5 s.
    assert _waits(limiter, [30, 5]) == [0.0, 2.5]


def test_record_usage_corrects_the_estimate() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rpm=None, tpm=600, clock=clock, sleep=clock.sleep)
    assert _waits(limiter, [30]) == [0.0]  # level 10 - 30 = -20
    limiter.record_usage(30, 10)  # only 10 used: 20 back, level 0
    assert _waits(limiter, [5]) == [0.5]  # (5 - 0) / 10
    limiter.record_usage(5, 25)  # 20 more than estimated: level -20
    assert _waits(limiter, [5]) == [2.5]  # (5 - -20) / 10
    limiter.record_usage(5, None)  # usage unknown: no correction
    assert limiter.tokens is not None and limiter.tokens.level == pytest.approx(0.0)


def test_usage_correction_makes_a_tpm_run_take_its_real_tokens_time_not_its_estimates() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rpm=None, tpm=60_000, clock=clock, sleep=clock.sleep)

    async def calls() -> None:
        for _ in range(25):  # one after the other, each estimated 521 tokens, really using 100
            await limiter.acquire(521)
            limiter.record_usage(521, 100)

    asyncio.run(calls())
    # tpm 60000 = 1000 tokens/s, capacity 1000. Corrected, every call costs 100 (521 taken, 421
    # given back): calls 1..5 leave 900, 800, 700, 600, 500; call 6 waits (521 - 500) / 1000 =
    # 0.021 s; from call 7 on, each finds 421 and waits (521 - 421) / 1000 = 0.1 s:
    # 0.021 + 19 * 0.1 = 1.921 s. Charged by estimate alone: (25 * 521 - 1000) / 1000 = 12.0 s.
    assert clock.now == pytest.approx(1.921, abs=1e-6)
    assert clock.now < (25 * 521 - 1000) / 1000 / 5


def test_the_slower_bucket_decides_the_wait() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rpm=60, tpm=6000, clock=clock, sleep=clock.sleep)
    # rpm: 1/s, capacity 1. tpm: 100/s, capacity 100.
    # Call 2 (50 tokens): rpm needs 1 s, tpm still holds 50 -> 1 s (rpm decides).
    # Call 3 (150): rpm needs 1 s; tpm at 50 needs min(150, 100) = 100 -> 0.5 s -> 1 s;
    #   then tpm = 100 - 150 = -50.
    # Call 4 (100): rpm needs 1 s; tpm needs (100 - -50) / 100 = 1.5 s -> 1.5 s (tpm decides).
    assert _waits(limiter, [50, 50, 150, 100]) == [0.0, 1.0, 1.0, 1.5]


def test_waiters_are_served_first_come_first_served() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rpm=60, tpm=None, clock=clock, sleep=clock.sleep)
    served: list[tuple[int, float]] = []

    async def call(i: int) -> None:
        await limiter.acquire(0)
        served.append((i, clock.now))

    async def go() -> None:
        tasks = [asyncio.create_task(call(i)) for i in range(4)]
        await asyncio.gather(*tasks)

    asyncio.run(go())
    assert served == [(0, 0.0), (1, 1.0), (2, 2.0), (3, 3.0)]


def test_a_refund_wakes_the_first_waiter_early() -> None:
    limiter = RateLimiter(rpm=None, tpm=600)  # 10 tokens/s, capacity 10, real clock

    async def go() -> float:
        await limiter.acquire(30)  # level -20: the next 5-token call would wait 2.5 s
        asyncio.get_running_loop().call_later(0.05, limiter.record_usage, 30, 5)  # 25 back
        return await limiter.acquire(5)

    assert asyncio.run(go()) < 0.5


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="rpm"):
        RateLimiter(rpm=0, tpm=None)
    with pytest.raises(ConfigError, match=r"judge\.tpm: -5"):
        JudgeConfig(model="openai/x", tpm=-5)
    with pytest.raises(ConfigError, match=r"judge\.rpm"):
        JudgeConfig(model="openai/x", rpm=0)


def test_build_client_limits_makes_a_rate_limiter_only_when_asked() -> None:
    limiter, concurrency = build_client_limits(JudgeConfig(model="openai/x"), 8)
    assert limiter is None and concurrency.limit == concurrency.current == 8
    limiter, _ = build_client_limits(JudgeConfig(model="openai/x", rpm=600), 8)
    assert limiter is not None and limiter.requests is not None and limiter.tokens is None
    assert limiter.requests.capacity == 10  # 600 / 60


# ---------------------------------------------------------------------------------------------
# AdaptiveConcurrency (AIMD)


def test_simultaneous_429s_halve_the_limit_once_per_window() -> None:
    async def go() -> AdaptiveConcurrency:
        limiter = AdaptiveConcurrency(32)
        slots = [await limiter.acquire() for _ in range(30)]
        for slot in slots:  # 30 calls admitted under the limit 32 all get 429 together
            limiter.on_rate_limited(None, slot)
        assert limiter.current == 16  # one halving, not 32 -> 1
        for _ in slots:
            limiter.release()
        fresh = await limiter.acquire()  # admitted under 16: its 429 is new evidence
        limiter.on_rate_limited(None, fresh)
        limiter.release()
        return limiter

    limiter = asyncio.run(go())
    assert limiter.current == 8 and limiter.min_seen == 8
    assert [c for _, c in limiter.history] == [32, 16, 8]
    assert limiter.rate_limited == 31


def test_429s_without_a_slot_halve_once_per_cooldown() -> None:
    clock = FakeClock()
    limiter = AdaptiveConcurrency(8, cooldown_s=1.0, clock=clock)
    limiter.on_rate_limited(None)
    limiter.on_rate_limited(None)  # same instant: inside the cooldown
    assert limiter.current == 4
    clock.now = 1.0
    limiter.on_rate_limited(None)
    clock.now = 2.0
    limiter.on_rate_limited(None)
    clock.now = 3.0
    limiter.on_rate_limited(None)  # 4 -> 2 -> 1, and the floor is 1
    assert limiter.current == 1


def test_successes_add_one_per_round_up_to_the_limit() -> None:
    limiter = AdaptiveConcurrency(6)
    limiter.on_rate_limited(None)  # 6 -> 3
    steps = []
    for _ in range(3 + 4 + 5 + 6):
        limiter.on_success()
        steps.append(limiter.current)
    # +1 after `current` successes in a row: 3 successes -> 4, 4 more -> 5, 5 more -> 6 (limit).
    assert steps[2] == 4 and steps[6] == 5 and steps[11] == 6 and steps[-1] == 6


def test_at_most_current_inside_and_the_pause_is_honoured() -> None:
    async def go() -> tuple[int, float]:
        limiter = AdaptiveConcurrency(3)
        inside = peak = 0

        async def task() -> None:
            nonlocal inside, peak
            async with limiter:
                inside += 1
                peak = max(peak, inside)
                await asyncio.sleep(0.01)
                inside -= 1

        await asyncio.gather(*(task() for _ in range(12)))
        slot = await limiter.acquire()
        limiter.on_rate_limited(0.2, slot)  # limit 3 -> 1, no new entry for 0.2 s
        limiter.release()
        start = time.monotonic()
        async with limiter.slot() as later:
            paused = time.monotonic() - start
            assert later.waited_s == pytest.approx(paused, abs=0.01)
        return peak, paused

    peak, paused = asyncio.run(go())
    assert peak == 3
    assert paused >= 0.19


def test_a_cancelled_waiter_does_not_leak_a_slot() -> None:
    async def go() -> int:
        limiter = AdaptiveConcurrency(1)
        await limiter.acquire()
        waiter = asyncio.create_task(limiter.acquire())
        await asyncio.sleep(0)
        waiter.cancel()
        limiter.release()
        await asyncio.gather(waiter, return_exceptions=True)
        async with limiter:
            return limiter.active

    assert asyncio.run(go()) == 1


def test_limits_can_be_reused_by_a_later_event_loop() -> None:
    limiter, concurrency = RateLimiter(rpm=3000, tpm=None), AdaptiveConcurrency(2)

    async def crowd_the_bucket() -> None:  # 50/s, capacity 50: call 51 sleeps, 52 queues
        await asyncio.wait_for(asyncio.gather(*(limiter.acquire(0) for _ in range(52))), 5)

    async def pause_then_wait(cancel_the_waiter: bool) -> None:
        slot = await concurrency.acquire()
        concurrency.on_rate_limited(0.05, slot)  # a pause: waiters need a timer to wake them
        concurrency.release()
        waiter = asyncio.create_task(concurrency.acquire())
        await asyncio.sleep(0)
        if cancel_the_waiter:  # the run ends with the timer still pending in its loop
            waiter.cancel()
            return
        await waiter
        concurrency.release()

    asyncio.run(crowd_the_bucket())
    asyncio.run(crowd_the_bucket())  # a second run, as a second evaluate() in one process
    asyncio.run(pause_then_wait(cancel_the_waiter=True))
    asyncio.run(asyncio.wait_for(pause_then_wait(cancel_the_waiter=False), 5))  # no hang
    assert concurrency.active == 0


# ---------------------------------------------------------------------------------------------
# Over real HTTP against the fake judge


@pytest.fixture(scope="module")
def warm_litellm() -> None:
    """Make one call first: litellm's first call in a process blocks the event loop for a moment
    (setup after the import), which would bunch up the sends the rate limiter spaced out."""
    with FakeJudge() as judge:
        client = LiteLLMClient(_config(judge), api_key="sk-test")
        asyncio.run(client.complete([{"role": "user", "content": "warm up"}]))


def _config(judge: FakeJudge, **overrides: object) -> JudgeConfig:
    settings = {"max_retries": 3, "retry_backoff_s": 0.01, "retry_max_wait_s": 1.0, **overrides}
    return JudgeConfig(name="fake", model="openai/fake-judge", api_base=judge.url, **settings)


def _requests(n: int) -> list[JudgeRequest]:
    return [JudgeRequest(i, str(i), [{"role": "user", "content": f"row {i}"}]) for i in range(n)]


class Arrivals:
    """A responder that notes when each request arrived and answers with fixed usage."""

    def __init__(self, tokens: int = 20) -> None:
        self.times: list[float] = []
        self.tokens = tokens
        self._lock = threading.Lock()

    def __call__(self, request: ChatRequest) -> Reply:
        with self._lock:
            self.times.append(time.monotonic())
        usage = {"prompt_tokens": self.tokens // 2, "completion_tokens": self.tokens // 2}
        return Reply('{"helpfulness": 3}', usage={**usage, "total_tokens": self.tokens})

    def most_in_window(self, window_s: float) -> int:
        """The most arrivals inside any window of ``window_s`` seconds."""
        times = sorted(self.times)
        return max(
            sum(1 for t in times[i:] if t - start <= window_s) for i, start in enumerate(times)
        )


def _run(judge: FakeJudge, cfg: JudgeConfig, n: int, parallelism: int) -> tuple[dict, float, tuple]:
    limits = build_client_limits(cfg, parallelism)
    client = LiteLLMClient(cfg, api_key="sk-test", limiter=limits[0], concurrency=limits[1])
    start = time.perf_counter()
    outcome = asyncio.run(judge_all(iter(_requests(n)), client, parallelism=parallelism))
    return outcome.responses, time.perf_counter() - start, limits


@pytest.mark.usefixtures("warm_litellm")
def test_rpm_cap_holds_over_http() -> None:
    arrivals = Arrivals()
    with FakeJudge(arrivals) as judge:
        responses, elapsed, _ = _run(judge, _config(judge, rpm=600), 20, parallelism=20)
    # rpm 600 = 10/s with a burst of 10: requests 11..20 wait 0.1 s each, so >= 1.0 s in all.
    assert elapsed >= 0.95
    assert all(r.failure is None for r in responses.values())
    assert arrivals.most_in_window(0.5) <= 10 + 5 + 2  # burst + 0.5 s of rate, +2 for jitter
    throttled = sorted(r.extra["throttled_s"] for r in responses.values())
    assert throttled[:10] == pytest.approx([0.0] * 10, abs=0.05)
    assert throttled[-1] == pytest.approx(1.0, abs=0.1)


@pytest.mark.usefixtures("warm_litellm")
def test_tpm_cap_holds_and_usage_corrects_the_estimate_over_http() -> None:
    arrivals = Arrivals(tokens=100)
    with FakeJudge(arrivals) as judge:
        # Estimate per call: len(json.dumps(messages)) // 4 + 512 ~ 521, about 5x the 100 used.
        cfg = _config(judge, tpm=60_000, max_tokens=512)
        responses, elapsed, _ = _run(judge, cfg, 25, parallelism=25)
    # tpm 60000 = 1000 tokens/s with a burst of 1000. Actually used: 25 * 100 = 2500 tokens, so
    # >= (2500 - 1000) / 1000 = 1.5 s minus one call (about 1.9 s: a call starts only when the
    # bucket holds its whole 521-token estimate). Charged by estimate alone it would be
    # (25 * 521 - 1000) / 1000 = 12 s: the correction after each call is what makes it fast.
    assert all(r.failure is None for r in responses.values())
    assert elapsed >= 1.3  # the cap held (how fast the correction makes it: the fake-clock test)
    # Tokens arriving in any 0.5 s: at most the burst + 0.5 s of rate, + two calls of jitter.
    assert arrivals.most_in_window(0.5) * 100 <= 1000 + 500 + 200


@pytest.mark.usefixtures("warm_litellm")
def test_aimd_backs_off_on_429s_and_recovers() -> None:
    plan = FaultPlan(rate_limit=0.3, retry_after_s=0.05)
    with FakeJudge(faults=plan, latency_s=0.02) as judge:
        cfg = _config(judge, max_retries=30)
        limiter, concurrency = build_client_limits(cfg, 32)
        client = LiteLLMClient(cfg, api_key="sk-test", limiter=limiter, concurrency=concurrency)
        outcome = asyncio.run(judge_all(iter(_requests(60)), client, parallelism=32))
        rate_limited = judge.counters.by_kind.get("rate_limit", 0)
        low, changes = concurrency.current, len(concurrency.history)
        judge.faults = None  # the provider's limit lifts: the limit climbs back
        clean = asyncio.run(judge_all(iter(_requests(260)[60:]), client, parallelism=32))
        max_in_flight = judge.counters.max_in_flight
    print(f"429s: {rate_limited}; limit min {concurrency.min_seen}, {low} -> {concurrency.current}")
    assert all(r.failure is None for r in outcome.responses.values())
    assert all(r.failure is None for r in clean.responses.values())
    assert rate_limited > 0 and concurrency.rate_limited == rate_limited
    assert concurrency.min_seen < 32
    assert max(r.extra["throttled_s"] for r in outcome.responses.values()) > 0
    # Recovery is additive: one step per round of `current` successes, so from `low` the 200
    # clean calls reach k with low + ... + (k - 1) <= 200, i.e. at least 16 from low <= 4.
    recovery = [c for _, c in concurrency.history[changes:]]
    assert recovery == list(range(low + 1, concurrency.current + 1))
    assert concurrency.current >= 16
    assert max_in_flight <= 32


@pytest.mark.usefixtures("warm_litellm")
def test_no_retry_storm_against_a_server_that_rejects_crowds() -> None:
    retry_after_s = 0.05
    judge = FakeJudge()

    def crowd_averse(request: ChatRequest) -> Reply:
        if judge.counters.in_flight > 4:  # this request and 4+ others
            return Reply("too many requests", 429, {"Retry-After": f"{retry_after_s}"})
        return Reply(json.dumps({"helpfulness": 2}), delay_s=0.02)

    judge.responder = crowd_averse
    with judge:
        cfg = _config(judge, max_retries=50)
        responses, _, (_, concurrency) = _run(judge, cfg, 200, parallelism=32)
        rejected = judge.counters.by_kind.get("rate_limit", 0)
    print(f"429s: {rejected} for 200 rows; concurrency min {concurrency.min_seen}")
    assert all(r.failure is None for r in responses.values())
    assert rejected < 200
    assert concurrency.min_seen <= 4
