"""Benchmark (not a test): start-up time of ``judgekit --help`` and ``import judgekit``.

Run: ``python bench/bench_startup.py`` (about 1 min; ``-n`` runs per command, default 15).

Each command runs ``-n`` times as a fresh process (interleaved, so load changes hit every command
alike); the figures are medians, as ratios to ``python -c pass`` measured in the same run. It also
checks which heavy libraries each entry point loads (the target: they load only when used), and
``python -X importtime`` names the slowest imports of ``judgekit --help``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

from _common import machine, verdict

HEAVY = (
    "litellm",
    "mlflow",
    "datasets",
    "pandas",
    "scipy",
    "numpy",
    "matplotlib",
    "openai",
    "aiohttp",
    "pyarrow",
    "hydra",
    "jinja2",
)
MUST_BE_LAZY = ("litellm", "mlflow", "datasets", "pandas", "scipy")

_LOADED = (
    "import sys, json, runpy; {setup}; "
    "heavy = {heavy!r}; "
    "print('LOADED ' + json.dumps([m for m in heavy if m in sys.modules]))"
)
_HELP = (
    "import sys\n"
    "from judgekit.cli.run import main\n"
    "try:\n"
    "    main(['--help'])\n"
    "except SystemExit:\n"
    "    pass\n"
)


def _console_script() -> list[str]:
    found = shutil.which("judgekit") or os.path.join(os.path.dirname(sys.executable), "judgekit")
    return [found, "--help"] if os.path.exists(found) else [sys.executable, "-m", "judgekit.cli"]


def commands() -> dict[str, list[str]]:
    """The commands timed, by label; the first is the baseline."""
    return {
        "python -c pass": [sys.executable, "-c", "pass"],
        "python -c 'import judgekit'": [sys.executable, "-c", "import judgekit"],
        "judgekit --help": _console_script(),
        "python -c 'import hydra, judgekit.cli.run'": [
            sys.executable,
            "-c",
            "import hydra, judgekit.cli.run",
        ],
        "python -c 'import judgekit.pipeline'": [sys.executable, "-c", "import judgekit.pipeline"],
    }


def time_commands(cmds: dict[str, list[str]], n: int) -> dict[str, list[float]]:
    """Wall seconds of each command, ``n`` times, interleaved."""
    times: dict[str, list[float]] = {label: [] for label in cmds}
    for _ in range(n):
        for label, cmd in cmds.items():
            start = time.perf_counter()
            subprocess.run(
                cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, timeout=120
            )
            times[label].append(time.perf_counter() - start)
    return times


def loaded_modules(setup: str) -> list[str]:
    """Which HEAVY modules are in ``sys.modules`` after ``setup`` runs in a fresh interpreter."""
    code = _LOADED.format(setup=setup, heavy=HEAVY)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("LOADED ")]
    return (
        json.loads(line[-1][len("LOADED ") :]) if line else ["<failed: " + out.stderr[-300:] + ">"]
    )


def slowest_imports(code: str, top: int = 8) -> list[tuple[float, str]]:
    """The ``top`` largest top-level cumulative import times (ms) of ``code`` (``-X importtime``)."""
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
    )
    rows = []
    for line in out.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line[len("import time:") :].split("|")
        if not name[1:].startswith(" "):  # nested imports are indented under their importer
            rows.append((int(cumulative) / 1000, name.strip()))
    return sorted(rows, reverse=True)[:top]


def main() -> None:
    """Time the commands and check what each entry point imports."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", type=int, default=15, help="runs per command (default 15)")
    args = p.parse_args()
    print(f"bench_startup: {machine()}")
    cmds = commands()
    time_commands(cmds, 1)  # warm the file cache and .pyc files
    times = time_commands(cmds, args.n)
    base_label = next(iter(cmds))
    base = statistics.median(times[base_label])
    print(f"median of {args.n} runs each (ratio to '{base_label}'):")
    for label, values in times.items():
        med = statistics.median(values)
        spread = f"min {min(values):.3f} max {max(values):.3f}"
        print(f"  {label:<40} {med:6.3f} s  x{med / base:5.1f}   ({spread})")
    help_s = statistics.median(times["judgekit --help"])
    imports_s = statistics.median(times["python -c 'import hydra, judgekit.cli.run'"])
    print(
        f"  of judgekit --help's {help_s:.2f} s, {imports_s - base:.2f} s are imports (hydra, "
        f"judgekit.cli.run) and {help_s - imports_s:.2f} s Hydra building its help text (it lists "
        "every config group, deep-copying its config repository for each: Hydra's own cost, "
        "the same for any Hydra app with this many groups)"
    )
    print("\nheavy libraries in sys.modules after each entry point:")
    checks = {
        "import judgekit": "import judgekit",
        "judgekit --help": "from judgekit.cli.run import main\ntry:\n    main(['--help'])\n"
        "except SystemExit:\n    pass",
        "judgekit.build_config(...)": "import judgekit; judgekit.build_config('openai_compatible', "
        "'v1', 'helpfulness', [{'prompt': 'p', 'response': 'r'}], "
        "overrides=['judge.model=openai/x', "
        "'judge.api_base=http://127.0.0.1:9/v1'])",
    }
    lazy_ok = True
    for label, setup in checks.items():
        setup_line = "exec(" + repr(setup) + ")"
        found = loaded_modules(setup_line)
        early = [m for m in found if m in MUST_BE_LAZY]
        if label != "judgekit.build_config(...)":
            lazy_ok = lazy_ok and not early
        print(f"  {label:<28} {', '.join(found) or '(none)'}")
    print(
        f"  litellm, mlflow, datasets, pandas, scipy absent after import and --help: "
        f"{verdict(lazy_ok)}"
    )
    print("\nslowest top-level imports of judgekit --help (cumulative ms, -X importtime):")
    for ms, name in slowest_imports(_HELP):
        print(f"  {ms:8.1f}  {name}")
    print(f"\noverall: {verdict(lazy_ok)} (the target: heavy libraries load only when used)")


if __name__ == "__main__":
    main()
