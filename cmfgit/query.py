"""The query API: questions about recorded metadata, answered from the index.

::

    from cmfgit.query import CmfQuery

    q = CmfQuery()                       # the checkout; or CmfQuery(ref="main"), CmfQuery(scope="global")
    runs = q.executions(where="params.lr >= 0.01 and metrics.acc > 0.9", sort="-metrics.acc", limit=5)
    q.find_producer_executions("models/model.pkl")
    q.executions(stage="train", as_frame=True)   # a pandas DataFrame, if pandas is installed
    # HPE cmflib's CmfQuery methods, answering as cmflib 0.1 does (docs/coming-from-cmf.md):
    q.get_pipeline_stages("wine")        # ['wine/prepare', 'wine/train']
    q.get_all_executions_in_stage("wine/train")             # a DataFrame with cmflib's columns
    q.find_producer_execution("artifacts/model/model.pkl:<md5>:3")   # an MLMD-like Execution

cmfgit's own methods return plain Python data (lists of dicts shaped as ``--json``
prints them, see docs/json.md); ``as_frame=True`` returns a pandas DataFrame
instead (pandas is optional and imported only then). cmflib's methods read
CMF's view of the records (cmfview.py: the CMF export of each pipeline) and
return what cmflib returns: data frames (pandas, the ``cmfgit[cmf]`` extra),
MLMD-like objects, lists. An *artifact* argument is a hash or a unique prefix
of one (``blake3:…``, ``md5:…`` or bare hex), a path as recorded (every
version recorded at that path), or a CMF artifact name (``path:uri``,
``path:uri:<execution id>``...).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from cmfgit import where as where_lang
from cmfgit.cmfview import EXCLUDED_LINEAGE_TYPES, Artifact, Execution, View, artifact_row, execution_row, frame, pandas
from cmfgit.cmfview import parse_name as parse_cmf_name
from cmfgit.errors import AmbiguousPrefix, CmfgitError, ObjectNotFound, UnreadableRecordsWarning, UsageError
from cmfgit.graph import Graph, Lineage, Node
from cmfgit.index import BAD, CHECKOUT, METRIC, PARAM, Index, Scope, load_record, open_index
from cmfgit.reading import as_json
from cmfgit.repo import Repo, open_read_repo
from cmfgit.schema import EXECUTION
from cmfgit.tags import TAG_KIND
from cmfgit.tags import fold as fold_tags

DEFAULT_SORT = "-started_at"
NO_LIMIT = 2**62  # a limit or depth above this is no limit (SQLite integers are 64-bit)
ESTIMATE_CAP = 5000  # a driving index term with fewer matches than this is selective
COUNTS_KEPT = 64  # count_executions answers kept, per query object
PROBE = 2000  # rows looked at for a match before walking an index the terms may all reject
SET_RATIO = 8  # counting: a term's rowids, as a set, beat reading rows when it is at most this many times the driver's


def scope_of(
    ref: str | None = None, all_branches: bool = False, global_: bool = False, remote: str | None = None
) -> Scope:
    """The scope a read command's options select; at most one may be given."""
    chosen = [
        name for name, on in (("--ref", ref is not None), ("--all-branches", all_branches), ("--global", global_)) if on
    ]
    if len(chosen) > 1:
        raise UsageError(f"choose one scope: {' or '.join(chosen)}")
    if ref is not None:
        return Scope("ref", ref=ref)
    if all_branches:
        return Scope("all-branches")
    if global_:
        return Scope("global", remote=remote)
    return CHECKOUT


def unreadable_note(count: int) -> str:
    """What readers say about the records they could not read."""
    return f"{count} record(s) could not be read and are left out; run 'cmfgit fsck'"


class CmfQuery:
    """Read-only questions over one scope's records (see the module docstring)."""

    def __init__(
        self,
        repo: str | os.PathLike[str] | Repo | None = None,
        *,
        scope: Scope | str | None = None,
        ref: str | None = None,
        remote: str | None = None,
        warn: bool = True,
        index: Index | None = None,
        filepath: str | os.PathLike[str] | None = None,
        is_server: bool = False,
    ) -> None:
        if is_server:
            raise UsageError("CmfQuery(is_server=True) reads a cmf-server's Postgres; cmfgit reads the git repository")
        if repo is None and filepath is not None:
            repo = filepath
        if repo is not None and not isinstance(repo, Repo):
            given = Path(repo)
            if given.is_file() or (given.name == "mlmd" and not given.exists()):
                repo = given.parent  # cmflib's CmfQuery("mlmd"): the file in the project directory
        self.repo = repo if isinstance(repo, Repo) else open_read_repo(repo)
        self._cmf_view: View | None = None
        if isinstance(scope, str):
            scope = Scope(scope, ref=ref, remote=remote)
        elif scope is None:
            scope = Scope("ref", ref=ref) if ref is not None else CHECKOUT
        if self.repo.bare and scope.kind in ("checkout", "all-branches"):
            scope = Scope("global", remote=scope.remote)  # no checkout: the central repository's global view
        self.scope = scope
        self._index: Index = index if index is not None else open_index(self.repo, scope)  # (given: firstread.py)
        self.db: sqlite3.Connection = self._index.db()
        self._tags: dict[str, dict[str, Any]] | None = None  # every target's, once asked for
        self._tags_of: dict[str, dict[str, Any]] = {}  # the targets asked for one by one
        self._counts: dict[tuple[str, tuple[Any, ...]], tuple[tuple[Any, int], int]] = {}  # count_executions'
        if warn:  # the read commands say it themselves, after reading (warn=False)
            bad = self.unreadable()
            if bad:
                import warnings

                warnings.warn(unreadable_note(bad), UnreadableRecordsWarning, stacklevel=2)

    def close(self) -> None:
        self._index.close()

    def __enter__(self) -> CmfQuery:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- records ------------------------------------------------------------------

    def record(self, prefix: str) -> tuple[str, dict[str, Any]]:
        """(id, record) for a record id or unique prefix."""
        rid = self.resolve_record(prefix)
        row = self.db.execute("SELECT rowid FROM records WHERE id = ?", (rid,)).fetchone()
        found = self._records([row[0]]) if row is not None else []
        if not found:
            raise CmfgitError(f"record {rid[:12]} could not be read; run 'cmfgit fsck'")
        return found[0]

    def unreadable(self) -> int:
        """How many records of the scope could not be read and are left out (``cmfgit fsck``
        names them): damaged copies with no intact copy elsewhere, text in a pack that is
        no record at all, and records whose bytes match their id but are not valid."""
        (count,) = self.db.execute(
            f"SELECT (SELECT count(*) FROM records WHERE kind = {BAD})"
            " + (SELECT count(DISTINCT d.id) FROM damaged d WHERE d.id IS NOT NULL"
            "    AND NOT EXISTS (SELECT 1 FROM records r WHERE r.id = d.id))"
            " + (SELECT count(*) FROM damaged WHERE id IS NULL)"
        ).fetchone()
        return int(count)

    def _damaged(self, text: str) -> str | None:
        """The id of a damaged record starting with ``text``, if there is one (and no intact copy)."""
        row = self.db.execute("SELECT id FROM damaged WHERE id >= ? AND id < ? LIMIT 1", (text, text + "g")).fetchone()
        return str(row[0]) if row is not None else None

    def resolve_record(self, prefix: str, executions_only: bool = False) -> str:
        """The full id of a record id prefix, or of a relative run (:func:`relative_run`)."""
        relative = relative_run(prefix)
        if relative is not None:
            return self._nth_execution(*relative, text=prefix.strip())
        text = prefix.strip().lower()
        if len(text) < 4 or any(c not in "0123456789abcdef" for c in text):
            raise UsageError(f"'{prefix}' is not a record id (4 to 64 hex digits)")
        sql = "SELECT r.id FROM records r"
        if executions_only:
            sql += " JOIN executions e ON e.rowid = r.rowid"
        where = " WHERE r.id >= ? AND r.id < ? AND r.rowid NOT IN (SELECT rowid FROM hidden) LIMIT 6"
        rows = self.db.execute(sql + where, (text, text + "g")).fetchall()
        if not rows:
            damaged = self._damaged(text)
            if damaged is not None:
                raise CmfgitError(f"record {damaged[:12]} could not be read; run 'cmfgit fsck'")
            withdrawn = self.db.execute(
                "SELECT r.id FROM records r JOIN hidden h ON h.rowid = r.rowid WHERE r.id >= ? AND r.id < ? LIMIT 1",
                (text, text + "g"),
            ).fetchone()
            if withdrawn:
                raise ObjectNotFound(prefix, f"record {withdrawn[0][:12]} was retracted (withdrawn); it is not shown")
            raise ObjectNotFound(prefix)
        if len(rows) > 1:
            raise AmbiguousPrefix(prefix, [r[0] for r in rows])
        return str(rows[0][0])

    def _nth_execution(self, stage: str | None, n: int, text: str) -> str:
        if n < 1:
            raise UsageError(f"'{text}': runs count from 1 (@1 is the newest)")
        rowids = self.execution_rowids(stage=stage, limit=n)
        if len(rowids) < n:
            of = f" of stage '{stage}'" if stage else ""
            raise CmfgitError(f"'{text}': there are only {len(rowids)} execution(s){of}")
        (rid,) = self.db.execute("SELECT id FROM records WHERE rowid = ?", (rowids[n - 1],)).fetchone()
        return str(rid)

    def execution(self, prefix: str) -> dict[str, Any]:
        """One execution as its JSON object (``show --json``)."""
        rid, record = self.record(prefix)
        return self.as_object(rid, record)

    def as_objects(self, found: Sequence[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
        """:meth:`as_object` of many records, their tags read in one go."""
        tags = self.tags_for([rid for rid, _ in found])
        objects = []
        for rid, record in found:
            obj = as_json(rid, record)
            if record.get("schema") == EXECUTION:
                obj["tags"] = dict(tags.get(rid, {}))
            objects.append(obj)
        return objects

    def as_object(self, rid: str, record: dict[str, Any]) -> dict[str, Any]:
        """The stable JSON object of a record (docs/json.md); an execution's carries its ``tags``."""
        return self.as_objects([(rid, record)])[0]

    def _records(self, rowids: Sequence[int]) -> list[tuple[str, dict[str, Any]]]:
        """(id, record) of each rowid, in order, read from the files holding them
        (the index keeps no copy); records that cannot be read are left out."""
        found = self._index.read(rowids)
        return [(rid, load_record(data, rid)) for rid, data in (found[r] for r in rowids if r in found)]

    # -- executions: filter, sort, limit ----------------------------------------------

    def executions(
        self,
        where: str | None = None,
        *,
        pipeline: str | None = None,
        stage: str | None = None,
        sort: str | None = None,
        limit: int | None = None,
        since: str | None = None,
        offset: int = 0,
        as_frame: bool = False,
    ) -> Any:
        """Executions matching the filters, sorted (default newest first), as JSON objects.

        ``since`` keeps the runs started at or after a time, read as ``cmfgit pull --since``
        reads it: ``2026-01-31``, ``2026-01-31T12:00Z`` or relative, ``7d``, ``12h``, ``2w``.
        ``offset`` skips that many of the sorted matches first (a page: ``offset=100, limit=50``;
        :meth:`count_executions` says how many there are)."""
        found = self.execution_records(
            where, pipeline=pipeline, stage=stage, sort=sort, limit=limit, since=since, offset=offset
        )
        return _frame(self.as_objects(found), as_frame)

    def execution_records(
        self,
        where: str | None = None,
        *,
        pipeline: str | None = None,
        stage: str | None = None,
        sort: str | None = None,
        limit: int | None = None,
        since: str | None = None,
        offset: int = 0,
    ) -> list[tuple[str, dict[str, Any]]]:
        """(id, record) of the executions :meth:`executions` selects."""
        found = self.execution_data(
            where, pipeline=pipeline, stage=stage, sort=sort, limit=limit, since=since, offset=offset
        )
        return [(rid, load_record(data, rid)) for rid, data in found]

    def execution_data(
        self,
        where: str | None = None,
        *,
        pipeline: str | None = None,
        stage: str | None = None,
        sort: str | None = None,
        limit: int | None = None,
        since: str | None = None,
        offset: int = 0,
    ) -> list[tuple[str, bytes]]:
        """(id, canonical bytes) of the executions :meth:`executions` selects, not parsed
        (``cmfgit export`` parses them in its worker processes)."""
        options: dict[str, Any] = {"pipeline": pipeline, "stage": stage, "sort": sort, "since": since}
        options.update(limit=limit, offset=offset)
        rowids = self.execution_rowids(where, **options)
        found = self._index.read(rowids)
        if len(found) < len(rowids):  # files changed under the query: the index has caught up, ask again
            rowids = self.execution_rowids(where, **options)
            found = self._index.read(rowids)
        return [found[r] for r in rowids if r in found]

    def execution_rowids(
        self,
        where: str | None = None,
        *,
        pipeline: str | None = None,
        stage: str | None = None,
        sort: str | None = None,
        limit: int | None = None,
        since: str | None = None,
        offset: int = 0,
    ) -> list[int]:
        """Index rowids of the executions :meth:`executions` selects, in order."""
        if limit is not None and limit < 0:
            raise UsageError("the number of executions must be >= 0")
        if offset < 0:
            raise UsageError("the offset must be >= 0")
        if limit is not None and limit > NO_LIMIT:
            limit = None  # more than SQLite can count: all of them
        if offset > NO_LIMIT:
            return []
        terms, node = self._terms(where, pipeline, stage, since)
        key, descending = _sort_key(sort or DEFAULT_SORT)
        if key.ns == "tags" or (node is not None and any(f.ns == "tags" for f in where_lang.fields(node))):
            self._fill_tag_values()
        if node is not None:
            self._check_keys(where or "", node)
        if key.ns and not self._has_key(key.ns, key.name):
            raise UsageError(f"--sort: {self._unknown_key(key)}")
        return _Planner(self.db, terms, key, descending, limit, offset).run()

    def count_executions(
        self,
        where: str | None = None,
        *,
        pipeline: str | None = None,
        stage: str | None = None,
        since: str | None = None,
    ) -> int:
        """How many executions :meth:`executions` would return with these filters and no limit
        (the total a page of them is out of)."""
        terms, node = self._terms(where, pipeline, stage, since)
        if node is not None:
            if any(f.ns == "tags" for f in where_lang.fields(node)):
                self._fill_tag_values()
            self._check_keys(where or "", node)
        # Paging asks the same count again for every page: keep it while the index is unchanged.
        args: list[Any] = []
        key = (" AND ".join(where_lang.to_sql(t, args) for t in terms), tuple(args))
        state = (self.db.execute("PRAGMA data_version").fetchone()[0], self.db.total_changes)
        known = self._counts.get(key)
        if known is not None and known[0] == state:
            return known[1]
        n = _Planner(self.db, terms, where_lang.Field("", "started_at", 0), True, None).count()
        if len(self._counts) >= COUNTS_KEPT:
            self._counts.pop(next(iter(self._counts)))
        self._counts[key] = (state, n)
        return n

    def _terms(
        self, where: str | None, pipeline: str | None, stage: str | None, since: str | None
    ) -> tuple[list[where_lang.Node], where_lang.Node | None]:
        """The top-level terms the filters make (all must hold), and the parsed ``where``."""
        node = where_lang.parse(where) if where is not None and where.strip() else None
        if where is not None and node is None:
            where_lang.parse(where)  # raises: empty expression
        terms: list[where_lang.Node] = where_lang.conjuncts(node) if node is not None else []
        if pipeline is not None:
            terms.append(where_lang.Compare(where_lang.Field("", "pipeline", 0), "==", pipeline, 0))
        if stage is not None:
            terms.append(where_lang.Compare(where_lang.Field("", "stage", 0), "==", stage, 0))
        if since is not None:
            from cmfgit.localview import parse_since

            terms.append(where_lang.Compare(where_lang.Field("", "started_at", 0), ">=", parse_since(since), 0))
        return terms, node

    def _check_keys(self, text: str, node: where_lang.Node) -> None:
        """Unknown params and metrics are errors: most likely a typo."""
        for f in where_lang.fields(node):
            if f.ns and not self._has_key(f.ns, f.name):
                raise where_lang.WhereError(text, f.pos, self._unknown_key(f))

    def _unknown_key(self, f: where_lang.Field) -> str:
        import difflib

        close = difflib.get_close_matches(f.name, self.keys(f.ns), n=1)
        hint = f" (did you mean '{f.ns}.{close[0]}'?)" if close else ""
        return f"no execution has {f.ns[:-1]} '{f.name}'{hint}"

    def _has_key(self, ns: str, name: str) -> bool:
        if ns == "tags":
            return name in self.keys("tags")
        code = PARAM if ns == "params" else METRIC
        if self.db.execute("SELECT 1 FROM keys WHERE ns = ? AND name = ?", (code, name)).fetchone():
            return True
        # Keys whose values are never indexed (lists, long text) are still real keys.
        return bool(
            self.db.execute(
                f"SELECT 1 FROM executions WHERE json_type({ns}, ?) IS NOT NULL LIMIT 1", (where_lang._json_path(name),)
            ).fetchone()
        )

    def keys(self, ns: str = "params") -> list[str]:
        """Every param (or metric, or tag) name that some execution has (an indexed value of)."""
        if ns == "tags":
            return sorted({name for rid, tags in self.tags().items() if len(rid) == 64 for name in tags})
        code = PARAM if ns == "params" else METRIC
        return [r[0] for r in self.db.execute("SELECT name FROM keys WHERE ns = ? ORDER BY name", (code,))]

    # -- tags ----------------------------------------------------------------------------

    def tags(self) -> dict[str, dict[str, Any]]:
        """target (execution id or artifact hash) -> its current tags (cmfgit/tags.py)."""
        if self._tags is None:
            self._tags = fold_tags(self._tag_notes("", []))
        return self._tags

    def _tag_notes(self, cond: str, args: list[Any]) -> list[tuple[str, dict[str, Any]]]:
        """(id, annotation) of the tag annotations matching ``cond``, from the index's
        copy of their bodies (no record is read)."""
        import json

        rows = self.db.execute(
            "SELECT r.id, a.target, a.at, a.tags FROM annotations a JOIN records r ON r.rowid = a.rowid "
            f"WHERE a.kind = ? AND a.tags IS NOT NULL {cond}",
            [TAG_KIND, *args],
        )
        return [(rid, {"kind": TAG_KIND, "target": t, "at": at, "body": json.loads(body)}) for rid, t, at, body in rows]

    def tags_of(self, target: str) -> dict[str, Any]:
        """The current tags of one execution id or artifact hash."""
        return dict(self.tags_for([target]).get(target, {}))

    def tags_for(self, targets: Iterable[str]) -> dict[str, dict[str, Any]]:
        """target -> its current tags, for these targets only: a listing of 20 runs
        reads their annotations, not every tag of a sweep of a million."""
        if self._tags is not None:
            return {t: self._tags[t] for t in targets if t in self._tags}
        wanted = sorted(set(targets) - set(self._tags_of))
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            found = fold_tags(self._tag_notes(f"AND a.target IN ({','.join('?' * len(chunk))})", chunk))
            for target in chunk:
                self._tags_of[target] = found.get(target, {})
        return {t: self._tags_of[t] for t in targets if self._tags_of.get(t)}

    def _fill_tag_values(self) -> None:
        """The temporary table ``--where tags.KEY`` and ``--sort tags.KEY`` read,
        indexed both ways: by execution (a residual term) and by name and value
        (a driving term)."""
        db = self.db
        db.execute(
            "CREATE TEMP TABLE IF NOT EXISTS tag_values(exec INTEGER, name TEXT, val, PRIMARY KEY(exec, name))"
            " WITHOUT ROWID"
        )
        db.execute("CREATE INDEX IF NOT EXISTS temp.tag_values_nv ON tag_values(name, val)")
        db.execute("CREATE TEMP TABLE IF NOT EXISTS tag_targets(target TEXT, name TEXT, val)")
        db.execute("DELETE FROM tag_values")
        db.execute("DELETE FROM tag_targets")
        db.executemany(
            "INSERT INTO tag_targets VALUES (?, ?, ?)",
            ((target, name, value) for target, tags in self.tags().items() for name, value in tags.items()),
        )
        db.execute(
            "INSERT OR REPLACE INTO tag_values"
            " SELECT r.rowid, t.name, t.val FROM tag_targets t JOIN records r ON r.id = t.target"
        )

    # -- pipelines -----------------------------------------------------------------------

    def pipelines(self) -> list[dict[str, Any]]:
        """Pipelines with their stages, counts and last run (``pipelines --json``)."""
        rows = self.db.execute(
            "SELECT pipeline, stage, count(*), max(started_at), sum(exit_code != 0) FROM executions "
            "GROUP BY pipeline, stage ORDER BY pipeline, stage"
        ).fetchall()
        out: dict[str, dict[str, Any]] = {}
        for pipeline, stage, count, last, failed in rows:
            p = out.setdefault(
                pipeline, {"pipeline": pipeline, "executions": 0, "failed": 0, "last_run": None, "stages": []}
            )
            p["executions"] += count
            p["failed"] += failed or 0
            p["last_run"] = max(filter(None, [p["last_run"], last]), default=None)
            p["stages"].append({"stage": stage, "executions": count, "failed": failed or 0, "last_run": last})
        return list(out.values())

    # -- artifacts -------------------------------------------------------------------------

    def artifacts(
        self,
        type: str | None = None,
        pipeline: str | None = None,
        limit: int | None = None,
        hashes: Iterable[str] | None = None,
        as_frame: bool = False,
    ) -> Any:
        """Artifacts with their paths, producers and consumers, most recently used first."""
        cond, args = ["1"], []
        if type is not None:
            cond.append("ev.type = ?")
            args.append(type)
        if pipeline is not None:
            cond.append("e.pipeline = ?")
            args.append(pipeline)
        if hashes is not None:
            wanted = sorted(set(hashes))
            if not wanted:
                return _frame([], as_frame)
            cond.append(f"a.hash IN ({','.join('?' * len(wanted))})")
            args.extend(wanted)
        arts = self._newest_artifacts(type, pipeline, limit) if hashes is None and limit is not None else None
        if arts is None:
            sql = (
                "SELECT ev.art FROM events ev JOIN executions e ON e.rowid = ev.exec "
                "JOIN artifacts a ON a.rowid = ev.art "
                f"WHERE {' AND '.join(cond)} GROUP BY ev.art ORDER BY max(e.started_at) DESC, a.hash"
            )
            if limit is not None and limit <= NO_LIMIT:
                sql += f" LIMIT {int(limit)}"
            arts = [r[0] for r in self.db.execute(sql, args)]
        return _frame(self._artifact_objects(arts), as_frame)

    def _newest_artifacts(self, type: str | None, pipeline: str | None, limit: int) -> list[int] | None:
        """The ``limit`` most recently used artifacts, walking executions newest first
        (the grouped query sorts every event: ~1 s at 100,000 executions); None when
        fewer than ``limit`` are found among the executions with a start time."""
        if limit <= 0:
            return None
        found: dict[int, tuple[str, str]] = {}  # art -> (its newest start, hash)
        where = "e.started_at IS NOT NULL" + (" AND e.pipeline = ?" if pipeline is not None else "")
        cursor = self.db.execute(
            f"SELECT e.rowid, e.started_at FROM executions e WHERE {where} ORDER BY e.started_at DESC",
            [pipeline] if pipeline is not None else [],
        )
        while True:
            batch = cursor.fetchmany(256)
            if not batch:
                return None  # (the rest have no start time: the grouped query orders them)
            starts = dict(batch)
            marks = ",".join("?" * len(batch))
            events = self.db.execute(
                "SELECT ev.exec, ev.art, a.hash FROM events ev JOIN artifacts a ON a.rowid = ev.art "
                f"WHERE ev.exec IN ({marks})" + (" AND ev.type = ?" if type is not None else ""),
                [r for r, _ in batch] + ([type] if type is not None else []),
            )
            for exe, art, h in events:
                if art not in found or starts[exe] > found[art][0]:
                    found[art] = (starts[exe], h)
            if len(found) >= limit:
                by_hash = sorted(found, key=lambda a: found[a][1])
                ranked = sorted(by_hash, key=lambda a: found[a][0], reverse=True)[:limit]  # (a stable sort)
                if batch[-1][1] < found[ranked[-1]][0]:
                    return ranked  # every artifact not seen yet was last used before these

    def _artifact_objects(self, arts: Sequence[int]) -> list[dict[str, Any]]:
        objects: dict[int, dict[str, Any]] = {}
        for start in range(0, len(arts), 500):
            chunk = list(arts[start : start + 500])
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(
                "SELECT ev.art, a.hash, ev.dir, ev.path, ev.type, ev.kind, ev.size, r.id, e.pipeline, e.started_at "
                "FROM events ev JOIN artifacts a ON a.rowid = ev.art JOIN executions e ON e.rowid = ev.exec "
                f"JOIN records r ON r.rowid = ev.exec WHERE ev.art IN ({marks}) ORDER BY e.started_at, r.id",
                chunk,
            )
            for art, h, direction, path, typ, kind, size, rid, pipeline, started in rows:
                o = objects.setdefault(
                    art,
                    {
                        "hash": h,
                        "aliases": set(),
                        "type": typ,
                        "kind": kind,
                        "size": size,
                        "paths": [],
                        "pipelines": [],
                        "producers": [],
                        "consumers": [],
                        "first_seen": started,
                        "last_seen": started,
                    },
                )
                o["type"], o["kind"], o["last_seen"] = typ, kind, started
                if size is not None:
                    o["size"] = size
                if path and path not in o["paths"]:
                    o["paths"].append(path)
                if pipeline not in o["pipelines"]:
                    o["pipelines"].append(pipeline)
                (o["producers"] if direction == 1 else o["consumers"]).append(rid)
            for a, alias in self.db.execute(
                "SELECT x.hash, y.hash FROM aliases al JOIN artifacts x ON x.rowid = al.art "
                f"JOIN artifacts y ON y.rowid = al.alias WHERE al.art IN ({marks}) OR al.alias IN ({marks})",
                chunk + chunk,
            ):
                for o in objects.values():
                    if o["hash"] == a:
                        o["aliases"].add(alias)
                    elif o["hash"] == alias:
                        o["aliases"].add(a)
        out = []
        for art in arts:
            if art in objects:
                o = objects[art]
                o["aliases"] = sorted(o["aliases"])
                o["producers"] = list(dict.fromkeys(o["producers"]))
                o["consumers"] = list(dict.fromkeys(o["consumers"]))
                out.append(o)
        tags = self.tags_for([o["hash"] for o in out])
        for o in out:
            o["tags"] = dict(tags.get(o["hash"], {}))
        return out

    def artifact_events(
        self,
        executions: Iterable[str] | None = None,
        hashes: Iterable[str] | None = None,
        paths: Iterable[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Every event (an execution read or wrote an artifact), oldest run first:
        ``{execution, direction ('input'|'output'), path, hash, kind, type, size,
        started_at}``. Narrowed to these executions (full ids), hashes or paths when given."""
        cond: list[str] = []
        args: list[Any] = []
        for column, values in (("r.id", executions), ("a.hash", hashes), ("ev.path", paths)):
            if values is not None:
                wanted = sorted(set(values))
                if not wanted:
                    return []
                # A temp table, not IN (...): a sweep may name a million runs.
                table = f"want_{column.replace('.', '_')}"
                self.db.execute(f"CREATE TEMP TABLE IF NOT EXISTS {table}(v TEXT PRIMARY KEY) WITHOUT ROWID")
                self.db.execute(f"DELETE FROM {table}")
                self.db.executemany(f"INSERT OR IGNORE INTO {table} VALUES (?)", ((v,) for v in wanted))
                cond.append(f"{column} IN (SELECT v FROM {table})")
        sql = (
            "SELECT r.id, ev.dir, ev.path, a.hash, ev.kind, ev.type, ev.size, e.started_at FROM events ev "
            "JOIN artifacts a ON a.rowid = ev.art JOIN executions e ON e.rowid = ev.exec "
            "JOIN records r ON r.rowid = ev.exec"
            + (f" WHERE {' AND '.join(cond)}" if cond else "")
            + " ORDER BY e.started_at, r.id, ev.dir, ev.pos"
        )
        return [
            {
                "execution": rid,
                "direction": "output" if direction == 1 else "input",
                "path": path,
                "hash": h,
                "kind": kind,
                "type": typ,
                "size": size,
                "started_at": started,
            }
            for rid, direction, path, h, kind, typ, size, started in self.db.execute(sql, args)
        ]

    def resolve_artifacts(self, name: str) -> list[str]:
        """Hashes that ``name`` means: a hash or prefix, a recorded path, or a CMF artifact name
        (``path:uri`` and the longer names of :func:`cmfgit.cmfview.parse_name`)."""
        text = name.strip()
        low = text.lower()
        for algo in ("blake3:", "md5:"):
            if low.startswith(algo):
                return self._hash_prefix(low)
        if len(low) >= 4 and all(c in "0123456789abcdef" for c in low):
            found = self._hash_prefix(low, quiet=True)
            if found:
                return found
        rows = self.db.execute(
            "SELECT DISTINCT a.hash FROM events ev JOIN artifacts a ON a.rowid = ev.art "
            "WHERE ev.path = ? ORDER BY a.hash",
            (text,),
        ).fetchall()
        if rows:
            return [r[0] for r in rows]
        cmf = parse_cmf_name(text)  # CMF's 'path:uri', 'path:uri:<execution id>', 'metrics:<uuid>:<id>'...
        if cmf is not None:
            found = [h for h in self._hash_prefix(cmf.hash, quiet=True) if h == cmf.hash]
            if found:
                return found
        raise CmfgitError(f"no artifact matches '{name}' (give a hash, a hash prefix or a recorded path)")

    def _hash_prefix(self, prefix: str, quiet: bool = False) -> list[str]:
        if ":" in prefix:
            rows = self.db.execute(
                "SELECT hash FROM artifacts WHERE hash >= ? AND hash < ? LIMIT 50", (prefix, prefix + "\x7f")
            ).fetchall()
        else:
            rows = []
            for algo in ("blake3:", "md5:"):
                p = algo + prefix
                rows += self.db.execute(
                    "SELECT hash FROM artifacts WHERE hash >= ? AND hash < ? LIMIT 50", (p, p + "\x7f")
                ).fetchall()
        hashes = sorted({r[0] for r in rows if self._referenced(r[0])})
        if not hashes and not quiet:
            raise CmfgitError(f"no artifact matches '{prefix}'")
        if len(hashes) > 1:
            # One artifact may be known by two hashes (aliases); several artifacts is ambiguous.
            graph = self._graph_for_hashes(hashes)
            keys = {graph.canonical(h) or h for h in hashes}
            if len(keys) > 1:
                shown = ", ".join(k[:19] for k in sorted(keys)[:5])
                raise CmfgitError(f"artifact prefix '{prefix}' is ambiguous: {shown}")
        return hashes

    def _referenced(self, h: str) -> bool:
        return bool(
            self.db.execute(
                "SELECT 1 FROM events ev JOIN artifacts a ON a.rowid = ev.art WHERE a.hash = ? LIMIT 1", (h,)
            ).fetchone()
            or self.db.execute(
                "SELECT 1 FROM aliases al JOIN artifacts a ON a.rowid = al.alias WHERE a.hash = ? LIMIT 1", (h,)
            ).fetchone()
        )

    def get_all_artifacts_by_type(self, artifact_type: str, as_frame: bool = False) -> Any:
        return self.artifacts(type=artifact_type, as_frame=as_frame)

    def find_producer_executions(self, artifact_name: str) -> list[dict[str, Any]]:
        """Every execution that wrote the artifact (for a path, any version), earliest first."""
        return [self.execution(rid) for rid in self._producers(artifact_name)]

    def _producers(self, artifact_name: str) -> list[str]:
        hashes = self.resolve_artifacts(artifact_name)
        graph = self.lineage_graph(hashes, "up", 1)
        rids = {rid for key in self._keys_of(graph, hashes) for rid in graph.producers.get(key, [])}
        return sorted(rids, key=lambda rid: _start_order(graph, rid))

    # -- lineage ----------------------------------------------------------------------------

    def lineage(self, roots: Sequence[Node], direction: str = "up", depth: int | None = None) -> tuple[Lineage, Graph]:
        """The lineage of ``roots`` (artifact hashes or execution ids) and the graph it came from."""
        hashes = [n.key for n in roots if n.kind == "artifact"]
        execs = [n.key for n in roots if n.kind == "execution"]
        graph = self.lineage_graph(hashes, direction, depth, execs)
        self._describe_artifacts(graph, hashes)
        return graph.lineage(roots, direction, depth), graph

    def _describe_artifacts(self, graph: Graph, hashes: Sequence[str]) -> None:
        """Add ``hashes`` to ``graph`` with the paths and types any record gave them.

        A root nobody consumed has no record in a downward walk; without this its
        picture would have no path to show."""
        for h in hashes:
            graph.add_artifact(h)
            for path, typ in self.db.execute(
                "SELECT DISTINCT ev.path, ev.type FROM artifacts a JOIN events ev ON ev.art = a.rowid "
                "WHERE a.hash = ? LIMIT 50",
                (h,),
            ):
                graph.add_artifact(h, path, typ)

    def lineage_graph(
        self, hashes: Sequence[str], direction: str, depth: int | None, exec_ids: Sequence[str] = ()
    ) -> Graph:
        """The part of the graph reachable from the roots, loaded from the index with recursive CTEs."""
        ways = ("up", "down") if direction == "both" else (direction,)
        rowids: set[int] = set()
        for way in ways:
            rowids |= self._walk(hashes, exec_ids, way == "up", depth)
        graph = Graph()
        for record in self._lineage_records(sorted(rowids)):
            graph.add(record["id"], record)
        for a, b in self._alias_pairs(hashes, rowids):
            graph.add_alias(a, b)
        return graph

    def _walk(self, hashes: Sequence[str], exec_ids: Sequence[str], up: bool, depth: int | None) -> set[int]:
        to_exec, to_art = (1, 0) if up else (0, 1)
        self.db.execute("CREATE TEMP TABLE IF NOT EXISTS lineage_roots(kind INTEGER, id INTEGER)")
        self.db.execute("DELETE FROM lineage_roots")
        for h in hashes:
            self.db.execute("INSERT INTO lineage_roots SELECT 0, rowid FROM artifacts WHERE hash = ?", (h,))
        for rid in exec_ids:
            self.db.execute("INSERT INTO lineage_roots SELECT 1, rowid FROM records WHERE id = ?", (rid,))
        limited = depth is not None and depth <= NO_LIMIT
        # Each step looks rows up through correlated subqueries on purpose: as plain
        # joins, SQLite (3.38+) builds a Bloom filter over all of ``events`` at every
        # step, a full scan that made a three-node lineage take 100 ms at 100k records.
        step = "w.d + 1" if limited else "0"
        stop = "AND w.d < :depth" if limited else ""
        sql = f"""
        WITH RECURSIVE walk(kind, id, d) AS (
            SELECT kind, id, 0 FROM lineage_roots
            UNION
            SELECT 1, ev.exec, {step} FROM walk w, events ev WHERE w.kind = 0 {stop}
                AND ev.rowid IN (SELECT rowid FROM events WHERE art = w.id AND dir = {to_exec})
            UNION
            SELECT 0, ev.art, w.d FROM walk w, events ev WHERE w.kind = 1
                AND ev.rowid IN (SELECT rowid FROM events WHERE exec = w.id AND dir = {to_art})
            UNION
            SELECT 0, al.alias, w.d FROM walk w, aliases al WHERE w.kind = 0
                AND al.rowid IN (SELECT rowid FROM aliases WHERE art = w.id)
            UNION
            SELECT 0, al.art, w.d FROM walk w, aliases al WHERE w.kind = 0
                AND al.rowid IN (SELECT rowid FROM aliases WHERE alias = w.id)
        )
        SELECT DISTINCT id FROM walk WHERE kind = 1
        """
        return {r[0] for r in self.db.execute(sql, {"depth": depth} if limited else {})}

    def _lineage_records(self, rowids: Sequence[int]) -> Iterable[dict[str, Any]]:
        """Minimal execution records (summary and events) for building a Graph."""
        for start in range(0, len(rowids), 500):
            chunk = list(rowids[start : start + 500])
            marks = ",".join("?" * len(chunk))
            records: dict[int, dict[str, Any]] = {}
            for row in self.db.execute(
                "SELECT e.rowid, r.id, e.pipeline, e.stage, e.type, e.started_at, e.ended_at, e.exit_code, e.site "
                f"FROM executions e JOIN records r ON r.rowid = e.rowid WHERE e.rowid IN ({marks})",
                chunk,
            ):
                rowid, rid, pipeline, stage, typ, started, ended, code, site = row
                records[rowid] = {
                    "schema": EXECUTION,
                    "id": rid,
                    "pipeline": pipeline,
                    "stage": stage,
                    "type": typ,
                    "started_at": started,
                    "ended_at": ended,
                    "exit_code": code,
                    "site": site,
                    "inputs": [],
                    "outputs": [],
                }
            for rowid, direction, h, path, typ, kind, size in self.db.execute(
                "SELECT ev.exec, ev.dir, a.hash, ev.path, ev.type, ev.kind, ev.size FROM events ev "
                f"JOIN artifacts a ON a.rowid = ev.art WHERE ev.exec IN ({marks}) ORDER BY ev.exec, ev.dir, ev.pos",
                chunk,
            ):
                item = {"hash": h, "path": path, "type": typ, "kind": kind, "size": size}
                records[rowid]["outputs" if direction else "inputs"].append(item)
            yield from records.values()

    def _alias_pairs(self, hashes: Sequence[str], rowids: set[int]) -> list[tuple[str, str]]:
        """Alias links touching the roots or any artifact of the executions found."""
        arts = (
            {
                r[0]
                for r in self.db.execute(
                    f"SELECT rowid FROM artifacts WHERE hash IN ({','.join('?' * len(hashes))})", list(hashes)
                )
            }
            if hashes
            else set()
        )
        ids = sorted(rowids)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            arts |= {
                r[0]
                for r in self.db.execute(f"SELECT art FROM events WHERE exec IN ({','.join('?' * len(chunk))})", chunk)
            }
        pairs: list[tuple[str, str]] = []
        found = sorted(arts)
        for start in range(0, len(found), 400):
            chunk = found[start : start + 400]
            marks = ",".join("?" * len(chunk))
            pairs += self.db.execute(
                "SELECT x.hash, y.hash FROM aliases al JOIN artifacts x ON x.rowid = al.art "
                f"JOIN artifacts y ON y.rowid = al.alias WHERE al.art IN ({marks}) OR al.alias IN ({marks})",
                chunk + chunk,
            ).fetchall()
        return pairs

    def _graph_for_hashes(self, hashes: Sequence[str]) -> Graph:
        graph = Graph()
        self._describe_artifacts(graph, hashes)
        for a, b in self._alias_pairs(hashes, set()):
            graph.add_alias(a, b)
        return graph

    @staticmethod
    def _keys_of(graph: Graph, hashes: Sequence[str]) -> list[str]:
        return list(dict.fromkeys(k for k in (graph.canonical(h) for h in hashes) if k))

    def _artifact_lineage(
        self, artifact_name: str, direction: str, depth: int | None
    ) -> tuple[Lineage, Graph, list[str]]:
        hashes = self.resolve_artifacts(artifact_name)
        roots = [Node("artifact", h) for h in hashes]
        lineage, graph = self.lineage(roots, direction, depth)
        return lineage, graph, self._keys_of(graph, hashes)

    def _related_executions(self, artifact_name: str, direction: str, depth: int | None, as_frame: bool) -> Any:
        lineage, graph, _keys = self._artifact_lineage(artifact_name, direction, depth)
        levels = lineage.levels  # nearest first; then in start order, then by id
        ordered = sorted(lineage.executions(), key=lambda r: (levels[Node("execution", r)], *_start_order(graph, r)))
        return _frame([self.execution(rid) for rid in ordered], as_frame)

    def get_one_hop_child_executions(self, artifact_name: str, as_frame: bool = False) -> Any:
        """The executions that read the artifact (cmfgit's, as JSON objects; cmflib has no such method)."""
        return self._related_executions(artifact_name, "down", 1, as_frame)

    def get_all_child_executions(self, artifact_name: str, as_frame: bool = False) -> Any:
        """Every execution downstream of the artifact, nearest first (cmfgit's, as JSON objects)."""
        return self._related_executions(artifact_name, "down", None, as_frame)

    # -- metrics --------------------------------------------------------------------------------

    def get_step_metrics(self, execution_id: str, as_frame: bool = False) -> Any:
        """Per-step metrics of an execution: rows of {name, step, value}."""
        rid, record = self.record(self.resolve_record(execution_id, executions_only=True))
        rows = [
            {"name": name, "step": pair[0], "value": pair[1]}
            for name, series in sorted((record.get("step_metrics") or {}).items())
            for pair in series
        ]
        return _frame(rows, as_frame)

    # -- CMF's questions, answered as cmflib 0.1's CmfQuery answers them -------------------------
    #
    # Over the MLMD view of the scope (cmfview.View: the CMF export of every pipeline), with the
    # export's ids, names and types. Data frames need pandas (the cmfgit[cmf] extra). An artifact
    # name is CMF's full name; a path, hash or hash prefix (cmfgit's names) also works where
    # cmflib would find nothing. An execution id is the MLMD id or a cmfgit record id (prefix).

    def cmf_view(self) -> View:
        """The MLMD view the CMF methods read (built once per CmfQuery)."""
        if self._cmf_view is None:
            from cmfgit import cmf_export

            by_pipeline: dict[str, list[tuple[str, dict[str, Any]]]] = {}
            for rid, record in self.execution_records(sort="started_at"):
                by_pipeline.setdefault(str(record.get("pipeline")), []).append((rid, record))
            uuids: dict[tuple[str, str], list[str]] = {}
            for name, found in by_pipeline.items():
                for rid, record in found:
                    uuids.setdefault((name, str(record.get("uuid"))), []).append(rid)
            from cmfgit.cmfids import Ledger

            ledger = Ledger.of(self.repo)  # the clone's ids: the same the export gives
            try:
                ledger.raise_floors(cmf_export.cmf_floors(r for found in by_pipeline.values() for r in found))
                docs = [
                    cmf_export.build(found, name, numbering=ledger.numbering)
                    for name, found in sorted(by_pipeline.items())
                ]
            finally:
                ledger.close()
            self._cmf_view = View(docs, uuids)
        return self._cmf_view

    def _cmf_artifacts(self, name: str) -> list[Artifact]:
        """The artifacts ``name`` means: CMF's exact name, else cmfgit's (lowest id first)."""
        view = self.cmf_view()
        if name.strip() in view.by_name:
            return [view.by_name[name.strip()]]
        try:
            hashes = self.resolve_artifacts(name)
        except CmfgitError:
            return []
        known = set(hashes) | {h for pair in self._alias_pairs(hashes, set()) for h in pair}
        return [a for a in view.artifacts.values() if a.hash in known]

    def _cmf_artifact_id(self, name: str) -> int | None:
        found = self._cmf_artifacts(name)
        return found[0].id if found else None

    def _cmf_execution_ids(self, ids: Iterable[int | str]) -> list[int]:
        """MLMD ids as given; a cmfgit record id (or prefix) becomes its execution's MLMD id."""
        out: list[int] = []
        view = self.cmf_view()
        for i in ids:
            if isinstance(i, int) or (isinstance(i, str) and i.strip().isdigit() and len(i.strip()) < 4):
                out.append(int(i))
                continue
            rid = self.resolve_record(str(i), executions_only=True)
            out += [e.id for e in view.executions.values() if e.record_id == rid]
        return out

    @staticmethod
    def _ids(ids: int | str | Iterable[int | str]) -> list[int | str]:
        return [ids] if isinstance(ids, (int, str)) else list(ids)

    def get_pipeline_names(self) -> list[str]:
        return [p.name for p in self.cmf_view().pipelines.values()]

    def get_pipeline_id(self, pipeline_name: str) -> int:
        """The pipeline's MLMD id (the id of its export), or -1 if there is no such pipeline."""
        found = self.cmf_view().pipeline(pipeline_name)
        return found.id if found is not None else -1

    def get_pipeline_stages(self, pipeline_name: str) -> list[str]:
        """The stages' CMF names, ``<pipeline>/<stage>``, in MLMD id order."""
        view = self.cmf_view()
        return [s.name for p in view.pipelines.values() if p.name == pipeline_name for s in view.stages_of(p.id)]

    def _stages_named(self, stage_name: str) -> list[int]:
        """Stage ids of the full name ``<pipeline>/<stage>`` (as cmflib, a short name matches nothing)."""
        return [s.id for s in self.cmf_view().stages.values() if s.name == stage_name]

    def get_all_exe_in_stage(self, stage_name: str) -> list[Execution]:
        """The executions (objects) of the stage named ``<pipeline>/<stage>``."""
        stages = self._stages_named(stage_name)
        return self.cmf_view().executions_of(stages[0]) if stages else []

    def get_all_executions_in_stage(self, stage_name: str) -> Any:
        """A data frame of the executions of the stage named ``<pipeline>/<stage>``."""
        view = self.cmf_view()
        return frame([execution_row(e) for sid in self._stages_named(stage_name) for e in view.executions_of(sid)])

    def get_all_executions_by_stage(self, stage_id: int, execution_uuid: str | None = None) -> list[Execution]:
        found = self.cmf_view().executions_of(stage_id)
        if execution_uuid is None:
            return found
        return [e for e in found if execution_uuid in str(e.properties.get("Execution_uuid", "")).split(",")]

    def get_all_executions_in_pipeline(self, pipeline_name: str) -> Any:
        view = self.cmf_view()
        pid = self.get_pipeline_id(pipeline_name)
        return frame([execution_row(e) for s in view.stages_of(pid) for e in view.executions_of(s.id)])

    def get_all_executions_by_ids_list(self, exe_ids: Iterable[int | str]) -> Any:
        found = self.cmf_view().executions_by_id(self._cmf_execution_ids(self._ids(exe_ids)))
        return frame([execution_row(e, with_name=False) for e in found])

    def get_executions_with_execution_ids(self, exe_ids: Iterable[int | str]) -> Any:
        """``id``, ``Execution_type_name`` and ``Execution_uuid`` of the executions."""
        found = self.cmf_view().executions_by_id(self._cmf_execution_ids(self._ids(exe_ids)))
        return frame([execution_row(e, with_name=False) | {"id": e.id} for e in found], _EXECUTION_ID_COLUMNS)

    def get_artifact_df(self, artifact: Artifact, d: dict[str, Any] | None = None) -> Any:
        """One artifact as a one-row data frame (columns in cmflib's order, not sorted)."""
        return pandas().DataFrame(artifact_row(artifact, d), index=[0])

    def get_all_artifacts(self) -> list[str]:
        """Every artifact's CMF name (``path:uri``, ``path:uri:<execution id>``...), in MLMD id order."""
        return [a.name for a in self.cmf_view().artifacts.values()]

    get_artifact_names = get_all_artifacts

    def get_artifact(self, name: str) -> Any:
        """A one-row data frame of the artifact, or None."""
        found = self._cmf_artifacts(name)
        return self.get_artifact_df(found[0]) if found else None

    def get_all_artifact_types(self) -> list[str]:
        """CMF's artifact type names (``Dataset``, ``Model``...), in MLMD type id order."""
        types = self.cmf_view().artifact_types
        return sorted(types, key=lambda t: (types[t], t))

    def get_all_artifacts_by_context(self, pipeline_name: str) -> Any:
        """The artifacts of each stage of the pipeline, as MLMD attributes them: an artifact
        belongs to the stage whose execution logged it first."""
        view = self.cmf_view()
        rows = []
        for stage in view.stages_of(self.get_pipeline_id(pipeline_name)):
            rows += [artifact_row(a) for a in view.attributed(stage.id)]
        return frame(rows)

    def get_all_artifacts_by_ids_list(self, artifact_ids: Iterable[int | str]) -> Any:
        ids: list[int] = []
        for i in self._ids(artifact_ids):
            ids += [i] if isinstance(i, int) else [a.id for a in self._cmf_artifacts(i)]
        return frame([artifact_row(a) for a in self.cmf_view().artifacts_by_id(ids)])

    def get_all_artifacts_for_execution(self, execution_id: int | str) -> Any:
        """The execution's artifacts, each with ``event`` INPUT or OUTPUT, in event order."""
        view = self.cmf_view()
        rows = [
            artifact_row(view.artifacts[ev.artifact_id], {"event": "INPUT" if ev.is_input else "OUTPUT"})
            for ev in view.events_of_executions(self._cmf_execution_ids([execution_id]))
        ]
        return frame(rows)

    def get_all_artifacts_for_executions(self, execution_ids: Iterable[int | str]) -> Any:
        view = self.cmf_view()
        ids = {ev.artifact_id for ev in view.events_of_executions(self._cmf_execution_ids(self._ids(execution_ids)))}
        return frame([artifact_row(a) for a in view.artifacts_by_id(ids)])

    def _linked_executions(self, artifact_id: int | None) -> Any:
        view = self.cmf_view()
        rows = []
        for ev in view.events_of_artifacts([artifact_id] if artifact_id is not None else []):
            stage, pipeline = view.stage_and_pipeline(ev.execution_id)
            execution = view.executions[ev.execution_id]
            rows.append(
                {
                    "Type": "INPUT" if ev.is_input else "OUTPUT",
                    "execution_id": ev.execution_id,
                    "execution_name": execution.name,
                    "execution_type_name": execution.properties.get("Execution_type_name"),
                    "stage": stage.name,
                    "pipeline": pipeline.name,
                }
            )
        return frame(rows)

    def get_all_executions_for_artifact(self, artifact_name: str) -> Any:
        """The executions that read (``Type`` INPUT) or wrote (OUTPUT) the artifact."""
        return self._linked_executions(self._cmf_artifact_id(artifact_name))

    def get_all_executions_for_artifact_id(self, artifact_id: int) -> Any:
        return self._linked_executions(artifact_id)

    def _one_hop(self, artifact_id: int, up: bool, pipeline_id: int | None = None) -> list[int]:
        view = self.cmf_view()
        if up:
            return view.inputs(view.producers(artifact_id, pipeline_id))
        return view.outputs(view.consumers(artifact_id, pipeline_id))

    def _all_hops(self, artifact_id: int, up: bool, walking: frozenset[int] = frozenset()) -> list[int]:
        """cmflib's recursion: the one-hop artifacts, then each one's, depth first (a cycle stops)."""
        near = self._one_hop(artifact_id, up)
        found = list(near)
        for other in near:
            if other not in walking:
                found += self._all_hops(other, up, walking | {artifact_id})
        return list(dict.fromkeys(found))

    def _artifact_frame(self, ids: list[int]) -> Any:
        view = self.cmf_view()
        return frame([artifact_row(view.artifacts[i]) for i in ids])

    def get_one_hop_child_artifacts(self, artifact_name: str, pipeline_id: int | None = None) -> Any:
        """Outputs of the executions that read the artifact."""
        aid = self._cmf_artifact_id(artifact_name)
        return self._artifact_frame(self._one_hop(aid, False, pipeline_id) if aid is not None else [])

    def get_all_child_artifacts(self, artifact_name: str) -> Any:
        aid = self._cmf_artifact_id(artifact_name)
        return self._artifact_frame(self._all_hops(aid, False) if aid is not None else [])

    def get_one_hop_parent_artifacts(self, artifact_name: str) -> Any:
        """Inputs of the executions that wrote the artifact."""
        aid = self._cmf_artifact_id(artifact_name)
        return self._artifact_frame(self._one_hop(aid, True) if aid is not None else [])

    def get_one_hop_parent_artifacts_with_id(self, artifact_id: int) -> Any:
        """As :meth:`get_one_hop_parent_artifacts`, by id, without Environment and Label artifacts."""
        view = self.cmf_view()
        ids = [i for i in self._one_hop(artifact_id, True) if view.artifacts[i].type not in EXCLUDED_LINEAGE_TYPES]
        return self._artifact_frame(ids)

    def get_all_parent_artifacts(self, artifact_name: str) -> Any:
        aid = self._cmf_artifact_id(artifact_name)
        return self._artifact_frame(self._all_hops(aid, True) if aid is not None else [])

    def get_all_parent_executions(self, artifact_name: str) -> Any:
        """The executions that wrote the artifact's upstream artifacts."""
        view = self.cmf_view()
        aid = self._cmf_artifact_id(artifact_name)
        parents = self._all_hops(aid, True) if aid is not None else []
        producers = {e for a in parents for e in view.producers(a)}
        return frame([execution_row(e) for e in view.executions_by_id(producers)])

    def get_one_hop_parent_executions(
        self, execution_id: Iterable[int | str], pipeline_id: int | None = None
    ) -> list[Execution]:
        """The executions (objects) that wrote the inputs of these executions."""
        view = self.cmf_view()
        groups: list[list[int]] = []
        for art in view.inputs(self._cmf_execution_ids(self._ids(execution_id))):
            producers = view.producers(art, pipeline_id)
            if producers not in groups:
                groups.append(producers)
        return [e for group in groups for e in view.executions_by_id(group)]

    def get_one_hop_parent_executions_ids(
        self, execution_ids: Iterable[int | str], pipeline_id: int | None = None
    ) -> list[int]:
        view = self.cmf_view()
        arts = view.inputs(self._cmf_execution_ids(self._ids(execution_ids)))
        return [e for art in arts for e in view.producers(art, pipeline_id)]

    def get_all_parent_executions_by_id(
        self, execution_id: Iterable[int | str], pipeline_id: int | None = None
    ) -> list[list[Any]]:
        """[[id, Execution_type_name, Execution_uuid] of every upstream execution, [{source, target}] links]."""
        found: list[list[Any]] = [[], []]
        self._parents_by_id(self._cmf_execution_ids(self._ids(execution_id)), pipeline_id, found, frozenset())
        return found

    def _parents_by_id(
        self, current: list[int], pipeline_id: int | None, found: list[list[Any]], walking: frozenset[int]
    ) -> None:
        parents: list[list[Any]] = []
        links: list[dict[str, int]] = []
        for e in self.get_one_hop_parent_executions(current, pipeline_id):
            entry = [e.id, e.properties.get("Execution_type_name"), e.properties.get("Execution_uuid")]
            if entry not in found[0]:
                links.append({"source": e.id, "target": current[0]})
                parents.append(entry)
        if not parents:
            return
        found[0].extend(parents)
        found[1].extend(links)
        for entry in parents:
            if entry[0] not in walking:
                self._parents_by_id([entry[0]], pipeline_id, found, walking | set(current))

    def find_producer_execution(self, artifact_name: str) -> Execution | None:
        """The execution (object) that wrote the artifact (the lowest id if several did), or None."""
        aid = self._cmf_artifact_id(artifact_name)
        producers = self.cmf_view().executions_by_id(self.cmf_view().producers(aid) if aid is not None else [])
        return producers[0] if producers else None

    get_producer_execution = find_producer_execution

    def get_metrics(self, metrics_name: str) -> Any:
        """The step metrics of a Step_Metrics artifact (its CMF name), read from its file: the one
        its ``Name`` property names, else its path (parquet as cmflib writes; CSV as older
        cmfgit.compat wrote); None if there is no such artifact. Per-step values cmfgit recorded:
        :meth:`get_step_metrics`."""
        found = next((a for a in self._cmf_artifacts(metrics_name) if a.type == "Step_Metrics"), None)
        if found is None:
            return None
        name = found.custom_properties.get("Name")
        if not isinstance(name, str) or not name:
            name = found.name.split(":", 1)[0]
        return _read_table(self.repo.root / name, name, "get_metrics")

    @staticmethod
    def read_dataslice(name: str) -> Any:
        """A data slice's rows (cmflib's: the parquet file ``name``)."""
        return _read_table(Path(name), name, "read_dataslice")

    def dumptojson(self, pipeline_name: str, exec_uuid: str | None = None) -> str | None:
        """The pipeline as ``cmf metadata export`` has it, as JSON text (``{"Pipeline": []}`` for
        an unknown pipeline); with ``exec_uuid``, only the executions of that ``Execution_uuid``."""
        import copy
        import json

        pipelines = [
            copy.deepcopy(p) for doc in self.cmf_view().documents for p in doc["Pipeline"] if p["name"] == pipeline_name
        ]
        if exec_uuid is not None:
            for p in pipelines:
                for stage in p["stages"]:
                    stage["executions"] = [
                        e
                        for e in stage["executions"]
                        if exec_uuid in str(e["properties"].get("Execution_uuid", "")).split(",")
                    ]
        return json.dumps({"Pipeline": pipelines})

    # -- diff -------------------------------------------------------------------------------------

    def diff(self, a: str, b: str) -> dict[str, Any]:
        """Two executions side by side (``diff --json``)."""
        return diff_executions(self.execution(a), self.execution(b))


def diff_executions(ra: dict[str, Any], rb: dict[str, Any]) -> dict[str, Any]:
    def side(r: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": r["id"],
            "pipeline": r.get("pipeline"),
            "stage": r.get("stage"),
            "started_at": r.get("started_at"),
            "exit_code": r.get("exit_code"),
            "site": r.get("site"),
        }

    def table(x: dict[str, Any], y: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            {"key": k, "a": x.get(k), "b": y.get(k), "changed": x.get(k) != y.get(k) or (k in x) != (k in y)}
            for k in sorted(set(x) | set(y))
        ]

    def arts(x: list[dict[str, Any]], y: list[dict[str, Any]]) -> list[dict[str, Any]]:
        ax = {str(i.get("path")): i.get("hash") for i in x}
        ay = {str(i.get("path")): i.get("hash") for i in y}
        return [
            {"path": p, "a": ax.get(p), "b": ay.get(p), "changed": ax.get(p) != ay.get(p) or (p in ax) != (p in ay)}
            for p in sorted(set(ax) | set(ay))
        ]

    ga, gb = ra.get("git") or {}, rb.get("git") or {}
    code_a = {"commit": ga.get("commit"), "dirty": ga.get("dirty"), "tree": ga.get("tree")}
    code_b = {"commit": gb.get("commit"), "dirty": gb.get("dirty"), "tree": gb.get("tree")}
    code = {"a": code_a, "b": code_b, "changed": code_a != code_b}
    return {
        "a": side(ra),
        "b": side(rb),
        "code": code,
        "params": table(ra.get("params") or {}, rb.get("params") or {}),
        "metrics": table(ra.get("metrics") or {}, rb.get("metrics") or {}),
        "inputs": arts(ra.get("inputs") or [], rb.get("inputs") or []),
        "outputs": arts(ra.get("outputs") or [], rb.get("outputs") or []),
    }


def relative_run(text: str) -> tuple[str | None, int] | None:
    """``@N``: the N-th execution as ``cmfgit log`` lists them (newest first, ``@1``
    the newest); ``STAGE@N``: the N-th of that stage. None for anything else."""
    stage, at, number = text.strip().rpartition("@")
    if not at or not number.isdigit() or any(c.isspace() for c in stage):
        return None
    return (stage or None), int(number)


# -- sorting and planning ---------------------------------------------------------------------


def _sort_key(text: str) -> tuple[where_lang.Field, bool]:
    spec = text.strip()
    descending = spec.startswith("-")
    name = spec.lstrip("-+").strip()
    if not name:
        raise UsageError("--sort needs a field, e.g. --sort -metrics.acc")
    try:
        node = where_lang.parse(f"{name} == 0")
        assert isinstance(node, where_lang.Compare)
        field = node.field
    except where_lang.WhereError as exc:
        if "is text" in exc.message or "is a number" in exc.message:
            field = where_lang.Field("", name, 0)
        else:
            raise UsageError(f"--sort: {exc.message.split(' at column')[0]}") from None
    return field, descending


class _Planner:
    """Picks how to find executions fast: by the most selective indexed term, or
    by walking the sort key's index when nothing is selective."""

    def __init__(
        self,
        db: sqlite3.Connection,
        terms: list[where_lang.Node],
        key: where_lang.Field,
        descending: bool,
        limit: int | None,
        offset: int = 0,
    ) -> None:
        self.db = db
        self.terms = terms
        self.key = key
        self.descending = descending
        self.limit = limit
        self.offset = offset

    def run(self) -> list[int]:
        args: list[Any] = []
        residual = " AND ".join(where_lang.to_sql(t, args) for t in self.terms) or "1"
        driver, driver_args = self._driver()
        if driver is None and self.limit is not None and self.key.ns in ("params", "metrics"):
            rows = self._by_sorted_kv(residual, args)
            if rows is not None:
                return rows
        if driver is None and self.key.ns == "" and self.key.name in GROUPED_COLUMNS:
            rows = self._grouped(residual, args)
            if rows is not None:
                return rows
        sql = "SELECT e.rowid, {sort} FROM executions e JOIN records r ON r.rowid = e.rowid WHERE {cond}"
        cond = residual if driver is None else f"e.rowid IN ({driver}) AND {residual}"
        return self._ordered(sql, cond, (driver_args if driver else []) + args)

    def _sort_expr(self) -> str:
        return where_lang.field_sql(self.key)

    def _ordered(self, sql: str, cond: str, args: list[Any]) -> list[int]:
        """Rows with the sort key in order, then rows without it (newest first).

        Two queries rather than ``ORDER BY key IS NULL, key``: that first term
        would keep SQLite from walking an index in order (a sort of every row
        for a plain ``log -n 20``).
        """
        direction = "DESC" if self.descending else "ASC"
        expr = self._sort_expr()
        limit, offset = self.limit, self.offset
        with_key = sql.format(sort=expr, cond=f"{cond} AND ({expr}) IS NOT NULL")
        query = with_key + f" ORDER BY {expr} {direction}, e.started_at DESC, r.id DESC"
        query += _page(limit, offset)
        rows = [row[0] for row in self.db.execute(query, args)]
        if limit is not None and len(rows) >= limit:
            return rows
        if offset and not rows:  # the page starts past the rows with the key: skip the rest among those without
            (before,) = self.db.execute(f"SELECT count(*) FROM ({with_key})", args).fetchone()
            offset = max(0, offset - int(before))
        elif rows:
            offset = 0
        query = sql.format(sort=expr, cond=f"{cond} AND ({expr}) IS NULL") + " ORDER BY e.started_at DESC, r.id DESC"
        query += _page(None if limit is None else limit - len(rows), offset)
        return rows + [row[0] for row in self.db.execute(query, args)]

    def count(self, extra: Sequence[tuple[str, list[Any]]] = ()) -> int:
        """How many executions match every term (the sort key and limit play no part), and
        are in every ``extra`` set (SQL selecting execution rowids, with its arguments).

        Each exactly indexed term is counted from its index alone (no row is read). The
        smallest drives; the other indexed terms of at most SET_RATIO times its size are
        checked as sets of rowids (still no row read), the rest row by row. Terms on the
        executions' own columns only are left to SQLite's planner, which picks one of
        their indexes itself."""
        if not self.terms and not extra:
            (n,) = self.db.execute("SELECT count(*) FROM executions").fetchone()
            return int(n)
        plain = not extra and len(self.terms) > 1
        plain = plain and all(isinstance(t, where_lang.Compare) and not t.field.ns for t in self.terms)
        sized: list[tuple[int, str, list[Any], int]] = []
        candidates = [] if plain else self._candidates()
        candidates += [(sql, list(a), True, -1 - j) for j, (sql, a) in enumerate(extra)]  # (never a term's)
        for sql, cargs, exact, i in candidates:
            if exact:
                least = min((n for n, *_ in sized), default=None)
                cap = -1 if least is None else least * SET_RATIO + 1  # beyond it, the size does not matter
                (n,) = self.db.execute(f"SELECT count(*) FROM ({sql} LIMIT {cap})", cargs).fetchone()
                sized.append((int(n), sql, cargs, i))
        sized.sort(key=lambda c: c[0])
        if sized and (sized[0][0] == 0 or len(self.terms) + len(extra) == 1):
            return sized[0][0]
        args: list[Any] = []
        if sized:
            n0, driver, driver_args, first = sized[0]
            args = list(driver_args)
            sets = [(sql, cargs, i) for n, sql, cargs, i in sized[1:] if n <= n0 * SET_RATIO or i < 0]
            checked = {first} | {i for _, _, i in sets}
            rest = [t for i, t in enumerate(self.terms) if i not in checked]
            for _, cargs, _ in sets:
                args = args + cargs
            if not rest:
                cond = " AND ".join(f"x IN ({sql})" for sql, _, _ in sets)
                query = f"WITH d(x) AS ({driver}) SELECT count(*) FROM d WHERE {cond}"
                (n,) = self.db.execute(query, args).fetchone()
                return int(n)
            conds = [f"e.rowid IN ({driver})"] + [f"+e.rowid IN ({sql})" for sql, _, _ in sets]
        else:
            rest = self.terms
            selective, args = self._driver()
            conds = [f"e.rowid IN ({selective})"] if selective is not None else []
        residual = " AND ".join(where_lang.to_sql(t, args) for t in rest)
        join = " JOIN records r ON r.rowid = e.rowid" if "r.id" in residual else ""
        query = f"SELECT count(*) FROM executions e{join} WHERE {' AND '.join([*conds, residual])}"
        (n,) = self.db.execute(query, args).fetchone()
        return int(n)

    def _candidates(self) -> list[tuple[str, list[Any], bool, int]]:
        """SQL selecting execution rowids, for each top-level term an index can answer:
        (sql, args, whether it selects exactly the executions matching the term rather than
        a superset, the term's position)."""
        found: list[tuple[str, list[Any], bool, int]] = []
        for i, term in enumerate(self.terms):
            if not isinstance(term, where_lang.Compare) or term.op == "!=" or term.value is None:
                continue
            f = term.field
            args: list[Any] = []
            if f.ns == "tags":
                cond = where_lang.value_condition("val", term.op, term.value, args)
                name = where_lang.sql_text(f.name)  # (a tag's target may be a retracted run)
                found.append((f"SELECT exec FROM tag_values WHERE name = {name} AND {cond}", args, False, i))
            elif f.ns:
                code = PARAM if f.ns == "params" else METRIC
                row = self.db.execute("SELECT rowid FROM keys WHERE ns = ? AND name = ?", (code, f.name)).fetchone()
                if row is None:
                    continue
                cond = where_lang.value_condition("val", term.op, term.value, args)
                found.append((f"SELECT exec FROM kv WHERE k = {int(row[0])} AND {cond}", args, True, i))
            elif (
                f.name in ("pipeline", "stage", "site", "exit_code", "started_at", "time", "ended_at")
                and term.op != "~"
            ):
                column = where_lang.CORE_FIELDS[f.name][0]
                if column == "ended_at":
                    continue
                cond = where_lang.value_condition(column, term.op, term.value, args)
                found.append((f"SELECT rowid FROM executions WHERE {cond}", args, True, i))
            elif f.name == "id" and term.op in ("==", "~"):
                cond = where_lang.value_condition("id", term.op, term.value, args)
                found.append((f"SELECT rowid FROM records WHERE {cond}", args, False, i))  # (any record)
        return found

    def _driver(self) -> tuple[str | None, list[Any]]:
        best: tuple[int, str, list[Any]] | None = None
        for sql, args, _, _ in self._candidates():
            (count,) = self.db.execute(f"SELECT count(*) FROM ({sql} LIMIT {ESTIMATE_CAP})", args).fetchone()
            if count < ESTIMATE_CAP and (best is None or count < best[0]):
                best = (count, sql, args)
        return (best[1], best[2]) if best else (None, [])

    def _by_sorted_kv(self, residual: str, args: list[Any]) -> list[int] | None:
        """Walk the (key, value) index in sort order, stopping after ``offset + limit`` matches
        (the page: the rows after the offset)."""
        code = PARAM if self.key.ns == "params" else METRIC
        row = self.db.execute("SELECT rowid FROM keys WHERE ns = ? AND name = ?", (code, self.key.name)).fetchone()
        if row is None or not self.limit:
            return None
        direction = "DESC" if self.descending else "ASC"
        base = (
            "SELECT e.rowid, kv.val, e.started_at, r.id FROM kv JOIN executions e ON e.rowid = kv.exec "
            f"JOIN records r ON r.rowid = e.rowid WHERE kv.k = {int(row[0])} AND {residual}"
        )
        if self.terms and not self._found_within(f"SELECT exec FROM kv WHERE k = {int(row[0])}", [], residual, args):
            if self.count(extra=[(f"SELECT exec FROM kv WHERE k = {int(row[0])}", [])]) == 0:
                return self._newest(residual, args)  # no match has the key: they all come in the "without" part
        limit = int(self.limit) + self.offset
        rows = self.db.execute(
            f"{base} ORDER BY kv.val {direction}, kv.exec {direction} LIMIT {limit}", args
        ).fetchall()
        if len(rows) < limit:
            return None  # fewer matches than asked: executions without the key come last; let SQL do it all
        # Equal values are ordered like the general plan: newest first, then by id. Rows
        # tied with the last one may lie beyond the limit, so fetch them all.
        edge = rows[-1][1]
        (ties,) = self.db.execute(f"SELECT count(*) FROM kv WHERE k = {int(row[0])} AND val = ?", (edge,)).fetchone()
        if ties > ESTIMATE_CAP:  # a key with few values (lr, optimizer): sorting the tied rows would read them all
            grouped = self._grouped(residual, args)
            if grouped is not None:
                return grouped
        tied = self.db.execute(f"{base} AND kv.val = ?", [*args, edge]).fetchall()
        chosen = [r for r in rows if r[1] != edge] + tied
        chosen.sort(key=lambda r: (r[2] or "", r[3]), reverse=True)
        chosen.sort(key=lambda r: _sortable(r[1]), reverse=self.descending)
        return [r[0] for r in chosen[self.offset : limit]]

    def _grouped(self, residual: str, args: list[Any]) -> list[int] | None:
        """A page sorted by a key with few distinct values (stage, site, exit code, a
        param like lr): one group of equal values at a time, in the key's order, each
        group's rows newest first (then by id) as the general plan orders them, walked
        through an index in that order, so no group is read whole. None when the plan
        does not apply: no limit, an offset with terms (skipping a group needs its size
        among the matches), or groups running out before the page is full (the runs
        without the key come next: the general plan does that)."""
        if self.limit is None or (self.offset and self.terms):
            return None
        first, after = ("max", "<") if self.descending else ("min", ">")
        if self.key.ns:
            code = PARAM if self.key.ns == "params" else METRIC
            found = self.db.execute(
                "SELECT rowid FROM keys WHERE ns = ? AND name = ?", (code, self.key.name)
            ).fetchone()
            if found is None:
                return None
            k = int(found[0])
            group = f"SELECT exec FROM kv WHERE k = {k} AND val = ?"
            values = f"SELECT {first}(val) FROM kv WHERE k = {k}"
            following = f"{values} AND val {after} ?"
            size_sql = f"SELECT count(*) FROM kv WHERE k = {k} AND val = ?"
            small = f"e.rowid IN (SELECT exec FROM kv WHERE k = {k} AND val = ?)"
            large = f"EXISTS (SELECT 1 FROM kv WHERE k = {k} AND val = ? AND exec = e.rowid)"  # walks ex_started
        else:
            column = where_lang.CORE_FIELDS[self.key.name][0]
            group = f"SELECT rowid FROM executions WHERE {column} = ?"
            values = f"SELECT {first}({column}) FROM executions"
            following = f"{values} WHERE {column} {after} ?"
            size_sql = f"SELECT count(*) FROM executions WHERE {column} = ?"
            small = large = f"e.{column} = ?"
        base = "SELECT e.rowid FROM executions e JOIN records r ON r.rowid = e.rowid WHERE {member} AND " + residual
        base += " ORDER BY e.started_at DESC, r.id DESC"
        page: list[int] = []
        skip, limit = self.offset, int(self.limit)
        # Terms on params, metrics or tags: a group may hold no match, and walking it would read
        # it all, so look first. (Terms on the executions' columns: SQLite's indexes answer.)
        keyed = any(not isinstance(t, where_lang.Compare) or t.field.ns for t in self.terms)
        value = self.db.execute(values).fetchone()[0]
        while len(page) < limit:
            if value is None:
                return None
            # The group's size, as far as it matters: past the rows to skip, and whether it is small.
            cap = max(skip, ESTIMATE_CAP) + 1
            members = size_sql.replace("count(*)", "1")
            (size,) = self.db.execute(f"SELECT count(*) FROM ({members} LIMIT {cap})", (value,)).fetchone()
            if skip and skip >= size:  # (no terms here: the group's size is its number of matches)
                skip -= size
            elif (
                keyed and not self._found_within(group, [value], residual, args) and not self.count([(group, [value])])
            ):
                pass  # no match in this group: walking it would read it all
            else:
                query = base.format(member=small if size <= ESTIMATE_CAP else large) + _page(limit - len(page), skip)
                page += [r[0] for r in self.db.execute(query, [value, *args])]
                skip = 0
            value = self.db.execute(following, (value,)).fetchone()[0] if len(page) < limit else None
        return page

    def _found_within(self, rows: str, rows_args: list[Any], residual: str, args: list[Any]) -> bool:
        """Whether a match is among the first PROBE rowids ``rows`` selects: a cheap look
        before walking an index whose rows the terms may all reject."""
        query = (
            f"SELECT 1 FROM executions e JOIN records r ON r.rowid = e.rowid"
            f" WHERE e.rowid IN ({rows} LIMIT {PROBE}) AND {residual} LIMIT 1"
        )
        return self.db.execute(query, [*rows_args, *args]).fetchone() is not None

    def _newest(self, residual: str, args: list[Any]) -> list[int]:
        """The page of the matches newest first (then by id)."""
        query = f"SELECT e.rowid FROM executions e JOIN records r ON r.rowid = e.rowid WHERE {residual}"
        query += " ORDER BY e.started_at DESC, r.id DESC" + _page(self.limit, self.offset)
        return [r[0] for r in self.db.execute(query, args)]


GROUPED_COLUMNS = ("stage", "site", "exit_code", "pipeline")  # few values, and an index to walk each one's rows

_EXECUTION_ID_COLUMNS = ["id", "Execution_type_name", "Execution_uuid"]


def _page(limit: int | None, offset: int) -> str:
    """The LIMIT/OFFSET clause of a page (none for all rows from the start)."""
    if not offset:
        return "" if limit is None else f" LIMIT {int(limit)}"
    return f" LIMIT {-1 if limit is None else int(limit)} OFFSET {int(offset)}"


def _read_table(path: Path, shown: str, what: str) -> Any:
    """A parquet (or, by its ``.csv`` suffix, CSV) file as a data frame, or a one-line error."""
    from cmfgit import cmf_tables

    pd = pandas()
    if not path.is_file():
        raise CmfgitError(f"{shown}: not in the working tree (cmfgit artifact pull brings recorded files)")
    if path.suffix == ".csv":  # what cmfgit.compat wrote before it wrote cmflib's parquet
        return pd.read_csv(path)
    return cmf_tables.read(path, what)


def _start_order(graph: Graph, rid: str) -> tuple[bool, str, str]:
    """Sort key of an execution: by start time (unknown times last), then by id."""
    started = graph.executions[rid].get("started_at")
    return (not isinstance(started, str), started if isinstance(started, str) else "", rid)


def _sortable(value: Any) -> tuple[int, Any]:
    """SQLite's order: numbers before text."""
    return (1, value) if isinstance(value, str) else (0, value)


def _frame(rows: list[dict[str, Any]], as_frame: bool) -> Any:
    if not as_frame:
        return rows
    try:
        import pandas as pd  # type: ignore[import-untyped,unused-ignore]  # optional
    except ImportError:
        raise CmfgitError("as_frame=True needs pandas: pip install pandas") from None
    return pd.json_normalize(rows) if rows else pd.DataFrame()


def open_query(path: str | os.PathLike[str] | None = None, scope: Scope = CHECKOUT) -> CmfQuery:
    return CmfQuery(Path(path) if path is not None else None, scope=scope)
