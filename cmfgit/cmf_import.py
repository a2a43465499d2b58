"""``cmfgit import PATH``: CMF metadata (an MLMD SQLite file or a CMF export JSON) into records.

Both inputs are first brought to the structure ``cmf metadata export``
writes (``mlmd.read`` builds it from SQLite), and one mapping turns each CMF
execution into one ``cmfgit/execution/1`` record. Every field is derived
from the input (and from which artifact bytes are in the working tree), so
the same input gives byte-identical records: a re-import writes nothing, and
an MLMD file and its export JSON give the same records. An execution whose
``Execution_uuid`` is already imported is not imported again even if CMF
changed it since (records are immutable; the report counts it).

The mapping, field by field, is in ``docs/coming-from-cmf.md``.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import shlex
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cmfgit import canonical, cmf_format, mlmd, schema
from cmfgit.config import load_config
from cmfgit.errors import ForeignFormatError, PathError, RecordError, UsageError
from cmfgit.hashing import Hasher
from cmfgit.recorder import numeric_metrics
from cmfgit.redact import Redactor
from cmfgit.repo import Repo

if TYPE_CHECKING:
    from cmfgit.index import Derived

_OID = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
_CONTEXT_KEYS = ("id", "type_id", "type", "name", "create_time_since_epoch", "last_update_time_since_epoch")


@dataclass
class ImportReport:
    path: str
    format: str  # "mlmd" or "cmf-json"
    schema_version: int | None  # MLMD's, for an SQLite input
    pipelines: dict[str, int] = field(default_factory=dict)  # name -> executions in the input
    executions: int = 0
    written: int = 0  # new records
    present: int = 0  # identical records already in the store
    kept: int = 0  # same Execution_uuid already imported with other content: not imported again
    artifacts: Counter[str] = field(default_factory=Counter)  # cmfgit type -> artifact references
    linked: int = 0  # artifact references found in the working tree (blake3 + md5 alias)
    ids: list[str] = field(default_factory=list)  # record ids of the imported executions, input order

    def as_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "format": self.format,
            "schema_version": self.schema_version,
            "pipelines": self.pipelines,
            "executions": self.executions,
            "written": self.written,
            "present": self.present,
            "kept": self.kept,
            "artifacts": dict(sorted(self.artifacts.items())),
            "linked": self.linked,
            "ids": self.ids,
        }


# -- reading the input ------------------------------------------------------------


def load(path: str | os.PathLike[str]) -> tuple[list[dict[str, Any]], str, int | None]:
    """(pipelines in CMF's export structure, the format, the MLMD schema version)."""
    file = Path(path)
    shown = os.fspath(path)
    if not file.exists():
        raise PathError(shown, "does not exist")
    if file.is_dir():
        raise PathError(shown, "is a directory, not an MLMD file or a CMF export JSON")
    if mlmd.is_sqlite(file):
        document, version = mlmd.read(file, shown)
        return cmf_format.check_export(document, shown), "mlmd", version
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise PathError(shown, exc.strerror or str(exc)) from None
    if data.lstrip()[:1] not in (b"{", b"["):
        raise ForeignFormatError(shown, "neither an MLMD SQLite file nor a CMF export JSON")
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ForeignFormatError(shown, f"not valid JSON ({exc})") from None
    except RecursionError:
        raise ForeignFormatError(shown, "not valid JSON (nested too deeply to read)") from None
    return cmf_format.check_export(document, shown), "cmf-json", None


# -- mapping ----------------------------------------------------------------------


class _Local:
    """Finds imported artifacts whose bytes are in the working tree."""

    def __init__(self, repo: Repo, hasher: Hasher) -> None:
        self.repo = repo
        self.hasher = hasher
        self._md5: dict[str, str | None] = {}

    def _file(self, path: str) -> Path | None:
        if not path or os.path.isabs(path):
            return None
        try:
            rel = self.repo.relpath(path, self.repo.root)
        except PathError:
            return None
        full = self.repo.root / rel
        return full if full.is_file() else None

    def md5(self, full: Path) -> str | None:
        key = str(full)
        if key not in self._md5:
            digest = hashlib.md5(usedforsecurity=False)
            try:
                with open(full, "rb") as fh:
                    for chunk in iter(lambda: fh.read(1 << 20), b""):
                        digest.update(chunk)
                self._md5[key] = digest.hexdigest()
            except OSError:
                self._md5[key] = None
        return self._md5[key]

    def _dir(self, path: str, uri: str) -> tuple[str, int, str] | None:
        """(blake3 hash, size, 'dir') of the working-tree directory at ``path`` if DVC's listing
        of it has the md5 of ``uri`` (``<md5>.dir``), as in a DVC project's working tree."""
        listing = cmf_format.md5_of_dir_uri(uri)
        if listing is None or not path or os.path.isabs(path):
            return None
        try:
            full = self.repo.root / self.repo.relpath(path, self.repo.root)
        except PathError:
            return None
        if not full.is_dir():
            return None
        from cmfgit.data.dvclayout import tree_md5

        if tree_md5(full) != listing:
            return None
        digest = self.hasher.hash_path(full, path)
        return digest.hash, digest.size, "dir"

    def identify(self, path: str, uri: str) -> tuple[str, int, str] | None:
        """(blake3 hash, size, kind) of the working-tree file (or directory) at ``path`` if it is
        the artifact ``uri``."""
        if cmf_format.md5_of_dir_uri(uri) is not None:
            return self._dir(path, uri)
        full = self._file(path)
        if full is None:
            return None
        md5 = cmf_format.md5_of_uri(uri)
        b3 = cmf_format.blake3_of_uri(uri)
        if md5 is None and b3 is None:
            return None
        if md5 is not None and self.md5(full) != md5:
            return None
        digest = self.hasher.hash_path(full, path)
        if b3 is not None and digest.hash != f"blake3:{b3}":
            return None
        return digest.hash, digest.size, "file"


def _context(node: dict[str, Any]) -> dict[str, Any]:
    info = {k: node[k] for k in _CONTEXT_KEYS if k in node}
    info["properties"] = dict(node.get("properties") or {})
    info["custom_properties"] = dict(node.get("custom_properties") or {})
    return info


def _command(text: Any) -> list[str]:
    """cmflib stores ``str(sys.argv)``; read it back as the argv list."""
    if not isinstance(text, str) or not text.strip():
        return []
    if text.startswith("["):
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            value = None
        if isinstance(value, list) and all(isinstance(a, str) for a in value):
            return value
    try:
        return shlex.split(text)
    except ValueError:
        return [text]


def _stage_name(pipeline: str, stage: str) -> str:
    prefix = f"{pipeline}/"
    short = stage[len(prefix) :] if stage.startswith(prefix) else stage
    return short or stage


def _artifact(event: dict[str, Any], order: int, local: _Local) -> tuple[dict[str, Any], bool]:
    """(the cmfgit artifact of one CMF event, whether its bytes were found locally)."""
    art = event["artifact"]
    name = art.get("name", "") or ""
    uri = art.get("uri", "") or ""
    path = cmf_format.path_of_name(name) or uri or f"cmf-artifact-{art.get('id', order)}"
    source: dict[str, Any] = {k: art[k] for k in _CONTEXT_KEYS if k in art}
    source.update(uri=uri, properties=dict(art.get("properties") or {}), event=event["type"], order=order)
    record: dict[str, Any] = {
        "path": path,
        "hash": cmf_format.hash_of_uri(uri, name),
        "size": None,
        "type": cmf_format.cmfgit_type(art["type"]),
        "kind": "external",
        "props": dict(art.get("custom_properties") or {}),
        "source": {"cmf": source},
    }
    found = local.identify(path, uri)
    if found is None:
        return record, False
    blake3_hash, size, kind = found
    if record["hash"] != blake3_hash:
        record["aliases"] = [record["hash"]]
    record.update(hash=blake3_hash, size=size, kind=kind)
    return record, True


def map_execution(
    pipeline: dict[str, Any],
    stage: dict[str, Any],
    execution: dict[str, Any],
    local: _Local,
    redactor: Redactor | None = None,
) -> tuple[dict[str, Any], int]:
    """(the record of one CMF execution, how many of its artifacts were found locally)."""
    props = execution.get("properties") or {}
    custom = execution.get("custom_properties") or {}
    pipeline_name = pipeline["name"] or "cmf"
    stage_name = _stage_name(pipeline_name, stage["name"])
    uuid = props.get("Execution_uuid")
    if not isinstance(uuid, str) or not uuid:
        basis = json.dumps(
            [pipeline_name, stage["name"], execution.get("id"), execution.get("create_time_since_epoch")]
        )
        uuid = "cmf-" + hashlib.sha256(basis.encode()).hexdigest()[:32]
    commit = props.get("Git_Start_Commit")
    remote = props.get("Git_Repo")
    inputs: list[dict[str, Any]] = []
    outputs: list[dict[str, Any]] = []
    metrics: dict[str, int | float] = {}
    linked = 0
    for order, event in enumerate(execution["events"]):
        art, found = _artifact(event, order, local)
        linked += found
        is_input = cmf_format.is_input(event["type"])
        (inputs if is_input else outputs).append(art)
        if art["type"] == "metrics" and not is_input:
            metrics.update(numeric_metrics(art["props"])[0])
    exec_source = _context(execution)
    exec_source.pop("type", None)  # the record's own 'type'
    exec_source["name"] = execution.get("name", "") or ""
    record: dict[str, Any] = {
        "schema": schema.EXECUTION,
        "uuid": uuid,
        "pipeline": pipeline_name,
        "stage": stage_name,
        "type": execution["type"] or stage_name,
        "command": _command(props.get("Execution")),
        "params": {k: cmf_format.restore_float(v) for k, v in custom.items() if k not in cmf_format.NOT_PARAMS},
        "started_at": cmf_format.time_of_ms(execution.get("create_time_since_epoch")),
        "ended_at": None,
        "exit_code": _exit_code(custom),
        "site": cmf_format.SITE,
        "host": "",
        "user": "",
        "git": {
            "commit": commit if isinstance(commit, str) and _OID.match(commit) else None,
            "branch": None,
            "dirty": False,
            "remote": remote if isinstance(remote, str) and remote else None,
            "tree": None,
        },
        "env": {"python": "", "platform": ""},
        "inputs": inputs,
        "outputs": outputs,
        "metrics": metrics,
        "source": {"cmf": {"pipeline": _context(pipeline), "stage": _context(stage), "execution": exec_source}},
    }
    if record["exit_code"] is not None and isinstance(custom.get(cmf_format.ERROR_KEY), str):
        record["error"] = custom[cmf_format.ERROR_KEY]
    if redactor is not None:
        _redact(record, redactor)
    return record, linked


def _exit_code(custom: dict[str, Any]) -> int | None:
    """The exit code of a run cmfgit exported as failed (CMF itself records no outcome)."""
    code = custom.get(cmf_format.EXIT_CODE_KEY)
    if custom.get(cmf_format.STATE_KEY) == cmf_format.FAILED and isinstance(code, int) and not isinstance(code, bool):
        return code
    return None


def _redact(record: dict[str, Any], red: Redactor) -> None:
    """The redaction log-run applies, so that an imported secret never reaches git."""
    command = record["command"]
    record["command"] = red.argv(command)
    record["params"] = red.mapping(record["params"])
    if record["git"]["remote"]:
        record["git"]["remote"] = red.text(record["git"]["remote"])
    if isinstance(record.get("error"), str):
        record["error"] = red.text(record["error"])
    cmf = record["source"]["cmf"]
    properties = cmf["execution"]["properties"]
    if record["command"] != command and isinstance(properties.get("Execution"), str):
        properties["Execution"] = str(record["command"])
    record["source"] = red.deep(record["source"])
    for art in record["inputs"] + record["outputs"]:
        art["props"] = red.mapping(art["props"])
        art["source"] = red.deep(art["source"])


# -- the command ------------------------------------------------------------------


def _index_rows(repo: Repo, sql: str, values: Iterable[str]) -> Iterator[tuple[Any, ...]]:
    """The rows of ``sql`` (its ``{}`` an ``IN`` list) for ``values``, 500 at a time, asked of
    the checkout's query index: a store of a million records is not read for this."""
    from cmfgit.query import CmfQuery

    ordered = sorted(set(values))
    with CmfQuery(repo) as q:
        for start in range(0, len(ordered), 500):
            chunk = ordered[start : start + 500]
            yield from q.db.execute(sql.format(",".join("?" * len(chunk))), chunk)


def _imported_uuids(repo: Repo, wanted: set[str]) -> dict[str, str]:
    """uuid -> id of the execution records in the checkout whose uuid is in ``wanted``."""
    found: dict[str, str] = {}
    sql = "SELECT e.uuid, r.id FROM executions e JOIN records r ON r.rowid = e.rowid WHERE e.uuid IN ({}) ORDER BY r.id"
    for uuid, rid in _index_rows(repo, sql, wanted):
        found.setdefault(uuid, rid)
    return found


def import_cmf(repo: Repo, path: str | os.PathLike[str], pipeline: str | None = None) -> ImportReport:
    """Import every execution of ``path`` (or of one pipeline in it) as records."""
    pipelines, fmt, version = load(path)
    names = [p["name"] for p in pipelines]
    if pipeline is not None:
        pipelines = [p for p in pipelines if p["name"] == pipeline]
        if not pipelines:
            have = ", ".join(names) if names else "none"
            raise UsageError(f"pipeline '{pipeline}' is not in {os.fspath(path)} (it has: {have})")
    report = ImportReport(os.fspath(path), fmt, version)
    batch: list[tuple[str, bytes, str]] = []  # (id, bytes, uuid)
    with Hasher(repo.state_dir / "hashcache.sqlite", progress=False) as hasher:
        local = _Local(repo, hasher)
        config = load_config(repo)
        redactor = Redactor(config.redact_keys, config.redact_values)
        for p in pipelines:
            report.pipelines[p["name"]] = report.pipelines.get(p["name"], 0)
            for stage in p["stages"]:
                for execution in stage["executions"]:
                    record, linked = map_execution(p, stage, execution, local, redactor)
                    try:
                        schema.validate(record, "imported execution")
                        data, rid = canonical.encode(record)
                    except RecordError as exc:
                        where = f"{p['name']}/{stage['name']} execution {execution.get('id')}"
                        raise ForeignFormatError(os.fspath(path), f"{where} cannot be imported: {exc}") from None
                    report.pipelines[p["name"]] += 1
                    report.executions += 1
                    report.linked += linked
                    for art in record["inputs"] + record["outputs"]:
                        report.artifacts[art["type"]] += 1
                    batch.append((rid, data, record["uuid"]))
    write_batch(repo, batch, report)
    return report


def write_batch(
    repo: Repo, batch: list[tuple[str, bytes, str]], report: Any, known: Mapping[str, Derived] | None = None
) -> None:
    """Store the (id, bytes, uuid) records of an import, counting into ``report`` (its
    ids, written, present, kept): a uuid imported before keeps its record (re-import).
    The new records go into packs, as a pull writes them (``pullstore.write_records``:
    a few fsyncs per pack, not one per record). ``known``: the index rows of the records
    (``index.derive``), by id, when the caller has them (the index then need not parse them)."""
    imported = _imported_uuids(repo, {uuid for _, _, uuid in batch})
    fresh: dict[str, bytes] = {}
    for rid, data, uuid in batch:
        report.ids.append(imported.get(uuid, rid))
        if uuid in imported:
            if imported[uuid] == rid:
                report.present += 1
            else:
                report.kept += 1
            continue
        imported[uuid] = rid
        fresh[rid] = data
    written = write_new(repo, fresh, known)
    report.written += written
    report.present += len(fresh) - written


def present_ids(repo: Repo, ids: Iterable[str]) -> set[str]:
    """Those of ``ids`` the checkout's store holds (asked of the query index)."""
    return {rid for (rid,) in _index_rows(repo, "SELECT id FROM records WHERE id IN ({})", ids)}


def write_new(repo: Repo, records: dict[str, bytes], known: Mapping[str, Derived] | None = None) -> int:
    """Write those of ``records`` (id -> canonical bytes) the store lacks, into packs;
    returns how many were written."""
    from cmfgit.pullstore import Brought, write_records

    if not records:
        return 0
    have = present_ids(repo, records)
    fresh = {rid: data for rid, data in records.items() if rid not in have}
    write_records(repo, fresh, Brought(), known)
    return len(fresh)
