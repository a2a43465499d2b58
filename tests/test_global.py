"""The global branch cmf/global: tree-level union in bare repositories."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

from conftest import cmfgit, git
from sites import clone_site, push, record, records_at, seed_remote

from cmfgit import gc, pack
from cmfgit.repo import open_repo

GLOBAL = "cmf/global"


def _install_post_receive(bare: Path) -> None:
    hook = bare / "hooks" / "post-receive"
    hook.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m cmfgit global update --quiet\n')
    hook.chmod(hook.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def _trailer(bare: Path, key: str) -> list[str]:
    body = git(bare, "log", "-1", "--format=%B", GLOBAL)
    return [line.split(": ", 1)[1] for line in body.splitlines() if line.startswith(key + ": ")]


def test_post_receive_hook_keeps_global_in_step_with_plain_pushes(tmp_path: Path) -> None:
    bare, url = seed_remote(tmp_path)
    _install_post_receive(bare)
    lab = clone_site(tmp_path, url, "lab", branch="lab")
    edge = clone_site(tmp_path, url, "edge", branch="edge")
    from_lab = {record(lab, "wine", "train", params={"lr": lr}) for lr in (0.1, 0.2)}
    from_edge = {record(edge, "wine", "evaluate")}
    for site, branch in ((lab, "lab"), (edge, "edge")):
        git(site, "add", ".cmf")
        git(site, "commit", "-q", "-m", "runs")
        git(site, "push", "-q", "origin", branch)  # plain git: only the hook updates the view
    assert set(records_at(bare, GLOBAL)) == from_lab | from_edge
    assert _trailer(bare, "Cmfgit-Records") == ["3"]
    # The view's commits form a chain, one per update, and never carry code history.
    assert git(bare, "rev-list", "--count", GLOBAL).strip() == "2"
    assert git(bare, "ls-tree", "--name-only", GLOBAL).split() == [".cmf"]
    # cmfgit push next to the hook: the hook already did the work, nothing is lost or redone.
    more = record(lab, "wine", "train", params={"lr": 0.3})
    result = push(lab)
    assert result.global_update is not None and result.global_update.records == 4
    assert set(records_at(bare, GLOBAL)) == from_lab | from_edge | {more}
    # Running it by hand when nothing changed is a no-op.
    again = cmfgit(bare, "global", "update")
    assert "cmf/global is up to date: 4 record(s)" in again.stdout
    assert git(bare, "rev-list", "--count", GLOBAL).strip() == "3"


def _pack_branch(site: Path, branch: str, base: str, runs: int, old_style: bool = False) -> set[str]:
    """``old_style``: the pack is ``<period>.yaml``, as an older cmfgit rewrote it in place."""
    git(site, "checkout", "-q", "-b", branch, base)
    ids = {record(site, "wine", "train", params={"branch": branch, "i": i}) for i in range(runs)}
    result = gc.gc(open_repo(site))
    assert result.packed == runs and len(result.packs) == 1
    if old_style:
        (path,) = (site / ".cmf/objects/pack").rglob("*.yaml")
        path.rename(path.with_name(pack.period_of(path.name) + ".yaml"))
    git(site, "add", "-A", ".cmf")
    git(site, "commit", "-q", "-m", f"runs of {branch}, packed")
    git(site, "push", "-q", "origin", branch)
    return ids


def test_packs_of_two_branches_of_one_site_are_both_in_the_view(tmp_path: Path) -> None:
    bare, url = seed_remote(tmp_path)
    site = clone_site(tmp_path, url, "lab")
    one = _pack_branch(site, "one", "main", 3)
    two = _pack_branch(site, "two", "main", 2)
    packs = {b: git(bare, "ls-tree", "-r", "--name-only", b, ".cmf/objects/pack").split() for b in ("one", "two")}
    assert len(packs["one"]) == len(packs["two"]) == 1 and packs["one"] != packs["two"]  # named by content
    out = cmfgit(bare, "global", "update").stdout
    assert "cmf/global: +5 record(s), 5 in all" in out
    assert set(records_at(bare, GLOBAL)) == one | two
    view = git(bare, "ls-tree", "-r", "--name-only", GLOBAL, ".cmf/objects/pack").split()
    assert sorted(view) == sorted(packs["one"] + packs["two"])
    assert _trailer(bare, "Cmfgit-Records") == ["5"]


def test_diverged_old_style_packs_of_one_site_are_unioned(tmp_path: Path) -> None:
    bare, url = seed_remote(tmp_path)
    site = clone_site(tmp_path, url, "lab")
    one = _pack_branch(site, "one", "main", 3, old_style=True)
    two = _pack_branch(site, "two", "main", 2, old_style=True)
    packs = git(bare, "ls-tree", "-r", "--name-only", "one", ".cmf/objects/pack").split()
    assert packs == git(bare, "ls-tree", "-r", "--name-only", "two", ".cmf/objects/pack").split()
    assert len(packs) == 1  # the same path, with different records on each branch
    out = cmfgit(bare, "global", "update").stdout
    assert "cmf/global: +5 record(s), 5 in all" in out
    assert set(records_at(bare, GLOBAL)) == one | two
    blob = git(bare, "cat-file", "blob", f"{GLOBAL}:{packs[0]}").encode()
    assert set(pack.parse(blob, "global pack")) == one | two  # one pack, canonical, verified
    assert _trailer(bare, "Cmfgit-Records") == ["5"]


def test_global_view_is_append_only(tmp_path: Path) -> None:
    bare, url = seed_remote(tmp_path)
    _install_post_receive(bare)
    site = clone_site(tmp_path, url, "lab")
    rid = record(site, "wine", "train")
    push(site)
    git(site, "revert", "--no-edit", "HEAD")  # the branch drops the record again
    git(site, "push", "-q", "origin", "main")
    assert rid not in records_at(bare, "main")
    assert rid in records_at(bare, GLOBAL)


def test_a_damaged_copy_of_a_loose_record_never_wins(tmp_path: Path) -> None:
    bare, url = seed_remote(tmp_path)
    site = clone_site(tmp_path, url, "lab")
    rid = record(site, "wine", "train")
    path = f".cmf/objects/{rid[:2]}/{rid[2:]}.yaml"
    git(site, "add", ".cmf")
    git(site, "commit", "-q", "-m", "run")
    git(site, "push", "-q", "origin", "main")
    git(site, "checkout", "-q", "-b", "damaged")
    good = (site / path).read_bytes()
    (site / path).write_bytes(good.replace(b"stage: train", b"stage: trian"))
    git(site, "commit", "-q", "-am", "a hand edit")
    git(site, "push", "-q", "origin", "damaged")
    cmfgit(bare, "global", "update")
    assert records_at(bare, GLOBAL)[rid] == good
    # With no valid copy anywhere, the update skips the file and says so, naming it once;
    # it blocks nothing else (here there is nothing else, so no view is created).
    git(bare, "update-ref", "-d", f"refs/heads/{GLOBAL}")
    git(bare, "update-ref", "refs/heads/main", "damaged")
    (site / path).write_bytes(good.replace(b"stage: train", b"stage: tran"))
    git(site, "commit", "-q", "-am", "another hand edit")
    git(site, "push", "-q", "origin", "damaged:other")
    bad = cmfgit(bare, "global", "update")
    assert bad.stderr.count(path) == 1 and f"{path}: skipped: does not match its id" in bad.stderr
    assert "no branch has records yet" in bad.stdout
    assert git(bare, "rev-parse", "--verify", "--quiet", GLOBAL, check=False) == ""


def test_global_update_outside_a_repository(tmp_path: Path) -> None:
    proc = cmfgit(tmp_path, "global", "update", check=False)
    assert proc.returncode == 1 and "not a git repository" in proc.stderr


def test_a_site_gc_keeps_the_view_and_its_count(tmp_path: Path) -> None:
    bare, url = seed_remote(tmp_path)
    site = clone_site(tmp_path, url, "lab")
    ids = {record(site, "wine", "train", params={"i": i}) for i in range(3)}
    push(site)
    gc.gc(open_repo(site))  # the records move from loose files into a pack
    result = push(site)
    assert result.committed == 0 and result.pushed  # the pack and the deletions, committed
    assert result.global_update is not None and result.global_update.updated
    assert (result.global_update.added, result.global_update.records) == (0, 3)
    assert set(records_at(bare, GLOBAL)) == ids
    files = git(bare, "ls-tree", "-r", "--name-only", GLOBAL).split()
    assert len(files) == 1 and files[0].startswith(".cmf/objects/pack/lab/")  # each record once: in the pack
    assert _trailer(bare, "Cmfgit-Records") == ["3"]


def test_the_view_keeps_each_record_once_after_a_repack(tmp_path: Path) -> None:
    bare, url = seed_remote(tmp_path)
    site = clone_site(tmp_path, url, "lab")
    repo = open_repo(site)
    objects = site / ".cmf" / "objects"
    ids: set[str] = set()
    made: set[str] = set()  # every pack the site's gcs wrote
    for round_ in range(4):  # pushes of records packed by their own gc; gc rolls small packs up
        ids |= {record(site, "wine", "train", params={"round": round_, "i": i}) for i in range(3)}
        gc.gc(repo)
        made |= {p.relative_to(objects).as_posix() for p in (objects / "pack").rglob("*.yaml")}
        result = push(site)
        assert result.global_update is not None and result.global_update.records == len(ids)
    now = sorted(f".cmf/objects/{p.relative_to(objects).as_posix()}" for p in (objects / "pack").rglob("*.yaml"))
    assert len(made) > len(now)  # (some packs were folded into bigger ones)
    view = git(bare, "ls-tree", "-r", "--name-only", GLOBAL).split()
    assert view == now  # the repacks' inputs, and the loose files gc packed, are gone from the view
    assert set(records_at(bare, GLOBAL)) == ids
    assert _trailer(bare, "Cmfgit-Records") == [str(len(ids))]
    # The same records loose again (a branch that never ran gc): not stored twice.
    git(site, "checkout", "-q", "-b", "loose", "HEAD~4")
    more = {record(site, "wine", "eval", params={"j": 1})}
    for rid in sorted(ids):
        data = records_at(bare, GLOBAL)[rid]
        (objects / rid[:2]).mkdir(exist_ok=True)
        (objects / rid[:2] / f"{rid[2:]}.yaml").write_bytes(data)
    git(site, "add", "-A", ".cmf")
    git(site, "commit", "-q", "-m", "loose copies")
    git(site, "push", "-q", "origin", "loose")
    out = cmfgit(bare, "global", "update").stdout
    assert f"+1 record(s), {len(ids) + 1} in all" in out, out
    view = git(bare, "ls-tree", "-r", "--name-only", GLOBAL).split()
    assert len(view) == len(now) + 1 and set(records_at(bare, GLOBAL)) == ids | more


def test_global_update_with_no_records_creates_nothing(tmp_path: Path) -> None:
    bare, _url = seed_remote(tmp_path)
    assert "no branch has records yet" in cmfgit(bare, "global", "update").stdout
    assert git(bare, "rev-parse", "--verify", "--quiet", GLOBAL, check=False) == ""


def test_a_damaged_version_of_a_diverged_pack_is_skipped_not_fatal(tmp_path: Path) -> None:
    bare, url = seed_remote(tmp_path)
    site = clone_site(tmp_path, url, "lab")
    one = _pack_branch(site, "one", "main", 3, old_style=True)
    git(site, "checkout", "-q", "-b", "two", "main")
    two = {record(site, "wine", "train", params={"branch": "two", "i": i}) for i in range(3)}
    gc.gc(open_repo(site))
    (path,) = (site / ".cmf/objects/pack").rglob("*.yaml")
    path = path.rename(path.with_name(pack.period_of(path.name) + ".yaml"))  # as an older cmfgit named it
    data = path.read_bytes()
    second = data.index(b"\n" + pack.SEPARATOR, len(pack.HEADER)) + 1
    path.write_bytes(data[:second] + b"<<<<<<< HEAD\n=======\nnot a record\n>>>>>>> theirs\n" + data[second:])
    git(site, "add", "-A", ".cmf")
    git(site, "commit", "-q", "--no-verify", "-m", "a text merge gone wrong")
    git(site, "push", "-q", "--no-verify", "origin", "two")
    rel = path.relative_to(site).as_posix()

    out = cmfgit(bare, "global", "update")
    assert out.stderr.count(rel) == 1 and "kept the" in out.stderr, out.stderr
    assert f"{rel}: {rel}" not in out.stderr
    # The markers are resolved both ways, as the merge driver does: every record is recovered.
    assert set(records_at(bare, GLOBAL)) == one | two
    blob = git(bare, "cat-file", "blob", f"{GLOBAL}:{rel}").encode()
    assert set(pack.parse(blob, "global pack")) == one | two  # one clean pack


def test_a_damaged_pack_already_in_the_view_does_not_fail_later_updates(tmp_path: Path) -> None:
    bare, url = seed_remote(tmp_path)
    site = clone_site(tmp_path, url, "lab")
    ids = _pack_branch(site, "one", "main", 3, old_style=True)
    rel = git(bare, "ls-tree", "-r", "--name-only", "one", ".cmf/objects/pack").split()[0]
    good = git(bare, "cat-file", "blob", f"one:{rel}").encode()
    # A view that an older cmfgit wrote with the conflict markers in it, built with git plumbing.
    damaged = good.replace(pack.SEPARATOR, b"<<<<<<< HEAD\n" + pack.SEPARATOR, 1)
    blob = git(bare, "hash-object", "-w", "--stdin", input=damaged.decode()).strip()
    tree = blob
    for name in reversed(rel.split("/")):
        mode, kind = ("100644", "blob") if tree == blob else ("040000", "tree")
        tree = git(bare, "mktree", input=f"{mode} {kind} {tree}\t{name}\n").strip()
    commit = git(bare, "commit-tree", tree, "-m", "cmfgit global: +3 record(s)\n\nCmfgit-Records: 3").strip()
    git(bare, "update-ref", f"refs/heads/{GLOBAL}", commit)
    more = _pack_branch(site, "two", "main", 2, old_style=True)

    out = cmfgit(bare, "global", "update")
    assert "+2 record(s)" in out.stdout
    view = git(bare, "cat-file", "blob", f"{GLOBAL}:{rel}").encode()
    assert set(pack.parse(view, "global pack")) == ids | more  # clean again, nothing lost
