"""``cmfgit site build DIR``: the web UI's pages as static files, with the records as data files.

The site is the same single-page app the server serves (``cmfgit/ui/static/``), with a
``config.js`` that says ``mode: "static"`` and a ``data/`` folder. ``source-static.js``
answers every API endpoint from those files, with the JSON the server gives.

Why data chunks as ``.js`` files, and not the SQLite index read with HTTP range requests
(measured on this machine, 100,000 runs of ``bench/gen_records.py``):

- A page opened from ``file://`` may not ``fetch``/XHR its sibling files in Chromium (nor
  in Firefox since 68): a range-request reader (sql.js-httpvfs and the like) cannot work
  there at all, and that is how a user opens a site they downloaded or rsynced. A
  ``<script src="data/x.js">`` is allowed from ``file://``; each data file is one call,
  ``CMF_DATA.put(name, payload)``.
- The index is not made for shipping: it keeps no copy of the records (``cmfgit show``
  reads them from the packs) and is 115 MB at 100,000 runs. A range
  reader also needs a WebAssembly SQLite (~1 MB) and one round trip per B-tree page.
- Chunks can be laid out for what the pages ask. The runs table is stored by column and
  in blocks of rows (``BLOCK_ROWS``), in the default order (newest first, then id): the
  first page is one small file (``runs-head``, the first ``HEAD_ROWS`` rows), and a
  ``--where`` or a sort over 100,000 runs loads only the columns it names (a column of
  100,000 numbers is 0.7-1.2 MB, the ids 6.7 MB). A run's details are grouped by id
  prefix, so opening a run loads one file of ~25-100 runs (~35 KB at 100,000 runs).

The build reads every record once (the run pages are ``cmfgit show --json``), so its time
is mostly parsing records. Past ``PARALLEL_MIN`` forked workers parse them by id-prefix
group and write those run files themselves, and a forked process writes the graph, the
events and most core columns while this one writes the rest. Measured here, on 2 cores
shared with other jobs (load ~4 for the first rows; the last at load 1.6-1.8):

=============  ========  =======  ======================  ==================================
runs           files     size     build: CPU, wall         first paint of the runs page
=============  ========  =======  ======================  ==================================
10,000         324       21 MB    3.1 s, 9-13 s (load 9)   -
100,000        4,308     197 MB   25 s, 47 s               0.2-0.4 s (file:// and http)
100,000        4,308     197 MB   26 s, 15-17 s            -
=============  ========  =======  ======================  ==================================

(At load ~10 the first paint took 0.7-1.2 s from file:// and from a local static server.)
A ``--where`` over 100,000 runs: 0.24-0.27 s the first time (its columns load), 3-8 ms
after (0.3-0.9 s and 10-40 ms at load ~10). The run payloads are ~70% of the size (the
graph and the events ~15%, the runs columns ~15%); they compress ~4x, so a static host
that gzips (GitHub Pages does) sends a quarter.

Layout of DIR::

    index.html, app.js, ...     copied from cmfgit/ui/static/
    config.js                   window.CMF_CONFIG = {mode: "static", ...the manifest}
    cmfgit-site.json            the same manifest (marks DIR as a site: a rebuild replaces it)
    data/runs-head.js           the first rows of the default order, as the runs endpoint's rows
    data/runs-<col>-<n>.js      block n of a column (core fields by name, params p<i>, metrics m<i>, tags t<i>)
    data/run-<prefix>.js        run payloads of the ids starting with <prefix>
    data/graph.js               the lineage graph (artifacts, and each run's inputs and outputs)
    data/events.js              every input/output event (the artifact pages)
    data/pipelines.js           the pipelines endpoint's answer

The build writes into a temporary folder beside DIR, then renames it into place; an
existing DIR is replaced only when it is a site (it has ``cmfgit-site.json``) or empty.
"""

from __future__ import annotations

import gc
import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from cmfgit.errors import CmfgitError, UsageError
from cmfgit.index import CHECKOUT, Scope

FORMAT = 1
MARKER = "cmfgit-site.json"
BLOCK_ROWS = 20_000  # rows per column file
HEAD_ROWS = 200  # rows of the default order in runs-head (the first page, and a few more)
RUNS_PER_FILE = 100  # at most this many run payloads per run-<prefix> file (on average)
STATIC = Path(__file__).resolve().parent / "static"
# Core columns of the runs table: (name in the data files, the executions column or a derived one).
CORE_COLUMNS = (
    "id",
    "pipeline",
    "stage",
    "type",
    "site",
    "host",
    "user",
    "exit_code",
    "started_at",
    "ended_at",
    "uuid",
    "commit",
    "branch",
    "duration",
    "status",
    "dirty",
    "tree",
)
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


@dataclass(frozen=True)
class SiteReport:
    """What a build wrote."""

    path: Path
    runs: int
    files: int
    bytes: int
    seconds: float


# -- the target folder ------------------------------------------------------------------------


def check_target(out: Path) -> None:
    """Refuse a DIR that a build must not replace (one-line errors)."""
    if out.exists() or out.is_symlink():
        if not out.is_dir():
            raise UsageError(f"{out}: exists and is not a directory")
        if any(out.iterdir()) and not (out / MARKER).is_file():
            raise UsageError(f"{out}: not empty and not a cmfgit site; give a new or empty directory")
    parent = out.parent
    probe = parent
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise UsageError(f"{out}: {probe} is not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise UsageError(f"{out}: cannot write in {probe} (permission denied)")


def _swap_in(tmp: Path, out: Path) -> None:
    """Move the finished ``tmp`` to ``out``, replacing a previous site there."""
    old: Path | None = None
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        os.replace(out, old / "site")
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# -- values ------------------------------------------------------------------------------------


def natural_key(text: str) -> tuple[tuple[int, int | str], ...]:
    from cmfgit.views import natural_key as key

    return key(text)


# -- the column files --------------------------------------------------------------------------


def _column_block(values: Sequence[Any], display: dict[int, Any] | None = None) -> dict[str, Any]:
    """One block of a column: plain values, or a dictionary of texts and codes when that
    is smaller; ``r``: offsets whose integral number is a float (a REAL in SQLite);
    ``x``: offset -> the value to show where it is not the value compared (booleans,
    lists, NaN, long text...), and null for a param present with a null value."""
    block: dict[str, Any] = {}
    texts = [v for v in values if isinstance(v, str)]
    if texts and len(texts) + values.count(None) == len(values):
        distinct = sorted(set(texts))
        if len(distinct) * 4 < len(texts):
            codes = {t: i for i, t in enumerate(distinct)}
            block["d"] = distinct
            block["c"] = [-1 if v is None else codes[v] for v in values]
    if "d" not in block:
        block["v"] = list(values)
    reals = [i for i, v in enumerate(values) if isinstance(v, float) and v.is_integer()]
    if reals:
        block["r"] = reals
    if display:
        block["x"] = {str(i): v for i, v in display.items()}
    return block


class _Writer:
    def __init__(self, root: Path, exists: bool = False) -> None:
        self.root = root
        self.data = root / "data"
        if not exists:
            self.data.mkdir(parents=True)
        self.files = 0
        self.bytes = 0

    def put(self, name: str, payload: Any) -> None:
        try:
            data = _dumps(payload)
        except ValueError:  # a NaN or an infinity (JSON has none): as reading.as_json shows them
            data = _dumps(_display(payload))
        self.bytes += _write_file(self.data / f"{name}.js", f"CMF_DATA.put({_dumps(name)},{data});\n")
        self.files += 1

    def write(self, rel: str, text: str) -> None:
        data = text.encode()
        (self.root / rel).write_bytes(data)
        self.files += 1
        self.bytes += len(data)


# -- the build ---------------------------------------------------------------------------------


def build(
    out: str | os.PathLike[str],
    *,
    scope: Scope = CHECKOUT,
    where: str | None = None,
    pipeline: str | None = None,
    repo: str | os.PathLike[str] | None = None,
    static: Path = STATIC,
) -> SiteReport:
    """Write the static site of ``scope``'s executions (those ``where``/``pipeline`` select) to ``out``."""
    start = time.perf_counter()
    target = Path(os.path.abspath(out))
    check_target(target)
    collecting = gc.isenabled()
    gc.disable()  # the records make no cycles; a collection walks all of them (~4 s of CPU at 100,000)
    try:
        return _build(target, start, scope, where, pipeline, repo, static)
    finally:
        if collecting:
            gc.enable()


def _build(
    target: Path,
    start: float,
    scope: Scope,
    where: str | None,
    pipeline: str | None,
    repo: str | os.PathLike[str] | None,
    static: Path,
) -> SiteReport:
    from cmfgit.query import CmfQuery

    with CmfQuery(repo, scope=scope, warn=False) as q:
        rowids = q.execution_rowids(where, pipeline=pipeline)  # the default order: newest first, then id
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
        try:
            writer = _Writer(tmp)
            _copy_static(static, tmp, writer)
            manifest = _write_data(q, rowids, writer, where=where, pipeline=pipeline)
            config = "window.CMF_CONFIG = " + json.dumps(manifest, indent=1, ensure_ascii=False) + ";\n"
            writer.write("config.js", config)
            writer.write(MARKER, json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
            _swap_in(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return SiteReport(target, len(rowids), writer.files, writer.bytes, time.perf_counter() - start)


def _copy_static(static: Path, root: Path, writer: _Writer) -> None:
    if not (static / "index.html").is_file():
        raise CmfgitError(f"the web UI's files are missing ({static}/index.html); reinstall cmfgit")
    for path in sorted(static.rglob("*")):
        rel = path.relative_to(static)
        if path.is_dir() or rel.name == "config.js" or "__pycache__" in rel.parts:
            continue
        dest = root / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest)
        writer.files += 1
        writer.bytes += dest.stat().st_size


T = TypeVar("T")
MAIN_CORE = ("id", "uuid", "commit", "tree")  # core columns the main process writes in a parallel build
PARALLEL_MIN = 20_000  # records: below this, parsing in worker processes costs more than it saves
PARSE_BATCH = 4_000  # records per worker task (about)
_SHARED: dict[str, Any] = {}  # what forked workers read (shared by fork, not sent)


def _record_text(record: dict[str, Any]) -> str:
    """The JSON text of a record as reading.as_json shows it (NaN and infinities as strings)."""
    try:
        return _dumps(record)
    except ValueError:
        return _dumps(_display(record))


def _write_file(path: Path, text: str) -> int:
    data = text.encode()
    with open(path, "wb", buffering=0) as f:  # one write; no fsync (the rename of the site is the commit point)
        f.write(data)
    return len(data)


def _parse_groups(keys: list[str]) -> bytes:
    """In a worker: parse the records of these run-file prefixes, write their run files, and
    return (the item numbers, their records, their _core_rows, bytes written), marshalled."""
    import marshal

    from cmfgit.index import load_record

    items, groups, data = _SHARED["items"], _SHARED["groups"], _SHARED["data"]
    tags, commits = _SHARED["tags"], _SHARED["commits"]
    numbers: list[int] = []
    records: list[dict[str, Any]] = []
    cores: list[tuple[Any, ...]] = []
    written = 0
    for key in keys:
        parts = []
        for n in groups[key]:
            rid, blob = items[n]
            record = load_record(blob, rid)
            numbers.append(n)
            records.append(record)
            cores.append(_core_row(rid, record))
            parts.append(_run_entry(rid, record, _record_text(record), tags, commits))
        written += _write_file(data / f"run-{key}.js", _run_file(key, parts))
    return marshal.dumps((numbers, records, cores, written))


def _prefix_length(count: int) -> int:
    prefix = 1
    while count > RUNS_PER_FILE * 16**prefix and prefix < 4:
        prefix += 1
    return prefix


def _records(
    items: list[tuple[str, bytes]],
    tags: dict[str, dict[str, Any]],
    commits: dict[str, dict[str, Any]],
    writer: _Writer,
    meanwhile: Callable[[], T],
) -> tuple[list[tuple[str, dict[str, Any]]], T, list[tuple[Any, ...]] | None]:
    """(id, record) of the items, in order, what ``meanwhile`` gives, and each run's _core_row
    when the run files are written. When there are many, forked workers parse them (as the index's build does:
    index._jobs) and write the run files too, grouped by prefix, so that both cores encode as
    well as parse; ``meanwhile`` runs here while they do."""
    from cmfgit.index import _jobs, load_record

    jobs = _jobs()
    if jobs < 2 or len(items) < PARALLEL_MIN:
        return [(rid, load_record(data, rid)) for rid, data in items], meanwhile(), None
    import marshal
    import multiprocessing

    prefix = _prefix_length(len(items))
    groups: dict[str, list[int]] = {}
    for n, (rid, _data) in enumerate(items):
        groups.setdefault(rid[:prefix], []).append(n)
    tasks: list[list[str]] = [[]]
    size = 0
    for key in sorted(groups):
        if size >= PARSE_BATCH:
            tasks.append([])
            size = 0
        tasks[-1].append(key)
        size += len(groups[key])
    _SHARED.update(items=items, groups=groups, data=writer.data, tags=tags, commits=commits)
    out: list[Any] = [None] * len(items)
    cores: list[Any] = [None] * len(items)
    try:
        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            results = pool.imap_unordered(_parse_groups, tasks)  # (the pool's threads send the tasks)
            extra = meanwhile()
            for blob in results:
                numbers, records, rows, written = marshal.loads(blob)
                for n, record, row in zip(numbers, records, rows):
                    out[n] = (items[n][0], record)
                    cores[n] = row
                writer.bytes += written
    finally:
        _SHARED.clear()
    writer.files += len(groups)
    return out, extra, cores


class _GraphJob:
    """The lineage graph, the events and the core columns of the runs table, written by a
    forked process while this one writes the rest (the records are shared by fork)."""

    def __init__(
        self,
        records: list[tuple[str, dict[str, Any]]],
        tags: dict[str, dict[str, Any]],
        core: dict[str, list[Any]],
        writer: _Writer,
    ):
        import multiprocessing

        ctx = multiprocessing.get_context("fork")
        self.conn, child = ctx.Pipe(duplex=False)
        _SHARED.update(records=records, tags=tags, core=core, root=writer.root)
        try:
            self.proc = ctx.Process(target=_graph_child, args=(child,), daemon=True)
            self.proc.start()
        finally:
            _SHARED.clear()
        child.close()

    def finish(self, writer: _Writer) -> None:
        try:
            result = self.conn.recv()
        except EOFError:
            result = None
        self.proc.join()
        if not isinstance(result, tuple):
            raise CmfgitError(f"site build: writing the lineage graph failed ({result or self.proc.exitcode})")
        writer.files += result[0]
        writer.bytes += result[1]


def _graph_child(conn: Any) -> None:
    try:
        writer = _Writer(_SHARED["root"], exists=True)
        _write_graph(_SHARED["records"], _SHARED["tags"], writer)
        for name, column in _SHARED["core"].items():
            _put_column(writer, name, column)
        conn.send((writer.files, writer.bytes))
    except BaseException as e:
        conn.send(f"{type(e).__name__}: {e}")
        raise


def _write_data(
    q: Any, rowids: Sequence[int], writer: _Writer, *, where: str | None, pipeline: str | None
) -> dict[str, Any]:
    from cmfgit import recordcommits

    found = q._index.read(rowids)
    items = [found[r] for r in rowids if r in found]
    if len(items) < len(rowids):  # files changed under the build: ask again once
        rowids = q.execution_rowids(where, pipeline=pipeline)
        found = q._index.read(rowids)
        items = [found[r] for r in rowids if r in found]
    ids = [rid for rid, _ in items]
    rowid_of = dict(zip(ids, rowids)) if len(items) == len(rowids) else None
    if rowid_of is None:
        wanted = {rid: None for rid in ids}
        rowid_of = {
            rid: rowid
            for rowid, rid in q.db.execute("SELECT r.rowid, r.id FROM records r JOIN executions e ON e.rowid = r.rowid")
            if rid in wanted
        }
    tags = q.tags()
    commits = recordcommits.describe(q.repo, q.scope, ids)
    records, filtered, cores = _records(
        items, tags, commits, writer, lambda: _index_values(q, [rowid_of[rid] for rid in ids])
    )
    del found, items
    prefix = _prefix_length(len(records))
    runs_written = cores is not None
    runs = _Runs(records, filtered, tags, cores)
    core = runs.core()
    graph = None
    if runs_written:  # the graph process takes the core columns but these (it has the most to do)
        graph = _GraphJob(records, tags, {k: v for k, v in core.items() if k not in MAIN_CORE}, writer)
        core = {k: v for k, v in core.items() if k in MAIN_CORE}
    manifest: dict[str, Any] = {
        "mode": "static",
        "format": FORMAT,
        "block": BLOCK_ROWS,
        "head": HEAD_ROWS,
        "count": len(records),
        "info": _info(q, len(records), where, pipeline),
    }
    manifest.update(runs.write(writer, core))
    if not runs_written:
        _write_runs(records, tags, commits, writer, prefix)
    manifest["prefix"] = prefix
    writer.put("pipelines", _pipelines(q, records, [rowid_of[rid] for rid in ids]))
    if graph is not None:
        graph.finish(writer)
    else:
        _write_graph(records, tags, writer)
    return manifest


def _index_values(q: Any, rowids: Sequence[int]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """The params and metrics of each run as the index compares them (cmfgit.index.filter_value)."""
    out: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}
    loads = json.loads
    for start in range(0, len(rowids), 500):
        chunk = list(rowids[start : start + 500])
        for rowid, params, metrics in q.db.execute(
            f"SELECT rowid, params, metrics FROM executions WHERE rowid IN ({','.join('?' * len(chunk))})", chunk
        ):
            out[rowid] = (loads(params) if params else {}, loads(metrics) if metrics else {})
    return [out.get(r, ({}, {})) for r in rowids]


def _core_row(rid: str, r: dict[str, Any]) -> tuple[Any, ...]:
    """A run's values of CORE_COLUMNS as the index has them (what --where compares), then
    the keys of its params and of its metrics."""
    from cmfgit import compare

    git: dict[str, Any] = r["git"] if isinstance(r.get("git"), dict) else {}
    code = r.get("exit_code")
    params, metrics = r.get("params"), r.get("metrics")

    def text(value: Any) -> str | None:
        return value if isinstance(value, str) else None

    started, ended = r.get("started_at"), r.get("ended_at")
    return (
        rid,
        text(r.get("pipeline")),
        text(r.get("stage")),
        text(r.get("type")),
        text(r.get("site")),
        text(r.get("host")),
        text(r.get("user")),
        code if type(code) is int else None,
        text(started),
        text(ended),
        text(r.get("uuid")),
        text(git.get("commit")),
        text(git.get("branch")),
        compare.duration(started, ended),
        compare.status(r),
        git.get("dirty"),
        text(git.get("tree")),
        tuple(params) if isinstance(params, dict) else (),
        tuple(metrics) if isinstance(metrics, dict) else (),
    )


class _Runs:
    """The runs table by column, in the default order."""

    def __init__(
        self,
        records: list[tuple[str, dict[str, Any]]],
        filtered: list[tuple[dict[str, Any], dict[str, Any]]],
        tags: dict[str, dict[str, Any]],
        cores: list[tuple[Any, ...]] | None = None,
    ) -> None:
        self.records = records
        self.filtered = filtered
        self.tags = tags
        self.cores = cores  # each run's _core_row, when the workers made them

    def core(self) -> dict[str, list[Any]]:
        """The core columns, by name (CORE_COLUMNS), and the params' and metrics' key sets."""
        rows = self.cores if self.cores is not None else [_core_row(rid, r) for rid, r in self.records]
        core: dict[str, list[Any]] = {name: [] for name in CORE_COLUMNS}
        keysets: dict[str, list[int]] = {"params": [], "metrics": []}
        sets: dict[str, dict[tuple[str, ...], int]] = {"params": {}, "metrics": {}}
        if rows:
            columns_of = list(zip(*rows))
            for at, name in enumerate(CORE_COLUMNS):
                core[name] = list(columns_of[at])
            for at, ns in enumerate(("params", "metrics"), len(CORE_COLUMNS)):
                found = sets[ns]
                keysets[ns] = [found.setdefault(present, len(found)) for present in columns_of[at]]
        self.keysets, self.sets = keysets, sets
        return core

    def write(self, writer: _Writer, core: dict[str, list[Any]] | None) -> dict[str, Any]:
        """Write the runs table, with the core columns given (the graph process writes the others)."""
        records, n = self.records, len(self.records)
        if not hasattr(self, "sets"):
            self.core()
        keysets, sets = self.keysets, self.sets
        for name, column in (core or {}).items():
            _put_column(writer, name, column)
        for ns in ("params", "metrics"):  # each run's key set (the page's most common keys are its columns)
            writer.put(f"runs-{ns}-sets", [list(kept) for kept in sets[ns]])
            _put_column(writer, f"{ns[0]}k", keysets[ns])
        keys: dict[str, list[str]] = {}
        indexed: dict[str, list[str]] = {}
        for ns, which in (("params", 0), ("metrics", 1)):
            seen: set[str] = set()
            good: set[str] = set()
            for pair in self.filtered:
                for k, v in pair[which].items():
                    seen.add(k)
                    if v is not None:
                        good.add(k)
            names = sorted(seen, key=natural_key)
            keys[ns] = names
            indexed[ns] = sorted(good)  # as the index's keys table: the keys listed, the did-you-mean hints
            number = {key: i for i, key in enumerate(names)}
            vals: list[list[Any]] = [[None] * n for _ in names]
            display: list[dict[int, Any]] = [{} for _ in names]
            for row, ((_rid, r), pair) in enumerate(zip(records, self.filtered)):  # one pass over the runs
                compared = pair[which]
                for key, value in compared.items():
                    vals[number[key]][row] = value
                mapping = r.get(ns)
                for key, raw in mapping.items() if isinstance(mapping, dict) else ():
                    i = number.get(key)
                    if i is None:
                        continue
                    shown = _display(raw)
                    value = compared.get(key)
                    if shown is None or type(shown) is not type(value) or shown != value:
                        display[i][row] = shown
            for i in range(len(names)):
                _put_column(writer, f"{ns[0]}{i}", vals[i], display[i])
        tag_names = sorted({name for rid, _ in records for name in self.tags.get(rid, {})}, key=natural_key)
        keys["tags"] = tag_names
        for i, name in enumerate(tag_names):
            _put_column(writer, f"t{i}", [self.tags.get(rid, {}).get(name) for rid, _ in records])
        writer.put("runs-head", {"rows": [self.row(i) for i in range(min(HEAD_ROWS, n))]})
        return {"keys": keys, "indexed": indexed, "blocks": (n + BLOCK_ROWS - 1) // BLOCK_ROWS}

    def row(self, i: int) -> dict[str, Any]:
        from cmfgit import compare

        rid, r = self.records[i]
        return compare.run_row({"id": rid, **_record_json(r)})


def _put_column(writer: _Writer, name: str, values: list[Any], display: dict[int, Any] | None = None) -> int:
    blocks = 0
    for start in range(0, max(len(values), 1), BLOCK_ROWS):
        part = values[start : start + BLOCK_ROWS]
        shown = {i - start: v for i, v in (display or {}).items() if start <= i < start + BLOCK_ROWS}
        writer.put(f"runs-{name}-{blocks}", _column_block(part, shown))
        blocks += 1
    return blocks


def _display(value: Any) -> Any:
    """``value`` as the JSON shows it (reading.as_json: NaN and infinities as strings); cheap
    for the plain values most params and metrics are."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is float:
        return (
            value if math.isfinite(value) else ("NaN" if value != value else ("Infinity" if value > 0 else "-Infinity"))
        )
    from cmfgit.reading import _json_safe as safe

    return safe(value)


def _record_json(record: dict[str, Any]) -> dict[str, Any]:
    """The record as the JSON shows it: most records have no NaN or infinity to replace (a
    walk that builds nothing tells), so most are not copied."""
    return record if _finite(record) else _display(record)  # type: ignore[no-any-return]


def _finite(value: Any) -> bool:
    kind = type(value)
    if kind is float:
        return math.isfinite(value)
    if kind is dict:
        return all(_finite(v) for v in value.values())
    if kind is list:
        return all(_finite(v) for v in value)
    return True


def _info(q: Any, count: int, where: str | None, pipeline: str | None) -> dict[str, Any]:
    from cmfgit.ui import api

    info = api.info(q)
    info["executions"] = count
    if pipeline:
        info["scope"] += f", pipeline {pipeline}"
    if where:
        info["scope"] += f", where {where}"
    return info


def _run_entry(
    rid: str, record: dict[str, Any], text: str, tags: dict[str, dict[str, Any]], commits: dict[str, dict[str, Any]]
) -> str:
    """One run's entry of its run file: the api.run payload, as text around the record's JSON."""
    from cmfgit.ui import api

    steps = record.get("step_metrics")
    git: dict[str, Any] = record["git"] if isinstance(record.get("git"), dict) else {}
    commit = git.get("commit")
    shown_steps = _display({k: steps[k] for k in api.natural(list(steps))}) if isinstance(steps, dict) else {}
    url = api.commit_url(git.get("remote"), commit) if isinstance(commit, str) and commit else None
    # {"id", **record, "tags", "metadata_commit"}: the record's keys, then ours (the last one wins)
    run = (
        f'{text[:-1]},"id":{_dumps(rid)},"tags":{_dumps(tags.get(rid, {}))},'
        f'"metadata_commit":{_dumps(commits.get(rid, _UNKNOWN))}}}'
    )
    return f'{_dumps(rid)}:{{"run":{run},"steps":{_dumps(shown_steps)},"code_url":{_dumps(url)}}}'


_UNKNOWN = {"commit": None, "pending": False}


def _run_file(key: str, parts: list[str]) -> str:
    return f"CMF_DATA.put({_dumps('run-' + key)},{{{','.join(parts)}}});\n"


def _write_runs(
    records: list[tuple[str, dict[str, Any]]],
    tags: dict[str, dict[str, Any]],
    commits: dict[str, dict[str, Any]],
    writer: _Writer,
    prefix: int,
) -> None:
    """The run payloads (api.run's), grouped by id prefix (in one process: see _records)."""
    groups: dict[str, list[str]] = {}
    for rid, record in records:
        groups.setdefault(rid[:prefix], []).append(_run_entry(rid, record, _record_text(record), tags, commits))
    for key, parts in sorted(groups.items()):
        writer.bytes += _write_file(writer.data / f"run-{key}.js", _run_file(key, parts))
        writer.files += 1


def _graph_file(records: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """The lineage graph as cmfgit.graph.Graph makes it (artifact keys, each run's inputs and
    outputs, each artifact's producers and consumers oldest first, its first path and type),
    by row number. Without aliases every hash is its own artifact: computed here in one pass
    (Graph.build costs ~8 s of CPU at 100,000 runs); with aliases, by Graph itself."""
    ins: list[list[str]] = []
    outs: list[list[str]] = []
    path: dict[str, str] = {}
    kind: dict[str, str] = {}
    for _rid, r in records:
        for name, lists in (("inputs", ins), ("outputs", outs)):
            items = r.get(name)
            found: dict[str, None] = {}
            for item in items if isinstance(items, list) else ():
                if not isinstance(item, dict):
                    continue
                h = item.get("hash")
                if not isinstance(h, str) or not h:
                    continue
                if item.get("aliases"):
                    return _graph_file_aliased(records)
                found[h] = None
                p, t = item.get("path"), item.get("type")
                if isinstance(p, str) and (h not in path or p < path[h]):
                    path[h] = p
                if isinstance(t, str) and (h not in kind or t < kind[h]):
                    kind[h] = t
            lists.append(list(found))
    keys = sorted({h for per in (ins, outs) for hs in per for h in hs})
    index = {k: i for i, k in enumerate(keys)}
    started = [str(r.get("started_at") or "") for _rid, r in records]
    ids = [rid for rid, _ in records]
    producers: list[list[int]] = [[] for _ in keys]
    consumers: list[list[int]] = [[] for _ in keys]
    for row in range(len(records)):
        for h in ins[row]:
            consumers[index[h]].append(row)
        for h in outs[row]:
            producers[index[h]].append(row)
    for table in (producers, consumers):
        for rows in table:
            if len(rows) > 1:
                rows.sort(key=lambda r: (started[r], ids[r]))  # Graph._finish's order
    return {
        "keys": keys,
        "path": _column_block([path.get(k) for k in keys]),
        "type": _column_block([kind.get(k) for k in keys]),
        "canon": {},
        "inputs": [[index[h] for h in hs] for hs in ins],
        "outputs": [[index[h] for h in hs] for hs in outs],
        "producers": producers,
        "consumers": consumers,
    }


def _graph_file_aliased(records: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    from cmfgit.graph import Graph

    graph = Graph.build(records)
    arts = graph.artifacts
    inputs, outputs, producers, consumers = graph.inputs, graph.outputs, graph.producers, graph.consumers  # (once)
    keys = sorted(arts)
    index = {k: i for i, k in enumerate(keys)}
    row_of = {rid: row for row, (rid, _) in enumerate(records)}
    return {
        "keys": keys,
        # what a lineage node shows: lineage.to_json's first path and type (in sorted order)
        "path": _column_block([min(arts[k].paths) if arts[k].paths else None for k in keys]),
        "type": _column_block([min(arts[k].types) if arts[k].types else None for k in keys]),
        "canon": {h: index[k] for h, k in graph._canon.items() if h != k},  # aliases only
        "inputs": [[index[k] for k in inputs.get(rid, ())] for rid, _ in records],
        "outputs": [[index[k] for k in outputs.get(rid, ())] for rid, _ in records],
        "producers": [[row_of[rid] for rid in producers.get(k, ())] for k in keys],
        "consumers": [[row_of[rid] for rid in consumers.get(k, ())] for k in keys],
    }


def _write_graph(records: list[tuple[str, dict[str, Any]]], tags: dict[str, dict[str, Any]], writer: _Writer) -> None:
    """The lineage graph and the events, by row number."""
    writer.put("graph", _graph_file(records))
    hashes: dict[str, int] = {}
    ev: dict[str, list[Any]] = {"row": [], "dir": [], "hash": [], "path": [], "type": [], "kind": [], "size": []}
    for row, (_rid, r) in enumerate(records):
        for direction, name in ((0, "inputs"), (1, "outputs")):
            items = r.get(name)
            for item in items if isinstance(items, list) else ():
                h = item.get("hash") if isinstance(item, dict) else None
                if not isinstance(h, str):
                    continue
                ev["row"].append(row)
                ev["dir"].append(direction)
                ev["hash"].append(hashes.setdefault(h, len(hashes)))
                for field in ("path", "type", "kind"):
                    value = item.get(field)
                    ev[field].append(value if isinstance(value, str) else None)
                size = item.get("size")
                ev["size"].append(size if type(size) is int else None)
    pairs: dict[int, set[str]] = {}  # the index's alias pairs, both ways (cmfgit.index.derive)
    for _rid, r in records:
        for name in ("inputs", "outputs"):
            items = r.get(name)
            for item in items if isinstance(items, list) else ():
                h = item.get("hash") if isinstance(item, dict) else None
                aliases = item.get("aliases") if isinstance(item, dict) else None
                if isinstance(h, str) and isinstance(aliases, list):
                    for a in aliases:
                        if isinstance(a, str) and a != h:
                            pairs.setdefault(hashes[h], set()).add(a)
                            if a in hashes:
                                pairs.setdefault(hashes[a], set()).add(h)
    writer.put(
        "events",
        {
            "hashes": list(hashes),
            "aliases": {str(i): sorted(found) for i, found in pairs.items()},
            "tags": {str(i): tags[h] for h, i in hashes.items() if tags.get(h)},
            **{k: _column_block(v) for k, v in ev.items()},
        },
    )


def _pipelines(q: Any, records: list[tuple[str, dict[str, Any]]], rowids: Sequence[int]) -> dict[str, Any]:
    """The pipelines endpoint (api.pipelines) over the site's executions, from the records in
    memory (one pass; SQL over the events would rescan them per stage)."""
    db = q.db
    db.execute("CREATE TEMP TABLE IF NOT EXISTS site_sel(rowid INTEGER PRIMARY KEY)")
    db.execute("DELETE FROM site_sel")
    db.executemany("INSERT INTO site_sel VALUES (?)", ((r,) for r in rowids))
    rows = db.execute(
        "SELECT pipeline, stage, count(*), max(started_at), sum(exit_code != 0) FROM executions "
        "WHERE rowid IN (SELECT rowid FROM site_sel) GROUP BY pipeline, stage ORDER BY pipeline, stage"
    ).fetchall()
    from cmfgit.ui import api

    producers: dict[str, set[tuple[str, str]]] = {}  # hash -> (pipeline, stage) of the runs that wrote it
    sampled: dict[tuple[str, str], int] = {}
    reads: list[tuple[str, str, str]] = []  # (pipeline, stage, hash) read by the newest runs of each stage
    for _rid, r in records:  # (newest first)
        pipeline, stage = r.get("pipeline"), r.get("stage")
        if not (isinstance(pipeline, str) and isinstance(stage, str)):
            continue  # (SQL's = and != are never true for a null)
        outputs = r.get("outputs")
        for item in outputs if isinstance(outputs, list) else ():
            h = item.get("hash") if isinstance(item, dict) else None
            if isinstance(h, str):
                producers.setdefault(h, set()).add((pipeline, stage))
        seen = sampled.get((pipeline, stage), 0)
        if seen >= api.STAGE_SAMPLE:  # api.pipelines looks at the newest runs of a stage only
            continue
        sampled[(pipeline, stage)] = seen + 1
        inputs = r.get("inputs")
        for item in inputs if isinstance(inputs, list) else ():
            h = item.get("hash") if isinstance(item, dict) else None
            if isinstance(h, str):
                reads.append((pipeline, stage, h))
    edges: dict[str, set[tuple[str, str]]] = {}
    for pipeline, stage, h in reads:
        for other, before in producers.get(h, ()):
            if other == pipeline and before != stage:
                edges.setdefault(pipeline, set()).add((before, stage))
    out: dict[str, dict[str, Any]] = {}
    for pipeline, stage, count, last, failed in rows:
        p = out.setdefault(pipeline, {"name": pipeline, "runs": 0, "failed": 0, "last": None, "stages": []})
        p["runs"] += count
        p["failed"] += failed or 0
        p["last"] = max(filter(None, [p["last"], last]), default=None)
        p["stages"].append({"name": stage, "runs": count, "failed": failed or 0, "last": last})
    for name, p in out.items():
        p["stages"].sort(key=lambda s: natural_key(str(s["name"])))
        p["edges"] = [{"from": a, "to": b} for a, b in sorted(edges.get(name, ()))]
    return {"pipelines": list(out.values())}
