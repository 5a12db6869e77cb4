"""Repeat sampling (``runner.samples``) end to end: a fake judge with known draws per item, over
real HTTP, a real response cache and a real MLflow sqlite store; figures by hand."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from helpers import assert_one_line_error, judge_overrides, row_number, run_cli, write_jsonl

from judgekit.config.schema import JudgeConfig
from judgekit.errors import ConfigError
from judgekit.judge.cache import request_key
from judgekit.judge.client import SAMPLE_KEY, LiteLLMClient
from judgekit.results import COLUMNS
from judgekit.stats.repeats import krippendorff_alpha_units
from judgekit.testing.server import ChatRequest, FakeJudge, Reply

SEED = 100
# Each row's three draws (None: an answer that does not parse); humans give row i the score i % 5.
DRAWS: dict[int, list[int | None]] = {
    0: [2, 2, 2],
    1: [1, 3, 2],
    2: [4, None, 4],
    3: [0, 0, 1],
    4: [None, None, None],
    5: [3, 3, 3],
}
HUMAN = [i % 5 for i in DRAWS]


def _dataset(path: Path) -> Path:
    rows = [
        {"prompt": f"Question {i}", "response": f"Answer [row={i}]", "helpfulness": HUMAN[i]}
        for i in DRAWS
    ]
    return write_jsonl(path, rows)


def _answer(request: ChatRequest) -> Reply | str:
    """Draw s of a row is told apart by its seed (judge.extra_params.seed + s)."""
    value = DRAWS[row_number(request)][int(request.params["seed"]) - SEED]
    return "I cannot say." if value is None else json.dumps({"helpfulness": value})


def _config(judge: FakeJudge, data: Path, *extra: str) -> Any:
    import judgekit

    return judgekit.build_config(
        "openai_compatible",
        "v1",
        "helpfulness",
        str(data),
        parallelism=2,
        overrides=[
            *judge_overrides(judge, key=False),
            f"+judge.extra_params.seed={SEED}",
            "stats.bootstrap_resamples=200",
            f"tracking.uri=sqlite:///{data.parent}/mlflow.db",  # this test's own store
            *extra,
        ],
    )


def _runs(workdir: Path) -> tuple[Any, list[Any]]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{workdir}/mlflow.db")
    exp = client.get_experiment_by_name("judgekit")
    return client, client.search_runs([exp.experiment_id], order_by=["attributes.start_time ASC"])


def _metrics(workdir: Path) -> list[dict[str, float]]:
    return [r.data.metrics for r in _runs(workdir)[1]]


def test_draws_are_reduced_kept_measured_and_replayed_from_the_cache(
    workdir: Path, private_cache_dir: Path
) -> None:
    import sqlite3
    from contextlib import closing

    from judgekit.judge.cache import DB_NAME
    from judgekit.pipeline import run

    data = _dataset(workdir / "val.jsonl")
    with FakeJudge(_answer) as judge:
        result = run(_config(judge, data, "runner.samples=3"), workdir / "out")
        # Three distinct requests per row, one per draw, each with its own seed.
        assert judge.counters.requests_total == 18
        assert len(judge.counters.bodies) == 18
        seeds = sorted(int(b["seed"]) for b in judge.counters.bodies)
        assert seeds == [SEED] * 6 + [SEED + 1] * 6 + [SEED + 2] * 6
        assert all(SAMPLE_KEY not in b for b in judge.counters.bodies)  # hashed, never sent
        with closing(sqlite3.connect(private_cache_dir / DB_NAME)) as db:  # an entry per draw
            assert db.execute("SELECT COUNT(*) FROM responses").fetchone() == (18,)
        rerun = run(_config(judge, data, "runner.samples=3"), workdir / "again")
        assert judge.counters.requests_total == 18  # the rerun sent no call

    table = pd.read_parquet(workdir / "out" / "results.parquet")
    assert list(table.columns) == COLUMNS and len(table) == 6  # one row per (example, score)
    # mean of the successful draws: (1 + 3 + 2) / 3 = 2, (4 + 4) / 2 = 4, (0 + 0 + 1) / 3 = 1/3
    expected = [2.0, 2.0, 4.0, 1 / 3, math.nan, 3.0]
    assert table["judge"].to_numpy() == pytest.approx(expected, nan_ok=True)
    assert pd.isna(table.loc[2, "failure_reason"])
    assert table.loc[2, "failure_detail"] == (
        "reduced (mean) from 2 of 3 draws; failed: parse_error ×1"
    )
    assert table.loc[4, "failure_reason"] == "parse_error"  # no successful draw: a failed row
    assert table.loc[4, "failure_detail"] == "no successful draw of 3: parse_error ×3"

    samples = pd.read_parquet(workdir / "out" / "samples.parquet")
    assert list(samples.columns) == [*COLUMNS[:5], "sample", *COLUMNS[5:]]
    assert len(samples) == 18
    draws = samples.pivot(index="example_index", columns="sample", values="judge").to_numpy()
    as_float = np.array([[math.nan if v is None else v for v in d] for d in DRAWS.values()])
    np.testing.assert_array_equal(draws, as_float)
    assert samples["failure_reason"].value_counts().to_dict() == {"parse_error": 4}

    # Items with two or more successful draws: rows 0, 1, 2, 3, 5 (row 4 has none).
    # flip rate: rows 1 and 3 disagree → 2 / 5 = 0.4
    # sample std (ddof=1): row 1 std(1, 3, 2) = 1; row 3 std(0, 0, 1) = sqrt((1/9+1/9+4/9)/2)
    #   = sqrt(1/3); the others 0 → (1 + sqrt(1/3)) / 5
    first, *_ = _metrics(workdir)
    assert first["helpfulness/flip_rate"] == pytest.approx(0.4)
    assert first["helpfulness/sample_std"] == pytest.approx((1 + math.sqrt(1 / 3)) / 5)
    alpha = krippendorff_alpha_units(as_float, "ordinal")  # checked against Krippendorff (2011)
    assert first["helpfulness/test_retest_alpha"] == pytest.approx(alpha)
    assert first["helpfulness/n_failed_draws"] == 4 and first["helpfulness/n_draws"] == 18
    assert first["failures/parse_error"] == 1  # one failed row, after reduction
    assert result.stability["helpfulness"].level == "ordinal"
    from judgekit.report import format_report

    printed = format_report(result)
    assert "test_retest_alpha" in printed and "flip_rate" in printed
    summary = json.loads((workdir / "out" / "summary.json").read_text())
    assert summary["repeat_sampling"]["helpfulness"]["flip_rate"] == pytest.approx(0.4)

    # Agreement vs draws: MAE of the reduction of the first j draws with humans (0, 1, 2, 3, 0
    # on rows 0, 1, 2, 3, 5): j=1 |2|+|0|+|2|+|3|+|3| = 10 → 2.0; j=2 (rows 1, 3: 2, 0)
    # |2|+|1|+|2|+|3|+|3| = 11 → 2.2; j=3 |2|+|1|+|2|+|1/3 - 3|+|3| = 32/3 → 32/15.
    curve = pd.read_csv(workdir / "out" / "agreement_vs_samples.csv")
    mae = curve[curve["statistic"] == "mae"].sort_values("draws")
    assert mae["value"].to_list() == pytest.approx([2.0, 2.2, 32 / 15])
    assert set(curve["statistic"]) == {"spearman", "qwk", "mae"}
    assert (mae["ci_low"] <= mae["value"]).all() and (mae["value"] <= mae["ci_high"]).all()
    assert (workdir / "out" / "agreement_vs_samples.png").is_file()

    unstable = pd.read_csv(workdir / "out" / "unstable_items.csv")
    assert unstable["example_index"].to_list() == [1, 3]  # three distinct values first
    assert unstable["draws"].to_list() == ["1, 3, 2", "0, 0, 1"]
    assert unstable["human"].to_list() == [1.0, 3.0]

    client, runs = _runs(workdir)
    logged = {a.path for a in client.list_artifacts(runs[0].info.run_id)}
    assert {
        "samples.parquet",
        "agreement_vs_samples.csv",
        "agreement_vs_samples.png",
        "unstable_items.csv",
        "unstable_items.json",
    } <= logged

    # The rerun replays all k draws from the cache: the same draws, every one cached.
    again = pd.read_parquet(workdir / "again" / "samples.parquet")
    assert again["cached"].all()
    pd.testing.assert_series_equal(again["judge"], samples["judge"])
    assert rerun.stability == result.stability


def test_one_sample_is_the_run_without_repeats(workdir: Path) -> None:
    from judgekit.pipeline import run

    data = _dataset(workdir / "val.jsonl")
    with FakeJudge(_answer) as judge:
        result = run(_config(judge, data), workdir / "out")
        assert judge.counters.requests_total == 6
    assert result.samples is None and result.stability == {}
    from judgekit.report import format_report

    assert "test_retest_alpha" not in format_report(result)
    assert not (workdir / "out" / "samples.parquet").exists()
    assert list(pd.read_parquet(workdir / "out" / "results.parquet").columns) == COLUMNS
    assert not any("test_retest" in name for name in _metrics(workdir)[0])
    assert "repeat_sampling" not in json.loads((workdir / "out" / "summary.json").read_text())


MESSAGES = [
    {"role": "system", "content": "You are a judge."},
    {"role": "user", "content": "rate answer 0"},
]


@pytest.mark.parametrize(
    ("settings", "main_key"),
    [
        ({}, "e39e4901999c57e7967b9ae42c14fd03e7dd62f2ac1a08bc9998c0d2102d5a6f"),
        (
            {"temperature": 0.7, "extra_params": {"seed": 5}},
            "7bf762017fda1ba154226cf5fa784a52be251f6022c6d2abd95df2822ef8c62c",
        ),
    ],
)
def test_the_first_draw_keeps_the_cache_key_of_main(settings: dict, main_key: str) -> None:
    # main_key: request_key(LiteLLMClient(judge).request_params(MESSAGES)) computed with main
    # before repeat sampling existed (commit 66ae0f3), so existing caches still hit.
    judge = JudgeConfig(
        name="fake", model="openai/fake-judge", api_base="http://127.0.0.1:1/v1", **settings
    )
    client = LiteLLMClient(judge, api_key="sk-test")
    assert request_key(client.request_params(MESSAGES)) == main_key
    assert request_key(client.request_params(MESSAGES, 0)) == main_key
    keys = {request_key(client.request_params(MESSAGES, s)) for s in range(4)}
    assert len(keys) == 4  # every draw its own entry


def test_a_later_draw_sends_the_next_seed() -> None:
    judge = JudgeConfig(name="fake", model="m", temperature=0.7, extra_params={"seed": 5})
    params = LiteLLMClient(judge, api_key=None).request_params(MESSAGES, 2)
    assert (params["seed"], params[SAMPLE_KEY]) == (7, 2)


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        (["runner.samples=3"], "runner.samples: 3 draws at judge.temperature=0"),
        (["runner.samples=0"], "runner.samples: 0 is not valid"),
        (["runner.reduce=vote"], "runner.reduce"),
        (["runner.reduce=expected"], "runner.reduce: expected averages"),
        (
            [
                "runner.samples=2",
                "judge.temperature=0.7",
                "runner.rejudge=failed",
                "runner.rejudge_from=out",
            ],
            "runner.rejudge: not available with runner.samples > 1",
        ),
    ],
)
def test_sampling_setup_errors_fail_at_compose(overrides: list[str], needle: str) -> None:
    import judgekit

    with pytest.raises(ConfigError, match=needle):
        judgekit.build_config(
            "openai_compatible",
            "v1",
            "helpfulness",
            "val.jsonl",
            overrides=["judge.model=openai/fake-judge", *overrides],
        )


def test_samples_at_temperature_zero_exit_2_before_any_call(workdir: Path) -> None:
    data = _dataset(workdir / "val.jsonl")
    with FakeJudge(_answer) as judge:
        proc = run_cli(
            [
                *judge_overrides(judge),
                "dataset=jsonl",
                f"dataset.path={data}",
                "score=helpfulness",
                "runner.samples=3",
            ],
            workdir,
        )
        assert judge.counters.requests_total == 0
    assert_one_line_error(proc, "runner.samples: 3 draws at judge.temperature=0")


# Preference with judge.swap: each draw asks both orders; the judge is consistent within a draw
# (it names the same response in both orders), so a draw's combined verdict is that verdict.
# GOOD is always ans1 (response A as given). None: an answer that does not parse (both orders).
VERDICTS: dict[int, list[str | None]] = {
    0: ["good", "good", "good"],  # A, A, A → A
    1: ["good", "bad", "good"],  # A, B, A → A (2 of 3)
    2: ["good", "bad", "tie"],  # A, B, tie → no majority: tie
    3: [None, "good", "bad"],  # failed, A, B → tie between the 2 successful draws
}


def _pairs(path: Path) -> Path:
    rows = [
        {"qid": f"q{i}", "question": f"question {i}", "ans1": f"GOOD {i}", "ans2": f"BAD {i}"}
        | {"winner": "model_b" if i == 2 else "model_a"}
        for i in VERDICTS
    ]
    return write_jsonl(path, rows)


def _verdict(request: ChatRequest) -> str:
    text = request.last_user_text
    pair = int(text[text.index("GOOD ") + 5])
    verdict = VERDICTS[pair][int(request.params["seed"]) - SEED]
    if verdict is None:
        return "no idea"
    if verdict == "tie":
        return json.dumps({"preference": "tie"})
    shown_a = text[text.index("[RESPONSE A]") : text.index("[/RESPONSE A]")]
    good_letter, bad_letter = ("A", "B") if "GOOD" in shown_a else ("B", "A")
    return json.dumps({"preference": good_letter if verdict == "good" else bad_letter})


def test_preference_draws_take_the_majority_with_ties_as_ties(workdir: Path) -> None:
    import judgekit
    from judgekit.pipeline import run

    data = _pairs(workdir / "pairs.jsonl")
    with FakeJudge(_verdict) as judge:
        cfg = judgekit.build_config(
            "openai_compatible",
            "pairwise_v1",
            "preference",
            "pairwise_jsonl",
            overrides=[
                *judge_overrides(judge, key=False),
                f"dataset.path={data}",
                "dataset.fields.id=qid",
                "dataset.fields.prompt=question",
                "dataset.fields.extra.response_a=ans1",
                "dataset.fields.extra.response_b=ans2",
                "dataset.fields.scores.preference=winner",
                "++dataset.fields.label_map={model_a: A, model_b: B, tie: tie}",
                "judge.swap=true",
                "judge.temperature=0.7",
                f"+judge.extra_params.seed={SEED}",
                "runner.samples=3",
                "stats.bootstrap_resamples=100",
                f"tracking.uri=sqlite:///{workdir}/mlflow.db",
            ],
        )
        result = run(cfg, workdir / "out")
        assert judge.counters.requests_total == 4 * 3 * 2  # pairs × draws × orders
    table = pd.read_parquet(workdir / "out" / "results.parquet")
    assert table["judge"].to_list() == [0.0, 0.0, 0.5, 0.5]  # A = 0, B = 1, tie = 0.5
    assert table["judge_first"].to_list() == [0.0, 0.0, 0.5, 0.5]  # majority of each order too
    assert table.loc[3, "failure_detail"] == (
        "reduced (majority) from 2 of 3 draws; failed: parse_error ×1"
    )
    samples = pd.read_parquet(workdir / "out" / "samples.parquet")
    draws = samples.pivot(index="example_index", columns="sample", values="judge").to_numpy()
    np.testing.assert_array_equal(draws, [[0, 0, 0], [0, 1, 0], [0, 1, 0.5], [math.nan, 0, 1]])
    figures = result.stability["preference"]
    assert figures.level == "nominal"
    # Coincidences (each unit's ordered pairs / (m_u - 1)): o_AA = 3 + 1 = 4, o_AB = o_BA =
    # 1 + 0.5 + 1 = 2.5, o_At = o_tA = o_Bt = o_tB = 0.5; n_A = 7, n_B = 3, n_tie = 1, n = 11.
    # alpha = 1 - (n - 1) · Σ_{c≠k} o_ck / Σ_{c≠k} n_c n_k = 1 - 10 · 7 / (2 · (21 + 7 + 3))
    #       = 1 - 70 / 62 = -4 / 31
    assert figures.test_retest_alpha == pytest.approx(-4 / 31)
    assert figures.flip_rate == pytest.approx(3 / 4)  # pairs 1, 2, 3 of 4
    # std (ddof=1): (0, 1, 0) sqrt(1/3); (0, 1, 0.5) 0.5; (0, 1) sqrt(1/2); (0, 0, 0) 0
    assert figures.sample_std == pytest.approx((math.sqrt(1 / 3) + 0.5 + math.sqrt(0.5)) / 4)
    assert figures.n_failed_draws == 1
    curve = pd.read_csv(workdir / "out" / "agreement_vs_samples.csv")
    assert set(curve["statistic"]) == {"accuracy"} and curve["draws"].to_list() == [1, 2, 3]


def test_reduce_expected_averages_the_draws_logprob_expected_scores(workdir: Path) -> None:
    from judgekit.pipeline import run
    from judgekit.testing.server import synthesise_logprobs

    draws: dict[int, list[int | None]] = {0: [1, 3], 1: [2, None]}

    def answer(request: ChatRequest) -> Reply:
        value = draws[row_number(request)][int(request.params["seed"]) - SEED]
        content = "I cannot say." if value is None else json.dumps({"helpfulness": value})
        return Reply(content, logprobs=synthesise_logprobs(content))

    rows = [{"prompt": f"Q{i}", "response": f"A [row={i}]", "helpfulness": 2} for i in draws]
    data = write_jsonl(workdir / "val.jsonl", rows)
    with FakeJudge(answer) as judge:
        cfg = _config(
            judge, data, "runner.samples=2", "runner.reduce=expected", "judge.logprobs=true"
        )
        run(cfg, workdir / "out")
    table = pd.read_parquet(workdir / "out" / "results.parquet")
    # A digit d is chosen at 0.7, d+1 listed at 0.2 and d-1 at 0.1: expected d + 0.1.
    # Row 0: (1.1 + 3.1) / 2 = 2.1 (the mean of the draws' values would be 2); row 1: its one
    # successful draw, 2.1, and the failed one said.
    assert table["judge"].to_list() == pytest.approx([2.1, 2.1])
    assert table.loc[1, "failure_detail"] == (
        "reduced (expected) from 1 of 2 draws; failed: parse_error ×1"
    )


def test_a_failed_call_is_a_failed_draw_not_a_failed_item(workdir: Path) -> None:
    from judgekit.pipeline import run

    def answer(request: ChatRequest) -> Reply | str:
        draw = int(request.params["seed"]) - SEED
        if row_number(request) == 0 and draw == 1:
            return Reply("no such parameter", status=400)  # bad_request: never retried
        return json.dumps({"helpfulness": 1 + draw})

    data = write_jsonl(
        workdir / "val.jsonl",
        [{"prompt": f"Q{i}", "response": f"A [row={i}]", "helpfulness": 1} for i in range(2)],
    )
    with FakeJudge(answer) as judge:
        result = run(_config(judge, data, "runner.samples=2"), workdir / "out")
        assert judge.counters.requests_total == 4
    samples = pd.read_parquet(workdir / "out" / "samples.parquet")
    failed = samples[samples["failure_reason"].notna()]
    assert failed[["example_index", "sample", "failure_reason"]].values.tolist() == [
        [0, 1, "bad_request"]
    ]
    assert math.isnan(failed["judge"].iloc[0])  # NaN, never a zero
    # Row 0 stands on its draw 0 (1) alone; row 1 is the mean of 1 and 2.
    assert result.results["judge"].to_list() == [1.0, 1.5]
    assert result.results["failure_detail"].iloc[0] == (
        "reduced (mean) from 1 of 2 draws; failed: bad_request ×1"
    )
    assert result.failures == {}  # no item failed
    assert result.stability["helpfulness"].n_failed_draws == 1


def test_a_client_without_draws_is_refused_with_a_message_not_a_traceback() -> None:
    import asyncio

    from judgekit.errors import RunError
    from judgekit.judge.client import JudgeResponse, complete_draw

    class OneShot:  # a third-party client written before runner.samples existed
        async def complete(self, messages: list[dict[str, str]]) -> JudgeResponse:
            return JudgeResponse("{}")

    assert asyncio.run(complete_draw(OneShot(), MESSAGES, 0)).text == "{}"  # type: ignore[arg-type]
    with pytest.raises(RunError, match=r"runner.samples: OneShot cannot send draw 1"):
        complete_draw(OneShot(), MESSAGES, 1)  # type: ignore[arg-type]
