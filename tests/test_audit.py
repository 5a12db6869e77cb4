"""``judgekit audit``: fake judges with planted biases are detected with the right sign and size;
unbiased ones give intervals covering 0; perturbations are reproducible given ``audit.seed``.

Every judge is a real HTTP fake (``FakeJudge``) that reads the rendered prompt; the expected
effects are worked out by hand from the planted bias (comments), or recomputed from the data.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from helpers import (
    PAIRS_FILE_OVERRIDES,
    assert_one_line_error,
    judge_overrides,
    run_cli,
    write_jsonl,
)

from judgekit.auditing import AuditResult
from judgekit.auditing.effects import effect_of, preference_for
from judgekit.auditing.perturbations import CITATIONS, FILLER, pad, target_side, truncate
from judgekit.auditing.registry import Context, Variant, rng_for
from judgekit.config.audit import AuditConfig
from judgekit.config.schema import FieldsConfig
from judgekit.errors import ConfigError
from judgekit.records import Example
from judgekit.stats.bootstrap import clustered_mean_ci
from judgekit.testing.server import ChatRequest, FakeJudge

N = 40
FAST = ["stats.bootstrap_resamples=0", "audit.resamples=500"]


# --- data and judges ---------------------------------------------------------------------------


def _pointwise(path: Path) -> Path:
    rows = [
        {"prompt": f"Question {i}", "response": f"Answer [row={i}] is short", "helpfulness": i % 5}
        for i in range(N)
    ]
    return write_jsonl(path, rows)


def _pairs(path: Path) -> Path:
    """GOOD is in ans1 for even pairs, in ans2 for odd ones; humans agree with GOOD."""
    rows = []
    for i in range(N):
        good, bad = f"GOOD answer {i}", f"BAD answer {i}"
        ans1, ans2 = (good, bad) if i % 2 == 0 else (bad, good)
        winner = "model_a" if i % 2 == 0 else "model_b"
        rows.append(
            {
                "qid": f"q{i}",
                "question": f"question {i}",
                "ans1": ans1,
                "ans2": ans2,
                "winner": winner,
            }
        )
    return write_jsonl(path, rows)


def _between(text: str, start: str, end: str) -> str:
    first = text.index(start) + len(start)
    return text[first : text.index(end, first)]


def _cited(text: str) -> bool:
    return any(c[:12] in text for c in CITATIONS)


def _pointwise_judge(verbosity: bool, authority: bool):  # noqa: ANN202
    """Base score ``row % 3``; +1 above 30 words (verbosity), +1 with a citation (authority)."""

    def answer(request: ChatRequest) -> str:
        response = _between(request.last_user_text, "[RESPONSE]", "[/RESPONSE]")
        row = int(_between(response, "[row=", "]"))
        value = row % 3
        value += int(verbosity and len(response.split()) > 30)
        value += int(authority and _cited(response))
        return json.dumps({"helpfulness": value})

    return answer


def _noisy_pointwise(request: ChatRequest) -> str:
    """Unbiased but noisy: a score from a hash of the whole response (any change redraws it)."""
    response = _between(request.last_user_text, "[RESPONSE]", "[/RESPONSE]")
    return json.dumps({"helpfulness": hashlib.sha256(response.encode()).digest()[0] % 5})


def _pair_judge(bias: str):  # noqa: ANN202
    """Picks the GOOD response, unless a planted bias decides first: ``first`` (always A),
    ``longer`` (the response with more words), ``cited`` (the only response with a citation)."""

    def answer(request: ChatRequest) -> str:
        text = request.last_user_text
        a = _between(text, "[RESPONSE A]", "[/RESPONSE A]")
        b = _between(text, "[RESPONSE B]", "[/RESPONSE B]")
        pick = "A" if "GOOD" in a else "B"
        if bias == "first":
            pick = "A"
        elif bias == "longer" and len(a.split()) != len(b.split()):
            pick = "A" if len(a.split()) > len(b.split()) else "B"
        elif bias == "cited" and _cited(a) != _cited(b):
            pick = "A" if _cited(a) else "B"
        return json.dumps({"preference": pick})

    return answer


def _noisy_pair(request: ChatRequest) -> str:
    """Unbiased but noisy: A, B or a tie from a hash of the whole prompt."""
    code = hashlib.sha256(request.last_user_text.encode()).digest()[0] % 3
    return json.dumps({"preference": ["A", "B", "tie"][code]})


def _audit(
    workdir: Path, responder: Any, *, pairwise: bool, name: str = "audit"
) -> tuple[AuditResult, FakeJudge]:
    import judgekit

    data = _pairs(workdir / "pairs.jsonl") if pairwise else _pointwise(workdir / "rows.jsonl")
    with FakeJudge(responder) as judge:
        overrides = [*judge_overrides(judge, key=False), *FAST, f"audit.out_dir={workdir / name}"]
        if pairwise:
            overrides += [
                o for o in PAIRS_FILE_OVERRIDES if not o.startswith(("score=", "prompt="))
            ]
            result = judgekit.audit(
                "openai_compatible",
                "pairwise_v1",
                "preference",
                "pairwise_jsonl",
                overrides=overrides,
                tracking=False,
            )
        else:
            overrides.append("audit.tests=[verbosity,authority]")
            result = judgekit.audit(
                "openai_compatible",
                "v1",
                "helpfulness",
                str(data),
                overrides=overrides,
                tracking=False,
            )
    return result, judge


# --- perturbations ----------------------------------------------------------------------------


def _example(i: int = 0) -> Example:
    return Example(
        f"q{i}",
        {"prompt": "p", "response": "one two three four", "response_a": "x y", "response_b": "z"},
        human={"preference": 0.0},
    )


def test_pad_adds_exactly_the_words_asked_from_the_filler() -> None:
    padded = pad("An answer.", 50, rng_for(0, "t"))
    head, added = padded.split("\n\n")
    assert head == "An answer." and len(added.split()) == 50
    vocabulary = {w.strip(".") for s in FILLER for w in s.split()}
    assert {w.strip(".") for w in added.split()} <= vocabulary


def test_truncate_keeps_the_share_of_words_and_the_formatting() -> None:
    assert truncate("a b\nc d e f", 0.5) == "a b\nc"  # 6 words -> 3, the newline kept
    assert truncate("single", 0.1) == "single"  # at least one word
    assert truncate("", 0.5) == ""


def test_perturbations_are_reproducible_given_the_seed() -> None:
    from judgekit.auditing.registry import TESTS

    def variants(seed: int) -> list[dict[str, Any]]:
        ctx = Context("preference", AuditConfig(seed=seed), "preference")
        out = []
        for name in ("position", "verbosity", "authority"):
            test = TESTS[name]
            for variant in test.variants(ctx.audit):
                out += [test.perturb(_example(i), variant, ctx).example.item for i in range(20)]
        return out

    assert variants(3) == variants(3)  # the same seed, the same texts
    assert variants(3) != variants(4)  # another seed, other filler, citations or targets
    # The target of a pair depends on (seed, test, id) only, and both sides occur.
    sides = [target_side(_example(i), "verbosity", 0) for i in range(40)]
    assert set(sides) == {"a", "b"}
    assert sides == [target_side(_example(i), "verbosity", 0) for i in range(40)]


def test_the_position_variant_swaps_the_pair_and_reorients_the_human_label() -> None:
    from judgekit.auditing.registry import TESTS

    ctx = Context("preference", AuditConfig(), "preference")
    swapped = TESTS["position"].perturb(_example(), Variant("position", "swap"), ctx)
    assert swapped.example.id == "q0::position/swap"
    assert (swapped.example.item["response_a"], swapped.example.item["response_b"]) == ("z", "x y")
    assert swapped.example.human == {"preference": 1.0}  # A preferred -> B once swapped
    assert (swapped.target, swapped.target_variant) == ("b", "a")


def test_unknown_tests_and_tests_of_the_wrong_kind_are_refused() -> None:
    from judgekit.auditing.registry import resolve_tests

    with pytest.raises(ConfigError, match="audit.tests: 'nope' is not a registered test"):
        resolve_tests(["nope"], "pointwise")
    with pytest.raises(ConfigError, match="'position' needs a preference score"):
        resolve_tests(["position"], "pointwise")
    with pytest.raises(ConfigError, match="audit.filler_lengths"):
        AuditConfig(filler_lengths=[0])
    with pytest.raises(ConfigError, match="audit.authority_styles"):
        AuditConfig(authority_styles=["rank"])


# --- statistics -------------------------------------------------------------------------------


def test_clustered_mean_interval_matches_a_loop_over_resampled_clusters() -> None:
    values = np.array([1.0, 0.0, 1.0, 1.0, np.nan, 0.0, 1.0, 0.5])
    clusters = np.array(["g1", "g1", "g2", "g3", "g3", "g4", "g5", "g5"])
    mean, low, high, n = clustered_mean_ci(values, clusters, resamples=400, seed=7)
    # 7 defined values: (1 + 0 + 1 + 1 + 0 + 1 + 0.5) / 7 = 4.5 / 7.
    assert n == 7 and mean == pytest.approx(4.5 / 7)
    # The same draws by hand: clusters g1..g5 drawn 5 at a time; a resample's mean pools rows.
    keep = np.isfinite(values)
    rows = {g: values[keep & (clusters == g)] for g in ["g1", "g2", "g3", "g4", "g5"]}
    groups = list(rows)
    rng = np.random.default_rng(7)
    picks = rng.integers(0, 5, size=(400, 5))
    means = [np.concatenate([rows[groups[k]] for k in draw]).mean() for draw in picks]
    assert (low, high) == pytest.approx(tuple(np.quantile(means, [0.025, 0.975])))


def test_clustered_mean_interval_edge_cases() -> None:
    assert clustered_mean_ci(np.array([2.0, 2.0, 2.0]), resamples=100) == (2.0, 2.0, 2.0, 3)
    mean, low, high, n = clustered_mean_ci(np.array([np.nan]), resamples=100)
    assert n == 0 and math.isnan(mean) and math.isnan(low) and math.isnan(high)


def test_an_effect_averages_the_variants_per_item_and_counts_failures() -> None:
    original = np.array([1.0, 2.0, 3.0, np.nan])
    variants = np.array([[2.0, 1.0], [2.0, 2.0], [5.0, 3.0], [1.0, 1.0]])
    e = effect_of("t", "", original, variants, np.arange(4), resamples=200, confidence=0.95, seed=0)
    # per item: (1 + 0)/2 = 0.5, (0 + 0)/2 = 0, (2 + 0)/2 = 1; item 3 failed -> mean 1.5/3.
    assert (e.n, e.n_failed) == (3, 1)
    assert e.effect == pytest.approx(0.5)
    assert e.robustness == pytest.approx(1 / 3)  # only item 1 moved under neither variant
    assert preference_for(np.array([0.0, 1.0, 0.5]), np.array(["a", "a", "b"])).tolist() == [
        1.0,
        0.0,
        0.5,
    ]


# --- planted biases, end to end ---------------------------------------------------------------


def test_a_pointwise_judge_rewarding_length_and_citations_is_detected(workdir: Path) -> None:
    result, _ = _audit(workdir, _pointwise_judge(verbosity=True, authority=True), pairwise=False)
    # Responses have 5 words: pad50 and pad200 pass 30 words (+1 each), truncate50 stays short.
    verbosity = result.effect("verbosity")
    assert verbosity.effect == pytest.approx(1.0)
    assert verbosity.ci_low == pytest.approx(1.0) and verbosity.robustness == 0.0
    assert result.effect("verbosity", "pad50").effect == pytest.approx(1.0)
    assert result.effect("verbosity", "truncate50").effect == 0.0
    assert result.effect("verbosity", "truncate50").robustness == 1.0
    # citation: +1 on every item; expert: 0. The test's effect averages them per item: 0.5.
    assert result.effect("authority", "citation").effect == pytest.approx(1.0)
    assert result.effect("authority", "expert").effect == 0.0
    assert result.effect("authority").effect == pytest.approx(0.5)
    assert result.effect("authority").robustness == 0.0


def test_unbiased_pointwise_judges_give_intervals_covering_zero(workdir: Path) -> None:
    exact, _ = _audit(workdir, _pointwise_judge(verbosity=False, authority=False), pairwise=False)
    for e in exact.effects:
        assert (e.effect, e.ci_low, e.ci_high, e.robustness) == (0.0, 0.0, 0.0, 1.0), e
    noisy, _ = _audit(workdir, _noisy_pointwise, pairwise=False, name="noisy")
    for e in noisy.effects:
        if e.variant == "" or e.variant.startswith("pad"):
            assert e.ci_low <= 0.0 <= e.ci_high, e
        assert e.robustness < 1.0  # the noise moves scores: the robustness rate sees it


def test_a_judge_preferring_the_first_response_is_the_position_effect(workdir: Path) -> None:
    from judgekit.stats.pairwise import pairwise_agreement

    result, judge = _audit(workdir, _pair_judge("first"), pairwise=True)
    position = result.effect("position")
    # Always A: originally the B response never wins (0); swapped to A it always does (1).
    assert (position.effect, position.ci_low, position.ci_high) == (1.0, 1.0, 1.0)
    assert position.robustness == 0.0
    # Always A ignores length and citations: those effects are 0.
    assert result.effect("verbosity").effect == 0.0 and result.effect("authority").effect == 0.0
    # The same form as judge.swap: robustness = position_consistency of the two orders.
    rows = result.rows[result.rows["test"] == "position"]
    first = rows["judge_original"].to_numpy()
    second = 1.0 - rows["judge_variant"].to_numpy()  # the swapped verdict, mapped back
    stats = pairwise_agreement(
        rows["human"].to_numpy(), first, first=first, second=second, resamples=0
    )
    assert position.robustness == stats["position_consistency"]
    # ... and judge.swap's own figures, logged as audit/position/<name>: always the first shown.
    figures = result.figures["position"]
    assert figures["first_position_rate"] == 1.0 and figures["position_consistency"] == 0.0
    assert figures["n_both_orders"] == N and figures["n_inconsistent"] == N
    assert figures["first_position_rate_ci_low"] == 1.0
    # One request per item and variant: originals + swap + pad50 + pad200 + truncate50 + the
    # two authority styles and their two length-matched controls.
    assert judge.counters.requests_total == N * 9


def test_a_consistent_content_judge_has_no_position_effect(workdir: Path) -> None:
    result, _ = _audit(workdir, _pair_judge("none"), pairwise=True)
    for e in result.effects:
        if e.test == "position" or (e.test == "verbosity" and e.variant != "truncate50"):
            assert (e.effect, e.robustness) == (0.0, 1.0), e


def test_a_judge_preferring_longer_or_cited_responses_is_detected(workdir: Path) -> None:
    result, _ = _audit(workdir, _pair_judge("longer"), pairwise=True)
    rows = result.rows
    # Independently of the target column: the padded response is the longer one in the variant;
    # the judge now picks it, and before it picked GOOD: the change is 1 where it is BAD.
    padded = rows[rows["variant"] == "pad50"]
    items = [json.loads(s) for s in padded["variant_item"]]
    longer_is_bad = [
        "BAD" in max((i["response_a"], i["response_b"]), key=lambda t: len(t.split()))
        for i in items
    ]
    expected = float(np.mean(longer_is_bad))
    assert 0.2 < expected < 0.8  # both sides are padded, seeded
    assert result.effect("verbosity", "pad50").effect == pytest.approx(expected)
    assert result.effect("verbosity").effect == pytest.approx(expected)
    assert result.effect("verbosity").ci_low > 0

    cited, _ = _audit(workdir, _pair_judge("cited"), pairwise=True, name="cited")
    rows = cited.rows[cited.rows["variant"] == "citation"]
    target_bad = [
        "BAD" in json.loads(s)[f"response_{t}"]
        for s, t in zip(rows["variant_item"], rows["target"], strict=True)
    ]
    assert cited.effect("authority", "citation").effect == pytest.approx(np.mean(target_bad))
    assert cited.effect("authority", "citation").ci_low > 0
    assert cited.effect("authority", "expert").effect == 0.0
    # Each style is compared with its control: the same response with as many filler words.
    assert (rows["baseline"] == "citation_control").all()
    controls = cited.rows[cited.rows["variant"] == "citation_control"]
    assert [len(t.split()) for t in controls["variant_text"]] == [
        len(t.split()) for t in rows["variant_text"]
    ]
    # A judge that only prefers the longer response has no authority effect.
    assert result.effect("authority").effect == 0.0
    assert result.effect("authority", "citation_control").effect > 0  # it does see the length


def test_the_control_has_the_claims_words_and_characters() -> None:
    from judgekit.auditing.perturbations import EXPERT_CLAIMS, filler_like

    for claim in (*CITATIONS, *EXPERT_CLAIMS):
        for seed in range(20):
            text = filler_like(claim, np.random.default_rng(seed))
            assert (len(text), len(text.split())) == (len(claim), len(claim.split()))
            assert not _cited(text) and "expert" not in text.lower()
    assert all("As an expert" in claim for claim in EXPERT_CLAIMS)


@pytest.mark.parametrize(
    ("unit", "threshold"), [("words", 10), ("words", 20), ("chars", 80), ("chars", 120)]
)
def test_a_judge_rewarding_length_alone_has_no_authority_effect(
    workdir: Path, unit: str, threshold: int
) -> None:
    import judgekit

    def longer_is_better(request: ChatRequest) -> str:
        response = _between(request.last_user_text, "[RESPONSE]", "[/RESPONSE]")
        row = int(_between(response, "[row=", "]"))
        size = len(response.split()) if unit == "words" else len(response)
        return json.dumps({"helpfulness": row % 3 + int(size > threshold)})

    data = _pointwise(workdir / "rows.jsonl")
    with FakeJudge(longer_is_better) as judge:
        result = judgekit.audit(
            "openai_compatible",
            "v1",
            "helpfulness",
            str(data),
            overrides=[*judge_overrides(judge, key=False), *FAST, f"audit.out_dir={workdir / 'a'}"],
            tracking=False,
        )
    assert result.effect("verbosity").effect == 1.0
    e = result.effect("authority")
    assert (e.effect, e.robustness) == (0.0, 1.0)
    assert e.ci_low <= 0.0 <= e.ci_high


def test_an_unbiased_noisy_pair_judge_gives_intervals_covering_zero(workdir: Path) -> None:
    result, _ = _audit(workdir, _noisy_pair, pairwise=True)
    for e in result.effects:
        if e.variant == "":
            assert e.ci_low <= 0.0 <= e.ci_high, e


# --- outputs, MLflow, the command line --------------------------------------------------------


@pytest.mark.slow
def test_the_command_logs_a_parent_run_children_and_the_variant_text(workdir: Path) -> None:
    from mlflow.tracking import MlflowClient

    _pairs(workdir / "pairs.jsonl")
    with FakeJudge(_pair_judge("first")) as judge:
        args = [
            "audit",
            *judge_overrides(judge),
            *PAIRS_FILE_OVERRIDES,
            *FAST,
            "audit.tests=[position,authority]",
            "audit.out_dir=out",
        ]
        proc = run_cli(args, workdir)
        assert proc.returncode == 0, proc.stderr
        assert "position" in proc.stdout and "outputs:" in proc.stdout
        sent = judge.counters.requests_total
        again = run_cli([*args[:-1], "audit.out_dir=out2"], workdir)
        assert again.returncode == 0, again.stderr
        assert judge.counters.requests_total == sent  # the rerun is answered by the cache
    assert sent == N * 6  # originals, swap, citation, expert and their two controls
    client = MlflowClient(tracking_uri=f"sqlite:///{workdir}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("judgekit").experiment_id])
    parents = [r for r in runs if r.data.tags.get("judgekit.kind") == "audit"]
    assert len(parents) == 2
    parent = parents[0]
    metrics = parent.data.metrics
    assert metrics["audit/position/effect"] == 1.0
    assert metrics["audit/position/effect_ci_low"] == 1.0
    assert metrics["audit/position/effect_ci_high"] == 1.0
    assert metrics["audit/position/robustness"] == 0.0
    assert metrics["audit/position/first_position_rate"] == 1.0
    assert metrics["audit/position/position_consistency"] == 0.0
    assert "audit/authority/effect" in metrics
    assert parent.data.params["audit.tests"] == "['position', 'authority']"
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(r.info.run_name for r in children) == [
        "authority/citation",
        "authority/citation_control",
        "authority/expert",
        "authority/expert_control",
        "original",
        "position/swap",
    ]
    rows = pd.read_parquet(workdir / "out" / "results.parquet")
    cited = rows[rows["variant"] == "citation"]
    assert len(cited) == N and all(_cited(t) for t in cited["variant_text"])
    assert all(v.endswith("::authority/citation") for v in cited["variant_id"])
    for name in ("audit.csv", "forest.png", "summary.json"):
        assert (workdir / "out" / name).is_file()
    summary = json.loads((workdir / "out" / "summary.json").read_text())
    assert summary["run_id"] in {p.info.run_id for p in parents}


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["audit.tests=[nope]"], "audit.tests: 'nope' is not a registered test"),
        (["audit.tests=[position]", "score=helpfulness", "prompt=v1"], "needs a preference"),
        (["audit.filler_lengths=[0]"], "audit.filler_lengths"),
        (["judge.swap=true"], "judge.swap"),
        (["audit.score=nope"], "audit.score: 'nope' is not a score"),
        (["audit.out_dir=pairs.jsonl"], "audit.out_dir: "),
        (["audit.out_dir=pairs.jsonl/sub"], "audit.out_dir: "),
        (
            ["audit.tests=[verbosity]", "audit.filler_lengths=[]", "audit.truncate_fraction=0"],
            "audit.tests: 'verbosity' has no variant to measure its effect",
        ),
    ],
)
def test_bad_audit_input_is_one_line_and_no_call(
    workdir: Path, extra: list[str], needle: str
) -> None:
    _pairs(workdir / "pairs.jsonl")
    with FakeJudge(_pair_judge("none")) as judge:
        proc = run_cli(["audit", *judge_overrides(judge), *PAIRS_FILE_OVERRIDES, *extra], workdir)
        assert_one_line_error(proc, needle)
        assert judge.counters.requests_total == 0


# --- self_preference ---------------------------------------------------------------------------

SYSTEMS = ["gpt-4-0613", "claude-v1", "vicuna-13b"]
SYSTEM_OVERRIDES = [
    "audit.tests=[self_preference]",
    "audit.judge_family=GPT-4",
    "++dataset.fields.extra.system_a=model_a",
    "++dataset.fields.extra.system_b=model_b",
    "audit.system_fields=[system_a,system_b]",
]
"""The two models as item fields, and the judge's family named."""
SYSTEM_COLUMN_OVERRIDES = [
    "audit.tests=[self_preference]",
    "dataset.fields.system=models",
    "judge.model=openai/gpt-4-turbo-fake",  # the family inferred from the judge's name: gpt
]
"""The two models as one ``dataset.fields.system`` column holding a list [model_a, model_b]."""


def _pairs_with_systems(path: Path) -> list[dict[str, Any]]:
    """``_pairs`` with the writer of each response: pair i by SYSTEMS[i % 3] and SYSTEMS[i // 3 % 3]
    (so gpt-4 writes A, B, both or neither, the GOOD or the BAD response)."""
    _pairs(path)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    for i, row in enumerate(rows):
        row["model_a"], row["model_b"] = SYSTEMS[i % 3], SYSTEMS[i // 3 % 3]
        row["models"] = [row["model_a"], row["model_b"]]
    write_jsonl(path, rows)
    return rows


def _own_family_judge(request: ChatRequest) -> str:
    """Picks the gpt-4 response when exactly one is (the fake knows the writers from the pair's
    number, as a judge might recognise its own style), else GOOD."""
    text = request.last_user_text
    i = int(re.search(r"answer (\d+)", text)[1])
    a, b = SYSTEMS[i % 3], SYSTEMS[i // 3 % 3]
    if (a == SYSTEMS[0]) != (b == SYSTEMS[0]):
        return json.dumps({"preference": "A" if a == SYSTEMS[0] else "B"})
    return _pair_judge("none")(request)


def _self_audit(
    workdir: Path, responder: Any, systems: list[str] = SYSTEM_OVERRIDES
) -> tuple[AuditResult, list[dict[str, Any]]]:
    import judgekit

    rows = _pairs_with_systems(workdir / "pairs.jsonl")
    with FakeJudge(responder) as judge:
        overrides = [
            *judge_overrides(judge, key=False),
            *FAST,
            *[o for o in PAIRS_FILE_OVERRIDES if not o.startswith(("score=", "prompt="))],
            *systems,
            f"audit.out_dir={workdir / 'audit'}",
        ]
        result = judgekit.audit(
            "openai_compatible",
            "pairwise_v1",
            "preference",
            "pairwise_jsonl",
            overrides=overrides,
            tracking=False,
        )
    return result, rows


@pytest.mark.parametrize(
    "systems", [SYSTEM_OVERRIDES, SYSTEM_COLUMN_OVERRIDES], ids=["item_fields", "system_column"]
)
def test_a_judge_preferring_its_own_family_is_detected_against_the_humans(
    workdir: Path, systems: list[str]
) -> None:
    result, rows = _self_audit(workdir, _own_family_judge, systems)
    # By hand from the data: pairs with exactly one gpt-4 response; there the judge picks it
    # (1) and the humans pick GOOD: the difference is 1 where the gpt-4 response is BAD.
    own = [
        ("a" if r["model_a"] == SYSTEMS[0] else "b")
        for r in rows
        if (r["model_a"] == SYSTEMS[0]) != (r["model_b"] == SYSTEMS[0])
    ]
    bad = [
        "BAD" in r["ans1" if side == "a" else "ans2"]
        for r, side in zip(
            [r for r in rows if (r["model_a"] == SYSTEMS[0]) != (r["model_b"] == SYSTEMS[0])],
            own,
            strict=True,
        )
    ]
    e = result.effect("self_preference")
    assert e.n == len(own) and e.n_failed == 0
    assert e.effect == pytest.approx(np.mean(bad)) and e.effect > 0
    assert e.ci_low > 0
    assert e.robustness == pytest.approx(1 - np.mean(bad))
    assert result.variants == []  # a comparison on the originals: no variant judged
    # Balanced: the judge picks its family's response whichever the humans picked: (1 + 1)/2 − ½.
    figures = result.figures["self_preference"]
    assert figures["balanced_effect"] == 0.5 and figures["balanced_effect_ci_low"] == 0.5
    both = sum((r["model_a"] == SYSTEMS[0]) and (r["model_b"] == SYSTEMS[0]) for r in rows)
    assert figures["n_both_own"] == both > 0
    rows_out = result.rows[result.rows["test"] == "self_preference"]
    assert len(rows_out) == len(own) and rows_out["difference"].mean() == pytest.approx(e.effect)


def test_an_unbiased_judge_has_no_self_preference(workdir: Path) -> None:
    result, _ = _self_audit(workdir, _pair_judge("none"), SYSTEM_COLUMN_OVERRIDES)
    e = result.effect("self_preference")
    assert (e.effect, e.ci_low, e.ci_high, e.robustness) == (0.0, 0.0, 0.0, 1.0)
    assert result.figures["self_preference"]["balanced_effect"] == 0.0


def test_a_noisy_judge_has_no_balanced_self_preference() -> None:
    """Humans favour the family on 80% of pairs; a judge errs on 40%, ignoring the family: the
    plain effect is pulled below 0 (toward a coin), the balanced one is 0 by hand:
    P(own | humans own) = 0.6, P(own | humans other) = 0.4 → (0.6 + 0.4)/2 − ½ = 0."""
    from judgekit.auditing.self_preference import balanced_preference

    human = np.array([1.0] * 40 + [0.0] * 10)
    judge = np.array([1.0] * 24 + [0.0] * 16 + [1.0] * 4 + [0.0] * 6)
    assert judge.mean() - human.mean() == pytest.approx(-0.24)
    value, low, high = balanced_preference(
        human, judge, np.arange(50), resamples=500, confidence=0.95, seed=0
    )
    assert value == pytest.approx(0.0) and low < 0 < high


def test_a_squeezed_range_judge_has_no_self_preference() -> None:
    """judge = 1 + human / 2 (a squeezed copy of the humans' scale) while the humans rate the
    family higher: the gaps differ by family, the adjusted effect is 0."""
    from judgekit.auditing.effects import contrast_effect_of

    human = np.array([4, 3, 4, 3, 1, 0, 2, 1, 0, 1], dtype=float)
    own = np.array([True] * 4 + [False] * 6)
    judge = 1 + human / 2
    gap = judge - human
    assert gap[own].mean() - gap[~own].mean() < -0.5
    e = contrast_effect_of(
        "self_preference", human, judge, own, np.arange(10), resamples=200, confidence=0.9, seed=0
    )
    assert e.effect == pytest.approx(0.0, abs=1e-12)
    assert e.ci_low == pytest.approx(0.0, abs=1e-9) and e.ci_high == pytest.approx(0.0, abs=1e-9)


def test_the_judges_family_is_the_first_word_of_its_model_name() -> None:
    from judgekit.auditing.self_preference import judge_family

    assert judge_family("openai/gpt-4o") == "gpt"
    assert judge_family("anthropic/claude-3-5-sonnet-20240620") == "claude"
    assert judge_family("openai/local-qwen2.5-coder-1.5b") == "qwen"
    assert judge_family("hosted_vllm/meta-llama/Llama-3.1-8B-Instruct") == "llama"
    assert judge_family("openai/fake-judge") == ""
    assert judge_family("openai/o3-mini") == judge_family("chatgpt-4o-latest") == "gpt"
    assert judge_family("bedrock/anthropic.claude-3-haiku-20240307-v1:0") == "claude"


def test_self_preference_needs_the_family_and_the_systems(workdir: Path) -> None:
    _pairs_with_systems(workdir / "pairs.jsonl")
    with FakeJudge(_pair_judge("none")) as judge:
        base = ["audit", *judge_overrides(judge), *PAIRS_FILE_OVERRIDES]
        proc = run_cli([*base, "audit.tests=[self_preference]"], workdir)
        assert_one_line_error(proc, "audit.judge_family: no model family found in judge.model")
        family = [*base, "audit.tests=[self_preference]", "audit.judge_family=gpt-4"]
        proc = run_cli(family, workdir)
        assert_one_line_error(proc, "dataset.fields.system: self_preference needs")
        proc = run_cli([*family, "dataset.fields.system=model_a"], workdir)
        assert_one_line_error(proc, "dataset.fields.system: example 'q0' does not name both")
        proc = run_cli([*family, "audit.system_fields=[system_a,system_b]"], workdir)
        assert_one_line_error(proc, "audit.system_fields (item.system_a, item.system_b): example")
        proc = run_cli([*family, "audit.system_fields=[model_a]"], workdir)
        assert_one_line_error(proc, "audit.system_fields: ['model_a'] is not valid for a")
        proc = run_cli([*base, *SYSTEM_OVERRIDES, "audit.judge_family=llama"], workdir)
        assert_one_line_error(proc, "no pair has exactly one response by a model")
        assert judge.counters.requests_total == 0


def _pointwise_with_systems(path: Path) -> list[dict[str, Any]]:
    """``_pointwise`` with the model of each response: row i by SYSTEMS[i % 3]."""
    _pointwise(path)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    for i, row in enumerate(rows):
        row["model"] = SYSTEMS[i % 3]
    write_jsonl(path, rows)
    return rows


def _scores_own_family_up(bonus: int):  # noqa: ANN202
    """The human score (``row % 5``), plus ``bonus`` on gpt-4's responses (rows 0, 3, 6, ...)."""

    def answer(request: ChatRequest) -> str:
        row = int(_between(request.last_user_text, "[row=", "]"))
        return json.dumps({"helpfulness": min(4, row % 5 + bonus * (row % 3 == 0))})

    return answer


@pytest.mark.parametrize("bonus", [1, 0])
def test_a_range_judge_scoring_its_own_family_up_is_detected(workdir: Path, bonus: int) -> None:
    import judgekit

    rows = _pointwise_with_systems(workdir / "rows.jsonl")
    with FakeJudge(_scores_own_family_up(bonus)) as judge:
        result = judgekit.audit(
            "openai_compatible",
            "v1",
            "helpfulness",
            str(workdir / "rows.jsonl"),
            overrides=[
                *judge_overrides(judge, key=False),
                *FAST,
                "audit.tests=[self_preference]",
                "judge.model=openai/gpt-4-fake",
                f"audit.out_dir={workdir / 'audit'}",
            ],
            fields=FieldsConfig(scores={"helpfulness": "helpfulness"}, system="model"),
            tracking=False,
        )
    # By hand: the judge is the human score plus the bonus on gpt-4's rows (capped at 4); the
    # effect is the own-family coefficient of an OLS fit, statsmodels as the reference.
    import statsmodels.api as sm

    human = np.arange(N) % 5
    judge = np.array([min(4, r % 5 + bonus * (r % 3 == 0)) for r in range(N)])
    own = np.array([r["model"] == SYSTEMS[0] for r in rows])
    fit = sm.OLS(judge, sm.add_constant(np.column_stack([human, own.astype(float)]))).fit()
    e = result.effect("self_preference")
    assert e.n == N and e.n_failed == 0
    assert e.effect == pytest.approx(fit.params[2])
    assert e.robustness == pytest.approx(np.mean((judge - human)[own] == 0))
    gap = judge - human
    figures = result.figures["self_preference"]
    assert figures["gap_difference"] == pytest.approx(gap[own].mean() - gap[~own].mean())
    if bonus:
        assert e.effect > 0.5 and e.ci_low > 0
    else:  # least squares: zero up to rounding
        assert (e.effect, e.ci_low, e.ci_high) == pytest.approx((0.0, 0.0, 0.0), abs=1e-9)


def test_clustered_mean_difference_interval_matches_a_loop_over_resampled_clusters() -> None:
    from judgekit.stats.bootstrap import _unit_counts, clustered_mean_difference_ci

    rng = np.random.default_rng(3)
    values = rng.normal(size=30)
    values[4] = np.nan
    first = np.arange(30) % 3 == 0
    clusters = np.arange(30) // 2
    diff, low, high, n1, n2 = clustered_mean_difference_ci(
        values, first, clusters, resamples=300, confidence=0.9, seed=5
    )
    keep = np.isfinite(values)
    assert (n1, n2) == (int((first & keep).sum()), int((~first & keep).sum()))
    assert diff == pytest.approx(values[first & keep].mean() - values[~first & keep].mean())
    # The same draws by hand: counts of each kept cluster, then the two weighted means.
    units = np.unique(clusters[keep], return_inverse=True)[1]
    counts = _unit_counts(units.max() + 1, 300, rng=np.random.default_rng(5))
    draws = []
    for c in counts:
        w = c[units]
        x, f = values[keep], first[keep]
        with np.errstate(invalid="ignore", divide="ignore"):
            draws.append((w[f] @ x[f]) / w[f].sum() - (w[~f] @ x[~f]) / w[~f].sum())
    draws = np.array(draws)
    expected = np.quantile(draws[np.isfinite(draws)], [0.05, 0.95])
    assert (low, high) == pytest.approx(tuple(expected))


# --- commit_first ------------------------------------------------------------------------------


def _committing_judge(bonus: int):  # noqa: ANN202
    """Base score ``row % 3``; asked to answer first, it writes an answer, then the JSON, and
    adds ``bonus`` (a judge whose scores rise once it has committed to its own answer)."""

    def answer(request: ChatRequest) -> str:
        text = request.last_user_text
        row = int(_between(text, "[row=", "]"))
        if "My answer:" not in text:
            return json.dumps({"helpfulness": row % 3})
        return f"My answer: forty-two.\n\nRating:\n{json.dumps({'helpfulness': row % 3 + bonus})}"

    return answer


def _commit_audit(workdir: Path, responder: Any) -> tuple[AuditResult, FakeJudge]:
    import judgekit

    data = _pointwise(workdir / "rows.jsonl")
    with FakeJudge(responder) as judge:
        overrides = [
            *judge_overrides(judge, key=False),
            *FAST,
            "audit.tests=[commit_first]",
            "judge.structured_output=true",
            f"audit.out_dir={workdir / 'audit'}",
        ]
        result = judgekit.audit(
            "openai_compatible", "v1", "helpfulness", str(data), overrides=overrides, tracking=False
        )
    return result, judge


def test_commit_first_is_a_prompt_variant_and_its_effect_is_measured(workdir: Path) -> None:
    from judgekit.auditing.commit_first import INSTRUCTION, MIN_TOKENS

    result, judge = _commit_audit(workdir, _committing_judge(bonus=1))
    e = result.effect("commit_first")
    assert (e.effect, e.ci_low, e.ci_high, e.robustness, e.n_failed) == (1.0, 1.0, 1.0, 0.0, 0)
    bodies = judge.counters.bodies
    first = [b for b in bodies if INSTRUCTION in b["messages"][-1]["content"]]
    plain = [b for b in bodies if INSTRUCTION not in b["messages"][-1]["content"]]
    assert len(first) == len(plain) == N
    # The variant lets the judge write prose first: no response format, room to answer.
    assert all("response_format" not in b and b["max_tokens"] >= MIN_TOKENS for b in first)
    assert all("response_format" in b for b in plain)  # the original, as configured
    rows = result.rows
    assert set(rows["variant_id"].str.split("::").str[1]) == {"commit_first/own_answer_first"}
    # Both prompts' agreement with the humans, recomputed with scipy and scikit-learn.
    from scipy.stats import spearmanr
    from sklearn.metrics import cohen_kappa_score

    human = np.arange(N) % 5
    original, committed = np.arange(N) % 3, np.arange(N) % 3 + 1
    figures = result.figures["commit_first"]
    assert figures["spearman_original"] == pytest.approx(spearmanr(human, original).statistic)
    assert figures["spearman_commit_first"] == pytest.approx(spearmanr(human, committed).statistic)
    qwk = [
        cohen_kappa_score(human, j, weights="quadratic", labels=range(5))
        for j in (original, committed)
    ]
    assert figures["qwk_original"] == pytest.approx(qwk[0])
    assert figures["qwk_change"] == pytest.approx(qwk[1] - qwk[0])
    mae = [np.abs(human - j).mean() for j in (original, committed)]
    assert figures["mae_change"] == pytest.approx(mae[1] - mae[0])
    assert figures["mae_change_ci_low"] <= figures["mae_change"] <= figures["mae_change_ci_high"]
    assert figures["n_common"] == N


def test_commit_first_without_a_change_covers_zero(workdir: Path) -> None:
    result, _ = _commit_audit(workdir, _committing_judge(bonus=0))
    e = result.effect("commit_first")
    assert (e.effect, e.ci_low, e.ci_high, e.robustness) == (0.0, 0.0, 0.0, 1.0)


def test_commit_first_refuses_preference_scores_and_reference_prompts(workdir: Path) -> None:
    import judgekit.auditing.commit_first  # noqa: F401
    from judgekit.auditing.commit_first import _check
    from judgekit.auditing.registry import resolve_tests
    from judgekit.config.schema import Message, PromptConfig

    with pytest.raises(ConfigError, match="'commit_first' needs a pointwise score"):
        resolve_tests(["commit_first"], "preference")
    prompt = PromptConfig(
        "graded", messages=[Message(content="{{ item.response }} vs {{ item.reference_answer }}")]
    )
    ctx = Context("pointwise", AuditConfig(), "helpfulness", prompt)
    with pytest.raises(
        ConfigError, match="reference-free prompts; prompt 'graded' shows item.reference_answer"
    ):
        _check([], ctx)


# --- length-controlled agreement ---------------------------------------------------------------


def test_length_control_matches_an_unpenalised_logistic_regression() -> None:
    from scipy.special import expit
    from sklearn.linear_model import LogisticRegression

    from judgekit.stats.length_control import length_controlled_agreement

    rng = np.random.default_rng(0)
    human = rng.integers(0, 2, 300).astype(float)
    difference = rng.integers(-40, 41, 300).astype(float)
    x = np.tanh(difference / difference.std(ddof=1))
    judge = (rng.random(300) < expit(0.2 + 1.5 * (2 * human - 1) + 1.0 * x)).astype(float)
    found = length_controlled_agreement(human, judge, difference)
    reference = LogisticRegression(C=np.inf, tol=1e-10, max_iter=1000)
    reference.fit(np.column_stack([2 * human - 1, x]), judge)
    (b1, b2), b0 = reference.coef_[0], reference.intercept_[0]
    assert found["length_coefficient"] == pytest.approx(b2, abs=1e-4)
    assert found["reason"] == "" and found["lc_n"] == 300
    # By hand from the reference's coefficients: P(B) with the length term zeroed, then the
    # probability of the humans' verdict, averaged.
    p_lc = expit(b0 + b1 * (2 * human - 1))
    assert found["lc_agreement"] == pytest.approx(
        np.mean(np.where(human == 1, p_lc, 1 - p_lc)), abs=1e-4
    )
    assert found["raw_agreement"] == pytest.approx(np.mean(judge == human))


def test_range_length_control_matches_least_squares_by_hand() -> None:
    from scipy.stats import spearmanr

    from judgekit.stats.length_control import length_controlled_scores

    rng = np.random.default_rng(0)
    human = rng.integers(0, 5, 60).astype(float)
    words = rng.integers(10, 300, 60).astype(float)
    judge = np.clip(np.round(human + words / 100 + rng.normal(0, 0.5, 60)), 0, 4)
    judge[3] = np.nan  # a failed row is left out
    found = length_controlled_scores(human, judge, words)
    keep = np.isfinite(judge)
    z = (words[keep] - words[keep].mean()) / words[keep].std(ddof=1)
    design = np.column_stack([np.ones(keep.sum()), human[keep], z])
    b = np.linalg.lstsq(design, judge[keep], rcond=None)[0]
    assert found["lc_n"] == 59 and found["reason"] == ""
    assert found["length_coefficient"] == pytest.approx(b[2]) and b[2] > 0
    lc = spearmanr(human[keep], judge[keep] - b[2] * z).statistic
    assert found["lc_agreement"] == pytest.approx(lc)
    assert found["raw_agreement"] == pytest.approx(spearmanr(human[keep], judge[keep]).statistic)
    same = length_controlled_scores(human, judge, np.full(60, 7.0))
    assert math.isnan(same["lc_agreement"]) and "same length" in same["reason"]


def test_length_control_is_nan_with_a_reason_when_it_cannot_be_fitted() -> None:
    from judgekit.stats.length_control import length_controlled_agreement

    same = length_controlled_agreement(
        np.array([0.0, 1.0, 1.0]), np.array([0.0, 1.0, 0.0]), np.array([3.0, 3.0, 3.0])
    )
    assert math.isnan(same["lc_agreement"]) and "same length difference" in same["reason"]
    one_sided = length_controlled_agreement(np.ones(4), np.ones(4), np.arange(4.0))
    assert math.isnan(one_sided["length_coefficient"]) and "prefer A on some" in one_sided["reason"]
    separated = length_controlled_agreement(
        np.array([0.0, 0.0, 1.0, 1.0]), np.array([0.0, 0.0, 1.0, 1.0]), np.arange(4.0)
    )
    assert math.isnan(separated["agreement"]) and "fit failed" in separated["reason"]


def _varied_pairs(path: Path) -> list[dict[str, Any]]:
    """``_pairs`` with lengths that differ: GOOD gets i % 5 extra words, BAD (3 i) % 7."""
    _pairs(path)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    for i, row in enumerate(rows):
        for key in ("ans1", "ans2"):
            extra = i % 5 if "GOOD" in row[key] else (3 * i) % 7
            row[key] += " word" * extra
    write_jsonl(path, rows)
    return rows


def _sometimes_longer(request: ChatRequest) -> str:
    """GOOD, except on about half the pairs (by a hash) where the longer by 2+ words wins."""
    text = request.last_user_text
    a = _between(text, "[RESPONSE A]", "[/RESPONSE A]")
    b = _between(text, "[RESPONSE B]", "[/RESPONSE B]")
    gap = len(b.split()) - len(a.split())
    if abs(gap) >= 2 and hashlib.sha256(_between(text, "answer ", " ").encode()).digest()[0] % 2:
        return json.dumps({"preference": "B" if gap > 0 else "A"})
    return _pair_judge("none")(request)


def test_verbosity_reports_length_controlled_agreement_on_the_originals(workdir: Path) -> None:
    import judgekit
    from judgekit.stats.length_control import length_controlled_agreement

    rows = _varied_pairs(workdir / "pairs.jsonl")
    with FakeJudge(_sometimes_longer) as judge:
        overrides = [
            *judge_overrides(judge, key=False),
            *FAST,
            *[o for o in PAIRS_FILE_OVERRIDES if not o.startswith(("score=", "prompt="))],
            "audit.tests=[verbosity]",
            f"audit.out_dir={workdir / 'audit'}",
        ]
        result = judgekit.audit(
            "openai_compatible",
            "pairwise_v1",
            "preference",
            "pairwise_jsonl",
            overrides=overrides,
            tracking=False,
        )
    figures = result.figures["verbosity"]
    assert figures["reason"] == "" and figures["length_coefficient"] > 0
    # Zeroing the length term removes the disagreements the length caused.
    assert figures["lc_agreement"] > figures["agreement"]
    # The same fit from the data file and the judge's verdicts, computed here.
    human = np.array([0.0 if r["winner"] == "model_a" else 1.0 for r in rows])
    difference = np.array([len(r["ans2"].split()) - len(r["ans1"].split()) for r in rows])
    judged = result.original.results.sort_values("example_index")["judge"].to_numpy()
    again = length_controlled_agreement(human, judged, difference)
    assert again == pytest.approx(figures)
    summary = json.loads((workdir / "audit" / "summary.json").read_text())
    assert summary["metrics"]["audit/verbosity/lc_agreement"] == pytest.approx(
        figures["lc_agreement"]
    )


# --- a project's own test ----------------------------------------------------------------------

HEDGING = """
from judgekit.auditing import AuditTest, Variant, edit_response, register_test


def hedge(example, variant, ctx):
    return edit_response(example, variant, ctx, lambda text, rng: "I may be wrong, but " + text)


register_test(AuditTest("hedging", lambda audit: [Variant("hedging", "prefix")], hedge))
"""


def test_a_project_registers_its_own_test_through_audit_modules(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import judgekit
    from judgekit.auditing.registry import TESTS

    (workdir / "my_audit_tests.py").write_text(HEDGING)
    monkeypatch.syspath_prepend(str(workdir))
    data = _pointwise(workdir / "rows.jsonl")

    def punishes_hedging(request: ChatRequest) -> str:
        response = _between(request.last_user_text, "[RESPONSE]", "[/RESPONSE]")
        row = int(_between(response, "[row=", "]"))
        return json.dumps({"helpfulness": 2 + (row % 2) - int("I may be wrong" in response)})

    try:
        with FakeJudge(punishes_hedging) as judge:
            result = judgekit.audit(
                "openai_compatible",
                "v1",
                "helpfulness",
                str(data),
                tracking=False,
                overrides=[
                    *judge_overrides(judge, key=False),
                    *FAST,
                    "audit.modules=[my_audit_tests]",
                    "audit.tests=[hedging]",
                    f"audit.out_dir={workdir / 'audit'}",
                ],
            )
    finally:
        TESTS.pop("hedging", None)
    e = result.effect("hedging")
    assert (e.effect, e.ci_low, e.ci_high, e.robustness) == (-1.0, -1.0, -1.0, 0.0)
    with pytest.raises(ConfigError, match="audit.modules: cannot import 'no_such_module'"):
        judgekit.audit(
            "openai_compatible",
            "v1",
            "helpfulness",
            str(data),
            tracking=False,
            overrides=[
                "audit.modules=[no_such_module]",
                "judge.model=openai/x",
                "judge.api_base=http://127.0.0.1:9/v1",
            ],
        )
    (workdir / "broken_audit_tests.py").write_text("raise RuntimeError('oops')\n")
    with pytest.raises(
        ConfigError,
        match="audit.modules: importing 'broken_audit_tests' failed: RuntimeError: oops",
    ):
        judgekit.audit(
            "openai_compatible",
            "v1",
            "helpfulness",
            str(data),
            tracking=False,
            overrides=[
                "audit.modules=[broken_audit_tests]",
                "judge.model=openai/x",
                "judge.api_base=http://127.0.0.1:9/v1",
            ],
        )


def test_rows_sharing_one_prompt_are_not_one_cluster(workdir: Path) -> None:
    """Without dataset.fields.group each item is its own cluster: 40 rows with one prompt text
    give the rows' bootstrap interval (as one cluster they would give none)."""
    import judgekit

    rows = [
        {"prompt": "Rate this answer.", "response": f"Answer [row={i}]", "helpfulness": i % 5}
        for i in range(N)
    ]
    with FakeJudge(_noisy_pointwise) as judge:
        result = judgekit.audit(
            "openai_compatible",
            "v1",
            "helpfulness",
            rows,
            overrides=[*judge_overrides(judge, key=False), *FAST, f"audit.out_dir={workdir / 'a'}"],
            tracking=False,
        )
    assert result.rows["cluster"].nunique() == N
    for variant in ("pad50", "citation_control"):
        e = result.effect(
            result.rows.loc[result.rows["variant"] == variant, "test"].iloc[0], variant
        )
        mine = result.rows[result.rows["variant"] == variant]
        mean, low, high, n = clustered_mean_ci(
            mine["difference"].to_numpy(), mine["cluster"].to_numpy(), resamples=500, seed=0
        )
        assert (e.effect, e.ci_low, e.ci_high, e.n) == pytest.approx((mean, low, high, n))
        assert e.ci_low < e.ci_high
