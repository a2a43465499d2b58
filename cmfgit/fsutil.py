"""Atomic writes and advisory file locks.

A reader never sees half a file: data goes to a temp file in the same
directory, is fsynced, then renamed over the target with ``os.replace``.
Temp names start with ``.tmp-`` so readers and git (via ``.cmf/.gitignore``)
skip the leftovers of a process killed mid-write.
"""

from __future__ import annotations

import errno
import fcntl
import itertools
import os
import time
from pathlib import Path
from types import TracebackType

from cmfgit.errors import CmfgitError

TMP_PREFIX = ".tmp-"


_pid = [os.getpid()]  # os.getpid() is a system call; a forked child learns its own
os.register_at_fork(after_in_child=lambda: _pid.__setitem__(0, os.getpid()))
_temp_ids = itertools.count(int.from_bytes(os.urandom(4), "big"))  # unique per process, no syscall each


def temp_path(target: str) -> str:
    """A fresh temp name beside ``target`` (same directory, so rename is atomic)."""
    directory, name = os.path.split(target)
    return os.path.join(directory, f"{TMP_PREFIX}{_pid[0]}-{next(_temp_ids) & 0xFFFFFFFF:08x}-{name[:40]}")


_umask: list[int] = []  # the process's umask, once known


def umask_of_process() -> int:
    """The umask, from ``/proc/self/status`` (reading it with ``os.umask`` means setting
    it, a race with other threads); 0o777 where it cannot be read, so callers fchmod."""
    if not _umask:
        mask = 0o777
        try:
            with open("/proc/self/status", "rb") as fh:
                for line in fh:
                    if line.startswith(b"Umask:"):
                        mask = int(line.split()[1], 8)
                        break
        except (OSError, ValueError, IndexError):
            pass
        _umask.append(mask)
    return _umask[0]


def atomic_write(path: str | os.PathLike[str], data: bytes, *, fsync: bool = True, mode: int | None = None) -> None:
    """Write ``data`` to ``path`` so that readers see all of it or nothing: a temp file
    beside it, written (and fsynced), then renamed over it. ``mode``: the file's exact
    permissions (``fchmod``-ed only when the umask would take bits away); without it,
    0o644 less the umask. Four system calls for a small file without fsync."""
    target = os.fspath(path)
    tmp = temp_path(target)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    create = 0o644 if mode is None else mode
    try:
        fd = os.open(tmp, flags, create)
    except FileNotFoundError:  # a new directory; most writes find theirs (saves 2 syscalls per record)
        directory = os.path.dirname(target)
        if not directory:
            raise
        os.makedirs(directory, exist_ok=True)
        fd = os.open(tmp, flags, create)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if mode is not None and mode & umask_of_process():
            os.fchmod(fd, mode)
        if fsync:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        unlink_quietly(tmp)
        raise
    os.close(fd)
    try:
        os.replace(tmp, target)
    except BaseException:
        unlink_quietly(tmp)
        raise


def write_once(path: Path, data: bytes) -> bool:
    """Write an immutable object unless it already exists. True if written."""
    if path.exists():
        return False
    atomic_write(path, data)
    return True


def fsync_path(path: str | os.PathLike[str]) -> None:
    """fsync a file or a directory by name (a directory: the names in it are durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def remove_stale_temps(directory: Path, older_than: float = 3600.0) -> int:
    """Delete ``.tmp-*`` files left by killed writers. Returns how many."""
    removed = 0
    cutoff = time.time() - older_than
    for root, _dirs, files in os.walk(directory):
        for name in files:
            if name.startswith(TMP_PREFIX):
                full = os.path.join(root, name)
                try:
                    if os.lstat(full).st_mtime < cutoff:
                        os.unlink(full)
                        removed += 1
                except OSError:
                    pass
    return removed


class FileLock:
    """An exclusive ``flock`` on ``path``; released when the process dies.

    flock locks vanish with their process, so a ``kill -9`` never leaves a
    stale lock behind (unlike git's ``index.lock``).
    """

    def __init__(self, path: Path, timeout: float = 60.0, what: str = "lock") -> None:
        self.path = path
        self.timeout = timeout
        self.what = what
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.timeout
        delay = 0.001
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._fd = fd
                return
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise CmfgitError(
                        f"timed out after {self.timeout:.0f}s waiting for the {self.what} "
                        f"({self.path}); is another cmfgit running?"
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.05)

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
