"""The OpenLineage and PROV exports as one call: select the executions, build, write or send.

The selection is that of ``cmfgit log``: a scope (checkout, ``--ref``, ``--all-branches``,
``--global``), ``--pipeline``, ``--stage``, ``--where`` and ``--since``; executions are
taken oldest first (by ``started_at``, then id), so events come in time order.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cmfgit.errors import UsageError

if TYPE_CHECKING:
    from cmfgit.index import Scope
    from cmfgit.repo import Repo

FORMATS = ("openlineage", "prov-json", "prov-n")


@dataclass
class Summary:
    executions: int
    written: int  # events (OpenLineage) or PROV records
    destination: str  # a file, a URL, or "" for standard output


def select(
    repo: Repo,
    scope: Scope | None = None,
    *,
    pipeline: str | None = None,
    stage: str | None = None,
    where: str | None = None,
    since: str | None = None,
) -> list[dict[str, Any]]:
    """The JSON objects of the selected executions, oldest first, with their ``metadata_commit``."""
    return list(objects(*select_data(repo, scope, pipeline=pipeline, stage=stage, where=where, since=since)))


def objects(
    found: list[tuple[str, bytes]], tags: dict[str, dict[str, Any]], commits: dict[str, Any]
) -> Iterator[dict[str, Any]]:
    """``{"id", **record, "tags", "metadata_commit"}`` of records given as bytes: the objects of
    ``log --json``, less its JSON-safe copy (the exporters replace NaN and infinities
    themselves, where they can occur: it is cheaper)."""
    from cmfgit.index import load_record

    for rid, data in found:
        obj = {"id": rid, **load_record(data, rid), "tags": dict(tags.get(rid, {}))}
        obj["metadata_commit"] = commits.get(rid)
        yield obj


def select_data(
    repo: Repo,
    scope: Scope | None = None,
    *,
    pipeline: str | None = None,
    stage: str | None = None,
    where: str | None = None,
    since: str | None = None,
) -> tuple[list[tuple[str, bytes]], dict[str, dict[str, Any]], dict[str, Any]]:
    """What :func:`select` gives, unparsed: (id, canonical bytes) of the selected executions,
    oldest first, their tags and their ``metadata_commit`` by id (the records are parsed
    where they are turned into events, in two processes for a long export)."""
    from cmfgit import recordcommits
    from cmfgit.query import CmfQuery, unreadable_note

    with CmfQuery(repo, scope=scope) as q:
        found = q.execution_data(where, pipeline=pipeline, stage=stage, since=since, sort="started_at")
        ids = [rid for rid, _ in found]
        tags = q.tags_for(ids)
        commits = recordcommits.describe(q.repo, q.scope, ids) if ids else {}
        bad = q.unreadable()
    if bad:
        print(f"cmfgit: warning: {unreadable_note(bad)}", file=sys.stderr)
    return found, {rid: dict(t) for rid, t in tags.items()}, commits


def export(
    repo: Repo,
    fmt: str,
    *,
    scope: Scope | None = None,
    pipeline: str | None = None,
    stage: str | None = None,
    where: str | None = None,
    since: str | None = None,
    output: str | os.PathLike[str] | None = None,
    url: str | None = None,
    namespace: str | None = None,
) -> Summary:
    if fmt not in FORMATS:
        raise UsageError(f"unknown export format '{fmt}' (known: cmf-json, {', '.join(FORMATS)})")
    if url is not None and fmt != "openlineage":
        raise UsageError("--url sends OpenLineage events; use it with --format openlineage")
    if url is not None and output is not None:
        raise UsageError("choose one destination: --output or --url")
    if namespace is not None and fmt != "openlineage":
        raise UsageError("--namespace is an OpenLineage job namespace; use it with --format openlineage")
    if fmt != "openlineage":
        from cmfgit.exporters import prov

        prov._prov()  # fail before reading anything when prov is not installed
    if url is not None:
        from cmfgit.exporters.openlineage import endpoint

        endpoint(url)  # a malformed URL fails before anything is read
    import gc

    # Every record becomes a few dozen dicts and lists, none in a cycle: the cyclic collector
    # would walk them all again and again (about a fifth of an export's time).
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _export(repo, fmt, scope, pipeline, stage, where, since, output, url, namespace)
    finally:
        if collecting:
            gc.enable()


def _export(
    repo: Repo,
    fmt: str,
    scope: Scope | None,
    pipeline: str | None,
    stage: str | None,
    where: str | None,
    since: str | None,
    output: str | os.PathLike[str] | None,
    url: str | None,
    namespace: str | None,
) -> Summary:
    if fmt == "openlineage":
        from cmfgit.exporters import openlineage as ol

        found, tags, commits = select_data(repo, scope, pipeline=pipeline, stage=stage, where=where, since=since)
        lines = ol.lines_of_records(found, tags, commits, namespace=namespace, blocks=url is None)
        if url is not None:
            return Summary(len(found), ol.post(lines, url), ol.endpoint(url))
        if output is None:
            return Summary(len(found), ol.write_lines(lines, sys.stdout), "")
        return Summary(len(found), ol.write_file(lines, output), os.fspath(output))
    executions = select(repo, scope, pipeline=pipeline, stage=stage, where=where, since=since)
    from cmfgit.exporters import prov

    doc = prov.document(executions)
    text = prov.serialize(doc, fmt)
    count = len(list(doc.get_records()))
    if output is None:
        sys.stdout.write(text)
        return Summary(len(executions), count, "")
    from cmfgit.exporters.openlineage import write_file

    write_file([text.rstrip("\n")], output)
    return Summary(len(executions), count, os.fspath(output))
