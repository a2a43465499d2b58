"""Property: a deletion is respected whatever mix of loose files and packs the two sides hold.

Real git repositories, real hooks: a branch reverts the commit that added some
records (``git revert``: no pre-commit hook, the post-commit hook writes the
retraction), the other branch, in a worktree of its own (a clone that never saw
the revert), logs more records and packs or not. Merging either way brings no
conflict, and the reverted records never come back, for the files (a store
listing) and for the readers (``cmfgit log``).

One conflict is git's own and expected: reverting a commit that *created* a
pack while the other side changed that pack is a modify/delete conflict (the
driver is not called for it). There the merge is finished as ``cmfgit pull``
finishes it (keep the pack that exists, docs/merging.md), and the property must
still hold.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import recgen
from conftest import cmfgit, git, make_repo
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from cmfgit import retractions
from cmfgit.gc import gc
from cmfgit.repo import find_repo
from cmfgit.store import Store

pytestmark = pytest.mark.slow


def live(path: Path) -> set[str]:
    return retractions.live_ids(Store(path / ".cmf" / "objects"))


def logged(path: Path) -> set[str]:
    return {r["id"] for r in json.loads(cmfgit(path, "log", "--json", "-n", "100000").stdout)}


def commit(path: Path, message: str, packed: bool) -> None:
    if packed:
        gc(find_repo(path))
    git(path, "add", "-A", ".cmf")
    if git(path, "diff", "--cached", "--name-only"):
        git(path, "commit", "-qm", message)


def merge(path: Path, other: str) -> None:
    done = subprocess.run(["git", "merge", "--no-edit", other], cwd=path, capture_output=True, text=True)
    conflicts = [line for line in done.stdout.splitlines() if line.startswith("CONFLICT")]
    if (
        done.returncode
        and conflicts
        and all(line.startswith("CONFLICT (modify/delete): .cmf/objects/pack/") for line in conflicts)
    ):
        # git's own conflict (module docstring): a revert deleted a pack that the other side
        # changed (the reverted commit created it, a gc there moved records into it, and so on).
        retractions.keep_surviving_files(find_repo(path))
        assert git(path, "ls-files", "-u") == ""
        git(path, "commit", "-q", "--no-edit")
        return
    assert done.returncode == 0 and not conflicts, done.stdout + done.stderr


_CASE = dict(base=2, reverted=1, base_packed=True, reverted_packed=True, commit_retraction=False, ours_gc=False)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
# The single record: alone in a pack of its own on their side (rename/delete, before the fix).
@example(**_CASE, theirs_new=0, theirs_gc=True, other_site=True)
# The reverted commit packed the base records (the lone reverted one stays loose); their gc grows that pack.
@example(**{**_CASE, "base_packed": False}, theirs_new=1, theirs_gc=True, other_site=True)
# The revert deletes the pack that their gc grows (git's modify/delete, finished as cmfgit pull does).
@example(
    **{**_CASE, "reverted": 2, "base_packed": False, "commit_retraction": True},
    theirs_new=2,
    theirs_gc=True,
    other_site=False,
)
# A new record alone in its group stays loose while gc would pack another site's records: the
# deleted loose files and the new one pair as a rename (found by CI); gc now waits.
@example(**{**_CASE, "reverted": 2, "reverted_packed": False}, theirs_new=1, theirs_gc=True, other_site=True)
# The same in the reverted commit itself; keeping packed records' loose copies instead lost them.
@example(**{**_CASE, "base_packed": False}, theirs_new=0, theirs_gc=True, other_site=True)
@given(
    base=st.integers(2, 4),
    reverted=st.integers(1, 4),
    base_packed=st.booleans(),
    reverted_packed=st.booleans(),
    commit_retraction=st.booleans(),
    ours_gc=st.booleans(),
    theirs_new=st.integers(0, 3),
    theirs_gc=st.booleans(),
    other_site=st.booleans(),
)
def test_a_revert_survives_any_merge(
    tmp_path_factory: pytest.TempPathFactory,
    base: int,
    reverted: int,
    base_packed: bool,
    reverted_packed: bool,
    commit_retraction: bool,
    ours_gc: bool,
    theirs_new: int,
    theirs_gc: bool,
    other_site: bool,
) -> None:
    tmp = tmp_path_factory.mktemp("revert")
    repo = make_repo(tmp / "repo")
    keep = set(recgen.write(repo, *range(base)))
    commit(repo, "base", base_packed)
    site = "site-b" if other_site else "site-a"  # the reverted records alone in a pack of their own, or not
    gone = set(recgen.write(repo, *range(100, 100 + reverted), site=site))
    commit(repo, "records to revert", reverted_packed)
    git(repo, "branch", "old")
    theirs = tmp / "theirs"
    git(repo, "worktree", "add", "-q", str(theirs), "old")

    git(repo, "revert", "--no-edit", "HEAD")
    assert live(repo) == keep
    if commit_retraction:
        commit(repo, "the retraction", ours_gc)
    elif ours_gc:
        gc(find_repo(repo))  # packed, uncommitted: the working tree is what readers read

    added = set(recgen.write(theirs, *range(200, 200 + theirs_new)))
    commit(theirs, "their records", theirs_gc)
    assert live(theirs) == keep | gone | added

    if not commit_retraction and ours_gc:
        commit(repo, "gc and the retraction", False)
        commit_retraction = True
    merge(repo, "old")
    assert live(repo) == keep | added
    assert logged(repo) == keep | added
    if commit_retraction:
        merge(theirs, "main")  # the other way round: the retraction arrives with the revert
        assert live(theirs) == keep | added
        assert logged(theirs) == keep | added
