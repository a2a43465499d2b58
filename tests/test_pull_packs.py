"""``cmfgit pull`` writes what it brings into packs, skips what is here, and
touches nothing when nothing changed (issue 11, fast local views)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import cmfgit, git
from recgen import execution
from sites import clone_site, isolate, loose_ids, pull, push, seed_remote, store_entries, stored_ids

from cmfgit import gc, pack, retractions, tags
from cmfgit.localview import Selection
from cmfgit.repo import open_repo
from cmfgit.store import Store

PER_GROUP = 12  # records per (site, month, pipeline): enough that none is half of its pack


def _put(site: Path, n: int, pipeline: str, where: str, month: str) -> str:
    record: dict[str, Any] = execution(n, site=where, started_at=f"2026-{month}-04T05:06:07.000000Z")
    record["pipeline"] = pipeline
    record["outputs"] = [
        {"path": f"out{n}", "hash": f"blake3:{n:064x}", "size": 1, "type": "dataset", "kind": "file", "props": {}}
    ]
    return Store(site / ".cmf" / "objects").put(record)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A central whose global view holds pipelines 'a' and 'b' from two sites over
    two months (packed by gc), a tag on one 'a' run and a retraction of another."""
    tmp = tmp_path_factory.mktemp("pullpacks")
    with pytest.MonkeyPatch.context() as mp:
        isolate(mp, tmp)
        _bare, url = seed_remote(tmp)
        ids: dict[str, set[str]] = {"a": set(), "b": set()}
        n = 0
        for site_name in ("lab", "edge"):
            site = clone_site(tmp, url, site_name, branch=f"site/{site_name}")
            for month in ("01", "02"):
                for pipeline in ("a", "b"):
                    for _ in range(PER_GROUP):
                        n += 1
                        ids[pipeline].add(_put(site, n, pipeline, site_name, month))
            gc.gc(open_repo(site))
            if site_name == "lab":
                tagged = sorted(ids["a"])[0]
                _target, note, _tags = tags.tag(open_repo(site), tagged, {"stage": "production"})
                gone = sorted(ids["a"])[1]
                withdrawal, _withdrawn, _already = retractions.retract(open_repo(site), [gone], reason="bad split")
            push(site)
    return {"tmp": tmp, "url": url, "ids": ids, "note": note, "gone": gone, "withdrawal": withdrawal}


def _snapshot(root: Path) -> dict[str, tuple[int, int, int]]:
    """(inode, size, mtime) of every file of the working tree and of .git/cmf."""
    found: dict[str, tuple[int, int, int]] = {}
    for top in (root / ".cmf", root / ".git" / "cmf"):
        for dirpath, _dirs, files in os.walk(top):
            for name in files:
                st = os.stat(os.path.join(dirpath, name))
                found[os.path.join(dirpath, name)] = (st.st_ino, st.st_size, st.st_mtime_ns)
    return found


def test_pull_writes_packs_each_record_once_and_a_second_pull_writes_nothing(world: dict[str, Any]) -> None:
    clone = clone_site(world["tmp"], world["url"], "reader-a")  # main: no records
    assert stored_ids(clone) == set()
    out = cmfgit(clone, "pull", "--pipeline", "a").stdout
    ids = world["ids"]
    expected = (ids["a"] - {world["gone"]}) | {world["note"], world["withdrawal"]}
    assert stored_ids(clone) == expected  # the tag came along; the retracted run stayed behind
    entries = store_entries(clone)
    assert len(entries) == len(set(entries)) == len(expected)  # each record exactly once
    # Every record is in a pack, the one gc would place it in; none is loose.
    assert loose_ids(clone) == set()
    for stored in Store(clone / ".cmf" / "objects").iter_records():
        assert stored.source.startswith(f".cmf/objects/{gc.placement(stored.data)}-")  # <period>-<hash>.yaml
    packs = {p.relative_to(clone / ".cmf/objects").as_posix() for p in (clone / ".cmf/objects/pack").rglob("*.yaml")}
    assert {"pack/edge/2026-01", "pack/edge/2026-02", "pack/lab/2026-01"} < {p.rsplit("-", 1)[0] for p in packs}
    assert f"{len(expected)} new record(s) written" in out
    assert cmfgit(clone, "fsck").returncode == 0

    status = git(clone, "status", "--porcelain", "--untracked-files=all")
    head = git(clone, "rev-parse", "HEAD")
    before = _snapshot(clone)
    again = cmfgit(clone, "pull", "--pipeline", "a").stdout
    assert "0 new record(s) written" in again
    assert f"{len(expected)} match" in again  # the same answer, from the memory of the last pull
    assert _snapshot(clone) == before  # no file written, replaced or touched
    assert git(clone, "status", "--porcelain", "--untracked-files=all") == status
    assert git(clone, "rev-parse", "HEAD") == head


def test_pull_skips_records_already_here_and_leaves_the_existing_packs_as_they_are(world: dict[str, Any]) -> None:
    ids = world["ids"]
    clone = clone_site(world["tmp"], world["url"], "reader-b")
    first = pull(clone, Selection(pipelines=("b",)))
    assert first.written == len(ids["b"]) + 1  # and the retraction
    packed_b = {p: p.read_bytes() for p in (clone / ".cmf/objects/pack").rglob("*.yaml")}
    assert len(packed_b) == 4
    # A second selection whose runs fall in the same groups: new packs beside the old ones
    # (packs are written once), nothing lost or doubled.
    second = pull(clone, Selection(pipelines=("a", "b")))
    expected = (ids["a"] | ids["b"]) - {world["gone"]} | {world["note"], world["withdrawal"]}
    assert second.written == len(ids["a"]) - 1 + 1  # a's runs but the retracted one, and the tag
    assert stored_ids(clone) == expected
    entries = store_entries(clone)
    assert len(entries) == len(set(entries))
    now = set((clone / ".cmf/objects/pack").rglob("*.yaml"))
    assert set(packed_b) < now
    assert all(p.read_bytes() == data for p, data in packed_b.items())
    assert cmfgit(clone, "fsck").returncode == 0


def test_a_pulled_record_removed_here_is_brought_again(world: dict[str, Any]) -> None:
    clone = clone_site(world["tmp"], world["url"], "reader-c")
    pull(clone, Selection(pipelines=("a",)))
    (pack_file,) = (clone / ".cmf/objects/pack/edge").glob("2026-01-*.yaml")
    lost = set(store_entries(clone))
    pack_file.unlink()
    lost -= set(store_entries(clone))
    assert len(lost) == PER_GROUP
    again = pull(clone, Selection(pipelines=("a",)))
    assert again.written == PER_GROUP
    assert lost <= stored_ids(clone)


def test_pull_updates_an_existing_query_index_with_the_new_records(world: dict[str, Any]) -> None:
    clone = clone_site(world["tmp"], world["url"], "reader-d")
    cmfgit(clone, "log")  # the index exists (empty)
    index = clone / ".git" / "cmf" / "index.sqlite"
    assert index.exists()
    pull(clone, Selection(pipelines=("a",)))
    with sqlite3.connect(index) as conn:  # before any read command: pull indexed its packs
        (count,) = conn.execute("SELECT count(*) FROM executions").fetchone()
        files = {p for (p,) in conn.execute("SELECT path FROM files WHERE path LIKE 'pack/%'")}
    assert count == len(world["ids"]["a"]) - 1
    assert files == {
        p.relative_to(clone / ".cmf/objects").as_posix() for p in (clone / ".cmf/objects/pack").rglob("*.yaml")
    }
    shown = cmfgit(clone, "log", "-P", "a", "-n", "1000", "--json").stdout
    assert shown.count('"pipeline": "a"') == len(world["ids"]["a"]) - 1


def test_a_pull_killed_at_any_moment_leaves_a_whole_store_and_a_re_pull_completes(world: dict[str, Any]) -> None:
    ids = world["ids"]
    expected = ids["a"] | ids["b"] | {world["note"], world["withdrawal"]}  # the whole view: as it is
    env = {k: v for k, v in os.environ.items() if k != "CMFGIT_DEBUG"}
    for attempt, delay in enumerate((0.25, 0.4, 0.55, 0.7, 0.85, 1.0)):
        clone = clone_site(world["tmp"], world["url"], f"killed-{attempt}")
        git(clone, "fetch", "-q", "origin", "+refs/heads/cmf/global:refs/remotes/origin/cmf/global")
        proc = subprocess.Popen(
            [sys.executable, "-m", "cmfgit", "pull"],
            cwd=clone,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        # Whatever landed is whole: every pack parses and verifies, no half record anywhere.
        assert cmfgit(clone, "fsck").returncode == 0
        assert stored_ids(clone) <= expected
        entries = store_entries(clone)
        assert len(entries) == len(set(entries))
        cmfgit(clone, "pull")
        assert stored_ids(clone) == expected
        entries = store_entries(clone)
        assert len(entries) == len(set(entries))


def test_a_no_op_pull_skips_typer_and_says_what_the_typer_command_says(world: dict[str, Any]) -> None:
    clone = clone_site(world["tmp"], world["url"], "reader-e")
    cmfgit(clone, "pull", "-P", "b")
    fast = cmfgit(clone, "pull", "-P", "b")
    slow = cmfgit(clone, "pull", "-P", "b", env={"CMFGIT_NO_FASTPATH": "1"})
    assert fast.stdout == slow.stdout and "0 new record(s) written" in fast.stdout
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "cmfgit", "pull", "-P", "b"],
        cwd=clone,
        capture_output=True,
        text=True,
    )
    imported = {line.split("|")[-1].strip().split(".")[0] for line in proc.stderr.splitlines() if "|" in line}
    assert proc.returncode == 0 and "cmfgit" in imported and not imported & {"typer", "click", "pydantic"}


def test_a_damaged_local_pack_is_left_alone_and_the_pulled_records_go_to_new_packs(world: dict[str, Any]) -> None:
    clone = clone_site(world["tmp"], world["url"], "reader-f")
    pull(clone, Selection(pipelines=("a",)))
    (damaged,) = (clone / ".cmf/objects/pack/edge").glob("2026-01-*.yaml")
    before = damaged.read_bytes() + b"<<<<<<< ours\n"
    damaged.write_bytes(before)
    cmfgit(clone, "pull", "-P", "a", "-P", "b")
    assert damaged.read_bytes() == before  # left as it was (packs are written once)
    others = {p: p.read_bytes() for p in (clone / ".cmf/objects/pack").rglob("*.yaml") if p != damaged}
    packed = {rid for data in others.values() for rid in pack.parse(data)}
    assert world["ids"]["b"] <= packed | loose_ids(clone)  # every run of b is here, none lost
