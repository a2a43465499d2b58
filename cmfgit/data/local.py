"""The data remote on a local or mounted directory (NFS, a USB disk, a share).

Objects are files at ``<root>/blake3/<2 hex>/<62 hex>``, read-only. An upload
is a copy to a ``.tmp-`` name in the object's directory, fsynced, then a
rename: a reader, or a push killed half-way, never leaves half an object
under its final name. Two sites uploading the same object at once both
rename identical bytes over the same name, so concurrent pushes are safe.

The temp file of an upload killed half-way stays behind; ``clean_temps``
removes those no process has written for a while (``STALE_TEMP``: a live
upload keeps writing its temp, on whichever host it runs), in the object
directories this push wrote, or everywhere (``cmfgit artifact gc --remote``).
"""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

from cmfgit.data import copying
from cmfgit.errors import MissingObjectError, RemoteError
from cmfgit.fsutil import TMP_PREFIX, unlink_quietly

STALE_TEMP = 300.0  # seconds without a write after which an upload's temp file is a killed one's


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
        return {k for k in keys if not os.path.exists(os.path.join(root, k))}

    def upload(self, local: str, key: str) -> None:
        self._check()
        target = os.path.join(self.root, key)
        self.written.add(os.path.dirname(target))
        try:
            copying.place_copy(local, target, mode=0o444, fsync=True)
        except PermissionError as exc:
            raise RemoteError(self.name, f"cannot write {target}: {exc.strerror}") from None
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise RemoteError(self.name, f"no space left on {self.root}") from None
            raise

    def download(self, key: str, target: str) -> tuple[str, str, int]:
        self._check()
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
        now = time.time()
        removed = 0
        for directory in sorted(dirs):
            try:
                entries = list(os.scandir(directory))
            except FileNotFoundError:
                continue
            for entry in entries:
                try:
                    stale = entry.name.startswith(TMP_PREFIX) and now - entry.stat().st_mtime >= older_than
                except FileNotFoundError:  # renamed by its upload meanwhile
                    continue
                if stale:
                    unlink_quietly(entry.path)
                    removed += 1
        return removed

    def close(self) -> None:
        pass
