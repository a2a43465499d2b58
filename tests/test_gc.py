"""Packs: placement, `cmfgit gc`, automatic gc, and gc racing writers and readers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import recgen
from conftest import cmfgit, git

from cmfgit import canonical, pack
from cmfgit.gc import count_loose, placement, site_dir
from cmfgit.repo import find_repo
from cmfgit.store import Store

HERE = Path(__file__).resolve().parent


def groups(store: Store) -> list[str]:
    """``pack/<site>/<period>`` of every pack (a pack's file is named ``<period>-<16 hex>.yaml``)."""
    found = []
    for path in store.pack_paths():
        assert pack.is_write_once(path.name), path
        found.append(f"pack/{path.parent.name}/{pack.period_of(path.name)}")
    return sorted(found)


def test_placement_is_derived_from_content_only() -> None:
    rid, data = recgen.encoded(1, site="Edge Box #2", started_at="2026-11-30T23:59:59.000000Z")
    assert placement(data) == "pack/edge-box-2/2026-11"  # its packs: pack/edge-box-2/2026-11-<hash>.yaml
    assert placement(data, "year") == "pack/edge-box-2/2026"
    assert placement(data, "day") == "pack/edge-box-2/2026-11-30"
    assert site_dir("../..") == "unknown" and site_dir("no") == "no" and site_dir("A.b_c-d") == "a.b_c-d"
    _, quoted = recgen.encoded(2, site="2026-01-01")  # dumped quoted: looks like a date to YAML
    assert b"site: '2026-01-01'" in quoted and placement(quoted).startswith("pack/2026-01-01/")
    annotation = b"at: '2025-02-03T00:00:00.000000Z'\nbody: {}\nkind: label\nschema: cmfgit/annotation/1\ntarget: x\n"
    assert placement(annotation) == "pack/unknown/2025-02"


def test_gc_packs_everything_and_readers_see_the_same(repo: Path) -> None:
    ids = recgen.write(repo, *range(5), site="lab")
    ids += recgen.write(repo, 5, 6, site="lab", started_at="2026-04-01T00:00:00.000000Z")
    ids += recgen.write(repo, 7, 9, site="edge")  # (one record alone would stay loose: see below)
    (repo / ".cmf/objects/ab").mkdir(exist_ok=True)
    stale = repo / ".cmf/objects/ab/.tmp-1-dead"
    stale.write_bytes(b"half a rec")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    before = cmfgit(repo, "log", "--json").stdout

    out = cmfgit(repo, "gc").stdout
    assert "packed 9 record(s) into 3 pack(s); removed 9 loose file(s) and 1 stale temp file(s)\n" in out
    store = Store(repo / ".cmf/objects")
    assert count_loose(store.objects_dir) == 0 and not stale.exists()
    assert groups(store) == ["pack/edge/2026-03", "pack/lab/2026-03", "pack/lab/2026-04"]
    assert store.ids() == set(ids)
    packs = sorted(store.pack_paths())
    assert len(pack.parse(packs[1].read_bytes())) == 5
    for path in packs:  # named by content
        assert path.name == pack.file_name(pack.period_of(path.name), path.read_bytes())
    assert cmfgit(repo, "log", "--json").stdout == before
    assert "9 record(s) ok" in cmfgit(repo, "fsck").stdout
    assert "packed 0 record(s)" in cmfgit(repo, "gc").stdout  # idempotent

    # A record that is also packed already: the loose copy just goes. A new record alone
    # would be all of a new pack (packs are never rewritten): it waits, loose.
    recgen.write(repo, 0, site="lab")
    (alone,) = recgen.write(repo, 8, site="lab")
    out = cmfgit(repo, "gc").stdout
    assert "packed 0 record(s); removed 1 loose file(s); left 1 record(s) loose until their pack grows" in out
    assert [rid for rid, _ in store.iter_loose()] == [alone] and len(store.pack_paths()) == 3


def test_gc_never_writes_a_pack_that_one_record_is_half_of(repo: Path) -> None:
    """Git would take such a pack for the record's loose file renamed (rename/delete conflicts)."""
    (alone,) = recgen.write(repo, 1, site="edge")
    out = cmfgit(repo, "gc").stdout
    assert "packed 0 record(s)" in out and "left 1 record(s) loose until their pack grows" in out
    store = Store(repo / ".cmf/objects")
    assert store.pack_paths() == [] and {rid for rid, _ in store.iter_loose()} == {alone}
    big = recgen.execution(2, site="edge")
    big["params"] = {"blob": "x" * 5000}
    big_id = store.put(big)
    small = recgen.write(repo, 3, 4, site="edge")
    out = cmfgit(repo, "gc").stdout
    assert "packed 3 record(s) into 1 pack(s)" in out and "left 1 record(s) loose" in out
    assert {rid for rid, _ in store.iter_loose()} == {big_id}
    (packed,) = store.pack_paths()
    assert set(pack.parse(packed.read_bytes())) == {alone, *small}
    assert all(2 * len(data) < packed.stat().st_size for data in pack.parse(packed.read_bytes()).values())
    more = recgen.write(repo, *range(5, 60), site="edge")  # the pack grows: now the big one fits
    assert "packed 56 record(s) into 1 pack(s)" in cmfgit(repo, "gc").stdout
    assert count_loose(store.objects_dir) == 0 and store.ids() == {alone, big_id, *small, *more}


def test_gc_leaves_a_damaged_pack_alone_and_says_so(repo: Path) -> None:
    """Packs are never rewritten: new records go to a new pack, the damaged one stays as it is."""
    old = set(recgen.write(repo, 1, 2))
    cmfgit(repo, "gc")
    (target,) = Store(repo / ".cmf/objects").pack_paths()
    damaged = target.read_bytes() + b"<<<<<<< HEAD\n"
    target.write_bytes(damaged)
    new = set(recgen.write(repo, 3, 4))
    bad = cmfgit(repo, "gc", check=False)
    assert bad.returncode == 1
    assert f"{target.relative_to(repo).as_posix()}:" in bad.stdout and "left alone (see cmfgit fsck)" in bad.stdout
    assert "packed 2 record(s) into 1 pack(s)" in bad.stdout
    assert target.read_bytes() == damaged
    store = Store(repo / ".cmf/objects")
    (fresh,) = [p for p in store.pack_paths() if p != target]
    assert set(pack.parse(fresh.read_bytes())) == new and not old & new


def test_gc_leaves_records_that_fsck_rejects_loose_and_says_so(repo: Path) -> None:
    """A file named by its own hash is not yet a record: gc packed such files as
    pack/unknown/undated.yaml, where fsck and the merge driver then reject the pack."""
    good = set(recgen.write(repo, 1, 2, site="lab"))  # two: gc leaves a record alone in its pack loose
    store = Store(repo / ".cmf/objects")
    bad = {"schema": "cmfgit/execution/1", "note": "no fields of a run"}  # canonical, hashes right, bad schema
    data = canonical.dump(bad)
    path = store.loose_path(canonical.digest(data))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)

    proc = cmfgit(repo, "gc", check=False)
    assert proc.returncode == 1
    assert f"{path.relative_to(repo).as_posix()}:" in proc.stdout and "left loose" in proc.stdout
    assert "packed 2 record(s) into 1 pack(s)" in proc.stdout
    assert path.read_bytes() == data
    assert groups(store) == ["pack/lab/2026-03"]
    assert set(pack.parse(store.pack_paths()[0].read_bytes())) == good


def test_automatic_gc_after_log_run_commit(repo: Path) -> None:
    config = repo / ".cmf/config.yaml"
    config.write_text(config.read_text().replace("threshold: 1000", "threshold: 3"))
    git(repo, "commit", "-qam", "gc threshold 3")
    for i in range(4):
        cmfgit(repo, "log-run", "-q", "--commit", "-s", f"s{i}", "--", "true")
    store = Store(repo / ".cmf/objects")
    assert count_loose(store.objects_dir) == 0
    assert len(store.ids()) == 4 and len(store.pack_paths()) == 1
    (repo / "code.py").write_text("print(1)\n")
    git(repo, "add", "code.py")
    git(repo, "commit", "-qm", "user commit")  # the pre-commit hook commits the packing too
    assert git(repo, "status", "--porcelain") == ""
    assert git(repo, "ls-files", ".cmf/objects").count("pack/") == 1


WRITER = """
import sys
sys.path.insert(0, {tests!r})
import recgen
from pathlib import Path
k = int(sys.argv[1])
for n in range(k * 1000, k * 1000 + 150):
    recgen.write(Path(sys.argv[2]), n, site=f"site{{k % 2}}", started_at=f"2026-0{{1 + n % 3}}-01T00:00:00.000000Z")
"""

GC_LOOP = """
import sys, time
from pathlib import Path
from cmfgit.gc import gc
from cmfgit.repo import find_repo
repo = find_repo(sys.argv[1])
while not Path(sys.argv[2]).exists():
    gc(repo)
    time.sleep(0.01)
"""

READER = """
import sys
from pathlib import Path
from cmfgit.store import Store
store = Store(Path(sys.argv[1]) / ".cmf" / "objects")
seen = set()
rounds = 0
while not Path(sys.argv[2]).exists() or rounds < 2:
    now = {r.id for r in store.iter_records()}
    lost = seen - now
    if lost:
        print("lost", sorted(lost)[:3]); sys.exit(1)
    seen = now
    rounds += 1
print(len(seen), rounds)
"""


def test_gc_racing_writers_and_readers_loses_nothing(repo: Path, tmp_path: Path) -> None:
    stop = tmp_path / "stop"

    def start(code: str, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    gcs = [start(GC_LOOP, str(repo), str(stop)) for _ in range(2)]
    reader = start(READER, str(repo), str(stop))
    writers = [start(WRITER.format(tests=str(HERE)), str(k), str(repo)) for k in range(3)]
    for proc in writers:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    stop.touch()
    for proc in gcs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    out, err = reader.communicate(timeout=300)
    assert reader.returncode == 0, out + err

    from cmfgit.gc import gc

    gc(find_repo(repo))
    store = Store(repo / ".cmf/objects")
    assert len(store.ids()) == 450
    assert count_loose(store.objects_dir) <= 6  # at most one per group waits for its pack to grow
    per_group = {g: groups(store).count(g) for g in groups(store)}
    assert len(per_group) == 6  # 2 sites x 3 months
    assert all(n <= 7 for n in per_group.values()), per_group  # rolled up: about log2 of 75 records
    assert "450 record(s) ok" in cmfgit(repo, "fsck").stdout
