"""The content-addressed cache of one clone.

Objects live at ``<cache>/blake3/<2 hex>/<62 hex>``, named by the blake3 of
their bytes: a file's bytes, or a directory's manifest (format.md §5). A
directory is its manifest object plus one object per file, so the files two
versions of a dataset share are stored once.

The cache is ``<git common dir>/cmf/cache`` (shared by worktrees), unless
this clone's git config ``cmfgit.cache`` names another directory (a scratch
disk shared by several clones, say; relative paths are from the repository
root). Nothing under it is committed; it is safe to delete, at the price of
fetching again.

Every object entering the cache is hashed: a working-tree file through the
stat cache (a file it knows is not read again) and then copied (a reflink
where the filesystem has one); if the file changed while it was copied, the
copy is hashed and refused unless it still matches. Downloads are hashed as
they are written. Objects are read-only files: nothing edits them in place.
"""

from __future__ import annotations

import os
from pathlib import Path

from cmfgit import gitutil
from cmfgit.data import copying
from cmfgit.errors import CmfgitError, PathError
from cmfgit.fsutil import TMP_PREFIX, unlink_quietly
from cmfgit.hashing import PREFIX, Digest, Hasher
from cmfgit.repo import Repo

TYPE_CHECKING = False  # log-run imports this module to cache outputs: keep its imports lean
if TYPE_CHECKING:
    from cmfgit.data.manifest import Entry

ALGO = "blake3"


def cache_dir(repo: Repo, git_config: dict[str, str] | None = None) -> Path:
    """Where this clone's cache is: git config ``cmfgit.cache``, else ``.git/cmf/cache``
    (``git_config``: the clone's cmfgit.* settings when the caller has read them already)."""
    if git_config is not None:
        setting = git_config.get("cmfgit.cache")
    else:
        setting = gitutil.config_get(repo.root, "cmfgit.cache")
    if setting:
        path = Path(os.path.expanduser(setting))
        return path if path.is_absolute() else repo.root / path
    return repo.state_dir / "cache"


def hex_of(object_id: str) -> str:
    """The hex of ``blake3:<64 hex>``; a CmfgitError for anything else (an md5 is not cached)."""
    if not object_id.startswith(PREFIX) or len(object_id) != len(PREFIX) + 64:
        raise CmfgitError(f"{object_id}: only blake3 objects are cached")
    return object_id[len(PREFIX) :]


class Added:
    """What putting one path into the cache did (a plain class: log-run imports this)."""

    def __init__(self, digest: Digest, objects: int, bytes: int, skipped: int = 0) -> None:
        self.digest = digest
        self.objects = objects  # objects newly stored
        self.bytes = bytes  # their bytes
        self.skipped = skipped  # files not stored because only a reflink was allowed


class Cache:
    def __init__(self, root: Path, hasher: Hasher, reflink_only: bool = False) -> None:
        self.root = root
        self.objects = root / ALGO
        self.hasher = hasher
        self.reflink_only = reflink_only
        self.skipped = 0  # files left out: no reflink, and only a reflink was allowed

    @classmethod
    def of(cls, repo: Repo, hasher: Hasher | None = None) -> Cache:
        return cls(cache_dir(repo), hasher or Hasher(repo.state_dir / "hashcache.sqlite"))

    def close(self) -> None:
        self.hasher.close()

    def __enter__(self) -> Cache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- objects -----------------------------------------------------------------------

    def path(self, hexhash: str) -> str:
        return os.path.join(self.objects, hexhash[:2], hexhash[2:])

    def has(self, hexhash: str) -> bool:
        return os.path.exists(self.path(hexhash))

    def missing(self, hexes: list[str]) -> set[str]:
        """Those of ``hexes`` that are not cached: a stat each when they are few, else
        one listing per shard directory (10,000 objects of a dataset: 256 listings)."""
        if len(hexes) <= 256:
            return {h for h in hexes if not self.has(h)}
        by_shard: dict[str, list[str]] = {}
        for h in hexes:
            by_shard.setdefault(h[:2], []).append(h)
        absent: set[str] = set()
        for shard, group in by_shard.items():
            try:
                present = set(os.listdir(os.path.join(self.objects, shard)))
            except (FileNotFoundError, NotADirectoryError):
                present = set()
            absent.update(h for h in group if h[2:] not in present)
        return absent

    def size(self, hexhash: str) -> int:
        return os.stat(self.path(hexhash)).st_size

    def read(self, hexhash: str) -> bytes:
        with open(self.path(hexhash), "rb") as fh:
            return fh.read()

    def manifest(self, hexhash: str) -> list[Entry] | None:
        """The entries of a cached directory manifest; None if it is not cached."""
        from cmfgit.data import manifest

        try:
            data = self.read(hexhash)
        except FileNotFoundError:
            return None
        return manifest.parse(data, f"cached manifest blake3:{hexhash[:12]}")

    def manifest_hexes(self, hexhash: str) -> set[str]:
        """The file objects a cached manifest lists (the last 64 characters of each
        line: the object was verified by its hash when it entered the cache)."""
        try:
            data = self.read(hexhash)
        except FileNotFoundError:
            return set()
        return {line[-64:].decode("ascii") for line in data.split(b"\n") if line}

    def blake3_of_md5(self, md5hex: str) -> str | None:
        """The object a DVC md5 was fetched as (``<cache>/md5/<2>/<30>`` holds its blake3 hex)."""
        try:
            with open(os.path.join(self.root, "md5", md5hex[:2], md5hex[2:]), encoding="ascii") as fh:
                hexhash = fh.read().strip()
        except (FileNotFoundError, UnicodeDecodeError):
            return None
        return hexhash if len(hexhash) == 64 and self.has(hexhash) else None

    def remember_md5(self, md5hex: str, hexhash: str) -> None:
        from cmfgit.fsutil import atomic_write

        atomic_write(os.path.join(self.root, "md5", md5hex[:2], md5hex[2:]), hexhash.encode() + b"\n", fsync=False)

    def has_tree(self, hexhash: str) -> bool:
        """The manifest and every file of a directory are cached."""
        entries = self.manifest(hexhash)
        return entries is not None and all(self.has(e.hex) for e in entries)

    def iter_objects(self) -> list[str]:
        """Every object hex in the cache (temp files of killed writers are skipped)."""
        found: list[str] = []
        try:
            shards = os.listdir(self.objects)
        except FileNotFoundError:
            return found
        for shard in shards:
            if len(shard) != 2:
                continue
            try:
                names = os.listdir(self.objects / shard)
            except NotADirectoryError:
                continue
            found.extend(shard + n for n in names if len(n) == 62 and not n.startswith(TMP_PREFIX))
        return found

    def remove(self, hexhash: str) -> int:
        """Drop an object; returns the bytes freed."""
        path = self.path(hexhash)
        try:
            size = os.stat(path).st_size
            os.unlink(path)
        except FileNotFoundError:
            return 0
        return size

    # -- entering the cache ------------------------------------------------------------------

    def accept_temp(self, tmp: str, hexhash: str, got: str) -> bool:
        """Rename a verified temp file (written beside ``self.path(hexhash)``) into place."""
        if got != hexhash:
            unlink_quietly(tmp)
            return False
        os.replace(tmp, self.path(hexhash))
        return True

    def add_bytes(self, data: bytes, hexhash: str) -> bool:
        """Store bytes (a manifest) whose hash the caller computed; checked again here."""
        if self.has(hexhash):
            return False
        target = self.path(hexhash)
        chunks = [data]
        tmp, got, _ = copying.write_stream_to_temp(lambda _n: chunks.pop() if chunks else b"", target, fsync=False)
        if not self.accept_temp(tmp, hexhash, got):
            raise CmfgitError(f"manifest bytes do not hash to blake3:{hexhash}")
        return True

    def add_file(self, full: str, hexhash: str, st: os.stat_result, shown: str) -> bool:
        """Store the file ``full`` whose bytes hashed to ``hexhash`` when it had stat ``st``.

        True if stored, False if the object was already there (or, with
        ``reflink_only``, if the filesystem cannot reflink it).
        """
        if self.has(hexhash):
            return False
        target = self.path(hexhash)
        try:
            tmp = copying.copy_to_temp(full, target, mode=0o444, reflink_only=self.reflink_only)
        except copying.NoReflink:
            self.skipped += 1
            return False
        except OSError as exc:
            raise PathError(shown, exc.strerror or str(exc)) from None
        try:
            now = os.stat(full)
            same = (now.st_size, now.st_mtime_ns, now.st_ino) == (st.st_size, st.st_mtime_ns, st.st_ino)
            if not same or os.stat(tmp).st_size != st.st_size:
                # The file changed while it was hashed or copied: trust only the copy's own hash.
                got = copying.hash_file(tmp)
            else:
                got = hexhash
        except BaseException:
            unlink_quietly(tmp)
            raise
        if not self.accept_temp(tmp, hexhash, got):
            raise PathError(shown, "changed while it was being copied into the cache; try again")
        return True

    def add_path(self, path: str | os.PathLike[str], shown: str | None = None) -> Added:
        """Hash a file or directory and store it: a file as one object, a
        directory as one object per file plus its manifest (stored last, so a
        cached manifest means its files are cached too)."""
        full = os.path.abspath(os.fspath(path))
        label = shown or os.fspath(path)
        if os.path.isdir(full):
            digest, files = self.hasher.hash_tree(full, label)
            objects = stored = 0
            skipped_before = self.skipped
            lines: list[str] = []
            for f in files:
                if self.add_file(f.full, f.hex, f.st, os.path.join(label, f.rel)):
                    objects += 1
                    stored += f.st.st_size
                lines.append(f"{f.rel}\t{'100755' if f.st.st_mode & 0o111 else '100644'}\t{f.st.st_size}\t{f.hex}\n")
            data = "".join(lines).encode("utf-8")
            if self.skipped > skipped_before:  # no manifest without all of its files
                return Added(digest, objects, stored, self.skipped - skipped_before)
            if self.add_bytes(data, hex_of(digest.hash)):
                objects += 1
                stored += len(data)
            return Added(digest, objects, stored)
        try:
            st = os.stat(full)  # before hashing: a change during the hash shows as a new stat
        except OSError:
            st = None
        digest = self.hasher.hash_path(full, label)  # says why a path is missing or unreadable
        if st is None:
            st = os.stat(full)
        added = self.add_file(full, hex_of(digest.hash), st, label)
        return Added(digest, int(added), st.st_size if added else 0)
