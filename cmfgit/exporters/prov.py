"""``cmfgit export --format prov-json | prov-n``: executions as a W3C PROV document.

Built with the ``prov`` package (the ``cmfgit[prov]`` extra). The mapping, also in
``docs/guide.md``:

- an execution record is an activity ``run:<record id>`` (start and end time, pipeline,
  stage, type, status, exit code, git commit, params and metrics as JSON text);
- an artifact version is an entity ``artifact:<hash>`` (its content identity, so the same
  bytes are one entity wherever they appear), with ``used`` (at the start) and
  ``wasGeneratedBy`` (at the end); missing outputs are left out;
- each path is a general entity ``path:<path>``, and every version seen at that path is a
  ``specializationOf`` it;
- an execution that read one version of a path and wrote another version of the same path
  made a revision: ``wasDerivedFrom`` with ``prov:type prov:Revision``, naming the activity;
- sites are agents ``site:<name>`` (``prov:Organization``), users are agents
  ``user:<name>@<site>`` (``prov:Person``) that ``actedOnBehalfOf`` their site; an execution
  ``wasAssociatedWith`` both.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from cmfgit.errors import CmfgitError
from cmfgit.exporters.openlineage import status

FORMATS = ("prov-json", "prov-n")
NAMESPACES = {
    "cmfgit": "urn:cmfgit:prov:",
    "run": "urn:cmfgit:run:",
    "artifact": "urn:cmfgit:artifact:",
    "path": "urn:cmfgit:path:",
    "site": "urn:cmfgit:site:",
    "user": "urn:cmfgit:user:",
}


def _local(text: str) -> str:
    """``text`` as the local part of a qualified name (PROV-N percent escapes)."""
    return quote(text, safe="")


def _prov() -> Any:
    try:
        import prov.model
    except ImportError:
        raise CmfgitError("the PROV export needs the prov package: pip install 'cmfgit[prov]'") from None
    return prov.model


def document(executions: Iterable[dict[str, Any]]) -> Any:
    """The ``prov.model.ProvDocument`` of ``executions`` (JSON objects of execution records)."""
    pm = _prov()
    doc = pm.ProvDocument()
    for prefix, uri in NAMESPACES.items():
        doc.add_namespace(prefix, uri)
    entities: dict[str, Any] = {}
    paths: dict[str, Any] = {}
    specialised: set[tuple[str, str]] = set()
    agents: dict[str, Any] = {}

    def agent(key: str, attributes: dict[str, Any]) -> Any:
        if key not in agents:
            agents[key] = doc.agent(key, attributes)
        return agents[key]

    def entity(art: dict[str, Any]) -> Any:
        digest, path = str(art["hash"]), str(art.get("path"))
        if digest not in entities:
            attrs: dict[str, Any] = {
                "prov:label": path,
                "cmfgit:hash": digest,
                "cmfgit:type": str(art.get("type") or ""),
                "cmfgit:kind": str(art.get("kind") or ""),
            }
            if isinstance(art.get("size"), int):
                attrs["cmfgit:size"] = art["size"]
            entities[digest] = doc.entity(f"artifact:{_local(digest)}", attrs)
        if path not in paths:
            paths[path] = doc.entity(f"path:{_local(path)}", {"prov:label": path, "cmfgit:path": path})
        if (digest, path) not in specialised:
            specialised.add((digest, path))
            doc.specializationOf(entities[digest], paths[path])
        return entities[digest]

    for obj in executions:
        rid = str(obj["id"])
        git = obj.get("git") or {}
        attrs = {
            "prov:label": f"{obj.get('pipeline')}.{obj.get('stage')}",
            "cmfgit:pipeline": str(obj.get("pipeline")),
            "cmfgit:stage": str(obj.get("stage")),
            "cmfgit:type": str(obj.get("type") or ""),
            "cmfgit:status": status(obj),
            "cmfgit:params": json.dumps(obj.get("params") or {}, sort_keys=True),
            "cmfgit:metrics": json.dumps(obj.get("metrics") or {}, sort_keys=True),
        }
        if isinstance(obj.get("exit_code"), int):
            attrs["cmfgit:exitCode"] = obj["exit_code"]
        if git.get("commit"):
            attrs["cmfgit:commit"] = str(git["commit"])
        started, ended = obj.get("started_at"), obj.get("ended_at")
        activity = doc.activity(f"run:{_local(rid)}", started, ended, attrs)
        site_name = str(obj.get("site") or "unknown")
        site = agent(f"site:{_local(site_name)}", {"prov:type": "prov:Organization", "prov:label": site_name})
        doc.wasAssociatedWith(activity, site)
        user_name = str(obj.get("user") or "")
        if user_name:
            key = f"user:{_local(f'{user_name}@{site_name}')}"
            if key not in agents:
                agent(key, {"prov:type": "prov:Person", "prov:label": user_name})
                doc.actedOnBehalfOf(agents[key], site)
            doc.wasAssociatedWith(activity, agents[key])
        read: dict[str, str] = {}  # path -> hash read
        for art in _present(obj.get("inputs")):
            doc.used(activity, entity(art), started)
            read[str(art.get("path"))] = str(art["hash"])
        for art in _present(obj.get("outputs")):
            made = entity(art)
            doc.wasGeneratedBy(made, activity, ended)
            before = read.get(str(art.get("path")))
            if before is not None and before != str(art["hash"]):
                doc.wasDerivedFrom(made, entities[before], activity, other_attributes={"prov:type": "prov:Revision"})
    return doc


def _present(artifacts: Any) -> list[dict[str, Any]]:
    """The artifacts with a content identity, each hash once (in order)."""
    seen: set[str] = set()
    found = []
    for art in artifacts or ():
        digest = art.get("hash")
        if digest and digest not in seen:
            seen.add(digest)
            found.append(art)
    return found


def serialize(doc: Any, fmt: str) -> str:
    """PROV-JSON (``prov-json``) or PROV-N (``prov-n``) text of ``doc``."""
    if fmt == "prov-n":
        return str(doc.get_provn()) + "\n"
    return str(doc.serialize(format="json", indent=2)) + "\n"
