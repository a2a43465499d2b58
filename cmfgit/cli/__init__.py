"""The typer command line. Only this package imports typer.

Each module registers the commands of one area on the shared ``app``; each
command parses options, calls a core function with plain arguments, and
renders what it returns. ``main.py`` maps errors to exit codes.
"""

from __future__ import annotations

import os
from typing import Any

import typer

from cmfgit.errors import EXIT_INTERRUPTED, UsageError

# The order of `cmfgit --help`: the daily commands first.
COMMAND_ORDER = [
    "init",
    "log-run",
    "log",
    "show",
    "tag",
    "retract",
    "lineage",
    "diff",
    "compare",
    "artifacts",
    "pipelines",
    "ui",
    "mcp",
    "push",
    "pull",
    "status",
    "checkout",
    "artifact",
    "remote",
    "get",
    "fsck",
    "gc",
    "doctor",
    "hooks",
    "global",
    "bundle",
    "import",
    "export",
    "demo",
    "site",
    "completion",
]


class _Group(typer.core.TyperGroup):
    def list_commands(self, ctx: Any) -> list[str]:
        rank = {name: i for i, name in enumerate(COMMAND_ORDER)}
        return sorted(super().list_commands(ctx), key=lambda name: rank.get(name, len(rank)))


app = typer.Typer(
    cls=_Group,
    name="cmfgit",
    help="cmfgit: git-native metadata for ML and data pipelines (a Common Metadata Framework).",
    rich_markup_mode=None,
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)


def _version(value: bool) -> None:
    if value:
        from cmfgit import __version__

        print(f"cmfgit {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """cmfgit: git-native metadata for ML and data pipelines (a Common Metadata Framework)."""


# Registration by import: each module adds its commands to ``app``.
from cmfgit.cli import bundle as _bundle  # noqa: E402,F401
from cmfgit.cli import compare as _compare  # noqa: E402,F401
from cmfgit.cli import completion as _completion  # noqa: E402,F401
from cmfgit.cli import data as _data  # noqa: E402,F401
from cmfgit.cli import interop as _interop  # noqa: E402,F401
from cmfgit.cli import mcp as _mcp  # noqa: E402,F401
from cmfgit.cli import query as _query  # noqa: E402,F401
from cmfgit.cli import records as _records  # noqa: E402,F401
from cmfgit.cli import site as _site  # noqa: E402,F401
from cmfgit.cli import sync as _sync  # noqa: E402,F401
from cmfgit.cli import ui as _ui  # noqa: E402,F401


def _click_exceptions() -> Any:
    try:
        from typer._click import exceptions
    except ImportError:  # older typer uses click itself
        from click import exceptions  # type: ignore[no-redef,import-not-found,unused-ignore]
    return exceptions


def _tidy_metavars(command: Any) -> None:
    """Name every value after its parameter (PATH, REMOTE) instead of typer's <str>."""
    for param in command.params:
        if param.metavar is None and not getattr(param, "is_flag", False) and param.name:
            param.metavar = param.name.upper()
    for sub in (getattr(command, "commands", None) or {}).values():
        _tidy_metavars(sub)


def build_command() -> Any:
    """The click command tree of ``app``, as the CLI and the docs use it."""
    command = typer.main.get_command(app)
    _tidy_metavars(command)
    return command


def _usage_error(exc: Any, command: Any, argv: list[str]) -> UsageError:
    if exc.ctx is not None:
        path = exc.ctx.command_path
    else:  # click names no command for "Option '-s' requires an argument": the one that was run
        commands = getattr(command, "commands", {})
        path = f"cmfgit {argv[0]}" if argv and argv[0] in commands else "cmfgit"
    where = f"cmfgit {path.split(' ', 1)[1]}" if " " in path else "cmfgit"
    return UsageError(f"{exc.format_message()} (see '{where} --help')")


def check_command_line(name: str, argv: list[str]) -> bool:
    """Read ``cmfgit NAME ARGV`` as click reads it, without running it: for the hot
    commands' unusual command lines. False when that printed the help; a usage
    error is raised in the words of every other command."""
    exceptions = _click_exceptions()
    shown_help: Any = getattr(exceptions, "Exit", None) or typer.Exit  # typer >= 0.29 keeps Exit in typer
    sub = build_command().commands[name]
    try:
        sub.make_context(f"cmfgit {name}", list(argv))
    except shown_help:
        return False
    except exceptions.UsageError as exc:
        raise UsageError(f"{exc.format_message()} (see 'cmfgit {name} --help')") from None
    return True


def run_cli(argv: list[str]) -> int:
    exceptions = _click_exceptions()
    # typer >= 0.29 vendors click but keeps Abort in typer.exceptions.
    abort: Any = getattr(exceptions, "Abort", None) or getattr(typer.exceptions, "Abort", KeyboardInterrupt)
    command = build_command()
    if os.environ.get(_completion.COMPLETE_VAR):  # a shell asking for completions (cmfgit completion)
        _completion.init_completion()
    try:
        result = command.main(args=argv, prog_name="cmfgit", standalone_mode=False)
    except exceptions.NoArgsIsHelpError as exc:  # `cmfgit` alone, or a group alone
        print(exc.ctx.get_help() if exc.ctx else "")
        return 0
    except exceptions.UsageError as exc:
        raise _usage_error(exc, command, argv) from None
    except abort:
        print("cmfgit: interrupted")
        return EXIT_INTERRUPTED
    except exceptions.ClickException as exc:
        raise UsageError(exc.format_message()) from None
    return int(result or 0)
