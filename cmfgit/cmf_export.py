"""``cmfgit export --format cmf-json``: records as the JSON ``cmf metadata export`` writes.

The output has the keys, nesting and key order of cmflib 0.1's export
(``{"Pipeline": [{..., "stages": [{..., "executions": [{..., "events":
[{"type", "artifact"}]}]}]}]}``), so a cmf-server or CMF's own tools can
read cmfgit metadata. What CMF keeps and cmfgit has no field for (ids, type
ids, MLMD times, artifact names and properties) comes back from the
``source.cmf`` of imported or ``cmfgit.compat`` records; for other records it
is synthesised. CMF ids are kept when they are unique in the output; objects
without one get the clone's (:mod:`cmfgit.cmfids`: numbered across the whole
scope as they arrive, and kept). :func:`build` is pure; the mapping is in ``docs/coming-from-cmf.md``.
"""

from __future__ import annotations

import json
import os
import uuid as uuidlib
from collections.abc import Callable, Hashable, Iterable, Mapping
from pathlib import Path
from typing import Any

from cmfgit import cmf_format as cf
from cmfgit import cmf_parts, cmfids, reading, schema
from cmfgit.errors import UsageError
from cmfgit.fsutil import atomic_write
from cmfgit.redact import url_text
from cmfgit.repo import Repo

FORMATS = ("cmf-json",)
_METRICS_NAMESPACE = uuidlib.UUID("6f1c2a52-7d1e-4d0e-9a55-2f6c6b1e0c11")


def _cmf(item: dict[str, Any], *keys: str) -> dict[str, Any]:
    """``item['source']['cmf'][keys...]`` or {}."""
    node: Any = item.get("source")
    for key in ("cmf", *keys):
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else {}


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


class _Ids:
    """MLMD-style integer ids: a preferred (original) id is kept when it is free."""

    def __init__(self) -> None:
        self.ids: dict[Hashable, int] = {}
        self._wanted: dict[Hashable, int | None] = {}

    def want(self, key: Hashable, preferred: Any) -> None:
        if key not in self._wanted or self._wanted[key] is None:
            self._wanted[key] = _int(preferred)

    def settle(self, assign: Assign | None = None) -> None:
        """Preferred ids first; the others from ``assign`` (the clone's ledger, :mod:`cmfgit.cmfids`),
        else numbered after the highest."""
        used: set[int] = set()
        for key, pref in self._wanted.items():
            if pref is not None and pref not in used:
                self.ids[key] = pref
                used.add(pref)
        rest = [key for key in self._wanted if key not in self.ids]
        given = assign(rest, set(used)) if assign is not None and rest else None
        if given is not None:
            self.ids.update(given)
            return
        following = max(used, default=0)
        for key in self._wanted:
            if key not in self.ids:
                following += 1
                self.ids[key] = following

    def __getitem__(self, key: Hashable) -> int:
        return self.ids[key]


def _ordered(items: list[Any], preferred: Callable[[Any], int | None], fallback: Callable[[Any], Any]) -> list[Any]:
    """By original CMF id when every item has one, else by ``fallback``."""
    prefs = [preferred(i) for i in items]
    if all(p is not None for p in prefs) and len(set(prefs)) == len(prefs):
        return [i for _, i in sorted(zip(prefs, items), key=lambda pair: pair[0] or 0)]
    return sorted(items, key=fallback)


def _md5_alias(art: dict[str, Any]) -> str | None:
    """The CMF uri an md5 alias gives: ``<md5>``, or DVC's ``<md5>.dir`` for a directory."""
    for alias in art.get("aliases") or ():
        if isinstance(alias, str) and alias.startswith("md5:"):
            return cf.uri_of_hash(alias) + (".dir" if art.get("kind") == "dir" else "")
    return None


# (blake3 hex, is a directory) -> the DVC uri (``<md5>`` / ``<md5>.dir``) the data cache remembers
Remembered = Callable[[str, bool], "str | None"]
# (keys without a CMF id, in the order met; the CMF ids kept) -> their ids, or None to number them here
Assign = Callable[[list[Hashable], set[int]], "dict[Hashable, int] | None"]
# (kind: context, execution, artifact or type; keys; CMF ids kept) -> ids, or None (cmfids.Ledger)
Numbering = Callable[[str, list[Hashable], set[int]], "dict[Hashable, int] | None"]


class _Uris:
    """The CMF uri of each artifact: the md5 DVC would give it when any record knows it, else its hash."""

    def __init__(self, execs: list[_Execution], remembered: Remembered | None = None) -> None:
        self.remembered = remembered
        self.md5: dict[str, str] = {}  # blake3 hash -> md5 hex, learnt from aliases
        for ex in execs:
            for _, art in ex.events:
                md5 = _md5_alias(art)
                if md5 is not None:
                    self.md5.setdefault(str(art.get("hash")), md5)

    def uri(self, art: dict[str, Any]) -> str:
        src = _cmf(art)
        if isinstance(src.get("uri"), str):
            return str(src["uri"])
        digest = str(art.get("hash"))
        known = _md5_alias(art) or self.md5.get(digest)
        if known is None and self.remembered is not None and digest.startswith("blake3:"):
            known = self.remembered(digest[len("blake3:") :], art.get("kind") == "dir")
        return known or cf.uri_of_hash(digest)

    def key(self, art: dict[str, Any]) -> str:
        """What identifies an artifact in CMF: its uri (its hash when it has none)."""
        return self.uri(art) or str(art.get("hash"))


class _Execution:
    """One execution record with what the export needs from it."""

    def __init__(self, rid: str, record: dict[str, Any]) -> None:
        self.rid = rid
        self.record = record
        self.created = _int(_cmf(record, "execution").get("create_time_since_epoch")) or cf.ms_of_time(
            record.get("started_at")
        )
        self.events: list[tuple[int, dict[str, Any]]] = []  # (event type, artifact)
        arts = [(a, True) for a in record.get("inputs") or ()] + [(a, False) for a in record.get("outputs") or ()]
        placed = []
        for position, (art, is_input) in enumerate(arts):
            if art.get("hash") is None:
                continue  # a missing output: CMF has no way to say so
            src = _cmf(art)
            event = src.get("event")
            if not isinstance(event, int) or cf.is_input(event) != is_input:
                event = cf.INPUT if is_input else cf.OUTPUT
            order = src.get("order")
            key = (0, order, position) if isinstance(order, int) else (1, position, position)
            placed.append((key, event, art))
        self.events = [(event, art) for _, event, art in sorted(placed, key=lambda t: t[0])]
        metrics = record.get("metrics") or {}
        if metrics and not any(_is_value_metrics(a) and not cf.is_input(ev) for ev, a in self.events):
            self.events.append((cf.OUTPUT, self._metrics_artifact(metrics)))

    def _metrics_artifact(self, metrics: dict[str, Any]) -> dict[str, Any]:
        # log-run/API metrics have no artifact; CMF keeps execution metrics in a Metrics artifact.
        uri = str(uuidlib.uuid5(_METRICS_NAMESPACE, self.rid))
        return {
            "path": "metrics",
            "hash": cf.hash_of_uri(uri, ""),
            "type": "metrics",
            "props": dict(metrics),
            "source": {"cmf": {"uri": uri}},
        }


def build(
    records: Iterable[tuple[str, dict[str, Any]]],
    pipeline: str,
    remembered: Remembered | None = None,
    commits: Mapping[str, str | None] | None = None,
    numbering: Numbering | None = None,
) -> dict[str, Any]:
    """The CMF export document of the execution records of ``pipeline`` (``remembered``: the md5
    identities the data cache knows, for artifacts no record gives one; ``commits``: record id ->
    the git commit that first brought it into the branch, None while it is pending; ``numbering``:
    the ids of objects without CMF ids, a clone's :class:`cmfgit.cmfids.Ledger`, else they are
    numbered after the document's highest). The parts of one CMF execution (cmf_parts.py) are
    folded into one."""
    mine = [(r, rec) for r, rec in records if rec.get("schema") == schema.EXECUTION and rec.get("pipeline") == pipeline]
    execs = [_Execution(rid, rec) for rid, rec in cmf_parts.fold(mine)]
    parts = cmf_parts.keys(mine) if numbering is not None else None
    if not execs:
        return {"Pipeline": []}
    stages: dict[str, list[_Execution]] = {}
    for ex in sorted(execs, key=lambda e: (e.created, e.rid)):
        stages.setdefault(str(ex.record.get("stage")), []).append(ex)
    for name, members in stages.items():
        stages[name] = _ordered(
            members, lambda e: _int(_cmf(e.record, "execution").get("id")), lambda e: (e.created, e.rid)
        )
    stage_order = _ordered(
        list(stages),
        lambda s: _int(_context_source(stages[s], "stage").get("id")),
        lambda s: (stages[s][0].created, s),
    )
    every = [ex for name in stage_order for ex in stages[name]]
    ids = _assign_ids(pipeline, every, stage_order, stages, remembered, numbering, parts)
    ids.commits = dict(commits or {})
    exported_stages = [_stage(pipeline, name, stages[name], ids) for name in stage_order]
    src = _context_source(every, "pipeline")
    created = min(e.created for e in execs)
    node = {
        "stages": exported_stages,
        "create_time_since_epoch": _int(src.get("create_time_since_epoch")) or created,
        "custom_properties": _context_custom(every, "pipeline"),
        "id": ids.contexts[("pipeline", pipeline)],
        "last_update_time_since_epoch": _int(src.get("last_update_time_since_epoch")) or created,
        "name": pipeline,
        "properties": {"Pipeline": pipeline, **(src.get("properties") or {})},
        "type": cf.PIPELINE_TYPE,
        "type_id": ids.types[cf.PIPELINE_TYPE],
    }
    return {"Pipeline": [node]}


def _context_custom(execs: list[_Execution], which: str) -> dict[str, Any]:
    """The custom properties of a CMF context: the union over ``execs``, latest value per key.

    CMF keeps them on the context, so an execution that passes none (or other keys) keeps them."""
    found: dict[str, Any] = {}
    for ex in sorted(execs, key=lambda e: (e.created, e.rid)):
        found.update(_cmf(ex.record, which).get("custom_properties") or {})
    return found


def _context_source(execs: list[_Execution], which: str) -> dict[str, Any]:
    """The CMF context recorded by the latest of ``execs`` that has one."""
    found: dict[str, Any] = {}
    for ex in execs:
        found = _cmf(ex.record, which) or found
    return found


class _AllIds:
    def __init__(self, uris: _Uris) -> None:
        self.uris = uris
        # CMF has one artifact per uri, embedded alike in every event that names it.
        self.occurrences: dict[str, list[tuple[_Execution, dict[str, Any]]]] = {}
        self.nodes: dict[str, dict[str, Any]] = {}
        self.contexts = _Ids()
        self.executions = _Ids()
        self.artifacts = _Ids()
        self.types = _Ids()
        self.commits: dict[str, str | None] = {}

    def settle(self, numbering: Numbering | None, scoped: dict[str, Callable[[Hashable], Hashable]]) -> None:
        """``scoped``: per kind, the key an object has across the whole scope (a stage's is in its
        pipeline; an execution's is its CMF execution, whichever part's record came first)."""
        kinds = (("context", self.contexts), ("execution", self.executions), ("artifact", self.artifacts))
        for kind, ids in (*kinds, ("type", self.types)):
            ids.settle(None if numbering is None else _scoped_assign(numbering, kind, scoped.get(kind)))


def _scoped_assign(numbering: Numbering, kind: str, scope_key: Callable[[Hashable], Hashable] | None) -> Assign:
    def assign(keys: list[Hashable], taken: set[int]) -> dict[Hashable, int] | None:
        wide = {key: (scope_key(key) if scope_key is not None else key) for key in keys}
        got = numbering(kind, list(wide.values()), taken)
        return None if got is None else {key: got[wide[key]] for key in keys}

    return assign


def cmf_floors(records: Iterable[tuple[str, dict[str, Any]]]) -> dict[str, int]:
    """The highest CMF id of each kind (context, execution, artifact, type) in ``records``: the
    ids imported CMF data holds, which the clone's new ids must stay above (cmfids.Ledger)."""
    top = {"context": 0, "execution": 0, "artifact": 0, "type": 0}

    def see(kind: str, value: Any) -> None:
        number = _int(value)
        if number is not None and number > top[kind]:
            top[kind] = number

    for _, rec in records:
        for which in ("pipeline", "stage"):
            see("context", _cmf(rec, which).get("id"))
            see("type", _cmf(rec, which).get("type_id"))
        see("execution", _cmf(rec, "execution").get("id"))
        see("type", _cmf(rec, "execution").get("type_id"))
        for art in [*(rec.get("inputs") or ()), *(rec.get("outputs") or ())]:
            if isinstance(art, dict):
                see("artifact", _cmf(art).get("id"))
                see("type", _cmf(art).get("type_id"))
    return top


def _is_value_metrics(art: dict[str, Any]) -> bool:
    """A CMF Metrics artifact: values without a file (imported, or from compat's log_execution_metrics)."""
    return art.get("type") == "metrics" and art.get("kind", "external") == "external"


def _artifact_type(art: dict[str, Any]) -> str:
    name = _cmf(art).get("type")
    if isinstance(name, str) and name:
        return name
    if art.get("type") == "metrics" and not _is_value_metrics(art):
        return cf.DEFAULT_CMF_TYPE  # a metrics *file*: CMF's Metrics artifacts hold values, not files
    return cf.cmf_type(str(art.get("type")))


def _assign_ids(
    pipeline: str,
    every: list[_Execution],
    stage_order: list[str],
    stages: dict[str, list[_Execution]],
    remembered: Remembered | None = None,
    numbering: Numbering | None = None,
    parts: dict[str, cmf_parts.Key] | None = None,
) -> _AllIds:
    ids = _AllIds(_Uris(every, remembered))
    ids.contexts.want(("pipeline", pipeline), _context_source(every, "pipeline").get("id"))
    ids.types.want(cf.PIPELINE_TYPE, _context_source(every, "pipeline").get("type_id"))
    ids.types.want(cf.STAGE_TYPE, _context_source(every, "stage").get("type_id"))
    for name in stage_order:
        ids.contexts.want(("stage", name), _context_source(stages[name], "stage").get("id"))
    for ex in every:
        src = _cmf(ex.record, "execution")
        ids.executions.want(ex.rid, src.get("id"))
        ids.types.want(("execution", str(ex.record.get("type"))), src.get("type_id"))
        for _, art in ex.events:
            ids.artifacts.want(ids.uris.key(art), _cmf(art).get("id"))
            ids.occurrences.setdefault(ids.uris.key(art), []).append((ex, art))
            ids.types.want(("artifact", _artifact_type(art)), _cmf(art).get("type_id"))
    part_of = parts or {}

    def context_key(key: Hashable) -> Hashable:
        return ("stage", pipeline, key[1]) if isinstance(key, tuple) and key[0] == "stage" else key

    def execution_key(rid: Hashable) -> Hashable:
        return part_of.get(str(rid), ("record", str(rid)))

    ids.settle(numbering, {"context": context_key, "execution": execution_key})
    return ids


def _stage(pipeline: str, name: str, members: list[_Execution], ids: _AllIds) -> dict[str, Any]:
    src = _context_source(members, "stage")
    full = src.get("name") if isinstance(src.get("name"), str) else f"{pipeline}/{name}"
    created = members[0].created
    stage_id = ids.contexts[("stage", name)]
    # cmflib lists a stage's executions as MLMD's get_executions_by_context does: newest first
    # (CREATE_TIME descending, then id descending).
    newest_first = sorted(members, key=lambda e: (e.created, ids.executions[e.rid]), reverse=True)
    executions = [_execution(pipeline, str(full), ex, stage_id, ids) for ex in newest_first]
    return {
        "executions": executions,
        "create_time_since_epoch": _int(src.get("create_time_since_epoch")) or created,
        "custom_properties": _context_custom(members, "stage"),
        "id": stage_id,
        "last_update_time_since_epoch": _int(src.get("last_update_time_since_epoch")) or created,
        "name": full,
        "properties": {"Pipeline_Stage": full, **(src.get("properties") or {})},
        "type": cf.STAGE_TYPE,
        "type_id": ids.types[cf.STAGE_TYPE],
    }


def _execution(pipeline: str, stage: str, ex: _Execution, stage_id: int, ids: _AllIds) -> dict[str, Any]:
    rec = ex.record
    src = _cmf(rec, "execution")
    eid = ids.executions[ex.rid]
    git = rec.get("git") or {}
    env_inputs = [a for event, a in ex.events if a.get("type") == "environment" and cf.is_input(event)]
    custom: dict[str, Any] = cf.cmf_values(rec.get("params") or {})
    if env_inputs:
        custom["Python_Env"] = env_inputs[0]["path"]
    code = rec.get("exit_code")
    if isinstance(code, int) and not isinstance(code, bool) and code != 0:
        custom.update({cf.STATE_KEY: cf.FAILED, cf.EXIT_CODE_KEY: code})
        if isinstance(rec.get("error"), str) and rec["error"]:
            custom[cf.ERROR_KEY] = rec["error"]
    custom.update(src.get("custom_properties") or {})
    properties: dict[str, Any] = {
        "Context_ID": stage_id,
        "Context_Type": stage,
        "Execution": str(list(rec.get("command") or [])),
        "Execution_type_name": stage,
        "Execution_uuid": rec.get("uuid"),
        "Git_End_Commit": "",
        "Git_Repo": url_text(git.get("remote") or ""),  # records of older versions may hold a token
        "Git_Start_Commit": git.get("commit") or "",
        "Pipeline_Type": pipeline,
        "Pipeline_id": ids.contexts[("pipeline", pipeline)],
    }
    properties.update(src.get("properties") or {})
    properties.update(Context_ID=stage_id, Pipeline_id=ids.contexts[("pipeline", pipeline)])
    if rec.get("site") != cf.SITE and ids.commits.get(ex.rid):
        # The commit of the metadata: the git commit that first brought the record into the
        # branch ("" while it is pending). Imported records keep CMF's own value.
        properties["Git_End_Commit"] = ids.commits[ex.rid]
    return {
        "type": rec.get("type"),
        "name": src.get("name") if isinstance(src.get("name"), str) else "",
        "events": [{"type": event, "artifact": _artifact(art, ids)} for event, art in ex.events],
        "create_time_since_epoch": ex.created,
        "custom_properties": dict(sorted(custom.items())),
        "id": eid,
        "last_update_time_since_epoch": _int(src.get("last_update_time_since_epoch"))
        or max(ex.created, cf.ms_of_time(rec.get("ended_at"))),
        "properties": dict(sorted(properties.items())),
        "type_id": ids.types[("execution", str(rec.get("type")))],
    }


def _artifact(art: dict[str, Any], ids: _AllIds) -> dict[str, Any]:
    """The CMF artifact of ``art``: built from its first mention (one that came from CMF if any),
    with the custom properties of all its mentions merged, later ones winning, as CMF updates them."""
    key = ids.uris.key(art)
    if key not in ids.nodes:
        mentions = ids.occurrences[key]
        ex, first = next(((e, a) for e, a in mentions if _cmf(a).get("name")), mentions[0])
        props: dict[str, Any] = {}
        for _, other in mentions:
            props.update(other.get("props") or {})
        ids.nodes[key] = _artifact_node(ex, first, props, ids)
    return ids.nodes[key]


def _artifact_node(ex: _Execution, art: dict[str, Any], props: dict[str, Any], ids: _AllIds) -> dict[str, Any]:
    eid = ids.executions[ex.rid]
    src = _cmf(art)
    ctype = _artifact_type(art)
    uri = ids.uris.uri(art)
    path = str(art.get("path"))
    name = src.get("name")
    if not isinstance(name, str) or not name:
        name = f"{path}:{uri}:{eid}" if ctype in ("Model", "Metrics", "Step_Metrics") else f"{path}:{uri}"
        if ctype == "Step_Metrics":  # cmflib adds a uuid1; here one derived from the record and path
            name += f":{uuidlib.uuid5(_METRICS_NAMESPACE, f'{ex.rid}:{path}')}"
    git_repo = url_text((ex.record.get("git") or {}).get("remote") or "")
    properties: dict[str, Any]
    if ctype == "Metrics":
        properties = {"metrics_name": name}
    elif ctype == "Model":
        properties = {"Commit": uri, "model_framework": "Default", "model_name": "Default", "model_type": "Default"}
        properties["url"] = ""
    elif ctype == "Step_Metrics":
        properties = {"Commit": uri, "url": ""}
    else:
        properties = {"Commit": uri, "git_repo": git_repo, "url": ""}
    properties.update(src.get("properties") or {})
    created = _int(src.get("create_time_since_epoch")) or ex.created
    node: dict[str, Any] = {
        "type": ctype,
        "create_time_since_epoch": created,
        "custom_properties": cf.cmf_values(props),
        "id": ids.artifacts[ids.uris.key(art)],
        "last_update_time_since_epoch": _int(src.get("last_update_time_since_epoch")) or created,
        "name": name,
        "properties": dict(sorted(properties.items())),
        "type_id": ids.types[("artifact", ctype)],
    }
    if uri:
        node["uri"] = uri
    return node


# -- the command ------------------------------------------------------------------


def export_cmf(repo: Repo, pipeline: str, fmt: str = "cmf-json") -> dict[str, Any]:
    if fmt not in FORMATS:
        raise UsageError(f"unknown export format '{fmt}' (known: {', '.join(FORMATS)})")
    found = reading.executions(repo, pipeline)
    if not found:
        known = sorted({str(r.get("pipeline")) for _, r in reading.executions(repo)})
        have = ", ".join(known) if known else "none"
        raise UsageError(f"no executions of pipeline '{pipeline}' (pipelines: {have})")
    from cmfgit import recordcommits

    commits = recordcommits.first_commits(repo, (rid for rid, _ in found)) if not repo.bare else {}
    ledger = cmfids.Ledger.of(repo)
    try:
        # CMF ids of every pipeline's imported records (those are the only ones with CMF ids): the
        # clone's new ids go above them, so this export and the others never share an id.
        ledger.raise_floors(cmf_floors(reading.executions(repo, where=f'site == "{cf.SITE}"')))
        return build(found, pipeline, _remembered(repo), commits, ledger.numbering)
    finally:
        ledger.close()


def _remembered(repo: Repo) -> Remembered:
    """The md5 identities this clone's data cache remembers (what ``--dvc-copies`` pushed)."""
    from cmfgit.data.cache import cache_dir
    from cmfgit.data.dvclayout import remembered_uri

    root = cache_dir(repo)
    return lambda hexhash, is_dir: remembered_uri(root, hexhash, is_dir)


def dumps(document: dict[str, Any]) -> str:
    """The text ``cmf metadata export`` writes: two-space indent, ASCII, no final newline."""
    return json.dumps(document, indent=2)


def write(document: dict[str, Any], output: str | os.PathLike[str]) -> Path:
    path = Path(output)
    if path.is_dir():
        raise UsageError(f"{os.fspath(output)} is a directory; give a file name")
    if not path.parent.is_dir():
        raise UsageError(f"directory {os.fspath(path.parent)} does not exist")
    atomic_write(path, dumps(document).encode("utf-8"))
    return path
