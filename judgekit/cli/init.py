"""``judgekit init [DIR]``: scaffold a project with its own config groups."""

from __future__ import annotations

from judgekit.cli.errors import Parser, report
from judgekit.errors import JudgekitError

__all__ = ["main"]


def main(argv: list[str]) -> int:
    """Write the project template into DIR (default: the current directory)."""
    from judgekit.scaffold import init_project

    parser = Parser(
        prog="judgekit init",
        description="Scaffold a judgekit project: conf/ (your prompt, dataset, score, judge and "
        "experiment options), data/, prompts/ and a README with the commands.",
    )
    parser.add_argument("directory", nargs="?", default=".", metavar="DIR")
    parser.add_argument("--force", action="store_true", help="overwrite the template's files")
    try:
        args = parser.parse_args(argv)
        written = init_project(args.directory, force=args.force)
    except JudgekitError as err:
        return report(err)
    except SystemExit as exit_:  # --help
        return int(exit_.code or 0)
    except OSError as err:
        return report(f"judgekit init: {err.filename}: {err.strerror}", code=2)
    for path in written:
        print(f"wrote {path}")
    where = "" if args.directory == "." else f"cd {args.directory} && "
    print(f"next: {where}cat README.md")
    return 0
