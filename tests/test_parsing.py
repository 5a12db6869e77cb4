"""Tests for judgekit.parsing: a table of real judge output shapes, then each step on its own."""

from __future__ import annotations

import dataclasses
import math
from types import SimpleNamespace
from typing import Any

import pytest

from judgekit import parsing
from judgekit.config.schema import HELPSTEER2_SCORES, ParserConfig, RubricLabel, ScoreSpec
from judgekit.errors import ConfigError
from judgekit.parsing import (
    FAILURE_REASONS,
    ParsedScore,
    expected_score_from_logprobs,
    find_json_object,
    parse_scores,
    strip_reasoning,
)

HELPFULNESS = [ScoreSpec(name="helpfulness", minimum=0, maximum=4)]
HELPSTEER2 = [ScoreSpec(name=name, minimum=0, maximum=4) for name in HELPSTEER2_SCORES]
NESTED = [
    ScoreSpec(
        name="helpfulness",
        minimum=0,
        maximum=4,
        parser=ParserConfig(json_path="scores.helpfulness"),
    )
]
SENTIMENT = [ScoreSpec(name="sentiment", minimum=-2, maximum=2)]
VERDICT = [
    ScoreSpec(
        name="verdict",
        labels={
            "good": RubricLabel(value=2),
            "acceptable": RubricLabel(value=1),
            "poor": RubricLabel(value=0),
        },
    )
]
MT_BENCH_PATTERN = r"rating:\s*\[\[(\d+)\]\]"
RATING = [
    ScoreSpec(
        name="rating",
        minimum=1,
        maximum=10,
        parser=ParserConfig(kind="regex", pattern=MT_BENCH_PATTERN),
    )
]

ALL_FOUR = {"helpfulness": 4, "correctness": 4, "coherence": 4, "complexity": 2, "verbosity": 1}


def shape(case_id: str, text: str | None, specs: list[ScoreSpec], expected: Any) -> Any:
    """One row of the table; ``expected`` is a value, a failure reason, or name -> either."""
    if not isinstance(expected, dict):
        expected = {specs[0].name: expected}
    return pytest.param(text, specs, expected, id=case_id)


SHAPES = [
    # --- where the object is ---------------------------------------------------------------
    shape("bare_json", '{"helpfulness": 3}', HELPFULNESS, 3),
    shape(
        "bare_json_reason_first",
        '{"reason": "Accurate and complete.", "helpfulness": 4}',
        HELPFULNESS,
        4,
    ),
    shape("json_fence", '```json\n{\n  "helpfulness": 2\n}\n```', HELPFULNESS, 2),
    shape("fence_without_language", '```\n{"helpfulness": 1}\n```', HELPFULNESS, 1),
    shape("fence_on_one_line", '```json {"helpfulness": 1}```', HELPFULNESS, 1),
    shape(
        "prose_before",
        'Here is my evaluation of the response:\n\n{"helpfulness": 3}',
        HELPFULNESS,
        3,
    ),
    shape(
        "prose_after_with_braces",
        '{"helpfulness": 3}\n\nThe response misses {edge cases} such as empty input.',
        HELPFULNESS,
        3,
    ),
    shape(
        "prose_around_fence",
        'Sure! Here is the JSON:\n```json\n{"helpfulness": 2, "reason": "vague"}\n```\n'
        "Let me know if you need anything else.",
        HELPFULNESS,
        2,
    ),
    shape(
        "braces_and_quotes_inside_strings",
        '{"reason": "uses {curly} braces and \\"quotes\\" }", "helpfulness": 2}',
        HELPFULNESS,
        2,
    ),
    shape(
        "escaped_backslash_before_quote",
        '{"reason": "saved to C:\\\\", "helpfulness": 2}',
        HELPFULNESS,
        2,
    ),
    shape(
        "degenerate_brace_loop_then_answer",
        "{" * 500 + '\n{"helpfulness": 1}',
        HELPFULNESS,
        1,
    ),
    shape(
        "unicode_around",
        '评估：回复很有帮助 👍\n{"helpfulness": 4, "reason": "Très utile — «clair» ✓"}\n谢谢',
        HELPFULNESS,
        4,
    ),
    # --- reasoning models ------------------------------------------------------------------
    shape(
        "think_with_braces_inside",
        '<think>\nThe format is {"helpfulness": 0}. It is good, so {maybe 4}?\n</think>\n'
        '{"helpfulness": 4}',
        HELPFULNESS,
        4,
    ),
    shape(
        "object_only_inside_think",
        '<think>I lean to {"helpfulness": 2}</think>\nThe response is fine.',
        HELPFULNESS,
        "parse_error",
    ),
    shape(
        "unclosed_think",
        '<think>\nThe response is mostly correct. I would give {"helpfulness": 3',
        HELPFULNESS,
        "parse_error",
    ),
    shape(
        "deepseek_bare_closing_tag",
        'Okay, the format is {"helpfulness": 0}.\n</think>\n\n{"helpfulness": 2}',
        HELPFULNESS,
        2,
    ),
    shape("qwen3_empty_think", '<think>\n\n</think>\n\n{"helpfulness": 3}', HELPFULNESS, 3),
    shape("thinking_tag", '<thinking>hmm</thinking>{"helpfulness": 1}', HELPFULNESS, 1),
    shape("nothing_after_think", "<think>It is a 3.</think>\n", HELPFULNESS, "parse_error"),
    # --- several objects -------------------------------------------------------------------
    shape(
        "example_restated_then_answer",
        'Use this format: {"helpfulness": 0, "reason": "..."}\n'
        'My answer: {"helpfulness": 3, "reason": "clear"}',
        HELPFULNESS,
        3,
    ),
    shape(
        "answer_then_unrelated_object",
        '{"helpfulness": 3}\n\nMetadata: {"model": "judge", "version": 2}',
        HELPFULNESS,
        3,
    ),
    shape(
        "fenced_answer_beats_later_example",
        '```json\n{"helpfulness": 2}\n```\nThe schema was {"helpfulness": 0}.',
        HELPFULNESS,
        2,
    ),
    shape(
        "placeholder_example_only",
        'Respond as {"helpfulness": <0-4>}',
        HELPFULNESS,
        "parse_error",
    ),
    # --- object syntax ---------------------------------------------------------------------
    shape("trailing_comma_tolerated", '{"helpfulness": 3,}', HELPFULNESS, 3),
    shape(
        "trailing_commas_nested_in_fence",
        '```json\n{\n  "scores": {"helpfulness": 1,},\n  "tags": ["a", "b",],\n}\n```',
        NESTED,
        1,
    ),
    shape(
        "python_dict_single_quotes",
        "{'helpfulness': 3, 'reason': 'it\\'s fine'}",
        HELPFULNESS,
        3,
    ),
    shape(
        "truncated_object",
        '{"helpfulness": 3, "reason": "The response',
        HELPFULNESS,
        "parse_error",
    ),
    shape("no_json_at_all", "The response is helpful. Score: 3", HELPFULNESS, "parse_error"),
    # --- keys ------------------------------------------------------------------------------
    shape(
        "nested_path",
        '{"scores": {"helpfulness": 3, "correctness": 4}, "reason": "ok"}',
        NESTED,
        3,
    ),
    shape("nested_path_missing", '{"scores": {"correctness": 4}}', NESTED, "missing_key"),
    shape("nested_path_not_an_object", '{"scores": 3}', NESTED, "missing_key"),
    shape("flat_key_containing_dot", '{"scores.helpfulness": 2}', NESTED, 2),
    shape("missing_key", '{"score": 3, "reason": "good"}', HELPFULNESS, "missing_key"),
    shape("key_in_other_case", '{"Helpfulness": 3}', HELPFULNESS, 3),
    shape("key_case_ambiguous", '{"Helpfulness": 3, "HELPFULNESS": 1}', HELPFULNESS, "missing_key"),
    # --- values ----------------------------------------------------------------------------
    shape("number_as_string", '{"helpfulness": "3"}', HELPFULNESS, 3),
    shape("number_as_padded_string", '{"helpfulness": " 3 "}', HELPFULNESS, 3),
    shape("float_as_string", '{"helpfulness": "3.0"}', HELPFULNESS, 3),
    shape("float_within_range", '{"helpfulness": 2.5}', HELPFULNESS, 2.5),
    shape("fraction_of_maximum", '{"helpfulness": "3/4"}', HELPFULNESS, 3),
    shape("fraction_other_denominator", '{"helpfulness": "3/5"}', HELPFULNESS, "parse_error"),
    shape("fraction_of_ten", '{"helpfulness": "8/10"}', HELPFULNESS, "parse_error"),
    shape("above_maximum", '{"helpfulness": 5}', HELPFULNESS, "out_of_range"),
    shape("below_minimum", '{"helpfulness": -1}', HELPFULNESS, "out_of_range"),
    shape("negative_in_range", '{"sentiment": -2}', SENTIMENT, -2),
    shape("negative_as_string", '{"sentiment": "-1"}', SENTIMENT, -1),
    shape("boolean", '{"helpfulness": true}', HELPFULNESS, "parse_error"),
    shape("python_boolean", "{'helpfulness': False}", HELPFULNESS, "parse_error"),
    shape("null", '{"helpfulness": null}', HELPFULNESS, "parse_error"),
    shape("word", '{"helpfulness": "high"}', HELPFULNESS, "parse_error"),
    shape("list", '{"helpfulness": [3]}', HELPFULNESS, "parse_error"),
    shape("nan_literal", '{"helpfulness": NaN}', HELPFULNESS, "parse_error"),
    shape("nan_string", '{"helpfulness": "nan"}', HELPFULNESS, "parse_error"),
    # --- several scores --------------------------------------------------------------------
    shape(
        "helpsteer2_all_five",
        '{"helpfulness": 4, "correctness": 4, "coherence": 4, "complexity": 2, "verbosity": 1}',
        HELPSTEER2,
        ALL_FOUR,
    ),
    shape(
        "helpsteer2_one_out_of_range",
        '```json\n{"helpfulness": 3, "correctness": "4", "coherence": 4, "complexity": 2, '
        '"verbosity": 7}\n```',
        HELPSTEER2,
        {**ALL_FOUR, "helpfulness": 3, "verbosity": "out_of_range"},
    ),
    shape(
        "helpsteer2_one_missing",
        '{"helpfulness": 4, "correctness": 4, "coherence": 4, "complexity": 2}',
        HELPSTEER2,
        {**ALL_FOUR, "verbosity": "missing_key"},
    ),
    shape(
        "helpsteer2_empty",
        "",
        HELPSTEER2,
        dict.fromkeys(HELPSTEER2_SCORES, "empty_response"),
    ),
    # --- rubric labels ---------------------------------------------------------------------
    shape("label", '{"verdict": "Good"}', VERDICT, 2),
    shape("label_padded_lowercase", '{"verdict": " poor "}', VERDICT, 0),
    shape("label_value_as_number", '{"verdict": 1}', VERDICT, 1),
    shape("label_value_as_string", '{"verdict": "1"}', VERDICT, 1),
    shape("label_unknown", '{"verdict": "excellent"}', VERDICT, "invalid_label"),
    shape("label_number_not_a_value", '{"verdict": 5}', VERDICT, "invalid_label"),
    shape("label_boolean", '{"verdict": true}', VERDICT, "parse_error"),
    # --- regex parser ----------------------------------------------------------------------
    shape(
        "regex_mt_bench",
        "The assistant's answer is accurate and well organised.\n\nRating: [[8]]",
        RATING,
        8,
    ),
    shape("regex_after_think", "<think>Rating: [[2]]?</think>\nRating: [[7]]", RATING, 7),
    shape("regex_no_match", "I'd give it eight out of ten.", RATING, "parse_error"),
    shape("regex_out_of_range", "Rating: [[11]]", RATING, "out_of_range"),
    # --- nothing to read -------------------------------------------------------------------
    shape("empty_text", "", HELPFULNESS, "empty_response"),
    shape("whitespace_only", "  \n\t ", HELPFULNESS, "empty_response"),
    shape("none", None, HELPFULNESS, "empty_response"),
]


@pytest.mark.parametrize(("text", "specs", "expected"), SHAPES)
def test_parse_scores_reads_real_output_shapes(
    text: str | None, specs: list[ScoreSpec], expected: dict[str, float | str]
) -> None:
    parsed = parse_scores(text, specs)

    assert list(parsed) == [spec.name for spec in specs]
    for name, want in expected.items():
        got = parsed[name]
        if isinstance(want, str):
            assert math.isnan(got.value), f"{name}: a failure must be NaN, got {got.value}"
            assert got.failure == want, got.detail
            assert got.detail, "a failure must say why"
            assert not got.ok
        else:
            assert got == ParsedScore(float(want)), got.detail
            assert got.ok


@pytest.mark.parametrize(
    ("text", "specs", "fragments"),
    [
        pytest.param(
            '{"score": 3, "reason": "good"}',
            HELPFULNESS,
            ["'helpfulness' not found", "keys present: score, reason"],
            id="missing_key_lists_keys",
        ),
        pytest.param(
            '{"scores": {"correctness": 4}}',
            NESTED,
            ["'scores.helpfulness' not found", "keys present in 'scores': correctness"],
            id="nested_missing_key_lists_keys_of_its_level",
        ),
        pytest.param(
            '{"scores": 3}', NESTED, ["'scores' holds a number"], id="path_through_number"
        ),
        pytest.param("{}", HELPFULNESS, ["keys present: (none)"], id="empty_object"),
        pytest.param(
            '{"helpfulness": 5}', HELPFULNESS, ["5", "[0, 4]"], id="out_of_range_names_value"
        ),
        pytest.param(
            '{"helpfulness": -1.5}', HELPFULNESS, ["-1.5"], id="out_of_range_keeps_fraction"
        ),
        pytest.param(
            '{"verdict": "excellent"}',
            VERDICT,
            ["'excellent'", "good, acceptable, poor", "2, 1, 0"],
            id="invalid_label_names_labels",
        ),
        pytest.param("Eight.", RATING, [MT_BENCH_PATTERN], id="regex_names_pattern"),
        pytest.param(
            '{"helpfulness": "3/5"}', HELPFULNESS, ["'3/5'", "ambiguous", "4"], id="fraction"
        ),
        pytest.param('{"helpfulness": true}', HELPFULNESS, ["true", "boolean"], id="boolean"),
        pytest.param("<think>so", HELPFULNESS, ["<think>", "max_tokens"], id="unclosed_think"),
        pytest.param(
            "I think it deserves a three.",
            HELPFULNESS,
            ["no JSON object", "I think it deserves"],
            id="no_json_quotes_the_answer",
        ),
        pytest.param(None, HELPFULNESS, ["no text"], id="none"),
    ],
)
def test_failure_detail_names_the_cause(
    text: str | None, specs: list[ScoreSpec], fragments: list[str]
) -> None:
    (result,) = parse_scores(text, specs).values()

    for fragment in fragments:
        assert fragment in result.detail


def test_json_and_regex_scores_read_from_one_answer() -> None:
    answer = 'Rating: [[9]]\n{"helpfulness": 2}'

    parsed = parse_scores(answer, HELPFULNESS + RATING)

    assert parsed == {"helpfulness": ParsedScore(2.0), "rating": ParsedScore(9.0)}


def digit_score(pattern: str) -> ScoreSpec:
    """A 0..9 score read with a regular expression."""
    return ScoreSpec(
        name="s", minimum=0, maximum=9, parser=ParserConfig(kind="regex", pattern=pattern)
    )


def test_regex_without_group_uses_the_whole_match() -> None:
    spec = digit_score(r"\d")

    assert parse_scores("score 7", [spec])["s"] == ParsedScore(7.0)


def test_invalid_regex_is_a_config_error_before_any_call() -> None:
    # The schema refuses the pattern when it is built, so no judge call is ever made with it.
    with pytest.raises(ConfigError, match=r"score parser pattern '\(\[':"):
        digit_score("([")


def test_parsed_score_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        ParsedScore(3.0).value = 4.0  # type: ignore[misc]


def test_failure_reasons() -> None:
    assert FAILURE_REASONS == (
        "parse_error",
        "missing_key",
        "out_of_range",
        "invalid_label",
        "empty_response",
    )


def test_public_api() -> None:
    assert sorted(parsing.__all__) == [
        "FAILURE_REASONS",
        "ParsedScore",
        "expected_score_from_logprobs",
        "find_json_object",
        "level_probabilities_from_logprobs",
        "parse_scores",
        "strip_reasoning",
    ]


# --- strip_reasoning and find_json_object ---------------------------------------------------


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        pytest.param("no reasoning", "no reasoning", id="plain"),
        pytest.param("<think>a {b}</think>\n answer ", "answer", id="closed_block"),
        pytest.param("<THINK>a</THINK>answer", "answer", id="upper_case"),
        pytest.param("<think>a</think>x<think>b</think>y", "xy", id="two_blocks"),
        pytest.param("reasoning\n</think>\nanswer", "answer", id="bare_closing_tag"),
        pytest.param("<think>never closed", "", id="unclosed_leading"),
        pytest.param("answer <think>second thoughts", "answer", id="unclosed_after_answer"),
        pytest.param("<think>a</think><think>cut off", "", id="closed_then_unclosed"),
    ],
)
def test_strip_reasoning(text: str, answer: str) -> None:
    assert strip_reasoning(text) == answer


def test_find_json_object_prefers_last_object_holding_a_key() -> None:
    text = '{"helpfulness": 1} then {"helpfulness": 3} then {"other": 0}'

    assert find_json_object(text, ["helpfulness"]) == {"helpfulness": 3}
    assert find_json_object(text) == {"other": 0}


def test_find_json_object_resolves_dotted_keys() -> None:
    text = '{"scores": {"helpfulness": 2}} and {"helpfulness": 4}'

    assert find_json_object(text, ["scores.helpfulness"]) == {"scores": {"helpfulness": 2}}


def test_find_json_object_keeps_outer_object_with_nested_ones() -> None:
    assert find_json_object('x {"a": {"b": 1}} y') == {"a": {"b": 1}}


@pytest.mark.parametrize(
    "text",
    ["", "no braces", "{not json}", '{"a": 1', "{1, 2}", "{'a': __import__('os').getcwd()}"],
)
def test_find_json_object_returns_none_without_an_object(text: str) -> None:
    assert find_json_object(text) is None


def test_find_json_object_takes_inner_object_when_outer_braces_are_prose() -> None:
    assert find_json_object('{Answer: {"helpfulness": 2}}') == {"helpfulness": 2}


# --- expected_score_from_logprobs -----------------------------------------------------------


def token(text: str, alternatives: dict[str, float] | None = None) -> dict[str, Any]:
    """One logprobs item; ``alternatives`` maps tokens to probabilities, the first is chosen."""
    alternatives = alternatives or {text: 1.0}
    top = [{"token": t, "logprob": math.log(p)} for t, p in alternatives.items()]
    return {"token": text, "logprob": top[0]["logprob"], "top_logprobs": top}


def json_answer(value: dict[str, float], key: str = "helpfulness") -> list[dict[str, Any]]:
    """Tokens of ``{"<key>": <value>}`` where the value token has the given alternatives."""
    first = next(iter(value))
    return [token('{"'), token(key), token('":'), token(" "), token(first, value), token("}")]


SCORE_0_TO_4 = ScoreSpec(name="helpfulness", minimum=0, maximum=4)


def test_expected_score_weighs_digit_alternatives() -> None:
    # p(3)=0.6, p(4)=0.3, p(2)=0.1 -> 3*0.6 + 4*0.3 + 2*0.1 = 1.8 + 1.2 + 0.2 = 3.2
    content = json_answer({"3": 0.6, "4": 0.3, "2": 0.1})

    assert expected_score_from_logprobs(content, SCORE_0_TO_4) == pytest.approx(3.2, abs=1e-9)


def test_expected_score_renormalises_over_digits_in_range() -> None:
    # digits in 0..4: p(3)=0.5, p(4)=0.25; " " and "9" are dropped.
    # (3*0.5 + 4*0.25) / (0.5 + 0.25) = 2.5 / 0.75 = 3.3333...
    content = json_answer({"3": 0.5, "4": 0.25, " ": 0.15, "9": 0.1})

    assert expected_score_from_logprobs(content, SCORE_0_TO_4) == pytest.approx(10 / 3, abs=1e-9)


def test_expected_score_adds_tokens_spelling_the_same_number() -> None:
    # "2" and " 2" are both 2: p(2)=0.2+0.2=0.4, p(3)=0.6 -> 0.8 + 1.8 = 2.6
    content = json_answer({"3": 0.6, "2": 0.2, " 2": 0.2})

    assert expected_score_from_logprobs(content, SCORE_0_TO_4) == pytest.approx(2.6, abs=1e-9)


def test_expected_score_skips_reasoning_and_earlier_examples() -> None:
    # the think block and the restated example both hold a "helpfulness" value; only the
    # answer's token counts: p(1)=0.5, p(2)=0.5 -> 1.5
    content = [
        token("<think>"),
        token('{"helpfulness": 4}'),
        token("</think>"),
        token('Format: {"helpfulness": 0}. Answer: '),
        *json_answer({"1": 0.5, "2": 0.5}),
    ]

    assert expected_score_from_logprobs(content, SCORE_0_TO_4) == pytest.approx(1.5, abs=1e-9)


def test_expected_score_reads_a_string_value_and_objects() -> None:
    # '"3' is the value token of {"helpfulness": "3"}; p(3)=0.75, p(4)=0.25 -> 2.25 + 1 = 3.25
    items = [token('{"helpfulness": '), token('"3', {'"3': 0.75, '"4': 0.25}), token('"}')]
    as_objects = [
        SimpleNamespace(
            token=item["token"],
            logprob=item["logprob"],
            top_logprobs=[SimpleNamespace(**alt) for alt in item["top_logprobs"]],
        )
        for item in items
    ]

    assert expected_score_from_logprobs(as_objects, SCORE_0_TO_4) == pytest.approx(3.25, abs=1e-9)


def test_expected_score_with_regex_parser() -> None:
    # p(8)=0.5, p(9)=0.5 -> 8.5
    content = [token("Rating: [["), token("8", {"8": 0.5, "9": 0.5}), token("]]")]

    assert expected_score_from_logprobs(content, RATING[0]) == pytest.approx(8.5, abs=1e-9)


@pytest.mark.parametrize(
    ("content", "spec"),
    [
        pytest.param([], SCORE_0_TO_4, id="no_logprobs"),
        pytest.param(json_answer({"1": 1.0}, key="verdict"), VERDICT[0], id="rubric"),
        pytest.param(
            json_answer({"1": 1.0}),
            ScoreSpec(name="helpfulness", minimum=0, maximum=1.5),
            id="non_integer_scale",
        ),
        pytest.param(json_answer({"3": 1.0}, key="score"), SCORE_0_TO_4, id="key_absent"),
        pytest.param(json_answer({"7": 1.0}), SCORE_0_TO_4, id="value_out_of_range"),
        pytest.param(
            [token('{"rating": '), token("1"), token("0"), token("}")],
            ScoreSpec(name="rating", minimum=1, maximum=10),
            id="value_split_over_tokens",
        ),
        pytest.param(
            [token('{"helpfulness": '), token("3"), token(".5}")], SCORE_0_TO_4, id="float_value"
        ),
        pytest.param([token("<think>"), token('{"helpfulness": 3}')], SCORE_0_TO_4, id="unclosed"),
    ],
)
def test_expected_score_is_nan_when_not_computable(
    content: list[dict[str, Any]], spec: ScoreSpec
) -> None:
    assert math.isnan(expected_score_from_logprobs(content, spec))


def _preference() -> ScoreSpec:
    labels = {
        "A": RubricLabel(0.0, "A is better"),
        "B": RubricLabel(1.0, "B is better"),
        "tie": RubricLabel(0.5, "equal"),
    }
    return ScoreSpec(name="preference", kind="preference", labels=labels)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('{"preference": "A"}', 0.0),
        ('{"preference": "b"}', 1.0),
        ('{"preference": "Tie"}', 0.5),
        ('{"preference": "[[B]]"}', 1.0),
        ('{"preference": "Response A"}', 0.0),
    ],
)
def test_preference_verdicts(text: str, value: float) -> None:
    assert parse_scores(text, [_preference()])["preference"].value == value


@pytest.mark.parametrize(
    "text", ['{"preference": 1}', '{"preference": "2"}', '{"preference": "C"}']
)
def test_preference_numbers_are_not_verdicts(text: str) -> None:
    # "1" from a judge usually means "response 1" (A), while B's value is 1: refuse, never guess.
    parsed = parse_scores(text, [_preference()])["preference"]
    assert math.isnan(parsed.value) and parsed.failure == "invalid_label"
