"""Docs that cannot rot: the CLI reference is generated from --help and checked here."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import pytest
from conftest import ROOT, cmfgit

from cmfgit.cli import docgen


@functools.lru_cache(maxsize=1)
def _batch() -> dict[tuple[str, ...], str]:
    return docgen.help_texts()


def test_every_command_has_help(monkeypatch: pytest.MonkeyPatch) -> None:
    # render() takes every help from one process (docgen.help_texts); each is the
    # very text of `cmfgit ... --help` run on its own, as a user runs it: conftest's
    # cmfgit() (a fork of an interpreter that imported the CLI, see tests/cliserver.py),
    # and a real start-up each for the root, a command and a subcommand.
    batch = _batch()
    paths = list(docgen.command_paths())
    monkeypatch.delenv("FORCE_COLOR", raising=False)  # as docgen's environment has it
    for path in paths:
        text = cmfgit(Path.cwd(), *path, "--help", env=docgen._help_env()).stdout.rstrip() + "\n"
        assert text.strip(), f"no help for {path}"
        assert "Usage" in text or "usage" in text
        assert batch[tuple(path)] == text, path
    for path in ([], next(p for p in paths if len(p) == 1), next(p for p in paths if len(p) == 2)):
        assert docgen.help_text(path) == batch[tuple(path)], path


def test_cli_reference_is_current() -> None:
    expected = docgen.render(_batch())
    actual = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert actual == expected, "docs/cli.md is stale: run `python -m cmfgit.cli.docgen > docs/cli.md`"


def test_docs_exist() -> None:
    for name in ("guide.md", "cli.md", "format.md", "benchmarks.md"):
        assert (ROOT / "docs" / name).is_file(), name
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()[-1]
    assert ci in readme, "README must show exactly the test command that .ci/run runs"


def _helps() -> dict[str, str]:
    """'cmfgit log' -> its --help, from the generated reference."""
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    found: dict[str, str] = {}
    for part in text.split("\n## `")[1:]:
        title, _, body = part.partition("`")
        found[title] = body
    return found


def _example_commands() -> list[tuple[str, str]]:
    """(file, line) of every cmfgit command line in a code block of the docs."""
    import re

    found = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        if path.name == "cli.md":
            continue
        blocks = re.findall(r"```[a-z]*\n(.*?)```", path.read_text(encoding="utf-8"), re.S)
        for block in blocks:
            for line in block.replace("\\\n", " ").splitlines():
                line = re.sub(r"^\s*(\$ |\[[^]]*\]\$ )?", "", line)
                line = re.sub(r"^(\.venv/bin/|python -m )", "", line)
                if line.startswith("cmfgit ") and not line.split()[1].endswith(":"):  # not output
                    found.append((path.name, line))
    return found


def test_commands_and_options_in_the_docs_exist() -> None:
    """Every `cmfgit ...` example names a real command and only options it has."""
    import shlex

    helps = _helps()
    examples = _example_commands()
    assert len(examples) > 40  # the scan finds the examples
    problems = []
    for name, line in examples:
        words = shlex.split(line, comments=True)
        for i, word in enumerate(words):
            if word in ("|", ">", "&&", ";"):
                words = words[:i]
                break
        path = ["cmfgit"]
        for word in words[1:]:
            if word.startswith("-") or " ".join([*path, word]) not in helps:
                break
            path.append(word)
        command = " ".join(path)
        if command == "cmfgit" and len(words) > 1 and not words[1].startswith("-"):
            problems.append(f"{name}: unknown command in: {line}")
            continue
        options = words[1 : words.index("--")] if "--" in words else words[1:]
        takes_value = False
        for word in options:
            if takes_value:  # the value of the option before, even if it starts with '-'
                takes_value = False
                continue
            option = word.split("=")[0]
            takes_value = "=" not in word and bool(
                re.search(rf"(^|[\s,]){re.escape(option)}(, --?[\w-]+)* [A-Z]", helps[command], re.M)
            )
            if (
                option.startswith("-")
                and option != "-"
                and not re.search(rf"(^|[\s,]){re.escape(option)}\b", helps[command])
            ):
                problems.append(f"{name}: '{command}' has no option {option}: {line}")
    assert problems == []
