"""Judge every request with at most ``parallelism`` calls in flight, keeping input order.

Requests are pulled lazily from an iterable by a fixed pool of workers, so memory holds only the
calls in flight, not one coroutine per row. One failed row never stops the others unless the caller
asks to stop at the first failure.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from judgekit.client import JudgeClient, JudgeResponse

__all__ = ["JudgeRequest", "JudgeOutcome", "judge_all", "run_async"]


@dataclass
class JudgeRequest:
    """One rendered chat request for one example."""

    index: int
    example_id: str
    messages: list[dict[str, str]]


@dataclass
class JudgeOutcome:
    """The responses by request index, and the index that stopped the run early, if any."""

    responses: dict[int, JudgeResponse]
    stopped_at: int | None = None


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
) -> JudgeOutcome:
    """Send every request through ``client``; at most ``parallelism`` are in flight at once."""
    outcome = JudgeOutcome(responses={})
    source = iter(requests)
    stop = asyncio.Event()
    bar = _progress_bar(total, progress)

    async def worker() -> None:
        while not stop.is_set():
            request = next(source, None)
            if request is None:
                return
            response = await client.complete(request.messages)
            outcome.responses[request.index] = response
            if on_response is not None:
                on_response(request, response)
            if bar is not None:
                bar.update(1)  # type: ignore[attr-defined]
            if stop_on_failure and response.failure is not None and outcome.stopped_at is None:
                outcome.stopped_at = request.index
                stop.set()

    try:
        await asyncio.gather(*(worker() for _ in range(parallelism)))
    finally:
        if bar is not None:
            bar.close()  # type: ignore[attr-defined]
        close = getattr(client, "aclose", None)  # a client holding connections (DirectClient)
        if close is not None:
            await close()
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
