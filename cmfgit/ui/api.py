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


# -- helpers --------------------------------------------------------------------------


def natural(names: Sequence[str]) -> list[str]:
    """Names in natural order: ``lr_2`` before ``lr_10``."""
    return sorted(names, key=natural_key)


def status_of(exit_code: Any, ended_at: Any) -> str:
    """``ok``, ``failed``, or ``running`` (no exit code and no end time yet)."""
    if isinstance(exit_code, int) and not isinstance(exit_code, bool):
        return "ok" if exit_code == 0 else "failed"
    return "running" if ended_at is None else "ok"


def duration_of(started_at: Any, ended_at: Any) -> float | None:
    """Seconds from start to end, or None when either time is missing or unreadable."""
    start, end = _time(started_at), _time(ended_at)
    if start is None or end is None:
        return None
    return round((end - start).total_seconds(), 6)


def _time(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


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
        "executions": _count(q, "SELECT count(*) FROM executions"),
        "records": _count(
            q, f"SELECT count(*) FROM records WHERE kind != {BAD} AND rowid NOT IN (SELECT rowid FROM hidden)"
        ),
        "commit_url": commit_url(remote),
        "version": __version__,
        "generated_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }


def run_row(obj: dict[str, Any], params: Sequence[str] | None, metrics: Sequence[str] | None) -> dict[str, Any]:
    """One execution object as a row of the runs table (all params/metrics when None)."""
    p = _mapping(obj.get("params"))
    m = _mapping(obj.get("metrics"))
    return {
        "id": obj["id"],
        "pipeline": obj.get("pipeline"),
        "stage": obj.get("stage"),
        "started_at": obj.get("started_at"),
        "duration": duration_of(obj.get("started_at"), obj.get("ended_at")),
        "status": status_of(obj.get("exit_code"), obj.get("ended_at")),
        "exit_code": obj.get("exit_code"),
        "site": obj.get("site"),
        "params": {k: p[k] for k in (natural(list(p)) if params is None else params) if k in p},
        "metrics": {k: m[k] for k in (natural(list(m)) if metrics is None else metrics) if k in m},
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
    if hasattr(q, "count_executions"):  # paging in the index (h-uibench)
        found = q.execution_records(where, sort=sort, limit=limit, offset=offset)  # type: ignore[call-arg,unused-ignore]
        total = q.count_executions(where)
    else:
        found = q.execution_records(where, sort=sort, limit=offset + limit)[offset:]
        total = len(q.execution_rowids(where, sort=sort))
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
        "rows": [run_row(obj, columns["params"], columns["metrics"]) for obj in objects],
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
