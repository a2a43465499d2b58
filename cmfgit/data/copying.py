"""Copying bytes the cheapest safe way, and writing files atomically.

A copy is a reflink where the filesystem has one (``FICLONE``: btrfs, XFS,
bcachefs, ZFS 2.2), else ``copy_file_range`` (the kernel copies, and may
share extents itself), else a read/write loop. Never a hardlink: the copy
must not change when the original is edited in place.

Every file this module places appears whole or not at all: it is written to
a ``.tmp-`` name in the target's directory and renamed over the target.

A copy that must be durable (an upload to a directory remote) starts the
disk write-back of each 64 MiB as soon as it is copied (``sync_file_range``),
so the final ``fdatasync`` finds little left to write: copying and writing
to the disk overlap instead of following each other.
"""

from __future__ import annotations

import errno
import fcntl
import os
from collections.abc import Callable
from typing import Any

from blake3 import blake3

from cmfgit.fsutil import temp_path, umask_of_process, unlink_quietly

FICLONE = 0x40049409  # _IOW(0x94, 9, int) from linux/fs.h
_CHUNK = 4 << 20
_NO_REFLINK = {errno.EOPNOTSUPP, errno.ENOTTY, errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EPERM, errno.EBADF}
_NO_RANGE = {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EBADF, errno.EPERM}
_WRITEBACK_CHUNK = 64 << 20  # a durable copy starts the disk write of each such chunk at once
_no_reflink: set[int] = set()  # devices (of targets) where FICLONE failed: not asked again
_libc: list[object] = []  # [ctypes libc] once loaded, [None] where it cannot be


def _libc_function(name: str) -> Any:
    """A libc function through ctypes (Linux), or None where there is none."""
    if not _libc:
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.sync_file_range.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
            libc.syncfs.argtypes = [ctypes.c_int]
            _libc.append(libc)
        except (ImportError, OSError, AttributeError):
            _libc.append(None)
    return getattr(_libc[0], name, None)


def _sync_file_range() -> Callable[[int, int, int, int], int] | None:
    """libc's ``sync_file_range`` (Linux), or None."""
    found: Callable[[int, int, int, int], int] | None = _libc_function("sync_file_range")
    return found


def syncfs(path: str) -> bool:
    """Write every dirty page and inode of the filesystem holding the directory
    ``path`` to the disk, and wait (Linux ``syncfs``); False where it cannot."""
    call = _libc_function("syncfs")
    if call is None:
        return False
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        return bool(call(fd) == 0)
    finally:
        os.close(fd)


class NoReflink(Exception):
    """The filesystem cannot reflink, and only a reflink was asked for."""


def _copy_fd(src: int, dst: int, size: int, reflink_only: bool = False, writeback: bool = False) -> str:
    """Copy ``size`` bytes; returns how: 'reflink', 'range' or 'copy'. ``writeback``:
    start writing each chunk to the disk as soon as it is copied (the caller fsyncs)."""
    device = os.fstat(dst).st_dev if size else -1
    if device not in _no_reflink or reflink_only:
        try:
            fcntl.ioctl(dst, FICLONE, src)
            return "reflink"
        except OSError as exc:
            if exc.errno not in _NO_REFLINK:
                raise
            if exc.errno in (errno.EOPNOTSUPP, errno.ENOTTY):  # the filesystem cannot: do not ask again
                _no_reflink.add(device)
            if reflink_only:
                raise NoReflink() from None
    flush = _sync_file_range() if writeback and size > _WRITEBACK_CHUNK else None
    step = _WRITEBACK_CHUNK if flush is not None else size
    copied = 0
    try:
        while copied < size:
            n = os.copy_file_range(src, dst, min(step, size - copied))
            if n == 0:
                break
            if flush is not None:
                flush(dst, copied, n, 2)  # SYNC_FILE_RANGE_WRITE: start it, do not wait
                if copied >= 2 * step:  # and wait for an older chunk, so dirty pages stay bounded
                    flush(dst, copied - 2 * step, step, 7)  # WAIT_BEFORE | WRITE | WAIT_AFTER
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
    return copy_to_temp_sized(src, target, mode, fsync, reflink_only)[0]


def copy_to_temp_sized(
    src: str, target: str, mode: int = 0o644, fsync: bool = False, reflink_only: bool = False
) -> tuple[str, int]:
    """:func:`copy_to_temp`, also returning the size copied."""
    tmp = temp_path(target)
    sfd = os.open(src, os.O_RDONLY)
    try:
        size = os.fstat(sfd).st_size
        dfd = _open_temp(tmp, target)
        try:
            _copy_fd(sfd, dfd, size, reflink_only, writeback=fsync)
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
    return tmp, size


def copy_small_to_temp(src: str, target: str, mode: int, small: int, fsync: bool = False) -> tuple[str, int]:
    """:func:`copy_to_temp_sized`, for a file of at most ``small`` bytes in fewer system
    calls (open, read, create, write, close, close: no fstat, no reflink probe, no fchmod
    unless the umask needs it); a bigger file goes through :func:`copy_to_temp_sized`."""
    sfd = os.open(src, os.O_RDONLY)
    try:
        data = os.read(sfd, small + 1)
    finally:
        os.close(sfd)
    if len(data) > small:
        return copy_to_temp_sized(src, target, mode, fsync)
    tmp = temp_path(target)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if mode & umask_of_process():
            os.fchmod(fd, mode)
        if fsync:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        unlink_quietly(tmp)
        raise
    os.close(fd)
    return tmp, len(data)


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


def write_to_temp(data: bytes, target: str, mode: int = 0o444) -> str:
    """Write ``data`` to a temp file beside ``target`` (not fsynced); returns its path."""
    tmp = temp_path(target)
    fd = _open_temp(tmp, target)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fchmod(fd, mode)
    except BaseException:
        os.close(fd)
        unlink_quietly(tmp)
        raise
    os.close(fd)
    return tmp


def hash_bytes(data: bytes) -> str:
    """blake3 hex of bytes in memory."""
    return blake3(data).hexdigest()


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
