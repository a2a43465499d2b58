"""``cmfgit mcp``: the metadata as MCP tools, over stdio, for AI assistants.

Each tool answers with the UI's payloads (cmfgit/ui/api.py: the ``--json`` shapes of
docs/json.md, paged with offset/limit) as compact JSON text. Every call opens the scope
afresh, so runs logged and tags set while the server runs show up. The server is
read-only unless ``allow_tag``: then a ``tag`` tool sets and removes tags (annotation
records, as ``cmfgit tag``).

A user error (a bad ``--where``, an unknown run) is a tool error carrying the message
the CLI prints; nothing but the protocol goes to stdout. The SDK (``mcp``, the extra
``cmfgit[mcp]``) is imported only here.
"""

from __future__ import annotations

import inspect
import json
import os
import typing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Optional

from cmfgit.errors import CmfgitError, UsageError
from cmfgit.index import Scope
from cmfgit.query import CmfQuery
from cmfgit.repo import Repo, open_repo

INSTALL = "pip install 'cmfgit[mcp]'"
MAX_NODES = 500  # lineage nodes one answer holds at most

INSTRUCTIONS = (
    "cmfgit's run metadata of one git repository: pipelines, stages, runs (executions) with their "
    "params, metrics, inputs and outputs (artifacts, by content hash), lineage and tags. "
    "Answers are compact JSON in the shapes of `cmfgit ... --json`. Find runs with search_runs "
    '(where: the --where language, e.g. `stage == "train" and metrics.acc > 0.9`; sort: '
    "`-metrics.acc`), then show_run, lineage, compare_runs, artifact, tags."
)


def _sdk() -> tuple[Any, type[Exception]]:
    """The SDK's server class and the exception that makes a tool error (mcp 2: the
    only major version tested; mcp 1's FastMCP moved and was renamed)."""
    try:
        from mcp.server.mcpserver import MCPServer
        from mcp.server.mcpserver.exceptions import ToolError
    except ImportError:
        raise CmfgitError(f"cmfgit mcp needs the MCP SDK 2: {INSTALL}") from None
    return MCPServer, ToolError


def compact(payload: Any) -> str:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, sort_keys=False, default=str)


def error_text(exc: CmfgitError) -> str:
    """The message of a tool error: a ``--where`` error keeps its caret lines, others are one line."""
    from cmfgit.where import WhereError

    if isinstance(exc, WhereError):
        return str(exc)
    return " ".join(line.strip() for line in str(exc).splitlines())


class Tools:
    """The tools' bodies, plain functions of plain arguments over one repository and scope."""

    def __init__(self, repo: Repo, scope: Scope) -> None:
        self.repo = repo
        self.scope = scope

    @contextmanager
    def query(self) -> Iterator[CmfQuery]:
        with CmfQuery(self.repo, scope=self.scope, warn=False) as q:
            yield q

    def pipelines(self) -> dict[str, Any]:
        from cmfgit.ui import api

        with self.query() as q:
            return api.pipelines(q)

    def search_runs(
        self,
        where: Optional[str] = None,
        sort: Optional[str] = None,
        offset: int = 0,
        limit: int = 20,
        params: Optional[list[str]] = None,
        metrics: Optional[list[str]] = None,
    ) -> dict[str, Any]:
        from cmfgit.ui import api

        with self.query() as q:
            return api.runs(q, where=where, sort=sort, offset=offset, limit=limit, params=params, metrics=metrics)

    def show_run(self, id: str) -> dict[str, Any]:
        from cmfgit.ui import api

        with self.query() as q:
            return api.run(q, id=id)

    def lineage(
        self, target: str, direction: str = "up", depth: Optional[int] = None, max_nodes: int = 200
    ) -> dict[str, Any]:
        from cmfgit.ui import api

        if not 1 <= max_nodes <= MAX_NODES:
            raise UsageError(f"max_nodes must be between 1 and {MAX_NODES}")
        with self.query() as q:
            return api.lineage(q, target=target, dir=direction, depth=depth, max_nodes=max_nodes)

    def compare_runs(self, ids: list[str]) -> dict[str, Any]:
        from cmfgit.ui import api

        if len(ids) < 2:
            raise UsageError("compare needs at least two runs")
        with self.query() as q:
            return api.compare_runs(q, ids=ids)

    def artifacts(
        self, type: Optional[str] = None, path: Optional[str] = None, offset: int = 0, limit: int = 20
    ) -> dict[str, Any]:
        from cmfgit.ui import api

        with self.query() as q:
            return api.artifacts(q, type=type, path=path, offset=offset, limit=limit)

    def artifact(self, hash: str) -> dict[str, Any]:
        from cmfgit.ui import api

        with self.query() as q:
            return api.artifact(q, hash=hash)

    def tags(self, target: str) -> dict[str, Any]:
        from cmfgit import tags as tagging

        with self.query() as q:
            key = tagging.resolve_one(q, target)
            return {"target": key, "annotation": None, "tags": q.tags_of(key)}

    def tag(
        self,
        target: str,
        set: Optional[dict[str, str]] = None,
        remove: Optional[list[str]] = None,
        commit: bool = False,
    ) -> dict[str, Any]:
        from cmfgit import tags as tagging

        changes: dict[str, str | None] = dict(tagging.parse_assignments(f"{k}={v}" for k, v in (set or {}).items()))
        for name in remove or []:
            if tagging.check_name(name) in changes:
                raise UsageError(f"tag '{name}' is both set and removed")
            changes[name] = None
        if not changes:
            raise UsageError("nothing to change: give set or remove (the tags tool lists them)")
        key, rid, now = tagging.tag(self.repo, target, changes, commit=commit)
        return {"target": key, "annotation": rid, "tags": now}


DESCRIPTIONS: dict[str, str] = {
    "pipelines": "Pipelines, their stages with run and failure counts and last run, and the stage DAG.",
    "search_runs": (
        "Search runs (executions), newest first. where: the --where language (e.g. "
        '`stage == "train" and params.lr < 0.05`, `exit_code != 0`, `tags.status == "production"`); '
        "sort: a field, `-` for descending (e.g. `-metrics.acc`); offset/limit page (total says how many); "
        "params/metrics: the columns to include (default: the most common few)."
    ),
    "show_run": "One run (an id prefix or @N): params, metrics, inputs, outputs, git, env, tags, step metrics.",
    "lineage": (
        "The lineage graph of a target (a path, an artifact hash prefix, a run id prefix or @N): "
        "direction `up` (what it came from), `down` (what came from it) or `both`; depth in hops; "
        "nearest nodes first, cut at max_nodes (truncated says so)."
    ),
    "compare_runs": "Runs side by side (id prefixes), with params, metrics and the deltas against the first.",
    "artifacts": "Artifacts, most recently used first; type exactly, path a part of a path; paged.",
    "artifact": (
        "One artifact (a hash or prefix): the versions recorded at its paths and the runs that wrote or read it."
    ),
    "tags": "The tags of a run or an artifact (an id or hash prefix, or a path).",
    "tag": (
        "Set (set: {key: value}) or remove (remove: [key]) tags of a run or an artifact; "
        "commit: commit the annotation record (only it)."
    ),
}

READ_ONLY = ["pipelines", "search_runs", "show_run", "lineage", "compare_runs", "artifacts", "artifact", "tags"]


def build(tools: Tools, *, allow_tag: bool = False) -> Any:
    """The SDK server with the tools registered (``tag`` only when ``allow_tag``)."""
    server_class, tool_error = _sdk()
    from cmfgit import __version__

    server = server_class(name="cmfgit", instructions=INSTRUCTIONS)
    if hasattr(server, "_mcp_server"):  # mcp 1: the version the handshake reports
        server._mcp_server.version = __version__
    options: dict[str, Any] = {}
    if "structured_output" in inspect.signature(server.tool).parameters:
        options["structured_output"] = False  # one text block of compact JSON, not a second copy
    annotations = _annotations()
    names = READ_ONLY + (["tag"] if allow_tag else [])
    for name in names:
        body = getattr(tools, name)
        extra = dict(options)
        if annotations is not None:
            extra["annotations"] = annotations(
                readOnlyHint=name != "tag", destructiveHint=False, idempotentHint=True, openWorldHint=False
            )
        server.tool(name=name, description=DESCRIPTIONS[name], **extra)(_wrap(body, tool_error))
    return server


def _annotations() -> Callable[..., Any] | None:
    try:
        from mcp.types import ToolAnnotations
    except ImportError:
        return None
    return ToolAnnotations  # type: ignore[no-any-return,unused-ignore]


def _wrap(body: Callable[..., dict[str, Any]], tool_error: type[Exception]) -> Callable[..., str]:
    """``body`` answering compact JSON text, its user errors made tool errors (same signature)."""

    def tool(*args: Any, **kwargs: Any) -> str:
        try:
            return compact(body(*args, **kwargs))
        except CmfgitError as exc:
            raise tool_error(error_text(exc)) from None

    tool.__name__ = body.__name__
    tool.__doc__ = body.__doc__
    hints = typing.get_type_hints(body)  # the annotations as types, not this module's strings
    signature = inspect.signature(body)
    parameters = [p.replace(annotation=hints.get(p.name, p.annotation)) for p in signature.parameters.values()]
    tool.__signature__ = signature.replace(parameters=parameters, return_annotation=str)  # type: ignore[attr-defined]
    tool.__annotations__ = {**{p.name: p.annotation for p in parameters}, "return": str}
    return tool


def serve(scope: Scope, *, repo: str | Path | None = None, allow_tag: bool = False) -> int:
    """Answer MCP requests on stdin/stdout until the client closes them."""
    _sdk()  # the install hint before anything else
    found = open_repo(repo)
    os.chdir(found.root)  # paths in targets are the repository's, wherever the client started us
    server = build(Tools(found, scope), allow_tag=allow_tag)
    server.run("stdio")
    return 0
