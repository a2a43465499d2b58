"""Generate docs/cli.md from the real ``--help`` of every command.

    python -m cmfgit.cli.docgen > docs/cli.md

``tests/test_docs.py`` regenerates it and fails when docs/cli.md is stale,
so the reference cannot drift from the code.
"""

from __future__ import annotations

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


def help_text(path: list[str]) -> str:
    env = {**os.environ, "COLUMNS": WIDTH, "TERM": "dumb", "NO_COLOR": "1"}
    env.pop("FORCE_COLOR", None)
    proc = subprocess.run(
        [sys.executable, "-m", "cmfgit", *path, "--help"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return proc.stdout.rstrip() + "\n"


def render() -> str:
    parts = [HEADER]
    for path in command_paths():
        title = " ".join(["cmfgit", *path])
        parts.append(f"\n## `{title}`\n\n```text\n{help_text(path)}```\n")
    return "".join(parts)


if __name__ == "__main__":
    sys.stdout.write(render())
