"""Parts of one CMF execution: the records that readers fold into it.

cmflib updates an MLMD execution in place; cmfgit records never change. Two
CMF habits therefore give one execution several records (docs/format.md,
"Parts of one CMF execution"):

- ``create_execution(name, create_new_execution=False)`` reuses the execution
  of that name in the stage, in any process and at any site. Each process
  writes a record of what it did, with ``source.cmf.execution.name``.
- Logging after ``finalize()``, or after ``metawriter.execution = <an
  execution written before>``, writes a record with
  ``source.cmf.execution.continues: <record id>`` holding what was logged
  since.

Every part is a complete execution record (cmfgit's own readers see what each
process did, with true lineage); :func:`fold` merges the parts of each CMF
execution into one record, as the CMF export and ``get_all_exe_in_stage``
present it. Pure functions, no I/O.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from cmfgit import cmf_format as cf
from cmfgit import schema

Key = tuple[str, ...]


def _cmf_execution(record: dict[str, Any]) -> dict[str, Any]:
    node: Any = record.get("source")
    for key in ("cmf", "execution"):
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else {}


def reuse_name(record: dict[str, Any]) -> str:
    """The CMF execution name of a reused execution ('' when the execution was not reused)."""
    name = _cmf_execution(record).get("name")
    return name if isinstance(name, str) else ""


def continues(record: dict[str, Any]) -> str | None:
    """The id of the record this one continues, if it is a continuation."""
    target = _cmf_execution(record).get("continues")
    return target if isinstance(target, str) and target else None


def stage_name(record: dict[str, Any]) -> str:
    """CMF's stage context name, ``<pipeline>/<stage>`` unless the record kept another."""
    node: Any = record.get("source")
    for key in ("cmf", "stage"):
        node = node.get(key) if isinstance(node, dict) else None
    name = node.get("name") if isinstance(node, dict) else None
    return name if isinstance(name, str) and name else f"{record.get('pipeline')}/{record.get('stage')}"


def cmf_type(record: dict[str, Any]) -> str:
    """The MLMD type of a reused execution: cmflib names its type after the stage (compat records
    keep the name given as their ``type``, imported ones keep CMF's type)."""
    name = reuse_name(record)
    kind = str(record.get("type"))
    return stage_name(record) if name and kind == name else kind


def keys(records: Iterable[tuple[str, dict[str, Any]]]) -> dict[str, Key]:
    """record id -> the key of the CMF execution it is a part of.

    A reused execution is named within its stage and MLMD type; a continuation belongs to the
    execution of the record it continues (itself possibly a part); any other
    record is an execution of its own."""
    by_id = {rid: rec for rid, rec in records if rec.get("schema") == schema.EXECUTION}
    found: dict[str, Key] = {}

    def key_of(rid: str, seen: frozenset[str]) -> Key:
        if rid in found:
            return found[rid]
        rec = by_id[rid]
        name = reuse_name(rec)
        target = continues(rec)
        if name:
            key: Key = ("name", str(rec.get("pipeline")), stage_name(rec), cmf_type(rec), name)
        elif target is not None and target in by_id and target not in seen:
            key = key_of(target, seen | {rid})
        elif target is not None:
            key = ("record", target)  # its first part is not here: its continuations still fold together
        else:
            key = ("record", rid)
        found[rid] = key
        return key

    for rid in by_id:
        key_of(rid, frozenset())
    return found


def fold(records: Iterable[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    """The records with the parts of each CMF execution merged into one.

    A merged execution has the id, uuid, start and CMF properties of its first
    part (by start time, then id); params, CMF custom properties and metrics are
    the union, later parts winning; inputs and outputs are every part's, each
    artifact once, in the order the parts logged them; it ended when its last
    part did. A reused execution's CMF type is its stage's name, as in cmflib (cmf_type).
    Other records are returned unchanged, in their order."""
    items = list(records)
    part_of = keys(items)
    groups: dict[Key, list[tuple[str, dict[str, Any]]]] = {}
    for rid, rec in items:
        if rid in part_of:
            groups.setdefault(part_of[rid], []).append((rid, rec))
    out: list[tuple[str, dict[str, Any]]] = []
    done: set[Key] = set()
    for rid, rec in items:
        key = part_of.get(rid)
        if key is None:
            out.append((rid, rec))
            continue
        if key in done:
            continue
        done.add(key)
        parts = sorted(groups[key], key=_part_order)
        out.append(_merge(parts, named=key[0] == "name"))
    return out


def _part_order(part: tuple[str, dict[str, Any]]) -> tuple[str, bool, str]:
    rid, rec = part
    return str(rec.get("started_at") or ""), continues(rec) is not None, rid


def _events(record: dict[str, Any]) -> list[tuple[bool, dict[str, Any]]]:
    """(is input, artifact) in the order the record's process logged them."""
    arts = [(True, a) for a in record.get("inputs") or ()] + [(False, a) for a in record.get("outputs") or ()]
    placed = []
    for position, (is_input, art) in enumerate(arts):
        src = art.get("source", {}).get("cmf", {}) if isinstance(art.get("source"), dict) else {}
        order = src.get("order") if isinstance(src, dict) else None
        placed.append(((0, order, position) if isinstance(order, int) else (1, position, position), is_input, art))
    return [(is_input, art) for _, is_input, art in sorted(placed, key=lambda t: t[0])]


def _last_update(record: dict[str, Any]) -> int:
    src = _cmf_execution(record).get("last_update_time_since_epoch")
    if isinstance(src, int) and not isinstance(src, bool):
        return src
    return max(cf.ms_of_time(record.get("started_at")), cf.ms_of_time(record.get("ended_at")))


def _merge(parts: list[tuple[str, dict[str, Any]]], named: bool) -> tuple[str, dict[str, Any]]:
    rid, first = parts[0]
    if len(parts) == 1:
        if named and first.get("type") != cmf_type(first):
            return rid, {**first, "type": cmf_type(first)}
        return rid, first
    merged = copy.deepcopy(first)
    params: dict[str, Any] = {}
    metrics: dict[str, Any] = {}
    steps: dict[str, list[Any]] = {}
    custom: dict[str, Any] = {}
    contexts: dict[str, dict[str, Any]] = {"pipeline": {}, "stage": {}}
    uuids: list[str] = []
    seen: dict[tuple[bool, str, str], dict[str, Any]] = {}
    inputs: list[dict[str, Any]] = []
    outputs: list[dict[str, Any]] = []
    order = 0
    for _, rec in parts:
        params.update(rec.get("params") or {})
        metrics.update(rec.get("metrics") or {})
        for name, series in (rec.get("step_metrics") or {}).items():
            steps.setdefault(name, []).extend(series)
        src = _cmf_execution(rec)
        custom.update(src.get("custom_properties") or {})
        for which in contexts:
            node = (rec.get("source") or {}).get("cmf", {}).get(which)
            if isinstance(node, dict):
                contexts[which].update(node.get("custom_properties") or {})
        if continues(rec) is None:
            own = (src.get("properties") or {}).get("Execution_uuid")
            uuids.append(own if isinstance(own, str) and own else str(rec.get("uuid")))
        for is_input, art in _events(rec):
            ident = (is_input, str(art.get("path")), str(art.get("hash")))
            if ident in seen:
                seen[ident]["props"] = {**seen[ident].get("props", {}), **(art.get("props") or {})}
                continue
            art = copy.deepcopy(art)
            source = art.setdefault("source", {}) if isinstance(art.get("source", {}), dict) else {}
            cmf = source.setdefault("cmf", {}) if isinstance(source.get("cmf", {}), dict) else {}
            cmf["order"] = order
            order += 1
            seen[ident] = art
            (inputs if is_input else outputs).append(art)
    merged.update(params=params, metrics=metrics, inputs=inputs, outputs=outputs)
    if steps:
        merged["step_metrics"] = steps
    ended = [str(r["ended_at"]) for _, r in parts if r.get("ended_at")]
    merged["ended_at"] = max(ended) if ended else None
    codes = [r.get("exit_code") for _, r in parts]
    merged["exit_code"] = next((c for c in codes if c not in (0, None)), codes[-1])
    errors = [r["error"] for _, r in parts if r.get("error")]
    if errors:
        merged["error"] = errors[0]
    cmf_src = merged.setdefault("source", {}).setdefault("cmf", {})
    execution = cmf_src.setdefault("execution", {})
    execution.pop("continues", None)
    if custom:
        execution["custom_properties"] = custom
    execution.setdefault("properties", {})["Execution_uuid"] = ",".join(uuids or [str(first.get("uuid"))])
    execution["last_update_time_since_epoch"] = max(_last_update(r) for _, r in parts)
    for which, values in contexts.items():
        if values:
            cmf_src.setdefault(which, {})["custom_properties"] = values
    if named:
        merged["type"] = cmf_type(first)
    return rid, merged
