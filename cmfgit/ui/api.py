"""The UI's JSON API: one plain function per endpoint, over a :class:`cmfgit.query.CmfQuery`.

Each function takes the query and the request's parameters as keyword arguments
and returns the endpoint's JSON shape (docs/json.md, "The UI API"). Nothing here
speaks HTTP: ``server.py`` serves these, and ``cmfgit site build`` calls them to
write its data files. :func:`call` reads an endpoint's parameters from strings
(a query string's), and :func:`error_payload` turns an error into the one JSON
error both use.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from cmfgit import compare
from cmfgit.errors import CmfgitError, ObjectNotFound, UsageError
from cmfgit.index import BAD
from cmfgit.query import CmfQuery
from cmfgit.views import natural_key
from cmfgit.where import WhereError

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000  # rows of one page
DEFAULT_COLUMNS = 5  # params (and metrics) shown when the request names none
MAX_NODES = 2000  # a lineage graph larger than this is cut (``truncated``)
MAX_COMPARE = 50
MAX_VERSIONS = 500  # versions of an artifact's path listed
MAX_USES = 1000  # runs that used an artifact listed


# -- helpers --------------------------------------------------------------------------


def natural(names: Sequence[str]) -> list[str]:
    """Names in natural order: ``lr_2`` before ``lr_10``."""
    return sorted(names, key=natural_key)


_SCP = re.compile(r"^(?:[\w.+-]+@)?([A-Za-z0-9.-]+):(?!//)(.+)$")
_URL = re.compile(r"^(?P<scheme>[a-z][a-z0-9+.-]*)://(?:[^@/]*@)?(?P<host>[^/:]+)(?::(?P<port>\d+))?/(?P<path>.+)$")


def web_url(remote: Any) -> tuple[str, str] | None:
    """The web page of a GitHub, GitLab, Gitea/Forgejo or Bitbucket remote URL, and its kind
    (``github``...); None for any other remote (a local path, an unknown host)."""
    if not isinstance(remote, str) or not remote.strip():
        return None
    text = remote.strip()
    m = _URL.match(text)
    if m is not None:
        scheme, host, port, path = m["scheme"], m["host"].lower(), m["port"], m["path"]
        web = "http" if scheme == "http" else "https"
        netloc = f"{host}:{port}" if port and scheme in ("http", "https") else host
    else:
        scp = _SCP.match(text)
        if scp is None or "/" in scp[1]:
            return None
        host, path, web, netloc = scp[1].lower(), scp[2], "https", scp[1].lower()
    path = path.strip("/")
    path = path[:-4] if path.endswith(".git") else path
    if not path or ".." in path.split("/"):
        return None
    if host == "github.com" or "github" in host:
        kind = "github"
    elif "gitlab" in host:
        kind = "gitlab"
    elif "gitea" in host or "forgejo" in host or host == "codeberg.org":
        kind = "gitea"
    elif host == "bitbucket.org":
        kind = "bitbucket"
    else:
        return None
    return f"{web}://{netloc}/{path}", kind


_COMMIT_PAGE = {"github": "/commit/", "gitlab": "/-/commit/", "gitea": "/commit/", "bitbucket": "/commits/"}


def commit_url(remote: Any, commit: str = "{commit}") -> str | None:
    """The commit page of ``commit`` on the remote's web host (``{commit}`` left in: a template)."""
    found = web_url(remote)
    if found is None:
        return None
    base, kind = found
    return base + _COMMIT_PAGE[kind] + commit


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _count(q: CmfQuery, sql: str, args: Sequence[Any] = ()) -> int:
    (n,) = q.db.execute(sql, list(args)).fetchone()
    return int(n or 0)


def _check_page(offset: int, limit: int) -> None:
    if offset < 0:
        raise UsageError("offset must be >= 0")
    if not 0 <= limit <= MAX_LIMIT:
        raise UsageError(f"limit must be between 0 and {MAX_LIMIT}")


# -- endpoints ---------------------------------------------------------------------------


def info(q: CmfQuery) -> dict[str, Any]:
    """What the page shows in its header: the repository, the scope and the counts."""
    from cmfgit import __version__, gitutil

    remote = None
    try:
        remote = gitutil.config_get(q.repo.root, f"remote.{q.scope.remote or 'origin'}.url")
    except CmfgitError:
        pass
    return {
        "name": q.repo.root.name,
        "scope": q.scope.describe(),
        "executions": q.count_executions(),
        "records": _count(
            q, f"SELECT count(*) FROM records WHERE kind != {BAD} AND rowid NOT IN (SELECT rowid FROM hidden)"
        ),
        "unreadable": q.unreadable(),
        "commit_url": commit_url(remote),
        "version": __version__,
        "generated_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }


def _common(objects: Sequence[dict[str, Any]], ns: str, few: int) -> list[str]:
    counts = Counter(k for obj in objects if isinstance(obj.get(ns), dict) for k in obj[ns])
    ranked = sorted(counts, key=lambda k: (-counts[k], natural_key(k)))
    return natural(ranked[:few])


def runs(
    q: CmfQuery,
    *,
    where: str | None = None,
    sort: str | None = None,
    offset: int = 0,
    limit: int = DEFAULT_LIMIT,
    params: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
) -> dict[str, Any]:
    """A page of executions (``--where``/``--sort`` as ``cmfgit log``), with the keys to choose columns from.

    ``params``/``metrics``: the columns; None chooses the most common few of the page's runs
    (and the sort key, when it is one)."""
    _check_page(offset, limit)
    where = where if where is not None and where.strip() else None
    sort = sort if sort is not None and sort.strip() else None
    found = q.execution_records(where, sort=sort, limit=limit, offset=offset)
    total = q.count_executions(where)
    objects = q.as_objects(found)
    columns: dict[str, list[str]] = {}
    for ns, chosen in (("params", params), ("metrics", metrics)):
        if chosen is None:
            picked = _common(objects, ns, DEFAULT_COLUMNS)
            key = (sort or "").lstrip("+-").strip()
            if key.startswith(ns + ".") and key[len(ns) + 1 :] not in picked:
                picked = natural([*picked, key[len(ns) + 1 :]])
            columns[ns] = picked
        else:
            columns[ns] = list(dict.fromkeys(k for k in chosen if k))
    return {
        "total": total,
        "offset": offset,
        "limit": limit,
        "rows": [compare.run_row(obj, columns["params"], columns["metrics"]) for obj in objects],
        "keys": {
            "params": natural(q.keys("params")),
            "metrics": natural(q.keys("metrics")),
            "tags": natural(q.keys("tags")),
        },
        "columns": columns,
    }


def run(q: CmfQuery, *, id: str) -> dict[str, Any]:
    """One execution: its ``cmfgit show --json`` object, its step metrics and its commit's web page."""
    from cmfgit import recordcommits

    rid, record = q.record(q.resolve_record(id, executions_only=True))
    obj = q.as_object(rid, record)
    obj["metadata_commit"] = recordcommits.describe(q.repo, q.scope, [rid])[rid]
    steps = obj.get("step_metrics")
    git = _mapping(obj.get("git"))
    commit = git.get("commit")
    return {
        "run": obj,
        "steps": {k: steps[k] for k in natural(list(steps))} if isinstance(steps, dict) else {},
        "code_url": commit_url(git.get("remote"), commit) if isinstance(commit, str) and commit else None,
    }


def compare_runs(q: CmfQuery, *, ids: Sequence[str]) -> dict[str, Any]:
    """Runs side by side with deltas against the first (``cmfgit compare --json``, cmfgit/compare.py)."""
    if len(ids) > MAX_COMPARE:
        raise UsageError(f"compare at most {MAX_COMPARE} runs at once, not {len(ids)}")
    return compare.compare(q, list(ids))


def lineage(
    q: CmfQuery, *, target: str, dir: str = "up", depth: int | None = None, max_nodes: int = MAX_NODES
) -> dict[str, Any]:
    """The lineage graph of ``target`` (as ``cmfgit lineage`` takes it: a path, a hash, an id, @N),
    nearest nodes first; cut at ``max_nodes`` (``truncated``)."""
    from cmfgit import lineage as lin
    from cmfgit.graph import DIRECTIONS

    if dir not in DIRECTIONS:
        raise UsageError(f"dir must be one of {', '.join(DIRECTIONS)}, not '{dir}'")
    if depth is not None and depth < 0:
        raise UsageError("depth must be >= 0")
    roots, _understood = lin.resolve_target(q, target, cwd=q.repo.root)
    result, graph = q.lineage(roots, dir, depth)
    document = lin.to_json(result, graph)
    kept = document["nodes"][:max_nodes]
    nodes = []
    for n in kept:
        if n["kind"] == "execution":
            summary = graph.executions.get(n["id"], {})
            nodes.append(
                {
                    "id": n["id"],
                    "kind": "execution",
                    "label": f"{n.get('pipeline')}/{n.get('stage')}",
                    "type": summary.get("type"),
                    "pipeline": n.get("pipeline"),
                    "stage": n.get("stage"),
                    "path": None,
                    "status": compare.status(summary),
                    "started_at": n.get("started_at"),
                    "level": n["level"],
                }
            )
        else:
            paths = n.get("paths") or []
            path = paths[0] if paths else None
            nodes.append(
                {
                    "id": n["id"],
                    "kind": "artifact",
                    "label": path.rstrip("/").rsplit("/", 1)[-1] if path else n["id"][:19],
                    "type": n.get("type"),
                    "pipeline": None,
                    "stage": None,
                    "path": path,
                    "status": None,
                    "started_at": None,
                    "level": n["level"],
                }
            )
    ids = {n["id"] for n in nodes}
    edges = [
        {"source": e["source"], "target": e["target"], "role": e["event"]}
        for e in document["edges"]
        if e["source"] in ids and e["target"] in ids
    ]
    return {
        "roots": document["roots"],
        "nodes": nodes,
        "edges": edges,
        "truncated": len(kept) < len(document["nodes"]),
    }


def _artifact_row(a: dict[str, Any]) -> dict[str, Any]:
    paths = a.get("paths") or []
    return {
        "hash": a["hash"],
        "path": paths[0] if paths else None,
        "paths": paths,
        "type": a.get("type"),
        "size": a.get("size"),
        "last_used": a.get("last_seen"),
        "uses": len(a.get("producers") or []) + len(a.get("consumers") or []),
    }


def artifacts(
    q: CmfQuery,
    *,
    type: str | None = None,
    path: str | None = None,
    offset: int = 0,
    limit: int = DEFAULT_LIMIT,
) -> dict[str, Any]:
    """A page of artifacts, most recently used first; ``type`` exactly, ``path`` a part of a path."""
    _check_page(offset, limit)
    type = type or None
    types = natural([r[0] for r in q.db.execute("SELECT DISTINCT type FROM events WHERE type IS NOT NULL")])
    if path:
        cond, args = "instr(ev.path, ?) > 0", [path]
        if type is not None:
            cond, args = cond + " AND ev.type = ?", [path, type]
        total = _count(q, f"SELECT count(DISTINCT ev.art) FROM events ev WHERE {cond}", args)
        page = [
            r[0]
            for r in q.db.execute(
                "SELECT a.hash FROM events ev JOIN artifacts a ON a.rowid = ev.art "
                f"JOIN executions e ON e.rowid = ev.exec WHERE {cond} "
                "GROUP BY ev.art ORDER BY max(e.started_at) DESC, a.hash LIMIT ? OFFSET ?",
                [*args, limit, offset],
            )
        ]
        rows = q.artifacts(type=type, hashes=page) if page else []
    else:
        total = _count(
            q,
            "SELECT count(DISTINCT art) FROM events" + (" WHERE type = ?" if type is not None else ""),
            [type] if type is not None else [],
        )
        rows = q.artifacts(type=type, limit=offset + limit)[offset:] if limit else []
    return {"total": total, "offset": offset, "limit": limit, "types": types, "rows": [_artifact_row(a) for a in rows]}


def artifact(q: CmfQuery, *, hash: str) -> dict[str, Any]:
    """One artifact (a hash or a prefix of one): the versions recorded at its paths, newest
    first (at most ``MAX_VERSIONS``), and the runs that wrote (``output``) or read (``input``)
    this version, newest first (at most ``MAX_USES``)."""
    found = q.artifacts(hashes=q.resolve_artifacts(hash))
    if not found:
        raise ObjectNotFound(hash, f"no artifact matches '{hash}'")
    main = found[0]
    paths = main.get("paths") or []
    versions: list[dict[str, Any]] = []
    versions_total = 0
    if paths:
        marks = ",".join("?" * len(paths))
        versions_total = _count(q, f"SELECT count(DISTINCT art) FROM events WHERE path IN ({marks})", paths)
        for h, first, size, producer, at in q.db.execute(
            f"""SELECT a.hash, min(e.started_at) AS first, max(ev.size), (
                    SELECT r.id FROM events p JOIN executions pe ON pe.rowid = p.exec
                    JOIN records r ON r.rowid = p.exec WHERE p.art = ev.art AND p.dir = 1
                    ORDER BY pe.started_at, r.id LIMIT 1), min(ev.path)
                FROM events ev JOIN artifacts a ON a.rowid = ev.art JOIN executions e ON e.rowid = ev.exec
                WHERE ev.path IN ({marks}) GROUP BY ev.art ORDER BY first DESC, a.hash LIMIT {MAX_VERSIONS}""",
            paths,
        ):
            versions.append({"hash": h, "size": size, "first_seen": first, "produced_by": producer, "path": at})
    names = [main["hash"], *(main.get("aliases") or [])]
    marks = ",".join("?" * len(names))
    arts = f"SELECT rowid FROM artifacts WHERE hash IN ({marks})"
    used_total = _count(q, f"SELECT count(*) FROM events WHERE art IN ({arts})", names)
    used = [
        {
            "execution": rid,
            "pipeline": pipeline,
            "stage": stage,
            "role": "output" if direction == 1 else "input",
            "started_at": started,
            "status": compare.status({"exit_code": code, "ended_at": ended}),
        }
        for rid, pipeline, stage, direction, started, code, ended in q.db.execute(
            "SELECT r.id, e.pipeline, e.stage, ev.dir, e.started_at, e.exit_code, e.ended_at FROM events ev "
            "JOIN executions e ON e.rowid = ev.exec JOIN records r ON r.rowid = ev.exec "
            f"WHERE ev.art IN ({arts}) ORDER BY e.started_at DESC, r.id DESC, ev.dir DESC LIMIT {MAX_USES}",
            names,
        )
    ]
    return {
        "artifact": {
            "hash": main["hash"],
            "path": paths[0] if paths else None,
            "paths": paths,
            "type": main.get("type"),
            "size": main.get("size"),
            "aliases": main.get("aliases") or [],
            "tags": main.get("tags") or {},
        },
        "versions": versions,
        "versions_total": versions_total,
        "used_by": used,
        "used_total": used_total,
    }


STAGE_SAMPLE = 200  # the newest runs of each stage whose inputs give the stage DAG

# The stages (of the same pipeline) whose runs wrote what the newest runs of a stage read. Not
# over every run: a shared dataset that a million runs read makes that join a million times larger.
_STAGE_INPUTS = f"""
SELECT DISTINCT pe.stage FROM events i
JOIN events o ON o.art = i.art AND o.dir = 1 JOIN executions pe ON pe.rowid = o.exec
WHERE i.dir = 0 AND pe.pipeline = ? AND i.exec IN (
    SELECT rowid FROM executions WHERE pipeline = ? AND stage = ? ORDER BY started_at DESC LIMIT {STAGE_SAMPLE})
"""


def pipelines(q: CmfQuery) -> dict[str, Any]:
    """Pipelines, their stages with run counts, and the stage DAG the recorded lineage gives:
    an edge from stage A to stage B when one of the newest runs of B (``STAGE_SAMPLE``) read
    an artifact that a run of A wrote (same pipeline)."""
    found = q.pipelines()
    edges: dict[str, set[tuple[str, str]]] = {}
    for p in found:
        for stage in p["stages"]:
            for (before,) in q.db.execute(_STAGE_INPUTS, (p["pipeline"], p["pipeline"], stage["stage"])):
                if before != stage["stage"]:
                    edges.setdefault(p["pipeline"], set()).add((before, stage["stage"]))
    out = []
    for p in found:
        out.append(
            {
                "name": p["pipeline"],
                "runs": p["executions"],
                "failed": p["failed"],
                "last": p["last_run"],
                "stages": [
                    {"name": s["stage"], "runs": s["executions"], "failed": s["failed"], "last": s["last_run"]}
                    for s in sorted(p["stages"], key=lambda s: natural_key(str(s["stage"])))
                ],
                "edges": [{"from": a, "to": b} for a, b in sorted(edges.get(p["pipeline"], ()))],
            }
        )
    return {"pipelines": out}


# -- the dispatcher ----------------------------------------------------------------------


def _int(params: Mapping[str, str], name: str, default: int | None) -> int | None:
    text = params.get(name)
    if text is None or not text.strip():
        return default
    try:
        return int(text.strip())
    except ValueError:
        raise UsageError(f"{name} must be a whole number, not '{text}'") from None


def _list(params: Mapping[str, str], name: str) -> list[str] | None:
    text = params.get(name)
    if text is None:
        return None
    return [part.strip() for part in text.split(",") if part.strip()]


def _text(params: Mapping[str, str], name: str, required: bool = False) -> str | None:
    text = params.get(name)
    if required and (text is None or not text.strip()):
        raise UsageError(f"missing parameter '{name}'")
    return text


def _runs(q: CmfQuery, p: Mapping[str, str]) -> dict[str, Any]:
    return runs(
        q,
        where=_text(p, "where"),
        sort=_text(p, "sort"),
        offset=_int(p, "offset", 0) or 0,
        limit=_int(p, "limit", DEFAULT_LIMIT) or 0,
        params=_list(p, "params"),
        metrics=_list(p, "metrics"),
    )


ENDPOINTS: dict[str, Callable[[CmfQuery, Mapping[str, str]], dict[str, Any]]] = {
    "info": lambda q, p: info(q),
    "runs": _runs,
    "run": lambda q, p: run(q, id=_text(p, "id", required=True) or ""),
    "compare": lambda q, p: compare_runs(q, ids=_list(p, "ids") or []),
    "lineage": lambda q, p: lineage(
        q, target=_text(p, "target", required=True) or "", dir=_text(p, "dir") or "up", depth=_int(p, "depth", None)
    ),
    "artifacts": lambda q, p: artifacts(
        q,
        type=_text(p, "type"),
        path=_text(p, "path"),
        offset=_int(p, "offset", 0) or 0,
        limit=_int(p, "limit", DEFAULT_LIMIT) or 0,
    ),
    "artifact": lambda q, p: artifact(q, hash=_text(p, "hash", required=True) or ""),
    "pipelines": lambda q, p: pipelines(q),
}


def call(q: CmfQuery, endpoint: str, params: Mapping[str, str]) -> dict[str, Any]:
    """Answer ``endpoint`` with parameters given as text (a query string's values)."""
    handler = ENDPOINTS.get(endpoint)
    if handler is None:
        raise ObjectNotFound(endpoint, f"no such endpoint: '{endpoint}'")
    return handler(q, params)


def error_payload(exc: BaseException) -> tuple[int, dict[str, Any]]:
    """(HTTP status, ``{"error", "where"}``) of an error: 404 for what is not there, 400 for
    other user errors (a ``--where`` error carries its text and the caret's position), 500 else."""
    if isinstance(exc, WhereError):
        return 400, {"error": str(exc).splitlines()[0], "where": {"text": exc.text, "pos": exc.pos}}
    if isinstance(exc, ObjectNotFound):
        return 404, {"error": str(exc), "where": None}
    if isinstance(exc, CmfgitError):
        return 400, {"error": " ".join(line.strip() for line in str(exc).splitlines()), "where": None}
    return 500, {"error": f"internal error: {type(exc).__name__}", "where": None}
