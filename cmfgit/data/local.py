"""The data remote on a local or mounted directory (NFS, a USB disk, a share).

Objects are files at ``<root>/blake3/<2 hex>/<62 hex>``, read-only. An upload
is a copy to a ``.tmp-`` name in the object's directory, made durable, then a
rename: a reader, a push killed half-way, or a crash of the machine never
leaves half an object under its final name. Two sites uploading the same
object at once both rename identical bytes over the same name, so concurrent
pushes are safe.

Many objects are uploaded as one batch (:meth:`LocalBackend.upload_many`):
every temp is written first, then the filesystem is synced once (``syncfs``)
instead of once per object, then the temps are renamed and the filesystem is
synced again, so the objects' names are on the disk before the push says
they were pushed. A few objects (or a system without ``syncfs``) are fsynced
one by one, and their directories after the renames.

The temp file of an upload killed half-way stays behind; ``clean_temps``
removes those no process has written for a while (``STALE_TEMP``: a live
upload keeps writing its temp, on whichever host it runs), in the object
directories this push wrote, or everywhere (``cmfgit artifact gc --remote``).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path

from cmfgit.data import copying
from cmfgit.errors import MissingObjectError, RemoteError
from cmfgit.fsutil import fsync_path, remove_stale_temps, unlink_quietly

STALE_TEMP = 300.0  # seconds without a write after which an upload's temp file is a killed one's

LIST_ABOVE = 256  # more keys than this: list their directories once instead of a stat per key
FEW = 16  # at most this many objects in a batch: fsync each (syncfs would flush others' writes too)
SMALL = 1 << 20  # objects up to this size are read, hashed and written in one go on download
_BATCH = 64  # objects per task of a batch upload


def _object_of(key: str) -> str:
    """The object id a remote key names: ``blake3/ab/cd..`` or DVC's ``files/md5/ab/cd..``."""
    if key.startswith("files/md5/"):
        return "md5:" + key[10:12] + key[13:]
    return "blake3:" + key[7:9] + key[10:]


class LocalBackend:
    read_only = False
    layout = "blake3"
    dvc_copies = False

    def __init__(self, name: str, url: str, root: Path) -> None:
        self.name = name
        self.url = url
        self.root = root
        self._checked = False
        self.written: set[str] = set()  # object directories uploads went to

    def _check(self) -> None:
        if self._checked:
            return
        if not self.root.is_dir():
            why = "does not exist" if not self.root.exists() else "is not a directory"
            raise RemoteError(self.name, f"{self.root} {why} (create it, or mount it)")
        self._checked = True

    def missing(self, keys: list[str]) -> set[str]:
        self._check()
        root = os.fspath(self.root)
        if len(keys) <= LIST_ABOVE:
            return {k for k in keys if not os.path.exists(os.path.join(root, k))}
        by_dir: dict[str, list[str]] = {}
        for k in keys:
            directory, _, name = k.rpartition("/")
            by_dir.setdefault(directory, []).append(name)
        absent: set[str] = set()
        for directory, names in by_dir.items():
            try:
                present = set(os.listdir(os.path.join(root, directory)))
            except (FileNotFoundError, NotADirectoryError):
                present = set()
            absent.update(f"{directory}/{n}" for n in names if n not in present)
        return absent

    def _failed(self, exc: OSError, target: str) -> BaseException:
        if isinstance(exc, PermissionError):
            return RemoteError(self.name, f"cannot write {target}: {exc.strerror}")
        if exc.errno == errno.ENOSPC:
            return RemoteError(self.name, f"no space left on {self.root}")
        return exc

    def upload(self, local: str, key: str) -> None:
        errors = self.upload_many([(local, key)], 1, lambda _size: None)
        if errors:
            raise errors[0]

    def upload_many(
        self, items: list[tuple[str, str]], jobs: int, advance: Callable[[int], None]
    ) -> list[BaseException]:
        """Upload ``(local file, key)`` pairs as one batch: every object appears
        whole or not at all, and those uploaded are durable (data and name) when
        this returns. ``advance(size)`` is called as each object is written.
        Returns the errors (one per object that failed); the others are uploaded."""
        self._check()
        root = os.fspath(self.root)
        one_by_one = len(items) <= FEW
        errors: list[BaseException] = []
        directories = sorted({os.path.join(root, k.rpartition("/")[0]) for _, k in items})
        self.written.update(directories)  # where clean_temps looks after this push
        for directory in directories:  # once per shard, not once per object
            try:
                os.makedirs(directory, exist_ok=True)
            except OSError as exc:
                raise self._failed(exc, directory) from None

        def stage(batch: list[tuple[str, str]]) -> list[tuple[str, str] | BaseException]:
            out: list[tuple[str, str] | BaseException] = []
            for local, key in batch:
                target = os.path.join(root, key)
                try:
                    tmp, size = copying.copy_small_to_temp(local, target, 0o444, SMALL, fsync=one_by_one)
                except OSError as exc:
                    out.append(self._failed(exc, target))
                    continue
                out.append((tmp, target))
                advance(size)
            return out

        batches = [items[i : i + _BATCH] for i in range(0, len(items), _BATCH)]
        staged: list[tuple[str, str]] = []
        if len(batches) == 1 or jobs <= 1:
            results = [stage(b) for b in batches]
        else:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=min(jobs, len(batches))) as pool:
                results = list(pool.map(stage, batches))
        for result in results:
            for item in result:
                (errors.append if isinstance(item, BaseException) else staged.append)(item)  # type: ignore[arg-type]
        if not staged:
            return errors
        try:
            # The bytes are on the disk before any object has its name...
            if not one_by_one and not copying.syncfs(root):
                for tmp, _ in staged:
                    fsync_path(tmp)
                one_by_one = True
            for tmp, target in staged:
                os.replace(tmp, target)
            # ...and the names are, before the push says they were pushed.
            if one_by_one or not copying.syncfs(root):  # a failed syncfs: fsync says why
                for directory in sorted({os.path.dirname(t) for _, t in staged}):
                    fsync_path(directory)
        except OSError as exc:
            for tmp, _ in staged:
                unlink_quietly(tmp)
            raise self._failed(exc, root) from None
        return errors

    def read_small(self, key: str) -> bytes | None:
        """The bytes of a small object (at most ``SMALL``), read in one go (open, fstat,
        read, close); None for a bigger one (``download`` it). The caller hashes them."""
        self._check()
        source = os.path.join(self.root, key)
        try:
            fd = os.open(source, os.O_RDONLY)
        except FileNotFoundError:
            raise MissingObjectError(_object_of(key), f"data remote '{self.name}'") from None
        except PermissionError as exc:
            raise RemoteError(self.name, f"cannot read {source}: {exc.strerror}") from None
        try:
            size = os.fstat(fd).st_size
            if size > SMALL:
                return None
            data = os.read(fd, size + 1)  # one more byte: a file that grew meanwhile shows
            return data if len(data) == size else None
        finally:
            os.close(fd)

    def download(self, key: str, target: str) -> tuple[str, str, int]:
        data = self.read_small(key)  # read once, hash what was read, write what was hashed
        if data is not None:
            return copying.write_to_temp(data, target), copying.hash_bytes(data), len(data)
        source = os.path.join(self.root, key)
        try:
            # The kernel copies (a reflink on the same filesystem), then the copy itself
            # is hashed, on all cores: what is verified is what was written.
            tmp = copying.copy_to_temp(source, target, mode=0o444)
        except FileNotFoundError:
            if os.path.exists(source):
                raise
            raise MissingObjectError(_object_of(key), f"data remote '{self.name}'") from None
        except PermissionError as exc:
            raise RemoteError(self.name, f"cannot read {source}: {exc.strerror}") from None
        try:
            return tmp, copying.hash_file(tmp), os.path.getsize(tmp)
        except BaseException:
            unlink_quietly(tmp)
            raise

    def clean_temps(self, older_than: float = STALE_TEMP, everywhere: bool = False) -> int:
        """Remove temp files of killed uploads not written for ``older_than`` seconds:
        in the directories this back-end wrote to, or in every object directory."""
        dirs = set(self.written)
        if everywhere:
            for top in ("blake3", os.path.join("files", "md5")):
                try:
                    dirs.update(e.path for e in os.scandir(os.path.join(self.root, top)) if e.is_dir())
                except FileNotFoundError:
                    pass
        return sum(remove_stale_temps(Path(d), older_than) for d in sorted(dirs))

    def close(self) -> None:
        pass
