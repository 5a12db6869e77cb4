"""How an example becomes judge requests and back: one request, the pair in both orders, and
``runner.samples`` draws of each.

With ``judge.swap`` and a preference score, example ``i`` is judged as request ``2i`` (as given)
and ``2i + 1`` (``response_a`` and ``response_b`` exchanged); everything else is one request per
example. With ``runner.samples = k`` every (example, order) is asked ``k`` times: example ``i``
has the requests ``n·i + o + orders·s`` for order ``o`` and draw ``s`` (``n = orders · k``), so
draw 0 keeps the indexes of a run without repeats. This module is the only one that knows those
indexes.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import replace
from typing import TypeVar

from judgekit.config import Config
from judgekit.config.schema import PromptConfig, ScoreSchemaConfig, swap_needs_preference
from judgekit.errors import ConfigError, TemplateError
from judgekit.prompts.render import render
from judgekit.records import Example, JudgeRequest

__all__ = [
    "build_requests",
    "draw_index",
    "one_draw",
    "orders",
    "per_example",
    "render_all",
    "row_of",
    "sample_of",
    "split_orders",
    "split_samples",
    "swapped_example",
    "swaps",
]

R = TypeVar("R")


def swaps(cfg: Config) -> bool:
    """True when every pair is judged in both orders (``judge.swap`` with a preference score).

    A pure predicate: ``judge.swap`` without a preference score fails when the config is composed
    (:class:`judgekit.config.schema.Config`); a config built some other way still fails here.
    """
    if not cfg.judge.swap:
        return False
    if not any(spec.kind == "preference" for spec in cfg.score.scores):
        raise ConfigError(swap_needs_preference(cfg.score.name))
    return True


def swapped_example(example: Example) -> Example:
    """The same pair with ``item.response_a`` and ``item.response_b`` exchanged."""
    item = example.item
    if "response_a" not in item or "response_b" not in item:
        raise TemplateError(
            "judge.swap: the data has no item.response_a/item.response_b to swap; map them with "
            "dataset.fields.extra.response_a=<column> and dataset.fields.extra.response_b=<column>"
        )
    swapped = {**item, "response_a": item["response_b"], "response_b": item["response_a"]}
    return replace(example, item=swapped)


def per_example(swap: bool, samples: int = 1) -> int:
    """How many requests judge one example: two orders with swap (else one), times the draws."""
    return (2 if swap else 1) * samples


def row_of(request_index: int, swap: bool, samples: int = 1) -> int:
    """The example (row) index a request index belongs to."""
    return request_index // per_example(swap, samples)


def sample_of(request_index: int, swap: bool, samples: int = 1) -> int:
    """The draw (0 .. samples - 1) a request index belongs to."""
    return request_index % per_example(swap, samples) // per_example(swap)


def orders(example: Example, swap: bool) -> Iterator[Example]:
    """The example as each of its requests shows it: as given, then swapped with ``swap``."""
    yield example
    if swap:
        yield swapped_example(example)


def build_requests(
    examples: list[Example],
    prompt: PromptConfig,
    score: ScoreSchemaConfig,
    *,
    swap: bool,
    skip: Collection[int] = (),
    samples: int = 1,
) -> Iterator[JudgeRequest]:
    """The requests of every example not in ``skip`` (reused rows), rendered one at a time.

    Example ``i`` is request ``i``, or requests ``2i`` and ``2i + 1`` (swapped) with ``swap``;
    with ``samples = k`` each of those is followed by its draws 1 .. k - 1 (same messages,
    ``JudgeRequest.sample`` set, index ``+ orders · s``).
    """
    n, width = per_example(swap, samples), per_example(swap)
    for index, example in enumerate(examples):
        if index in skip:
            continue
        shown = [render(prompt, e, score) for e in orders(example, swap)]
        for sample in range(samples):
            for order, messages in enumerate(shown):
                request = n * index + width * sample + order
                yield JudgeRequest(request, example.id, messages, sample=sample)


def render_all(
    examples: list[Example], prompt: PromptConfig, score: ScoreSchemaConfig, *, swap: bool
) -> None:
    """Render every request once and keep none of them: a template that fails on any row (in
    either order with ``swap``) fails here, before the first judge call, in little memory."""
    for example in examples:
        for shown in orders(example, swap):
            render(prompt, shown, score)


def split_orders(
    responses: dict[int, R], *, swap: bool
) -> tuple[dict[int, R], dict[int, R] | None]:
    """Responses by request index → (by row in the given order, by row swapped or None)."""
    if not swap:
        return dict(responses), None
    first = {i // 2: r for i, r in responses.items() if i % 2 == 0}
    second = {i // 2: r for i, r in responses.items() if i % 2 == 1}
    return first, second


def draw_index(request_index: int, swap: bool, samples: int) -> int:
    """A request's index in a run without repeats (the same example and order)."""
    n, width = per_example(swap, samples), per_example(swap)
    return width * (request_index // n) + request_index % width


def one_draw(responses: dict[int, R], *, swap: bool, samples: int, sample: int) -> dict[int, R]:
    """Draw ``sample``'s responses, indexed as in a run without repeats."""
    return {
        draw_index(i, swap, samples): r
        for i, r in responses.items()
        if sample_of(i, swap, samples) == sample
    }


def split_samples(
    responses: dict[int, R], *, swap: bool, samples: int
) -> list[tuple[dict[int, R], dict[int, R] | None]]:
    """Responses by request index → per draw, :func:`split_orders` of that draw's responses
    (by row), so draw ``s`` reads as a run without repeats."""
    return [
        split_orders(one_draw(responses, swap=swap, samples=samples, sample=s), swap=swap)
        for s in range(samples)
    ]
