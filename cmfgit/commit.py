"""Committing metadata without touching the user's own staged work.

``git commit --only -- <paths>`` builds the commit from HEAD plus exactly
those paths, and leaves everything else in the index as it was. cmfgit's own
commits skip the user's hooks (``--no-verify``): the records were validated
when written, and a linter or a commit-msg policy has nothing to say about
them.

cmfgit's commits hold the gc lock too: gc may move a record from its loose
file into a pack at any moment, and a commit of the loose file's path would
then find nothing there (git: "pathspec ... did not match"). Under the lock
the files stay where they are; a record gc already moved is committed in
its pack (with every pending change under ``.cmf/objects``, since the pack
holds them too).
"""

from __future__ import annotations

import os

from cmfgit import gitutil
from cmfgit.errors import CmfgitError, GitError
from cmfgit.fsutil import FileLock
from cmfgit.repo import CMF_DIR, OBJECTS_DIR, Repo


def pending_paths(repo: Repo) -> list[str]:
    """Paths under .cmf/ that differ from HEAD: new, changed or deleted."""
    out = gitutil.git(
        ["--no-optional-locks", "status", "--porcelain=v1", "-z", "--untracked-files=all", "--", CMF_DIR],
        repo.root,
    )
    paths: list[str] = []
    items = out.split(b"\0")
    i = 0
    while i < len(items):
        item = items[i]
        i += 1
        if len(item) < 4:
            continue
        status, path = item[:2], item[3:].decode("utf-8", "surrogateescape")
        if status[0:1] in (b"R", b"C"):
            i += 1  # the next item is the rename source
        paths.append(path)
    return paths


def commit_lock(repo: Repo) -> FileLock:
    """Serialises cmfgit's own commits in a clone (git's index.lock would fail them)."""
    return FileLock(repo.state_dir / "locks" / "commit.lock", timeout=120, what="commit lock")


def commit_metadata(repo: Repo, message: str, paths: list[str] | None = None) -> str | None:
    """Commit pending metadata (or just ``paths``); returns the commit id or None."""
    from cmfgit.gc import gc_lock

    with commit_lock(repo), gc_lock(repo):
        if paths is None:
            paths = pending_paths(repo)
        elif any(_moved(repo, p) for p in paths):
            pending = {p for p in pending_paths(repo) if p.startswith(OBJECTS_DIR + "/")}
            # What another commit already took with its pack is no longer pending.
            paths = sorted(pending | {p for p in paths if not _moved(repo, p)})
        if not paths:
            return None
        listing = b"".join(p.encode("utf-8", "surrogateescape") + b"\0" for p in paths)
        if (repo.git_dir / "MERGE_HEAD").exists():
            raise CmfgitError("a merge is in progress: the record stays pending until you commit the merge")
        gitutil.git(["add", "-A", "--pathspec-from-file=-", "--pathspec-file-nul"], repo.root, input=listing)
        from cmfgit.hooks import prepare_own_commit

        prepare_own_commit(repo, paths)  # spares the post-commit hook a Python start
        try:
            gitutil.git(
                [
                    "commit",
                    "--only",
                    "--no-verify",
                    "--quiet",
                    "-m",
                    message,
                    "--pathspec-from-file=-",
                    "--pathspec-file-nul",
                ],
                repo.root,
                input=listing,
            )
        except GitError as exc:
            if _committed(repo, paths):
                return None  # another cmfgit commit took them already (in a pack gc wrote)
            raise CmfgitError(f"could not commit the metadata: {exc.stderr.strip().splitlines()[-1:]}") from None
        return gitutil.git_text(["rev-parse", "HEAD"], repo.root)


def _moved(repo: Repo, path: str) -> bool:
    """A record path that is gone from the working tree: gc packed it (cmfgit deletes
    a loose record only when its pack holds it). Whether another commit took the loose
    file first does not matter: committing its path alone would commit the deletion
    without the pack, a removal of the record."""
    return path.startswith(OBJECTS_DIR + "/") and not os.path.lexists(repo.root / path)


def _committed(repo: Repo, paths: list[str]) -> bool:
    """``paths`` (staged just now) are in HEAD as they are: nothing to commit."""
    try:
        gitutil.git(["diff-index", "--cached", "--quiet", "HEAD", "--", *paths], repo.root)
    except GitError:
        return False  # they differ (or there is no HEAD): the commit failed for another reason
    return True
