"""``judgekit submit | status | result | cancel``: durable jobs from a shell.

judgekit submit [-cd DIR] [--executor local|slurm] [--partition P --timeout-min N --cpus-per-task N
                --mem-gb G --option KEY=VALUE ...] [--jobs-dir DIR] [OVERRIDES ...]
judgekit submit --resume ID            run a failed or cancelled job again (from the cache)
judgekit status [ID ...] [--wait [--timeout S]] [--json]
judgekit result ID [--wait] [--json]   the run's report (or summary as JSON)
judgekit cancel ID
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from judgekit.cli.errors import Parser, error_line, report
from judgekit.errors import ConfigError, JudgekitError

__all__ = ["COMMANDS", "main"]


def _jobs_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--jobs-dir",
        help="where job directories are (default $JUDGEKIT_JOBS_DIR or ./judgekit-jobs)",
    )


def _submit_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="judgekit submit",
        description="Check a run's config here, then run it as a durable job (a local process or "
        "a Slurm job). OVERRIDES are the same as for `judgekit`. Follow it with `judgekit status`.",
    )
    p.add_argument("overrides", nargs="*", metavar="OVERRIDE")
    p.add_argument(
        "--config-dir",
        "-cd",
        action="append",
        default=[],
        metavar="DIR",
        help="your own config groups (as for `judgekit -cd DIR`); recorded with the job",
    )
    p.add_argument(
        "--executor",
        choices=("local", "slurm"),
        default="local",
        help="where the job runs: a process on this machine (default) or a Slurm job",
    )
    p.add_argument("--resume", metavar="ID", help="resubmit failed or cancelled job ID")
    p.add_argument("--out-dir", help="where the run writes its outputs (default <job dir>/result)")
    p.add_argument("--partition", help="Slurm partition (default: the cluster's)")
    p.add_argument("--timeout-min", type=int, help="time limit in minutes (local 1440, Slurm 60)")
    p.add_argument("--cpus-per-task", type=int, help="CPUs (Slurm default 2)")
    p.add_argument("--mem-gb", type=float, help="memory in GB (Slurm default 4)")
    p.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="another executor option, e.g. account=lab or qos=high (hydra.launcher.* names)",
    )
    _jobs_dir(p)
    return p


def _options(args: argparse.Namespace) -> dict[str, Any]:
    import yaml

    options = {
        key: getattr(args, key)
        for key in ("partition", "timeout_min", "cpus_per_task", "mem_gb")
        if getattr(args, key) is not None
    }
    for item in args.option:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--option {item!r}: use KEY=VALUE, e.g. --option account=lab")
        options[key] = yaml.safe_load(value)
    return options


def _submit(argv: list[str]) -> int:
    from judgekit.jobs.handle import Job
    from judgekit.jobs.submission import submit_config

    args = _submit_parser().parse_args(argv)
    options = _options(args)
    if args.resume:
        if args.overrides or args.config_dir:
            raise ConfigError(
                "--resume reruns the job's own config; drop the overrides and --config-dir"
            )
        job = Job.load(args.resume, args.jobs_dir).resubmit(options or None)
    else:
        from judgekit.config.compose import compose_config, to_config

        dirs = args.config_dir
        cfg = to_config(compose_config(args.overrides, config_dirs=dirs), config_dirs=dirs)
        job = submit_config(
            cfg,
            config_dirs=dirs,
            executor=args.executor,
            executor_options=options,
            jobs_dir=args.jobs_dir,
            out_dir=args.out_dir,
        )
    status = job.status()
    where = f" --jobs-dir {args.jobs_dir}" if args.jobs_dir else ""
    print(
        f"submitted job {job.job_id} (attempt {status.attempt}, {status.executor} executor, "
        f"submitit job {status.submitit_job_id})\n"
        f"  status: judgekit status {job.job_id}{where}\n"
        f"  result: judgekit result {job.job_id}{where}\n"
        f"  dir:    {job.job_dir}"
    )
    return 0


def _status_parser() -> argparse.ArgumentParser:
    p = Parser(prog="judgekit status", description="Show jobs' states and progress.")
    p.add_argument("ids", nargs="*", metavar="ID", help="job ids (default: every job)")
    p.add_argument("--wait", action="store_true", help="wait until the jobs have finished")
    p.add_argument("--timeout", type=float, help="with --wait: give up after this many seconds")
    p.add_argument("--json", action="store_true", help="one JSON object per job")
    _jobs_dir(p)
    return p


def _status(argv: list[str]) -> int:
    from dataclasses import asdict

    from judgekit.jobs.handle import Job, list_jobs

    args = _status_parser().parse_args(argv)
    jobs = [Job.load(i, args.jobs_dir) for i in args.ids] if args.ids else list_jobs(args.jobs_dir)
    code = 0
    for job in jobs:
        status = job.wait(args.timeout) if args.wait else job.status()
        print(json.dumps(asdict(status)) if args.json else str(status))
        code = max(code, int(args.wait and status.state != "succeeded"))
    if not jobs and not args.json:
        print("no jobs")
    return code


def _result_parser() -> argparse.ArgumentParser:
    p = Parser(prog="judgekit result", description="Print a finished job's report.")
    p.add_argument("id", metavar="ID")
    p.add_argument("--wait", action="store_true", help="wait for the job to finish first")
    p.add_argument("--timeout", type=float, help="with --wait: give up after this many seconds")
    p.add_argument("--json", action="store_true", help="print summary.json instead of the report")
    _jobs_dir(p)
    return p


def _result(argv: list[str]) -> int:
    from judgekit.jobs.handle import Job

    args = _result_parser().parse_args(argv)
    job = Job.load(args.id, args.jobs_dir)
    status = job.wait(args.timeout) if args.wait else job.status()
    if not status.finished:
        print(
            error_line(
                f"job {job.job_id} is {' '.join([status.state, status.progress]).strip()}; "
                f"wait for it with: judgekit result {job.job_id} --wait"
            ),
            file=sys.stderr,
        )
        return 1
    result = job.result()
    if args.json:
        print(json.dumps(result.summary(), indent=2, default=str))
    else:
        from judgekit.report import format_report

        print(format_report(result))
    return 0


def _cancel(argv: list[str]) -> int:
    from judgekit.jobs.handle import Job

    p = Parser(prog="judgekit cancel", description="Stop a pending or running job.")
    p.add_argument("id", metavar="ID")
    _jobs_dir(p)
    args = p.parse_args(argv)
    print(Job.load(args.id, args.jobs_dir).cancel())
    return 0


COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "submit": _submit,
    "status": _status,
    "result": _result,
    "cancel": _cancel,
}


def main(name: str, argv: list[str]) -> int:
    """Run job subcommand ``name``; setup problems print one line (exit 2), a failed job exits 1."""
    from judgekit.logs import quiet_third_party_loggers

    quiet_third_party_loggers()
    try:
        return COMMANDS[name](argv)
    except JudgekitError as err:
        return report(err)
    except TimeoutError as err:
        return report(str(err), code=1)
    except SystemExit as exit:  # --help
        return int(exit.code or 0)
