"""Generate docs/cli.md from the real ``--help`` of every command.

    python -m cmfgit.cli.docgen > docs/cli.md

``tests/test_docs.py`` regenerates it and fails when docs/cli.md is stale,
so the reference cannot drift from the code.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

from cmfgit.cli import build_command

WIDTH = "100"

HEADER = """\
# CLI reference

Generated from `--help` by `python -m cmfgit.cli.docgen > docs/cli.md`;
`tests/test_docs.py` checks that it is current. The user guide is
[guide.md](guide.md).
"""


def command_paths() -> Iterator[list[str]]:
    """Every visible command as a path of names, depth first, in help order."""
    root = build_command()

    def walk(cmd: Any, path: list[str]) -> Iterator[list[str]]:
        yield path
        commands = getattr(cmd, "commands", None)
        if commands:
            ctx = cmd.make_context("cmfgit", [], resilient_parsing=True)
            for name in cmd.list_commands(ctx):
                sub = commands[name]
                if not getattr(sub, "hidden", False):
                    yield from walk(sub, [*path, name])

    yield from walk(root, [])


def _help_env() -> dict[str, str]:
    env = {**os.environ, "COLUMNS": WIDTH, "TERM": "dumb", "NO_COLOR": "1"}
    env.pop("FORCE_COLOR", None)
    return env


def help_text(path: list[str]) -> str:
    """``cmfgit PATH --help`` as a user sees it: a process of its own."""
    proc = subprocess.run(
        [sys.executable, "-m", "cmfgit", *path, "--help"],
        capture_output=True,
        text=True,
        env=_help_env(),
        check=True,
    )
    return proc.stdout.rstrip() + "\n"


def help_texts() -> dict[tuple[str, ...], str]:
    """The ``--help`` of every command, from one fresh process (``--all-helps``):
    the same entry point and text as :func:`help_text`, without 40 start-ups."""
    proc = subprocess.run(
        [sys.executable, "-m", "cmfgit.cli.docgen", "--all-helps"],
        capture_output=True,
        text=True,
        env=_help_env(),
        check=True,
    )
    return {tuple(path): text for path, text in json.loads(proc.stdout)}


def _all_helps() -> list[tuple[list[str], str]]:
    """In this process: ``main([*path, '--help'])`` for every command; one that
    fails (non-zero exit) raises, as :func:`help_text`'s ``check`` does."""
    from cmfgit.main import main

    found = []
    for path in command_paths():
        code: str | int | None
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            try:
                code = main([*path, "--help"])
            except SystemExit as exc:
                code = exc.code
        if code not in (0, None):
            raise SystemExit(f"cmfgit {' '.join(path)} --help exited {code}")
        found.append((path, out.getvalue().rstrip() + "\n"))
    return found


def render(helps: dict[tuple[str, ...], str] | None = None) -> str:
    """docs/cli.md, from ``helps`` (:func:`help_texts`' answer) or a run of it."""
    parts = [HEADER]
    helps = help_texts() if helps is None else helps
    for path in command_paths():
        title = " ".join(["cmfgit", *path])
        parts.append(f"\n## `{title}`\n\n```text\n{helps[tuple(path)]}```\n")
    return "".join(parts)


if __name__ == "__main__":
    if sys.argv[1:] == ["--all-helps"]:
        sys.stdout.write(json.dumps(_all_helps()))
    else:
        sys.stdout.write(render())
