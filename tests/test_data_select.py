"""The selection language of the data commands and of `cmfgit pull`: --tag k=v, --stage, --run."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import cmfgit, git
from datahelp import b3, fresh_clone, lab, publish, remote_objects, run, write_files


def _three_runs(tmp_path: Path) -> tuple[Path, str, Path, dict[str, str]]:
    """prepare -> data/a.csv, train (status=prod, owner=ann) reads it -> models/m.pkl,
    other -> data/o.csv, whose artifact is tagged keep=yes."""
    site, url, store = lab(tmp_path)
    write_files(site, {"data/a.csv": "a\n", "models/m.pkl": "m\n", "data/o.csv": "o\n"})
    ids = {
        "prepare": run(site, "prepare", outputs=("data/a.csv",)),
        "train": run(site, "train", inputs=("data/a.csv",), outputs=("models/m.pkl",)),
        "other": run(site, "other", outputs=("data/o.csv",)),
    }
    cmfgit(site, "tag", ids["train"][:12], "status=prod", "owner=ann")
    cmfgit(site, "tag", "data/o.csv", "keep=yes")
    return site, url, store, ids


def _pushed(store: Path) -> set[str]:
    return {h for h in remote_objects(store)}


def test_artifact_push_and_fetch_by_tag(tmp_path: Path) -> None:
    site, url, store, _ids = _three_runs(tmp_path)
    publish(site)
    # A tagged run: its artifacts (what it read and wrote).
    assert "pushed 2 object(s)" in cmfgit(site, "artifact", "push", "--tag", "status=prod").stdout
    assert _pushed(store) == {b3(b"a\n")[7:], b3(b"m\n")[7:]}
    # Repeated --tag: all of them (AND); a value that differs selects nothing.
    assert (
        "pushed 0 object(s), 0 B; 0 already"
        in cmfgit(site, "artifact", "push", "--tag", "status=prod", "--tag", "owner=bob").stdout
    )
    # A tagged artifact version: that artifact.
    assert "pushed 1 object(s)" in cmfgit(site, "artifact", "push", "--tag", "keep=yes").stdout
    assert _pushed(store) == {b3(c)[7:] for c in (b"a\n", b"m\n", b"o\n")}
    # AND with the other run filters: train is not of stage 'other'.
    both = cmfgit(site, "artifact", "push", "--tag", "status=prod", "--stage", "other", "--json").stdout
    assert json.loads(both)["pushed"] == 0 and json.loads(both)["already"] == 0
    other = fresh_clone(tmp_path, url, "b")
    pulled = cmfgit(other, "artifact", "pull", "--tag", "status=prod").stdout
    assert "placed     models/m.pkl" in pulled and "placed     data/a.csv" in pulled
    assert not (other / "data" / "o.csv").exists()
    bad = cmfgit(site, "artifact", "push", "--tag", "status", check=False)
    assert bad.returncode == 2 and bad.stderr.strip() == "cmfgit: error: --tag 'status' is not KEY=VALUE"


def test_pull_brings_only_the_tagged_runs_and_their_data(tmp_path: Path) -> None:
    site, url, store, ids = _three_runs(tmp_path)
    git(site, "push", "-q", "origin", "HEAD")  # main: the data remote's config
    git(site, "checkout", "-q", "-b", "work")
    cmfgit(site, "push")  # the records go to branch 'work' and to the global view; data to the remote
    assert len(remote_objects(store)) == 3

    analyst = fresh_clone(tmp_path, url, "analyst")  # main: no records of its own
    out = cmfgit(analyst, "pull", "--tag", "status=prod", "--with-data").stdout
    assert "data       store: fetched 2 object(s); placed 2 path(s)" in out
    runs = json.loads(cmfgit(analyst, "log", "--json").stdout)
    assert [r["id"] for r in runs] == [ids["train"]]
    assert runs[0]["tags"] == {"owner": "ann", "status": "prod"}  # the tag annotations came along
    assert (analyst / "models" / "m.pkl").read_text() == "m\n" and not (analyst / "data" / "o.csv").exists()

    # An artifact's tag selects the runs that wrote or read it; --stage and --run narrow too.
    second = fresh_clone(tmp_path, url, "second")
    cmfgit(second, "pull", "--tag", "keep=yes")
    assert [r["id"] for r in json.loads(cmfgit(second, "log", "--json").stdout)] == [ids["other"]]
    third = fresh_clone(tmp_path, url, "third")
    cmfgit(third, "pull", "--stage", "prepare", "--stage", "other")
    assert {r["id"] for r in json.loads(cmfgit(third, "log", "--json").stdout)} == {ids["prepare"], ids["other"]}
    fourth = fresh_clone(tmp_path, url, "fourth")
    cmfgit(fourth, "pull", "--run", ids["prepare"][:10])
    assert [r["id"] for r in json.loads(cmfgit(fourth, "log", "--json").stdout)] == [ids["prepare"]]
    nothing = fresh_clone(tmp_path, url, "nothing")
    assert "0 match" in cmfgit(nothing, "pull", "--tag", "status=prod", "--tag", "owner=bob").stdout
