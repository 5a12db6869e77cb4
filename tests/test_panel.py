"""Judge panels (``judge=panel``) end to end: three fake judges with known answers per item over
real HTTP, a real response cache and a real MLflow sqlite store; every figure by hand."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from helpers import (
    FAST_RETRIES,
    PAIRS_FILE_OVERRIDES,
    assert_one_line_error,
    row_number,
    run_cli,
    write_jsonl,
)

from judgekit.testing.server import ChatRequest, FakeJudge

# Each member's answer per row (None: an answer that does not parse); humans give row i HUMAN[i].
ANSWERS: dict[str, list[int | None]] = {
    "a": [0, 1, 2, 3, 4, 0, 2, 4],
    "b": [0, 1, 2, 3, 3, 1, 2, None],
    "c": [0, 2, 2, 1, 3, 2, None, None],
}
HUMAN = [0, 1, 2, 3, 4, 0, 2, 4]
ROWS = len(HUMAN)


def _dataset(path: Path) -> Path:
    rows = [
        {"prompt": f"Question {i}", "response": f"Answer [row={i}]", "helpfulness": HUMAN[i]}
        for i in range(ROWS)
    ]
    return write_jsonl(path, rows)


def _answer(request: ChatRequest) -> str:
    value = ANSWERS[request.model.removeprefix("openai/")][row_number(request)]
    return "I cannot say." if value is None else json.dumps({"helpfulness": value})


def member_overrides(judge: FakeJudge, names: list[str]) -> list[str]:
    """A panel of fake judges: member ``i`` is model ``names[i]`` on ``judge``'s server."""
    out = ["judge=panel", f"judge.members=[{','.join(['openai_compatible'] * len(names))}]"]
    for i, name in enumerate(names):
        out += [
            f"judge.members.{i}.name={name}",
            f"judge.members.{i}.model=openai/{name}",
            f"judge.members.{i}.api_base={judge.url}",
            *(o.replace("judge.", f"judge.members.{i}.", 1) for o in FAST_RETRIES),
        ]
    return out


def _config(judge: FakeJudge, data: Path, names: list[str], *extra: str) -> Any:
    import judgekit

    return judgekit.build_config(
        "panel",
        "v1",
        "helpfulness",
        str(data),
        parallelism=2,
        overrides=[
            *member_overrides(judge, names),
            "stats.bootstrap_resamples=200",
            f"tracking.uri=sqlite:///{data.parent}/mlflow.db",
            *extra,
        ],
    )


def _metrics(workdir: Path) -> list[dict[str, float]]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{workdir}/mlflow.db")
    exp = client.get_experiment_by_name("judgekit")
    runs = client.search_runs([exp.experiment_id], order_by=["attributes.start_time ASC"])
    return [r.data.metrics for r in runs]


def test_a_mean_panel_combines_its_members_and_measures_them(workdir: Path) -> None:
    from judgekit.pipeline import run

    data = _dataset(workdir / "val.jsonl")
    with FakeJudge(_answer) as judge:
        result = run(_config(judge, data, ["a", "b", "c"]), workdir / "out")
        assert judge.counters.requests_total == 3 * ROWS

    table = pd.read_parquet(workdir / "out" / "results.parquet")
    # mean of the members that answered: row 1 (1+1+2)/3, row 3 (3+3+1)/3, row 4 (4+3+3)/3,
    # row 5 (0+1+2)/3, row 6 (2+2)/2 (c failed), row 7 a alone (b and c failed)
    expected = [0, 4 / 3, 2, 7 / 3, 10 / 3, 1, 2, 4]
    assert table["judge"].to_numpy() == pytest.approx(expected)
    assert table["failure_reason"].isna().all()
    assert table.loc[6, "failure_detail"] == "from 2 of 3 members: a=2, b=2, c=failed (parse_error)"

    members = pd.read_parquet(workdir / "out" / "members.parquet")
    assert list(members["member"].unique()) == ["a", "b", "c"] and len(members) == 3 * ROWS
    assert (members["split"] == "evaluation").all()

    metrics = _metrics(workdir)[0]
    # a's MAE: exact on every row → 0; b's: |4-3| + |0-1| over 7 answered rows = 2/7
    assert metrics["helpfulness/member/a/mae"] == pytest.approx(0.0)
    assert metrics["helpfulness/member/b/mae"] == pytest.approx(2 / 7)
    assert metrics["failures/member/b/parse_error"] == 1
    assert metrics["failures/member/c/parse_error"] == 2
    # the panel's MAE: |4/3-1| + |7/3-3| + |10/3-4| + |1-0| = 1/3 + 2/3 + 2/3 + 1 = 8/3 over 8
    assert metrics["helpfulness/mae"] == pytest.approx(8 / 3 / 8)
    assert "helpfulness/inter_judge_alpha" in metrics
    assert metrics["cost/panel/items"] == metrics["cost/panel/attempts"] == 3 * ROWS
    assert metrics["cost/a/items"] == ROWS
    # the fake judge reports usage: the panel's tokens are its members' summed
    members_tokens = sum(metrics[f"cost/{m}/prompt_tokens"] for m in ("a", "b", "c"))
    assert metrics["cost/panel/prompt_tokens"] == members_tokens > 0
    assert "cost/panel/cost_usd" not in metrics  # litellm knows no price for openai/a: none
    for member in ("a", "b", "c"):
        assert f"helpfulness/member/{member}/loo_change" in metrics
        assert f"helpfulness/member/{member}/loo_change_ci_low" in metrics
    assert result.panel is not None and result.panel.names == ["a", "b", "c"]
    kappa = pd.read_csv(workdir / "out" / "member_agreement_helpfulness.csv", index_col="member")
    assert list(kappa.columns) == ["a", "b", "c"]
    assert (workdir / "out" / "member_agreement_helpfulness.png").is_file()
    assert (workdir / "out" / "leave_one_out.csv").is_file()


@pytest.mark.parametrize(
    ("how", "expected", "abstained"),
    [
        # strict: row 5 split 0/1/2, row 6 c failed, row 7 b and c failed → three abstentions;
        # row 4 (4, 3, 3) → 3
        ("strict_majority", [0, 1, 2, 3, 3, math.nan, math.nan, math.nan], [5, 6, 7]),
        # majority of those that answered: row 6 (2, 2) → 2, row 7 a alone → 4; row 5 split
        ("majority", [0, 1, 2, 3, 3, math.nan, 2, 4], [5]),
        ("median", [0, 1, 2, 3, 3, 1, 2, 4], []),
    ],
)
def test_majorities_abstain_when_the_members_split_or_one_failed(
    workdir: Path, how: str, expected: list[float], abstained: list[int]
) -> None:
    from judgekit.pipeline import run

    data = _dataset(workdir / "val.jsonl")
    with FakeJudge(_answer) as judge:
        result = run(
            _config(judge, data, ["a", "b", "c"], f"judge.aggregate={how}"), workdir / "out"
        )
    table = result.results
    assert table["judge"].to_numpy() == pytest.approx(expected, nan_ok=True)
    flagged = table.index[table["failure_reason"] == "no_majority"].to_list()
    assert flagged == abstained  # counted, never silently decided
    assert result.failures.get("no_majority", 0) == len(abstained)
    if abstained:
        assert _metrics(workdir)[0]["failures/no_majority"] == len(abstained)
        assert table.loc[5, "failure_detail"] == "the panel did not decide: a=0, b=1, c=2"


def test_weights_are_fitted_on_the_calibration_rows_only(workdir: Path) -> None:
    """On the calibration rows member a is exact and b the mirror image (4 - human); on the
    other rows the reverse. Weights fitted on the calibration rows only are (1, 0), and the
    panel, reported on the other rows only, then gives 4 - human there."""
    from judgekit.pipeline import run
    from judgekit.stats.calibration import calibration_split

    fit, shown = calibration_split(ROWS, None, 0.5, 0)  # runner.seed 0, judge.weights_split 0.5

    def answer(request: ChatRequest) -> str:
        row = row_number(request)
        exact = (request.model == "a") == (row in fit)
        return json.dumps({"helpfulness": HUMAN[row] if exact else 4 - HUMAN[row]})

    data = _dataset(workdir / "val.jsonl")
    with FakeJudge(answer) as judge:
        result = run(
            _config(judge, data, ["a", "b"], "judge.aggregate=weighted", "judge.weights_split=0.5"),
            workdir / "out",
        )
    assert result.panel.calibration == list(fit)
    assert result.panel.weights["helpfulness"]["a"] == pytest.approx(1.0, abs=1e-6)
    assert result.panel.weights["helpfulness"]["b"] == pytest.approx(0.0, abs=1e-6)
    table = pd.read_parquet(workdir / "out" / "results.parquet")
    assert table["example_index"].to_list() == list(shown)  # calibration rows left out
    human = np.array(HUMAN, dtype=float)[shown]
    assert table["judge"].to_numpy() == pytest.approx(4 - human, abs=1e-6)
    metrics = _metrics(workdir)[0]
    # every figure is on the shown rows: the panel's MAE is mean |4 - 2h| there, b's 0
    assert metrics["helpfulness/mae"] == pytest.approx(np.mean(np.abs(4 - 2 * human)), abs=1e-6)
    assert metrics["helpfulness/member/b/mae"] == pytest.approx(0.0)
    assert metrics["helpfulness/member/a/weight"] == pytest.approx(1.0, abs=1e-6)
    members = pd.read_parquet(workdir / "out" / "members.parquet")
    calibration = members[members["split"] == "calibration"]["example_index"].unique()
    assert sorted(calibration) == sorted(fit)
    saved = json.loads((workdir / "out" / "panel_weights.json").read_text())
    assert saved["calibration_rows"] == [int(i) for i in fit]


def test_a_member_added_later_reuses_the_others_cached_calls(workdir: Path) -> None:
    from judgekit.pipeline import run

    data = _dataset(workdir / "val.jsonl")
    with FakeJudge(_answer) as judge:
        run(_config(judge, data, ["a", "b"]), workdir / "two")
        assert judge.counters.requests_total == 2 * ROWS
        three = run(_config(judge, data, ["a", "b", "c"]), workdir / "three")
        assert judge.counters.requests_total == 3 * ROWS  # only c's calls were sent
        models = [b["model"] for b in judge.counters.bodies]
        assert models[2 * ROWS :] == ["c"] * ROWS
    members = three.panel.members
    cached = members.groupby("member")["cached"].all().to_dict()
    assert cached == {"a": True, "b": True, "c": False}
    cost = three.panel.cost.set_index("member")
    assert cost.loc["a", "attempts"] == 0 and cost.loc["a", "items"] == ROWS  # from the cache
    assert cost.loc["c", "attempts"] == ROWS


def _pairs(path: Path) -> None:
    """GOOD is in ans1 for pairs 0-4 and in ans2 for 5-9; humans agree on 0-3 and 5-8,
    disagree on 4 and call 9 a tie."""
    winners = ["model_a"] * 4 + ["model_b"] * 5 + ["tie"]
    rows = []
    for i, winner in enumerate(winners):
        good, bad = f"GOOD answer {i}", f"BAD answer {i}"
        ans1, ans2 = (good, bad) if i < 5 else (bad, good)
        rows.append(
            {"qid": f"q{i}", "question": f"q {i}", "ans1": ans1, "ans2": ans2, "winner": winner}
        )
    write_jsonl(path, rows)


def _pair_answer(request: ChatRequest) -> str:
    """``good*`` members pick the response holding GOOD; ``first`` always the one shown first."""
    text = request.last_user_text
    shown_a = text[text.index("[RESPONSE A]") : text.index("[/RESPONSE A]")]
    if request.model == "first":
        return '{"preference": "A"}'
    return json.dumps({"preference": "A" if "GOOD" in shown_a else "B"})


def _pair_panel(
    workdir: Path, names: list[str], how: str, *extra: str
) -> tuple[Any, dict[str, float]]:
    _pairs(workdir / "pairs.jsonl")
    with FakeJudge(_pair_answer) as judge:
        proc = run_cli(
            [
                *member_overrides(judge, names),
                *PAIRS_FILE_OVERRIDES,
                "judge.swap=true",
                f"judge.aggregate={how}",
                "hydra.run.dir=out",
                *extra,
            ],
            workdir,
        )
        assert proc.returncode == 0, proc.stderr
        assert judge.counters.requests_total == 2 * 10 * len(names)  # both orders, each member
    return pd.read_parquet(workdir / "out" / "results.parquet"), _metrics(workdir)[0]


@pytest.mark.slow
def test_a_pairwise_panel_with_swap_combines_each_order_then_the_orders(workdir: Path) -> None:
    table, metrics = _pair_panel(workdir, ["good", "first", "good2"], "majority")
    # Each order: two of three pick GOOD, so the panel does; both orders agree → GOOD's side.
    assert table["judge"].to_list() == [0.0] * 5 + [1.0] * 5
    assert metrics["preference/position_consistency"] == 1.0
    assert metrics["preference/member/first/position_consistency"] == 0.0
    # Humans agree on 8 of the 9 decided non-tie pairs (pair 4 disagrees): 8/9, as member good.
    assert metrics["preference/accuracy"] == pytest.approx(8 / 9)
    assert metrics["preference/member/good/accuracy"] == pytest.approx(8 / 9)
    # member × member Cohen's κ: good and good2 agree everywhere → 1
    kappa = pd.read_csv(workdir / "out" / "member_agreement_preference.csv", index_col="member")
    assert kappa.loc["good", "good2"] == pytest.approx(1.0)


@pytest.mark.slow
def test_a_split_pair_panel_abstains_under_strict_majority(workdir: Path) -> None:
    # In each order good and first disagree on half the pairs: 1-1 is no strict majority; the
    # other half they agree in one order and split in the other. Every pair has a split order.
    table, metrics = _pair_panel(
        workdir, ["good", "first"], "strict_majority", "runner.min_coverage=0"
    )
    assert table["judge"].isna().all()
    assert (table["failure_reason"] == "no_majority").all()
    assert metrics["failures/no_majority"] == 10


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("judge.members.5.temperature=0.7", "judge.members.5: there is no member 5"),
        ("judge.members.1.temprature=0.7", "judge.members.1: Key 'temprature' not in"),
        ("judge.members=[local]", "judge.members: a panel needs two or more members"),
        ("judge.members=[nope,local]", "judge.members.0: judge=nope: Could not find"),
        ("judge.aggregate=avg", "judge.aggregate: 'avg' is not valid; use mean, median"),
        ("judge.members.0.temperature=-1", "judge.members.0.temperature: -1.0 is not valid"),
        ("judge.max_tokens=64", "judge.max_tokens: a panel's members keep their own settings"),
        ("judge.members=[local,local]", "judge.members.0 and judge.members.1 are the same judge"),
        ("judge.members.1.name=a/b", "judge.members.1.name: 'a/b' is not valid"),
        ("runner.samples=2", "judge.members.0 (local): runner.samples: 2 draws at judge.members.0"),
    ],
)
def test_a_bad_panel_is_one_line_naming_the_key(workdir: Path, override: str, needle: str) -> None:
    proc = run_cli(["judge=panel", "dataset=demo", override], workdir)
    assert_one_line_error(proc, needle)


@pytest.mark.slow
def test_compare_puts_a_real_panel_beside_its_members(workdir: Path) -> None:
    from mlflow.tracking import MlflowClient

    from judgekit.compare.runs import compare
    from judgekit.pipeline import run

    data = _dataset(workdir / "val.jsonl")
    with FakeJudge(_answer) as judge:
        panel = run(_config(judge, data, ["a", "b", "c"]), workdir / "out")
    client = MlflowClient(tracking_uri=f"sqlite:///{workdir}/mlflow.db")
    c = compare(client, run_ids=[panel.run_id], resamples=100, min_shared=5)
    labels = [r.label for r in c.runs]
    assert len(labels) == 4 and [label.rpartition("/")[2] for label in labels[1:]] == [
        "a",
        "b",
        "c",
    ]
    assert c.baseline.run_id == panel.run_id  # the panel, its members compared with it
    member_a = c.table[c.table["label"].str.endswith("/member/a")].iloc[0]
    assert member_a["mae"] == pytest.approx(0.0)  # a is exact on every row
    paired = c.paired[c.paired["statistic"] == "mae"]
    b = paired[paired["label"].str.endswith("/member/b")].iloc[0]
    # b - panel on the 7 rows b answered: b's MAE 2/7; the panel's there (row 7 left out)
    # |4/3-1| + |7/3-3| + |10/3-4| + |1-0| = 8/3 → 8/21
    assert b["difference"] == pytest.approx(2 / 7 - 8 / 21)


def test_members_sampled_k_times_are_reduced_then_combined(workdir: Path) -> None:
    """``runner.samples=3``: each member's draws reduce to its value (the mean), the panel
    combines those; each member's test–retest figures are logged under its name."""
    from judgekit.pipeline import run

    draws = {  # member → row → its three draws (draw s is sent seed 100 + s)
        "a": [[0, 0, 0], [1, 1, 1], [2, 2, 2], [3, 3, 3]],
        "b": [[0, 1, 2], [1, 1, 1], [2, 2, None], [4, 4, 4]],
    }

    def answer(request: ChatRequest) -> str:
        value = draws[request.model][row_number(request)][int(request.params["seed"]) - 100]
        return "I cannot say." if value is None else json.dumps({"helpfulness": value})

    data = write_jsonl(
        workdir / "val.jsonl",
        [
            {"prompt": f"Q {i}", "response": f"A [row={i}]", "helpfulness": HUMAN[i]}
            for i in range(4)
        ],
    )
    seeds = [f"++judge.members.{i}.extra_params.seed=100" for i in range(2)]
    with FakeJudge(answer) as judge:
        result = run(_config(judge, data, ["a", "b"], "runner.samples=3", *seeds), workdir / "out")
        assert judge.counters.requests_total == 2 * 4 * 3
    # b's means: 1, 1, 2 (2 of 3 draws), 4; a's: 0, 1, 2, 3; the panel's mean: .5, 1, 2, 3.5
    assert result.results["judge"].to_list() == pytest.approx([0.5, 1.0, 2.0, 3.5])
    metrics = _metrics(workdir)[0]
    # b: flip rate over rows with two or more successful draws: row 0 only flips → 1/4
    assert metrics["helpfulness/member/b/flip_rate"] == pytest.approx(0.25)
    assert metrics["helpfulness/member/a/flip_rate"] == 0.0
    assert metrics["helpfulness/member/b/n_failed_draws"] == 1
    # b's MAE on its reduced values against 0, 1, 2, 3: (1 + 0 + 0 + 1) / 4
    assert metrics["helpfulness/member/b/mae"] == pytest.approx(0.5)


@pytest.mark.slow
def test_a_split_pair_becomes_a_tie_that_says_so(workdir: Path) -> None:
    table, metrics = _pair_panel(workdir, ["good", "first"], "majority")
    # good is consistent, first always picks the first shown (inconsistent: a tie): in each
    # order they split on half the pairs, so every pair comes out a tie, and says why
    assert table["judge"].to_list() == [0.5] * 10
    assert table["failure_reason"].isna().all()  # a tie is a verdict, not a failure
    assert table["failure_detail"].str.startswith("the members split: a tie").all()
    assert metrics["preference/n_split_ties"] == 10


def test_weighted_without_rows_to_report_is_a_setup_error(workdir: Path) -> None:
    data = _dataset(workdir / "val.jsonl")
    with FakeJudge(_answer) as judge:
        proc = run_cli(
            [
                *member_overrides(judge, ["a", "b"]),
                "dataset=jsonl",
                f"dataset.path={data}",
                "dataset.fields.group=prompt",  # eight groups of one
                "judge.aggregate=weighted",
                "judge.weights_split=0.9",
            ],
            workdir,
        )
        assert judge.counters.requests_total == 0  # refused before any call
    assert_one_line_error(proc, "judge.weights_split: 0.9 of 8 examples")


@pytest.mark.slow
def test_member_keys_cannot_be_swept_from_a_config_file(workdir: Path) -> None:
    own = workdir / "conf" / "experiment"
    own.mkdir(parents=True)
    (own / "sweep_members.yaml").write_text(
        "# @package _global_\n"
        "defaults:\n  - override /judge: panel\n"
        "hydra:\n  mode: MULTIRUN\n  sweeper:\n    params:\n"
        "      judge.members.1.temperature: 0.3,0.7\n"
    )
    proc = run_cli(["--config-dir", str(workdir / "conf"), "+experiment=sweep_members"], workdir)
    assert_one_line_error(proc, "hydra.sweeper.params: judge.members.1.temperature cannot be swept")


@pytest.mark.slow
def test_doctor_checks_every_member(workdir: Path) -> None:
    data = _dataset(workdir / "val.jsonl")
    with FakeJudge(_answer) as judge:
        proc = run_cli(
            [
                "doctor",
                *member_overrides(judge, ["a", "b"]),
                "dataset=jsonl",
                f"dataset.path={data}",
            ],
            workdir,
        )
        assert judge.counters.requests_total == 2  # one probe per member
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "judge endpoint (a)" in proc.stdout and "judge endpoint (b)" in proc.stdout
