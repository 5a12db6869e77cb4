"""A fake OpenAI-compatible judge server, for testing judge configs offline and without cost.

:class:`FakeJudge` serves ``POST /v1/chat/completions`` from a background thread on 127.0.0.1,
so litellm, the ``openai`` client or raw HTTP talk to it exactly as to a real provider. A
*responder* decides each answer; a seeded :class:`FaultPlan` injects the failures real endpoints
produce (429 with ``Retry-After``, 500, hangs, broken JSON, answers that are not scores, bodies
without choices, bodies sent a byte at a time, oversized bodies), and
:class:`Counters` records what arrived::

    from judgekit.testing.server import FakeJudge, FaultPlan, json_scores

    with FakeJudge(json_scores(lambda req: {"helpfulness": 3}),
                   faults=FaultPlan(fail_first_n_attempts=1, retry_after_s=0.1)) as judge:
        run_pipeline(api_base=judge.url)       # first call of each request: 429, the retry: 200
        assert judge.counters.by_kind == {"rate_limit": n, "ok": n}

Endpoints: ``POST /v1/chat/completions`` (also ``/chat/completions``), ``GET /v1/models``,
``GET /health``, ``GET /v1/counters`` (the counters as JSON, for a test in another process) and
``POST /v1/counters/reset``. ``stream: true`` is answered with 400: the fake does not stream.

Determinism: a request's *key* hashes its model and messages; its *attempt* is how many times
the same key arrived before. Faults are chosen by hashing (seed, key, attempt), so a run injects
the same faults into the same requests whatever the order or concurrency of arrival.

The ``judgekit fake-judge`` command (:mod:`judgekit.testing.cli`) serves the same thing from
a shell.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import itertools
import json
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

__all__ = [
    "DEFAULT_SCORE_NAMES",
    "FAULT_KINDS",
    "SHAPES",
    "ChatRequest",
    "Counters",
    "FakeJudge",
    "FaultPlan",
    "Reply",
    "Responder",
    "constant",
    "from_mapping",
    "in_fence",
    "json_scores",
    "mixed_shape",
    "request_key",
    "scripted",
    "stable_scores",
    "synthesise_logprobs",
    "with_prose",
    "with_think",
]

FAULT_KINDS = (
    "rate_limit",
    "server_error",
    "hang",
    "malformed",
    "garbage",
    "no_choices",
    "empty_choices",
    "trickle",
    "oversize",
)
"""Faults a :class:`FaultPlan` injects, in the order their probability bands are laid out (new
kinds go at the end, so an existing plan draws the same faults)."""

DEFAULT_SCORE_NAMES = ("helpfulness", "correctness", "coherence", "complexity", "verbosity")
"""The HelpSteer2 dimensions (0..4), used by the default answer."""

_MALFORMED_BODY = b'{"id": "chatcmpl-fake", "object": "chat.completion", "choices": [{"message": {'


@dataclass
class ChatRequest:
    """One chat-completions request as the responder sees it."""

    model: str
    """The ``model`` field of the body (litellm strips its ``openai/`` prefix)."""
    messages: list[dict[str, Any]]
    """The chat messages, as sent."""
    params: dict[str, Any]
    """Every other body field: ``temperature``, ``max_tokens``, ``logprobs``, ..."""
    attempt: int = 0
    """How many times a request with the same model and messages arrived before (0 = first)."""
    key: str = ""
    """Short hash of model and messages; the key of ``Counters.request_keys``."""
    body: dict[str, Any] = field(default_factory=dict)
    """The whole JSON body."""

    @property
    def last_user_text(self) -> str:
        """Text of the last ``user`` message ('' if there is none); text parts are joined."""
        for message in reversed(self.messages):
            if message.get("role") == "user":
                return _text_of(message.get("content"))
        return ""


@dataclass
class Reply:
    """What the fake answers to one request."""

    content: str | None = ""
    """``choices[0].message.content``; for an error status, the error message."""
    status: int = 200
    """HTTP status. 4xx/5xx answer with an OpenAI-style ``{"error": {...}}`` body."""
    headers: dict[str, str] = field(default_factory=dict)
    """Extra response headers, e.g. ``{"Retry-After": "1"}``."""
    delay_s: float = 0.0
    """Seconds to wait (without blocking the server) before answering, on top of the latency."""
    hang: bool = False
    """Never answer: hold the connection until the client gives up or the server stops."""
    malformed: bool = False
    """Answer 200 with a truncated, unparseable JSON body."""
    logprobs: list[dict[str, Any]] | None = None
    """An OpenAI ``choices[0].logprobs.content`` list to return as is."""
    finish_reason: str = "stop"
    """``choices[0].finish_reason``; ``"length"`` imitates a truncated answer."""
    usage: dict[str, int] | None = None
    """Token usage to report; ``None`` counts words (prompt: all messages, completion: content)."""
    no_choices: bool = False
    """Answer 200 with a chat-completion body that has no ``choices`` key."""
    empty_choices: bool = False
    """Answer 200 with ``"choices": []``."""
    trickle_s: float = 0.0
    """Send the body one byte at a time, this many seconds apart (0: all at once)."""
    size_bytes: int = 0
    """Pad the content with trailing spaces until the JSON body is at least this many bytes
    (the answer still parses: only a size limit turns it into a failure)."""
    chunked: bool = False
    """Send the body in 64 kB chunks with no Content-Length (chunked transfer encoding)."""


Responder = Callable[[ChatRequest], "Reply | str"]
"""Decides the answer to a request: a :class:`Reply`, or a string (a 200 with that content)."""


@dataclass(frozen=True)
class FaultPlan:
    """Which failures to inject, decided per request by a seeded hash (reproducible).

    Each request draws one number u in [0, 1) from hash(seed, key, attempt); the probabilities
    are laid end to end in ``FAULT_KINDS`` order and u picks at most one fault. The first
    ``fail_first_n_attempts`` attempts of every request fail with ``fail_with`` regardless.
    """

    rate_limit: float = 0.0
    """Probability of 429 with a ``Retry-After`` header (answered at once, as rate limiters do)."""
    retry_after_s: float = 1.0
    """Seconds sent in ``Retry-After`` (and ``retry-after-ms``); fractions like 0.1 are allowed."""
    server_error: float = 0.0
    """Probability of 500."""
    hang: float = 0.0
    """Probability of waiting ``hang_s`` seconds before answering normally."""
    hang_s: float = 3600.0
    """How long a hang lasts; a client disconnect or server stop ends it earlier."""
    malformed: float = 0.0
    """Probability of 200 with a truncated JSON body."""
    garbage: float = 0.0
    """Probability of a well-formed 200 whose content is ``garbage_text``, not a score."""
    garbage_text: str = "I cannot rate this response."
    """Content of a garbage answer."""
    no_choices: float = 0.0
    """Probability of 200 whose body has no ``choices``."""
    empty_choices: float = 0.0
    """Probability of 200 with ``"choices": []``."""
    trickle: float = 0.0
    """Probability of the normal answer sent one byte every ``trickle_byte_s`` seconds."""
    trickle_byte_s: float = 0.05
    """Seconds between the bytes of a trickled body."""
    oversize: float = 0.0
    """Probability of the normal answer padded to ``oversize_bytes`` (trailing spaces)."""
    oversize_bytes: int = 2_000_000
    """Size of an oversized body, in bytes."""
    fail_first_n_attempts: int = 0
    """Attempts of every request that fail with ``fail_with`` before the plan above applies."""
    fail_with: str = "rate_limit"
    """Fault used for the first attempts: one of ``FAULT_KINDS``."""
    seed: int = 0
    """Changes which requests draw which faults."""

    def __post_init__(self) -> None:
        probabilities = {kind: getattr(self, kind) for kind in FAULT_KINDS}
        for kind, p in probabilities.items():
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"FaultPlan.{kind}: {p} is not a probability in [0, 1]")
        if sum(probabilities.values()) > 1.0 + 1e-9:
            raise ValueError(
                f"FaultPlan: fault probabilities add up to more than 1: {probabilities}"
            )
        if self.fail_with not in FAULT_KINDS:
            raise ValueError(f"FaultPlan.fail_with: {self.fail_with!r}; use one of {FAULT_KINDS}")
        if self.fail_first_n_attempts < 0 or self.retry_after_s < 0 or self.hang_s <= 0:
            raise ValueError(
                "FaultPlan: fail_first_n_attempts and retry_after_s must be >= 0 and hang_s > 0"
            )
        if self.trickle_byte_s < 0 or self.oversize_bytes < 0:
            raise ValueError("FaultPlan: trickle_byte_s and oversize_bytes must be >= 0")

    def fault_for(self, key: str, attempt: int) -> str | None:
        """The fault to inject into attempt ``attempt`` of the request ``key``, or ``None``."""
        if attempt < self.fail_first_n_attempts:
            return self.fail_with
        u = _unit_hash(f"{self.seed}\0{key}\0{attempt}")
        edge = 0.0
        for kind in FAULT_KINDS:
            edge += getattr(self, kind)
            if u < edge:
                return kind
        return None


_NO_FAULTS = FaultPlan()


class Counters:
    """Thread-safe tallies of what a :class:`FakeJudge` received; read them from any thread.

    Every property returns a copy. ``by_kind`` counts how each request was answered: ``ok``,
    one of ``FAULT_KINDS``, ``bad_request`` (400), ``client_error``/``rate_limit``/
    ``server_error`` for a responder's own error statuses, or ``responder_error`` when the
    responder raised. ``request_keys`` maps each request key to how many times it arrived.
    """

    def __init__(self, max_bodies: int | None = None) -> None:
        self._lock = threading.Lock()
        self._in_flight = 0
        self._bodies: deque[dict[str, Any]] = deque(maxlen=max_bodies)
        self._clear()

    def _clear(self) -> None:
        self._requests_total = 0
        self._completed = 0
        self._max_in_flight = self._in_flight
        self._by_kind: dict[str, int] = {}
        self._request_keys: dict[str, int] = {}
        self._bodies.clear()

    @property
    def requests_total(self) -> int:
        """Chat-completion requests received (valid or not)."""
        return self._requests_total

    @property
    def in_flight(self) -> int:
        """Chat-completion requests being handled now."""
        return self._in_flight

    @property
    def max_in_flight(self) -> int:
        """The most requests handled at the same time."""
        return self._max_in_flight

    @property
    def completed(self) -> int:
        """Requests answered (any status); hung requests the client abandoned are not."""
        return self._completed

    @property
    def by_kind(self) -> dict[str, int]:
        """How many requests were answered each way (see the class docstring)."""
        with self._lock:
            return dict(self._by_kind)

    @property
    def bodies(self) -> list[dict[str, Any]]:
        """Request JSON bodies in arrival order (the latest ``max_bodies`` if capped)."""
        with self._lock:
            return list(self._bodies)

    @property
    def request_keys(self) -> dict[str, int]:
        """Request key -> times it arrived; 2 means one retry of the same request."""
        with self._lock:
            return dict(self._request_keys)

    def snapshot(self) -> dict[str, Any]:
        """All counters as one consistent, JSON-ready dict (what ``GET /v1/counters`` returns)."""
        with self._lock:
            return {
                "requests_total": self._requests_total,
                "in_flight": self._in_flight,
                "max_in_flight": self._max_in_flight,
                "completed": self._completed,
                "by_kind": dict(self._by_kind),
                "request_keys": dict(self._request_keys),
                "bodies": list(self._bodies),
            }

    def reset(self) -> None:
        """Zero every tally (requests now in flight stay counted in ``in_flight``)."""
        with self._lock:
            self._clear()

    def _arrive(self) -> None:
        with self._lock:
            self._requests_total += 1
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)

    def _register(self, key: str, body: dict[str, Any]) -> int:
        with self._lock:
            attempt = self._request_keys.get(key, 0)
            self._request_keys[key] = attempt + 1
            self._bodies.append(body)
            return attempt

    def _count(self, kind: str) -> None:
        with self._lock:
            self._by_kind[kind] = self._by_kind.get(kind, 0) + 1

    def _leave(self, answered: bool) -> None:
        with self._lock:
            self._in_flight -= 1
            self._completed += answered


class FakeJudge:
    """An OpenAI-compatible chat-completions server with scripted answers and injected faults.

    Args:
        responder: Decides each answer; default :func:`stable_scores` JSON for the HelpSteer2
            dimensions (0..4), stable per user message.
        latency_s: Seconds every answer waits (``asyncio.sleep``: concurrency is unaffected).
        faults: Failures to inject; ``None`` injects none.
        host: Interface to bind.
        port: Port to bind; 0 picks a free one (read it from :attr:`url` after :meth:`start`).
        model_name: The model ``GET /v1/models`` lists.
        max_bodies: Keep only the latest this many request bodies (``None`` keeps all).
    """

    def __init__(
        self,
        responder: Responder | None = None,
        *,
        latency_s: float = 0.0,
        faults: FaultPlan | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        model_name: str = "fake-judge",
        max_bodies: int | None = None,
    ) -> None:
        if latency_s < 0:
            raise ValueError(f"FakeJudge.latency_s: {latency_s} is negative")
        self.responder: Responder = responder or json_scores(stable_scores())
        self.latency_s = latency_s
        self.faults = faults
        self.host = host
        self.port = port
        self.model_name = model_name
        self.counters = Counters(max_bodies)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None

    @property
    def url(self) -> str:
        """Base URL for OpenAI clients and litellm's ``api_base``: ``http://HOST:PORT/v1``."""
        if self._thread is None:
            raise RuntimeError("FakeJudge.url: the server is not running; call start() first")
        return f"http://{self.host}:{self.port}/v1"

    def start(self) -> FakeJudge:
        """Serve from a background thread; returns once the port accepts connections.

        After :meth:`stop`, ``start()`` serves again on the same port (an endpoint that was down).
        """
        if self._thread is not None:
            raise RuntimeError("FakeJudge.start: the server is already running")
        self._ready.clear()
        self._startup_error = None
        self._thread = threading.Thread(target=self._run, name="fake-judge", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._startup_error is not None:
            self._thread.join()
            self._thread = None
            raise RuntimeError(
                f"FakeJudge could not listen on {self.host}:{self.port}: {self._startup_error}"
            ) from self._startup_error
        return self

    def stop(self) -> None:
        """Stop serving; open connections (hung requests included) are closed. Idempotent."""
        thread, loop, stop_event = self._thread, self._loop, self._stop_event
        if thread is None or loop is None or stop_event is None:
            return
        if thread.is_alive():
            loop.call_soon_threadsafe(stop_event.set)
        thread.join(timeout=10)
        self._thread = None

    def reset_counters(self) -> None:
        """Zero the counters and forget seen requests (attempts start again at 0)."""
        self.counters.reset()

    def __enter__(self) -> FakeJudge:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as err:  # noqa: BLE001 - reported to start() in the caller's thread
            self._startup_error = err
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        handlers = _Handlers(self)
        runner = web.AppRunner(
            handlers.app(), access_log=None, handler_cancellation=True, shutdown_timeout=0.2
        )
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
            self.port = runner.addresses[0][1]
            self._ready.set()
            await self._stop_event.wait()
            handlers.cancel_all()  # close hung and sleeping requests now, not after a timeout
        finally:
            await runner.cleanup()


class _Handlers:
    """The aiohttp routes of one :class:`FakeJudge`."""

    def __init__(self, judge: FakeJudge) -> None:
        self.judge = judge
        self.tasks: set[asyncio.Task[Any]] = set()

    def cancel_all(self) -> None:
        for task in self.tasks:
            task.cancel()

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        for prefix in ("/v1", ""):
            app.router.add_post(f"{prefix}/chat/completions", self.chat)
            app.router.add_get(f"{prefix}/models", self.models)
        app.router.add_get("/health", self.health)
        app.router.add_get("/v1/counters", self.counters)
        app.router.add_post("/v1/counters/reset", self.reset)
        return app

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def models(self, request: web.Request) -> web.Response:
        model = {"id": self.judge.model_name, "object": "model", "created": 0, "owned_by": "fake"}
        return web.json_response({"object": "list", "data": [model]})

    async def counters(self, request: web.Request) -> web.Response:
        return web.json_response(self.judge.counters.snapshot())

    async def reset(self, request: web.Request) -> web.Response:
        self.judge.reset_counters()
        return web.json_response({"status": "reset"})

    async def chat(self, request: web.Request) -> web.StreamResponse:
        counters = self.judge.counters
        counters._arrive()
        task = asyncio.current_task()
        if task:
            self.tasks.add(task)
        answered = False
        try:
            response = await self._answer(request)
            answered = True
            return response
        finally:
            counters._leave(answered)
            if task:
                self.tasks.discard(task)

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        judge, counters = self.judge, self.judge.counters
        try:
            body = await request.json()
        except ValueError:
            body = None
        problem = _request_problem(body)
        if problem:
            counters._count("bad_request")
            return _error(400, problem, "invalid_request_error")
        chat = _chat_request(body, judge.model_name)
        chat.attempt = counters._register(chat.key, body)
        plan = judge.faults or _NO_FAULTS
        fault = plan.fault_for(chat.key, chat.attempt)
        if fault is None:
            await _sleep(judge.latency_s)
            return await self._respond(chat, request, count=True)
        counters._count(fault)
        return await self._inject(fault, chat, plan, request)

    async def _inject(
        self, fault: str, chat: ChatRequest, plan: FaultPlan, request: web.Request
    ) -> web.StreamResponse:
        if fault == "rate_limit":  # answered at once, as rate limiters do
            return _rate_limited(plan.retry_after_s)
        await _sleep(self.judge.latency_s)
        if fault == "server_error":
            return _error(500, "fake judge: injected server error", "server_error")
        if fault == "malformed":
            return web.Response(body=_MALFORMED_BODY, content_type="application/json")
        if fault == "garbage":
            return _completion(chat, Reply(plan.garbage_text))
        by_fault: dict[str, dict[str, Any]] = {
            "no_choices": {"no_choices": True},
            "empty_choices": {"empty_choices": True},
            "trickle": {"trickle_s": plan.trickle_byte_s},
            "oversize": {"size_bytes": plan.oversize_bytes},
        }
        changes = by_fault.get(fault, {})
        if not changes:
            await asyncio.sleep(plan.hang_s)  # "hang": then answer normally, if anyone listens
        return await self._respond(chat, request, count=False, changes=changes)

    async def _respond(
        self,
        chat: ChatRequest,
        request: web.Request,
        *,
        count: bool,
        changes: dict[str, Any] | None = None,
    ) -> web.StreamResponse:
        counters = self.judge.counters
        try:
            reply = _as_reply(self.judge.responder(chat))
        except Exception as err:  # noqa: BLE001 - a broken responder is reported, not fatal
            counters._count("responder_error")
            return _error(500, f"fake judge: the responder raised {err!r}", "server_error")
        if changes:
            reply = dataclasses.replace(reply, **changes)
        if count:
            counters._count(_kind_of(reply))
        await _sleep(reply.delay_s)
        if reply.hang:
            await asyncio.Event().wait()  # until the client disconnects or the server stops
        if reply.malformed:
            return web.Response(body=_MALFORMED_BODY, content_type="application/json")
        if reply.status >= 400:
            message = reply.content or f"fake judge: status {reply.status}"
            return _error(reply.status, message, "fake_error", reply.headers)
        answer = _completion(chat, reply)
        if reply.trickle_s > 0 or reply.chunked:
            return await _trickle(request, answer, reply.trickle_s, chunked=reply.chunked)
        return answer


# ---------------------------------------------------------------------------------------------
# Responders and answer shapes


def constant(reply: Reply | str) -> Responder:
    """A responder that gives every request the same answer."""
    return lambda request: reply


def scripted(replies: Sequence[Reply | str], *, per_request: bool = False) -> Responder:
    """A responder that cycles through ``replies``.

    Args:
        replies: Answers to give in turn.
        per_request: Index by each request's ``attempt`` instead of by global arrival order, so
            every distinct request replays the script (deterministic under concurrency).
    """
    if not replies:
        raise ValueError("scripted: give at least one reply")
    answers = list(replies)
    arrivals = itertools.count()

    def respond(request: ChatRequest) -> Reply | str:
        index = request.attempt if per_request else next(arrivals)
        return answers[index % len(answers)]

    return respond


def from_mapping(fn: Callable[[str], Reply | str]) -> Responder:
    """A responder that answers ``fn(last user message text)``."""
    return lambda request: fn(request.last_user_text)


def json_scores(
    fn: Callable[[ChatRequest], Mapping[str, Any]], shape: Callable[[str], str] | None = None
) -> Responder:
    """A responder whose content is ``json.dumps(fn(request))``, optionally wrapped by ``shape``.

    Example: ``json_scores(lambda r: {"helpfulness": 3}, shape=in_fence)``.
    """

    def respond(request: ChatRequest) -> str:
        content = json.dumps(dict(fn(request)))
        return shape(content) if shape else content

    return respond


def stable_scores(
    names: Sequence[str] = DEFAULT_SCORE_NAMES, low: int = 0, high: int = 4
) -> Callable[[ChatRequest], dict[str, int]]:
    """Scores in [low, high] for each name, derived from a hash of the last user message.

    The same message always gets the same scores, in any process (sha256, not ``hash()``).
    """
    if high < low:
        raise ValueError(f"stable_scores: high {high} is below low {low}")

    def scores(request: ChatRequest) -> dict[str, int]:
        text = request.last_user_text
        span = high - low + 1
        return {name: low + int(_unit_hash(f"{name}\0{text}") * span) for name in names}

    return scores


def in_fence(content: str) -> str:
    """``content`` inside a Markdown ```json fence, as chat models like to answer."""
    return f"```json\n{content}\n```"


def with_prose(content: str) -> str:
    """``content`` between a chatty preamble and sign-off."""
    return f"Here is my rating:\n\n{content}\n\nHope this helps!"


def with_think(content: str, thought: str | None = None) -> str:
    """``content`` after a ``<think>`` block, as reasoning models answer.

    The default thought mentions other numbers, so a parser that does not strip the block
    first reads the wrong score.
    """
    thought = thought or "The answer is decent; maybe a 1, maybe a 4. Let me settle on a score."
    return f"<think>\n{thought}\n</think>\n\n{content}"


def mixed_shape(content: str) -> str:
    """``content`` in one of the shapes above, chosen by a hash of ``content`` (stable)."""
    shapes = (str, in_fence, with_prose, with_think)
    return shapes[int(_unit_hash(f"shape\0{content}") * len(shapes))](content)


SHAPES: dict[str, Callable[[str], str]] = {
    "json": str,
    "fence": in_fence,
    "prose": with_prose,
    "think": with_think,
    "mixed": mixed_shape,
}
"""Answer shapes by name, for ``json_scores(..., shape=SHAPES[name])`` and the CLI's --shape."""


# ---------------------------------------------------------------------------------------------
# Logprobs

_TOKEN = re.compile(r"\d|[^\W\d]+|\s+|[^\w\s]")
_LN_CHOSEN, _LN_NEAR, _LN_FAR = math.log(0.7), math.log(0.2), math.log(0.1)


def synthesise_logprobs(content: str, top_n: int | None = None) -> list[dict[str, Any]]:
    """Deterministic OpenAI ``logprobs.content`` entries for ``content``.

    Tokens are single digits, letter runs, whitespace runs and single punctuation marks
    (``\\d|[^\\W\\d]+|\\s+|[^\\w\\s]``); they concatenate back to ``content``. Every token is
    chosen with probability 0.7 (its ``logprob`` and first ``top_logprobs`` entry are ln 0.7).
    A digit d also lists d+1 at ln 0.2 and d-1 at ln 0.1 (at the edges: 0 lists 1 and 2, 9 lists
    8 and 7), so for 1 <= d <= 8 the expected score is d + 0.1. ``top_n`` (the request's
    ``top_logprobs``) caps the alternatives listed; ``None`` lists them all.
    """
    entries = []
    for token in _TOKEN.findall(content):
        alternatives = [(token, _LN_CHOSEN)]
        if token.isdigit():
            d = int(token)
            near, far = (d + 1, d - 1) if 0 < d < 9 else ((1, 2) if d == 0 else (8, 7))
            alternatives += [(str(near), _LN_NEAR), (str(far), _LN_FAR)]
        if top_n is not None:
            alternatives = alternatives[:top_n]
        entries.append(
            {
                **_logprob(token, _LN_CHOSEN),
                "top_logprobs": [_logprob(t, lp) for t, lp in alternatives],
            }
        )
    return entries


def _logprob(token: str, logprob: float) -> dict[str, Any]:
    return {"token": token, "logprob": logprob, "bytes": list(token.encode())}


# ---------------------------------------------------------------------------------------------
# Request and response plumbing


def request_key(model: str, messages: Sequence[Mapping[str, Any]]) -> str:
    """The 16-hex-digit key identifying a request by model and messages (its retries share it)."""
    payload = json.dumps([model, messages], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _unit_hash(text: str) -> float:
    """A number in [0, 1) from sha256 of ``text``: stable across processes and runs."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / 2.0**64


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _request_problem(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "fake judge: the request body is not a JSON object"
    if body.get("stream"):
        return "fake judge: streaming is not supported; send 'stream': false (or omit it)"
    messages = body.get("messages")
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        return "fake judge: 'messages' must be a list of message objects"
    return None


def _chat_request(body: dict[str, Any], default_model: str) -> ChatRequest:
    model = str(body.get("model") or default_model)
    messages = body["messages"]
    params = {k: v for k, v in body.items() if k not in ("model", "messages")}
    return ChatRequest(model, messages, params, key=request_key(model, messages), body=body)


def _as_reply(answer: Reply | str) -> Reply:
    return answer if isinstance(answer, Reply) else Reply(content=answer)


def _kind_of(reply: Reply) -> str:
    if reply.hang:
        return "hang"
    if reply.malformed:
        return "malformed"
    for kind in ("no_choices", "empty_choices"):
        if getattr(reply, kind):
            return kind
    if reply.trickle_s > 0:
        return "trickle"
    if reply.size_bytes > 0:
        return "oversize"
    if reply.status == 429:
        return "rate_limit"
    if reply.status >= 500:
        return "server_error"
    return "client_error" if reply.status >= 400 else "ok"


async def _sleep(seconds: float) -> None:
    if seconds > 0:
        await asyncio.sleep(seconds)


def _error(
    status: int, message: str, kind: str, headers: Mapping[str, str] | None = None
) -> web.Response:
    body = {"error": {"message": message, "type": kind, "param": None, "code": str(status)}}
    return web.json_response(body, status=status, headers=headers)


def _rate_limited(retry_after_s: float) -> web.Response:
    seconds = f"{retry_after_s:g}"
    headers = {"Retry-After": seconds, "retry-after-ms": str(round(retry_after_s * 1000))}
    return _error(429, f"fake judge: rate limited; retry after {seconds} s", "requests", headers)


def _completion(chat: ChatRequest, reply: Reply) -> web.Response:
    content = reply.content
    choice: dict[str, Any] = {
        "index": 0,
        "message": {"role": "assistant", "content": content},
        "logprobs": None,
        "finish_reason": reply.finish_reason,
    }
    if reply.logprobs is not None:
        choice["logprobs"] = {"content": reply.logprobs}
    elif chat.params.get("logprobs") and content is not None:
        top_n = chat.params.get("top_logprobs")
        choice["logprobs"] = {"content": synthesise_logprobs(content, top_n)}
    prompt_words = sum(len(_text_of(m.get("content")).split()) for m in chat.messages)
    completion_words = len(content.split()) if content else 0
    usage = reply.usage or {
        "prompt_tokens": prompt_words,
        "completion_tokens": completion_words,
        "total_tokens": prompt_words + completion_words,
    }
    body: dict[str, Any] = {
        "id": f"chatcmpl-fake-{chat.key}-{chat.attempt}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": chat.model,
        "system_fingerprint": "fake-judge",
        "choices": [] if reply.empty_choices else [choice],
        "usage": usage,
    }
    if reply.no_choices:
        del body["choices"]
    short = reply.size_bytes - len(json.dumps(body))
    if short > 0 and content is not None and not (reply.no_choices or reply.empty_choices):
        choice["message"]["content"] = content + " " * short
    return web.json_response(body, headers=reply.headers)


async def _trickle(
    request: web.Request, answer: web.Response, pause_s: float, *, chunked: bool = False
) -> web.StreamResponse:
    """Send ``answer``'s body one byte at a time, ``pause_s`` apart, headers first; or, when
    ``chunked``, in 64 kB chunks with no Content-Length."""
    data = answer.body if isinstance(answer.body, bytes) else b""
    headers = {k: v for k, v in answer.headers.items() if k.lower() != "content-length"}
    stream = web.StreamResponse(status=answer.status, headers=headers)
    step = 64 * 1024 if chunked else 1
    if chunked:
        stream.enable_chunked_encoding()
    else:
        stream.content_length = len(data)
    await stream.prepare(request)
    for i in range(0, len(data), step):
        await stream.write(data[i : i + step])
        await _sleep(pause_s)
    await stream.write_eof()
    return stream
