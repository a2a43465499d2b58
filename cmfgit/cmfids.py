"""The CMF ids of records not from CMF: numbered as they arrive in this clone, and kept.

CMF's view of the records (``cmfgit export --format cmf-json``, ``CmfQuery``'s CMF
methods) needs MLMD's integer ids: for contexts, executions, artifacts and types.
Imported CMF data brings its own, and keeps them. Records cmfgit made (log-run, the
API, compat) have none; MLMD would give each object the next id of its store, once,
when it arrives. So does this ledger: one sequence per kind over the whole clone
(every pipeline, every scope), each object numbered the first time an export or a
query meets it and never renumbered, so an execution keeps its id when other
records arrive (a pull, an import), whatever their names or times.

A ledger id never goes to an id an imported CMF object of the same document holds:
new ids start above every CMF id the ledger has seen. The one case that moves an id:
an import, after the ledger numbered a record, of CMF data whose own ids include that
number in the same document (CMF's ids win, as imported data must export as CMF wrote
it). The table lives in ``.git/cmf/cmfids.sqlite`` (shared by the worktrees of the
clone); it is per clone, as an MLMD file is per store. Where it cannot be written (a
read-only clone) ids are numbered afresh per call, as :func:`cmfgit.cmf_export.build`
does alone.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Hashable, Iterable
from pathlib import Path

from cmfgit.repo import Repo

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ids(kind TEXT NOT NULL, key TEXT NOT NULL, id INTEGER NOT NULL,
                               PRIMARY KEY(kind, key)) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS ids_by_id ON ids(kind, id);
CREATE TABLE IF NOT EXISTS floor(kind TEXT PRIMARY KEY, id INTEGER NOT NULL) WITHOUT ROWID;
"""


def text(key: Hashable) -> str:
    """A key as the ledger stores it."""
    if isinstance(key, tuple):
        return "\x1f".join(text(k) for k in key)
    return str(key)


class Ledger:
    """The ids of one clone (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None

    @classmethod
    def of(cls, repo: Repo) -> Ledger:
        return cls(repo.state_dir / "cmfids.sqlite")

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)
            self._conn = conn
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def raise_floors(self, floors: dict[str, int]) -> None:
        """New ids of each kind go above ``floors[kind]`` (the highest CMF id of the scope)."""
        try:
            conn = self._connect()
            conn.execute("BEGIN IMMEDIATE")
            try:
                for kind, floor in floors.items():
                    conn.execute(
                        "INSERT INTO floor(kind, id) VALUES (?, ?)"
                        " ON CONFLICT(kind) DO UPDATE SET id = MAX(id, excluded.id)",
                        (kind, floor),
                    )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except (sqlite3.Error, OSError):
            pass  # as numbering(): without a ledger each document is numbered alone

    def numbering(self, kind: str, keys: list[Hashable], taken: set[int]) -> dict[Hashable, int] | None:
        """:meth:`assign`, or None when the ledger cannot be used (the caller numbers afresh)."""
        try:
            return self.assign(kind, keys, taken)
        except (sqlite3.Error, OSError):
            return None

    def assign(self, kind: str, keys: Iterable[Hashable], taken: set[int]) -> dict[Hashable, int]:
        """The ids of ``keys`` (new ones numbered in the order given), none of them in ``taken``
        (the CMF ids the document keeps); raises ``sqlite3.Error``/``OSError`` if the ledger
        cannot be used."""
        wanted = list(dict.fromkeys(keys))
        conn = self._connect()
        conn.execute("BEGIN IMMEDIATE")  # one numbering at a time in the clone
        try:
            floor = max(taken, default=0)
            row = conn.execute("SELECT id FROM floor WHERE kind = ?", (kind,)).fetchone()
            if row is None or row[0] < floor:
                conn.execute("INSERT OR REPLACE INTO floor(kind, id) VALUES (?, ?)", (kind, floor))
            else:
                floor = row[0]
            known = dict(conn.execute("SELECT key, id FROM ids WHERE kind = ?", (kind,)).fetchall())
            top = max([floor, *known.values()], default=0)
            out: dict[Hashable, int] = {}
            moved: list[str] = []
            fresh: list[tuple[str, int]] = []
            for key in wanted:
                name = text(key)
                number = known.get(name)
                if number is not None and number not in taken:
                    out[key] = number
                    continue
                top += 1
                out[key] = top
                (moved if number is not None else []).append(name)
                fresh.append((name, top))
            if moved:
                conn.executemany("DELETE FROM ids WHERE kind = ? AND key = ?", [(kind, m) for m in moved])
            conn.executemany("INSERT INTO ids(kind, key, id) VALUES (?, ?, ?)", [(kind, k, i) for k, i in fresh])
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return out
