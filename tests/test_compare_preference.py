"""``judgekit compare`` on two real runs of a preference score: accuracy, ties and kappa.

Two runs of ``score=preference`` on the same 40 pairs against fake judges: run a always answers
A, run b picks the response holding GOOD (and returns no JSON on pair 7). The paired table must
hold the pairwise statistics, equal to :func:`paired_pairwise_comparison` computed here from the
two runs' ``results.parquet``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from helpers import PAIRS_FILE_OVERRIDES, judge_overrides, run_cli

from judgekit.cli.compare import main
from judgekit.compare.records import ComparedRun
from judgekit.compare.tables import metrics_table, paired_table
from judgekit.stats.pairwise import paired_pairwise_comparison
from judgekit.testing.server import ChatRequest, FakeJudge

N_PAIRS = 40
FAILED = 7
"""The pair judge b answers without JSON: a failed row, dropped from the comparison."""


def _winner(i: int) -> str:
    """GOOD is in ans1 on even pairs; humans pick it, except a tie on pairs 9, 19, ... and the
    other response on pairs 4, 14, ... (always even: they pick ans2)."""
    if i % 10 == 9:
        return "tie"
    good = "model_a" if i % 2 == 0 else "model_b"
    bad = "model_b" if good == "model_a" else "model_a"
    return bad if i % 10 == 4 else good


def _pairs(path: Path) -> None:
    with path.open("w") as f:
        for i in range(N_PAIRS):
            good, bad = f"GOOD answer {i}", f"BAD answer {i}"
            ans1, ans2 = (good, bad) if i % 2 == 0 else (bad, good)
            row = {"qid": f"q{i}", "question": f"question {i}", "ans1": ans1, "ans2": ans2}
            f.write(json.dumps({**row, "winner": _winner(i)}) + "\n")


def _always_a(request: ChatRequest) -> str:
    return '{"preference": "A"}'


def _prefers_good(request: ChatRequest) -> str:
    text = request.last_user_text
    if f"question {FAILED}" in text:  # "question 7" is no prefix of another of 0..39
        return "I cannot decide."
    a = text[text.index("[RESPONSE A]") : text.index("[/RESPONSE A]")]
    return json.dumps({"preference": "A" if "GOOD" in a else "B"})


def _run(workdir: Path, responder, out: str) -> None:  # noqa: ANN001
    with FakeJudge(responder) as judge:
        proc = run_cli(
            [
                *judge_overrides(judge),
                *PAIRS_FILE_OVERRIDES,
                f"hydra.run.dir={out}",
            ],
            workdir,
            # Its own cache: run b's judge may get the port run a's had, and so its cache keys.
            env={"JUDGEKIT_CACHE_DIR": str(workdir / f"cache_{out}")},
        )
    assert proc.returncode == 0, proc.stderr


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory whose mlflow.db holds run a (older, the baseline) and run b."""
    workdir = tmp_path_factory.mktemp("compare_preference")
    _pairs(workdir / "pairs.jsonl")
    _run(workdir, _always_a, "out_a")
    _run(workdir, _prefers_good, "out_b")
    return workdir


def _independent(workdir: Path, resamples: int) -> dict[str, dict]:
    """paired_pairwise_comparison on the two results tables, aligned by example id here."""
    a, b = (pd.read_parquet(workdir / out / "results.parquet") for out in ("out_a", "out_b"))
    merged = a.merge(b, on="example_id", suffixes=("_a", "_b"))
    assert len(merged) == N_PAIRS and merged["group_a"].is_unique  # rows, not clusters
    rows = paired_pairwise_comparison(
        merged["human_a"].to_numpy(dtype=float),
        merged["judge_a"].to_numpy(dtype=float),
        merged["judge_b"].to_numpy(dtype=float),
        resamples=resamples,
        seed=0,  # runner.seed's default: compare seeds with the baseline's
    )
    return {row["statistic"]: row for row in rows}


def test_compare_uses_the_pairwise_statistics_for_a_preference_score(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    uri = f"sqlite:///{store}/mlflow.db"
    code = main(["--tracking-uri", uri, "--no-log", "--resamples", "400", "--out", str(out)])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    paired = pd.read_csv(out / "paired.csv").set_index("statistic")
    assert list(paired.index) == ["accuracy", "accuracy_with_ties", "kappa"]
    assert set(paired["score"]) == {"preference"}
    expected = _independent(store, 400)
    for name, row in expected.items():
        for key in ("a", "b", "difference", "ci_low", "ci_high", "p_value"):
            assert paired.loc[name, key] == pytest.approx(row[key], abs=1e-12), (name, key)
        assert paired.loc[name, "verdict"] == row["verdict"]
    # By hand on the 39 pairs both answered (pair 7 failed in b): humans say A on 16, B on 19,
    # tie on 4. a (always A) is right on the 16; b on all but pairs 4, 14, 24, 34 and the ties.
    assert paired.loc["accuracy", "a"] == pytest.approx(16 / 35)
    assert paired.loc["accuracy", "b"] == pytest.approx(31 / 35)
    assert paired.loc["accuracy_with_ties", "b"] == pytest.approx(31 / 39)
    assert (paired["n_common"] == 39).all() and (paired["n_dropped"] == 1).all()
    assert (paired["scheme"] == "rows").all() and (paired["verdict"] == "better").all()
    # The runs table holds the logged pairwise statistics, not the pointwise ones.
    table = pd.read_csv(out / "comparison.csv")
    assert {"accuracy", "kappa_ci_low"} <= set(table.columns) and "pearson" not in table.columns
    # Logged over every row: a right on 16 of the 36 without a human tie, b on 31 of 35.
    assert table["accuracy"].tolist() == pytest.approx([16 / 36, 31 / 35])
    markdown = (out / "comparison.md").read_text()
    assert "| run | accuracy | accuracy_with_ties | kappa |" in markdown
    assert "kappa" in printed.out and "pearson" not in printed.out


def test_explicit_statistics_must_suit_the_scores_kind(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    uri = f"sqlite:///{store}/mlflow.db"
    args = ["--tracking-uri", uri, "--no-log", "--resamples", "50", "--out", str(tmp_path)]
    assert main([*args, "--statistics", "pearson,mae"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("judgekit: error: --statistics: pearson, mae cannot be compared for")
    assert "preference (preference); choose from accuracy, accuracy_with_ties, kappa" in err
    assert err.count("\n") == 1
    assert main([*args, "--statistics", "kappa"]) == 0
    paired = pd.read_csv(tmp_path / "paired.csv")
    assert paired["statistic"].tolist() == ["kappa"]


def _run_of(kind: str, score: str, human: list[float], judged: list[float]) -> ComparedRun:
    ids = [str(i) for i in range(len(human))]
    results = pd.DataFrame(
        {"example_id": ids, "group": ids, "score": score, "human": human, "judge": judged}
    )
    run = ComparedRun(f"run-{kind}-{judged[0]}", "r", {}, {}, {}, 0, results=results)
    run.kinds = {score: kind}
    return run


def test_each_score_is_paired_on_its_own_statistics() -> None:
    # One preference score and one range score of the same runs: per-score statistic names.
    human = [0.0, 1.0, 0.5, 1.0, 0.0, 1.0]
    base = _run_of("preference", "pref", human, [0.0, 0.0, 0.5, 1.0, 0.0, 1.0])
    other = _run_of("preference", "pref", human, human)
    per_score = {"pref": ["accuracy", "kappa"], "helpfulness": ["mae"]}
    paired = paired_table([base, other], base, ["pref"], per_score, resamples=50, confidence=0.9)
    assert paired["statistic"].tolist() == ["accuracy", "kappa"]
    # a: no-tie rows 0, 1, 3, 4, 5; agrees on all but row 1 -> 4/5; b agrees everywhere -> 1.
    assert paired["a"].tolist()[0] == pytest.approx(0.8) and paired["b"].tolist() == [1.0, 1.0]
    base.results = other.results = None  # no usage figures: the columns are what is checked
    table = metrics_table([base, other], base, ["pref", "helpfulness"], per_score)
    assert list(table.columns[3:12]) == [
        "baseline",
        *("accuracy", "accuracy_ci_low", "accuracy_ci_high"),
        *("kappa", "kappa_ci_low", "kappa_ci_high"),
        *("mae", "mae_ci_low"),
    ]
    helpfulness = table[table["score"] == "helpfulness"]
    assert helpfulness["accuracy"].isna().all()  # not a statistic of this score: NaN, never 0


def test_runs_declaring_different_kinds_are_not_comparable() -> None:
    human = [0.0, 1.0, 0.5, 1.0]
    base = _run_of("preference", "pref", human, human)
    other = _run_of("pointwise", "pref", human, [1.0, 1.0, 1.0, 1.0])
    paired = paired_table([base, other], base, ["pref"], ["kappa"], resamples=10, confidence=0.9)
    assert paired["verdict"].tolist() == ["not comparable"]
    assert paired["note"][0] == "the baseline declares score 'pref' preference, the run pointwise"
