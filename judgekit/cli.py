"""The ``judgekit`` command: the only module that imports Hydra.

``judgekit [overrides]`` composes the config (compose → OmegaConf.to_object → typed Config) and
calls :func:`judgekit.pipeline.run`. Every combination of a sweep is composed and checked before
the first job starts, so a typo fails at once with exit code 2 and no judge call.
Subcommands: ``doctor``, ``fake-judge``, ``compare``.
"""

from __future__ import annotations

import logging
import os
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from judgekit.errors import ConfigError, JudgekitError

__all__ = ["compose_config", "conf_dir", "main"]

_MAIN_PID: int | None = None
"""The process ``main`` runs in; a task running elsewhere is a parallel launcher's worker."""

SUBCOMMANDS = ("doctor", "fake-judge", "compare", "submit", "status", "result", "cancel")
_failures: list[int] = []


def conf_dir() -> Path:
    """The config tree: ``judgekit/_conf`` in an installed wheel, else the repository's ``conf/``."""
    packaged = Path(__file__).resolve().parent / "_conf"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "conf"


def data_file(name: str) -> str:
    """Path of a file shipped in ``judgekit/bundled`` (the ``${judgekit_data:NAME}`` resolver)."""
    return str(resources.files("judgekit") / "bundled" / name)


def _register() -> None:
    from hydra.core.config_store import ConfigStore
    from omegaconf import OmegaConf

    from judgekit.config import Config

    ConfigStore.instance().store(name="judgekit_schema", node=Config)
    if not OmegaConf.has_resolver("judgekit_data"):
        OmegaConf.register_new_resolver("judgekit_data", data_file)


def _one_line(err: BaseException) -> str:
    """Hydra/OmegaConf messages without their stack hints, folded onto one line."""
    text = str(err)
    cause = err.__cause__ or err.__context__
    if cause is not None and str(cause) and str(cause) not in text:
        text += "\n" + str(cause)
    text = text.split("Config search path:")[0]
    skip = ("Set the environment variable", "object_type=", "full_key:", "reference_type=")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    lines = [ln.rstrip(".:") for ln in lines if not ln.startswith(skip)]
    return "; ".join(dict.fromkeys(lines)) or type(err).__name__


def to_config(cfg: Any) -> Any:
    """A composed DictConfig → the typed :class:`judgekit.config.Config` (runs the checks)."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        return OmegaConf.to_object(cfg)
    except OmegaConfBaseException as err:
        raise ConfigError(_one_line(err)) from None


def compose_config(overrides: list[str], *, return_hydra_config: bool = False) -> Any:
    """Compose ``conf/config.yaml`` with overrides through Hydra's compose API (a DictConfig)."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    _register()
    try:
        with initialize_config_dir(str(conf_dir()), version_base="1.3", job_name="judgekit"):
            return compose("config", overrides=overrides, return_hydra_config=return_hydra_config)
    except (HydraException, OmegaConfBaseException) as err:
        raise ConfigError(_one_line(err)) from None


def _sweep_combinations(overrides: list[str]) -> list[list[str]]:
    """Every job's override list of a ``-m`` sweep (Hydra's own basic sweeper logic)."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except HydraException as err:
        raise ConfigError(_one_line(err)) from None
    batches = BasicSweeper.split_arguments(parsed, None)
    return [job for batch in batches for job in batch] or [[]]


def validate(overrides: list[str], multirun: bool) -> None:
    """Compose and type-check every job of the command before anything runs."""
    own = [o for o in overrides if not o.lstrip("~+").startswith("hydra")]
    jobs = _sweep_combinations(own) if multirun else [own]
    for job in jobs:
        cfg = compose_config(job, return_hydra_config=True)
        params = cfg.hydra.sweeper.get("params") or {}
        extra = [f"{k}={v}" for k, v in params.items()]
        for inner in _sweep_combinations(extra) if extra else [[]]:
            to_config(compose_config([*job, *inner]))


def _print_report(result: Any) -> None:
    from judgekit.report import format_report

    print(format_report(result))


def _hydra_tags(hydra_cfg: Any) -> dict[str, str]:
    """Tags that group the runs of one ``-m`` sweep: its id (the sweep directory) and job number."""
    from hydra.types import RunMode

    tags = {"judgekit.overrides": " ".join(hydra_cfg.overrides.task)[:5000]}
    if hydra_cfg.mode == RunMode.MULTIRUN:
        tags["judgekit.sweep_id"] = str(Path(hydra_cfg.sweep.dir).resolve())
        tags["judgekit.sweep_job"] = str(hydra_cfg.job.num)
    return tags


def _task(cfg: Any) -> None:
    """The Hydra task: typed config → pipeline → short report. Errors print on one line."""
    from hydra.core.hydra_config import HydraConfig

    from judgekit import pipeline

    quiet_third_party_loggers()
    try:
        config = to_config(cfg)
        result = pipeline.run(
            config, Path(HydraConfig.get().runtime.output_dir), tags=_hydra_tags(HydraConfig.get())
        )
    except JudgekitError as err:
        if getattr(err, "result", None) is not None:  # the run finished: its report still counts
            _print_report(err.result)  # type: ignore[attr-defined]
        print(f"judgekit: error: {err}", file=sys.stderr)
        logging.getLogger("judgekit").error("%s", err)
        _failures.append(err.exit_code)
        if os.getpid() != _MAIN_PID:  # joblib / submitit worker: its exit code would be lost
            raise _failed_job(err) from None
        return
    _print_report(result)


def _failed_job(err: JudgekitError) -> Exception:
    """An error Hydra reports on one line (no traceback) and turns into exit code 1."""
    from hydra.errors import CompactHydraException

    return CompactHydraException(f"judgekit: error: {err}")


def quiet_third_party_loggers() -> None:
    """Keep litellm, httpx and MLflow from logging request details (keys included) or noise."""
    import os

    if not os.environ.get("LITELLM_LOG"):  # a user who asks for litellm's logs gets them
        for name in ("LiteLLM", "litellm", "LiteLLM Router", "LiteLLM Proxy"):
            logging.getLogger(name).setLevel(logging.WARNING)
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)


def _run_hydra(argv: list[str]) -> int:
    import hydra
    from hydra._internal.utils import get_args_parser

    args = get_args_parser().parse_args(argv)
    informational = args.help or args.hydra_help or args.info or args.shell_completion
    if not informational:
        try:
            validate(args.overrides, args.multirun)
        except JudgekitError as err:
            print(f"judgekit: error: {err}", file=sys.stderr)
            return err.exit_code
    _register()
    app = hydra.main(config_path=str(conf_dir()), config_name="config", version_base="1.3")(_task)
    saved = sys.argv
    sys.argv = ["judgekit", *argv]
    try:
        app()
    finally:
        sys.argv = saved
    return max(_failures) if _failures else 0


def _stop_servers_on_sigterm() -> None:
    """On SIGTERM or Ctrl-C, stop any llama.cpp server this process owns first.

    SIGTERM then exits 143; Ctrl-C raises KeyboardInterrupt as usual. Stopping the server at once
    makes a call in flight fail fast instead of holding the exit until the model finishes.
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return

    def stop_servers() -> None:
        if "judgekit.local.server" in sys.modules:
            sys.modules["judgekit.local.server"].stop_all()

    def on_term(signum: int, frame: object) -> None:
        stop_servers()
        from judgekit.tracking import end_active_runs  # joblib workers' runs too

        end_active_runs("KILLED")
        sys.exit(128 + signum)

    def on_interrupt(signum: int, frame: Any) -> None:
        stop_servers()
        signal.default_int_handler(signum, frame)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_interrupt)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``judgekit`` console script."""
    global _MAIN_PID
    _MAIN_PID = os.getpid()
    argv = list(sys.argv[1:] if argv is None else argv)
    _failures.clear()
    _stop_servers_on_sigterm()
    if argv and argv[0] in SUBCOMMANDS:
        from judgekit import commands

        code = commands.dispatch(argv[0], argv[1:])
    else:
        code = _run_hydra(argv)
    return code


if __name__ == "__main__":
    sys.exit(main())
