"""``judgekit compare`` with a judge panel: each member becomes a row beside the panel.

Two real runs against fake judges share one MLflow store: ``prompt=v1`` (the baseline) answers
``(human + 1) % 5``, ``prompt=v2`` answers the human score. The v2 run is then made a panel as
the panel code records one: a ``judgekit.panel_members`` tag, a ``members.parquet`` artifact
(members ``exact`` = the human score and ``lenient`` = one level high, capped at 4, each with 5
calibration rows the panel's own results leave out) and ``<score>/member/<name>/<stat>``
metrics.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from helpers import judge_overrides, row_number, write_jsonl

from judgekit.cli.compare import main
from judgekit.compare.members import PANEL_TAG, member_metrics
from judgekit.compare.runs import compare
from judgekit.results import COLUMNS
from judgekit.testing.server import ChatRequest, FakeJudge, json_scores

N_ROWS = 30
N_CALIBRATION = 5
STATS = ("pearson", "qwk", "mae")
MEMBERS = {
    "exact": lambda human: human,
    "lenient": lambda human: np.minimum(human + 1, 4),
}


def _human(row: int) -> int:
    return row % 5


def _config(judge: FakeJudge, data: Path, prompt: str) -> Any:
    import judgekit

    return judgekit.build_config(
        "openai_compatible",
        prompt,
        "helpfulness",
        str(data),
        overrides=[
            *judge_overrides(judge, key=False),
            "stats.bootstrap_resamples=100",
            f"tracking.uri=sqlite:///{data.parent}/mlflow.db",
        ],
    )


def _judged(workdir: Path, prompt: str, answer: Any) -> str:
    """Run ``prompt`` against a fake judge answering ``answer(human)``; returns the run dir."""
    from judgekit.pipeline import run

    def respond(request: ChatRequest) -> dict[str, int]:
        return {"helpfulness": int(answer(_human(row_number(request))))}

    out = workdir / f"out_{prompt}"
    with FakeJudge(json_scores(respond)) as judge:
        run(_config(judge, workdir / "val.jsonl", prompt), out)
    return str(out)


def _members_table(panel_results: pd.DataFrame) -> pd.DataFrame:
    """Every member's rows: the panel's examples plus calibration rows, ``member`` after
    ``score``."""
    calibration = panel_results.head(N_CALIBRATION).copy()
    calibration["example_id"] = [f"cal-{i}" for i in range(N_CALIBRATION)]
    calibration["example_index"] = range(N_ROWS, N_ROWS + N_CALIBRATION)
    base = pd.concat([panel_results, calibration], ignore_index=True)
    parts = []
    for name, answer in MEMBERS.items():
        part = base.copy()
        part["judge"] = answer(part["human"].to_numpy()).astype(float)
        part.insert(COLUMNS.index("score") + 1, "member", name)
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def _make_panel(client: Any, run_id: str, out: Path) -> dict[str, dict[str, float]]:
    """Tag, artifact and member metrics of a panel; returns each member's logged metrics."""
    from judgekit.stats.pointwise import agreement

    members = _members_table(pd.read_parquet(out / "results.parquet"))
    path = out / "members.parquet"
    members.to_parquet(path, index=False)
    client.log_artifact(run_id, str(path))
    client.set_tag(run_id, PANEL_TAG, ",".join(MEMBERS))
    logged = {}
    for name in MEMBERS:
        rows = members[members["member"] == name]
        stats = agreement(
            rows["human"].to_numpy(), rows["judge"].to_numpy(), minimum=0, maximum=4, integer=True
        )
        metrics = {k: float(v) for k, v in stats.items() if np.isfinite(v)}
        for stat in STATS:  # hand-made intervals: what the panel logged is what is shown
            metrics |= {f"{stat}_ci_low": stats[stat] - 0.05, f"{stat}_ci_high": stats[stat] + 0.05}
        for key, value in metrics.items():
            client.log_metric(run_id, f"helpfulness/member/{name}/{key}", value)
        logged[name] = metrics
    return logged


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The store's directory, the two run ids and the members' logged metrics."""
    from mlflow.tracking import MlflowClient

    workdir = tmp_path_factory.mktemp("compare_members")
    rows = [
        {"prompt": f"Question {i}", "response": f"Answer [row={i}]", "helpfulness": _human(i)}
        for i in range(N_ROWS)
    ]
    write_jsonl(workdir / "val.jsonl", rows)
    _judged(workdir, "v1", lambda human: (human + 1) % 5)
    panel_out = Path(_judged(workdir, "v2", lambda human: human))
    client = MlflowClient(tracking_uri=f"sqlite:///{workdir}/mlflow.db")
    experiment = client.get_experiment_by_name("judgekit").experiment_id
    base, panel = client.search_runs([experiment], order_by=["attributes.start_time ASC"])
    logged = _make_panel(client, panel.info.run_id, panel_out)
    return {
        "dir": workdir,
        "client": client,
        "base": base.info.run_id,
        "panel": panel.info.run_id,
        "logged": logged,
    }


@pytest.mark.slow
def test_members_are_rows_with_their_own_statistics_and_paired_differences(
    store: dict[str, Any],
) -> None:
    c = compare(store["client"], run_ids=[store["base"], store["panel"]], resamples=200)
    labels = [run.label for run in c.runs]
    assert labels == [
        "prompt=v1",
        "prompt=v2",
        "prompt=v2/member/exact",
        "prompt=v2/member/lenient",
    ]
    assert c.baseline.run_id == store["base"]  # the default baseline is unchanged
    member = c.runs[2]
    assert member.run_id == f"{store['panel']}/member/exact"
    assert member.mlflow_run_id == store["panel"]
    assert "member" not in member.results.columns
    assert len(member.results) == N_ROWS + N_CALIBRATION

    # The table: the members' logged statistics and intervals under the plain names.
    assert set(c.table["score"]) == {"helpfulness"}  # no "helpfulness/member/exact" score
    table = c.table.set_index("label")
    lenient = store["logged"]["lenient"]
    assert table.loc["prompt=v2/member/lenient", "mae"] == pytest.approx(lenient["mae"])
    assert table.loc["prompt=v2/member/lenient", "mae_ci_low"] == pytest.approx(
        lenient["mae"] - 0.05
    )
    assert table.loc["prompt=v2/member/exact", "n_scored"] == N_ROWS + N_CALIBRATION
    assert table.loc["prompt=v2/member/exact", "failures"] == 0

    # Paired with the baseline on the 30 examples both have; the 5 calibration rows only the
    # member has are dropped. Baseline (h + 1) % 5 over h = 0..4: errors 1, 1, 1, 1, 4 → mae
    # 8/5 = 1.6; exact: mae 0 → difference -1.6; lenient min(h + 1, 4): errors 1, 1, 1, 1, 0
    # → mae 4/5 = 0.8 → difference 0.8 - 1.6 = -0.8.
    paired = c.paired.set_index(["label", "statistic"])
    exact = paired.loc[("prompt=v2/member/exact", "mae")]
    assert exact["a"] == pytest.approx(1.6) and exact["b"] == pytest.approx(0.0)
    assert exact["difference"] == pytest.approx(-1.6) and exact["verdict"] == "better"
    assert exact["n_common"] == N_ROWS and exact["n_dropped"] == N_CALIBRATION
    assert paired.loc[("prompt=v2/member/lenient", "mae"), "difference"] == pytest.approx(-0.8)
    assert paired.loc[("prompt=v2", "mae"), "difference"] == pytest.approx(-1.6)  # the panel
    assert set(c.paired["label"]) == set(labels[1:])


@pytest.mark.slow
def test_the_report_and_summary_run_show_the_members(
    store: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    uri = f"sqlite:///{store['dir']}/mlflow.db"
    code = main(
        ["--tracking-uri", uri, "--runs", store["base"], store["panel"], "--out", str(out)]
        + ["--statistics", ",".join(STATS), "--resamples", "100"]
    )
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert "prompt=v2/member/lenient" in printed.out
    markdown = (out / "comparison.md").read_text()
    assert "| prompt=v2/member/exact | mae |" in markdown
    assert f"`{store['panel']}/member/exact`" in markdown
    assert (out / "forest.png").read_bytes().startswith(b"\x89PNG")
    assert not (out / "agreement_vs_samples.csv").exists()  # no run drew samples
    client = store["client"]
    summary = client.search_runs(
        [client.get_experiment_by_name("judgekit").experiment_id],
        "tags.`judgekit.kind` = 'comparison'",
    )[0]
    compared = summary.data.tags["judgekit.compared_runs"].split(",")
    assert compared == [store["base"], store["panel"]]  # MLflow runs, each once
    difference = summary.data.metrics["prompt_v2_member_exact/helpfulness/mae/difference"]
    assert difference == pytest.approx(-1.6)


def test_member_metrics_are_renamed_and_other_members_left_out() -> None:
    panel = {
        "helpfulness/mae": 1.0,
        "helpfulness/member/a/mae": 0.5,
        "helpfulness/member/a/mae_ci_low": 0.25,
        "helpfulness/member/ab/mae": 9.0,
        "correctness/member/a/n_scored": 4.0,
    }
    assert member_metrics(panel, "a") == {
        "helpfulness/mae": 0.5,
        "helpfulness/mae_ci_low": 0.25,
        "correctness/n_scored": 4.0,
    }
    assert member_metrics(panel, "nobody") == {}
    assert member_metrics(panel, "ab") == {"helpfulness/mae": 9.0}  # not a prefix match
