"""Docs that cannot rot: the CLI reference is generated from --help and checked here."""

from __future__ import annotations

from conftest import ROOT

from cmfgit.cli import docgen


def test_every_command_has_help() -> None:
    for path in docgen.command_paths():
        text = docgen.help_text(path)
        assert text.strip(), f"no help for {path}"
        assert "Usage" in text or "usage" in text


def test_cli_reference_is_current() -> None:
    expected = docgen.render()
    actual = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert actual == expected, "docs/cli.md is stale: run `python -m cmfgit.cli.docgen > docs/cli.md`"


def test_docs_exist() -> None:
    for name in ("guide.md", "cli.md", "format.md", "benchmarks.md"):
        assert (ROOT / "docs" / name).is_file(), name
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()[-1]
    assert ci in readme, "README must show exactly the test command that .ci/run runs"
