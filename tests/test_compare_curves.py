"""``judgekit compare`` overlays the agreement-vs-draws curves of runs made with
``runner.samples``.

Two real runs with ``runner.samples=2`` (temperature 0.7, a seed per draw) against fake judges
on 20 rows (human score ``row % 5``): ``prompt=v1`` answers the human score on draw 0 and
``(human + 1) % 5`` on draw 1; ``prompt=v2`` answers the human score on both draws.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from helpers import judge_overrides, row_number, write_jsonl

from judgekit.cli.compare import main
from judgekit.compare.runs import compare, curves
from judgekit.testing.server import ChatRequest, FakeJudge, json_scores

N_ROWS = 20
SEED = 100
CURVE_COLUMNS = ["score", "statistic", "draws", "value", "ci_low", "ci_high", "n_scored"]


def _human(row: int) -> int:
    return row % 5


def _off_on_second_draw(request: ChatRequest) -> dict[str, int]:
    human = _human(row_number(request))
    return {"helpfulness": human if int(request.params["seed"]) == SEED else (human + 1) % 5}


def _always_human(request: ChatRequest) -> dict[str, int]:
    return {"helpfulness": _human(row_number(request))}


def _sampled(workdir: Path, prompt: str, responder: Any) -> None:
    import judgekit
    from judgekit.pipeline import run

    with FakeJudge(json_scores(responder)) as judge:
        cfg = judgekit.build_config(
            "openai_compatible",
            prompt,
            "helpfulness",
            str(workdir / "val.jsonl"),
            overrides=[
                *judge_overrides(judge, key=False),
                "runner.samples=2",
                "judge.temperature=0.7",
                f"+judge.extra_params.seed={SEED}",
                "stats.bootstrap_resamples=100",
                f"tracking.uri=sqlite:///{workdir}/mlflow.db",
            ],
        )
        run(cfg, workdir / f"out_{prompt}")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory whose mlflow.db holds the v1 run (older, the baseline) and the v2 run."""
    workdir = tmp_path_factory.mktemp("compare_curves")
    rows = [
        {"prompt": f"Question {i}", "response": f"Answer [row={i}]", "helpfulness": _human(i)}
        for i in range(N_ROWS)
    ]
    write_jsonl(workdir / "val.jsonl", rows)
    _sampled(workdir, "v1", _off_on_second_draw)
    _sampled(workdir, "v2", _always_human)
    return workdir


@pytest.mark.slow
def test_both_runs_curves_are_written_side_by_side_and_logged(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    uri = f"sqlite:///{store}/mlflow.db"
    code = main(["--tracking-uri", uri, "--out", str(out), "--resamples", "100"])
    assert code == 0, capsys.readouterr().err
    curves = pd.read_csv(out / "agreement_vs_samples.csv")
    assert list(curves.columns) == ["run", "run_id", *CURVE_COLUMNS]
    assert list(dict.fromkeys(curves["run"])) == ["prompt=v1", "prompt=v2"]
    for prompt in ("v1", "v2"):  # each run's own rows, as its run wrote them
        own = pd.read_csv(store / f"out_{prompt}" / "agreement_vs_samples.csv")
        part = curves[curves["run"] == f"prompt={prompt}"][CURVE_COLUMNS].reset_index(drop=True)
        pd.testing.assert_frame_equal(part, own)
    # mae by hand: v2 is the human score on every draw → 0 at j = 1 and 2. v1 at j = 1 is the
    # human score → 0; at j = 2 the mean of h and (h + 1) % 5 is h + 0.5 for h = 0..3 (error
    # 0.5) and (4 + 0) / 2 = 2 for h = 4 (error 2) → (4 × 0.5 + 2) / 5 = 0.8.
    mae = curves[curves["statistic"] == "mae"].set_index(["run", "draws"])["value"]
    assert mae[("prompt=v2", 1)] == 0 and mae[("prompt=v2", 2)] == 0
    assert mae[("prompt=v1", 1)] == 0 and mae[("prompt=v1", 2)] == pytest.approx(0.8)
    assert (out / "agreement_vs_samples.png").read_bytes().startswith(b"\x89PNG")

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    summary = client.search_runs(
        [client.get_experiment_by_name("judgekit").experiment_id],
        "tags.`judgekit.kind` = 'comparison'",
    )[0]
    artifacts = {a.path for a in client.list_artifacts(summary.info.run_id)}
    assert {"agreement_vs_samples.csv", "agreement_vs_samples.png"} <= artifacts


@pytest.mark.slow
def test_one_run_with_a_curve_has_nothing_to_overlay(store: Path, tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    from judgekit.compare.report import write_outputs

    client = MlflowClient(tracking_uri=f"sqlite:///{store}/mlflow.db")
    c = compare(client, resamples=50)
    assert c.curves is not None and len(c.curves) == 2 * len(c.runs[0].curve)
    c.runs[1].curve = None
    assert curves(c.runs) is None
    c.curves = None
    names = {p.name for p in write_outputs(c, tmp_path / "out")}
    assert names == {"comparison.md", "comparison.csv", "paired.csv", "forest.png"}


def test_the_overlay_figure_has_a_panel_per_score_and_statistic() -> None:
    from judgekit.plots import agreement_vs_samples_by_run

    rows = [
        {"run": run, "score": "helpfulness", "statistic": stat, "draws": j, "value": v}
        for run, v in (("a", 0.5), ("b", 0.7))
        for stat in ("spearman", "qwk", "mae", "pearson")
        for j in (1, 2, 3)
    ]
    curves = pd.DataFrame(rows).assign(ci_low=lambda f: f["value"] - 0.1)
    curves["ci_high"] = curves["value"] + 0.1
    fig = agreement_vs_samples_by_run(curves)
    shown = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in shown] == [
        f"helpfulness {s}" for s in ("spearman", "qwk", "mae", "pearson")
    ]
    assert all(len(ax.get_lines()) == 2 for ax in shown)  # one line per run
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["a", "b"]
