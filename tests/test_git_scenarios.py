"""Records through real git operations: merge, revert, rebase, cherry-pick, stash, pull --rebase, clone."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import recgen
from conftest import cmfgit, git

import cmfgit as api
from cmfgit import pack, retractions
from cmfgit.gc import gc
from cmfgit.repo import find_repo
from cmfgit.store import Store


def ids(path: Path) -> set[str]:
    """The records a reader sees in the checkout: retracted ones (and retractions) left out."""
    return retractions.live_ids(Store(path / ".cmf" / "objects"))


def commit_records(path: Path, message: str, packed: bool = False) -> None:
    if packed:
        gc(find_repo(path))
    git(path, "add", "-A", ".cmf")
    git(path, "commit", "-qm", message)


def log_runs(path: Path, stage: str, count: int) -> set[str]:
    found = set()
    for i in range(count):
        with api.run(pipeline="p", stage=stage, params={"i": i}, repo=path, command=["train"]) as run:
            pass
        assert run.id is not None
        found.add(run.id)
    return found


def the_pack(path: Path) -> Path:
    (only,) = Store(path / ".cmf" / "objects").pack_paths()
    return only


def test_branches_that_log_records_merge_without_conflict_even_unconfigured(repo: Path, tmp_path: Path) -> None:
    git(repo, "checkout", "-qb", "feature")
    theirs = log_runs(repo, "train", 3)
    commit_records(repo, "feature runs")
    git(repo, "checkout", "-q", "main")
    ours = log_runs(repo, "eval", 3)
    commit_records(repo, "main runs")

    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    assert git(clone, "config", "--get", "merge.cmfgit.driver", check=False) == ""
    git(clone, "merge", "-q", "--no-edit", "origin/feature")  # plain git, no driver, no cmfgit
    git(repo, "merge", "-q", "--no-edit", "feature")
    for where in (repo, clone):
        assert ids(where) == ours | theirs
        assert git(where, "status", "--porcelain") == ""
    assert git(clone, "config", "--get", "merge.cmfgit.driver", check=False) == ""  # still untouched
    assert "6 record(s) ok" in cmfgit(repo, "fsck").stdout


def old_style_pack(path: Path, *numbers: int) -> set[str]:
    """Rewrite pack/site-a/2026-03.yaml in place with these records, as cmfgit did before packs
    were named by content (gc no longer writes such a pack; the driver still merges it)."""
    records = dict(recgen.encoded(n) for n in numbers)
    target = path / ".cmf/objects/pack/site-a/2026-03.yaml"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(pack.serialize(records))
    return set(records)


def test_conflict_inside_one_old_style_pack_merges_through_the_driver(repo: Path, tmp_path: Path) -> None:
    base = old_style_pack(repo, 0, 50)
    commit_records(repo, "base pack")
    git(repo, "checkout", "-qb", "feature")
    theirs = old_style_pack(repo, 0, 50, *range(1, 11)) - base
    commit_records(repo, "feature records")
    git(repo, "checkout", "-q", "main")
    ours = old_style_pack(repo, 0, 50, *range(11, 21)) - base
    commit_records(repo, "main records")

    rel = the_pack(repo).relative_to(repo).as_posix()
    for rev, name in (("main~1", "O"), ("main", "A"), ("feature", "B")):
        (tmp_path / name).write_bytes(git(repo, "show", f"{rev}:{rel}").encode())
    text_merge = subprocess.run(["git", "merge-file", "-p", "A", "O", "B"], cwd=tmp_path, capture_output=True)
    assert text_merge.returncode > 0  # git's own text merge would conflict here

    git(repo, "merge", "-q", "--no-edit", "feature")
    data = the_pack(repo).read_bytes()
    assert set(pack.parse(data)) == base | ours | theirs
    assert pack.serialize(pack.parse(data)) == data  # canonical
    assert git(repo, "status", "--porcelain") == ""
    assert "22 record(s) ok" in cmfgit(repo, "fsck").stdout


@pytest.mark.parametrize("packed", [False, True], ids=["loose", "pack"])
def test_revert_stays_reverted_after_a_later_merge(repo: Path, packed: bool) -> None:
    keep = set(recgen.write(repo, 0, 4))  # two: one record alone stays loose (gc), the pack must be in the base
    commit_records(repo, "base", packed)
    reverted = set(recgen.write(repo, 1, 2))
    commit_records(repo, "records to revert", packed)
    git(repo, "checkout", "-qb", "feature")  # the feature branch has them
    later = set(recgen.write(repo, 3))
    commit_records(repo, "feature record", packed)
    git(repo, "checkout", "-q", "main")
    git(repo, "revert", "--no-edit", "HEAD")
    assert ids(repo) == keep
    git(repo, "merge", "-q", "--no-edit", "feature")
    assert ids(repo) == keep | later  # not resurrected
    assert not ids(repo) & reverted


def diverged_packs(repo: Path, old_style: bool = False) -> tuple[set[str], set[str], set[str]]:
    """main and feature each pack records, both committed: gc writes a new pack on each side
    (plain git merges them); an older cmfgit rewrote one pack on both (the driver merges it)."""
    if old_style:
        base = old_style_pack(repo, 0, 50)
        commit_records(repo, "base pack")
        git(repo, "checkout", "-qb", "feature")
        theirs = old_style_pack(repo, 0, 50, *range(1, 8)) - base
        commit_records(repo, "feature records")
        git(repo, "checkout", "-q", "main")
        ours = old_style_pack(repo, 0, 50, *range(11, 18)) - base
        commit_records(repo, "main records")
        return base, ours, theirs
    base = set(recgen.write(repo, 0, 50))
    commit_records(repo, "base pack", packed=True)
    git(repo, "checkout", "-qb", "feature")
    theirs = set(recgen.write(repo, *range(1, 8)))
    commit_records(repo, "feature records", packed=True)
    git(repo, "checkout", "-q", "main")
    ours = set(recgen.write(repo, *range(11, 18)))
    commit_records(repo, "main records", packed=True)
    return base, ours, theirs


@pytest.mark.parametrize("old_style", [False, True], ids=["content-named", "old-style"])
def test_rebase_keeps_every_record(repo: Path, old_style: bool) -> None:
    base, ours, theirs = diverged_packs(repo, old_style)
    git(repo, "checkout", "-q", "feature")
    git(repo, "rebase", "-q", "main")
    assert ids(repo) == base | ours | theirs
    assert git(repo, "status", "--porcelain") == ""


@pytest.mark.parametrize("old_style", [False, True], ids=["content-named", "old-style"])
def test_cherry_pick_keeps_every_record(repo: Path, old_style: bool) -> None:
    base, ours, theirs = diverged_packs(repo, old_style)
    git(repo, "cherry-pick", "feature")
    assert ids(repo) == base | ours | theirs


def test_stash_pop_keeps_every_record(repo: Path) -> None:
    base = set(recgen.write(repo, 0, 50))
    commit_records(repo, "base pack", packed=True)
    stashed = set(recgen.write(repo, *range(1, 8)))
    gc(find_repo(repo))  # uncommitted: the pack changed in the working tree
    git(repo, "stash", "push", "-q", "--include-untracked")
    assert ids(repo) == base
    committed = set(recgen.write(repo, *range(11, 18)))
    commit_records(repo, "meanwhile", packed=True)
    git(repo, "stash", "pop", "-q")
    assert ids(repo) == base | stashed | committed


def test_pull_rebase_keeps_every_record(repo: Path, bare_repo: Path, tmp_path: Path) -> None:
    base = set(recgen.write(repo, 0, 50))
    commit_records(repo, "base pack", packed=True)
    git(repo, "remote", "add", "origin", str(bare_repo))
    git(repo, "push", "-q", "-u", "origin", "main")
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(bare_repo), str(other))
    cmfgit(other, "init")  # configure the clone: driver and hooks
    pushed = set(recgen.write(other, *range(1, 8)))
    commit_records(other, "other site", packed=True)
    git(other, "push", "-q")
    mine = set(recgen.write(repo, *range(11, 18)))
    commit_records(repo, "this site", packed=True)
    git(repo, "pull", "-q", "--rebase")
    assert ids(repo) == base | pushed | mine
    assert git(repo, "status", "--porcelain") == ""


def test_fresh_clone_is_detected_and_configured(repo: Path, tmp_path: Path) -> None:
    for i, first in enumerate((["log"], ["log-run", "-s", "x", "--", "true"])):
        clone = tmp_path / f"clone{i}"
        git(tmp_path, "clone", "-q", str(repo), str(clone))
        assert git(clone, "config", "--get", "merge.cmfgit.driver", check=False) == ""
        out = cmfgit(clone, *first)
        assert "not set up for cmfgit; configured merge driver" in out.stderr
        assert "cmfgit merge-driver %O %A %B %L %P" in git(clone, "config", "--get", "merge.cmfgit.driver")
        assert "cmfgit-hook" in (clone / ".git/hooks/pre-commit").read_text()
        again = cmfgit(clone, "log")
        assert "configured" not in again.stderr  # idempotent and quiet once set up


def test_a_mirror_of_the_central_repository_holds_no_untracked_secret(
    repo: Path, bare_repo: Path, tmp_path: Path
) -> None:
    """Issue 9, item 1: runs on a dirty tree, committed by the hooks, amended and
    pushed with their keep refs; a mirror clone (every ref, refs/cmf/* included)
    holds the code and none of the untracked secrets, captured or not."""
    git(repo, "remote", "add", "origin", bare_repo.as_uri())
    (repo / "train.py").write_text("print('train')\n")
    git(repo, "add", "train.py")
    git(repo, "commit", "-qm", "train")
    (repo / "train.py").write_text("print('train, edited')\n")  # a tracked change: in the snapshot
    (repo / "params.yaml").write_text("epochs: 3\napi_key: plain-secret-value-1\n")
    (repo / "notes-credentials.txt").write_text("vpn: plain-secret-value-2\n")
    (repo / "helper.py").write_text("def help_me():\n    return 'new code'\n")
    cmfgit(repo, "log-run", "-s", "default", "--params-file", "params.yaml", "--", "true")  # untracked: not taken
    git(repo, "config", "cmfgit.snapshot.untracked", "true")
    cmfgit(repo, "log-run", "-s", "captured", "--", "true")  # untracked: taken, but not the secrets
    git(repo, "add", "train.py")
    git(repo, "commit", "-qm", "edit")  # the hooks commit both records and keep both trees
    git(repo, "commit", "-q", "--amend", "-m", "edit, amended")
    cmfgit(repo, "push")

    mirror = tmp_path / "mirror.git"
    git(tmp_path, "clone", "-q", "--mirror", bare_repo.as_uri(), str(mirror))
    runs = {r["stage"]: r["git"] for r in json.loads(cmfgit(repo, "log", "--json").stdout)}
    for stage, files in (("default", {"train.py"}), ("captured", {"train.py", "helper.py"})):
        listed = set(git(mirror, "ls-tree", "--name-only", runs[stage]["tree"]).split())
        assert files <= listed and not listed & {"params.yaml", "notes-credentials.txt"}, (stage, listed)
    assert runs["default"]["untracked_skipped"] == 3
    assert runs["captured"]["untracked_skipped"] == 2
    blobs = subprocess.run(
        ["git", "cat-file", "--batch-all-objects", "--batch"], cwd=mirror, capture_output=True, check=True
    ).stdout
    assert b"train, edited" in blobs and b"new code" in blobs
    assert b"plain-secret-value" not in blobs


# -- deletions are data (issue 9, item 3; docs/merging.md "Deleted records stay deleted") --


def logged(path: Path, *args: str) -> set[str]:
    """The execution ids that `cmfgit log` shows: what a reader sees."""
    return {r["id"] for r in json.loads(cmfgit(path, "log", "--json", "-n", "100000", *args).stdout)}


@pytest.mark.parametrize("elsewhere", [False, True], ids=["exact", "old-never-saw-the-revert"])
@pytest.mark.parametrize(
    ("good_site", "bad"),
    [(None, 5), (None, 1), ("other", 1)],
    ids=["five", "one", "one-alone-in-its-pack"],
)
def test_revert_stays_reverted_after_merging_a_branch_that_ran_gc(
    repo: Path, monkeypatch: pytest.MonkeyPatch, good_site: str | None, bad: int, elsewhere: bool
) -> None:
    """The issue's repro: 3 good and N bad runs committed; `git branch old`; `git revert HEAD`;
    on old, `cmfgit gc` and commit; then `git merge old`. ``elsewhere``: old's gc happens where the
    revert's pending retraction is not (another clone), so only main has it."""
    if good_site:
        monkeypatch.setenv("CMFGIT_SITE", good_site)  # the good runs go to another pack
    good = log_runs(repo, "good", 3)
    commit_records(repo, "good runs")
    monkeypatch.delenv("CMFGIT_SITE", raising=False)
    bad_ids = log_runs(repo, "bad", bad)
    commit_records(repo, "bad runs")
    git(repo, "branch", "old")
    git(repo, "revert", "--no-edit", "HEAD")  # no pre-commit hook here: post-commit notes the deletion
    assert logged(repo) == good
    git(repo, "checkout", "-q", "old")
    assert logged(repo) == good  # the pending retraction is in the working tree: readers honour it
    if elsewhere:
        git(repo, "stash", "push", "-q", "--include-untracked")
        assert logged(repo) == good | bad_ids
    cmfgit(repo, "gc")
    git(repo, "add", "-A", ".cmf")
    git(repo, "commit", "-qm", "gc")
    git(repo, "checkout", "-q", "main")
    if elsewhere:
        git(repo, "stash", "pop", "-q")
    merged = subprocess.run(["git", "merge", "--no-edit", "old"], cwd=repo, capture_output=True, text=True)
    assert merged.returncode == 0, merged.stdout + merged.stderr  # no spurious rename/delete conflict
    assert "CONFLICT" not in merged.stdout
    assert logged(repo) == good  # not resurrected
    git(repo, "add", "-A", ".cmf")
    if git(repo, "status", "--porcelain"):
        git(repo, "commit", "-qm", "the retraction")
    assert git(repo, "status", "--porcelain") == ""
    assert logged(repo) == good
    git(repo, "checkout", "-q", "old")
    git(repo, "merge", "-q", "--no-edit", "main")  # and the other way round
    assert logged(repo) == good
    assert "record(s) ok" in cmfgit(repo, "fsck").stdout


def test_revert_of_packed_records_is_retracted_and_the_retraction_committed_with_the_next_commit(repo: Path) -> None:
    good = log_runs(repo, "good", 3)
    commit_records(repo, "good runs", packed=True)
    bad_ids = log_runs(repo, "bad", 4)
    commit_records(repo, "bad runs", packed=True)  # the pack changes: the revert modifies it
    git(repo, "branch", "old")
    git(repo, "revert", "--no-edit", "HEAD")
    assert logged(repo) == good
    pending = git(repo, "status", "--porcelain", "--untracked-files=all", "--", ".cmf").splitlines()
    assert len(pending) == 1 and pending[0].startswith("?? .cmf/objects/")  # one retraction, pending
    retraction = (repo / pending[0][3:]).read_text()
    assert "schema: cmfgit/retraction/1" in retraction
    assert all(rid in retraction for rid in bad_ids) and not any(rid in retraction for rid in good)
    (repo / "code.py").write_text("x = 1\n")
    git(repo, "add", "code.py")
    git(repo, "commit", "-qm", "code")  # pre-commit stages the pending retraction
    assert git(repo, "status", "--porcelain") == ""
    git(repo, "merge", "-q", "--no-edit", "old")
    assert logged(repo) == good
    assert logged(repo, "--ref", "old") == good | bad_ids  # old itself never withdrew them


def test_commit_that_deletes_records_writes_a_retraction_but_gc_does_not(repo: Path) -> None:
    keep = log_runs(repo, "keep", 2)
    gone = log_runs(repo, "gone", 2)
    commit_records(repo, "runs")
    git(repo, "branch", "old")
    cmfgit(repo, "gc")
    git(repo, "add", "-A", ".cmf")
    git(repo, "commit", "-qm", "gc")  # records moved, none removed: no retraction
    assert "retraction" not in git(repo, "grep", "-c", "cmfgit/retraction/1", "HEAD", "--", ".cmf", check=False)
    assert logged(repo) == keep | gone
    git(repo, "checkout", "-q", "old")
    for rid in gone:
        git(repo, "rm", "-q", f".cmf/objects/{rid[:2]}/{rid[2:]}.yaml")
    git(repo, "commit", "-qm", "drop two runs")  # pre-commit writes and stages the retraction
    assert git(repo, "status", "--porcelain") == ""
    shown = git(repo, "show", "--stat", "--format=", "HEAD")
    assert "3 files changed" in shown  # two deletions and the retraction
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--no-edit", "old")
    assert logged(repo) == keep


def test_no_verify_and_cherry_pick_of_a_removal_write_the_retraction_after_the_commit(repo: Path) -> None:
    keep = log_runs(repo, "keep", 2)
    gone = log_runs(repo, "gone", 2)
    commit_records(repo, "runs")
    git(repo, "branch", "side")  # loose records, as on main
    git(repo, "branch", "packed")
    for rid in gone:
        git(repo, "rm", "-q", f".cmf/objects/{rid[:2]}/{rid[2:]}.yaml")
    git(repo, "commit", "-q", "--no-verify", "-m", "drop, no pre-commit")  # post-commit still runs
    pending = git(repo, "status", "--porcelain", "--untracked-files=all").split()
    assert pending[0] == "??" and retractions.ids_in((repo / pending[1]).read_bytes()) == sorted(gone)
    assert logged(repo) == keep
    (repo / pending[1]).unlink()  # lost: the cherry-pick below must write its own

    git(repo, "checkout", "-q", "side")
    assert logged(repo) == keep | gone
    git(repo, "cherry-pick", "main")  # git cherry-pick runs post-commit only
    pending = git(repo, "status", "--porcelain", "--untracked-files=all").split()
    assert pending[0] == "??" and retractions.ids_in((repo / pending[1]).read_bytes()) == sorted(gone)
    assert logged(repo) == keep
    git(repo, "add", "-A", ".cmf")
    git(repo, "commit", "-qm", "the retraction")

    git(repo, "checkout", "-q", "packed")
    cmfgit(repo, "gc")
    git(repo, "add", "-A", ".cmf")
    git(repo, "commit", "-qm", "gc")
    git(repo, "merge", "-q", "--no-edit", "side")
    assert logged(repo) == keep


def test_revert_no_commit_then_commit_writes_the_retraction(repo: Path) -> None:
    keep = log_runs(repo, "keep", 2)
    commit_records(repo, "keep")
    gone = log_runs(repo, "gone", 2)
    commit_records(repo, "gone")
    git(repo, "revert", "-n", "HEAD")  # REVERT_HEAD: pre-commit does nothing for the commit below
    git(repo, "commit", "-qm", "revert, by hand")
    pending = git(repo, "status", "--porcelain", "--untracked-files=all").split()
    assert pending[0] == "??" and retractions.ids_in((repo / pending[1]).read_bytes()) == sorted(gone)
    assert logged(repo) == keep
