"""Placing bytes safely: symlinks at recorded paths, a parent that is a file, hostile record paths."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import cmfgit
from datahelp import lab, run, write_files

from cmfgit import canonical
from cmfgit.repo import open_repo
from cmfgit.store import Store


def _error(site: Path, *args: str) -> str:
    proc = cmfgit(site, *args, check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def test_a_symlink_at_a_recorded_path_is_not_replaced_without_force(tmp_path: Path) -> None:
    site, _url, _store = lab(tmp_path)
    write_files(site, {"models/m.pkl": "recorded\n", "data/a.csv": "a\n"})
    rid = run(site, "train", outputs=("models/m.pkl",))
    outside = tmp_path / "elsewhere.pkl"
    outside.write_text("someone else's file\n")
    (site / "models" / "m.pkl").unlink()
    os.symlink(outside, site / "models" / "m.pkl")
    line = _error(site, "checkout", rid[:12])
    assert line == (
        f"cmfgit: error: models/m.pkl is a symbolic link (to {outside}): not replaced"
        " (--force replaces the link itself, never what it points to)"
    )
    assert os.path.islink(site / "models" / "m.pkl") and outside.read_text() == "someone else's file\n"
    assert "placed     models/m.pkl" in cmfgit(site, "checkout", rid[:12], "--force").stdout
    assert not os.path.islink(site / "models" / "m.pkl")
    assert (site / "models" / "m.pkl").read_text() == "recorded\n"
    assert outside.read_text() == "someone else's file\n"  # never written through the link
    # A link (inside the repository) to the recorded bytes is left alone.
    (site / "models" / "m.pkl").rename(site / "models" / "real.pkl")
    os.symlink("real.pkl", site / "models" / "m.pkl")
    assert "unchanged  models/m.pkl" in cmfgit(site, "checkout", rid[:12]).stdout
    assert os.readlink(site / "models" / "m.pkl") == "real.pkl"
    # A link that points inside the repository at other bytes: refused too (no write through it).
    (site / "models" / "real.pkl").chmod(0o644)
    (site / "models" / "real.pkl").write_text("other\n")
    assert "models/m.pkl is a symbolic link (to real.pkl): not replaced" in _error(site, "checkout", rid[:12])
    assert (site / "models" / "real.pkl").read_text() == "other\n"


def test_a_recorded_path_whose_parent_is_a_file(tmp_path: Path) -> None:
    site, _url, _store = lab(tmp_path)
    write_files(site, {"data/sub/a.csv": "a\n", "data/b.csv": "b\n"})
    rid = run(site, "prepare", outputs=("data/b.csv", "data/sub/a.csv"))
    (site / "data" / "sub" / "a.csv").unlink()
    (site / "data" / "sub").rmdir()
    (site / "data" / "sub").write_text("a file in the way\n")
    (site / "data" / "b.csv").unlink()
    for extra in ((), ("--force",)):
        line = _error(site, "checkout", rid[:12], *extra)
        assert (
            line == "cmfgit: error: cannot place data/sub/a.csv: data/sub is a file, not a directory (nothing placed)"
        )
        assert (site / "data" / "sub").read_text() == "a file in the way\n"
        assert not (site / "data" / "b.csv").exists()  # all or nothing


@pytest.mark.parametrize(
    "evil",
    [
        "../escaped.txt",
        "/tmp/cmfgit-absolute-{n}.txt",
        "data/../../up.txt",
        ".git/hooks/pre-commit",
        ".cmf/config.yaml",
    ],
)
def test_a_hostile_record_path_is_refused(tmp_path: Path, evil: str) -> None:
    site, _url, _store = lab(tmp_path)
    evil = evil.format(n=os.getpid())
    write_files(site, {"data/a.csv": "payload\n", "data/good.csv": "good\n"})
    rid = run(site, "prepare", outputs=("data/good.csv", "data/a.csv"))
    repo = open_repo(site)
    store = Store(repo.objects_dir)
    _, record = store.get(rid)
    record["outputs"][0]["path"] = evil  # a hand-made record (no cmfgit writes such a path)
    data, hostile = canonical.encode(record)
    store.put_bytes(hostile, data)
    (site / "data" / "good.csv").unlink()
    before = (site / ".cmf" / "config.yaml").read_bytes()
    line = _error(site, "checkout", hostile[:12], "--force")
    assert line == (
        f"cmfgit: error: refused to place '{evil}': a recorded path must stay inside the working tree,"
        " outside .git and .cmf (a hand-made record?); nothing placed"
    )
    assert _error(site, "artifact", "pull", hostile[:12], "--force") == line
    assert not (site / "data" / "good.csv").exists()
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "up.txt").exists()
    assert not os.path.exists(f"/tmp/cmfgit-absolute-{os.getpid()}.txt")
    assert (
        not (site / ".git" / "hooks" / "pre-commit").exists()
        or b"payload" not in (site / ".git" / "hooks" / "pre-commit").read_bytes()
    )
    assert (site / ".cmf" / "config.yaml").read_bytes() == before
