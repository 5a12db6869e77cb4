"""The ``judgekit`` command: the only module that imports Hydra.

``judgekit [overrides]`` composes the config (compose → OmegaConf.to_object → typed Config) and
calls :func:`judgekit.pipeline.run`. Every combination of a sweep is composed and checked before
the first job starts, so a typo fails at once with exit code 2 and no judge call.
Subcommands: ``init``, ``doctor``, ``fake-judge``, ``compare``, ``optimize``, ``audit``, ``estimate``,
``alt-test``, and the job commands.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from judgekit.cli.errors import error_line
from judgekit.config.compose import (
    UID_ENV,
    compose_config,
    conf_dir,
    normalize_overrides,
    register,
    sweep_combinations,
    to_config,
)
from judgekit.errors import ConfigError, JudgekitError
from judgekit.logs import quiet_third_party_loggers

__all__ = ["compose_config", "conf_dir", "main"]

_MAIN_PID: int | None = None
"""The process ``main`` runs in; a task running elsewhere is a parallel launcher's worker."""

SUBCOMMANDS = (
    *("init", "doctor", "fake-judge", "compare", "optimize", "audit"),
    *("estimate", "alt-test"),
    *("submit", "status", "result", "cancel"),
)
_failures: list[int] = []

_SIGNAL_NAMES: dict[int, str] = {
    signal.SIGINT: "interrupted (Ctrl-C)",
    signal.SIGTERM: "terminated (SIGTERM)",
}
_signalled: list[int] = []
"""The signals this process received (SIGINT, SIGTERM) while ``main`` ran."""
_kept: list[str] = []
"""What an interrupted command kept, for ``main``'s one line (``_task`` says it precisely)."""
_finished: list[str] = []
"""Output directories of the runs this process finished (the earlier jobs of a sweep)."""
_SENT_SOME = (
    "the answers received so far are in the response cache (unless cache.mode=off): rerun the "
    "same command to resume without paying for them again"
)


def _searchpath(override: str) -> bool:
    """``hydra.searchpath=[...]``: where further config groups (experiments) are found."""
    return override.lstrip("~+").startswith("hydra.searchpath")


def validate(
    overrides: list[str], multirun: bool, *, setup: bool = True, config_dirs: Sequence[str] = ()
) -> None:
    """Compose, type-check and set up every job of the command before anything runs.

    Each job's secrets are read (:func:`judgekit.secrets.check_secrets`) and its data loaded and
    checked (:func:`judgekit.pipeline.prepare`) here, before Hydra creates any directory: a bad
    job anywhere in a sweep stops the command before the first judge call of any job.
    ``setup=False`` (``--cfg``: print the config, run nothing) only composes and type-checks.
    """
    own = [o for o in overrides if not o.lstrip("~+").startswith("hydra") or _searchpath(o)]
    configs = {}
    dirs = list(config_dirs)
    for job in sweep_combinations(own) if multirun else [own]:
        cfg = compose_config(job, config_dirs=dirs, return_hydra_config=True)
        params = cfg.hydra.sweeper.get("params") or {}
        _no_member_keys(params)
        extra = [f"{k}={v}" for k, v in params.items()]
        for inner in sweep_combinations(extra):
            composed = compose_config([*job, *inner], config_dirs=dirs)
            config = to_config(composed, config_dirs=[*dirs, *_searchpath_dirs(cfg)])
            configs[repr(config)] = config
    _CHECKED.clear()
    # A parallel launcher's jobs run in other processes: they prepare again, keep nothing here.
    elsewhere = any(o.lstrip("~+").startswith("hydra/launcher") for o in overrides)
    budget = 0 if elsewhere else _REUSE_MAX_EXAMPLES
    for key, config in configs.items() if setup else ():  # all sound: now secrets and data
        checked = _precheck(config)
        budget -= len(checked.prepared.examples)
        _CHECKED[key] = checked if budget >= 0 else None


def _no_member_keys(params: Any) -> None:
    """Hydra's sweeper reads ``hydra.sweeper.params`` itself, where judgekit cannot keep a panel
    member's override apart from its name (:mod:`judgekit.config.panel`)."""
    for key in params:
        if re.match(r"^\+{0,2}judge\.members\.\d+\.", str(key)):
            raise ConfigError(
                f"hydra.sweeper.params: {key} cannot be swept from a config file; sweep it on "
                f"the command line (judgekit -m {key}=A,B) or write it as "
                f"judge.member_overrides.{str(key).split('.', 2)[2]} in the sweeper's params"
            )


@dataclass
class _Checked:
    """A job's setup done by the pre-check, and what it logged, for the job to reuse."""

    prepared: Any
    records: list[logging.LogRecord] = field(default_factory=list)


_CHECKED: dict[str, _Checked | None] = {}
_REUSE_MAX_EXAMPLES = 200_000
"""The pre-check keeps prepared examples for its jobs up to this many in all (memory bound)."""


def _precheck(config: Any) -> _Checked:
    """Read the job's secrets, then load and check its data; log lines are kept for the job."""
    from judgekit import pipeline
    from judgekit.secrets import check_secrets

    check_secrets(config.judge)
    checked = _Checked(None)
    logger = logging.getLogger("judgekit")
    keep = _Keep(checked.records)
    logger.addHandler(keep)
    propagate, logger.propagate = logger.propagate, False  # shown when the job runs instead
    # Hydra has not set up logging yet (the root logger is at WARNING): keep INFO lines too.
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        checked.prepared = pipeline.prepare(config, require_key=True)
    finally:
        logger.removeHandler(keep)
        logger.propagate = propagate
        logger.setLevel(level)
    return checked


class _Keep(logging.Handler):
    """Collects log records (the pre-check's), to be replayed once Hydra's logging is set up."""

    def __init__(self, records: list[logging.LogRecord]) -> None:
        super().__init__()
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _checked_for(config: Any) -> Any:
    """The pre-check's prepared run for ``config`` (its log lines replayed), or None."""
    if os.getpid() != _MAIN_PID:
        return None
    checked = _CHECKED.pop(repr(config), None)
    if checked is None:
        return None
    for record in checked.records:
        logging.getLogger(record.name).handle(record)
    return checked.prepared


def _print_report(result: Any) -> None:
    from judgekit.report import format_report

    print(format_report(result))


def _hydra_tags(hydra_cfg: Any) -> dict[str, str]:
    """Tags that group the runs of one ``-m`` sweep: its id (the sweep directory) and job number."""
    from hydra.types import RunMode

    from judgekit.secrets import redact

    tags = {"judgekit.overrides": redact(" ".join(hydra_cfg.overrides.task))[:5000]}
    dirs = [Path(d) for d in user_config_dirs(hydra_cfg)]
    if dirs:  # the user's config directories, and what their files held when the run began
        from judgekit.config.userdirs import dirs_digest

        tags["judgekit.config_dirs"] = " ".join(str(d) for d in dirs)
        tags["judgekit.config_dirs_sha256"] = dirs_digest(dirs)
    if hydra_cfg.mode == RunMode.MULTIRUN:
        tags["judgekit.sweep_id"] = str(Path(hydra_cfg.sweep.dir).resolve())
        tags["judgekit.sweep_job"] = str(hydra_cfg.job.num)
    return tags


def _task(cfg: Any) -> None:
    """The Hydra task: typed config → pipeline → short report. Errors print on one line."""
    from hydra.core.hydra_config import HydraConfig

    from judgekit import pipeline
    from judgekit.secrets import check_secrets, install_log_filter

    quiet_third_party_loggers()
    install_log_filter()
    plain_warnings()
    progress: list[int] = []  # [done, total] judge calls, for the line of an interrupted run

    def record(done: int, total: int) -> None:
        progress[:] = [done, total]

    config = None
    try:
        _redact_hydra_files(HydraConfig.get())
        config = to_config(cfg, config_dirs=user_config_dirs(HydraConfig.get()))
        check_secrets(config.judge)  # in a worker process too: its values are then redacted
        hydra_cfg = HydraConfig.get()
        out_dir = Path(hydra_cfg.runtime.output_dir)
        result = pipeline.run(
            config,
            out_dir,
            tags=_hydra_tags(hydra_cfg),
            prepared=_checked_for(config),
            on_progress=record,
        )
    except JudgekitError as err:
        if getattr(err, "result", None) is not None:  # the run finished: its report still counts
            _print_report(err.result)  # type: ignore[attr-defined]
        print(error_line(err), file=sys.stderr)
        logging.getLogger("judgekit").error("%s", err)
        _failures.append(err.exit_code)
        if os.getpid() != _MAIN_PID:  # joblib / submitit worker: its exit code would be lost
            raise _failed_job(err) from None
        return
    except (KeyboardInterrupt, SystemExit):
        if _signalled and config is not None:
            _kept[:] = [_what_was_kept(config, progress)]
        raise
    _finished.append(str(result.out_dir))
    _print_report(result)


def user_config_dirs(hydra_cfg: Any) -> list[str]:
    """The user's config directories of this Hydra run (``--config-dir``, ``hydra.searchpath``)."""
    return [
        str(source.path)
        for source in hydra_cfg.runtime.config_sources
        if source.schema == "file" and source.provider not in ("main", "hydra", "schema")
    ]


def _searchpath_dirs(cfg: Any) -> list[str]:
    """``file://`` directories of a ``hydra.searchpath`` the composed config sets, if any."""
    from omegaconf import OmegaConf

    paths = OmegaConf.select(cfg, "hydra.searchpath", default=None) or []
    return [str(p).removeprefix("file://") for p in paths if not str(p).startswith("pkg://")]


def _redact_hydra_files(hydra_cfg: Any) -> None:
    """Rewrite the config files Hydra wrote (``.hydra/*.yaml``, ``multirun.yaml``) redacted."""
    from hydra.types import RunMode

    from judgekit.secrets import redact

    paths: list[Path] = []
    if hydra_cfg.output_subdir is not None:
        subdir = Path(hydra_cfg.runtime.output_dir) / str(hydra_cfg.output_subdir)
        paths.extend(subdir.glob("*.yaml"))
    if hydra_cfg.mode == RunMode.MULTIRUN:
        paths.append(Path(hydra_cfg.sweep.dir) / "multirun.yaml")
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            continue
        cleaned = redact(text)
        if cleaned != text:
            path.write_text(cleaned, encoding="utf-8")


def _what_was_kept(config: Any, progress: list[int]) -> str:
    """What an interrupted run leaves behind: answered calls, and whether the cache holds them."""
    from judgekit.judge.cache import ResponseCache

    if not progress or progress[0] == 0:
        return "no judge call had been answered yet"
    done, total = progress
    where = f"{done} of {total} judge calls were answered"
    mode = config.cache.mode
    if mode in ("read_write", "refresh"):
        return (
            f"{where}; their answers are in the response cache at "
            f"{ResponseCache(config.cache.dir).path}: "
            "rerun the same command to resume without paying for them again"
        )
    return (
        f"{where}; the response cache did not keep them (cache.mode={mode}), so a rerun pays "
        "for every call again"
    )


def _failed_job(err: JudgekitError) -> Exception:
    """An error Hydra reports on one line (no traceback) and turns into exit code 1."""
    from hydra.errors import CompactHydraException

    return CompactHydraException(error_line(err))


def plain_warnings() -> None:
    """Show each Python warning as one plain log line, without the source line Python echoes."""
    import warnings

    def one_line(message: Warning | str, category: type[Warning], *args: Any, **kw: Any) -> None:
        text = " ".join(str(message).split())
        logging.getLogger("judgekit").warning("%s: %s", category.__name__, text)

    warnings.showwarning = one_line


def _run_hydra(argv: list[str]) -> int:
    import hydra
    from hydra._internal.utils import get_args_parser

    try:
        argv = _flags_first(normalize_overrides(argv))
    except JudgekitError as err:
        print(error_line(err), file=sys.stderr)
        return err.exit_code
    args = get_args_parser().parse_args(argv)
    informational = args.help or args.hydra_help or args.info or args.shell_completion
    if not informational:
        try:
            dirs = [args.config_dir] if args.config_dir else []
            validate(args.overrides, args.multirun, setup=not args.cfg, config_dirs=dirs)
            if args.cfg is None:
                check_output_dir(args.overrides, args.multirun, dirs)
        except JudgekitError as err:
            print(error_line(err), file=sys.stderr)
            return err.exit_code
    register()
    _kept[:] = [_SENT_SOME]  # until a task in this process says exactly what it kept
    app = hydra.main(config_path=str(conf_dir()), config_name="config", version_base="1.3")(_task)
    saved = sys.argv
    sys.argv = ["judgekit", *argv]
    try:
        app()
    finally:
        sys.argv = saved
    return max(_failures) if _failures else 0


def _flags_first(argv: list[str]) -> list[str]:
    """Hydra's flags (``-m``, ``-cd DIR``, ``--cfg job``, ...) moved before the overrides.

    Hydra's argument parser takes the overrides as one positional list, so ``a=1 -cd conf b=2``
    would leave ``b=2`` unrecognised; users write flags anywhere on the line. One
    ``--config-dir`` only, as Hydra has it.
    """
    from hydra._internal.utils import get_args_parser

    from judgekit.config.userdirs import CONFIG_DIR_FLAGS

    takes_value: dict[str, Any] = {}
    for known in get_args_parser()._actions:
        if known.option_strings and known.nargs in (None, "?"):
            for flag in known.option_strings:
                takes_value[flag] = known
    flags: list[str] = []
    overrides: list[str] = []
    items = iter(argv)
    for token in items:
        if not token.startswith("-"):
            overrides.append(token)
            continue
        flags.append(token)
        action = takes_value.get(token)
        if action is None:
            continue
        value = next(items, None)
        if value is None:
            break
        if action.nargs == "?" and action.choices and value not in action.choices:
            overrides.append(value)  # ``--info`` without a value
        else:
            flags.append(value)
    dirs = [f for f in flags if f.split("=")[0] in CONFIG_DIR_FLAGS]
    if len(dirs) > 1:
        raise ConfigError(
            f"--config-dir: given {len(dirs)} times; give one directory (put further groups in "
            "it, or list more directories in hydra.searchpath=[...])"
        )
    return [*flags, *overrides]


def check_output_dir(overrides: list[str], multirun: bool, config_dirs: Sequence[str] = ()) -> None:
    """The run's (or sweep's) directory can be written and holds no earlier run, before Hydra
    creates it and before any judge call."""
    from omegaconf import OmegaConf

    from judgekit.outdir import check_out_dir, check_sweep_dir

    hydra_only = [o for o in overrides if o.lstrip("~+").startswith("hydra")]
    cfg = compose_config(
        hydra_only if multirun else overrides,
        config_dirs=list(config_dirs),
        return_hydra_config=True,
    )
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    try:
        path = Path(str(OmegaConf.select(cfg, key, throw_on_resolution_failure=True)))
    except Exception:  # noqa: BLE001 - e.g. ${hydra:...}, only known inside Hydra: not checked
        return
    (check_sweep_dir if multirun else check_out_dir)(path, key)


def _stop_servers_on_sigterm() -> None:
    """On SIGTERM or Ctrl-C, stop any llama.cpp server this process owns first.

    SIGTERM then exits 143; Ctrl-C raises KeyboardInterrupt as usual, which ``main`` turns into
    one line and exit code 130. Stopping the server at once makes a call in flight fail fast
    instead of holding the exit until the model finishes. The MLflow runs this process has open
    are ended KILLED (``judgekit.tracking.runs.end_active_runs``), not left RUNNING.
    """
    import threading

    if threading.current_thread() is not threading.main_thread():
        return

    def on_signal(signum: int, frame: Any) -> None:
        _signalled.append(signum)
        if "judgekit.local.server" in sys.modules:
            sys.modules["judgekit.local.server"].stop_all()
        _end_tracked_runs()
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)


def _end_tracked_runs() -> None:
    """Mark the MLflow runs this process has open KILLED (when tracking has been used at all)."""
    from judgekit.tracking.runs import (
        end_active_runs,  # also stops joblib workers, whose runs end KILLED
    )

    try:
        end_active_runs("KILLED")
    except Exception as err:  # noqa: BLE001 - the interruption goes on; the store may be gone
        logging.getLogger("judgekit").warning("could not mark the MLflow run KILLED: %s", err)


def _interrupted_line(signum: int, command: str | None) -> str:
    """The one line printed for Ctrl-C or SIGTERM: what happened and what was kept."""
    what = f"judgekit{' ' + command if command else ''}: {_SIGNAL_NAMES[signum]}"
    if command is None:
        what += "; " + (_kept[0] if _kept else "before any judge call")
    if len(_finished) == 1:
        what += f"; the finished run's outputs are in {_finished[0]}"
    elif _finished:
        what += f"; {len(_finished)} finished runs kept their outputs ({', '.join(_finished)})"
    return what


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``judgekit`` console script."""
    global _MAIN_PID
    _MAIN_PID = os.getpid()
    os.environ[UID_ENV] = secrets.token_hex(3)  # one id per command, inherited by its workers
    argv = list(sys.argv[1:] if argv is None else argv)
    _failures.clear()
    _signalled.clear()
    _kept.clear()
    _finished.clear()
    _stop_servers_on_sigterm()
    from judgekit.secrets import RedactingStream

    command = argv[0] if argv and argv[0] in SUBCOMMANDS else None
    streams = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = RedactingStream(sys.stdout), RedactingStream(sys.stderr)
    try:
        if command is not None:
            from judgekit.cli import commands

            return commands.dispatch(command, argv[1:])
        return _run_hydra(argv)
    except (KeyboardInterrupt, SystemExit) as err:
        signum = _signalled[-1] if _signalled else None
        if signum is None or (isinstance(err, SystemExit) and err.code != 128 + signum):
            raise  # not ours: --help's exit, or an interrupt without a signal
        line = _interrupted_line(signum, command)
        print(line, file=sys.stderr)
        if logging.getLogger().handlers:  # Hydra's log of the run (cli.log) gets it too
            logging.getLogger("judgekit").warning("%s", line.removeprefix("judgekit: "))
        return 128 + signum
    finally:
        sys.stdout, sys.stderr = streams
        _CHECKED.clear()


if __name__ == "__main__":
    sys.exit(main())
