"""`cmfgit status`: recorded paths, and the files beside them that no record has."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import cmfgit, git
from datahelp import lab, run, write_files


def _rows(site: Path, *args: str) -> list[tuple[str, str]]:
    return [(r["path"], r["state"]) for r in json.loads(cmfgit(site, "status", "--json", *args).stdout)]


def test_status_shows_files_never_recorded_beside_recorded_ones(tmp_path: Path) -> None:
    site, _url, _store = lab(tmp_path)
    write_files(
        site,
        {
            "data/a.csv": "a\n",
            "data/b.csv": "b\n",
            "data/set/x.txt": "x\n",
            "data/set/y.txt": "y\n",
            "model.pkl": "m\n",
        },
    )
    run(site, "prepare", outputs=("data/a.csv", "data/b.csv", "data/set", "model.pkl"))
    assert _rows(site) == [
        ("data/a.csv", "unchanged"),
        ("data/b.csv", "unchanged"),
        ("data/set", "unchanged"),
        ("model.pkl", "unchanged"),
    ]
    write_files(
        site,
        {
            "data/new.csv": "new\n",  # beside recorded files: never recorded
            "data/extra/f.txt": "f\n",  # a directory beside them: one row for it
            "data/set/z.txt": "z\n",  # new inside a recorded directory
            "data/.hidden": "h\n",  # dot files are not data
            "data/README.md": "about the data\n",  # tracked by git: git's business
            "notes.txt": "n\n",  # the top of the repository is code, not a data directory
        },
    )
    git(site, "add", "-f", "data/README.md")
    expected = [
        ("data/a.csv", "unchanged"),
        ("data/b.csv", "unchanged"),
        ("data/set", "modified"),
        ("model.pkl", "unchanged"),
        ("data/extra/", "never recorded"),
        ("data/new.csv", "never recorded"),
        ("data/set/z.txt", "never recorded"),
    ]
    assert _rows(site) == expected
    text = cmfgit(site, "status").stdout.splitlines()
    assert [line.split()[-1] for line in text] == [p for p, _ in expected]
    assert text[-1].startswith("never recorded") and text[2].startswith("modified")
    # Named paths: only what is at or under them.
    assert _rows(site, "data/a.csv") == [("data/a.csv", "unchanged")]
    assert _rows(site, "data/set") == [("data/set", "modified"), ("data/set/z.txt", "never recorded")]
    assert _rows(site, "notes.txt") == [("notes.txt", "never recorded")]
    # Recording them makes them known.
    run(site, "more", outputs=("data/new.csv", "data/extra", "data/set"))
    assert [r for r in _rows(site) if r[1] != "unchanged"] == []
