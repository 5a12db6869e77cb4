"""``judgekit optimize`` end to end against a prompt-sensitive fake judge (tests/optimize_helpers.py).

The fake judge agrees with the humans only when the prompt holds a given instruction (or shows
demonstrations); the fake reflection model proposes that instruction. What is checked: the search
finds the better prompt; the test split is judged only by the seed and the chosen prompt, once
each; the search never sends more than ``optimize.budget_calls``; candidates compose as prompt
configs; the held-out comparison equals ``judgekit compare`` on the same two runs and an
independent computation; a rerun sends nothing; bad input stops before any call.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from helpers import TEST_KEY, TEST_KEY_ENV, judge_overrides, run_cli
from optimize_helpers import (
    MAGIC,
    REFLECTOR,
    data_overrides,
    question_of,
    reflection_overrides,
    responder,
    write_pairs,
)
from sklearn.metrics import cohen_kappa_score

from judgekit.testing.server import FakeJudge

BUDGET = 80


def _optimize(workdir: Path, judge: FakeJudge, extra: list[str], out: str = "out"):  # noqa: ANN202
    return run_cli(
        [
            "optimize",
            *judge_overrides(judge),
            *data_overrides(),
            f"optimize.out_dir={out}",
            "tracking.uri=sqlite:///mlflow.db",
            *extra,
        ],
        workdir,
    )


@pytest.fixture(scope="module")
def gepa_run(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    """One gepa optimisation (and its rerun) shared by the tests below."""
    import os

    workdir = tmp_path_factory.mktemp("optimize")
    cache = tmp_path_factory.mktemp("optimize-cache")
    old_cwd, old_cache = Path.cwd(), os.environ.get("JUDGEKIT_CACHE_DIR")
    os.chdir(workdir)
    os.environ["JUDGEKIT_CACHE_DIR"] = str(cache)
    try:
        rows = write_pairs(workdir / "pairs.jsonl")
        with FakeJudge(responder()) as judge:
            extra = [*reflection_overrides(judge.url), f"optimize.budget_calls={BUDGET}"]
            first = _optimize(workdir, judge, extra)
            bodies = judge.counters.bodies
            judge.reset_counters()
            again = _optimize(workdir, judge, extra, out="out2")
            rerun_requests = judge.counters.requests_total
        yield {
            "workdir": workdir,
            "rows": rows,
            "proc": first,
            "bodies": bodies,
            "again": again,
            "rerun_requests": rerun_requests,
        }
    finally:
        os.chdir(old_cwd)
        if old_cache is None:
            os.environ.pop("JUDGEKIT_CACHE_DIR", None)
        else:
            os.environ["JUDGEKIT_CACHE_DIR"] = old_cache


def _summary(workdir: Path, out: str = "out") -> dict:
    return json.loads((workdir / out / "summary.json").read_text())


def _splits(workdir: Path) -> dict[str, list[str]]:
    return json.loads((workdir / "out" / "splits.json").read_text())


def test_gepa_finds_the_instruction_that_agrees(gepa_run: dict) -> None:
    proc, workdir = gepa_run["proc"], gepa_run["workdir"]
    assert proc.returncode == 0, proc.stderr
    summary = _summary(workdir)
    assert summary["seed"]["name"] == "pairwise_v1"
    assert summary["chosen"]["name"].startswith("pairwise_v1_opt")
    assert summary["seed"]["dev"] == pytest.approx(0.0)  # always "A": kappa 0
    assert summary["chosen"]["dev"] == pytest.approx(1.0)
    chosen = Path(summary["chosen"]["path"])
    assert chosen.parent == workdir / "out" / "conf" / "prompt"
    assert MAGIC in chosen.read_text()
    assert "held-out test" in proc.stdout and "better" in proc.stdout


def test_the_test_split_is_judged_only_by_the_seed_and_the_chosen_prompt(gepa_run: dict) -> None:
    workdir, bodies = gepa_run["workdir"], gepa_run["bodies"]
    test_ids = set(_splits(workdir)["test"])
    questions = {r["prompt"]: r["id"] for r in gepa_run["rows"]}
    test_questions = {q for q, i in questions.items() if i in test_ids}
    # Two rows share each question, and splits never split a question: so a question tells the split.
    seed_system = _system(_prompt_file(workdir, "pairwise_v1"))
    chosen_system = _system(Path(_summary(workdir)["chosen"]["path"]))
    on_test = [b for b in bodies if question_of(b) in test_questions]
    systems = [next(m["content"] for m in b["messages"] if m["role"] == "system") for b in on_test]
    assert sorted(set(systems)) == sorted({seed_system, chosen_system})
    assert systems.count(seed_system) == len(test_ids)  # each test row once with each prompt
    assert systems.count(chosen_system) == len(test_ids)
    # ... and after the search: every test request comes after the last search request.
    first_test = min(i for i, b in enumerate(bodies) if question_of(b) in test_questions)
    assert all(question_of(b) in test_questions for b in bodies[first_test:])


def test_the_search_never_spends_more_than_the_budget(gepa_run: dict) -> None:
    workdir, bodies = gepa_run["workdir"], gepa_run["bodies"]
    test_ids = set(_splits(workdir)["test"])
    test_questions = {r["prompt"] for r in gepa_run["rows"] if r["id"] in test_ids}
    search = [b for b in bodies if question_of(b) not in test_questions]
    reflections = [b for b in search if b["model"] == REFLECTOR]
    assert reflections, "gepa asked the reflection model"
    assert len(search) <= BUDGET
    summary = _summary(workdir)
    assert summary["calls"]["judge"] + summary["calls"]["reflection"] == len(search)
    assert summary["calls"]["spent"] <= BUDGET
    assert summary["stopped"] in {"budget", "finished", "stalled"}


def test_a_rerun_sends_no_call_and_finds_the_same(gepa_run: dict) -> None:
    again, workdir = gepa_run["again"], gepa_run["workdir"]
    assert again.returncode == 0, again.stderr
    assert gepa_run["rerun_requests"] == 0
    first, second = _summary(workdir), _summary(workdir, "out2")
    assert second["chosen"]["name"] == first["chosen"]["name"]
    tested = {k: v for k, v in first["test"].items() if k.startswith("test/")}
    assert tested and {k: second["test"][k] for k in tested} == tested
    assert second["calls"]["spent"] == first["calls"]["spent"]
    assert second["calls"]["judge"] == 0


def test_candidates_compose_as_prompt_configs(gepa_run: dict) -> None:
    from judgekit.config.compose import compose_config, to_config

    workdir = gepa_run["workdir"]
    table = pd.read_csv(workdir / "out" / "candidates.csv")
    names = [n for n in table["name"] if n != "pairwise_v1"]
    assert names and all(n.startswith("pairwise_v1_opt") for n in names)
    conf = workdir / "out" / "conf"
    for name in names:
        cfg = to_config(
            compose_config([f"prompt={name}", "score=preference"], config_dirs=[conf]),
            config_dirs=[conf],
        )
        assert cfg.prompt.name == name
        assert cfg.prompt.messages[-1].content == _prompt_messages("pairwise_v1")[-1]["content"]
        header = (conf / "prompt" / f"{name}.yaml").read_text().splitlines()[:3]
        assert any("parent:" in line and "dev kappa" in line for line in header)
        assert any("optimisation run:" in line for line in header)


def test_the_held_out_comparison_equals_judgekit_compare_and_a_hand_computation(
    gepa_run: dict,
) -> None:
    workdir = gepa_run["workdir"]
    summary = _summary(workdir)
    seed_id, chosen_id = summary["test_runs"]["seed"], summary["test_runs"]["chosen"]
    ours = pd.read_csv(workdir / "out" / "paired.csv")
    proc = run_cli(
        [
            "compare",
            "--tracking-uri=sqlite:///mlflow.db",
            "--runs",
            seed_id,
            chosen_id,
            "--baseline",
            seed_id,
            "--statistics",
            "kappa,accuracy,accuracy_with_ties",
            "--min-shared=1",
            "--out",
            "cmp",
        ],
        workdir,
    )
    assert proc.returncode == 0, proc.stderr
    theirs = pd.read_csv(workdir / "cmp" / "paired.csv")
    columns = ["statistic", "a", "b", "difference", "ci_low", "ci_high", "p_value", "verdict"]
    pd.testing.assert_frame_equal(
        ours[columns].sort_values("statistic").reset_index(drop=True),
        theirs[columns].sort_values("statistic").reset_index(drop=True),
    )
    # independently: Cohen's kappa of each test run's verdicts against the humans
    for role, column in (("seed", "a"), ("chosen", "b")):
        run_dir = next((workdir / "out" / "test").glob(f"{role}-*"))
        results = pd.read_parquet(run_dir / "results.parquet")
        kappa = _kappa(results["human"], results["judge"])
        row = ours[ours["statistic"] == "kappa"].iloc[0]
        assert row[column] == pytest.approx(kappa)
    assert ours[ours["statistic"] == "kappa"].iloc[0]["verdict"] == "better"


def test_the_search_is_an_mlflow_parent_run_with_a_child_per_candidate(gepa_run: dict) -> None:
    from mlflow.tracking import MlflowClient

    workdir = gepa_run["workdir"]
    client = MlflowClient(tracking_uri=f"sqlite:///{workdir}/mlflow.db")
    experiment = client.get_experiment_by_name("judgekit").experiment_id
    parent_id = _summary(workdir)["run_id"]
    parent = client.get_run(parent_id)
    assert parent.data.tags["judgekit.kind"] == "optimization"
    params = parent.data.params
    assert params["optimize.objective"] == "kappa" and params["optimize.method"] == "gepa"
    assert params["optimize.budget_calls"] == str(BUDGET) and params["prompt.name"] == "pairwise_v1"
    assert int(params["split.train"]) + int(params["split.dev"]) + int(params["split.test"]) == 48
    assert parent.info.status == "FINISHED"
    assert parent.data.metrics["test/difference/kappa"] == pytest.approx(1.0)
    low, high = (parent.data.metrics[f"test/seed/accuracy_ci_{e}"] for e in ("low", "high"))
    assert low <= parent.data.metrics["test/seed/accuracy"] <= high
    table = pd.read_csv(workdir / "out" / "metrics.csv")
    assert len(table) == 2 and {"kappa_ci_low", "kappa_ci_high"} <= set(table.columns)
    curve = client.get_metric_history(parent_id, "best_dev_kappa")
    assert [m.value for m in curve][-1] == pytest.approx(1.0)
    steps = [m.step for m in curve]
    assert steps == sorted(steps) and steps[-1] <= BUDGET
    children = client.search_runs([experiment], f"tags.mlflow.parentRunId = '{parent_id}'")
    kinds = sorted(c.data.tags.get("judgekit.kind", "") for c in children)
    table = pd.read_csv(workdir / "out" / "candidates.csv")
    assert kinds.count("optimization_candidate") == len(table)
    assert (
        sum(c.data.tags.get("judgekit.optimize_role", "").startswith("test_") for c in children)
        == 2
    )
    dev = {
        c.data.tags["judgekit.prompt"]: c.data.metrics.get("dev_kappa")
        for c in children
        if c.data.tags.get("judgekit.kind") == "optimization_candidate"
    }
    assert dev["pairwise_v1"] == pytest.approx(0.0)


def test_fewshot_finds_demonstrations_and_the_python_api_returns_the_result(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import judgekit

    monkeypatch.setenv(TEST_KEY_ENV, TEST_KEY)
    write_pairs(workdir / "pairs.jsonl")
    with FakeJudge(responder(demos=True)) as judge:
        result = judgekit.optimize(
            "openai_compatible",
            "pairwise_v1",
            "preference",
            "pairwise_jsonl",
            overrides=[
                *[o for o in judge_overrides(judge) if not o.startswith("judge=")],
                "dataset.path=pairs.jsonl",
                "dataset.fields.id=id",
                "optimize.method=fewshot",
                "optimize.budget_calls=40",
                "optimize.max_demos=2",
                "optimize.out_dir=out",
            ],
            tracking=False,
        )
    assert result.chosen is not result.seed
    assert result.chosen.method == "fewshot" and 1 <= len(result.chosen.demos) <= 2
    splits = json.loads((workdir / "out" / "splits.json").read_text())
    assert set(result.chosen.demos) <= set(splits["train"])  # demonstrations come from train
    roles = [m.role for m in result.chosen.prompt.messages]
    assert roles.count("assistant") == len(result.chosen.demos)
    assert result.calls["spent"] <= 40
    assert result.test_value("chosen") == pytest.approx(1.0)
    assert result.test_value("seed") == pytest.approx(0.0)
    kappa = result.paired[result.paired["statistic"] == "kappa"].iloc[0]
    assert kappa["verdict"] == "better"


@pytest.mark.slow  # ~10-20 s: CI runs it (pytest -m 'slow or not slow')
def test_a_budget_too_small_for_a_candidate_keeps_the_seed_and_judges_test_once(
    workdir: Path,
) -> None:
    rows = write_pairs(workdir / "pairs.jsonl")
    with FakeJudge(responder()) as judge:
        # the seed on dev costs 12 calls; a reflection step then needs 8 + 1 + 8: not within 15
        proc = _optimize(
            workdir, judge, [*reflection_overrides(judge.url), "optimize.budget_calls=15"]
        )
        total = judge.counters.requests_total
    assert proc.returncode == 0, proc.stderr
    summary = _summary(workdir)
    assert summary["chosen"]["name"] == "pairwise_v1"
    assert summary["stopped"] == "budget"
    test = len(json.loads((workdir / "out" / "splits.json").read_text())["test"])
    assert total == summary["calls"]["judge"] + summary["calls"]["reflection"] + test
    assert summary["calls"]["spent"] <= 15
    assert "no candidate beat the seed on dev" in proc.stdout
    assert len(rows) == 48


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        (["optimize.split=[0.5,0.5]"], "optimize.split"),
        (["optimize.split=[0.7,0.2,0.2]"], "optimize.split"),
        (["optimize.objective=qwk"], "optimize.objective"),
        (["optimize.objective=fairness"], "optimize.objective"),
        (["optimize.budget_calls=0"], "optimize.budget_calls"),
        (["optimize.method=fewshot", "optimize.budget_calls=5"], "optimize.budget_calls"),
        (["optimize.method=both", "optimize.budget_calls=20"], "optimize.budget_calls"),
        (["optimize.seed=-1"], "optimize.seed"),
        (["runner.samples=3", "judge.temperature=0.7"], "runner.samples"),
        (["optimize.method=fewshot", "cache.mode=off"], "cache.mode"),
        (["optimize.method=anneal"], "optimize.method"),
        (["optimize.reflection_model=no_such_judge_option"], "optimize.reflection_model"),
        (["optimize.score=helpfulness"], "optimize.score"),
        (["optimize.method=fewshot", "optimize.split=[0.98,0.01,0.01]"], "optimize.split"),
    ],
)
def test_bad_input_is_one_line_and_exit_2_before_any_call(
    workdir: Path, extra: list[str], key: str
) -> None:
    write_pairs(workdir / "pairs.jsonl")
    with FakeJudge(responder()) as judge:
        proc = _optimize(workdir, judge, extra)
        assert judge.counters.requests_total == 0
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"judgekit: error: {key}"), proc.stderr
    assert "Traceback" not in proc.stderr and not proc.stdout.strip()


def _prompt_file(workdir: Path, name: str) -> Path:
    from judgekit.config.compose import conf_dir

    return conf_dir() / "prompt" / f"{name}.yaml"


def _prompt_messages(name: str) -> list[dict]:
    import yaml

    from judgekit.config.compose import conf_dir

    return yaml.safe_load((conf_dir() / "prompt" / f"{name}.yaml").read_text())["messages"]


def _system(path: Path) -> str:
    import yaml

    messages = yaml.safe_load(path.read_text())["messages"]
    return next(m["content"] for m in messages if m["role"] == "system")


def _kappa(human: pd.Series, judge: pd.Series) -> float:
    both = human.notna() & judge.notna()
    value = cohen_kappa_score(human[both].astype(str), judge[both].astype(str))
    return 0.0 if math.isnan(value) else float(value)


@pytest.mark.slow  # ~10-20 s: CI runs it (pytest -m 'slow or not slow')
def test_compare_on_the_experiment_leaves_the_search_runs_out(gepa_run: dict) -> None:
    workdir = gepa_run["workdir"]
    proc = run_cli(
        ["compare", "--tracking-uri=sqlite:///mlflow.db", "--min-shared=1", "--out", "all"],
        workdir,
    )
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(workdir / "all" / "comparison.csv")
    seed_ids = {_summary(workdir, out)["test_runs"]["seed"] for out in ("out", "out2")}
    chosen_ids = {_summary(workdir, out)["test_runs"]["chosen"] for out in ("out", "out2")}
    assert set(table["run_id"]) == seed_ids | chosen_ids  # the two test runs of each search


@pytest.mark.slow  # ~10-20 s: CI runs it (pytest -m 'slow or not slow')
def test_ctrl_c_keeps_the_candidates_and_judges_no_test_row(workdir: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    from helpers import TEST_KEY, TEST_KEY_ENV

    rows = write_pairs(workdir / "pairs.jsonl")
    with FakeJudge(responder(), latency_s=0.2) as judge:
        args = [
            "optimize",
            *judge_overrides(judge),
            *data_overrides(),
            *reflection_overrides(judge.url),
            "optimize.budget_calls=500",
            "optimize.out_dir=out",
            "tracking.uri=sqlite:///mlflow.db",
        ]
        env = {**os.environ, TEST_KEY_ENV: TEST_KEY}
        proc = subprocess.Popen(
            [sys.executable, "-m", "judgekit.cli", *args],
            cwd=workdir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 120
        while judge.counters.requests_total < 30 and time.monotonic() < deadline:
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
        bodies = judge.counters.bodies
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    table = pd.read_csv(workdir / "out" / "candidates.csv")
    assert table["name"].iloc[0] == "pairwise_v1" and len(table) >= 1
    test_ids = set(json.loads((workdir / "out" / "splits.json").read_text())["test"])
    test_questions = {r["prompt"] for r in rows if r["id"] in test_ids}
    assert not [b for b in bodies if question_of(b) in test_questions]
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{workdir}/mlflow.db")
    experiment = client.get_experiment_by_name("judgekit").experiment_id
    (parent,) = client.search_runs([experiment], "tags.`judgekit.kind` = 'optimization'")
    assert parent.info.status == "KILLED"
    with FakeJudge(responder()) as judge:  # the same command again resumes into the same dir
        args = [
            a if not a.startswith("judge.api_base=") else f"judge.api_base={judge.url}"
            for a in args
        ]
        args = [
            a
            if not a.startswith("optimize.reflection_api_base=")
            else f"optimize.reflection_api_base={judge.url}"
            for a in args
        ]
        again = run_cli([*args, "optimize.budget_calls=80"], workdir)
    assert again.returncode == 0, again.stderr
    assert (workdir / "out" / "summary.json").exists()
    finished = run_cli([*args, "optimize.budget_calls=80"], workdir)
    assert finished.returncode == 2 and "holds a finished optimisation" in finished.stderr


def _pointwise_rows(path: Path, n: int = 60) -> list[dict]:
    """Two responses per prompt; each says its own quality, the human label (0-4)."""
    rows = []
    for i in range(n):
        label = i % 5
        rows.append(
            {
                "prompt": f"prompt {i // 2}",
                "response": f"an answer of quality {label}",
                "helpfulness": label,
            }
        )
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows


def _pointwise_judge(request):  # noqa: ANN001, ANN202
    if request.model == REFLECTOR:
        return f"```\n{MAGIC}\n```"
    system = " ".join(str(m["content"]) for m in request.messages if m["role"] == "system")
    text = request.last_user_text
    quality = int(text[text.index("of quality ") + len("of quality ")])
    return json.dumps({"helpfulness": quality if MAGIC in system else 2})


def test_gepa_on_a_range_score_optimises_qwk(workdir: Path) -> None:
    _pointwise_rows(workdir / "data.jsonl")
    with FakeJudge(_pointwise_judge) as judge:
        proc = run_cli(
            [
                "optimize",
                *judge_overrides(judge),
                "prompt=v2",
                "score=helpfulness",
                "dataset=jsonl",
                "dataset.path=data.jsonl",
                *reflection_overrides(judge.url),
                "optimize.budget_calls=60",
                "optimize.out_dir=out",
                "tracking.enabled=false",
            ],
            workdir,
        )
    assert proc.returncode == 0, proc.stderr
    summary = _summary(workdir)
    assert summary["objective"] == "qwk"
    assert summary["chosen"]["name"].startswith("v2_opt")
    paired = pd.read_csv(workdir / "out" / "paired.csv").set_index("statistic")
    assert paired.loc["qwk", "verdict"] == "better"
    for role, column in (("seed", "a"), ("chosen", "b")):
        run_dir = next((workdir / "out" / "test").glob(f"{role}-*"))
        results = pd.read_parquet(run_dir / "results.parquet")
        qwk = cohen_kappa_score(
            results["human"].astype(int),
            results["judge"].astype(int),
            weights="quadratic",
            labels=[0, 1, 2, 3, 4],
        )
        assert paired.loc["qwk", column] == pytest.approx(qwk, abs=1e-9)


def test_bad_input_leaves_no_output_directory(workdir: Path) -> None:
    write_pairs(workdir / "pairs.jsonl")
    with FakeJudge(responder()) as judge:
        proc = _optimize(
            workdir, judge, ["optimize.method=fewshot", "optimize.split=[0.98,0.01,0.01]"]
        )
    assert proc.returncode == 2
    assert not (workdir / "out").exists()


@pytest.mark.slow  # ~10-20 s: CI runs it (pytest -m 'slow or not slow')
def test_both_spends_half_on_instructions_then_adds_demonstrations(workdir: Path) -> None:
    write_pairs(workdir / "pairs.jsonl")
    with FakeJudge(responder()) as judge:
        proc = _optimize(
            workdir,
            judge,
            [
                *reflection_overrides(judge.url),
                "optimize.method=both",
                "optimize.budget_calls=120",
                "optimize.max_demos=1",
                "tracking.enabled=false",
            ],
        )
        total = judge.counters.requests_total
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(workdir / "out" / "candidates.csv")
    gepa, fewshot = table[table["method"] == "gepa"], table[table["method"] == "fewshot"]
    assert len(gepa) >= 1 and len(fewshot) >= 1
    assert gepa["calls_total"].max() <= 60  # proposed within the first half of the budget
    assert set(fewshot["parent"]) <= set(gepa["name"]) | {"pairwise_v1"}
    summary = _summary(workdir)
    assert summary["calls"]["spent"] <= 120
    assert total - 2 * len(json.loads((workdir / "out" / "splits.json").read_text())["test"]) <= 120
    assert MAGIC in Path(summary["chosen"]["path"]).read_text()


@pytest.mark.slow  # ~10-20 s: CI runs it (pytest -m 'slow or not slow')
def test_with_a_config_dir_candidates_land_in_it_and_run_like_any_prompt(workdir: Path) -> None:
    write_pairs(workdir / "pairs.jsonl")
    (workdir / "conf").mkdir()
    with FakeJudge(responder(demos=True)) as judge:
        proc = _optimize(
            workdir,
            judge,
            [
                "-cd",
                "conf",
                "optimize.method=fewshot",
                "optimize.budget_calls=36",
                "optimize.max_demos=1",
                "tracking.enabled=false",
            ],
        )
        assert proc.returncode == 0, proc.stderr
        chosen = _summary(workdir)["chosen"]["name"]
        assert (workdir / "conf" / "prompt" / f"{chosen}.yaml").exists()
        assert not (workdir / "out" / "conf").exists()
        judge.reset_counters()
        run = run_cli(
            [
                "-cd",
                "conf",
                *judge_overrides(judge),
                *[o for o in data_overrides() if not o.startswith("prompt=")],
                f"prompt={chosen}",
                "hydra.run.dir=again",
                "tracking.enabled=false",
            ],
            workdir,
        )
        assert run.returncode == 0, run.stderr
        # the chosen prompt was judged on dev and test (cached): only the train rows are new
        train = json.loads((workdir / "out" / "splits.json").read_text())["train"]
        assert judge.counters.requests_total == len(train)


def test_without_a_reflection_model_the_judge_reflects_on_its_own_answers(workdir: Path) -> None:
    from optimize_helpers import REFLECTION_PROMPT

    write_pairs(workdir / "pairs.jsonl")
    with FakeJudge(responder()) as judge:
        proc = _optimize(workdir, judge, ["optimize.budget_calls=60", "tracking.enabled=false"])
        bodies = judge.counters.bodies
    assert proc.returncode == 0, proc.stderr
    reflections = [b for b in bodies if REFLECTION_PROMPT in b["messages"][-1]["content"]]
    assert reflections and all(b["model"] == "fake-judge" for b in reflections)
    assert all("response_format" not in b for b in reflections)  # free text, not the score JSON
    assert MAGIC in Path(_summary(workdir)["chosen"]["path"]).read_text()


def test_the_search_objective_counts_a_failed_row_as_the_worst_answer() -> None:
    from judgekit.config.schema import RubricLabel, ScoreSpec
    from judgekit.optimizer.evaluate import search_objective

    labels = {
        "A": RubricLabel(value=0.0),
        "tie": RubricLabel(value=0.5),
        "B": RubricLabel(value=1.0),
    }
    spec = ScoreSpec(name="preference", kind="preference", labels=labels)
    rows = pd.DataFrame({"human": [0.0, 1.0, 0.0, 1.0], "judge": [0.0, 1.0, math.nan, math.nan]})
    # the two failures count as wrong (A <-> B): 2 of 4 right, not 2 of 2
    assert search_objective(rows, spec, "accuracy") == pytest.approx(0.5)
    scale = ScoreSpec(name="helpfulness", minimum=0, maximum=4)
    rows = pd.DataFrame({"human": [0.0, 4.0, 1.0], "judge": [0.0, 4.0, math.nan]})
    # the failure becomes 4 (the far end from 1): |1 - 4| = 3 over 3 rows
    assert search_objective(rows, scale, "mae") == pytest.approx(1.0)


def test_optimize_help_names_the_keys(tmp_path: Path) -> None:
    proc = run_cli(["optimize", "--help"], tmp_path)
    assert proc.returncode == 0
    for key in ("objective", "split", "method", "reflection_model", "budget_calls", "max_demos"):
        assert key in proc.stdout
