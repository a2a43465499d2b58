"""The derived index stays equal to a full scan of the records through real git operations."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import cmfgit, git, make_repo
from qhelp import art, assert_index_matches_scan, execution, put, scan, ts

from cmfgit import index, pack, tags
from cmfgit.query import CmfQuery
from cmfgit.repo import open_repo
from cmfgit.store import Store


def runs(prefix: str, n: int, start: int = 0) -> list[dict[str, object]]:
    return [
        execution(
            "train",
            [art(f"{prefix}-in{i % 3}")],
            [art(f"{prefix}-model{i}", "model")],
            params={"lr": 0.001 * (i + 1), "tag": prefix},
            metrics={"acc": round(0.5 + i / (2 * n + 2), 6)},
            started_at=ts(start + i),
        )
        for i in range(n)
    ]


def commit_all(root: Path, message: str) -> None:
    git(root, "add", "-A", ".cmf")
    git(root, "commit", "-q", "-m", message)


def write_pack(root: Path, name: str, records: list[dict[str, object]]) -> set[str]:
    from cmfgit import canonical

    encoded = dict(reversed(canonical.encode(r)) for r in records)  # id -> bytes
    path = root / ".cmf/objects/pack/site-a" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    existing = pack.parse(path.read_bytes(), str(path)) if path.exists() else {}
    path.write_bytes(pack.serialize({**existing, **encoded}))
    return set(encoded)


def test_index_follows_checkout_merge_rebase_reset_and_deletion(repo: Path) -> None:
    put(repo, *runs("main", 5))
    commit_all(repo, "main runs")
    first = assert_index_matches_scan(repo)
    assert len(first["executions"]) == 5
    first_id = sorted(first["ids"])[0]

    # A branch with loose and packed records; switching back and forth.
    git(repo, "checkout", "-q", "-b", "side")
    side_runs = put(repo, *runs("side", 4, 100))
    put(repo, tags.annotation(side_runs[0], {"status": "best"}), tags.annotation(first_id, {"seen": "side"}))
    write_pack(repo, "2026-01.yaml", runs("packed", 6, 200))
    commit_all(repo, "side runs")
    side = assert_index_matches_scan(repo)
    assert len(side["executions"]) == 15 and len(side["annotations"]) == 2
    git(repo, "checkout", "-q", "main")
    assert assert_index_matches_scan(repo)["ids"] == first["ids"]
    git(repo, "checkout", "-q", "side")
    assert assert_index_matches_scan(repo)["ids"] == side["ids"]

    # main moves on; a plain merge brings both sides together.
    git(repo, "checkout", "-q", "main")
    put(repo, *runs("main2", 3, 300))
    commit_all(repo, "more main runs")
    assert_index_matches_scan(repo)
    git(repo, "merge", "-q", "--no-edit", "side")
    merged = assert_index_matches_scan(repo)
    assert len(merged["executions"]) == 18 and len(merged["annotations"]) == 2
    with CmfQuery(repo) as q:  # the tags came with the merge
        assert q.tags_of(side_runs[0]) == {"status": "best"} and q.tags_of(first_id) == {"seen": "side"}

    # Rebase a branch with new records onto main.
    git(repo, "checkout", "-q", "-b", "topic", "HEAD~3")
    put(repo, *runs("topic", 2, 400))
    commit_all(repo, "topic runs")
    assert_index_matches_scan(repo)
    git(repo, "rebase", "-q", "main")
    rebased = assert_index_matches_scan(repo)
    assert len(rebased["executions"]) == 20

    # reset --hard drops them again.
    git(repo, "reset", "-q", "--hard", "HEAD~1")
    assert assert_index_matches_scan(repo)["ids"] == merged["ids"]

    # The pack changes in place (records added, one removed, as gc or a merge would).
    path = repo / ".cmf/objects/pack/site-a/2026-01.yaml"
    content = pack.parse(path.read_bytes(), str(path))
    dropped = sorted(content)[0]
    del content[dropped]
    path.write_bytes(pack.serialize(content))
    write_pack(repo, "2026-01.yaml", runs("late", 2, 500))
    after = assert_index_matches_scan(repo)
    assert dropped not in after["ids"]

    # Deleted (with its WAL files): rebuilt on the next read, same answers.
    state = open_repo(repo).worktree_state_dir
    for name in os.listdir(state):
        if name.startswith("index"):
            os.unlink(state / name)
    assert assert_index_matches_scan(repo) == after


def test_record_in_loose_and_pack_counts_once(repo: Path) -> None:
    records = runs("dup", 3)
    ids = put(repo, *records)
    packed = write_pack(repo, "2026-02.yaml", records[:2])
    assert packed == set(ids[:2])
    assert assert_index_matches_scan(repo)["ids"] == set(ids)
    # The loose copies go (as after gc): the packed records stay, the other goes.
    store = Store(repo / ".cmf/objects")
    for rid in ids:
        store.loose_path(rid).unlink()
    assert assert_index_matches_scan(repo)["ids"] == set(ids[:2])
    (repo / ".cmf/objects/pack/site-a/2026-02.yaml").unlink()
    assert assert_index_matches_scan(repo)["ids"] == set()


def test_pull_from_a_clone_and_untracked_records(repo: Path, bare_repo: Path, tmp_path: Path) -> None:
    git(repo, "remote", "add", "origin", str(bare_repo))
    put(repo, *runs("a", 3))
    commit_all(repo, "a")
    git(repo, "push", "-q", "origin", "main")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(bare_repo), str(clone))
    cmfgit(clone, "init")
    assert len(assert_index_matches_scan(clone)["executions"]) == 3
    put(clone, *runs("b", 4, 50))
    commit_all(clone, "b")
    git(clone, "push", "-q", "origin", "main")
    # Untracked records in the original, then a plain git pull.
    put(repo, *runs("untracked", 2, 90))
    assert len(assert_index_matches_scan(repo)["executions"]) == 5
    git(repo, "pull", "-q", "--no-rebase", "--no-edit", "origin", "main")
    assert len(assert_index_matches_scan(repo)["executions"]) == 9


def test_tree_scopes_follow_their_refs(repo: Path) -> None:
    put(repo, *runs("main", 2))
    commit_all(repo, "main")
    git(repo, "checkout", "-q", "-b", "side")
    put(repo, *runs("side", 3, 10))
    write_pack(repo, "2026-03.yaml", runs("sidepack", 2, 20))
    commit_all(repo, "side")
    side_ids = scan(repo)["ids"]
    git(repo, "checkout", "-q", "main")
    main_ids = scan(repo)["ids"]
    r = open_repo(repo)

    def ids(scope: index.Scope) -> set[str]:
        ix = index.open_index(r, scope)
        try:
            return {row[0] for row in ix.db().execute("SELECT id FROM records")}
        finally:
            ix.close()

    assert ids(index.Scope("ref", ref="side")) == side_ids
    assert ids(index.Scope("ref", ref="main")) == main_ids
    assert ids(index.Scope("all-branches")) == side_ids | main_ids
    # The branch moves: the same ref index follows (diff-tree between the two trees).
    git(repo, "checkout", "-q", "side")
    put(repo, *runs("later", 2, 30))
    path = repo / ".cmf/objects/pack/site-a/2026-03.yaml"
    content = pack.parse(path.read_bytes(), str(path))
    del content[sorted(content)[0]]
    path.write_bytes(pack.serialize(content))
    commit_all(repo, "later")
    assert ids(index.Scope("ref", ref="side")) == scan(repo)["ids"]
    git(repo, "checkout", "-q", "main")
    git(repo, "branch", "-q", "-D", "side")
    assert ids(index.Scope("all-branches")) == main_ids


def test_concurrent_readers_and_a_writer(repo: Path) -> None:
    put(repo, *runs("base", 30))
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "cmfgit", "log", "--json", "--where", "params.lr > 0"],
            cwd=repo,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    put(repo, *runs("more", 10, 100))
    results = [p.communicate(timeout=120) for p in procs]
    for (out, err), p in zip(results, procs):
        assert p.returncode == 0, err
        assert len(json.loads(out)) in range(30, 41)
    assert len(json.loads(cmfgit(repo, "log", "--json").stdout)) == 40
    assert_index_matches_scan(repo)


def test_refresh_hook_point_is_cheap_and_leaves_a_missing_index_missing(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "r")
    r = open_repo(root)
    index.refresh(r, build_missing=False)
    assert not index.index_path(r, index.CHECKOUT).exists()
    put(root, *runs("x", 2))
    index.refresh(r)
    assert index.index_path(r, index.CHECKOUT).exists()
    ix = index.Index(r, index.index_path(r, index.CHECKOUT))
    assert ix.open_existing()
    ix.refresh_worktree()
    assert ix.stats["parsed"] == 0
    ix.close()


def test_head_moves_are_caught_even_when_directory_mtimes_lie(repo: Path, monkeypatch: object) -> None:
    """The safety net keyed by git: a checkout whose directory mtimes were put back
    (a filesystem with unreliable mtimes) is still seen, through diff-tree of HEAD."""
    assert isinstance(monkeypatch, pytest.MonkeyPatch)
    monkeypatch.setattr(index, "RACY_NS", 0)  # trust every mtime, however recent
    put(repo, *runs("main", 4))
    commit_all(repo, "main")
    git(repo, "checkout", "-q", "-b", "side")
    put(repo, *runs("side", 40, 100))  # enough to land in shards main already has
    commit_all(repo, "side")
    git(repo, "checkout", "-q", "main")
    objects = repo / ".cmf/objects"
    old = time.time_ns() - 3600 * 10**9

    def age() -> None:  # every directory looks untouched for an hour
        for p in [objects, *objects.iterdir()]:
            os.utime(p, ns=(old, old))

    age()
    assert_index_matches_scan(repo)
    nohooks = ("-c", "core.hooksPath=/dev/null")  # the post-checkout hook would refresh the index itself
    git(repo, *nohooks, "checkout", "-q", "side")
    age()
    assert len(assert_index_matches_scan(repo)["executions"]) == 44
    git(repo, *nohooks, "checkout", "-q", "main")
    age()
    assert len(assert_index_matches_scan(repo)["executions"]) == 4


def test_records_are_read_back_from_their_files_even_after_they_move(repo: Path) -> None:
    """The index keeps no copy of a record: show/log read it from the loose file or the
    pack (at its offset), or from the git blob for --ref; a pack rewritten after the
    last refresh moves the offsets, and the reader refreshes once and finds them."""
    from cmfgit.errors import CmfgitError
    from cmfgit.query import CmfQuery

    loose = runs("loose", 2)
    packed = runs("packed", 5, 100)
    loose_ids = put(repo, *loose)
    packed_ids = sorted(write_pack(repo, "2026-04.yaml", packed))
    commit_all(repo, "records")
    by_id = {**dict(zip(loose_ids, loose)), **{rid: r for rid in packed_ids for r in packed if put_id(r) == rid}}
    for q in (CmfQuery(repo), CmfQuery(repo, ref="main")):
        with q:
            for rid, record in by_id.items():
                assert q.record(rid[:10]) == (rid, record)
            found = q.executions(limit=3)
            assert [e["id"] for e in found] == [r[0] for r in q.execution_records(limit=3)]

    with CmfQuery(repo) as q:
        write_pack(repo, "2026-04.yaml", runs("early", 3, 50))  # new records shift every offset
        parsed = q._index.stats["parsed"]
        for rid in packed_ids:
            assert q.record(rid) == (rid, by_id[rid])
        assert q._index.stats["parsed"] == parsed + 3  # the reader refreshed the index once
        Store(repo / ".cmf/objects").loose_path(loose_ids[0]).unlink()
        with pytest.raises(CmfgitError, match="could not be read"):
            q.record(loose_ids[0])


def put_id(record: dict[str, object]) -> str:
    from cmfgit import canonical

    return canonical.encode(record)[1]


def _damage(data: bytes, rid: str) -> bytes:
    """``data`` (a pack) with conflict markers around the entry of ``rid`` and one byte of it changed."""
    at = data.index(pack.SEPARATOR + rid.encode())
    end = data.find(b"\n" + pack.SEPARATOR, at) + 1 or len(data)
    entry = data[at:end].replace(b"exit_code: 0", b"exit_code: 1")
    return data[:at] + b"<<<<<<< ours\n" + entry + b"=======\n>>>>>>> theirs\n" + data[end:]


def _encoded(records: list[dict[str, object]]) -> dict[str, bytes]:
    from cmfgit import canonical

    return dict(reversed(canonical.encode(r)) for r in records)


def test_pack_salvage_keeps_every_entry_that_verifies() -> None:
    encoded = _encoded(runs("s", 6))
    data = pack.serialize(encoded)
    found, damaged = pack.salvage(data)
    assert [rid for rid, _o, _n in found] == sorted(encoded) and damaged == []
    victim = sorted(encoded)[2]
    broken = _damage(data, victim)
    found, damaged = pack.salvage(broken)
    assert [rid for rid, _o, _n in found] == [rid for rid in sorted(encoded) if rid != victim]
    assert all(broken[o : o + n] == encoded[rid] for rid, o, n in found)  # offsets into the damaged file
    assert damaged == [victim]
    body = data[len(pack.HEADER) :]
    assert pack.salvage(b"no header\n" + body)[1] == [None]
    stray = pack.salvage(pack.HEADER + b"stray text\n" + body)
    assert len(stray[0]) == 6 and stray[1] == [None]


def _no_hooks_commit(root: Path, message: str) -> None:
    git(root, "add", "-A", ".cmf")
    git(root, "commit", "-q", "--no-verify", "-m", message)


@pytest.mark.parametrize("scope", ["checkout", "ref"])
def test_a_damaged_pack_is_indexed_record_by_record_in_every_scope(repo: Path, scope: str) -> None:
    from cmfgit.errors import CmfgitError

    records = runs("p", 8)
    good = write_pack(repo, "2026-01.yaml", records)
    path = repo / ".cmf/objects/pack/site-a/2026-01.yaml"
    victim = sorted(good)[3]
    path.write_bytes(_damage(path.read_bytes(), victim))
    _no_hooks_commit(repo, "a damaged pack")
    ref = "main" if scope == "ref" else None

    with CmfQuery(repo, scope=scope, ref=ref, warn=False) as q:
        assert {e["id"] for e in q.executions()} == good - {victim}
        assert q.unreadable() == 1
        with pytest.raises(CmfgitError, match=f"record {victim[:12]} could not be read"):
            q.record(victim[:10])
    with pytest.warns(UserWarning, match=r"1 record\(s\) could not be read and are left out"):
        CmfQuery(repo, scope=scope, ref=ref).close()

    path.write_bytes(pack.serialize(_encoded(records)))  # repaired
    _no_hooks_commit(repo, "repaired")
    with CmfQuery(repo, scope=scope, ref=ref) as q:
        assert {e["id"] for e in q.executions()} == good and q.unreadable() == 0


def test_a_loose_record_edited_in_place_or_restored_is_noticed(repo: Path) -> None:
    ids = put(repo, *runs("l", 4))
    commit_all(repo, "records")
    target = Store(repo / ".cmf/objects").loose_path(ids[0])
    with CmfQuery(repo) as q:
        assert len(q.executions()) == 4
    original = target.read_bytes()
    with open(target, "r+b") as fh:  # in place: the shard's mtime does not move
        fh.write(b"#")
    with CmfQuery(repo, warn=False) as q:
        assert {e["id"] for e in q.executions()} == set(ids[1:]) and q.unreadable() == 1
        assert len(q.executions(limit=1)) == 1
    target.write_bytes(original)
    with CmfQuery(repo) as q:
        assert {e["id"] for e in q.executions()} == set(ids) and q.unreadable() == 0
