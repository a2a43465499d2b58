"""CMF's view of the records: the MLMD store cmflib's ``CmfQuery`` reads, rebuilt from the export.

cmflib answers its queries from MLMD: contexts (pipelines and their
``Pipeline/Stage`` children), executions, artifacts and events, each with an
integer id. cmfgit has no MLMD, but ``cmfgit export --format cmf-json`` writes
exactly that structure (:func:`cmfgit.cmf_export.build`). :class:`View` reads
the export documents of every pipeline of a scope into tables, so that
:class:`cmfgit.query.CmfQuery`'s CMF methods answer from the same ids, names,
types and properties a CMF tool reading the export sees. Ids are the export's
(CMF's own, else the clone's, :mod:`cmfgit.cmfids`, which never number two objects
alike); when two pipelines' exports still do (two imported MLMD stores), the later
pipeline's ids of that kind are moved past the highest id.

Also here: :func:`parse_name`, CMF's artifact names (``path:uri``,
``path:uri:execution id``, Step_Metrics' ``path:uri:execution id:uuid``,
``metrics:<uuid>:<execution id>``), and the MLMD-like objects CMF methods return.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from cmfgit import cmf_format as cf
from cmfgit.errors import CmfgitError

PANDAS_HINT = "this CmfQuery method returns a pandas DataFrame, as cmflib's does: pip install 'cmfgit[cmf]'"
EXCLUDED_LINEAGE_TYPES = ("Environment", "Label")  # what cmflib leaves out of lineage pictures


def pandas() -> Any:
    """The pandas module, or a one-line error naming the extra that brings it."""
    try:
        import pandas as pd  # type: ignore[import-untyped,unused-ignore]  # optional: cmfgit[cmf]
    except ImportError:
        raise CmfgitError(PANDAS_HINT) from None
    return pd


@dataclass
class CmfName:
    """A CMF artifact name taken apart (cmflib joins the parts with ':')."""

    path: str
    uri: str
    execution_id: int | None = None
    uuid: str | None = None

    @property
    def hash(self) -> str:
        """The cmfgit hash of the uri (as ``cmfgit import`` gives it)."""
        return cf.hash_of_uri(self.uri, "")


def parse_name(name: str) -> CmfName | None:
    """``path:uri``, ``path:uri:<execution id>``, ``path:uri:<execution id>:<uuid>`` (Step_Metrics)
    or ``metrics:<uuid>:<execution id>``; None for a name of no such shape."""
    parts = name.strip().split(":")
    if len(parts) < 2 or not parts[0] or not parts[1] or len(parts) > 4:
        return None
    path, uri, *rest = parts
    if not rest:
        return CmfName(path, uri)
    if not rest[0].isdigit():
        return None
    return CmfName(path, uri, int(rest[0]), rest[1] if len(rest) == 2 else None)


@dataclass
class Node:
    """An MLMD object as cmflib's methods hand them out: ``id``, ``name``, ``type_id``,
    ``type``, ``properties``, ``custom_properties`` and the MLMD times (values are plain
    Python values, not MLMD ``Value`` messages)."""

    id: int
    name: str
    type_id: int
    type: str
    properties: dict[str, Any] = field(default_factory=dict)
    custom_properties: dict[str, Any] = field(default_factory=dict)
    create_time_since_epoch: int = 0
    last_update_time_since_epoch: int = 0


@dataclass
class Execution(Node):
    record_id: str = ""  # the cmfgit record


@dataclass
class Artifact(Node):
    uri: str = ""
    hash: str = ""  # the cmfgit hash of the uri


@dataclass
class Context(Node):
    parent_id: int | None = None  # a stage's pipeline


@dataclass
class Event:
    execution_id: int
    artifact_id: int
    type: int  # MLMD's event type (3 INPUT, 4 OUTPUT)

    @property
    def is_input(self) -> bool:
        return cf.is_input(self.type)


def _node(cls: type[Any], src: dict[str, Any], **extra: Any) -> Any:
    return cls(
        id=int(src.get("id") or 0),
        name=str(src.get("name") or ""),
        type_id=int(src.get("type_id") or 0),
        type=str(src.get("type") or ""),
        properties=dict(src.get("properties") or {}),
        custom_properties=dict(src.get("custom_properties") or {}),
        create_time_since_epoch=int(src.get("create_time_since_epoch") or 0),
        last_update_time_since_epoch=int(src.get("last_update_time_since_epoch") or 0),
        **extra,
    )


class _Numbers:
    """Keeps the export's ids, pipeline by pipeline. Two objects may still have one id (imported
    CMF data of two MLMD stores, or an export numbered without the clone's ledger): a pipeline
    whose ids clash with those already taken gets them all moved past the highest id, in the
    same order."""

    def __init__(self) -> None:
        self.owner: dict[int, Any] = {}
        self.of: dict[Any, int] = {}

    def claim(self, wanted: list[tuple[Any, int]]) -> None:
        """``wanted``: (key, export id) of one pipeline's objects of one kind."""
        new = [(key, i) for key, i in dict(wanted).items() if key not in self.of]
        clash = any(i <= 0 or self.owner.get(i, key) != key for key, i in new) or len({i for _, i in new}) < len(new)
        offset = max(self.owner, default=0) if clash else 0
        for key, i in sorted(new, key=lambda pair: pair[1]):
            number = max(i, 1) + offset
            while number in self.owner:
                number += 1
            self.owner[number] = key
            self.of[key] = number


class View:
    """The MLMD tables of the export documents of a scope's pipelines."""

    def __init__(
        self, documents: Iterable[dict[str, Any]], record_ids: dict[tuple[str, str], list[str]] | None = None
    ) -> None:
        """``documents``: export documents (``{"Pipeline": [...]}``); ``record_ids``: (pipeline,
        Execution_uuid) -> the cmfgit record ids of that uuid, oldest first (for
        :attr:`Execution.record_id`; records sharing a uuid are taken in export id order)."""
        self.documents = list(documents)
        unclaimed = {key: list(rids) for key, rids in (record_ids or {}).items()}
        pending: list[tuple[str, int, str, int]] = []
        ctx_ids, exe_ids, art_ids = _Numbers(), _Numbers(), _Numbers()
        pipelines = [p for doc in self.documents for p in doc.get("Pipeline") or ()]
        # First pass: which id each object keeps (contexts by name, executions by pipeline and id, artifacts by uri).
        for p in pipelines:
            contexts = [(("pipeline", p["name"]), int(p.get("id") or 0))]
            executions, artifacts = [], []
            for s in p.get("stages") or ():
                contexts.append((("stage", s["name"]), int(s.get("id") or 0)))
                for e in s.get("executions") or ():
                    executions.append((_exe_key(p, e), int(e.get("id") or 0)))
                    for ev in e.get("events") or ():
                        artifacts.append((_art_key(ev["artifact"]), int(ev["artifact"].get("id") or 0)))
            ctx_ids.claim(contexts)
            exe_ids.claim(executions)
            art_ids.claim(artifacts)
        self.pipelines: dict[int, Context] = {}
        self.stages: dict[int, Context] = {}
        self.executions: dict[int, Execution] = {}
        self.stage_of: dict[int, int] = {}  # execution id -> stage id
        self.artifacts: dict[int, Artifact] = {}
        self.events: list[Event] = []
        self.artifact_types: dict[str, int] = {}
        for p in pipelines:
            pid = ctx_ids.of[("pipeline", p["name"])]
            self.pipelines.setdefault(pid, _node(Context, {**p, "id": pid}))
            for s in p.get("stages") or ():
                sid = ctx_ids.of[("stage", s["name"])]
                self.stages.setdefault(sid, _node(Context, {**s, "id": sid}, parent_id=pid))
                for e in s.get("executions") or ():
                    eid = exe_ids.of[_exe_key(p, e)]
                    uuid = str((e.get("properties") or {}).get("Execution_uuid") or "")
                    props = {**(e.get("properties") or {}), "Context_ID": sid, "Pipeline_id": pid}
                    self.executions[eid] = _node(Execution, {**e, "id": eid, "properties": props})
                    pending.append((p["name"], int(e.get("id") or 0), uuid, eid))
                    self.stage_of[eid] = sid
                    for ev in e.get("events") or ():
                        a = ev["artifact"]
                        aid = art_ids.of[_art_key(a)]
                        if aid not in self.artifacts:
                            uri = str(a.get("uri") or "")
                            self.artifacts[aid] = _node(
                                Artifact, {**a, "id": aid}, uri=uri, hash=cf.hash_of_uri(uri, str(a.get("name")))
                            )
                        self.artifact_types.setdefault(str(a.get("type")), int(a.get("type_id") or 0))
                        self.events.append(Event(eid, aid, int(ev.get("type") or 0)))
        for name, _, uuid, eid in sorted(pending):
            # (an execution several runs updated, as cmflib's create_new_execution=False, has their
            # uuids joined by commas: it is the record of the first)
            rids = unclaimed.get((name, uuid)) or unclaimed.get((name, uuid.split(",")[0]))
            self.executions[eid].record_id = rids.pop(0) if rids else ""
        order = {eid: n for n, eid in enumerate(sorted(self.executions))}
        self.events.sort(key=lambda ev: order[ev.execution_id])  # MLMD's: as they were logged
        self.pipelines = dict(sorted(self.pipelines.items()))
        self.stages = dict(sorted(self.stages.items()))
        self.executions = dict(sorted(self.executions.items()))
        self.artifacts = dict(sorted(self.artifacts.items()))
        self.by_name: dict[str, Artifact] = {}
        for art in self.artifacts.values():
            self.by_name.setdefault(art.name, art)
        self._by_execution: dict[int, list[Event]] = {}
        self._by_artifact: dict[int, list[Event]] = {}
        for ev in self.events:
            self._by_execution.setdefault(ev.execution_id, []).append(ev)
            self._by_artifact.setdefault(ev.artifact_id, []).append(ev)
        self.events_order = {id(ev): n for n, ev in enumerate(self.events)}

    # -- lookups ---------------------------------------------------------------

    def pipeline(self, name: str) -> Context | None:
        return next((p for p in self.pipelines.values() if p.name == name), None)

    def stages_of(self, pipeline_id: int) -> list[Context]:
        return [s for s in self.stages.values() if s.parent_id == pipeline_id]

    def executions_of(self, stage_id: int) -> list[Execution]:
        """A stage's executions in MLMD's order for them: the newest created first."""
        found = [e for eid, e in self.executions.items() if self.stage_of[eid] == stage_id]
        return sorted(found, key=lambda e: (e.create_time_since_epoch, e.id), reverse=True)

    def executions_by_id(self, ids: Iterable[int]) -> list[Execution]:
        wanted = set(ids)
        return [e for eid, e in self.executions.items() if eid in wanted]

    def artifacts_by_id(self, ids: Iterable[int]) -> list[Artifact]:
        wanted = set(ids)
        return [a for aid, a in self.artifacts.items() if aid in wanted]

    def events_of_executions(self, ids: Iterable[int]) -> list[Event]:
        """In MLMD's order (as logged)."""
        found = [ev for i in set(ids) for ev in self._by_execution.get(i, ())]
        return sorted(found, key=lambda ev: self.events_order[id(ev)])

    def events_of_artifacts(self, ids: Iterable[int]) -> list[Event]:
        found = [ev for i in set(ids) for ev in self._by_artifact.get(i, ())]
        return sorted(found, key=lambda ev: self.events_order[id(ev)])

    def producers(self, artifact_id: int, pipeline_id: int | None = None) -> list[int]:
        found = [ev.execution_id for ev in self.events_of_artifacts([artifact_id]) if not ev.is_input]
        return self._in_pipeline(found, pipeline_id)

    def consumers(self, artifact_id: int, pipeline_id: int | None = None) -> list[int]:
        # list(set(...)) in event order, as cmflib builds it: the same order comes out
        found = list({ev.execution_id for ev in self.events_of_artifacts([artifact_id]) if ev.is_input})
        return self._in_pipeline(found, pipeline_id)

    def _in_pipeline(self, ids: list[int], pipeline_id: int | None) -> list[int]:
        if pipeline_id is None:
            return ids
        return [i for i in ids if self.executions[i].properties.get("Pipeline_id") == pipeline_id]

    def inputs(self, execution_ids: Iterable[int]) -> list[int]:
        return list({ev.artifact_id for ev in self.events_of_executions(execution_ids) if ev.is_input})

    def outputs(self, execution_ids: Iterable[int]) -> list[int]:
        return list({ev.artifact_id for ev in self.events_of_executions(execution_ids) if not ev.is_input})

    def attributed(self, stage_id: int) -> list[Artifact]:
        """The artifacts MLMD attributes to a stage: those first logged by one of its executions."""
        first: dict[int, int] = {}
        for ev in self.events:
            first.setdefault(ev.artifact_id, ev.execution_id)
        return [a for aid, a in self.artifacts.items() if self.stage_of[first[aid]] == stage_id]

    def stage_and_pipeline(self, execution_id: int) -> tuple[Context, Context]:
        stage = self.stages[self.stage_of[execution_id]]
        return stage, self.pipelines[stage.parent_id or 0]


def _exe_key(pipeline: dict[str, Any], execution: dict[str, Any]) -> tuple[str, int]:
    """An execution is in one pipeline, where its export id is its own (two records may share a uuid)."""
    return (pipeline["name"], int(execution.get("id") or 0))


def _art_key(artifact: dict[str, Any]) -> str:
    """CMF keeps one artifact per uri (its name when it has none)."""
    return str(artifact.get("uri") or "") or "name:" + str(artifact.get("name"))


# -- rows of cmflib's data frames ------------------------------------------------


def _with_custom(row: dict[str, Any], node: Node) -> dict[str, Any]:
    """Properties as they are, then custom properties as ``custom_properties_<key>``
    (``_1``, ``_2``... on a clash), as cmflib's ``_transform_to_dataframe`` names columns."""
    row.update(node.properties)
    for key, value in node.custom_properties.items():
        column = base = f"custom_properties_{key}"
        n = 0
        while column in row:
            n += 1
            column = f"{base}_{n}"
        row[column] = value
    return row


def execution_row(execution: Execution, with_name: bool = True) -> dict[str, Any]:
    row: dict[str, Any] = {"id": execution.id, "name": execution.name} if with_name else {}
    return _with_custom(row, execution)


def artifact_row(artifact: Artifact, first: dict[str, Any] | None = None) -> dict[str, Any]:
    row = dict(first or {})
    row.update(
        id=artifact.id,
        type=artifact.type,
        uri=artifact.uri,
        name=artifact.name,
        create_time_since_epoch=artifact.create_time_since_epoch,
        last_update_time_since_epoch=artifact.last_update_time_since_epoch,
    )
    return _with_custom(row, artifact)


def frame(rows: list[dict[str, Any]], columns: list[str] | None = None) -> Any:
    """Rows as cmflib builds its frames (one-row frames concatenated with ``sort=True``):
    columns sorted, a fresh 0..n-1 index, an empty frame for no rows."""
    pd = pandas()
    if not rows:
        return pd.DataFrame()
    # cmflib concatenates one-row frames (sort=True: the columns sorted); one frame of all the
    # rows has the same columns and types, built in one go.
    out = pd.DataFrame(rows)
    return out[columns if columns is not None else sorted(out.columns)]
