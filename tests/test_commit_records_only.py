"""Committing records alone with git (issue 9, item 7), as the README and the guide say.

Git decides that a commit is empty before it runs the pre-commit hook, so
``git commit -m`` (or ``-am``) with nothing but untracked records pending stops
with "nothing added to commit", although the hook stages them. cmfgit does not
stage records when it writes them: an untracked record survives ``git reset
--hard``, ``git stash`` and ``git checkout -f``. What works, and is documented:
``git add .cmf`` first, or a commit that has code changes too.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from conftest import cmfgit, git


def records_in(repo: Path, rev: str = "HEAD") -> list[str]:
    return git(repo, "diff-tree", "-r", "--no-commit-id", "--name-only", "--root", rev, "--", ".cmf/objects").split()


def commit(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "commit", *args], cwd=repo, capture_output=True, text=True)


def test_records_alone_need_git_add_and_the_hook_says_so(repo: Path) -> None:
    cmfgit(repo, "log-run", "-s", "train", "--", "true")
    (record,) = [p.relative_to(repo).as_posix() for p in (repo / ".cmf/objects").rglob("*.yaml")]
    for args in (["-m", "train"], ["-am", "train"]):
        git(repo, "reset", "-q")  # as before the first try: the record untracked
        done = commit(repo, *args)
        assert done.returncode == 1 and "nothing added to commit" in done.stdout
        assert "cmfgit: only records are pending" in done.stderr and "git add .cmf" in done.stderr, done.stderr

    git(repo, "add", ".cmf")  # the README's line: git add .cmf && git commit -m "train"
    done = commit(repo, "-m", "train")
    assert done.returncode == 0, done.stderr
    assert records_in(repo) == [record]
    assert git(repo, "status", "--porcelain") == ""


def test_a_commit_with_code_carries_pending_records_plain_or_all(repo: Path) -> None:
    for args in (["-m", "code"], ["-am", "code"]):
        cmfgit(repo, "log-run", "-s", "train", "-p", f"args={args[0]}", "--", "true")
        (repo / "README.md").write_text(f"changed for {args[0]}\n")
        if args[0] == "-m":
            git(repo, "add", "README.md")
        done = commit(repo, *args)
        assert done.returncode == 0, done.stderr
        assert "only records are pending" not in done.stderr
        changed = git(repo, "diff-tree", "-r", "--no-commit-id", "--name-only", "HEAD").split()
        assert "README.md" in changed and len(records_in(repo)) == 1
        assert git(repo, "status", "--porcelain") == ""


def test_a_pending_record_survives_reset_hard_and_stash(repo: Path) -> None:
    """Why records are not staged when written: staged, these would delete or hide them."""
    cmfgit(repo, "log-run", "-s", "train", "--", "true")
    (record,) = (repo / ".cmf/objects").rglob("*.yaml")
    data = record.read_bytes()
    (repo / "README.md").write_text("experiment\n")
    git(repo, "reset", "-q", "--hard")
    assert record.read_bytes() == data
    (repo / "README.md").write_text("experiment\n")
    git(repo, "stash", "-q")
    assert record.read_bytes() == data
    git(repo, "stash", "pop", "-q")
