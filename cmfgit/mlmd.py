"""Reading an MLMD SQLite file (the ``mlmd`` file cmflib writes) with stdlib sqlite3.

:func:`read` returns the same structure as ``cmf metadata export``
(``{"Pipeline": [...]}``), built with the queries cmflib's ``CmfQuery.dumptojson``
makes through ml-metadata, so that an MLMD file and its export JSON import to
identical records. No ml-metadata is needed. Only schema versions this module
was checked against are read; anything else is refused before a row is read.
"""

from __future__ import annotations

import os
import sqlite3
import struct
from collections import defaultdict
from pathlib import Path
from typing import Any

from cmfgit.cmf_format import PIPELINE_TYPE
from cmfgit.errors import ForeignFormatError

SQLITE_MAGIC = b"SQLite format 3\x00"
# MLMDEnv.schema_version -> what writes it. 10 is checked against cmflib 0.1.0's output.
SUPPORTED_VERSIONS = {10: "ml-metadata 1.15 (cmflib 0.1)"}
REQUIRED_TABLES = (
    "MLMDEnv",
    "Type",
    "Context",
    "ContextProperty",
    "ParentContext",
    "Execution",
    "ExecutionProperty",
    "Association",
    "Event",
    "Artifact",
    "ArtifactProperty",
)


def is_sqlite(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC
    except OSError:
        return False


def _check_size(path: Path, shown: str) -> None:
    """Refuse a file shorter than its header says (a truncated copy)."""
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        header = fh.read(100)
    if len(header) < 100:
        raise ForeignFormatError(shown, f"truncated SQLite file ({size} bytes, shorter than its header)")
    page_size = struct.unpack(">H", header[16:18])[0]
    page_size = 65536 if page_size == 1 else page_size
    change_counter, pages = struct.unpack(">II", header[24:32])
    valid_for = struct.unpack(">I", header[92:96])[0]
    if page_size < 512 or size % page_size:
        raise ForeignFormatError(shown, f"damaged SQLite file ({size} bytes is not a whole number of pages)")
    if pages and change_counter == valid_for and size < pages * page_size:
        raise ForeignFormatError(shown, f"truncated SQLite file ({size} bytes, its header says {pages * page_size})")


def _connect(path: Path, shown: str) -> sqlite3.Connection:
    _check_size(path, shown)
    try:
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        problems = [row[0] for row in con.execute("PRAGMA quick_check")]
    except sqlite3.DatabaseError as exc:
        raise ForeignFormatError(shown, f"not a readable SQLite file ({exc})") from None
    if problems != ["ok"]:
        con.close()
        raise ForeignFormatError(shown, f"damaged SQLite file ({problems[0]})")
    return con


def schema_version(con: sqlite3.Connection, shown: str) -> int:
    tables = {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    missing = [t for t in REQUIRED_TABLES if t not in tables]
    if missing:
        raise ForeignFormatError(shown, f"not an MLMD file (no table {', '.join(missing)})")
    rows = con.execute("SELECT schema_version FROM MLMDEnv").fetchall()
    if len(rows) != 1 or not isinstance(rows[0][0], int):
        raise ForeignFormatError(shown, "not an MLMD file (MLMDEnv holds no single schema version)")
    version: int = rows[0][0]
    if version not in SUPPORTED_VERSIONS:
        known = ", ".join(f"{v} ({w})" for v, w in sorted(SUPPORTED_VERSIONS.items()))
        raise ForeignFormatError(shown, f"unsupported MLMD schema version {version}; cmfgit reads {known}")
    return version


def _value(row: sqlite3.Row) -> Any:
    # The choice CmfQuery._copy makes: string, else int, else double (0.0 when unset).
    if row["string_value"] is not None:
        return row["string_value"]
    if row["int_value"] is not None:
        return row["int_value"]
    if row["double_value"] is not None:
        return row["double_value"]
    if row["bool_value"] is not None:
        return bool(row["bool_value"])
    return 0.0


def _properties(con: sqlite3.Connection, table: str, key: str) -> dict[int, tuple[dict[str, Any], dict[str, Any]]]:
    """owner id -> (properties, custom_properties), names sorted."""
    found: dict[int, tuple[dict[str, Any], dict[str, Any]]] = defaultdict(lambda: ({}, {}))
    for row in con.execute(f"SELECT * FROM {table} ORDER BY {key}, name"):  # table and key are constants
        found[row[key]][1 if row["is_custom_property"] else 0][row["name"]] = _value(row)
    return found


def _node(
    row: sqlite3.Row, props: dict[int, tuple[dict[str, Any], dict[str, Any]]], start: dict[str, Any]
) -> dict[str, Any]:
    """A node's attributes in the order and with the omissions of CmfQuery._get_node_attributes."""
    properties, custom = props.get(row["id"], ({}, {}))
    node = dict(start)
    node.setdefault("create_time_since_epoch", row["create_time_since_epoch"])
    node["custom_properties"] = dict(custom)
    node["id"] = row["id"]
    node["last_update_time_since_epoch"] = row["last_update_time_since_epoch"]
    if row["name"] not in (None, "") and "name" not in node:
        node["name"] = row["name"]
    node["properties"] = dict(properties)
    node["type_id"] = row["type_id"]
    keys = row.keys()
    if "uri" in keys and row["uri"] not in (None, ""):
        node["uri"] = row["uri"]
    return node


def read(path: str | os.PathLike[str], shown: str | None = None) -> tuple[dict[str, Any], int]:
    """(the export document of every pipeline in the file, its MLMD schema version)."""
    file = Path(path)
    label = shown or os.fspath(path)
    con = _connect(file, label)
    con.row_factory = sqlite3.Row
    try:
        version = schema_version(con, label)
        return {"Pipeline": _pipelines(con)}, version
    except sqlite3.DatabaseError as exc:
        raise ForeignFormatError(label, f"unreadable MLMD file ({exc})") from None
    finally:
        con.close()


def _pipelines(con: sqlite3.Connection) -> list[dict[str, Any]]:
    types = {row["id"]: row["name"] for row in con.execute("SELECT id, name FROM Type")}
    ctx_props = _properties(con, "ContextProperty", "context_id")
    exe_props = _properties(con, "ExecutionProperty", "execution_id")
    art_props = _properties(con, "ArtifactProperty", "artifact_id")
    contexts = {row["id"]: row for row in con.execute("SELECT * FROM Context ORDER BY id")}
    artifacts = {row["id"]: row for row in con.execute("SELECT * FROM Artifact ORDER BY id")}
    executions = {row["id"]: row for row in con.execute("SELECT * FROM Execution ORDER BY id")}
    children: dict[int, list[int]] = defaultdict(list)
    for row in con.execute("SELECT context_id, parent_context_id FROM ParentContext ORDER BY context_id"):
        children[row["parent_context_id"]].append(row["context_id"])
    members: dict[int, list[int]] = defaultdict(list)
    for row in con.execute("SELECT context_id, execution_id FROM Association ORDER BY execution_id"):
        members[row["context_id"]].append(row["execution_id"])
    events: dict[int, list[sqlite3.Row]] = defaultdict(list)
    for row in con.execute("SELECT * FROM Event ORDER BY id"):
        events[row["execution_id"]].append(row)

    def artifact(aid: int) -> dict[str, Any]:
        row = artifacts[aid]
        return _node(row, art_props, {"type": types.get(row["type_id"], "")})

    def execution(eid: int) -> dict[str, Any]:
        row = executions[eid]
        evs = [
            {"type": ev["type"], "artifact": artifact(ev["artifact_id"])}
            for ev in events[eid]
            if ev["artifact_id"] in artifacts
        ]
        start = {"type": types.get(row["type_id"], ""), "name": row["name"] or "", "events": evs}
        return _node(row, exe_props, start)

    def context(cid: int, start: dict[str, Any]) -> dict[str, Any]:
        row = contexts[cid]
        node = _node(row, ctx_props, start)
        # Contexts also carry their type name, between their properties and type id.
        node["type"] = types.get(row["type_id"], "")
        node["type_id"] = node.pop("type_id")
        return node

    pipelines = []
    for cid, row in contexts.items():
        if types.get(row["type_id"]) != PIPELINE_TYPE:
            continue
        stages = [
            context(sid, {"executions": [execution(e) for e in members[sid] if e in executions]})
            for sid in children[cid]
            if sid in contexts
        ]
        pipelines.append(context(cid, {"stages": stages}))
    return pipelines
