"""Code versions stay resolvable through a squash merge (issue 9, item 12).

``git merge --squash`` (what GitHub's "Squash and merge" does) makes one new
commit; the branch's commits, which the records name as ``git.commit``,
become unreachable once the branch is deleted.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import cmfgit, git

from cmfgit import canonical, treeread


def code_versions(repo: Path, rev: str) -> set[str]:
    found: set[str] = set()
    for _rid, data in treeread.iter_records(repo, rev):
        record = canonical.load(data)
        state = record.get("git") or {}
        found |= {state[k] for k in ("commit", "tree") if state.get(k)}
    return found


def missing(repo: Path, oids: set[str]) -> list[str]:
    return sorted(o for o in oids if subprocess.run(["git", "cat-file", "-e", o], cwd=repo).returncode != 0)


@pytest.mark.parametrize("verify", [True, False], ids=["hooks", "no-verify"])
def test_squash_merge_keeps_every_recorded_code_version(repo: Path, verify: bool) -> None:
    """pre-commit leaves the keep refs for the post-commit script; with --no-verify
    post-commit finds them itself."""
    git(repo, "checkout", "-q", "-b", "feat")
    for i in range(4):
        (repo / "train.py").write_text(f"print({i})\n")
        git(repo, "add", "train.py")
        git(repo, "commit", "-q", "-m", f"code {i}")
        cmfgit(repo, "log-run", "-s", "train", "-p", f"i={i}", "--", "true")  # on a clean commit of feat
        (repo / "train.py").write_text(f"print({i}, 'dirty')\n")
        cmfgit(repo, "log-run", "-s", "train", "-p", f"i={i}", "-p", "dirty=1", "--", "true")  # on a dirty tree
        git(repo, "commit", "-q", "-am", f"code {i} and its runs")  # the hook adds the records
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "--squash", "feat")
    git(repo, "commit", "-q", "-m", "squash feat", *([] if verify else ["--no-verify"]))
    git(repo, "branch", "-D", "feat")
    git(repo, "reflog", "expire", "--expire=now", "--all")  # else HEAD's reflog keeps feat's commits for 90 days
    git(repo, "gc", "-q", "--prune=now")

    versions = code_versions(repo, "HEAD")
    assert len(list(treeread.iter_records(repo, "HEAD"))) == 8
    assert len(versions) >= 12  # 4 commits of feat, 4 clean trees, 4 dirty trees
    assert missing(repo, versions) == []


def test_a_squash_made_on_the_server_is_kept_by_the_pull_that_brings_it(tmp_path: Path) -> None:
    """GitHub's "Squash and merge": no hook runs where the squash is made; the
    post-merge hook of the clone that pulls it keeps the branch's commits it has."""
    from conftest import make_repo

    bare = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    site = make_repo(tmp_path / "site")
    git(site, "remote", "add", "origin", str(bare))
    git(site, "push", "-q", "-u", "origin", "main")
    git(site, "checkout", "-q", "-b", "feat")
    for i in range(3):
        (site / "train.py").write_text(f"print({i})\n")
        git(site, "add", "train.py")
        git(site, "commit", "-q", "-m", f"code {i}")
        cmfgit(site, "log-run", "-s", "train", "-p", f"i={i}", "--", "true")
        git(site, "add", ".cmf")
        git(site, "commit", "-q", "-m", f"runs {i}")
    git(site, "push", "-q", "origin", "feat")

    server = tmp_path / "server"  # where the host squashes: no cmfgit hooks at all
    git(tmp_path, "clone", "-q", str(bare), str(server))
    git(server, "config", "core.hooksPath", "/dev/null")
    git(server, "merge", "-q", "--squash", "origin/feat")
    git(server, "commit", "-q", "-m", "feat (#1)")
    git(server, "push", "-q", "origin", "main", ":feat")  # and the host deletes the branch

    git(site, "checkout", "-q", "main")
    git(site, "pull", "-q", "--prune", "origin", "main")
    git(site, "branch", "-D", "feat")
    git(site, "fetch", "-q", "--prune", "origin")
    git(site, "reflog", "expire", "--expire=now", "--all")
    git(site, "gc", "-q", "--prune=now")

    versions = code_versions(site, "HEAD")
    assert len(list(treeread.iter_records(site, "HEAD"))) == 3 and len(versions) >= 3
    assert missing(site, versions) == []
