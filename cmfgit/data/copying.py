"""Copying bytes the cheapest safe way, and writing files atomically.

A copy is a reflink where the filesystem has one (``FICLONE``: btrfs, XFS,
bcachefs, ZFS 2.2), else ``copy_file_range`` (the kernel copies, and may
share extents itself), else a read/write loop. Never a hardlink: the copy
must not change when the original is edited in place.

Every file this module places appears whole or not at all: it is written to
a ``.tmp-`` name in the target's directory and renamed over the target.
"""

from __future__ import annotations

import errno
import fcntl
import os
from collections.abc import Callable

from blake3 import blake3

from cmfgit.fsutil import TMP_PREFIX, unlink_quietly

FICLONE = 0x40049409  # _IOW(0x94, 9, int) from linux/fs.h
_CHUNK = 4 << 20
_NO_REFLINK = {errno.EOPNOTSUPP, errno.ENOTTY, errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EPERM, errno.EBADF}
_NO_RANGE = {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EBADF, errno.EPERM}


def temp_path(target: str) -> str:
    """A fresh temp name beside ``target`` (same directory, so rename is atomic)."""
    directory, name = os.path.split(target)
    return os.path.join(directory, f"{TMP_PREFIX}{os.getpid()}-{os.urandom(4).hex()}-{name[:40]}")


class NoReflink(Exception):
    """The filesystem cannot reflink, and only a reflink was asked for."""


def _copy_fd(src: int, dst: int, size: int, reflink_only: bool = False) -> str:
    """Copy ``size`` bytes; returns how: 'reflink', 'range' or 'copy'."""
    try:
        fcntl.ioctl(dst, FICLONE, src)
        return "reflink"
    except OSError as exc:
        if exc.errno not in _NO_REFLINK:
            raise
        if reflink_only:
            raise NoReflink() from None
    copied = 0
    try:
        while copied < size:
            n = os.copy_file_range(src, dst, size - copied)
            if n == 0:
                break
            copied += n
        if copied >= size:
            return "range"
    except OSError as exc:
        if exc.errno not in _NO_RANGE or copied:
            raise
    os.lseek(src, copied, os.SEEK_SET)
    os.lseek(dst, copied, os.SEEK_SET)
    while True:
        data = os.read(src, _CHUNK)
        if not data:
            return "copy"
        view = memoryview(data)
        while view:
            view = view[os.write(dst, view) :]


def copy_to_temp(src: str, target: str, mode: int = 0o644, fsync: bool = False, reflink_only: bool = False) -> str:
    """Copy ``src`` to a temp file beside ``target``; returns the temp's path.

    The caller renames it into place (or removes it). ``mode`` is applied
    before the rename, so the target never has other permissions.
    """
    tmp = temp_path(target)
    sfd = os.open(src, os.O_RDONLY)
    try:
        dfd = _open_temp(tmp, target)
        try:
            _copy_fd(sfd, dfd, os.fstat(sfd).st_size, reflink_only)
            os.fchmod(dfd, mode)
            if fsync:
                os.fsync(dfd)
        except BaseException:
            os.close(dfd)
            unlink_quietly(tmp)
            raise
        os.close(dfd)
    finally:
        os.close(sfd)
    return tmp


def place_copy(src: str, target: str, mode: int = 0o644, fsync: bool = False) -> None:
    """Put a copy of ``src`` at ``target`` atomically (temp, then rename)."""
    tmp = copy_to_temp(src, target, mode, fsync)
    try:
        os.replace(tmp, target)
    except BaseException:
        unlink_quietly(tmp)
        raise


def write_stream_to_temp(
    read: Callable[[int], bytes], target: str, mode: int = 0o444, fsync: bool = False
) -> tuple[str, str, int]:
    """Write what ``read`` yields to a temp beside ``target``, hashing as it goes.

    Returns ``(temp path, blake3 hex, size)``; the caller checks the hash
    and renames (or removes) the temp.
    """
    tmp = temp_path(target)
    fd = _open_temp(tmp, target)
    hasher = blake3(max_threads=blake3.AUTO)
    size = 0
    try:
        while True:
            data = read(_CHUNK)
            if not data:
                break
            hasher.update(data)
            size += len(data)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        os.fchmod(fd, mode)
        if fsync:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        unlink_quietly(tmp)
        raise
    os.close(fd)
    return tmp, hasher.hexdigest(), size


def hash_file(path: str) -> str:
    """blake3 hex of a file's bytes (no stat cache: for files cmfgit owns)."""
    hasher = blake3(max_threads=blake3.AUTO)
    if os.path.getsize(path) >= 1 << 20:
        hasher.update_mmap(path)
    else:
        with open(path, "rb") as fh:
            hasher.update(fh.read())
    return hasher.hexdigest()


def _open_temp(tmp: str, target: str) -> int:
    """Create the temp file ``tmp`` beside ``target`` (and ``target``'s directory if it is new)."""
    try:
        return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
        return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
