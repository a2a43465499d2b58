"""The derived query index: ``.git/[worktrees/<name>/]cmf/index.sqlite``.

The index is a cache of the records, never committed, always safe to delete:
the next read command rebuilds it. It holds one row per record (its id and
kind) and the tables that make questions fast at a million records:
executions with their pipeline, stage, times and exit code; events (which
execution read or wrote which artifact); the aliases of artifacts; and the
numeric and short string params and metrics, indexed by (key, value) so that
``log --where`` and ``--sort`` never scan everything. It holds no copy of the
records: ``places`` says in which file (and at which byte offset) each record
is, and :meth:`Index.read` reads the few that a query returns from there.

What is indexed is a set of *files* (loose records and packs), each remembered
with a signature; ``places`` links each record to every file holding it. A
record disappears when no file holds it any more, so a record that is both
loose and packed, or on two branches, is handled exactly. Two kinds of source:

- the checkout (``src = ''``): the files under ``.cmf/objects``, tracked or
  not. A shard directory is listed again only when its mtime changed (adding
  or removing a loose record is the usual change); a loose file or a pack is
  read again when its stat signature changed (edited in place, or restored
  by ``git checkout``). A pack also keeps its git blob id: one whose stat
  moved but whose bytes did not (a fresh clone's packs, "racy" when the
  first command read them; a touch; a copy) is hashed, not parsed again. As
  a safety net keyed by git itself, the tree id of ``HEAD:.cmf/objects`` is
  remembered, and when it moves (pull, merge, checkout, rebase, reset) the
  paths ``git diff-tree`` names are checked again whatever the mtimes say.
- git trees (``src = <label>``, for ``--ref``, ``--all-branches``,
  ``--global``): files keyed by blob id; a changed tree is applied as
  the ``git diff-tree`` between the tree indexed and the new one.

Every file's records are checked against their ids when the file is read;
a damaged file (a pack with conflict markers, an edited record) is indexed
record by record: what verifies is indexed, the rest is listed in ``damaged``
(the read commands warn with the count, ``fsck`` names the files).

A writer that knows which files it wrote (``cmfgit pull``'s packs) hands them
over with :func:`add_files`; only their new records are parsed.

A full build goes to a temp file (no journal), parses records in two
processes (``extract.py``: the fast canonical loader), creates the secondary
indexes at the end and is renamed into place. Updates are small transactions
in WAL mode under an ``flock``; readers never lock. A fresh clone's first
``log -n N`` does not wait for the full build (``firstread.py``: an index in
memory of the newest packs' records answers, and the build runs in the background).
"""

from __future__ import annotations

import json
import marshal
import math
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cmfgit import canonical, extract, gitutil, pack, treeread
from cmfgit.errors import CmfgitError
from cmfgit.fsutil import TMP_PREFIX, FileLock
from cmfgit.repo import OBJECTS_DIR, Repo
from cmfgit.schema import ANNOTATION, EXECUTION, RETRACTION, TAG_KIND
from cmfgit.where import DURATION_SQL

VERSION = "10"
# records.kind: what a record is. BAD: its bytes match its id but are not a
# record (not YAML, not a mapping); fsck names it. Bytes that do not match their
# id never become a record: the table ``damaged`` lists them, by file.
BAD, OTHER, EXEC, NOTE, RETRACT = -1, 0, 1, 2, 3
PARAM, METRIC = 0, 1
RACY_NS = 2_000_000_000  # a directory changed this recently may change again within its mtime tick
MAX_TEXT = 200  # longer string values are kept in the record but not indexed
BIG = 1.7976931348623157e308  # infinity in the filter columns (JSON has none)
PARALLEL_MIN = 4000  # records to parse before a process pool pays off
CHUNK = 50_000  # records held in memory between parsing rounds
BATCH = 400

_SCHEMA = """
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT) WITHOUT ROWID;
CREATE TABLE files(rowid INTEGER PRIMARY KEY, src TEXT NOT NULL, path TEXT NOT NULL, sig TEXT NOT NULL, blob TEXT);
CREATE UNIQUE INDEX files_path ON files(src, path);
CREATE TABLE dirs(path TEXT PRIMARY KEY, mtime INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE records(rowid INTEGER PRIMARY KEY, id TEXT NOT NULL, kind INTEGER NOT NULL);
CREATE TABLE places(rec INTEGER NOT NULL, file INTEGER NOT NULL, off INTEGER NOT NULL, len INTEGER NOT NULL,
                    PRIMARY KEY(rec, file)) WITHOUT ROWID;
CREATE TABLE executions(rowid INTEGER PRIMARY KEY, pipeline TEXT, stage TEXT, type TEXT,
                        started_at TEXT, ended_at TEXT, exit_code INTEGER, site TEXT, host TEXT,
                        user TEXT, git_commit TEXT, git_branch TEXT, uuid TEXT, params TEXT, metrics TEXT);
CREATE TABLE artifacts(rowid INTEGER PRIMARY KEY, hash TEXT NOT NULL);
CREATE TABLE events(exec INTEGER NOT NULL, dir INTEGER NOT NULL, pos INTEGER NOT NULL, art INTEGER NOT NULL,
                    path TEXT, type TEXT, kind TEXT, size INTEGER);
CREATE TABLE aliases(exec INTEGER NOT NULL, art INTEGER NOT NULL, alias INTEGER NOT NULL);
CREATE TABLE keys(rowid INTEGER PRIMARY KEY, ns INTEGER NOT NULL, name TEXT NOT NULL, UNIQUE(ns, name));
CREATE TABLE kv(k INTEGER NOT NULL, val NOT NULL, exec INTEGER NOT NULL, PRIMARY KEY(k, val, exec)) WITHOUT ROWID;
CREATE TABLE annotations(rowid INTEGER PRIMARY KEY, target TEXT, kind TEXT, at TEXT, tags TEXT);
CREATE TABLE damaged(file INTEGER NOT NULL, id TEXT);
CREATE INDEX damaged_file ON damaged(file);
CREATE TABLE retractions(rec INTEGER NOT NULL, target TEXT NOT NULL);
CREATE INDEX retractions_rec ON retractions(rec);
CREATE INDEX retractions_target ON retractions(target);
CREATE TABLE hidden(rowid INTEGER PRIMARY KEY);
"""
# Only during a full build: rows sorted into their tables at the end.
_BULK = """
CREATE TEMP TABLE kv_load(k INTEGER NOT NULL, val NOT NULL, exec INTEGER NOT NULL);
CREATE TEMP TABLE dup_places(id TEXT NOT NULL, file INTEGER NOT NULL, off INTEGER NOT NULL, len INTEGER NOT NULL);
"""

# Created after a full build has inserted everything: sorting once beats
# keeping indexes in order through a million random inserts.
_INDEXES = """
CREATE UNIQUE INDEX IF NOT EXISTS records_id ON records(id);
CREATE INDEX IF NOT EXISTS places_file ON places(file);
CREATE UNIQUE INDEX IF NOT EXISTS artifacts_hash ON artifacts(hash);
CREATE INDEX IF NOT EXISTS ex_started ON executions(started_at);
CREATE INDEX IF NOT EXISTS ex_pipeline ON executions(pipeline, stage, started_at);
CREATE INDEX IF NOT EXISTS ex_stage ON executions(stage, started_at);
CREATE INDEX IF NOT EXISTS ex_site ON executions(site, started_at);
CREATE INDEX IF NOT EXISTS ex_exit ON executions(exit_code, started_at);
CREATE INDEX IF NOT EXISTS ev_art ON events(art, dir);
CREATE INDEX IF NOT EXISTS ev_exec ON events(exec);
CREATE INDEX IF NOT EXISTS al_art ON aliases(art);
CREATE INDEX IF NOT EXISTS al_alias ON aliases(alias);
CREATE INDEX IF NOT EXISTS al_exec ON aliases(exec);
CREATE INDEX IF NOT EXISTS an_target ON annotations(target);
CREATE INDEX IF NOT EXISTS records_bad ON records(kind) WHERE kind = -1;
"""
# --sort duration: the same expression as the query's (where.DURATION_SQL), so SQLite
# walks this index instead of computing and sorting every row (4.8 s -> 0.2 ms for the
# first page at a million runs; 17 MB and 5 s more to build at that size).
_INDEXES += f"CREATE INDEX IF NOT EXISTS ex_duration ON executions({DURATION_SQL.replace('e.', '')});\n"


# -- deriving rows from one record (pure; runs in worker processes) ---------------


@dataclass(slots=True)
class Derived:
    """Everything the index stores about one record."""

    id: str
    kind: int  # BAD, OTHER, EXEC or NOTE
    execution: tuple[Any, ...] | None = None  # executions columns after rowid
    events: list[tuple[int, int, str, Any, Any, Any, Any]] = field(default_factory=list)
    aliases: list[tuple[str, str]] = field(default_factory=list)  # (hash, alias)
    kv: list[tuple[int, str, Any]] = field(default_factory=list)  # (ns, key, value)
    annotation: tuple[Any, ...] | None = None
    retracts: list[str] = field(default_factory=list)  # the ids a retraction withdraws


def filter_value(value: Any) -> Any:
    """The value comparisons see: numbers (infinity clamped), 1/0 for booleans, short strings.

    None for anything else (NaN, lists, mappings, long strings), which no
    comparison matches.
    """
    kind = type(value)
    if kind is float:
        if -BIG <= value <= BIG:
            return value
        return None if value != value else math.copysign(BIG, value)  # NaN, or an infinity
    if kind is int:
        return value if -(2**63) <= value < 2**63 else float(value)
    if kind is str:
        return value if len(value) <= MAX_TEXT else None
    if kind is bool:
        return 1 if value else 0
    return None


_to_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def _filtered(values: Any, ns: int, kv: list[tuple[int, str, Any]]) -> str:
    """The JSON of the comparable values of params or metrics; indexed ones go to ``kv``."""
    if type(values) is not dict or not values:
        return "{}"
    seen = {k: filter_value(v) for k, v in values.items()}
    kv.extend([(ns, k, v) for k, v in seen.items() if v is not None])
    return _to_json(seen)


def kv_rows(params_json: str | None, metrics_json: str | None) -> list[tuple[int, str, Any]]:
    """The ``kv`` rows of an execution, from its stored params and metrics columns
    (what :func:`_filtered` wrote: every indexed value, JSON round-trips exactly)."""
    rows: list[tuple[int, str, Any]] = []
    for ns, text in ((PARAM, params_json), (METRIC, metrics_json)):
        values = json.loads(text) if text else {}
        rows += [(ns, k, v) for k, v in values.items() if v is not None]
    return rows


def load_record(data: bytes, where: str = "record") -> Any:
    """Parse canonical bytes with the fast loader; libyaml for anything else."""
    value = extract.load(data)
    if value is extract.FAIL:
        value = canonical.load_libyaml(data, where)
    return value


def derive(rid: str, data: bytes | None, record: Any = None) -> Derived:
    """Rows of one record; a record that cannot be read is marked bad, never fatal.

    ``record`` may be given when already parsed (it must be what ``data`` holds).
    """
    if record is None:
        try:
            if data is None or canonical.digest(data) != rid:
                return Derived(rid, BAD)
            record = load_record(data, rid)
        except (CmfgitError, ValueError, OverflowError, RecursionError):
            return Derived(rid, BAD)  # libyaml's constructors raise ValueError on impossible dates
    if type(record) is not dict:
        return Derived(rid, BAD)
    schema = record.get("schema")
    if schema == EXECUTION:
        d = Derived(rid, EXEC)
        git_info = record.get("git")
        git: dict[str, Any] = git_info if type(git_info) is dict else {}
        exit_code = record.get("exit_code")
        kv: list[tuple[int, str, Any]] = []
        d.execution = (
            _text(record.get("pipeline")),
            _text(record.get("stage")),
            _text(record.get("type")),
            _text(record.get("started_at")),
            _text(record.get("ended_at")),
            exit_code if type(exit_code) is int else None,
            _text(record.get("site")),
            _text(record.get("host")),
            _text(record.get("user")),
            _text(git.get("commit")),
            _text(git.get("branch")),
            _text(record.get("uuid")),
            _filtered(record.get("params"), PARAM, kv),
            _filtered(record.get("metrics"), METRIC, kv),
        )
        d.kv = kv
        events = d.events
        for direction, name in ((0, "inputs"), (1, "outputs")):
            items = record.get(name)
            if type(items) is not list:
                continue
            for pos, item in enumerate(items):
                if type(item) is not dict:
                    continue
                h = item.get("hash")
                if type(h) is not str:
                    continue
                size = item.get("size")
                path, typ, kind = item.get("path"), item.get("type"), item.get("kind")
                events.append(
                    (
                        direction,
                        pos,
                        h,
                        path if type(path) is str else None,
                        typ if type(typ) is str else None,
                        kind if type(kind) is str else None,
                        size if type(size) is int else None,
                    )
                )
                aliases = item.get("aliases")
                if type(aliases) is list:
                    d.aliases += [(h, a) for a in aliases if type(a) is str and a != h]
        return d
    if schema == ANNOTATION:
        kind, body = _text(record.get("kind")), record.get("body")
        # A tag's body (small: names and text) is kept, so tags are read without the records.
        tags = _to_json(body) if kind == TAG_KIND and type(body) is dict else None
        return Derived(rid, NOTE, annotation=(_text(record.get("target")), kind, _text(record.get("at")), tags))
    if schema == RETRACTION:
        ids = record.get("ids")
        return Derived(rid, RETRACT, retracts=[i for i in ids if type(i) is str] if type(ids) is list else [])
    return Derived(rid, OTHER)


def _text(value: Any) -> str | None:
    return value if type(value) is str else None


def derive_many(batch: Sequence[tuple[str, bytes]]) -> list[Derived]:
    return [derive(rid, data) for rid, data in batch]


def derive_marshalled(batch: Sequence[tuple[str, bytes]]) -> bytes:
    """:func:`derive_many` for a worker process: marshal moves plain tuples about
    three times faster than pickle moves the objects."""
    return marshal.dumps(
        [(d.id, d.kind, d.execution, d.events, d.aliases, d.kv, d.annotation, d.retracts) for d in derive_many(batch)]
    )


def unmarshal(blob: bytes) -> list[Derived]:
    return [Derived(*fields) for fields in marshal.loads(blob)]


# -- files of a source ----------------------------------------------------------------


@dataclass(frozen=True)
class SourceFile:
    path: str  # relative to .cmf/objects
    sig: str  # blob id, or stat signature in the checkout
    kind: str  # 'loose' or 'pack'
    blob: str | None = None  # a pack's git blob id (what its bytes are, whatever its stat says)


_PACK_ENTRY = len(pack.SEPARATOR) + pack.ID_HEX_LEN + 1  # '--- # <id>\n' before each record


Entry = tuple[str, bytes, int, int]  # (id, canonical bytes, offset in the file, length)


def file_entries(f: SourceFile, content: bytes) -> tuple[list[Entry], list[str | None]]:
    """The records of a file whose bytes match their ids, in file order, and the
    damaged ones (their ids; None for text that is not a record at all).

    A damaged pack (conflict markers, an edited record) is read record by
    record, so the rest of it stays visible.
    """
    if f.kind == "loose":
        rid = f.path[:2] + f.path[3:-5]
        return ([(rid, content, 0, len(content))], []) if canonical.digest(content) == rid else ([], [rid])
    try:
        records = pack.parse(content, f.path, verify=True)
    except CmfgitError:
        found, damaged = pack.salvage(content)
        return [(rid, content[off : off + n], off, n) for rid, off, n in found], damaged
    # A pack that parse accepted is exactly its header, then for each record
    # (in the order parse returns them) a separator line and the bytes.
    entries: list[Entry] = []
    off = len(pack.HEADER)
    for rid, data in records.items():
        off += _PACK_ENTRY
        entries.append((rid, data, off, len(data)))
        off += len(data)
    return entries, []


FileRead = tuple[SourceFile, list[Entry], list[str | None]]  # a file, its records, its damaged entries


def _tree_file(path: str, blob: str) -> SourceFile:
    kind = treeread.classify(path) or ""
    return SourceFile(path, blob, kind, blob if kind == "pack" else None)


def _stat_sig(st: os.stat_result) -> str:
    return f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}:{st.st_ctime_ns}"


def blob_id(data: bytes) -> str:
    """The git blob id of ``data`` (SHA-1 object format): what a pack holds, whatever its stat says."""
    import hashlib

    h = hashlib.sha1(b"blob %d\0" % len(data), usedforsecurity=False)
    h.update(data)
    return h.hexdigest()


# -- the index database -------------------------------------------------------------


class Index:
    """One index database: the checkout's, or one for a set of git trees."""

    def __init__(self, repo: Repo, path: Path) -> None:
        self.repo = repo
        self.path = path
        self.conn: sqlite3.Connection | None = None
        self._keys: dict[tuple[int, str], int] = {}
        self._arts: dict[str, int] = {}
        self.stats = {"added": 0, "removed": 0, "parsed": 0, "files": 0}
        self._writing = False  # False: the update functions only report whether anything changed
        self._bulk = False  # a full build into an empty database
        self._update: Any = None  # how this index was last brought up to date (read() may need it again)
        self._blobs: dict[str, tuple[str, str]] = {}  # checkout pack -> (stat signature, blob id) hashed
        self._pool: Any = None
        self._known: Mapping[str, Derived] = {}  # rows of records a writer derived (add_checkout_files)
        # A full build: ids seen, records yet to parse (with their place), rows of files.
        self._seen: set[bytes] = set()
        self._pending: list[tuple[str, bytes]] = []
        self._pending_at: list[tuple[int, int, int]] = []
        self._next_rowid = 0
        self._next_file = 0

    # -- opening --------------------------------------------------------------

    @property
    def lock_path(self) -> Path:
        return self.path.with_name(self.path.name + ".lock")

    def _connect(self, path: Path) -> sqlite3.Connection:
        conn = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = 60000")
        return conn

    def open_existing(self) -> bool:
        """Open the database if it exists and is of this version; False otherwise."""
        if not self.path.exists():
            return False
        try:
            conn = self._connect(self.path)
            row = conn.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()
        except sqlite3.DatabaseError:
            return False
        if row is None or row[0] != VERSION:
            conn.close()
            return False
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA cache_size = -65536")
        conn.execute("PRAGMA mmap_size = 1073741824")
        self.conn = conn
        return True

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def db(self) -> sqlite3.Connection:
        if self.conn is None:
            raise CmfgitError("the query index is not open")
        return self.conn

    # -- reading records back --------------------------------------------------

    def read(self, rowids: Sequence[int]) -> dict[int, tuple[str, bytes]]:
        """rowid -> (id, canonical bytes) of the records asked for, read from the
        files that hold them and checked against their ids.

        A record that cannot be read (marked bad, or its file changed since
        the last refresh and it is nowhere else) is left out; a changed file
        makes the index refresh once and try again.
        """
        found, missing = self._read_once(rowids)
        if missing and self._update is not None:
            self._refresh(self._update)
            more, _missing = self._read_once(missing)
            found.update(more)
        return found

    def _read_once(self, rowids: Sequence[int]) -> tuple[dict[int, tuple[str, bytes]], list[int]]:
        conn = self.db()
        best: dict[int, tuple[str, str, str, str, int, int]] = {}
        for start in range(0, len(rowids), 500):
            chunk = list(rowids[start : start + 500])
            for rowid, rid, src, path, sig, off, length in conn.execute(
                "SELECT r.rowid, r.id, f.src, f.path, f.sig, p.off, p.len FROM records r "
                "JOIN places p ON p.rec = r.rowid JOIN files f ON f.rowid = p.file "
                f"WHERE r.kind != {BAD} AND r.rowid IN ({','.join('?' * len(chunk))})",
                chunk,
            ):
                if rowid not in best or (src == "" and best[rowid][1] != ""):
                    best[rowid] = (rid, src, path, sig, off, length)  # the checkout's own files first
        local: dict[str, list[tuple[int, str, int, int]]] = {}
        blobs: dict[str, list[tuple[int, str, int, int]]] = {}
        for rowid, (rid, src, path, sig, off, length) in best.items():
            (local.setdefault(path, []) if src == "" else blobs.setdefault(sig, [])).append((rowid, rid, off, length))
        found: dict[int, tuple[str, bytes]] = {}
        for path, wanted in local.items():
            try:
                with open(self.repo.objects_dir / path, "rb") as fh:
                    for rowid, rid, off, length in wanted:
                        fh.seek(off)
                        data = fh.read(length)
                        if canonical.digest(data) == rid:
                            found[rowid] = (rid, data)
            except OSError:
                continue
        if blobs:
            try:
                for blob, content in gitutil.cat_blobs(self.repo.root, list(blobs)):
                    for rowid, rid, off, length in blobs[blob]:
                        data = content[off : off + length]
                        if canonical.digest(data) == rid:
                            found[rowid] = (rid, data)
            except CmfgitError:
                pass  # a blob git no longer has: the refresh drops or moves it
        return found, [r for r in best if r not in found]

    # -- refreshing -------------------------------------------------------------

    def refresh_worktree(self) -> None:
        """Bring the index in line with the files of the checkout."""
        self._refresh(lambda ix: ix._update_worktree())

    def refresh_trees(self, trees: dict[str, str | None]) -> None:
        """Bring the index in line with ``trees``: label -> tree id of .cmf/objects (None: no records)."""
        self._refresh(lambda ix: ix._update_trees(trees))

    def _refresh(self, update: Any) -> None:
        self._update = update
        if self.conn is None and not self.open_existing():
            with FileLock(self.lock_path, timeout=3600, what="query index lock"):
                if not self.open_existing():
                    self._full_build(update)
                    if not self.open_existing():
                        raise CmfgitError(f"could not open the query index {self.path}")
                    return
        if not update(self):
            return  # nothing changed: no lock, no write
        with FileLock(self.lock_path, timeout=3600, what="query index lock"):
            conn = self.db()
            conn.execute("BEGIN IMMEDIATE")
            self._writing = True
            try:
                update(self)
                self._apply_retractions()
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                self._arts, self._keys = {}, {}  # they may name rows that were rolled back
                raise
            finally:
                self._writing = False
                self._close_pool()

    def _full_build(self, update: Any) -> None:
        """Build a fresh database in a temp file, then rename it into place."""
        if os.path.isdir(self.path):  # (anything else in the way is replaced: the index is derived)
            raise CmfgitError(
                f"the query index {self.path} is a directory, not a file: "
                "remove it (the index is derived from the records and is rebuilt)"
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f"{TMP_PREFIX}{os.getpid()}-{self.path.name}")
        tmp.unlink(missing_ok=True)
        conn = self._connect(tmp)
        try:
            conn.execute("PRAGMA temp_store = FILE")
            self._bulk_load(conn, update)
            conn.execute("PRAGMA analysis_limit = 2000")  # sampled statistics: enough for the planner, and quick
            conn.execute("ANALYZE")
            conn.close()
        except BaseException:
            conn.close()
            tmp.unlink(missing_ok=True)
            raise
        finally:
            self.conn = None
        for suffix in ("-wal", "-shm"):  # a deleted index may have left these behind
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        os.replace(tmp, self.path)

    def _bulk_load(self, conn: sqlite3.Connection, update: Any) -> None:
        """Fill an empty database with what ``update`` puts, as one transaction;
        ``conn`` is left open (as ``self.conn``)."""
        try:
            conn.execute("PRAGMA journal_mode = OFF")
            conn.execute("PRAGMA synchronous = OFF")
            conn.execute("PRAGMA cache_size = -262144")
            conn.executescript(_SCHEMA)
            conn.executescript(_BULK)
            conn.execute("BEGIN")
            self.conn = conn
            self._writing = self._bulk = True
            update(self)
            self._flush()
            self._bulk = False
            conn.execute("INSERT OR IGNORE INTO kv SELECT k, val, exec FROM temp.kv_load ORDER BY k, val, exec")
            conn.execute("DROP TABLE temp.kv_load")
            for statement in _INDEXES.strip().split(";\n"):
                conn.execute(statement)  # (executescript would commit first)
            # Records held by more than one file: their other places, now that ids are indexed.
            conn.execute(
                "INSERT OR IGNORE INTO places SELECT r.rowid, d.file, d.off, d.len "
                "FROM temp.dup_places d JOIN records r ON r.id = d.id"
            )
            conn.execute("DROP TABLE temp.dup_places")
            self._apply_retractions()
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('version', ?)", (VERSION,))
            conn.execute("COMMIT")
        finally:
            self._writing = self._bulk = False
            self._close_pool()
            self._seen = set()
            self._arts = {}
            self._pending, self._pending_at = [], []

    # -- a partial index of the checkout, in memory (firstread.py) --------------------

    def load_partial(self, loose: list[str], packs: list[str], extracts: dict[str, list[Entry]]) -> None:
        """An index of some of the checkout's files only, in memory: the loose
        records ``loose``, the packs ``packs``, and of other packs only the
        entries ``extracts`` names (path -> entries). Called again, it adds more."""
        if self.conn is None:
            self._bulk_load(self._connect(Path(":memory:")), lambda ix: ix._put_partial(loose, packs, extracts))
            return
        conn = self.db()
        conn.execute("BEGIN")
        self._writing = True
        try:
            self._put_partial(loose, packs, extracts)
            self._apply_retractions()
            conn.execute("COMMIT")
        finally:
            self._writing = False
            self._close_pool()

    def _put_partial(self, loose: list[str], packs: list[str], extracts: dict[str, list[Entry]]) -> None:
        self._put_files("", self._read_worktree([SourceFile(p, "", "loose") for p in loose]))
        for path in packs:
            try:
                data = (self.repo.objects_dir / path).read_bytes()
            except FileNotFoundError:
                continue
            f = SourceFile(path, "partial", "pack")
            self._put_files("", [(f, *file_entries(f, data))])
        for path, entries in extracts.items():
            self._put_files("", [(SourceFile(path, "partial", "pack"), entries, [])])

    def add_checkout_files(self, paths: Sequence[str], known: Mapping[str, Derived] | None = None) -> None:
        """Index these files of the checkout (paths relative to ``.cmf/objects``) as
        they are now: a writer that knows what it wrote (pull's packs) saves the next
        read command from finding and re-reading them. Only their new records are parsed;
        ``known`` (id -> the rows of a record the writer encoded, :func:`derive`-d) are not."""
        objects = self.repo.objects_dir
        self._known = known or {}
        with FileLock(self.lock_path, timeout=3600, what="query index lock"):
            conn = self.db()
            conn.execute("BEGIN IMMEDIATE")
            self._writing = True
            try:
                for path in paths:
                    kind = treeread.classify(path)
                    try:
                        with open(objects / path, "rb") as fh:
                            st = os.fstat(fh.fileno())
                            data = fh.read()
                    except FileNotFoundError:
                        self._remove_file("", path)
                        continue
                    if kind == "pack":
                        sig = "racy" if time.time_ns() - st.st_mtime_ns < RACY_NS else _stat_sig(st)
                    elif kind == "loose":
                        sig = "racy" if time.time_ns() - st.st_ctime_ns < RACY_NS else str(st.st_ctime_ns)
                    else:
                        continue
                    f = SourceFile(path, sig, kind)
                    self._put_files("", [(f, *file_entries(f, data))])
                self._apply_retractions()
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                self._arts, self._keys = {}, {}
                raise
            finally:
                self._writing = False
                self._known = {}
                self._close_pool()

    # -- the checkout --------------------------------------------------------------

    def _update_worktree(self) -> bool:
        """Apply the checkout's changes; when not writing, only report whether any exist."""
        conn = self.db()
        objects = self.repo.objects_dir
        now = time.time_ns()
        stored_dirs = dict(conn.execute("SELECT path, mtime FROM dirs").fetchall())
        head = (
            gitutil.rev_parse(self.repo.root, f"HEAD:{OBJECTS_DIR}") if (self.repo.git_dir / "HEAD").exists() else None
        )
        old_head = _meta(conn, "head_tree")
        suspect: set[str] = set()  # shard dirs and pack paths git says changed
        if head != old_head and old_head and head:
            for _status, _blob, path in gitutil.diff_tree(self.repo.root, old_head, head):
                kind = treeread.classify(path)
                if kind == "loose":
                    suspect.add(path[:2])
                elif kind == "pack":
                    suspect.add(path)

        # Shards: list again those whose mtime moved (or that git named).
        try:
            root_mtime = objects.stat().st_mtime_ns
            root_entries: list[str] | None = None
            if stored_dirs.get("") != root_mtime:
                root_entries = [e for e in os.listdir(objects) if len(e) == 2 and _is_hex(e)]
        except FileNotFoundError:
            root_mtime, root_entries = 0, []
        known = {p for p in stored_dirs if len(p) == 2}
        shards = sorted(known | set(root_entries or ()) | {s for s in suspect if len(s) == 2})
        dir_updates: dict[str, int] = {}
        loose_add: list[tuple[str, str]] = []
        loose_del: list[str] = []
        for shard in shards:
            try:
                mtime = (objects / shard).stat().st_mtime_ns
            except FileNotFoundError:
                mtime = -1
            if mtime == stored_dirs.get(shard) and shard not in suspect:
                continue
            names = set()
            if mtime >= 0:
                try:
                    names = {f"{shard}/{n}" for n in os.listdir(objects / shard) if treeread.classify(f"{shard}/{n}")}
                except FileNotFoundError:
                    mtime = -1
            indexed = {
                p
                for (p,) in conn.execute(
                    "SELECT path FROM files WHERE src = '' AND path > ? AND path < ?", (shard + "/", shard + "0")
                )
            }
            loose_add += [(p, "") for p in sorted(names - indexed)]
            loose_del += sorted(indexed - names)
            dir_updates[shard] = (0 if now - mtime < RACY_NS else mtime) if mtime >= 0 else -1
        if root_entries is not None:
            dir_updates[""] = 0 if now - root_mtime < RACY_NS else root_mtime
        # Loose files are named by their id, but may still be edited or restored in
        # place (a shard's mtime does not see that). Their signature is the inode's
        # change time, which every write, rename or re-creation moves and no tool
        # can set. This loop is the warm path's cost per loose file (one stat).
        relisted = set(loose_del) | {p for p, _ in loose_add}
        prefix, stat_ = f"{os.fspath(objects)}/", os.stat  # str paths: pathlib costs 30 µs a file
        rows = conn.execute("SELECT path, sig FROM files WHERE src = '' AND path < 'pack/'").fetchall()
        for path, sig in rows:
            try:
                ctime = stat_(prefix + path).st_ctime_ns
            except FileNotFoundError:
                if path not in relisted:
                    loose_del.append(path)
                continue
            if sig != str(ctime) and path not in relisted:
                loose_add.append((path, ""))  # (a "racy" signature never matches: read again)

        # Packs: a handful of files, compared by stat signature.
        packs_now: dict[str, str] = {}
        pack_root = objects / "pack"
        for dirpath, dirnames, filenames in os.walk(pack_root):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for name in filenames:
                full = os.path.join(dirpath, name)
                rel = os.path.relpath(full, objects).replace(os.sep, "/")
                if treeread.classify(rel) != "pack":
                    continue
                try:
                    st = os.stat(full)
                except FileNotFoundError:
                    continue
                racy = now - st.st_mtime_ns < RACY_NS
                packs_now[rel] = "racy" if racy else _stat_sig(st)
        pack_rows = conn.execute(
            "SELECT path, sig, blob FROM files WHERE src = '' AND path >= 'pack/' AND path < 'pack0'"
        ).fetchall()
        packs_indexed = {p: sig for p, sig, _blob in pack_rows}
        pack_changes = [
            p
            for p in sorted(set(packs_now) | set(packs_indexed))
            if packs_now.get(p) != packs_indexed.get(p) or p in suspect or packs_now.get(p) == "racy"
        ]
        # A pack whose stat moved but whose bytes did not (a fresh clone's packs were
        # "racy" when first indexed; a touch; a copy) is not read again: at most its
        # new signature is stored. Its git blob id says what it holds.
        blobs = {p: blob for p, _sig, blob in pack_rows if blob}
        same = {p: self._pack_sig_if_same(p, blobs[p]) for p in pack_changes if p in blobs and p in packs_now}
        resign = {p: sig for p, sig in same.items() if sig is not None and sig != "racy"}
        pack_changes = [p for p in pack_changes if same.get(p) is None]
        changed = bool(loose_add or loose_del or pack_changes or resign or head != old_head or dir_updates)
        if not self._writing:
            return changed
        if not changed:
            return False

        for path in loose_del:
            self._remove_file("", path)
        self._put_files("", self._read_worktree([SourceFile(p, "", "loose") for p, _ in loose_add]))
        conn.executemany("UPDATE files SET sig = ? WHERE src = '' AND path = ?", [(s, p) for p, s in resign.items()])
        for path in pack_changes:
            sig = packs_now.get(path)
            if sig is None:
                self._remove_file("", path)
                continue
            pack_file = objects / path
            try:
                st = pack_file.stat()
                data = pack_file.read_bytes()
            except FileNotFoundError:
                self._remove_file("", path)
                continue
            sig = "racy" if now - st.st_mtime_ns < RACY_NS else _stat_sig(st)
            f = SourceFile(path, sig, "pack", blob_id(data))
            self._put_files("", [(f, *file_entries(f, data))])
        for path, mtime in dir_updates.items():
            conn.execute("INSERT OR REPLACE INTO dirs VALUES (?, ?)", (path, mtime))
        _set_meta(conn, "head_tree", head)
        return True

    def _pack_sig_if_same(self, path: str, blob: str) -> str | None:
        """The stat signature of the checkout's pack ``path`` ("racy" if just written)
        when its bytes are still those of ``blob``; None when they are not (or it is gone)."""
        full = os.path.join(self.repo.objects_dir, path)
        try:
            st = os.stat(full)  # before reading: a write after it moves the stat again
            sig = "racy" if time.time_ns() - st.st_mtime_ns < RACY_NS else _stat_sig(st)
            known = self._blobs.get(path)
            if known is not None and known[0] == sig != "racy":
                return sig if known[1] == blob else None  # hashed by this refresh's first pass
            with open(full, "rb") as fh:
                now = blob_id(fh.read())
        except OSError:
            return None
        self._blobs[path] = (sig, now)
        return sig if now == blob else None

    def _read_worktree(self, files: list[SourceFile]) -> Iterator[FileRead]:
        objects = self.repo.objects_dir
        now = time.time_ns()
        for f in files:
            try:
                with open(objects / f.path, "rb") as fh:
                    st = os.fstat(fh.fileno())
                    data = fh.read()
            except FileNotFoundError:
                self._remove_file("", f.path)
                continue
            f = SourceFile(f.path, "racy" if now - st.st_ctime_ns < RACY_NS else str(st.st_ctime_ns), f.kind)
            yield (f, *file_entries(f, data))

    # -- git trees ------------------------------------------------------------------

    def _update_trees(self, trees: dict[str, str | None]) -> bool:
        conn = self.db()
        stored = {k[5:]: v for k, v in conn.execute("SELECT key, value FROM meta WHERE key LIKE 'tree:%'")}
        gone = [label for label in stored if label not in trees]
        todo = {label: tree for label, tree in trees.items() if stored.get(label, "") != (tree or "")}
        if not self._writing:
            return bool(gone or todo)
        for label in gone:
            for (path,) in conn.execute("SELECT path FROM files WHERE src = ?", (label,)).fetchall():
                self._remove_file(label, path)
            conn.execute("DELETE FROM meta WHERE key = ?", ("tree:" + label,))
        root = self.repo.root
        for label, tree in todo.items():
            old = stored.get(label) or None
            if old and tree:
                changes = gitutil.diff_tree(root, old, tree)
                wanted = [(p, b) for status, b, p in changes if status != "D" and treeread.classify(p)]
                for status, _b, path in changes:
                    if status == "D" and treeread.classify(path):
                        self._remove_file(label, path)
            else:
                listing = dict(gitutil.ls_tree_blobs(root, tree)) if tree else {}
                listing = {p: b for p, b in listing.items() if treeread.classify(p)}
                indexed = dict(conn.execute("SELECT path, sig FROM files WHERE src = ?", (label,)).fetchall())
                for path in indexed:
                    if path not in listing:
                        self._remove_file(label, path)
                wanted = [(p, b) for p, b in listing.items() if indexed.get(p) != b]
            self._put_files(label, self._read_blobs([_tree_file(p, b) for p, b in wanted]))
            _set_meta(conn, "tree:" + label, tree or "")
        return True

    def _read_blobs(self, files: list[SourceFile]) -> Iterator[FileRead]:
        by_blob: dict[str, list[SourceFile]] = {}
        for f in files:
            by_blob.setdefault(f.sig, []).append(f)
        for blob, content in gitutil.cat_blobs(self.repo.root, list(by_blob)):
            for f in by_blob[blob]:
                yield (f, *file_entries(f, content))

    # -- applying files ---------------------------------------------------------------

    def _put_files(self, src: str, found: Iterable[FileRead]) -> None:
        """Index files with their current content (id -> bytes), releasing what a
        previous content of the same path held."""
        if self._bulk:
            self._put_files_bulk(src, found)
            return
        conn = self.db()
        fresh: list[tuple[str, bytes]] = []
        fresh_at: list[tuple[int, int, int]] = []
        previous: list[int] = []
        for f, entries, damaged in found:
            row = conn.execute("SELECT rowid FROM files WHERE src = ? AND path = ?", (src, f.path)).fetchone()
            if row is None:
                fid = conn.execute(
                    "INSERT INTO files(src, path, sig, blob) VALUES (?, ?, ?, ?) RETURNING rowid",
                    (src, f.path, f.sig, f.blob),
                ).fetchone()[0]
            else:
                fid = row[0]
                conn.execute("UPDATE files SET sig = ?, blob = ? WHERE rowid = ?", (f.sig, f.blob, fid))
                previous += [r for (r,) in conn.execute("SELECT rec FROM places WHERE file = ?", (fid,))]
                conn.execute("DELETE FROM places WHERE file = ?", (fid,))
                conn.execute("DELETE FROM damaged WHERE file = ?", (fid,))
            conn.executemany("INSERT INTO damaged VALUES (?, ?)", [(fid, rid) for rid in damaged])
            self.stats["files"] += 1
            for rid, data, off, length in entries:
                known = conn.execute("SELECT rowid FROM records WHERE id = ?", (rid,)).fetchone()
                if known is not None:
                    conn.execute("INSERT OR IGNORE INTO places VALUES (?, ?, ?, ?)", (known[0], fid, off, length))
                    continue
                fresh.append((rid, data))
                fresh_at.append((fid, off, length))
                if len(fresh) >= CHUNK:
                    self._store(fresh, fresh_at)
                    fresh, fresh_at = [], []
        self._store(fresh, fresh_at)
        self._drop_orphans(previous)

    def _put_files_bulk(self, src: str, found: Iterable[FileRead]) -> None:
        """A full build: rowids are assigned here, and records gathered across files
        so that the parsing processes get large batches whatever the size of each pack."""
        conn = self.db()
        files: list[tuple[int, str, str, str, str | None]] = []
        dups: list[tuple[str, int, int, int]] = []
        damaged_rows: list[tuple[int, str | None]] = []
        seen, pending, pending_at = self._seen, self._pending, self._pending_at
        for f, entries, damaged in found:
            self._next_file += 1
            fid = self._next_file
            files.append((fid, src, f.path, f.sig, f.blob))
            damaged_rows += [(fid, rid) for rid in damaged]
            for rid, data, off, length in entries:
                key = bytes.fromhex(rid)
                if key in seen:
                    dups.append((rid, fid, off, length))
                    continue
                seen.add(key)
                pending.append((rid, data))
                pending_at.append((fid, off, length))
            if len(pending) >= CHUNK:
                conn.executemany("INSERT INTO files VALUES (?, ?, ?, ?, ?)", files)
                self.stats["files"] += len(files)
                files = []
                self._flush()
                pending, pending_at = self._pending, self._pending_at
        conn.executemany("INSERT INTO files VALUES (?, ?, ?, ?, ?)", files)
        conn.executemany("INSERT INTO temp.dup_places VALUES (?, ?, ?, ?)", dups)
        conn.executemany("INSERT INTO damaged VALUES (?, ?)", damaged_rows)
        self.stats["files"] += len(files)

    def _remove_file(self, src: str, path: str) -> None:
        conn = self.db()
        row = conn.execute("SELECT rowid FROM files WHERE src = ? AND path = ?", (src, path)).fetchone()
        if row is None:
            return
        held = [r for (r,) in conn.execute("SELECT rec FROM places WHERE file = ?", (row[0],))]
        conn.execute("DELETE FROM places WHERE file = ?", (row[0],))
        conn.execute("DELETE FROM damaged WHERE file = ?", (row[0],))
        conn.execute("DELETE FROM files WHERE rowid = ?", (row[0],))
        self._drop_orphans(held)

    def _drop_orphans(self, rowids: Iterable[int]) -> None:
        """Forget the records among ``rowids`` that no file holds any more."""
        conn = self.db()
        for rowid in rowids:
            if conn.execute("SELECT 1 FROM places WHERE rec = ? LIMIT 1", (rowid,)).fetchone() is None:
                self._delete_record(rowid)

    # -- records ------------------------------------------------------------------------

    def _flush(self) -> None:
        pending, pending_at = self._pending, self._pending_at
        self._pending, self._pending_at = [], []
        self._store(pending, pending_at)

    def _store(self, items: list[tuple[str, bytes]], at: list[tuple[int, int, int]]) -> None:
        """Parse new records (in worker processes when there are many) and insert their rows."""
        if not items:
            return
        if self._known:  # rows the writer derived: inserted as they are, the rest parsed
            given: list[Derived] = []
            given_at: list[tuple[int, int, int]] = []
            rest: list[tuple[str, bytes]] = []
            rest_at: list[tuple[int, int, int]] = []
            for item, place in zip(items, at):
                d = self._known.get(item[0])
                if d is None:
                    rest.append(item)
                    rest_at.append(place)
                else:
                    given.append(d)
                    given_at.append(place)
            if given:
                self._insert_many(given, given_at)
            items, at = rest, rest_at
            if not items:
                return
        self.stats["parsed"] += len(items)
        jobs = _jobs()
        if jobs > 1 and (len(items) >= PARALLEL_MIN or self._pool is not None):
            if self._pool is None:
                import multiprocessing  # only a full build pays for it

                self._pool = multiprocessing.get_context("fork").Pool(jobs)
            starts = range(0, len(items), BATCH)
            for start, blob in zip(starts, self._pool.imap(derive_marshalled, [items[i : i + BATCH] for i in starts])):
                self._insert_many(unmarshal(blob), at[start : start + BATCH])
        else:
            for start in range(0, len(items), BATCH):
                self._insert_many(derive_many(items[start : start + BATCH]), at[start : start + BATCH])

    def _insert_many(self, derived: list[Derived], at: list[tuple[int, int, int]]) -> None:
        if not self._bulk:
            for d, place in zip(derived, at):
                self._insert(d, place)
            return
        # A full build into an empty database: rowids are assigned here and rows
        # go in with executemany, several times faster than one statement each.
        conn = self.db()
        records: list[tuple[int, str, int]] = []
        places: list[tuple[int, int, int, int]] = []
        execs: list[tuple[Any, ...]] = []
        events: list[tuple[Any, ...]] = []
        aliases: list[tuple[int, int, int]] = []
        kv: list[tuple[int, Any, int]] = []
        notes: list[tuple[Any, ...]] = []
        withdrawn: list[tuple[int, str]] = []
        arts: list[tuple[int, str]] = []
        rowid = self._next_rowid
        for d, (fid, off, length) in zip(derived, at):
            rowid += 1
            records.append((rowid, d.id, d.kind))
            places.append((rowid, fid, off, length))
            if d.execution is not None:
                execs.append((rowid, *d.execution))
                for dr, pos, h, path, typ, kind, size in d.events:
                    events.append((rowid, dr, pos, self._bulk_art(h, arts), path, typ, kind, size))
                for h, a in d.aliases:
                    aliases.append((rowid, self._bulk_art(h, arts), self._bulk_art(a, arts)))
                kv.extend((self._key(ns, k), v, rowid) for ns, k, v in d.kv)
            elif d.annotation is not None:
                notes.append((rowid, *d.annotation))
            withdrawn += [(rowid, target) for target in d.retracts]
        self.stats["added"] += rowid - self._next_rowid
        self._next_rowid = rowid
        conn.executemany("INSERT INTO records VALUES (?,?,?)", records)
        conn.executemany("INSERT INTO places VALUES (?,?,?,?)", places)
        conn.executemany("INSERT INTO artifacts VALUES (?,?)", arts)
        conn.executemany("INSERT INTO executions VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", execs)
        conn.executemany("INSERT INTO events VALUES (?,?,?,?,?,?,?,?)", events)
        conn.executemany("INSERT INTO aliases VALUES (?,?,?)", aliases)
        conn.executemany("INSERT INTO temp.kv_load VALUES (?,?,?)", kv)
        conn.executemany("INSERT INTO annotations VALUES (?,?,?,?,?)", notes)
        conn.executemany("INSERT INTO retractions VALUES (?,?)", withdrawn)

    def _bulk_art(self, h: str, new: list[tuple[int, str]]) -> int:
        rowid = self._arts.get(h)
        if rowid is None:
            rowid = self._arts[h] = len(self._arts) + 1
            new.append((rowid, h))
        return rowid

    def _close_pool(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool.join()
            self._pool = None

    def _insert(self, d: Derived, place: tuple[int, int, int]) -> None:
        conn = self.db()
        row = conn.execute(
            "INSERT INTO records(id, kind) VALUES (?, ?) ON CONFLICT(id) DO NOTHING RETURNING rowid", (d.id, d.kind)
        ).fetchone()
        if row is None:  # already indexed through another file of this update
            (rowid,) = conn.execute("SELECT rowid FROM records WHERE id = ?", (d.id,)).fetchone()
            conn.execute("INSERT OR IGNORE INTO places VALUES (?, ?, ?, ?)", (rowid, *place))
            return
        rowid = row[0]
        conn.execute("INSERT INTO places VALUES (?, ?, ?, ?)", (rowid, *place))
        self.stats["added"] += 1
        self._insert_rows(rowid, d)

    def _insert_rows(self, rowid: int, d: Derived) -> None:
        """The rows derived from one record (its ``records`` row exists)."""
        conn = self.db()
        if d.retracts:
            conn.executemany("INSERT INTO retractions VALUES (?,?)", [(rowid, target) for target in d.retracts])
        if d.execution is not None:
            conn.execute("INSERT INTO executions VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", (rowid, *d.execution))
            if d.events:
                conn.executemany(
                    "INSERT INTO events VALUES (?,?,?,?,?,?,?,?)",
                    [
                        (rowid, dr, pos, self._art(h), path, typ, kind, size)
                        for dr, pos, h, path, typ, kind, size in d.events
                    ],
                )
            if d.aliases:
                conn.executemany(
                    "INSERT INTO aliases VALUES (?,?,?)", [(rowid, self._art(h), self._art(a)) for h, a in d.aliases]
                )
            if d.kv:
                conn.executemany(
                    "INSERT OR IGNORE INTO kv VALUES (?,?,?)", [(self._key(ns, k), v, rowid) for ns, k, v in d.kv]
                )
        elif d.annotation is not None:
            conn.execute("INSERT INTO annotations VALUES (?,?,?,?,?)", (rowid, *d.annotation))

    def _delete_record(self, rowid: int) -> None:
        conn = self.db()
        row = conn.execute("SELECT kind FROM records WHERE rowid = ?", (rowid,)).fetchone()
        if row is None:
            return
        self.stats["removed"] += 1
        self._drop_rows(rowid, row[0])
        if row[0] == RETRACT:
            conn.execute("DELETE FROM retractions WHERE rec = ?", (rowid,))
        conn.execute("DELETE FROM hidden WHERE rowid = ?", (rowid,))
        conn.execute("DELETE FROM records WHERE rowid = ?", (rowid,))

    def _drop_rows(self, rowid: int, kind: int) -> None:
        """Delete what queries see of an execution or annotation (its ``records`` row stays)."""
        conn = self.db()
        if kind == EXEC:
            values = conn.execute("SELECT params, metrics FROM executions WHERE rowid = ?", (rowid,)).fetchone()
            for ns, k, v in kv_rows(*values) if values else ():
                conn.execute("DELETE FROM kv WHERE k = ? AND val = ? AND exec = ?", (self._key(ns, k), v, rowid))
            conn.execute("DELETE FROM executions WHERE rowid = ?", (rowid,))
            conn.execute("DELETE FROM events WHERE exec = ?", (rowid,))
            conn.execute("DELETE FROM aliases WHERE exec = ?", (rowid,))
        elif kind == NOTE:
            conn.execute("DELETE FROM annotations WHERE rowid = ?", (rowid,))

    def _apply_retractions(self) -> None:
        """Retracted records are in ``records`` (files still hold them) but in no
        table a query reads: they are ``hidden``. A record whose every retraction
        is gone from the scope (say, a checkout of an older commit) is shown again."""
        conn = self.db()
        hide = conn.execute(
            f"SELECT DISTINCT r.rowid, r.kind FROM retractions t JOIN records r ON r.id = t.target "
            f"WHERE r.kind IN ({EXEC}, {NOTE}) AND r.rowid NOT IN (SELECT rowid FROM hidden)"
        ).fetchall()
        for rowid, kind in hide:
            self._drop_rows(rowid, kind)
            conn.execute("INSERT INTO hidden VALUES (?)", (rowid,))
        back = [
            r
            for (r,) in conn.execute(
                "SELECT h.rowid FROM hidden h JOIN records r ON r.rowid = h.rowid "
                "WHERE NOT EXISTS (SELECT 1 FROM retractions t WHERE t.target = r.id)"
            ).fetchall()
        ]
        if back:
            for rowid, (rid, data) in self._read_once(back)[0].items():
                self._insert_rows(rowid, derive(rid, data))
            conn.executemany("DELETE FROM hidden WHERE rowid = ?", [(r,) for r in back])

    def _art(self, h: str) -> int:
        rowid = self._arts.get(h)
        if rowid is None:
            conn = self.db()
            row = conn.execute("SELECT rowid FROM artifacts WHERE hash = ?", (h,)).fetchone()
            if row is None:
                row = conn.execute("INSERT INTO artifacts(hash) VALUES (?) RETURNING rowid", (h,)).fetchone()
            rowid = int(row[0])
            if len(self._arts) > 200_000:
                self._arts.clear()
            self._arts[h] = rowid
        return rowid

    def _key(self, ns: int, name: str) -> int:
        rowid = self._keys.get((ns, name))
        if rowid is None:
            conn = self.db()
            row = conn.execute("SELECT rowid FROM keys WHERE ns = ? AND name = ?", (ns, name)).fetchone()
            if row is None:
                row = conn.execute("INSERT INTO keys(ns, name) VALUES (?, ?) RETURNING rowid", (ns, name)).fetchone()
            rowid = self._keys[(ns, name)] = int(row[0])
        return rowid


def _jobs() -> int:
    try:
        return max(1, int(os.environ.get("CMFGIT_INDEX_JOBS", "")))
    except ValueError:
        return max(1, min(2, os.cpu_count() or 1))


def _is_hex(name: str) -> bool:
    return all(c in "0123456789abcdef" for c in name)


def _meta(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return row[0] if row else None


def _set_meta(conn: sqlite3.Connection, key: str, value: str | None) -> None:
    if value is None:
        conn.execute("DELETE FROM meta WHERE key = ?", (key,))
    else:
        conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))


# -- scopes: which records a read command sees ---------------------------------------

GLOBAL_BRANCH = "cmf/global"


@dataclass(frozen=True)
class Scope:
    """The checkout (default), one revision, every local branch, or the global metadata branch."""

    kind: str = "checkout"  # 'checkout' | 'ref' | 'all-branches' | 'global'
    ref: str | None = None
    remote: str | None = None

    def describe(self) -> str:
        if self.kind == "ref":
            return f"revision {self.ref}"
        if self.kind == "global":
            return f"global metadata branch ({self.remote or 'origin'}/{GLOBAL_BRANCH})"
        return "all local branches" if self.kind == "all-branches" else "the checkout"


CHECKOUT = Scope()


def global_ref(repo: Repo, remote: str | None = None) -> str:
    """The local copy of the global metadata branch, or a clear error saying how to fetch it.
    In a bare (central) repository, its own branch ``cmf/global``."""
    if repo.bare and remote is None:
        local = f"refs/heads/{GLOBAL_BRANCH}"
        if gitutil.rev_parse(repo.root, local) is None:
            raise CmfgitError(
                f"no global metadata branch here ({local}): run 'cmfgit global update' in this repository first"
            )
        return local
    found = dict(gitutil.for_each_ref(repo.root, "refs/remotes", "refs/cmf/remotes"))
    refs = [name for name in found if name.startswith("refs/remotes/") and name.endswith("/" + GLOBAL_BRANCH)]
    views = {name[len("refs/cmf/remotes/") : -len("/global")]: name for name in found if _is_view(name)}
    names = {ref[len("refs/remotes/") : -len(GLOBAL_BRANCH) - 1] for ref in refs} | set(views)
    chosen = remote if remote else "origin" if "origin" in names else next(iter(names)) if len(names) == 1 else None
    if chosen in names:
        assert chosen is not None
        return _freshest(repo, views.get(chosen), f"refs/remotes/{chosen}/{GLOBAL_BRANCH}", found)
    name = remote or "origin"
    raise CmfgitError(
        f"no global metadata branch here (refs/remotes/{name}/{GLOBAL_BRANCH}): "
        f"run 'cmfgit global fetch {name}' or 'cmfgit pull {name}' first"
    )


def _is_view(name: str) -> bool:
    return name.startswith("refs/cmf/remotes/") and name.endswith("/global") and name.count("/") == 4


def _freshest(repo: Repo, view: str | None, tracking: str, found: dict[str, str]) -> str:
    """The union of the site refs that push, pull or 'cmfgit global fetch' left
    (siterefs.view_ref), unless a plain 'git fetch' has since brought a newer cmf/global."""
    if view is None:
        return tracking
    if tracking not in found or found[tracking] == found[view]:
        return view
    newer = gitutil.git_ok(["merge-base", "--is-ancestor", found[tracking], found[view]], repo.root)
    return view if newer else tracking


def _slug(text: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[:40]
    return f"{safe}-{canonical.digest(text.encode())[:8]}"


def index_path(repo: Repo, scope: Scope) -> Path:
    if scope.kind == "checkout":
        return repo.worktree_state_dir / "index.sqlite"
    if scope.kind == "ref":
        return repo.state_dir / "index" / f"ref-{_slug(scope.ref or 'HEAD')}.sqlite"
    if scope.kind == "global":
        return repo.state_dir / "index" / f"global-{_slug(scope.remote or 'default')}.sqlite"
    if scope.kind == "all-branches":
        return repo.worktree_state_dir / "index-all-branches.sqlite"
    raise CmfgitError(f"unknown scope '{scope.kind}'")


def open_index(repo: Repo, scope: Scope = CHECKOUT) -> Index:
    """The index of ``scope``, brought up to date (built first if missing)."""
    index = Index(repo, index_path(repo, scope))
    if scope.kind == "checkout":
        index.refresh_worktree()
    elif scope.kind == "ref":
        ref = scope.ref or "HEAD"
        index.refresh_trees({ref: treeread.objects_tree(repo.root, ref)})
        _prune(index.path.parent, keep=index.path)
    elif scope.kind == "global":
        ref = global_ref(repo, scope.remote)
        index.refresh_trees({ref: treeread.objects_tree(repo.root, ref)})
    else:
        trees = {
            name: treeread.objects_tree(repo.root, name) for name, _ in gitutil.for_each_ref(repo.root, "refs/heads")
        }

        def both(ix: Index) -> bool:
            changed_trees = ix._update_trees(trees)
            changed_checkout = ix._update_worktree()
            return changed_trees or changed_checkout

        index._refresh(both)
    return index


def _prune(directory: Path, keep: Path, limit: int = 8) -> None:
    """Keep the per-revision indexes few: drop the least recently used beyond ``limit``."""
    try:
        found = sorted(directory.glob("ref-*.sqlite"), key=lambda p: p.stat().st_mtime, reverse=True)
    except OSError:
        return
    os.utime(keep) if keep.exists() else None
    for old in found[limit:]:
        if old != keep:
            for suffix in ("", "-wal", "-shm", ".lock"):
                Path(f"{old}{suffix}").unlink(missing_ok=True)


def refresh(repo: Repo, build_missing: bool = True) -> None:
    """Hook point: bring the checkout's index up to date; cheap when nothing changed.

    With ``build_missing=False`` a missing index is left missing (the next read
    command builds it), so a commit hook never pays for a full build.
    """
    index = Index(repo, index_path(repo, CHECKOUT))
    try:
        if not build_missing and not index.open_existing():
            return
        index.refresh_worktree()
    finally:
        index.close()


def add_files(repo: Repo, paths: Sequence[str], known: Mapping[str, Derived] | None = None) -> None:
    """Hook point for writers (``cmfgit pull``, imports): index the checkout files just
    written, if the checkout's index exists (a missing one is left for the next
    read command to build). ``known``: the :func:`derive`-d rows of records the writer
    encoded, by id (they are not parsed again)."""
    index = Index(repo, index_path(repo, CHECKOUT))
    try:
        if index.open_existing():
            index.add_checkout_files(paths, known)
    finally:
        index.close()
