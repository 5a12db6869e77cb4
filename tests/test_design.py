"""The request design: example ``i`` is request ``i``, or ``2i`` and ``2i + 1`` (swapped) with
``judge.swap``; responses go back to rows in each order; reused rows send nothing."""

from __future__ import annotations

import pytest

from judgekit.config.compose import compose_config, to_config
from judgekit.data.loading import Example
from judgekit.design import (
    build_requests,
    draw_index,
    one_draw,
    per_example,
    render_all,
    row_of,
    sample_of,
    split_orders,
    split_samples,
    swaps,
)
from judgekit.errors import ConfigError, TemplateError

PAIRS = [
    Example(id=f"p{i}", item={"prompt": f"q{i}", "response_a": f"A{i}", "response_b": f"B{i}"})
    for i in range(3)
]
SINGLES = [Example(id=f"s{i}", item={"prompt": f"q{i}", "response": f"r{i}"}) for i in range(3)]


def _pairwise(*overrides: str):  # noqa: ANN202
    return to_config(compose_config(["prompt=pairwise_v1", "score=preference", *overrides]))


def _text(messages: list[dict[str, str]]) -> str:
    return "\n".join(m["content"] for m in messages)


def test_without_swap_example_i_is_request_i() -> None:
    cfg = to_config(compose_config(["prompt=v1", "score=helpfulness"]))
    requests = list(build_requests(SINGLES, cfg.prompt, cfg.score, swap=False))
    assert [(r.index, r.example_id) for r in requests] == [(0, "s0"), (1, "s1"), (2, "s2")]
    assert [row_of(r.index, False) for r in requests] == [0, 1, 2]
    assert per_example(False) == 1


def test_with_swap_example_i_is_requests_2i_and_2i_plus_1_swapped() -> None:
    cfg = _pairwise("judge.swap=true")
    assert swaps(cfg)
    requests = list(build_requests(PAIRS, cfg.prompt, cfg.score, swap=True))
    assert [(r.index, r.example_id) for r in requests] == [
        (0, "p0"), (1, "p0"), (2, "p1"), (3, "p1"), (4, "p2"), (5, "p2"),
    ]  # fmt: skip
    assert [row_of(r.index, True) for r in requests] == [0, 0, 1, 1, 2, 2]
    assert per_example(True) == 2
    given, swapped = _text(requests[2].messages), _text(requests[3].messages)
    assert given.index("A1") < given.index("B1")  # as given: A first
    assert swapped.index("B1") < swapped.index("A1")  # swapped: B shown as response A


def test_reused_rows_send_no_request() -> None:
    cfg = _pairwise("judge.swap=true")
    requests = build_requests(PAIRS, cfg.prompt, cfg.score, swap=True, skip={1})
    assert [r.index for r in requests] == [0, 1, 4, 5]
    plain = to_config(compose_config(["prompt=v1", "score=helpfulness"]))
    requests = build_requests(SINGLES, plain.prompt, plain.score, swap=False, skip={0, 2})
    assert [r.index for r in requests] == [1]


def test_split_orders_maps_request_indexes_back_to_rows() -> None:
    responses = {0: "a0", 1: "b0", 4: "a2", 5: "b2"}  # row 1 was never answered
    assert split_orders(responses, swap=True) == ({0: "a0", 2: "a2"}, {0: "b0", 2: "b2"})
    assert split_orders({0: "x", 2: "z"}, swap=False) == ({0: "x", 2: "z"}, None)


def test_build_and_split_round_trip() -> None:
    cfg = _pairwise("judge.swap=true")
    requests = list(build_requests(PAIRS, cfg.prompt, cfg.score, swap=True))
    responses = {r.index: _text(r.messages) for r in requests}
    given, swapped = split_orders(responses, swap=True)
    assert swapped is not None
    for row in range(len(PAIRS)):
        assert given[row].index(f"A{row}") < given[row].index(f"B{row}")
        assert swapped[row].index(f"B{row}") < swapped[row].index(f"A{row}")


def test_render_all_fails_on_a_row_in_the_swapped_order_too() -> None:
    cfg = _pairwise("judge.swap=true")
    render_all(PAIRS, cfg.prompt, cfg.score, swap=True)
    lacking = [*PAIRS, Example(id="x", item={"prompt": "q", "response_a": "A"})]
    with pytest.raises(TemplateError):
        render_all(lacking, cfg.prompt, cfg.score, swap=True)


def test_swaps_is_false_without_judge_swap() -> None:
    assert not swaps(_pairwise())
    assert not swaps(to_config(compose_config(["prompt=v1"])))


def test_swaps_still_refuses_a_config_changed_after_it_was_composed() -> None:
    cfg = to_config(compose_config(["prompt=v1"]))
    cfg.judge.swap = True  # set on the object, past the compose-time check
    with pytest.raises(ConfigError, match="judge.swap: true needs a preference score"):
        swaps(cfg)


def test_samples_repeat_each_order_after_the_indexes_of_draw_zero() -> None:
    # k = 3 draws with swap: example i holds 6 requests, n·i + 2·s + order (n = 2 · 3).
    cfg = _pairwise("judge.swap=true")
    requests = list(build_requests(PAIRS[:2], cfg.prompt, cfg.score, swap=True, samples=3))
    assert [(r.index, r.example_id, r.sample) for r in requests] == [
        (0, "p0", 0), (1, "p0", 0), (2, "p0", 1), (3, "p0", 1), (4, "p0", 2), (5, "p0", 2),
        (6, "p1", 0), (7, "p1", 0), (8, "p1", 1), (9, "p1", 1), (10, "p1", 2), (11, "p1", 2),
    ]  # fmt: skip
    assert [row_of(r.index, True, 3) for r in requests] == [0] * 6 + [1] * 6
    assert [sample_of(r.index, True, 3) for r in requests] == [0, 0, 1, 1, 2, 2] * 2
    assert [draw_index(r.index, True, 3) for r in requests] == [0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3]
    assert requests[2].messages == requests[0].messages  # a draw repeats its order's messages
    assert requests[3].messages == requests[1].messages
    assert per_example(True, 3) == 6


def test_one_sample_is_the_design_without_repeats() -> None:
    plain = to_config(compose_config(["prompt=v1", "score=helpfulness"]))
    once = list(build_requests(SINGLES, plain.prompt, plain.score, swap=False, samples=1))
    assert [(r.index, r.sample) for r in once] == [(0, 0), (1, 0), (2, 0)]
    assert split_samples({0: "a", 2: "c"}, swap=False, samples=1) == [({0: "a", 2: "c"}, None)]


def test_split_samples_gives_each_draw_by_row_in_each_order() -> None:
    responses = {i: f"r{i}" for i in range(12) if i != 9}  # 2 pairs × 3 draws × 2 orders
    draws = split_samples(responses, swap=True, samples=3)
    assert draws[0] == ({0: "r0", 1: "r6"}, {0: "r1", 1: "r7"})
    assert draws[1] == (
        {0: "r2", 1: "r8"},
        {0: "r3"},
    )  # request 9 (pair 1, draw 1, swapped) missing
    assert draws[2] == ({0: "r4", 1: "r10"}, {0: "r5", 1: "r11"})
    assert one_draw(responses, swap=True, samples=3, sample=2) == {
        0: "r4",
        1: "r5",
        2: "r10",
        3: "r11",
    }
