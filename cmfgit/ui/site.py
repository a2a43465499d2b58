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
  reads them from the packs) and is ~100 MB at 100,000 runs with its indexes. A range
  reader also needs a WebAssembly SQLite (~1 MB) and one round trip per B-tree page.
- Chunks can be laid out for what the pages ask. The runs table is stored by column and
  in blocks of rows (``BLOCK_ROWS``), in the default order (newest first, then id): the
  first page is one small file (``runs-head``, the first ``HEAD_ROWS`` rows), and a
  ``--where`` or a sort over 100,000 runs loads only the columns it names (a column of
  100,000 numbers is ~0.7 MB). A run's details are grouped by id prefix, so opening a
  run loads one file of ~30-100 runs.

The build reads every record once (the run pages are ``cmfgit show --json``), so its time
is mostly parsing records. Figures: docs/benchmarks.md, "The static site".

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

import json
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

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


def _parse_time(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def duration(started: Any, ended: Any) -> float | None:
    """Seconds from start to end, or None when either is missing or unreadable."""
    a, b = _parse_time(started), _parse_time(ended)
    return None if a is None or b is None else (b - a).total_seconds()


def status(exit_code: Any, ended_at: Any) -> str:
    if exit_code == 0 and not isinstance(exit_code, bool):
        return "ok"
    if exit_code is None and ended_at is None:
        return "running"
    return "failed"


def natural_key(text: str) -> tuple[tuple[int, int | str], ...]:
    from cmfgit.views import natural_key as key

    return key(text)


def _json_safe(record: dict[str, Any]) -> dict[str, Any]:
    from cmfgit.reading import _json_safe as safe

    return safe(record)  # type: ignore[no-any-return]


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
    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.data.mkdir(parents=True)
        self.files = 0
        self.bytes = 0

    def put(self, name: str, payload: Any) -> None:
        text = f"CMF_DATA.put({_dumps(name)},{_dumps(payload)});\n".encode()
        (self.data / f"{name}.js").write_bytes(text)
        self.files += 1
        self.bytes += len(text)

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
    from cmfgit.query import CmfQuery

    start = time.perf_counter()
    target = Path(out).absolute()
    check_target(target)
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


def _records(q: Any, rowids: Sequence[int]) -> list[tuple[str, dict[str, Any]]]:
    from cmfgit.index import load_record

    found = q._index.read(rowids)
    return [(rid, load_record(data, rid)) for rid, data in (found[r] for r in rowids if r in found)]


def _write_data(
    q: Any, rowids: Sequence[int], writer: _Writer, *, where: str | None, pipeline: str | None
) -> dict[str, Any]:
    from cmfgit import recordcommits

    records = _records(q, rowids)
    if len(records) < len(rowids):  # files changed under the build: ask again once
        rowids = q.execution_rowids(where, pipeline=pipeline)
        records = _records(q, rowids)
    rowid_of = dict(zip([rid for rid, _ in records], rowids)) if len(records) == len(rowids) else None
    ids = [rid for rid, _ in records]
    if rowid_of is None:
        wanted = {rid: None for rid in ids}
        rowid_of = {
            rid: rowid
            for rowid, rid in q.db.execute("SELECT r.rowid, r.id FROM records r JOIN executions e ON e.rowid = r.rowid")
            if rid in wanted
        }
    tags = q.tags()
    commits = recordcommits.describe(q.repo, q.scope, ids)
    filtered = _index_values(q, [rowid_of[rid] for rid in ids])
    runs = _Runs(records, filtered, tags)
    manifest: dict[str, Any] = {
        "mode": "static",
        "format": FORMAT,
        "block": BLOCK_ROWS,
        "head": HEAD_ROWS,
        "count": len(records),
        "info": _info(q, len(records), where, pipeline),
    }
    manifest.update(runs.write(writer))
    manifest["prefix"] = _write_runs(q, records, tags, commits, writer)
    _write_graph(records, writer)
    writer.put("pipelines", _pipelines(records))
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


class _Runs:
    """The runs table by column, in the default order."""

    def __init__(
        self,
        records: list[tuple[str, dict[str, Any]]],
        filtered: list[tuple[dict[str, Any], dict[str, Any]]],
        tags: dict[str, dict[str, Any]],
    ) -> None:
        self.records = records
        self.filtered = filtered
        self.tags = tags

    def write(self, writer: _Writer) -> dict[str, Any]:
        records, n = self.records, len(self.records)
        core: dict[str, list[Any]] = {name: [] for name in CORE_COLUMNS}
        for rid, r in records:
            git = r.get("git") if isinstance(r.get("git"), dict) else {}
            code = r.get("exit_code")
            code = code if type(code) is int else None
            values = {
                "id": rid,
                "pipeline": r.get("pipeline"),
                "stage": r.get("stage"),
                "type": r.get("type"),
                "site": r.get("site"),
                "host": r.get("host"),
                "user": r.get("user"),
                "exit_code": code,
                "started_at": r.get("started_at"),
                "ended_at": r.get("ended_at"),
                "uuid": r.get("uuid"),
                "commit": git.get("commit"),
                "branch": git.get("branch"),
            }
            for name, value in values.items():
                core[name].append(value if name == "exit_code" or isinstance(value, str) else None)
            core["duration"].append(duration(r.get("started_at"), r.get("ended_at")))
            core["status"].append(status(r.get("exit_code"), r.get("ended_at")))
        columns: dict[str, int] = {}
        for name, values in core.items():
            columns[name] = self._put_column(writer, name, values)
        keys: dict[str, list[str]] = {}
        indexed: dict[str, list[str]] = {}
        counts: dict[str, dict[str, int]] = {}
        for ns, which in (("params", 0), ("metrics", 1)):
            seen: dict[str, int] = {}
            good: set[str] = set()
            for values in self.filtered:
                for k, v in values[which].items():
                    seen[k] = seen.get(k, 0) + 1
                    if v is not None:
                        good.add(k)
            names = sorted(seen, key=natural_key)
            keys[ns] = names
            indexed[ns] = sorted(good)  # as the index's keys table (SQL order): the did-you-mean hints
            counts[ns] = seen
            for i, key in enumerate(names):
                vals = [values[which].get(key) for values in self.filtered]
                display: dict[int, Any] = {}
                for row, (_rid, r) in enumerate(records):
                    mapping = r.get(ns)
                    if isinstance(mapping, dict) and key in mapping:
                        shown = _display(mapping[key])
                        if shown is None or shown != vals[row] or type(shown) is not type(vals[row]):
                            display[row] = shown
                self._put_column(writer, f"{ns[0]}{i}", vals, display)
        tag_names = sorted({name for rid, _ in records for name in self.tags.get(rid, {})}, key=natural_key)
        keys["tags"] = tag_names
        for i, name in enumerate(tag_names):
            vals = [self.tags.get(rid, {}).get(name) for rid, _ in records]
            self._put_column(writer, f"t{i}", vals)
        writer.put("runs-head", {"rows": [self.row(i) for i in range(min(HEAD_ROWS, n))]})
        return {
            "keys": keys,
            "indexed": indexed,
            "columns": _default_columns(counts),
            "blocks": (n + BLOCK_ROWS - 1) // BLOCK_ROWS,
        }

    def _put_column(self, writer: _Writer, name: str, values: list[Any], display: dict[int, Any] | None = None) -> int:
        blocks = 0
        for start in range(0, max(len(values), 1), BLOCK_ROWS):
            part = values[start : start + BLOCK_ROWS]
            shown = {i - start: v for i, v in (display or {}).items() if start <= i < start + BLOCK_ROWS}
            writer.put(f"runs-{name}-{blocks}", _column_block(part, shown))
            blocks += 1
        return blocks

    def row(self, i: int) -> dict[str, Any]:
        rid, r = self.records[i]
        return run_row(rid, r)


def _display(value: Any) -> Any:
    from cmfgit.reading import _json_safe as safe

    return safe(value)


def run_row(rid: str, r: dict[str, Any]) -> dict[str, Any]:
    """A row of the runs endpoint with every param and metric."""
    code = r.get("exit_code")
    params = r.get("params") if isinstance(r.get("params"), dict) else {}
    metrics = r.get("metrics") if isinstance(r.get("metrics"), dict) else {}
    return {
        "id": rid,
        "pipeline": r.get("pipeline"),
        "stage": r.get("stage"),
        "started_at": r.get("started_at"),
        "duration": duration(r.get("started_at"), r.get("ended_at")),
        "status": status(code, r.get("ended_at")),
        "exit_code": code if type(code) is int else None,
        "site": r.get("site"),
        "params": _display(params),
        "metrics": _display(metrics),
    }


def _default_columns(counts: dict[str, dict[str, int]]) -> dict[str, list[str]]:
    """The most common few params and metrics, in natural order."""
    out: dict[str, list[str]] = {}
    for ns, few in (("params", 4), ("metrics", 3)):
        seen = counts.get(ns, {})
        common = sorted(seen, key=lambda k: (-seen[k], natural_key(k)))[:few]
        out[ns] = sorted(common, key=natural_key)
    return out


def _info(q: Any, count: int, where: str | None, pipeline: str | None) -> dict[str, Any]:
    from cmfgit import __version__

    (records,) = q.db.execute("SELECT count(*) FROM records WHERE rowid NOT IN (SELECT rowid FROM hidden)").fetchone()
    scope = q.scope.describe()
    if pipeline:
        scope += f", pipeline {pipeline}"
    if where:
        scope += f", where {where}"
    return {
        "name": q.repo.root.name,
        "scope": scope,
        "executions": count,
        "records": int(records),
        "commit_url": _commit_url(q),
        "version": __version__,
        "generated_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _commit_url(q: Any) -> str | None:
    """``https://host/owner/repo/commit/{commit}`` for a GitHub/GitLab/Gitea-like origin, with
    no credentials (the URL is rebuilt from host and path only)."""
    from cmfgit import gitutil

    url = gitutil.config_get(q.repo.root, "remote.origin.url")
    return commit_url_of(url.strip()) if url else None


def commit_url_of(url: str) -> str | None:
    import re

    m = re.match(r"^(?:https?://)(?:[^@/]*@)?([^/:]+)(?::\d+)?/(.+?)(?:\.git)?/?$", url) or re.match(
        r"^(?:ssh://)?(?:[^@/]*@)?([^/:]+)[:/](?!\d+/)(.+?)(?:\.git)?/?$", url
    )
    if not m:
        return None
    host, path = m.group(1), m.group(2).strip("/")
    if not host or "/" not in path:
        return None
    return f"https://{host}/{path}/commit/{{commit}}"


def _write_runs(
    q: Any,
    records: list[tuple[str, dict[str, Any]]],
    tags: dict[str, dict[str, Any]],
    commits: dict[str, dict[str, Any]],
    writer: _Writer,
) -> int:
    """The run payloads, grouped by id prefix; returns the prefix length."""
    prefix = 1
    while len(records) > RUNS_PER_FILE * 16**prefix and prefix < 4:
        prefix += 1
    template = _commit_url(q)
    groups: dict[str, dict[str, Any]] = {}
    for rid, record in records:
        obj = {"id": rid, **_json_safe(record)}
        obj["tags"] = dict(tags.get(rid, {}))
        obj["metadata_commit"] = commits.get(rid, {"commit": None, "pending": False})
        steps = record.get("step_metrics") if isinstance(record.get("step_metrics"), dict) else {}
        git = record.get("git") if isinstance(record.get("git"), dict) else {}
        commit = git.get("commit")
        code_url = template.replace("{commit}", commit) if template and isinstance(commit, str) else None
        groups.setdefault(rid[:prefix], {})[rid] = {"run": obj, "steps": _display(steps), "code_url": code_url}
    for key, payload in sorted(groups.items()):
        writer.put(f"run-{key}", payload)
    return prefix


def _write_graph(records: list[tuple[str, dict[str, Any]]], writer: _Writer) -> None:
    """The lineage graph (cmfgit.graph over every run) and the events, by row number."""
    from cmfgit.graph import Graph

    graph = Graph.build(records)
    arts = graph.artifacts
    keys = sorted(arts)
    index = {k: i for i, k in enumerate(keys)}
    canon = {h: index[k] for h, k in graph._canon.items() if h != k}  # aliases only
    row_of = {rid: row for row, (rid, _) in enumerate(records)}
    writer.put(
        "graph",
        {
            "keys": keys,
            "aliases": [sorted(arts[k].aliases) for k in keys],
            "paths": [sorted(arts[k].paths) for k in keys],
            "types": [sorted(arts[k].types) for k in keys],
            "size": [arts[k].size for k in keys],
            "canon": canon,
            "inputs": [[index[k] for k in graph.inputs.get(rid, ())] for rid, _ in records],
            "outputs": [[index[k] for k in graph.outputs.get(rid, ())] for rid, _ in records],
            "producers": [[row_of[rid] for rid in graph.producers.get(k, ())] for k in keys],
            "consumers": [[row_of[rid] for rid in graph.consumers.get(k, ())] for k in keys],
        },
    )
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
    writer.put("events", {"hashes": list(hashes), **{k: _column_block(v) for k, v in ev.items()}})


def _pipelines(records: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """The pipelines endpoint: stages with counts, and the stage DAG the lineage shows."""
    stages: dict[tuple[str, str], dict[str, Any]] = {}
    producers: dict[str, set[tuple[str, str]]] = {}
    for _rid, r in records:
        key = (str(r.get("pipeline")), str(r.get("stage")))
        s = stages.setdefault(key, {"name": key[1], "runs": 0, "failed": 0, "last": None})
        s["runs"] += 1
        code = r.get("exit_code")
        if type(code) is int and code != 0:
            s["failed"] += 1
        started = r.get("started_at")
        if isinstance(started, str) and (s["last"] is None or started > s["last"]):
            s["last"] = started
        for item in r.get("outputs") or ():
            if isinstance(item, dict) and isinstance(item.get("hash"), str):
                producers.setdefault(item["hash"], set()).add(key)
    edges: dict[str, set[tuple[str, str]]] = {}
    for _rid, r in records:
        key = (str(r.get("pipeline")), str(r.get("stage")))
        for item in r.get("inputs") or ():
            if isinstance(item, dict) and isinstance(item.get("hash"), str):
                for src in producers.get(item["hash"], ()):
                    if src[0] == key[0] and src != key:
                        edges.setdefault(key[0], set()).add((src[1], key[1]))
    out: dict[str, dict[str, Any]] = {}
    for (pipe, _stage), s in sorted(stages.items()):
        out.setdefault(pipe, {"name": pipe, "stages": [], "edges": []})["stages"].append(s)
    for pipe, pairs in edges.items():
        out[pipe]["edges"] = [{"from": a, "to": b} for a, b in sorted(pairs)]
    return {"pipelines": list(out.values())}
