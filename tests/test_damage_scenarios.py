"""Damaged records through real git: readers show what verifies and warn about the rest,
pre-commit refuses conflict markers during a merge, and the central union skips damage.

Issue 9, items 4 and 5.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import recgen
from conftest import cmfgit, git
from sites import clone_site, records_at, seed_remote

from cmfgit import pack
from cmfgit.gc import gc
from cmfgit.repo import find_repo
from cmfgit.store import Store

WARNING = "record(s) could not be read and are left out; run 'cmfgit fsck'"


def commit_records(path: Path, message: str, packed: bool = False) -> None:
    if packed:  # one pack per site and period, rewritten in place: text merges of it leave markers
        recgen.old_style_gc(path)
    git(path, "add", "-A", ".cmf")
    git(path, "commit", "-qm", message)


def log_ids(path: Path, *args: str) -> tuple[list[str], str]:
    proc = cmfgit(path, "log", "--json", *args)
    return [o["id"] for o in json.loads(proc.stdout)], proc.stderr


def warned(stderr: str, count: int) -> bool:
    lines = [line for line in stderr.splitlines() if WARNING in line]
    return lines == [f"cmfgit: warning: {count} {WARNING}"]


def the_pack(path: Path) -> Path:
    (only,) = Store(path / ".cmf" / "objects").pack_paths()
    return only


def text_merged_pack(repo: Path, tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    """A clone (no merge driver: plain git) that merged two branches' packs as text: conflict markers."""
    made = {rid: data for rid, data in (recgen.encoded(n) for n in range(0, 60))}
    recgen.write(repo, *range(0, 40))
    commit_records(repo, "base pack", packed=True)
    git(repo, "checkout", "-qb", "feature")
    recgen.write(repo, *range(40, 50))
    commit_records(repo, "feature records", packed=True)
    git(repo, "checkout", "-q", "main")
    recgen.write(repo, *range(50, 60))
    commit_records(repo, "main records", packed=True)
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    merged = git(clone, "merge", "--no-edit", "origin/feature", check=False)
    assert "CONFLICT" in merged
    assert b"\n<<<<<<< " in the_pack(clone).read_bytes()
    return clone, made


def intact_in(data: bytes, made: dict[str, bytes]) -> set[str]:
    """Ids whose exact bytes follow their own header in a pack (what a reader can trust)."""
    return {rid for rid, body in made.items() if pack.SEPARATOR + rid.encode() + b"\n" + body in data}


# -- item 4: readers show every record that verifies, and warn about the rest ---------------


def test_a_pack_with_conflict_markers_still_shows_every_record_that_verifies(repo: Path, tmp_path: Path) -> None:
    clone, made = text_merged_pack(repo, tmp_path)
    data = the_pack(clone).read_bytes()
    good = intact_in(data, made)
    named = {rid for rid in made if pack.SEPARATOR + rid.encode() + b"\n" in data}
    damaged = named - good
    assert len(good) >= 40 and damaged  # most records survive the text merge; some are mangled

    listed, stderr = log_ids(clone)
    assert set(listed) == good and len(listed) == len(good)
    assert warned(stderr, len(damaged)), stderr
    assert "no executions recorded yet" not in cmfgit(clone, "log").stdout

    one, stderr = log_ids(clone, "-n", "1")
    assert len(one) == 1 and one[0] in good and warned(stderr, len(damaged))

    pipelines = cmfgit(clone, "pipelines", "--json")
    assert pipelines.returncode == 0 and warned(pipelines.stderr, len(damaged))
    assert [(p["pipeline"], p["executions"]) for p in json.loads(pipelines.stdout)] == [("p", len(good))]

    some = sorted(good)[0]
    shown = cmfgit(clone, "show", "--json", some)
    assert json.loads(shown.stdout)["id"] == some and warned(shown.stderr, len(damaged))
    for args in (("artifacts",), ("lineage", some[:12])):
        proc = cmfgit(clone, *args, check=False)
        assert warned(proc.stderr, len(damaged)), (args, proc.stderr)

    bad = cmfgit(clone, "show", sorted(damaged)[0], check=False)
    assert bad.returncode == 1 and "could not be read; run 'cmfgit fsck'" in bad.stderr
    assert cmfgit(clone, "fsck", check=False).returncode == 1


@pytest.mark.parametrize("packed", [False, True], ids=["loose", "pack"])
def test_records_edited_after_the_index_was_built_are_hidden_with_a_warning_until_restored(
    repo: Path, packed: bool
) -> None:
    every = recgen.write(repo, *range(30))
    commit_records(repo, "records", packed)
    listed, stderr = log_ids(repo)
    assert sorted(listed) == sorted(every) and stderr == ""  # the index is built

    store = Store(repo / ".cmf" / "objects")
    tampered = sorted(every)[:3]
    for rid in tampered:  # edited in place: the directory does not change, the file does
        path = store.loose_path(rid) if packed is False else the_pack(repo)
        with open(path, "r+b") as fh:
            content = fh.read()
            body = dict([recgen.encoded(n) for n in range(30)])[rid]
            at = content.index(body) + body.index(b"exit_code: 0")
            fh.seek(at)
            fh.write(b"exit_code: 7")
    listed, stderr = log_ids(repo)
    assert sorted(listed) == sorted(set(every) - set(tampered)) and warned(stderr, 3), stderr
    one, stderr = log_ids(repo, "-n", "1")
    assert len(one) == 1 and one[0] not in tampered and warned(stderr, 3)
    again = cmfgit(repo, "pipelines", "--json")
    assert json.loads(again.stdout)[0]["executions"] == 27 and warned(again.stderr, 3)
    fsck = cmfgit(repo, "fsck", check=False)
    assert fsck.returncode == 1

    git(repo, "checkout", "--", ".cmf")  # restored from git
    assert "30 record(s) ok" in cmfgit(repo, "fsck").stdout
    listed, stderr = log_ids(repo)
    assert sorted(listed) == sorted(every) and stderr == ""


def test_a_record_damaged_before_the_index_exists_is_shown_once_restored(repo: Path) -> None:
    every = recgen.write(repo, *range(10))
    commit_records(repo, "records")
    path = Store(repo / ".cmf" / "objects").loose_path(every[0])
    path.write_bytes(path.read_bytes().replace(b"exit_code: 0", b"exit_code: 5"))
    listed, stderr = log_ids(repo)  # the first read builds the index
    assert sorted(listed) == sorted(every[1:]) and warned(stderr, 1)
    listed, stderr = log_ids(repo)
    assert warned(stderr, 1)  # every time, not once
    git(repo, "checkout", "--", ".cmf")
    listed, stderr = log_ids(repo)
    assert sorted(listed) == sorted(every) and stderr == ""


# -- item 5: a merge that left conflict markers cannot be committed; the union skips damage ------


def test_a_merge_that_left_conflict_markers_in_a_pack_cannot_be_committed(repo: Path) -> None:
    recgen.write(repo, *range(0, 40))
    commit_records(repo, "base pack", packed=True)
    git(repo, "checkout", "-qb", "feature")
    recgen.write(repo, *range(40, 50))
    commit_records(repo, "feature records", packed=True)
    git(repo, "checkout", "-q", "main")
    recgen.write(repo, *range(50, 60))
    commit_records(repo, "main records", packed=True)
    head = git(repo, "rev-parse", "HEAD")

    git(repo, "config", "--remove-section", "merge.cmfgit")  # as on a clone nobody configured
    assert "CONFLICT" in git(repo, "merge", "--no-edit", "feature", check=False)
    rel = the_pack(repo).relative_to(repo).as_posix()
    git(repo, "add", "-A")
    proc = subprocess.run(["git", "commit", "--no-edit"], cwd=repo, capture_output=True, text=True)
    assert proc.returncode != 0
    assert "refusing to commit" in proc.stderr and f"{rel}: conflict markers" in proc.stderr
    assert git(repo, "rev-parse", "HEAD") == head and (repo / ".git" / "MERGE_HEAD").exists()

    git(repo, "merge", "--abort")
    cmfgit(repo, "init")  # configures the driver again
    git(repo, "merge", "-q", "--no-edit", "feature")
    assert "60 record(s) ok" in cmfgit(repo, "fsck").stdout


def damaged_branch(site: Path) -> tuple[set[str], str, str]:
    """A branch pushed with --no-verify whose pack has conflict markers and one edited record,
    plus a hand-edited loose record. Returns the ids that still verify and the two paths."""
    git(site, "checkout", "-q", "-b", "broken")
    packed = sorted(recgen.write(site, *range(100, 110), site="edge"))
    gc(find_repo(site))
    pack_path = the_pack(site)
    data = pack_path.read_bytes()
    second = data.index(b"\n" + pack.SEPARATOR, len(pack.HEADER)) + 1  # where the second record starts
    third = data.index(b"\n" + pack.SEPARATOR, second) + 1
    damaged = data[:second] + b"<<<<<<< HEAD\n" + data[second:third] + b"=======\n>>>>>>> other\n" + data[third:]
    pack_path.write_bytes(damaged.replace(b"exit_code: 0", b"exit_code: 9", 1))  # the first record edited
    (loose,) = recgen.write(site, 200, site="edge")
    loose_path = Store(site / ".cmf" / "objects").loose_path(loose)
    loose_path.write_bytes(loose_path.read_bytes().replace(b"exit_code: 0", b"exit_code: 3"))
    git(site, "add", "-A", ".cmf")
    git(site, "commit", "-qm", "a damaged merge", "--no-verify")
    git(site, "push", "-q", "--no-verify", "origin", "broken")
    return set(packed[1:]), pack_path.relative_to(site).as_posix(), loose_path.relative_to(site).as_posix()


def test_a_damaged_branch_is_skipped_and_reported_by_the_central_union(tmp_path: Path) -> None:
    bare, url = seed_remote(tmp_path)
    edge = clone_site(tmp_path, url, "edge")
    readable, rel_pack, rel_loose = damaged_branch(edge)
    git(edge, "checkout", "-q", "main")
    good = set(recgen.write(edge, 1, 2, site="edge"))
    commit_records(edge, "good records")
    git(edge, "push", "-q", "origin", "main")

    central = cmfgit(bare, "global", "update")
    assert f"+{len(good | readable)} record(s)" in central.stdout
    assert central.stderr.count(rel_pack) == 1 and central.stderr.count(rel_loose) == 1, central.stderr
    assert "skipped" in central.stderr
    assert set(records_at(bare, "cmf/global")) == good | readable  # what verifies, nothing damaged
    blob = git(bare, "cat-file", "blob", f"cmf/global:{rel_pack}").encode()
    assert set(pack.parse(blob)) == readable  # the view's pack is clean


def test_a_text_merged_branch_on_the_remote_does_not_block_another_sites_push(tmp_path: Path) -> None:
    bare, url = seed_remote(tmp_path)
    edge = clone_site(tmp_path, url, "edge")
    made = dict(recgen.encoded(n, site="edge") for n in range(40))
    for numbers, branch in ((range(0, 20), "main"), (range(20, 30), "feature"), (range(30, 40), "main")):
        git(edge, "checkout", "-q", *(["-B", branch] if branch == "feature" else [branch]))
        recgen.write(edge, *numbers, site="edge")
        commit_records(edge, f"records on {branch}", packed=True)
        git(edge, "push", "-q", "origin", branch)
        git(edge, "checkout", "-q", "main")
    # Someone merges feature in a clone where the driver is not configured, and pushes
    # the conflict markers with --no-verify (or from a web editor).
    plain = tmp_path / "plain"
    git(tmp_path, "clone", "-q", url, str(plain))
    assert "CONFLICT" in git(plain, "merge", "--no-edit", "origin/feature", check=False)
    git(plain, "add", "-A")
    git(plain, "commit", "-q", "--no-verify", "-m", "merge feature")
    git(plain, "push", "-q", "--no-verify", "origin", "HEAD:broken")
    rel = the_pack(plain).relative_to(plain).as_posix()

    lab = clone_site(tmp_path, url, "lab")
    mine = set(recgen.write(lab, 1, 2, 3, site="lab"))
    pushed = cmfgit(lab, "push")
    assert pushed.stderr.count(rel) == 1 and "skipped" in pushed.stderr, pushed.stderr
    assert f"{rel}: {rel}" not in pushed.stderr
    assert set(records_at(bare, "cmf/global")) == mine | set(made)  # everyone's records, nothing lost
    blob = git(bare, "cat-file", "blob", f"cmf/global:{rel}").encode()
    assert set(pack.parse(blob)) == set(made)  # one clean pack in the view
