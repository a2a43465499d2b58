"""The central repository's post-receive hook (``cmfgit hook central-update``): lean, and coalescing.

Every push runs the hook once its refs are updated, and ``git push`` waits for it.
Many sites pushing at once used to run one full union each, one after another on
the lock (Python's start-up, dulwich, the union: ~0.15 s of CPU apiece). Now each
hook first marks ``<git dir>/cmf/locks/global.pending`` (a push landed), then waits
for the lock, sleeping. The hook that holds it removes the mark *before* it reads
the refs, so its union takes in every push that marked before: a hook that gets the
lock and finds no mark was taken in by an update that ran after its push, and is
done without a union of its own (the count it prints comes from ``global.records``,
written under the lock by that update). A burst of N pushes thus costs a few unions,
not N, and the guarantee stays: when a site's push returns, ``cmf/global`` holds its
records.

Only ``os`` and the lock are imported before that decision; the union (dulwich,
``globalview``) is imported by the hook that runs it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from cmfgit.errors import CmfgitError
from cmfgit.fsutil import FileLock

LOCK = "global.lock"
PENDING = "global.pending"  # exists: a push landed that no union has read yet
RECORDS = "global.records"  # the record count of cmf/global after the last update (under the lock)
LOCK_WAIT = 600.0  # seconds: concurrent post-receive hooks queue behind each other

# What the hook prints once cmf/global holds the push (read back by the pusher, siterefs.py).
SAYS = "cmfgit: cmf/global holds "


def locks_dir(git_dir: Path) -> Path:
    return git_dir / "cmf" / "locks"


def lock(git_dir: Path) -> FileLock:
    return FileLock(locks_dir(git_dir) / LOCK, timeout=LOCK_WAIT, what="cmf/global lock")


def taken(git_dir: Path) -> None:
    """Under the lock, before the refs are read: every push marked so far is in this update."""
    try:
        os.unlink(locks_dir(git_dir) / PENDING)
    except FileNotFoundError:
        pass


def remember(git_dir: Path, records: int) -> None:
    """Under the lock, after an update: the count a hook that was taken in prints."""
    from cmfgit.fsutil import atomic_write

    atomic_write(locks_dir(git_dir) / RECORDS, f"{records}\n".encode(), fsync=False)


def _mark(git_dir: Path) -> None:
    locks = locks_dir(git_dir)
    locks.mkdir(parents=True, exist_ok=True)
    os.close(os.open(locks / PENDING, os.O_WRONLY | os.O_CREAT, 0o644))


def _remembered(git_dir: Path) -> int | None:
    try:
        text = (locks_dir(git_dir) / RECORDS).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


def _git_dir() -> Path:
    """The repository the hook runs in: git sets ``GIT_DIR`` for hooks ('.' in a bare one)."""
    env = os.environ.get("GIT_DIR")
    if env and not (Path(env) / "commondir").exists():
        return Path(env).resolve()
    from cmfgit import globalview

    return globalview.git_dir_of(Path.cwd())


def main(argv: list[str]) -> int:
    """Mark, wait for the lock, and run the union unless an update after this push already did."""
    try:
        git_dir = _git_dir()
        _mark(git_dir)
        with lock(git_dir):
            if not (locks_dir(git_dir) / PENDING).exists():
                records = _remembered(git_dir)
                if records is not None:
                    print(f"{SAYS}{records} record(s) (taken in with a concurrent push)", file=sys.stderr)
                    return 0
            from cmfgit import globalview

            result = globalview.update_held(git_dir)
    except CmfgitError as exc:
        print(f"cmfgit: warning: cmf/global not updated: {exc}", file=sys.stderr)
        return 0  # post-receive cannot undo the push; never fail it
    for line in dict.fromkeys(result.skipped):
        print(f"cmfgit: warning: {line}", file=sys.stderr)
    # The pusher reads this line (git shows it as 'remote: ...'): it then need not fetch to check.
    added = f"+{result.added}" if result.new is not None else "already up to date"
    print(f"{SAYS}{result.records} record(s) ({added})", file=sys.stderr)
    return 0
