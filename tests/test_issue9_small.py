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
