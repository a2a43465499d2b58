"""Property: a deletion is respected whatever mix of loose files and packs the two sides hold.

Real git repositories, real hooks: a branch reverts the commit that added some
records (``git revert``: no pre-commit hook, the post-commit hook writes the
retraction), the other branch, in a worktree of its own (a clone that never saw
the revert), logs more records and packs or not. Merging either way brings no
conflict, and the reverted records never come back, for the files (a store
listing) and for the readers (``cmfgit log``).

Out of scope, on purpose: reverting the commit that *created* a pack while the
other side added to that pack is a modify/delete conflict in git (the driver is
not called for it), see docs/merging.md; the base therefore holds its pack
whenever the reverted commit packs.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import recgen
from conftest import cmfgit, git, make_repo
from hypothesis import HealthCheck, given, settings
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
    assert done.returncode == 0 and "CONFLICT" not in done.stdout, done.stdout + done.stderr


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
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
    commit(repo, "base", base_packed or reverted_packed)  # (see the module docstring)
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
