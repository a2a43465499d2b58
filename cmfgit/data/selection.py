"""Which artifacts a data command is about, in the selection language of
``cmfgit pull``: run ids, ``--pipeline``, ``--stage``, ``--since``,
``--tag k=v``, ``--artifact PATH|HASH``, ``--with-lineage``, and plain paths.

The execution filters (pipeline, stage, since, tag) combine with AND and
select runs; run ids, ``--artifact`` and paths add to that. ``--tag k=v``
(repeated: all of them) selects the artifacts of the runs that carry the
tags, and the artifact versions that carry them themselves (each event of a
run that passes the other filters). ``--with-lineage`` adds
the runs upstream of the selected ones. With nothing given, every recorded
artifact of the scope is selected. A plain path means the version recorded
last at that path. Records are found through the query index
(``CmfQuery``), so nothing is parsed twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cmfgit.errors import CmfgitError, UsageError
from cmfgit.hashing import PREFIX
from cmfgit.localview import parse_since
from cmfgit.query import CmfQuery
from cmfgit.repo import Repo

STORABLE = ("file", "dir")


@dataclass(frozen=True)
class Artifact:
    """One recorded version of an artifact: its bytes' identity and where it was."""

    path: str
    hash: str
    kind: str  # 'file' or 'dir' (only those have bytes to move)
    size: int | None
    execution: str
    direction: str  # 'input' or 'output'
    started_at: str

    @property
    def hex(self) -> str:
        return self.hash[len(PREFIX) :]

    @property
    def md5hex(self) -> str | None:
        """The md5 of an artifact known only by CMF's md5 (its bytes are on a DVC remote)."""
        h = self.hash
        if h.startswith("md5:") and len(h) == 36 and all(c in "0123456789abcdef" for c in h[4:]):
            return h[4:]
        return None

    @property
    def storable(self) -> bool:
        return self.kind in STORABLE and self.hash.startswith(PREFIX) and len(self.hash) == len(PREFIX) + 64


@dataclass
class Query:
    runs: tuple[str, ...] = ()
    pipelines: tuple[str, ...] = ()
    stages: tuple[str, ...] = ()
    since: str | None = None
    artifacts: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    with_lineage: bool = False
    direction: str | None = None  # 'input' / 'output': only those events of the selected runs
    tags: tuple[tuple[str, str], ...] = ()  # (name, value): all of them

    @property
    def everything(self) -> bool:
        return not (
            self.runs or self.pipelines or self.stages or self.since or self.artifacts or self.paths or self.tags
        )


@dataclass
class Selected:
    artifacts: list[Artifact] = field(default_factory=list)  # storable ones, oldest run first
    skipped: list[Artifact] = field(default_factory=list)  # md5, external, missing: no bytes to move
    unknown: list[str] = field(default_factory=list)  # named paths that no record has (with unknown_ok)

    def by_hash(self) -> dict[str, Artifact]:
        """One artifact per identity (the latest recorded)."""
        return {a.hash: a for a in self.artifacts}

    def latest_by_path(self) -> dict[str, Artifact]:
        """The latest selected version at each path."""
        return {a.path: a for a in self.artifacts}

    def latest_with_md5(self) -> tuple[list[Artifact], list[Artifact]]:
        """The latest selected version at each path, split into blake3 ones and
        md5-only ones (imported from CMF, to be read from a DVC-layout remote)."""
        latest: dict[str, Artifact] = {}
        for a in sorted(self.artifacts + [s for s in self.skipped if s.md5hex], key=lambda a: a.started_at):
            latest[a.path] = a
        return [a for a in latest.values() if a.storable], [a for a in latest.values() if not a.storable]


def _artifact(e: dict[str, Any]) -> Artifact:
    return Artifact(
        e["path"], e["hash"], e["kind"] or "", e["size"], e["execution"], e["direction"], e["started_at"] or ""
    )


def _filtered_runs(q: CmfQuery, sel: Query) -> set[str] | None:
    """Executions the pipeline, stage and since filters select; None if none is given."""
    if not (sel.pipelines or sel.stages or sel.since):
        return None
    where = f'started_at >= "{parse_since(sel.since)}"' if sel.since else None
    rowids: set[int] = set()
    for pipeline in sel.pipelines or (None,):
        for stage in sel.stages or (None,):
            rowids.update(q.execution_rowids(where, pipeline=pipeline, stage=stage))
    return _ids_of(q, rowids)


def tagged(q: CmfQuery, wanted: tuple[tuple[str, str], ...]) -> set[str]:
    """Execution ids and artifact hashes whose current tags include every (name, value)."""
    return {
        target
        for target, tags in q.tags().items()
        if all(name in tags and str(tags[name]) == value for name, value in wanted)
    }


def _filter_events(q: CmfQuery, sel: Query) -> list[dict[str, Any]] | None:
    """The events the run filters (pipeline, stage, since, tag) select; None if none is given."""
    runs = _filtered_runs(q, sel)
    if not sel.tags:
        return None if runs is None else q.artifact_events(executions=runs)
    targets = tagged(q, sel.tags)
    hashes = {t for t in targets if ":" in t}
    found = q.artifact_events(executions=targets - hashes) + q.artifact_events(hashes=hashes)
    return found if runs is None else [e for e in found if e["execution"] in runs]


def _ids_of(q: CmfQuery, rowids: set[int]) -> set[str]:
    ids: set[str] = set()
    ordered = sorted(rowids)
    for start in range(0, len(ordered), 500):
        chunk = ordered[start : start + 500]
        rows = q.db.execute(f"SELECT id FROM records WHERE rowid IN ({','.join('?' * len(chunk))})", chunk)
        ids.update(r[0] for r in rows)
    return ids


def select(repo: Repo, q: CmfQuery, sel: Query, cwd: Path | None = None, unknown_ok: bool = False) -> Selected:
    out = Selected()
    events: list[dict[str, Any]] = []
    if sel.everything:
        events = q.artifact_events()
        if sel.direction:
            events = [e for e in events if e["direction"] == sel.direction]
    found = _filter_events(q, sel)
    named = {q.resolve_record(r, executions_only=True) for r in sel.runs}
    if found is not None or named:
        found = (found or []) + (q.artifact_events(executions=named) if named else [])
        runs = named | {e["execution"] for e in found}
        if sel.with_lineage and runs:
            graph = q.lineage_graph([], "up", None, exec_ids=sorted(runs))
            found += q.artifact_events(executions=graph.ancestor_executions(runs) - runs)
        if sel.direction:
            found = [e for e in found if e["direction"] == sel.direction]
        events += found
    for name in sel.artifacts:
        events += q.artifact_events(hashes=q.resolve_artifacts(name))
    for raw in sel.paths:
        rel = repo.relpath(raw, cwd)
        at = q.artifact_events(paths=[rel])
        if not at:
            # A directory holding recorded paths: every path under it.
            at = [e for e in q.artifact_events() if (e["path"] or "").startswith(rel.rstrip("/") + "/")]
        if not at:
            if unknown_ok:
                out.unknown.append(rel)
                continue
            raise CmfgitError(f"{raw}: no record has this path (record it, or name a hash with --artifact)")
        latest: dict[str, dict[str, Any]] = {}
        for e in at:
            latest[e["path"]] = e
        events += latest.values()
    events.sort(key=lambda e: (e["started_at"] or "", e["execution"], e["direction"]))
    seen: set[tuple[str, str, str]] = set()
    for e in events:
        key = (e["execution"], e["direction"], e["path"])
        if key in seen or e["hash"] is None:
            continue
        seen.add(key)
        art = _artifact(e)
        (out.artifacts if art.storable else out.skipped).append(art)
    return out


def check_direction(inputs: bool, outputs: bool) -> str | None:
    if inputs and outputs:
        raise UsageError("choose --inputs or --outputs (neither: both)")
    return "input" if inputs else "output" if outputs else None


def runs(repo: Repo, q: CmfQuery, sel: Query, cwd: Path | None = None) -> set[str]:
    """The executions ``sel`` selects, whether or not they have artifacts (``cmfgit
    bundle create`` carries their records): the run filters and run ids, their
    upstream runs with ``with_lineage``, and the runs that read or wrote a named
    artifact or path. Empty for an empty query: the caller says what 'everything' is."""
    filtered = _filtered_runs(q, sel)
    if sel.tags:
        tagged_runs = {e["execution"] for e in _filter_events(q, sel) or []}
        tagged_runs |= {t for t in tagged(q, sel.tags) if ":" not in t}
        filtered = tagged_runs if filtered is None else filtered & tagged_runs
    found = set(filtered or ()) | {q.resolve_record(r, executions_only=True) for r in sel.runs}
    if sel.with_lineage and found:
        graph = q.lineage_graph([], "up", None, exec_ids=sorted(found))
        found |= graph.ancestor_executions(found)
    for name in sel.artifacts:
        found.update(e["execution"] for e in q.artifact_events(hashes=q.resolve_artifacts(name)))
    for raw in sel.paths:
        rel = repo.relpath(raw, cwd)
        at = q.artifact_events(paths=[rel]) or [
            e for e in q.artifact_events() if (e["path"] or "").startswith(rel.rstrip("/") + "/")
        ]
        if not at:
            raise CmfgitError(f"{raw}: no record has this path (record it, or name a hash with --artifact)")
        found.update(e["execution"] for e in at)
    return found
