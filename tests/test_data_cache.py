"""The content-addressed cache: objects by blake3, directories as a manifest plus files."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from conftest import cmfgit, git
from datahelp import b3, write_files

from cmfgit.data.cache import Cache
from cmfgit.data.manifest import parse
from cmfgit.repo import open_repo


def cache_objects(root: Path) -> dict[str, bytes]:
    objects = root / "blake3"
    return {
        shard.name + obj.name: obj.read_bytes()
        for shard in (objects.iterdir() if objects.is_dir() else [])
        for obj in shard.iterdir()
    }


def test_add_file_stores_one_read_only_object_named_by_its_hash(repo: Path) -> None:
    write_files(repo, {"data/raw.csv": "a,b\n1,2\n"})
    out = cmfgit(repo, "artifact", "add", "data/raw.csv", "--json").stdout
    h = b3(b"a,b\n1,2\n")
    assert f'"hash": "{h}"' in out and '"objects": 1' in out
    objects = cache_objects(repo / ".git" / "cmf" / "cache")
    assert objects == {h[7:]: b"a,b\n1,2\n"}
    obj = repo / ".git" / "cmf" / "cache" / "blake3" / h[7:9] / h[9:]
    assert not os.stat(obj).st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    # Adding again stores nothing new; editing the working file leaves the object intact.
    assert '"objects": 0' in cmfgit(repo, "artifact", "add", "data/raw.csv", "--json").stdout
    (repo / "data" / "raw.csv").write_text("changed\n")
    assert obj.read_bytes() == b"a,b\n1,2\n"


def test_a_directory_is_its_manifest_plus_one_object_per_file_and_versions_share_files(repo: Path) -> None:
    files = {f"data/set/part-{i:03}.txt": f"row {i}\n" for i in range(50)}
    files["data/set/sub/dir/x.bin"] = b"\x00\x01"
    write_files(repo, files)
    cmfgit(repo, "artifact", "add", "data/set")
    objects = cache_objects(repo / ".git" / "cmf" / "cache")
    assert len(objects) == 51 + 1
    r = open_repo(repo)
    with Cache.of(r) as cache:
        digest = cache.hasher.hash_path(repo / "data" / "set")
        entries = parse(objects[digest.hash[7:]], "manifest")
    assert {e.path for e in entries} == {p[len("data/set/") :] for p in files}
    assert all(objects[e.hex] == (repo / "data" / "set" / e.path).read_bytes() for e in entries)
    # A second version changing 2 files adds 2 file objects and 1 manifest.
    write_files(repo, {"data/set/part-000.txt": "new 0\n", "data/set/part-001.txt": "new 1\n"})
    cmfgit(repo, "artifact", "add", "data/set")
    assert len(cache_objects(repo / ".git" / "cmf" / "cache")) == 52 + 3


def test_cache_location_is_a_per_clone_setting(repo: Path, tmp_path: Path) -> None:
    scratch = tmp_path / "scratch-cache"
    git(repo, "config", "cmfgit.cache", str(scratch))
    write_files(repo, {"model.pkl": b"weights"})
    cmfgit(repo, "artifact", "add", "model.pkl")
    assert cache_objects(scratch) == {b3(b"weights")[7:]: b"weights"}
    assert not (repo / ".git" / "cmf" / "cache").exists()
    # Relative paths are from the repository root.
    git(repo, "config", "cmfgit.cache", "../rel-cache")
    cmfgit(repo, "artifact", "add", "model.pkl")
    assert cache_objects(tmp_path / "rel-cache") == {b3(b"weights")[7:]: b"weights"}


def test_worktrees_share_the_clone_cache(repo: Path, tmp_path: Path) -> None:
    wt = tmp_path / "wt"
    git(repo, "worktree", "add", "-q", str(wt))
    write_files(wt, {"a.txt": "from the worktree\n"})
    cmfgit(wt, "artifact", "add", "a.txt")
    assert b3(b"from the worktree\n")[7:] in cache_objects(repo / ".git" / "cmf" / "cache")


def test_add_refuses_a_missing_path_in_one_line(repo: Path) -> None:
    proc = cmfgit(repo, "artifact", "add", "nope.csv", check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip() == "cmfgit: error: nope.csv: does not exist"
