"""Packs are write-once and named by content: branches that ran gc merge with plain git, no driver.

Every merge here runs in a plain `git clone`, where no cmfgit configuration exists (no merge
driver, no hooks): what GitHub's or GitLab's merge button does. cmfgit reads the result after.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import recgen
from conftest import cmfgit, git

from cmfgit import pack, retractions
from cmfgit.gc import gc
from cmfgit.repo import find_repo
from cmfgit.store import Store


def commit_all(path: Path, message: str) -> None:
    git(path, "add", "-A", ".cmf")
    git(path, "commit", "-q", "--no-verify", "-m", message)


def pack_files(path: Path) -> set[str]:
    return {p.relative_to(path).as_posix() for p in Store(path / ".cmf" / "objects").pack_paths()}


def plain_clone(repo: Path, tmp_path: Path, name: str = "clone") -> Path:
    clone = tmp_path / name
    git(tmp_path, "clone", "-q", "--no-local", str(repo), str(clone))
    assert git(clone, "config", "--get", "merge.cmfgit.driver", check=False) == ""
    assert not [h for h in (clone / ".git/hooks").iterdir() if not h.name.endswith(".sample")]
    return clone


def plain_merge(clone: Path, ours: str, theirs: str) -> None:
    git(clone, "checkout", "-q", ours)
    merged = subprocess.run(
        ["git", "merge", "--no-edit", f"origin/{theirs}"], cwd=clone, capture_output=True, text=True
    )
    assert merged.returncode == 0, merged.stdout + merged.stderr
    assert "CONFLICT" not in merged.stdout + merged.stderr
    assert git(clone, "status", "--porcelain") == ""
    assert git(clone, "config", "--get", "merge.cmfgit.driver", check=False) == ""  # plain git did it all


def every_reader_sees_once(path: Path, expected: set[str]) -> None:
    """Store, fsck, the query index (log) and doctor each count every record exactly once."""
    store = Store(path / ".cmf" / "objects")
    seen = [r.id for r in store.iter_records()]
    assert len(seen) == len(set(seen)) and set(seen) == expected
    assert f"{len(expected)} record(s) ok" in cmfgit(path, "fsck").stdout
    logged = json.loads(cmfgit(path, "log", "--json", "-n", str(10 * len(expected))).stdout)
    found = [e["id"] for e in logged]
    assert len(found) == len(set(found)) == len(expected) and set(found) == expected
    assert retractions.live_ids(store) == expected  # a move never retracts


def test_two_branches_that_both_ran_gc_merge_with_plain_git(repo: Path, tmp_path: Path) -> None:
    """The issue's acceptance: two same-site branches past the gc threshold, plain `git merge`."""
    base = set(recgen.write(repo, *range(20)))
    commit_all(repo, "base: loose records")
    git(repo, "checkout", "-qb", "a")
    ours = set(recgen.write(repo, *range(1000, 2200)))
    git(repo, "add", "-A", ".cmf")
    git(repo, "commit", "-qm", "a: 1200 runs")  # the pre-commit hook packs past gc.threshold (1000)
    assert not any(Path(p).parent.name != "site-a" for p in pack_files(repo))
    assert git(repo, "ls-files", ".cmf/objects").count("pack/") >= 1
    git(repo, "checkout", "-q", "main")
    git(repo, "checkout", "-qb", "b")
    theirs = set(recgen.write(repo, *range(3000, 4100)))
    cmfgit(repo, "gc")
    commit_all(repo, "b: 1100 runs, gc")
    assert git(repo, "status", "--porcelain") == ""

    clone = plain_clone(repo, tmp_path)
    git(clone, "checkout", "-q", "-b", "a", "origin/a")
    plain_merge(clone, "a", "b")
    # Named by content, the two branches' packs never share a path (it was add/add on one path).
    a_packs = set(git(clone, "ls-tree", "-r", "--name-only", "origin/a", ".cmf/objects/pack").split())
    b_packs = set(git(clone, "ls-tree", "-r", "--name-only", "origin/b", ".cmf/objects/pack").split())
    assert a_packs and b_packs and not a_packs & b_packs
    every_reader_sees_once(clone, base | ours | theirs)
    assert len(pack_files(clone)) <= 4


def test_identical_gcs_on_two_branches_write_the_same_pack(repo: Path, tmp_path: Path) -> None:
    ids = set(recgen.write(repo, *range(40)))
    commit_all(repo, "loose")
    other = plain_clone(repo, tmp_path)
    cmfgit(repo, "gc")
    cmfgit(other, "gc")
    assert pack_files(repo) == pack_files(other) and len(pack_files(repo)) == 1
    (name,) = pack_files(repo)
    assert (repo / name).read_bytes() == (other / name).read_bytes()
    commit_all(repo, "gc here")
    commit_all(other, "gc there")
    git(other, "push", "-q", "origin", "HEAD:there")
    clone = plain_clone(repo, tmp_path, "third")
    plain_merge(clone, "main", "there")
    every_reader_sees_once(clone, ids)


def test_repacks_on_two_branches_merge_with_plain_git(repo: Path, tmp_path: Path) -> None:
    base: set[str] = set()
    for start in (0, 100):  # two packs of 100 records in the base
        base |= set(recgen.write(repo, *range(start, start + 100)))
        cmfgit(repo, "gc")
    commit_all(repo, "base: two packs")
    base_packs = pack_files(repo)
    assert len(base_packs) == 2
    added: dict[str, set[str]] = {}
    for branch, start, count in (("a", 1000, 150), ("b", 2000, 120)):
        git(repo, "checkout", "-q", "-b", branch, "main")
        added[branch] = set(recgen.write(repo, *range(start, start + count)))
        out = cmfgit(repo, "gc").stdout
        assert "folded 2 small pack(s) into bigger ones" in out  # 100 + 100 + new: rolled into one
        assert not pack_files(repo) & base_packs and len(pack_files(repo)) == 1
        commit_all(repo, f"{branch}: runs, gc and repack")

    clone = plain_clone(repo, tmp_path)
    git(clone, "checkout", "-q", "-b", "a", "origin/a")
    plain_merge(clone, "a", "b")
    everything = base | added["a"] | added["b"]
    every_reader_sees_once(clone, everything)
    assert len(pack_files(clone)) == 2  # each side's repack: the base's records are in both, read once
    assert "folded" not in cmfgit(clone, "gc").stdout  # two packs of about one size: geometric, left as they are
    everything |= set(recgen.write(clone, *range(5000, 5300)))
    assert "folded 2 small pack(s)" in cmfgit(clone, "gc").stdout  # once the group grows, one repack folds them
    assert len(pack_files(clone)) == 1
    every_reader_sees_once(clone, everything)


def test_revert_of_a_gc_merged_with_a_branch_that_ran_gc(repo: Path, tmp_path: Path) -> None:
    """Last session's leftover: this was a modify/delete conflict on the pack, fixed by hand."""
    first = set(recgen.write(repo, *range(30)))
    commit_all(repo, "runs")
    cmfgit(repo, "gc")
    commit_all(repo, "gc")
    (packed,) = pack_files(repo)
    git(repo, "checkout", "-q", "-b", "grown", "main")
    grown = set(recgen.write(repo, *range(100, 120)))
    cmfgit(repo, "gc")  # a second pack beside the first: the first is not touched
    assert packed in pack_files(repo) and len(pack_files(repo)) == 2
    commit_all(repo, "grown: gc")
    git(repo, "checkout", "-q", "-b", "repacked", "main")
    repacked = set(recgen.write(repo, *range(200, 220)))
    cmfgit(repo, "gc")
    repacked |= set(recgen.write(repo, *range(220, 240)))
    assert "folded" in cmfgit(repo, "gc").stdout  # 30 + 20 + 20: rolled into one, the first pack deleted
    assert packed not in pack_files(repo)
    commit_all(repo, "repacked: gc twice")
    git(repo, "checkout", "-q", "main")
    git(repo, "revert", "--no-edit", "HEAD")  # the gc: the pack goes, the loose files come back
    assert packed not in pack_files(repo)
    assert {rid for rid, _ in Store(repo / ".cmf/objects").iter_loose()} == first
    git(repo, "add", "-A", ".cmf")
    if git(repo, "status", "--porcelain"):
        git(repo, "commit", "-qm", "pending after the revert")
    assert not retractions.retracted(Store(repo / ".cmf/objects"))  # a move back retracts nothing

    for theirs, extra in (("grown", grown), ("repacked", repacked)):
        clone = plain_clone(repo, tmp_path, theirs)
        plain_merge(clone, "main", theirs)
        every_reader_sees_once(clone, first | extra)
    both = plain_clone(repo, tmp_path, "both")
    plain_merge(both, "main", "grown")
    plain_merge(both, "main", "repacked")
    every_reader_sees_once(both, first | grown | repacked)


def test_pack_count_stays_bounded_over_many_gcs(repo: Path) -> None:
    store = Store(repo / ".cmf" / "objects")
    ids: set[str] = set()
    counts = []
    for round_ in range(40):
        ids |= set(recgen.write(repo, *range(round_ * 25, round_ * 25 + 25)))
        commit_all(repo, f"runs {round_}")
        gc(find_repo(repo))
        counts.append(len(store.pack_paths()))
        commit_all(repo, f"gc {round_}")
        # git sees no rename in any gc (a rename is what turns into rename/delete conflicts)
        moves = git(repo, "diff", "-M", "--name-status", "HEAD~", "HEAD").split("\n")
        assert not [line for line in moves if line.startswith("R")], moves
    assert store.ids() == ids
    assert max(counts) <= 7, counts  # about log2(40 gcs): geometric roll-ups
    sizes = sorted(p.stat().st_size for p in store.pack_paths())
    assert all(sum(sizes[:k]) <= 2 * sizes[k - 1] for k in range(2, len(sizes) + 1))  # nothing left to roll up
    for path in store.pack_paths():
        assert path.name == pack.file_name(pack.period_of(path.name), path.read_bytes())


def test_old_style_packs_are_read_and_folded_by_a_later_repack(repo: Path) -> None:
    """A pack that an earlier version rewrote in place (<period>.yaml): read as any pack, never
    rewritten, and folded into a content-named pack when a repack takes it."""
    old_ids = dict(recgen.encoded(n) for n in range(60))
    old = repo / ".cmf/objects/pack/site-a/2026-03.yaml"
    old.parent.mkdir(parents=True)
    old.write_bytes(pack.serialize(old_ids))
    store = Store(repo / ".cmf" / "objects")
    assert store.ids() == set(old_ids)
    recgen.write(repo, 0, 1)  # already in the old pack
    new = set(recgen.write(repo, *range(100, 120)))
    out = cmfgit(repo, "gc").stdout
    assert "packed 20 record(s) into 1 pack(s); removed 22 loose file(s)" in out
    assert old.read_bytes() == pack.serialize(old_ids)  # never rewritten
    new |= set(recgen.write(repo, *range(120, 170)))
    assert "folded" in cmfgit(repo, "gc").stdout
    assert not old.exists() and all(pack.is_write_once(p.name) for p in store.pack_paths())
    assert store.ids() == set(old_ids) | new
    assert f"{len(old_ids) + len(new)} record(s) ok" in cmfgit(repo, "fsck").stdout


def test_the_global_view_counts_a_record_in_two_packs_once(repo: Path) -> None:
    """Two branches' gcs pack the base's loose records each: the union holds both packs."""
    base = set(recgen.write(repo, *range(30)))
    commit_all(repo, "base: loose")
    added = {}
    for branch, start in (("a", 100), ("b", 200)):
        git(repo, "checkout", "-q", "-b", branch, "main")
        added[branch] = set(recgen.write(repo, *range(start, start + 40)))
        cmfgit(repo, "gc")
        commit_all(repo, f"{branch}: gc")
    out = cmfgit(repo, "global", "update").stdout
    everything = base | added["a"] | added["b"]
    assert f"{len(everything)} record(s)" in out
    message = git(repo, "log", "-1", "--format=%B", "cmf/global")
    assert f"Cmfgit-Records: {len(everything)}\n" in message
    files = git(repo, "ls-tree", "-r", "--name-only", "cmf/global").split()
    assert sum(1 for f in files if "/pack/" in f) == 2  # both branches' packs, the base's records in each


def test_a_later_gc_on_a_branch_that_repacked_still_merges_with_plain_git(repo: Path, tmp_path: Path) -> None:
    """A merge sees every pack a branch folded since the base: a second gc's pack of about the
    size of a folded base pack would pair with it (git: R071), a rename/delete conflict when the
    other branch folded it too. gc keeps such records loose until their pack is big enough."""
    base: set[str] = set()
    for start in (0, 100):
        base |= set(recgen.write(repo, *range(start, start + 100)))
        cmfgit(repo, "gc")
    commit_all(repo, "base: two packs")
    added: dict[str, set[str]] = {}
    for branch, start in (("a", 1000), ("b", 2000)):
        git(repo, "checkout", "-q", "-b", branch, "main")
        added[branch] = set(recgen.write(repo, *range(start, start + 150)))
        assert "folded 2 small pack(s)" in cmfgit(repo, "gc").stdout
        commit_all(repo, f"{branch}: gc and repack")
        added[branch] |= set(recgen.write(repo, *range(start + 500, start + 600)))
        assert "left 100 record(s) loose until their pack grows" in cmfgit(repo, "gc").stdout
        commit_all(repo, f"{branch}: more runs, gc")
        moves = git(repo, "diff", "-M", "--name-status", "main", branch).split("\n")
        assert not [line for line in moves if line.startswith("R")], moves

    clone = plain_clone(repo, tmp_path)
    git(clone, "checkout", "-q", "-b", "a", "origin/a")
    plain_merge(clone, "a", "b")
    every_reader_sees_once(clone, base | added["a"] | added["b"])
