"""What cmflib returns as MLMD objects, as plain dataclasses with MLMD's attribute names.

``id``, ``name``, ``type``, ``type_id``, ``properties``, ``custom_properties``
and the two MLMD times, holding plain values (no protobufs, no ml-metadata).
The cmfgit fields after them (``record_id``, ``pipeline``, ``stage``, ``hash``)
say which record an object stands for, so ``metawriter.execution = obj``
knows what to continue.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cmfgit import cmf_format as cf
from cmfgit import cmf_parts


@dataclass
class Context:
    """An MLMD Context: a pipeline (``Parent_Context``) or a stage (``Pipeline_Stage``)."""

    id: int
    name: str
    type: str
    properties: dict[str, Any] = field(default_factory=dict)
    custom_properties: dict[str, Any] = field(default_factory=dict)
    type_id: int = 0


@dataclass
class Execution:
    """An MLMD Execution. ``record_id`` is the id of its (first) record, once written."""

    id: int
    name: str
    type: str
    properties: dict[str, Any] = field(default_factory=dict)
    custom_properties: dict[str, Any] = field(default_factory=dict)
    record_id: str | None = None
    type_id: int = 0
    create_time_since_epoch: int = 0
    last_update_time_since_epoch: int = 0
    pipeline: str = ""
    stage: str = ""


@dataclass
class Artifact:
    """An MLMD Artifact; ``hash`` is the cmfgit identity."""

    id: int
    name: str
    uri: str
    type: str
    hash: str
    properties: dict[str, Any] = field(default_factory=dict)
    custom_properties: dict[str, Any] = field(default_factory=dict)
    type_id: int = 0


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def execution_of(rid: str, record: dict[str, Any], number: int) -> Execution:
    """The Execution object of a (folded) execution record; ``number`` is its id
    unless the record kept CMF's."""
    src: dict[str, Any] = (record.get("source") or {}).get("cmf", {}).get("execution", {})
    stage = cmf_parts.stage_name(record)
    pipeline = str(record.get("pipeline"))
    git = record.get("git") or {}
    properties: dict[str, Any] = {
        "Context_Type": stage,
        "Execution": str(list(record.get("command") or [])),
        "Execution_type_name": stage,
        "Execution_uuid": record.get("uuid"),
        "Git_End_Commit": "",
        "Git_Repo": git.get("remote") or "",
        "Git_Start_Commit": git.get("commit") or "",
        "Pipeline_Type": pipeline,
    }
    properties.update(src.get("properties") or {})
    custom = {**(record.get("params") or {}), **(src.get("custom_properties") or {})}
    created = _int(src.get("create_time_since_epoch")) or cf.ms_of_time(record.get("started_at"))
    return Execution(
        id=_int(src.get("id")) or number,
        name=cmf_parts.reuse_name(record),
        type=str(record.get("type")),
        properties=properties,
        custom_properties=custom,
        record_id=rid,
        type_id=_int(src.get("type_id")),
        create_time_since_epoch=created,
        last_update_time_since_epoch=_int(src.get("last_update_time_since_epoch"))
        or max(created, cf.ms_of_time(record.get("ended_at"))),
        pipeline=pipeline,
        stage=str(record.get("stage")),
    )
