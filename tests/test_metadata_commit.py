"""The commit of the metadata: show, log --json, lineage --json and the CMF export give the git
commit that first brought each record into the branch, or say that it is pending."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import recgen
from conftest import cmfgit, git

from cmfgit import recordcommits
from cmfgit.repo import open_repo
from cmfgit.store import Store


def commit_all(repo: Path, message: str) -> str:
    git(repo, "add", "-A", ".cmf")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD").strip()


def by_id(repo: Path, *args: str) -> dict[str, Any]:
    return {o["id"]: o["metadata_commit"] for o in json.loads(cmfgit(repo, "log", "--json", *args).stdout)}


def test_commit_of_each_record_through_commits_gc_and_a_rebuilt_table(repo: Path) -> None:
    first = recgen.write(repo, 1, 2, 3, site="lab")
    pending = {"commit": None, "pending": True}
    assert by_id(repo) == dict.fromkeys(first, pending)
    shown = json.loads(cmfgit(repo, "show", first[0][:10], "--json").stdout)
    assert shown["metadata_commit"] == pending
    assert "metadata commit: pending" in cmfgit(repo, "show", first[0][:10]).stdout

    c1 = commit_all(repo, "three runs")
    second = recgen.write(repo, 4, 5, site="lab")
    expected = {**dict.fromkeys(first, {"commit": c1, "pending": False}), **dict.fromkeys(second, pending)}
    assert by_id(repo) == expected
    assert f"metadata commit: {c1}\n" in cmfgit(repo, "show", first[1][:10]).stdout

    c2 = commit_all(repo, "two more")
    expected.update(dict.fromkeys(second, {"commit": c2, "pending": False}))
    assert by_id(repo) == expected

    # gc moves the loose records into a pack; the commit that packs them is not their commit.
    assert "packed 5 record(s)" in cmfgit(repo, "gc").stdout
    store = Store(repo / ".cmf" / "objects")
    assert not list(store.iter_loose()) and store.pack_paths()
    c3 = commit_all(repo, "gc")
    assert c3 not in {c1, c2}
    assert by_id(repo) == expected
    # Learnt again from the root (the table is a cache; here the history holds the pack too).
    (open_repo(repo).worktree_state_dir / "commits.sqlite").unlink()
    assert by_id(repo) == expected

    # A record that arrives already packed (another clone's gc) gets the commit that brought its pack.
    other = recgen.write(repo, 6, 7, 8, site="edge")
    cmfgit(repo, "gc")
    assert not list(store.iter_loose())
    c4 = commit_all(repo, "packed elsewhere")
    expected.update(dict.fromkeys(other, {"commit": c4, "pending": False}))
    assert by_id(repo) == expected

    # --all-branches answers from HEAD's history; a loose record not committed yet is pending.
    (loose,) = recgen.write(repo, 9, site="lab")
    assert by_id(repo, "--all-branches")[loose] == pending
    (repo / ".cmf" / "objects" / loose[:2] / f"{loose[2:]}.yaml").unlink()

    # --ref reads another revision's history: nothing there is pending.
    at_c2 = by_id(repo, "--ref", c2)
    assert at_c2 == {rid: {"commit": expected[rid]["commit"], "pending": False} for rid in first + second}

    # A reset to an older commit (not a descendant of what was learnt): learnt again.
    git(repo, "reset", "-q", "--hard", c1)
    assert by_id(repo) == dict.fromkeys(first, {"commit": c1, "pending": False})


def test_a_merged_branch_keeps_the_commit_of_the_side_branch(repo: Path) -> None:
    (base,) = recgen.write(repo, 1)
    c1 = commit_all(repo, "base")
    git(repo, "checkout", "-q", "-b", "side")
    (side,) = recgen.write(repo, 2)
    c2 = commit_all(repo, "side run")
    git(repo, "checkout", "-q", "main")
    (main,) = recgen.write(repo, 3)
    c3 = commit_all(repo, "main run")
    assert by_id(repo) == {base: {"commit": c1, "pending": False}, main: {"commit": c3, "pending": False}}
    git(repo, "merge", "-q", "--no-edit", "side")
    assert by_id(repo)[side] == {"commit": c2, "pending": False}
    assert recordcommits.first_commits(open_repo(repo), [base, side, main, "f" * 64]) == {
        base: c1,
        side: c2,
        main: c3,
        "f" * 64: None,
    }


def test_lineage_json_and_the_cmf_export_give_the_commit(repo: Path) -> None:
    (repo / "in.csv").write_text("a\n1\n")
    cmfgit(repo, "log-run", "-P", "p", "-s", "train", "-i", "in.csv", "-o", "out.csv", "--", "cp", "in.csv", "out.csv")
    (rid,) = by_id(repo)

    def lineage_commit() -> Any:
        document = json.loads(cmfgit(repo, "lineage", "out.csv", "--json").stdout)
        (node,) = [n for n in document["nodes"] if n["kind"] == "execution"]
        assert node["id"] == rid
        return node["metadata_commit"]

    def exported_end_commit() -> str:
        document = json.loads(cmfgit(repo, "export", "--format", "cmf-json", "-P", "p").stdout)
        (execution,) = document["Pipeline"][0]["stages"][0]["executions"]
        value: str = execution["properties"]["Git_End_Commit"]
        return value

    assert lineage_commit() == {"commit": None, "pending": True}
    assert exported_end_commit() == ""
    c1 = commit_all(repo, "the run")
    assert lineage_commit() == {"commit": c1, "pending": False}
    assert exported_end_commit() == c1


def test_a_query_walks_only_the_commits_since_the_tip_it_learnt(repo: Path, tmp_path: Path) -> None:
    """No history walk per query (issue 14 item 6): git's own trace shows which `git log` runs."""
    recgen.write(repo, 1, 2, site="lab")
    c1 = commit_all(repo, "two runs")
    by_id(repo)  # learns c1's history, once
    trace = tmp_path / "trace.log"

    def walks() -> list[str]:
        if trace.exists():
            trace.unlink()
        cmfgit(repo, "log", "--json", env={"GIT_TRACE": str(trace)})
        return [line for line in trace.read_text().splitlines() if " log " in line and "--raw" in line]

    assert walks() == []  # the tip did not move: no walk at all
    recgen.write(repo, 3, site="lab")
    c2 = commit_all(repo, "one more")
    (walk,) = walks()  # one walk, of the new commit only
    assert f"{c1}..{c2}" in walk
    assert walks() == []
