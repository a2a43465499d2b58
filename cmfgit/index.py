"""The derived query index: ``.git/[worktrees/<name>/]cmf/index.sqlite``.

The index is a cache of the records, never committed, always safe to delete:
the next read command rebuilds it. It holds one row per record (its JSON,
compressed) and the tables that make questions fast at a million records:
executions with their pipeline, stage, times and exit code; events (which
execution read or wrote which artifact); the aliases of artifacts; and the
numeric and short string params and metrics, indexed by (key, value) so that
``log --where`` and ``--sort`` never scan everything.

What is indexed is a set of *files* (loose records and packs), each remembered
with a signature and the ids of the records it holds. A record is counted once
per file holding it and disappears when no file does, so a record that is both
loose and packed, or on two branches, is handled exactly. Two kinds of source:

- the checkout (``src = ''``): the files under ``.cmf/objects``, tracked or
  not. A shard directory is listed again only when its mtime changed (loose
  records are immutable and named by their id, so adding or removing one is
  the only change); a pack is read again when its stat signature changed. As
  a safety net keyed by git itself, the tree id of ``HEAD:.cmf/objects`` is
  remembered, and when it moves (pull, merge, checkout, rebase, reset) the
  paths ``git diff-tree`` names are checked again whatever the mtimes say.
- git trees (``src = <label>``, for ``--ref``, ``--all-branches``,
  ``--global``): files keyed by blob id; a changed tree is applied as
  the ``git diff-tree`` between the tree indexed and the new one.

A full build goes to a temp file (no journal), parses records in two
processes, creates the secondary indexes at the end and is renamed into
place. Updates are small transactions in WAL mode under an ``flock``;
readers never lock.
"""

from __future__ import annotations

import json
import marshal
import math
import os
import sqlite3
import time
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cmfgit import canonical, gitutil, pack, treeread
from cmfgit.errors import CmfgitError
from cmfgit.fsutil import TMP_PREFIX, FileLock
from cmfgit.repo import OBJECTS_DIR, Repo

VERSION = "3"
EXECUTION = "cmfgit/execution/1"
ANNOTATION = "cmfgit/annotation/1"
BAD = "!bad"  # schema column of a record that could not be read (fsck names it)
PARAM, METRIC = 0, 1
RACY_NS = 2_000_000_000  # a directory changed this recently may change again within its mtime tick
MAX_TEXT = 200  # longer string values are kept in the record but not indexed
BIG = 1.7976931348623157e308  # infinity in the filter columns (JSON has none)
PARALLEL_MIN = 4000  # records to parse before a process pool pays off
CHUNK = 50_000  # records held in memory between parsing rounds
BATCH = 400

_SCHEMA = """
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT) WITHOUT ROWID;
CREATE TABLE files(src TEXT NOT NULL, path TEXT NOT NULL, sig TEXT NOT NULL, members BLOB,
                   PRIMARY KEY(src, path)) WITHOUT ROWID;
CREATE TABLE dirs(path TEXT PRIMARY KEY, mtime INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE records(rowid INTEGER PRIMARY KEY, id TEXT NOT NULL, refs INTEGER NOT NULL,
                     schema TEXT, doc BLOB);
CREATE TABLE executions(rowid INTEGER PRIMARY KEY, pipeline TEXT, stage TEXT, type TEXT,
                        started_at TEXT, ended_at TEXT, exit_code INTEGER, site TEXT, host TEXT,
                        user TEXT, git_commit TEXT, git_branch TEXT, uuid TEXT, params TEXT, metrics TEXT);
CREATE TABLE artifacts(rowid INTEGER PRIMARY KEY, hash TEXT NOT NULL);
CREATE TABLE events(exec INTEGER NOT NULL, dir INTEGER NOT NULL, pos INTEGER NOT NULL, art INTEGER NOT NULL,
                    path TEXT, type TEXT, kind TEXT, size INTEGER);
CREATE TABLE aliases(exec INTEGER NOT NULL, art INTEGER NOT NULL, alias INTEGER NOT NULL);
CREATE TABLE keys(rowid INTEGER PRIMARY KEY, ns INTEGER NOT NULL, name TEXT NOT NULL, UNIQUE(ns, name));
CREATE TABLE kv(k INTEGER NOT NULL, val NOT NULL, exec INTEGER NOT NULL, PRIMARY KEY(k, val, exec)) WITHOUT ROWID;
CREATE TEMP TABLE kv_load(k INTEGER NOT NULL, val NOT NULL, exec INTEGER NOT NULL);
CREATE TABLE annotations(rowid INTEGER PRIMARY KEY, target TEXT, kind TEXT, at TEXT);
"""

# Created after a full build has inserted everything: sorting once beats
# keeping indexes in order through a million random inserts.
_INDEXES = """
CREATE UNIQUE INDEX IF NOT EXISTS records_id ON records(id);
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
"""


# -- deriving rows from one record (pure; runs in worker processes) ---------------


@dataclass(slots=True)
class Derived:
    """Everything the index stores about one record."""

    id: str
    schema: str
    doc: bytes | None
    execution: tuple[Any, ...] | None = None  # executions columns after rowid
    events: list[tuple[int, int, str, Any, Any, Any, Any]] = field(default_factory=list)
    aliases: list[tuple[str, str]] = field(default_factory=list)  # (hash, alias)
    kv: list[tuple[int, str, Any]] = field(default_factory=list)  # (ns, key, value)
    annotation: tuple[Any, ...] | None = None


# A typical canonical record: the zlib dictionary that makes each stored record
# about a third of its size (records are small; alone, zlib finds little to share).
_ZDICT = b"""command:
- python
cwd: .
ended_at: '2026-01-01T00:00:00.000000Z'
env:
  executable: /usr/bin/python3
  packages: blake3:
  platform: Linux-6.1-x86_64
  python: 3.11.7
  vars: {}
exit_code: 0
git:
  branch: main
  commit:
  dirty: false
  remote: null
  tree:
host:
inputs:
- hash: blake3:
  kind: file
  path: data/
  props: {}
  size:
  type: dataset
metrics:
  acc: 0.
  loss: 0.
outputs:
- hash: blake3:
  kind: file
  path: models/model.pkl
  props: {}
  size:
  type: model
params:
  batch_size: 32
  epochs: 10
  lr: 0.001
  seed: 0
pipeline:
schema: cmfgit/execution/1
site:
stage: train
started_at: '2026-01-01T00:00:00.000000Z'
type: train
user:
uuid:
"""


def pack_doc(data: bytes) -> bytes:
    """A record as the index stores it: its canonical bytes, compressed."""
    c = zlib.compressobj(1, zdict=_ZDICT)
    return c.compress(data) + c.flush()


def unpack_doc(blob: bytes) -> Any:
    """The record stored by :func:`pack_doc`, parsed with the fast loader."""
    d = zlib.decompressobj(zdict=_ZDICT)
    return canonical.load_fast(d.decompress(blob) + d.flush())


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


def derive(rid: str, data: bytes | None, record: Any = None) -> Derived:
    """Rows of one record; a record that cannot be read is marked bad, never fatal.

    ``record`` may be given when already parsed (it must be what ``data`` holds).
    """
    if record is None:
        try:
            if data is None or canonical.digest(data) != rid:
                return Derived(rid, BAD, None)
            record = canonical.load_fast(data, rid)
        except CmfgitError:
            return Derived(rid, BAD, None)
    if not isinstance(record, dict):
        return Derived(rid, BAD, None)
    schema = record.get("schema")
    schema = schema if isinstance(schema, str) else BAD
    d = Derived(rid, schema, pack_doc(data) if data is not None else None)
    if schema == EXECUTION:
        git_info = record.get("git")
        git: dict[str, Any] = git_info if isinstance(git_info, dict) else {}
        exit_code = record.get("exit_code")
        kv: list[tuple[int, str, Any]] = []
        d.execution = (
            _text(record.get("pipeline")),
            _text(record.get("stage")),
            _text(record.get("type")),
            _text(record.get("started_at")),
            _text(record.get("ended_at")),
            exit_code if isinstance(exit_code, int) and not isinstance(exit_code, bool) else None,
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
                h = item.get("hash") if type(item) is dict else None
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
                if "aliases" in item:
                    for alias in item["aliases"] or ():
                        if isinstance(alias, str) and alias != h:
                            d.aliases.append((h, alias))
    elif schema == ANNOTATION:
        d.annotation = (_text(record.get("target")), _text(record.get("kind")), _text(record.get("at")))
    return d


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def derive_many(batch: Sequence[tuple[str, bytes]]) -> list[Derived]:
    return [derive(rid, data) for rid, data in batch]


def derive_marshalled(batch: Sequence[tuple[str, bytes]]) -> bytes:
    """:func:`derive_many` for a worker process: marshal moves plain tuples about
    three times faster than pickle moves the objects."""
    return marshal.dumps(
        [(d.id, d.schema, d.doc, d.execution, d.events, d.aliases, d.kv, d.annotation) for d in derive_many(batch)]
    )


def unmarshal(blob: bytes) -> list[Derived]:
    return [Derived(*fields) for fields in marshal.loads(blob)]


# -- files of a source ----------------------------------------------------------------


@dataclass(frozen=True)
class SourceFile:
    path: str  # relative to .cmf/objects
    sig: str  # blob id, or stat signature in the checkout
    kind: str  # 'loose' or 'pack'


def _members(rids: Iterable[str]) -> bytes:
    return b"".join(bytes.fromhex(r) for r in rids)


def _member_ids(blob: bytes | None) -> list[str]:
    if not blob:
        return []
    return [blob[i : i + 32].hex() for i in range(0, len(blob), 32)]


def _stat_sig(st: os.stat_result) -> str:
    return f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}:{st.st_ctime_ns}"


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
        self._pool: Any = None
        self._seen: set[bytes] = set()  # ids stored by a full build
        self._pending: list[tuple[str, bytes]] = []  # records a full build has yet to parse
        self._next_rowid = 0

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

    # -- refreshing -------------------------------------------------------------

    def refresh_worktree(self) -> None:
        """Bring the index in line with the files of the checkout."""
        self._refresh(lambda ix: ix._update_worktree())

    def refresh_trees(self, trees: dict[str, str | None]) -> None:
        """Bring the index in line with ``trees``: label -> tree id of .cmf/objects (None: no records)."""
        self._refresh(lambda ix: ix._update_trees(trees))

    def _refresh(self, update: Any) -> None:
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
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f"{TMP_PREFIX}{os.getpid()}-{self.path.name}")
        tmp.unlink(missing_ok=True)
        conn = self._connect(tmp)
        try:
            conn.execute("PRAGMA journal_mode = OFF")
            conn.execute("PRAGMA synchronous = OFF")
            conn.execute("PRAGMA cache_size = -262144")
            conn.execute("PRAGMA temp_store = FILE")
            conn.executescript(_SCHEMA)
            conn.execute("BEGIN")
            self.conn = conn
            self._writing = self._bulk = True
            update(self)
            self._flush()
            self._bulk = False
            conn.execute("INSERT OR IGNORE INTO kv SELECT k, val, exec FROM temp.kv_load ORDER BY k, val, exec")
            conn.execute("DROP TABLE temp.kv_load")
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('version', ?)", (VERSION,))
            conn.execute("COMMIT")
            conn.executescript(_INDEXES)
            conn.execute("PRAGMA analysis_limit = 2000")  # sampled statistics: enough for the planner, and quick
            conn.execute("ANALYZE")
            conn.close()
        except BaseException:
            conn.close()
            tmp.unlink(missing_ok=True)
            raise
        finally:
            self.conn = None
            self._writing = self._bulk = False
            self._close_pool()
            self._seen = set()
            self._arts = {}
            self._pending = []
        for suffix in ("-wal", "-shm"):  # a deleted index may have left these behind
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        os.replace(tmp, self.path)

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
        packs_indexed = dict(
            conn.execute("SELECT path, sig FROM files WHERE src = '' AND path >= 'pack/' AND path < 'pack0'").fetchall()
        )
        pack_changes = [
            p
            for p in sorted(set(packs_now) | set(packs_indexed))
            if packs_now.get(p) != packs_indexed.get(p) or p in suspect or packs_now.get(p) == "racy"
        ]
        changed = bool(loose_add or loose_del or pack_changes or head != old_head or dir_updates)
        if not self._writing:
            return changed
        if not changed:
            return False

        for path in loose_del:
            self._remove_file("", path)
        self._add_files("", [(SourceFile(p, "", "loose"), None) for p, _ in loose_add], reader=self._read_worktree)
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
            try:
                records = pack.parse(data, f"{OBJECTS_DIR}/{path}", verify=False)
            except CmfgitError:
                records = {}  # a damaged pack (conflict markers): fsck names it; index what is readable elsewhere
            self._replace_file("", SourceFile(path, sig, "pack"), records)
        for path, mtime in dir_updates.items():
            conn.execute("INSERT OR REPLACE INTO dirs VALUES (?, ?)", (path, mtime))
        _set_meta(conn, "head_tree", head)
        return True

    def _read_worktree(self, src: str, files: list[SourceFile]) -> Iterator[tuple[SourceFile, dict[str, bytes]]]:
        objects = self.repo.objects_dir
        for f in files:
            try:
                with open(objects / f.path, "rb") as fh:
                    data = fh.read()
            except FileNotFoundError:
                continue
            rid = f.path[:2] + f.path[3:-5]
            yield f, {rid: data}

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
            loose = [(SourceFile(p, b, "loose"), None) for p, b in wanted if treeread.classify(p) == "loose"]
            packs = [SourceFile(p, b, "pack") for p, b in wanted if treeread.classify(p) == "pack"]
            self._add_files(label, loose, reader=self._read_blobs)
            for f, records in self._read_blobs(label, packs):
                self._replace_file(label, f, records)
            _set_meta(conn, "tree:" + label, tree or "")
        return True

    def _read_blobs(self, src: str, files: list[SourceFile]) -> Iterator[tuple[SourceFile, dict[str, bytes]]]:
        tfiles = [treeread.TreeFile(f.path, f.sig) for f in files]
        by_path = {f.path: f for f in files}
        for tf, records in treeread.read_files(self.repo.root, tfiles):
            yield by_path[tf.path], records

    # -- applying files ---------------------------------------------------------------

    def _add_files(self, src: str, files: list[tuple[SourceFile, None]], reader: Any) -> None:
        """Index new loose files (each holds one record)."""
        if not files:
            return
        conn = self.db()
        conn.executemany(
            "INSERT OR REPLACE INTO files VALUES (?, ?, ?, NULL)", [(src, f.path, f.sig) for f, _ in files]
        )
        self.stats["files"] += len(files)

        def records() -> Iterator[tuple[str, bytes]]:
            for _f, recs in reader(src, [f for f, _ in files]):
                yield from recs.items()

        self._insert_records(records(), len(files))

    def _replace_file(self, src: str, f: SourceFile, records: dict[str, bytes]) -> None:
        """Index a pack's current content, releasing what its previous content held."""
        conn = self.db()
        row = conn.execute("SELECT members FROM files WHERE src = ? AND path = ?", (src, f.path)).fetchone()
        old = _member_ids(row[0]) if row else []
        conn.execute("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?)", (src, f.path, f.sig, _members(records)))
        self.stats["files"] += 1
        self._insert_records(iter(records.items()), len(records))
        for rid in old:
            self._release(rid)

    def _remove_file(self, src: str, path: str) -> None:
        conn = self.db()
        row = conn.execute("SELECT members FROM files WHERE src = ? AND path = ?", (src, path)).fetchone()
        if row is None:
            return
        conn.execute("DELETE FROM files WHERE src = ? AND path = ?", (src, path))
        if treeread.classify(path) == "loose":
            self._release(path[:2] + path[3:-5])
        else:
            for rid in _member_ids(row[0]):
                self._release(rid)

    # -- records ------------------------------------------------------------------------

    def _insert_records(self, items: Iterator[tuple[str, bytes]], expected: int) -> None:
        conn = self.db()
        if self._bulk:
            # A full build gathers records across files, so that the parsing
            # processes get large batches whatever the size of each pack.
            for item in items:
                self._pending.append(item)
                if len(self._pending) >= CHUNK:
                    self._flush()
            return
        fresh: list[tuple[str, bytes]] = []
        for rid, data in items:
            row = conn.execute("SELECT rowid FROM records WHERE id = ?", (rid,)).fetchone()
            if row is not None:
                conn.execute("UPDATE records SET refs = refs + 1 WHERE rowid = ?", (row[0],))
            else:
                fresh.append((rid, data))
            if len(fresh) >= CHUNK:
                self._store(fresh)
                fresh = []
        self._store(fresh)

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        self._store(pending)

    def _store(self, items: list[tuple[str, bytes]]) -> None:
        if not items:
            return
        self.stats["parsed"] += len(items)
        jobs = _jobs()
        if jobs > 1 and (len(items) >= PARALLEL_MIN or self._pool is not None):
            if self._pool is None:
                import multiprocessing  # only a full build pays for it

                self._pool = multiprocessing.get_context("fork").Pool(jobs)
            batches = [items[i : i + BATCH] for i in range(0, len(items), BATCH)]
            for blob in self._pool.imap(derive_marshalled, batches):
                self._insert_many(unmarshal(blob))
        else:
            for start in range(0, len(items), BATCH):
                self._insert_many(derive_many(items[start : start + BATCH]))

    def _insert_many(self, derived: list[Derived]) -> None:
        if not self._bulk:
            for d in derived:
                self._insert(d)
            return
        # A full build into an empty database: rowids are assigned here and rows
        # go in with executemany, several times faster than one statement each.
        conn = self.db()
        records: list[tuple[Any, ...]] = []
        execs: list[tuple[Any, ...]] = []
        events: list[tuple[Any, ...]] = []
        aliases: list[tuple[int, int, int]] = []
        kv: list[tuple[int, Any, int]] = []
        notes: list[tuple[Any, ...]] = []
        arts: list[tuple[int, str]] = []
        dups: list[tuple[str]] = []
        for d in derived:
            key = bytes.fromhex(d.id)
            if key in self._seen:
                dups.append((d.id,))
                continue
            self._seen.add(key)
            self._next_rowid += 1
            rowid = self._next_rowid
            self.stats["added"] += 1
            records.append((rowid, d.id, 1, d.schema, d.doc))
            if d.execution is not None:
                execs.append((rowid, *d.execution))
                for dr, pos, h, path, typ, kind, size in d.events:
                    events.append((rowid, dr, pos, self._bulk_art(h, arts), path, typ, kind, size))
                for h, a in d.aliases:
                    aliases.append((rowid, self._bulk_art(h, arts), self._bulk_art(a, arts)))
                kv.extend((self._key(ns, k), v, rowid) for ns, k, v in d.kv)
            elif d.annotation is not None:
                notes.append((rowid, *d.annotation))
        conn.executemany("INSERT INTO records VALUES (?,?,?,?,?)", records)
        conn.executemany("INSERT INTO artifacts VALUES (?,?)", arts)
        conn.executemany("INSERT INTO executions VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", execs)
        conn.executemany("INSERT INTO events VALUES (?,?,?,?,?,?,?,?)", events)
        conn.executemany("INSERT INTO aliases VALUES (?,?,?)", aliases)
        conn.executemany("INSERT INTO temp.kv_load VALUES (?,?,?)", kv)
        conn.executemany("INSERT INTO annotations VALUES (?,?,?,?)", notes)
        conn.executemany("UPDATE records SET refs = refs + 1 WHERE id = ?", dups)

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

    def _insert(self, d: Derived) -> None:
        conn = self.db()
        row = conn.execute(
            "INSERT INTO records(id, refs, schema, doc) VALUES (?, 1, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET refs = refs + 1 RETURNING rowid, refs",
            (d.id, d.schema, d.doc),
        ).fetchone()
        rowid, refs = row
        if refs > 1:
            return  # already indexed through another file
        self.stats["added"] += 1
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
            conn.execute("INSERT INTO annotations VALUES (?,?,?,?)", (rowid, *d.annotation))

    def _release(self, rid: str) -> None:
        conn = self.db()
        row = conn.execute("SELECT rowid, refs, schema, doc FROM records WHERE id = ?", (rid,)).fetchone()
        if row is None:
            return
        rowid, refs, schema, doc = row
        if refs > 1:
            conn.execute("UPDATE records SET refs = refs - 1 WHERE rowid = ?", (rowid,))
            return
        self.stats["removed"] += 1
        conn.execute("DELETE FROM records WHERE rowid = ?", (rowid,))
        if schema == EXECUTION:
            d = derive(rid, None, unpack_doc(doc))
            conn.execute("DELETE FROM executions WHERE rowid = ?", (rowid,))
            conn.execute("DELETE FROM events WHERE exec = ?", (rowid,))
            conn.execute("DELETE FROM aliases WHERE exec = ?", (rowid,))
            for ns, k, v in d.kv:
                key = self._key(ns, k)
                conn.execute("DELETE FROM kv WHERE k = ? AND val = ? AND exec = ?", (key, v, rowid))
        elif schema == ANNOTATION:
            conn.execute("DELETE FROM annotations WHERE rowid = ?", (rowid,))

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
    """The local copy of the global metadata branch, or a clear error saying how to fetch it."""
    refs = [name for name, _ in gitutil.for_each_ref(repo.root, "refs/remotes") if name.endswith("/" + GLOBAL_BRANCH)]
    wanted = f"refs/remotes/{remote}/{GLOBAL_BRANCH}" if remote else None
    if wanted and wanted in refs:
        return wanted
    if not wanted:
        if f"refs/remotes/origin/{GLOBAL_BRANCH}" in refs:
            return f"refs/remotes/origin/{GLOBAL_BRANCH}"
        if len(refs) == 1:
            return refs[0]
    name = remote or "origin"
    raise CmfgitError(
        f"no global metadata branch here (refs/remotes/{name}/{GLOBAL_BRANCH}): "
        f"run 'git fetch {name}' or 'cmfgit pull {name}' first"
    )


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
