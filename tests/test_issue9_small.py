"""The smaller defects of issue 9, item 13: one test each."""

from __future__ import annotations

from pathlib import Path

from conftest import cmfgit


def test_an_index_path_that_is_a_directory_is_a_clear_error(repo: Path) -> None:
    cmfgit(repo, "log-run", "-s", "train", "--", "true")
    (repo / ".git/cmf/index.sqlite").mkdir(parents=True)
    proc = cmfgit(repo, "log", check=False)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"cmfgit: error: the query index {repo / '.git/cmf/index.sqlite'} is a directory, not a file: "
        "remove it (the index is derived from the records and is rebuilt)"
    ]
    assert "internal error" not in proc.stderr
    assert not list((repo / ".git/cmf").glob(".tmp-*"))  # no half-built index left behind


def test_every_command_summary_is_a_whole_sentence() -> None:
    """click takes a command's summary up to the first '. ': 'e.g.' cut tag's at "(e.g."."""
    from cmfgit.cli import build_command
    from cmfgit.cli.docgen import command_paths

    root = build_command()
    for path in command_paths():
        cmd = root
        for name in path:
            cmd = cmd.commands[name]  # type: ignore[attr-defined]
        summary = cmd.get_short_help_str(limit=1000)
        assert summary.count("(") == summary.count(")"), (path, summary)
        assert not summary.endswith(("e.g.", "i.e.", "etc.")), (path, summary)
    tag = root.commands["tag"]  # type: ignore[attr-defined]
    assert tag.get_short_help_str(limit=1000) == "Tag an execution or an artifact, or list its tags."
