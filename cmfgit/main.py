"""Entry point of the ``cmfgit`` command: dispatch, and the one error handler.

Hot commands (``log-run``, ``merge-driver``, ``hook``) run without importing
typer, click or rich: typer alone costs over 100 ms of start-up. Well-formed
read command lines (log, show, lineage, diff, artifacts, pipelines) and pull
skip typer too (``fastread.py``), and so do ``push`` (``pushrun.py``) and
``artifact push|fetch|pull`` (``fastdata.py``). Everything else goes through
the typer app in ``cmfgit/cli/``.

Errors map to exit codes here and nowhere else: a :class:`CmfgitError` is a
one-line message and its ``exit_code``; Ctrl-C is 130; anything unexpected
is a bug, reported in one line (``CMFGIT_DEBUG=1`` shows the traceback).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from cmfgit.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, CmfgitError


def _log_run(argv: list[str]) -> int:
    _prefetch_git_state(argv)
    from cmfgit import logrun

    code: int = logrun.main(argv)
    return code


def _prefetch_git_state(argv: list[str]) -> None:
    """Start log-run's git processes before importing the rest of cmfgit, so
    that git reads the state while Python imports (DESIGN §10 start-up)."""
    options = argv[: argv.index("--")] if "--" in argv else argv
    if "-h" in options or "--help" in options:
        return
    from cmfgit import gitstate
    from cmfgit.repo import find_repo

    try:
        repo = find_repo()
    except CmfgitError:
        return  # logrun reports it
    if repo.initialized:
        gitstate.prefetch(repo)


def _merge_driver(argv: list[str]) -> int:
    from cmfgit import merge_driver

    code: int = merge_driver.main(argv)
    return code


def _hook(argv: list[str]) -> int:
    if argv[:1] == ["central-update"]:  # the central's post-receive hook: only the lock before it decides
        from cmfgit import centralhook

        return centralhook.main(argv[1:])
    from cmfgit import hooks

    code: int = hooks.main(argv)
    return code


HOT_COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "log-run": _log_run,
    "merge-driver": _merge_driver,
    "hook": _hook,
}


# Read commands (and pull) that fastread.py parses without typer (when well-formed).
_READ_COMMANDS = frozenset({"log", "show", "lineage", "diff", "artifacts", "pipelines", "pull"})


def error(message: str) -> None:
    if "://" in message:  # a URL's credentials are never printed
        from cmfgit.redact import url_text

        message = url_text(message)
    print(f"cmfgit: error: {message}", file=sys.stderr)


# Commands that must not (init, demo, global: they set up or work elsewhere) or
# should not (doctor: it reports the state as found) configure the clone first.
_NO_AUTOCONFIGURE = {"init", "doctor", "demo", "global", "completion", "-h", "--help", "--version"}


def _autoconfigure(args: list[str]) -> None:
    """Set up a clone whose merge driver is missing (any fresh clone): git
    would silently merge records as text. One git call when all is well."""
    if not args or args[0] in _NO_AUTOCONFIGURE or "--help" in args or "-h" in args:
        return
    from cmfgit.init import configure_and_say
    from cmfgit.repo import find_repo

    try:
        configure_and_say(find_repo())
    except CmfgitError:
        return  # not a repository, no git: the command itself says so


def _one_line_warnings() -> None:
    """Python warnings (the API's note about unreadable records) as one line, like every message."""
    import warnings  # loaded by the interpreter already

    warnings.formatwarning = lambda message, *_args, **_kw: f"cmfgit: warning: {message}\n"


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if args and args[0] in HOT_COMMANDS:
            return HOT_COMMANDS[args[0]](args[1:])
        if args and args[0] == "push" and not os.environ.get("CMFGIT_NO_FASTPATH"):
            from cmfgit import pushrun  # a well-formed push without typer (many sites push at once)

            options = pushrun.parse(args[1:])
            if options is not None:
                return pushrun.run(**options)  # it sets up the clone itself, from the one config read
        _autoconfigure(args)
        _one_line_warnings()
        if args and args[0] in _READ_COMMANDS and not os.environ.get("CMFGIT_NO_FASTPATH"):
            from cmfgit import fastread

            parsed = fastread.parse(args)
            if parsed is not None:
                return fastread.run(*parsed)
        if args[:1] == ["artifact"] and not os.environ.get("CMFGIT_NO_FASTPATH"):
            from cmfgit import fastdata

            data_parsed = fastdata.parse(args)
            if data_parsed is not None:
                return fastdata.run(*data_parsed)
        from cmfgit.cli import run_cli

        return run_cli(args)
    except CmfgitError as exc:
        error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        print("cmfgit: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `cmfgit log | head`: the reader left; that is not an error.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except Exception as exc:  # a bug: say so in one line, keep details for debugging
        if os.environ.get("CMFGIT_DEBUG"):
            raise
        error(f"internal error: {type(exc).__name__}: {exc} (set CMFGIT_DEBUG=1 for a traceback)")
        return EXIT_INTERNAL


def main_exit() -> None:
    """Console-script entry point."""
    sys.exit(main())
