"""The MLflow UI, seen as a user sees it: a real sweep, a real ``mlflow server``, a real browser.

The sweep runs through the CLI against a fake judge; ``mlflow server`` serves its store; headless
Chromium renders the React app and writes out its DOM (``--dump-dom``) once a virtual-time budget
has run out; virtual time stands still while a fetch is pending, so the runs have arrived and
rendered by then. It also takes a screenshot of each page, kept under the test's tmp dir as
``ui/*.png``. Every process is stopped through its process group, and the test checks that none
is left.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from helpers import file_run, run_cli, write_jsonl

from judgekit.testing.server import FakeJudge, json_scores

CHROMIUM = Path("/usr/bin/chromium")
METRIC = "helpfulness/pearson"
N_ROWS = 10
VIEW_KEY = "judgekit-ui-test"
# The experiment page keeps its column choice in the view state; the Columns menu and "Share"
# store a view as an experiment tag and link to it with ?viewStateShareKey=KEY.
SHARED_VIEW = {"selectedColumns": [f"metrics.`{METRIC}`", "tags.`judgekit.prompt`"]}


@pytest.fixture
def chromium() -> Path:
    """Debian's Chromium; CI sets JUDGEKIT_REQUIRE_BROWSER=1, so a missing one fails there."""
    if CHROMIUM.exists():
        return CHROMIUM
    reason = f"{CHROMIUM} is absent (apt-get install chromium)"
    if os.environ.get("JUDGEKIT_REQUIRE_BROWSER") == "1":
        pytest.fail(reason + " (JUDGEKIT_REQUIRE_BROWSER=1)")
    pytest.skip(reason)


def _dataset(path: Path) -> None:
    """HelpSteer2-shaped rows; each response carries the markers the fake judge reads."""
    rows = [
        {
            "prompt": f"Question {i}: explain topic {i}.",
            "response": f"Answer text [row={i}] [quality={i % 5}]",
            "helpfulness": i % 5,
            "correctness": 2,
            "coherence": 4,
            "complexity": 2,
            "verbosity": 1,
        }
        for i in range(N_ROWS)
    ]
    write_jsonl(path, rows)


def _answer(request) -> dict:  # noqa: ANN001
    """Off by one on a different set of rows per prompt version, so the two runs' pearson differ."""
    text = request.last_user_text
    row = int(re.search(r"\[row=(\d+)\]", text).group(1))
    quality = int(re.search(r"\[quality=(\d+)\]", text).group(1))
    if "[RESPONSE]" in text:  # prompt v1
        return {"helpfulness": min(quality + (row % 3 == 0), 4)}
    return {"helpfulness": max(quality - (row % 2 == 0), 0)}  # prompt v2


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _live_processes(groups: list[int], mention: str) -> dict[int, str]:
    """Processes still running (zombies are not) in these groups, or naming ``mention``."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, UnicodeDecodeError):
            continue  # it exited while we looked
        state, pgrp = fields[0], int(fields[2])
        if state != "Z" and (pgrp in groups or mention in cmdline):
            found[int(stat.parent.name)] = cmdline[:160]
    return found


def _wait_all_gone(groups: list[int], mention: str, within_s: float = 10.0) -> dict[int, str]:
    deadline = time.monotonic() + within_s
    while (left := _live_processes(groups, mention)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def _stop_group(proc: subprocess.Popen, helpers_naming: str | None = None) -> None:
    """SIGTERM the process group, SIGKILL whatever outlived it, and reap the leader.

    ``helpers_naming``: helpers that left the group (Chromium's crash handler starts a session of
    its own) but name this path on their command line; they exit with the browser, and any still
    running after a grace period is killed by its PID.
    """
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    if helpers_naming:
        for pid in _wait_all_gone([], helpers_naming, within_s=5):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def _mlflow_server(root: Path, groups: list[int]) -> Iterator[str]:
    """``mlflow server`` on the sweep's store, in its own process group; yields its base URL."""
    port = _free_port()
    log = root / "mlflow-server.log"
    cmd = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--workers", "1", "--backend-store-uri", f"sqlite:///{root}/mlflow.db"]
    cmd += ["--artifacts-destination", str(root / "artifacts")]
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=out, env=env, start_new_session=True)
    groups.append(proc.pid)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not come up:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield url
    finally:
        _stop_group(proc)


def _render(chromium: Path, url: str, root: Path, name: str, groups: list[int]) -> str:
    """The page's DOM once the app has rendered; its screenshot goes to ``root/ui/NAME.png``."""
    shots = root / "ui"
    shots.mkdir(exist_ok=True)
    profile = root / "chromium" / name  # a fresh profile per page: no state carried over
    cmd = [
        str(chromium),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        # Offline and hermetic: any host but the local server fails at once instead of hanging.
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        "--disable-dev-shm-usage",  # containers often have a tiny /dev/shm
        "--window-size=1600,1400",  # tall enough to show the run page's first metrics
        "--virtual-time-budget=20000",
        f"--screenshot={shots / f'{name}.png'}",
        "--dump-dom",
        url,
    ]
    # Crash reports and caches go under the profile too (the crash handler names its directory).
    env = {**os.environ, "XDG_CONFIG_HOME": str(profile), "XDG_CACHE_HOME": str(profile)}
    with (root / "chromium.log").open("ab") as log:
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=log, env=env, start_new_session=True
        )
    groups.append(proc.pid)
    try:
        dom, _ = proc.communicate(timeout=60)
    finally:
        _stop_group(proc, helpers_naming=str(profile))
    assert proc.returncode == 0, f"chromium exited {proc.returncode}; see {root / 'chromium.log'}"
    return dom.decode()


class _Rows(HTMLParser):
    """The text of every table cell (``role=cell|gridcell``), by row (``role=row``)."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source"}

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[str | None, list[list[str]]]] = []  # (row-id, [[col-id, text]])
        self._open: list[tuple[str, bool, bool]] = []  # (tag, opens a row, opens a cell)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.VOID:
            return
        a = dict(attrs)
        row = a.get("role") == "row"
        cell = a.get("role") in ("cell", "gridcell") and bool(self.rows)
        if row:
            self.rows.append((a.get("row-id"), []))
        if cell:
            self.rows[-1][1].append([a.get("col-id") or "", ""])
        self._open.append((tag, row, cell))

    def handle_endtag(self, tag: str) -> None:
        while self._open and self._open.pop()[0] != tag:
            pass

    def handle_data(self, data: str) -> None:
        if any(cell for _, _, cell in self._open):
            self.rows[-1][1][-1][1] += data


def _grid(dom: str) -> dict[str, dict[str, str]]:
    """The runs table: run id -> column id -> text (ag-grid splits a row between containers)."""
    parser = _Rows()
    parser.feed(dom)
    table: dict[str, dict[str, str]] = {}
    for row_id, cells in parser.rows:
        if row_id:
            table.setdefault(row_id, {}).update({col: text.strip() for col, text in cells})
    return table


def _key_value_rows(dom: str) -> dict[str, str]:
    """Two-cell rows (the run page's Metrics and Parameters tables): first cell -> second."""
    parser = _Rows()
    parser.feed(dom)
    return {c[0][1].strip(): c[1][1].strip() for _, c in parser.rows if len(c) == 2}


def _api(url: str, path: str, body: dict | None = None) -> dict:
    """One call to the server's REST API (GET without a body, POST with one)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{url}/api/2.0/mlflow/{path}", data=data, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as resp:
        return json.loads(resp.read())


def _sweep_runs(url: str) -> tuple[str, dict[str, dict]]:
    """The experiment id, and per prompt version: the run's id, name and pearson, as stored."""
    experiment = _api(url, "experiments/get-by-name?experiment_name=judgekit")["experiment"]
    found = _api(url, "runs/search", {"experiment_ids": [experiment["experiment_id"]]})
    runs = {}
    for run in found["runs"]:
        tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
        metrics = {m["key"]: m["value"] for m in run["data"]["metrics"]}
        runs[tags["judgekit.prompt"]] = {
            "id": run["info"]["run_id"],
            "name": run["info"]["run_name"],
            "pearson": metrics[METRIC],
        }
    return experiment["experiment_id"], runs


@pytest.mark.slow
def test_mlflow_ui_shows_both_sweep_runs_with_their_pearson(workdir: Path, chromium: Path) -> None:
    _dataset(workdir / "val.jsonl")
    with FakeJudge(json_scores(_answer)) as judge:
        proc = run_cli(
            [
                "-m",
                *file_run(judge, "val.jsonl"),
                "prompt=v1,v2",
                "score=helpfulness",
                "hydra.sweep.dir=sweep",
                f"tracking.uri=sqlite:///{workdir}/mlflow.db",
            ],
            workdir,
        )
    assert proc.returncode == 0, proc.stderr
    groups: list[int] = []  # every process group started here; none may outlive the test
    with _mlflow_server(workdir, groups) as url:
        experiment_id, runs = _sweep_runs(url)
        assert sorted(runs) == ["v1", "v2"]
        assert runs["v1"]["pearson"] != runs["v2"]["pearson"]  # a value on the wrong run shows
        tag = {"key": f"mlflow.sharedViewState.{VIEW_KEY}", "value": json.dumps(SHARED_VIEW)}
        _api(url, "experiments/set-experiment-tag", {"experiment_id": experiment_id, **tag})
        page = f"{url}/#/experiments/{experiment_id}/runs"
        dom = _render(chromium, f"{page}?viewStateShareKey={VIEW_KEY}", workdir, "runs", groups)
        table = _grid(dom)
        shot = workdir / "ui" / "runs.png"
        assert set(table) == {run["id"] for run in runs.values()}, f"{table}; see {shot}"
        for prompt, run in runs.items():
            row = table[run["id"]]
            assert row["attributes.`Run Name`"].endswith(run["name"]), row
            assert row["tags.`judgekit.prompt`"] == prompt, row
            # The runs table prints the stored double in full (JavaScript's String(number)).
            assert float(row[f"metrics.`{METRIC}`"]) == run["pearson"], row
        for prompt, run in runs.items():  # each run's own page, with no view set up
            dom = _render(chromium, f"{page}/{run['id']}", workdir, f"run-{prompt}", groups)
            shot = workdir / "ui" / f"run-{prompt}.png"
            assert run["name"] in dom, f"run page did not render; see {shot}"
            assert float(_key_value_rows(dom)[METRIC]) == run["pearson"], f"see {shot}"
    left = _wait_all_gone(groups, str(workdir))
    assert not left, f"processes left behind: {left}"
