"""A pairwise run end to end on a user's own preference file (``dataset=pairwise_jsonl``): swap,
combination, MLflow metrics.

The fake judge reads the rendered prompt, so these tests also check what judgekit sends: with
``judge.swap=true`` each pair goes out twice, the second time with the responses exchanged, and
the second verdict is mapped back before the two are combined. Expected figures are by hand.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import PAIRS_FILE_OVERRIDES, judge_overrides, run_cli

from judgekit.testing.server import ChatRequest, FakeJudge

# GOOD is in ans1 for pairs 0-4 and in ans2 for pairs 5-9. Humans agree on 0-3 and 5-8, disagree
# on 4 and call 9 a tie.
WINNERS = ["model_a"] * 4 + ["model_b"] * 5 + ["tie"]


def _pairs(path: Path) -> None:
    with path.open("w") as f:
        for i, winner in enumerate(WINNERS):
            good, bad = f"GOOD answer {i}", f"BAD answer {i}"
            ans1, ans2 = (good, bad) if i < 5 else (bad, good)
            row = {"qid": f"q{i}", "question": f"question {i}", "ans1": ans1, "ans2": ans2}
            f.write(json.dumps({**row, "winner": winner}) + "\n")


def _prefers_good(request: ChatRequest) -> str:
    """A consistent judge: picks whichever response holds GOOD, wherever it is shown."""
    text = request.last_user_text
    a = text[text.index("[RESPONSE A]") : text.index("[/RESPONSE A]")]
    return json.dumps({"preference": "A" if "GOOD" in a else "B"})


def _always_a(request: ChatRequest) -> str:
    """A judge with pure position bias: always the first response shown."""
    return '{"preference": "A"}'


def _run(workdir: Path, responder, extra: list[str] | None = None) -> tuple[dict, FakeJudge]:  # noqa: ANN001
    _pairs(workdir / "pairs.jsonl")
    with FakeJudge(responder) as judge:
        proc = run_cli(
            [
                *judge_overrides(judge),
                *PAIRS_FILE_OVERRIDES,
                "judge.swap=true",
                "hydra.run.dir=out",
                *(extra or []),
            ],
            workdir,
        )
        assert proc.returncode == 0, proc.stderr
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=f"sqlite:///{workdir}/mlflow.db")
        (run,) = client.search_runs([client.get_experiment_by_name("judgekit").experiment_id])
        return run.data.metrics, judge


def test_swap_sends_both_orders_and_the_statistics_match_hand_figures(workdir: Path) -> None:
    metrics, judge = _run(workdir, _prefers_good)
    assert judge.counters.requests_total == 2 * len(WINNERS)
    assert len(judge.counters.request_keys) == 2 * len(WINNERS)  # the two orders differ
    assert metrics["preference/n_total"] == 10
    assert metrics["preference/n_inconsistent"] == 0
    assert metrics["preference/position_consistency"] == 1.0
    # Original order: pairs 0-4 pick the first shown; swapped: pairs 5-9 do. 10 of 20.
    assert metrics["preference/first_position_rate"] == 0.5
    # Judge A on 0-4, B on 5-9; without human ties (pair 9) 8 of 9 agree, with it 8 of 10.
    assert metrics["preference/accuracy"] == pytest.approx(8 / 9)
    assert metrics["preference/accuracy_with_ties"] == pytest.approx(0.8)
    # kappa over A/B/tie: p_o = 0.8; p_e = 0.5*0.4 (A) + 0.5*0.5 (B) + 0*0.1 (tie) = 0.45.
    assert metrics["preference/kappa"] == pytest.approx((0.8 - 0.45) / (1 - 0.45))
    assert metrics["preference/accuracy_ci_low"] <= 8 / 9 <= metrics["preference/accuracy_ci_high"]
    results = __import__("pandas").read_parquet(workdir / "out" / "results.parquet")
    assert results["judge_first"].tolist() == [0.0] * 5 + [1.0] * 5
    assert results["judge_second"].tolist() == [0.0] * 5 + [1.0] * 5  # mapped back to A/B


def test_pure_position_bias_becomes_ties_and_is_counted(workdir: Path) -> None:
    metrics, judge = _run(workdir, _always_a)
    assert judge.counters.requests_total == 20
    assert metrics["preference/n_inconsistent"] == 10
    assert metrics["preference/position_consistency"] == 0.0
    assert metrics["preference/first_position_rate"] == 1.0
    assert metrics["preference/tie_rate"] == 1.0
    # Every combined verdict is a tie: right only where the humans said tie (pair 9).
    assert metrics["preference/accuracy_with_ties"] == pytest.approx(0.1)
    assert (
        "preference/accuracy" not in metrics
        or metrics["preference/accuracy"] != metrics["preference/accuracy"]
    )  # no non-tie verdict to score: absent or NaN, never a number


def test_without_swap_each_pair_is_judged_once(workdir: Path) -> None:
    metrics, judge = _run(workdir, _always_a, ["judge.swap=false"])
    assert judge.counters.requests_total == 10
    # Judge says A everywhere: right on pairs 0-3 of the 9 without human ties.
    assert metrics["preference/accuracy"] == pytest.approx(4 / 9)
    assert "preference/position_consistency" not in metrics
