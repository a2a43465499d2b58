"""The first answer after a clone, and warm commands that never re-read unchanged packs (issue 11, item 4)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from qhelp import assert_index_matches_scan
from test_index import commit_all, runs, write_pack

from cmfgit import index
from cmfgit.repo import open_repo


def _refreshed(root: Path) -> index.Index:
    r = open_repo(root)
    ix = index.Index(r, index.index_path(r, index.CHECKOUT))
    assert ix.open_existing()
    ix.refresh_worktree()
    ix.close()
    return ix


def test_a_pack_whose_stat_changed_but_not_its_bytes_is_not_read_again(repo: Path) -> None:
    """A fresh clone's packs are "racy" when the first command indexes them (written
    less than 2 s before); a touched or copied pack has a new stat signature. Neither
    is parsed again when its bytes (its git blob id) are the same."""
    write_pack(repo, "2026-01.yaml", runs("a", 6))
    write_pack(repo, "2026-02.yaml", runs("b", 5, 100))
    commit_all(repo, "packs")
    assert_index_matches_scan(repo)  # built at once: both packs are racy
    packs = sorted((repo / ".cmf/objects/pack").rglob("*.yaml"))
    old = os.stat(packs[0]).st_mtime - 60
    for p in packs:
        os.utime(p, (old, old))  # no longer racy, and a new stat signature
    assert _refreshed(repo).stats["files"] == 0
    copy = packs[1].with_name("copy.tmp")
    shutil.copy2(packs[1], copy)  # another inode, the same bytes
    os.replace(copy, packs[1])
    os.utime(packs[1], (old, old))
    assert _refreshed(repo).stats["files"] == 0
    assert_index_matches_scan(repo)

    # A pack whose bytes did change is read again, whatever its stat says.
    write_pack(repo, "2026-02.yaml", runs("c", 2, 200))
    os.utime(packs[1], (old, old))
    assert _refreshed(repo).stats["files"] == 1
    assert len(assert_index_matches_scan(repo)["executions"]) == 13
