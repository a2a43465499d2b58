"""Content hashes of artifacts: blake3 of a file, or of a directory's manifest.

A directory is identified by the blake3 of its canonical manifest: one line
per regular file, sorted by the UTF-8 bytes of its relative path::

    <path>\\t<mode>\\t<size>\\t<blake3 hex>\\n

``mode`` is ``100755`` when any execute bit is set and ``100644`` otherwise
(git's two file modes; the umask must not change an artifact's identity).
Tabs, newlines and backslashes in paths are escaped as ``\\t``, ``\\n`` and
``\\\\``. Symbolic links are followed (a dataset of links to a data volume
hashes as its content); a link loop is an error. Empty directories do not
count, as in git.

Unchanged files are not hashed twice: ``hashcache.sqlite`` in the clone's
``.git/cmf/`` remembers (size, mtime, ctime, inode) -> hash.
"""

from __future__ import annotations

import mmap
import os
import stat
import sys
import time
from collections import namedtuple
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from blake3 import blake3

from cmfgit.errors import PathError

TYPE_CHECKING = False  # typing's constant without importing typing (~4 ms of log-run start-up)
if TYPE_CHECKING:
    import sqlite3  # imported on first use: log-run without artifacts never opens the cache
    from typing import Any

PREFIX = "blake3:"
_SMALL = 1 << 20  # below this, read() beats mmap
_CHUNK = 64 << 20  # progress granularity for big files
# A file whose mtime is this close to the moment it was hashed may be written
# again within the same timestamp tick; such entries are re-hashed next time
# (git calls this "racily clean").
RACY_NS = 2_000_000_000
PROGRESS_AFTER = 0.5  # seconds of hashing before a progress bar appears
_MEMO_MAX = 100_000  # cache rows kept in memory per process


# Records of fields: typing.NamedTuple for the type checker, collections.namedtuple
# at run time (importing typing, or dataclasses, costs hot commands milliseconds).
if TYPE_CHECKING:
    from typing import NamedTuple

    class _DigestFields(NamedTuple):
        hash: str  # "blake3:<hex>"
        size: int  # bytes; for a directory, the sum over its files
        kind: str  # "file" or "dir"
        files: int  # 1 for a file

else:
    _DigestFields = namedtuple("Digest", "hash size kind files")


class Digest(_DigestFields):
    __slots__ = ()


if TYPE_CHECKING:

    class TreeFile(NamedTuple):
        rel: str  # path inside the directory, as its manifest line has it (escaped)
        full: str  # the file's full path
        st: os.stat_result  # its stat when hashed
        hex: str  # blake3 hex of its bytes

else:
    TreeFile = namedtuple("TreeFile", "rel full st hex")


def file_mode(st: os.stat_result) -> str:
    return "100755" if st.st_mode & 0o111 else "100644"


def _escape(rel: str) -> str:
    return rel.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def manifest_line(rel: str, st: os.stat_result, hexhash: str) -> str:
    if "\\" in rel or "\t" in rel or "\n" in rel:
        rel = _escape(rel)
    return f"{rel}\t{'100755' if st.st_mode & 0o111 else '100644'}\t{st.st_size}\t{hexhash}\n"


class HashCache:
    """(path, size, mtime, ctime, inode) -> blake3, in SQLite (WAL mode).

    Safe for concurrent processes; any failure to read or write the cache
    only costs a re-hash, never a wrong answer or a crash.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._pending: list[tuple[str, int, int, int, int, str]] = []
        # Rows this process has read or written: a sweep that logs the same
        # inputs run after run checks them without a query (still by stat).
        self._memo: dict[str, tuple[Any, ...]] = {}

    def _connect(self) -> sqlite3.Connection | None:
        if self._db is None and self.path is not None:
            import sqlite3

            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                db = sqlite3.connect(self.path, timeout=5.0, isolation_level=None)
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
                db.execute(
                    "CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, size INTEGER,"
                    " mtime_ns INTEGER, ctime_ns INTEGER, ino INTEGER, hash TEXT)"
                )
                self._db = db
            except sqlite3.Error:
                self.path = None  # unusable: hash without a cache
        return self._db

    def lookup(self, full: str, st: os.stat_result) -> str | None:
        hexhash = self._valid(self._memo.get(full), st)
        if hexhash is not None:
            return hexhash
        db = self._connect()
        if db is None:
            return None
        import sqlite3

        try:
            row = db.execute("SELECT size, mtime_ns, ctime_ns, ino, hash FROM files WHERE path = ?", (full,)).fetchone()
        except sqlite3.Error:
            return None
        hexhash = self._valid(row, st)
        if hexhash is not None:
            self._memorize(full, row)
        return hexhash

    def _memorize(self, full: str, row: tuple[Any, ...]) -> None:
        if len(self._memo) >= _MEMO_MAX:
            self._memo.clear()
        self._memo[full] = row

    def lookup_tree(self, prefix: str) -> dict[str, tuple[Any, ...]]:
        """All rows under directory ``prefix`` by path, each ``(path, size,
        mtime_ns, ctime_ns, ino, hash)``: one query for 10,000 files."""
        db = self._connect()
        if db is None:
            return {}
        import sqlite3

        lo = prefix.rstrip("/") + "/"
        hi = lo[:-1] + chr(ord("/") + 1)
        try:
            rows = db.execute(
                "SELECT path, size, mtime_ns, ctime_ns, ino, hash FROM files WHERE path >= ? AND path < ?", (lo, hi)
            ).fetchall()
        except sqlite3.Error:
            return {}
        return {r[0]: r for r in rows}

    @staticmethod
    def _valid(row: tuple[Any, ...] | None, st: os.stat_result) -> str | None:
        if row is None:
            return None
        size, mtime_ns, ctime_ns, ino, hexhash = row
        if (size, mtime_ns, ctime_ns, ino) != (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino):
            return None
        return str(hexhash)

    def remember(self, full: str, st: os.stat_result, hexhash: str, started_ns: int) -> None:
        if self.path is None:
            return
        if max(st.st_mtime_ns, st.st_ctime_ns) >= started_ns - RACY_NS:
            return  # racily clean: do not trust it next time
        self._pending.append((full, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, hexhash))
        self._memorize(full, (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, hexhash))

    def flush(self) -> None:
        if not self._pending:
            return
        db = self._connect()
        pending, self._pending = self._pending, []
        if db is None:
            return
        import sqlite3

        try:
            db.execute("BEGIN IMMEDIATE")
            db.executemany("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?)", pending)
            db.execute("COMMIT")
        except sqlite3.Error:
            try:
                db.execute("ROLLBACK")
            except sqlite3.Error:
                pass

    def close(self) -> None:
        self.flush()
        if self._db is not None:
            self._db.close()
            self._db = None


class _Progress:
    """A rich progress bar that appears only when hashing is slow, on a TTY: bytes,
    and for a directory files too (``hashing data/ ━━━━╸ 1,204/5,000 files 1.2/4.0 GB``).
    ``CMFGIT_PROGRESS_AFTER`` sets how slow (seconds; default 0.5)."""

    def __init__(self, label: str, total: int, enabled: bool, files: int | None = None) -> None:
        self.label = label
        self.total = total
        self.files = files
        self.enabled = enabled and sys.stderr.isatty()
        self.after = PROGRESS_AFTER
        if self.enabled:
            try:
                self.after = float(os.environ.get("CMFGIT_PROGRESS_AFTER", PROGRESS_AFTER))
            except ValueError:
                pass
        self.started = time.monotonic()
        self.done = 0
        self.files_done = 0
        self._bar: Any = None
        self._task: Any = None

    def _counted(self) -> str:
        return "" if self.files is None else f"{self.files_done:,}/{self.files:,} files"

    def advance(self, amount: int, files: int = 0) -> None:
        self.done += amount
        self.files_done += files
        if not self.enabled:
            return
        if self._bar is None:
            if time.monotonic() - self.started < self.after:
                return
            from rich.console import Console
            from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

            self._bar = Progress(
                TextColumn("hashing {task.description}"),
                BarColumn(),
                TextColumn("{task.fields[counted]}"),
                DownloadColumn(),
                TransferSpeedColumn(),
                console=Console(stderr=True),  # where isatty() was asked, and off the command's stdout
                transient=True,
            )
            self._bar.start()
            self._task = self._bar.add_task(self.label, total=self.total, completed=self.done, counted=self._counted())
        else:
            self._bar.update(self._task, completed=self.done, counted=self._counted())

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


def hash_bytes(data: bytes) -> str:
    return blake3(data).hexdigest()


def _hash_open_file(full: str, size: int, progress: _Progress) -> str:
    with open(full, "rb") as fh:
        if size < _SMALL:
            data = fh.read()
            progress.advance(len(data))
            return blake3(data).hexdigest()
        hasher = blake3(max_threads=blake3.AUTO)
        if not progress.enabled:
            # One call: blake3 maps the file and splits it over all cores itself,
            # as fast as b3sum (DESIGN §10). Chunks are only for the progress bar.
            hasher.update_mmap(full)
            progress.advance(size)
            return hasher.hexdigest()
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            view = memoryview(mapped)
            try:
                for offset in range(0, len(view), _CHUNK):
                    chunk = view[offset : offset + _CHUNK]
                    hasher.update(chunk)
                    progress.advance(len(chunk))
                    chunk.release()
            finally:
                view.release()
        return hasher.hexdigest()


def _stat_target(full: str, shown: str) -> os.stat_result:
    try:
        return os.stat(full)
    except FileNotFoundError:
        if os.path.islink(full):
            raise PathError(shown, "is a broken symbolic link") from None
        raise PathError(shown, "does not exist") from None
    except OSError as exc:
        if exc.errno == 40:  # ELOOP
            raise PathError(shown, "is a symbolic link loop") from None
        raise PathError(shown, exc.strerror or str(exc)) from None


def _check_name(name: str, shown: str) -> None:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise PathError(shown, "has a file name that is not valid UTF-8") from None


def _walk(top: str, shown: str) -> Iterator[tuple[str, str, os.stat_result]]:
    """``(path inside top, full path, stat)`` of the regular files under
    ``top``, following links, refusing loops."""
    top_st = os.stat(top)
    stack: list[tuple[str, str, frozenset[tuple[int, int]]]] = [(top, "", frozenset({(top_st.st_dev, top_st.st_ino)}))]
    while stack:
        directory, rel_dir, ancestors = stack.pop()
        try:
            entries = list(os.scandir(directory))
        except OSError as exc:
            raise PathError(os.path.join(shown, rel_dir), exc.strerror or str(exc)) from None
        for entry in entries:
            name = entry.name
            rel = rel_dir + name
            if not name.isascii():
                _check_name(name, os.path.join(shown, rel))
            if name == ".git" and not rel_dir:
                continue
            try:
                st = os.stat(entry.path)
            except OSError:  # say why, naming the path as the user wrote it
                st = _stat_target(entry.path, os.path.join(shown, rel))
            if stat.S_ISDIR(st.st_mode):
                key = (st.st_dev, st.st_ino)
                if key in ancestors:
                    raise PathError(os.path.join(shown, rel), "is a symbolic link loop")
                stack.append((entry.path, rel + "/", ancestors | {key}))
            elif stat.S_ISREG(st.st_mode):
                yield rel, entry.path, st
            # sockets, fifos and devices are not content: skipped


class Hasher:
    """Hashes artifacts, consulting and updating the stat cache."""

    def __init__(self, cache_path: Path | None = None, progress: bool = True) -> None:
        self.cache = HashCache(cache_path)
        self.progress = progress

    def close(self) -> None:
        self.cache.close()

    def __enter__(self) -> Hasher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def hash_path(self, path: str | os.PathLike[str], shown: str | None = None) -> Digest:
        """Digest of a file or directory; PathError if it is missing or unreadable."""
        full = os.path.abspath(os.fspath(path))
        label = shown or os.fspath(path)
        st = _stat_target(full, label)
        started = time.time_ns()
        if stat.S_ISDIR(st.st_mode):
            digest = self._hash_dir(full, label, started)
        elif stat.S_ISREG(st.st_mode):
            hexhash = self.cache.lookup(full, st)
            if hexhash is None:
                progress = _Progress(label, st.st_size, self.progress)
                try:
                    hexhash = self._read_hash(full, label, st.st_size, progress)
                finally:
                    progress.close()
                self.cache.remember(full, st, hexhash, started)
            digest = Digest(PREFIX + hexhash, st.st_size, "file", 1)
        else:
            raise PathError(label, "is not a regular file or directory")
        self.cache.flush()
        return digest

    @staticmethod
    def _read_hash(full: str, label: str, size: int, progress: _Progress) -> str:
        try:
            return _hash_open_file(full, size, progress)
        except OSError as exc:
            raise PathError(label, exc.strerror or str(exc)) from None

    def hash_tree(self, path: str | os.PathLike[str], shown: str | None = None) -> tuple[Digest, list[TreeFile]]:
        """Digest of a directory and its files (manifest order), each with its
        full path and stat: what the data cache stores one object per file of."""
        full = os.path.abspath(os.fspath(path))
        label = shown or os.fspath(path)
        st = _stat_target(full, label)
        if not stat.S_ISDIR(st.st_mode):
            raise PathError(label, "is not a directory")
        files: list[TreeFile] = []
        digest = self._hash_dir(full, label, time.time_ns(), files)
        self.cache.flush()
        return digest, files

    def _hash_dir(self, full: str, label: str, started: int, files: list[TreeFile] | None = None) -> Digest:
        # By path: str order is code point order, which is the order of the
        # UTF-8 bytes (names that are not UTF-8 were refused by _walk).
        entries = sorted(_walk(full, label))
        known = self.cache.lookup_tree(full)
        total = sum(st.st_size for _, _, st in entries)
        progress = _Progress(label, total, self.progress, files=len(entries))
        lines: list[str] = []
        append = lines.append
        unread = 0  # bytes known from the cache, not yet shown as progress
        uncounted = 0  # files done, not yet shown as progress
        try:
            # The cache check and manifest_line, inlined: this loop runs once
            # per file, 10,000 times for a re-check (DESIGN §10: <= 0.3 s).
            for rel, path, st in entries:
                size = st.st_size
                row = known.get(path)
                if (
                    row is not None
                    and row[1] == size
                    and row[2] == st.st_mtime_ns
                    and row[3] == st.st_ctime_ns
                    and row[4] == st.st_ino
                ):
                    hexhash = row[5]
                    unread += size
                    uncounted += 1
                else:
                    progress.advance(unread, uncounted)
                    unread = 0
                    hexhash = self._read_hash(path, os.path.join(label, rel), size, progress)
                    uncounted = 1
                    self.cache.remember(path, st, hexhash, started)
                if "\\" in rel or "\t" in rel or "\n" in rel:
                    rel = _escape(rel)
                append(f"{rel}\t{'100755' if st.st_mode & 0o111 else '100644'}\t{size}\t{hexhash}\n")
                if files is not None:
                    files.append(TreeFile(rel, path, st, hexhash))
            progress.advance(unread, uncounted)
        finally:
            progress.close()
        manifest = "".join(lines).encode("utf-8")
        return Digest(PREFIX + blake3(manifest).hexdigest(), total, "dir", len(entries))


@contextmanager
def hasher_for(cache_path: Path | None, progress: bool = True) -> Iterator[Hasher]:
    h = Hasher(cache_path, progress)
    try:
        yield h
    finally:
        h.close()


HashFn = Callable[[str], Digest]
