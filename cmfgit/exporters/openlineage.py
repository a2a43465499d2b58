"""``cmfgit export --format openlineage``: executions as OpenLineage 2-0-2 RunEvents.

Each execution gives one START event at its ``started_at`` and, once it has ended, one
COMPLETE (exit code 0) or FAIL event at its ``ended_at`` (the status ``cmfgit compare``
gives it: a run that ended without an exit code is a failure). A run with no ``ended_at``
(still running, or imported from a tool that kept no end time, as CMF) gives its START
only: cmfgit does not know that it ended, and an OpenLineage backend shows it as running.

- job: ``namespace`` (the repository's, below, or ``--namespace``) and ``<pipeline>.<stage>``;
- run id: the uuid5 of the record id in :data:`RUN_NAMESPACE`, so it is stable across
  exports and sites, and distinct for every record (a record's own ``uuid`` is not always
  a UUID: CMF's merged executions join several with commas);
- datasets: the inputs (on START and the end event) and the outputs (on the end event
  only, as they were hashed after the run); namespace = the record's git remote with
  its credentials redacted, else ``cmfgit://<site>``; name = the path; the content hash
  in the ``version`` facet. Missing outputs (``kind: missing``) are left out.

The facets, spec ones and cmfgit's custom ones (:data:`CUSTOM_FACETS`), are listed in
``docs/openlineage.md``. Everything here is pure except :func:`write_lines` and :func:`post`.
"""

from __future__ import annotations

import json
import math
import os
import re
import uuid as uuidlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from cmfgit import __version__
from cmfgit.errors import CmfgitError, UsageError
from cmfgit.fsutil import TMP_PREFIX, unlink_quietly
from cmfgit.redact import url_text

SPEC_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json"
EVENT_SCHEMA_URL = f"{SPEC_URL}#/$defs/RunEvent"
PRODUCER = f"urn:cmfgit:{__version__}"
RUN_NAMESPACE = uuidlib.UUID("0b7b3f3e-5c4a-5d3e-9a0e-6f70656e6c69")

_FACETS = "https://openlineage.io/spec/facets"
SPEC_FACETS = {
    "processing_engine": f"{_FACETS}/1-1-1/ProcessingEngineRunFacet.json#/$defs/ProcessingEngineRunFacet",
    "executionParameters": f"{_FACETS}/1-0-0/ExecutionParametersRunFacet.json#/$defs/ExecutionParametersRunFacet",
    "environmentVariables": f"{_FACETS}/1-0-0/EnvironmentVariablesRunFacet.json#/$defs/EnvironmentVariablesRunFacet",
    "errorMessage": f"{_FACETS}/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet",
    "tags": f"{_FACETS}/1-0-0/TagsRunFacet.json#/$defs/TagsRunFacet",
    "sourceCodeLocation": f"{_FACETS}/1-1-0/SourceCodeLocationJobFacet.json#/$defs/SourceCodeLocationJobFacet",
    "jobType": f"{_FACETS}/2-0-4/JobTypeJobFacet.json#/$defs/JobTypeJobFacet",
    "version": f"{_FACETS}/1-0-1/DatasetVersionDatasetFacet.json#/$defs/DatasetVersionDatasetFacet",
}


def _custom_url(name: str) -> str:
    return f"urn:cmfgit:openlineage:facets:{name}:1-0-0"


# The custom facets: key -> (where, JSON schema of its own fields). docs/openlineage.md
# describes them; the tests validate every emitted facet against these schemas.
_STR = {"type": "string"}
_NSTR = {"type": ["string", "null"]}
_NUM = {"type": ["number", "string"]}  # NaN and infinities are the strings "NaN", "Infinity", "-Infinity"
CUSTOM_FACETS: dict[str, tuple[str, dict[str, Any]]] = {
    "cmfgit_run": (
        "run",
        {
            "recordId": _STR,
            "uuid": _STR,
            "type": _STR,
            "site": _STR,
            "host": _STR,
            "user": _STR,
            "command": {"type": "array", "items": _STR},
            "cwd": _NSTR,
            "startedAt": _STR,
            "endedAt": _NSTR,
            "exitCode": {"type": ["integer", "null"]},
            "error": _NSTR,
            "params": {"type": "object"},
            "metadataCommit": _NSTR,
        },
    ),
    "cmfgit_metrics": (
        "run",
        {
            "metrics": {"type": "object", "additionalProperties": _NUM},
            "stepMetrics": {
                "type": "object",
                "additionalProperties": {
                    "type": "array",
                    "items": {"type": "array", "prefixItems": [{"type": ["integer", "null"]}, _NUM]},
                },
            },
        },
    ),
    "cmfgit_environment": (
        "run",
        {"python": _NSTR, "platform": _NSTR, "executable": _NSTR, "packages": _NSTR},
    ),
    "cmfgit_git": (
        "run",
        {"commit": _NSTR, "branch": _NSTR, "dirty": {"type": ["boolean", "null"]}, "tree": _NSTR, "remote": _NSTR},
    ),
    "cmfgit_artifact": (
        "dataset",
        {
            "hash": _STR,
            "type": _STR,
            "kind": _STR,
            "size": {"type": ["integer", "null"]},
            "props": {"type": "object"},
            "aliases": {"type": "array", "items": _STR},
        },
    ),
}

_URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_SCP = re.compile(r"^(?:[^@/\s]+@)?(?P<host>[^:/\s]+):(?P<path>[^/].*)$")


def custom_schema(name: str) -> dict[str, Any]:
    """The JSON schema of a custom facet (``$id`` = its ``_schemaURL``)."""
    where, fields = CUSTOM_FACETS[name]
    base = {"run": "RunFacet", "dataset": "DatasetFacet", "job": "JobFacet"}[where]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": _custom_url(name),
        "allOf": [
            {"$ref": f"{SPEC_URL}#/$defs/{base}"},
            {
                "type": "object",
                "properties": {"_producer": _STR, "_schemaURL": _STR, **fields},
                "required": sorted(fields),
                "additionalProperties": False,
            },
        ],
    }


def _facet(schema_url: str, producer: str, **fields: Any) -> dict[str, Any]:
    return {"_producer": producer, "_schemaURL": schema_url, **fields}


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinities: they become the strings cmfgit's JSON uses."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def run_id(record_id: str) -> str:
    """The OpenLineage run id of an execution record: stable, one per record."""
    return str(uuidlib.uuid5(RUN_NAMESPACE, record_id))


def repo_namespace(record: dict[str, Any]) -> str:
    """The dataset (and default job) namespace of a record: its git remote as a URI with no
    user or password (scp-style ``git@host:path`` -> ``ssh://host/path``), a local remote path
    as recorded, else ``cmfgit://<site>``."""
    remote = url_text(str((record.get("git") or {}).get("remote") or "")).strip()
    if not remote:
        return f"cmfgit://{record.get('site') or 'unknown'}"
    return (_remote_uri(remote) or remote).rstrip("/")


def _remote_uri(remote: str) -> str | None:
    """``remote`` as a URI without its user info, or None when it is a local path."""
    from urllib.parse import urlsplit, urlunsplit

    if _URL_SCHEME.match(remote):
        parts = urlsplit(remote)
        host = parts.netloc.rpartition("@")[2]
        return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    m = _SCP.match(remote)
    if m and "\\" not in remote:
        return f"ssh://{m['host']}/{m['path']}"
    return None


def status(record: dict[str, Any]) -> str:
    """``COMPLETE``, ``FAIL`` or ``RUNNING`` (no end known), as ``cmfgit compare`` reads a record."""
    code = record.get("exit_code")
    if code == 0 and not isinstance(code, bool):
        return "COMPLETE"
    if code is None and record.get("ended_at") is None:
        return "RUNNING"
    return "FAIL"


def _error_message(record: dict[str, Any]) -> str:
    if isinstance(record.get("error"), str) and record["error"]:
        return str(record["error"])
    code = record.get("exit_code")
    return f"exit code {code}" if code is not None else "ended with no exit code (killed)"


def _language(record: dict[str, Any]) -> str:
    command = record.get("command") or []
    first = os.path.basename(str(command[0])) if command else ""
    return "python" if first.startswith("python") or first.endswith(".py") else "unknown"


def _flat(values: dict[str, Any]) -> dict[str, Any]:
    """:func:`_finite` of a flat mapping (params, metrics), without copying one that needs nothing."""
    for v in values.values():
        if (type(v) is float and not math.isfinite(v)) or isinstance(v, (dict, list)):
            return {str(k): _finite(v) for k, v in values.items()}
    return values


def _text(value: Any) -> str:
    """A param or tag value as the spec's string: itself for a string, else its JSON."""
    kind = type(value)
    if kind is str:
        return str(value)
    if kind is int or kind is float:
        return repr(value) if math.isfinite(value) else str(_finite(value))
    return json.dumps(_finite(value))


class _Builder:
    """Builds the events; facets that many records share (job facets of one code version,
    datasets of one artifact) are built once."""

    def __init__(self, namespace: str | None, producer: str) -> None:
        self.namespace = namespace
        self.producer = producer
        self.engine = _facet(
            SPEC_FACETS["processing_engine"],
            producer,
            version=__version__,
            name="cmfgit",
            openlineageAdapterVersion=__version__,
        )
        self.job_type = _facet(
            SPEC_FACETS["jobType"], producer, processingType="BATCH", integration="CMFGIT", jobType="STAGE"
        )
        self._jobs: dict[tuple[Any, ...], dict[str, Any]] = {}
        self._datasets: dict[tuple[Any, ...], dict[str, Any]] = {}
        self._namespaces: dict[tuple[Any, Any], str] = {}
        self.shared: set[int] = set()  # ids of the cached (shared, kept alive) job and dataset objects

    def events(self, obj: dict[str, Any]) -> list[dict[str, Any]]:
        """START carries what was known when the run started (params, environment, code, inputs);
        the end event adds what it ended with (metrics, tags, the error, outputs)."""
        rid = str(obj["id"])
        git = obj.get("git") or {}
        ns_key = (git.get("remote"), obj.get("site"))
        ds_ns = self._namespaces.get(ns_key)
        if ds_ns is None:
            ds_ns = self._namespaces[ns_key] = repo_namespace(obj)
        job = self._job(obj, git, ds_ns)
        run = self._run_facet(obj, rid)
        inputs = [self._dataset(ds_ns, a) for a in obj.get("inputs") or () if a.get("hash")]
        started = {"processing_engine": self.engine, "cmfgit_run": run, **self._start_facets(obj, git)}
        runid = run_id(rid)
        start: dict[str, Any] = {
            "eventType": "START",
            "eventTime": obj.get("started_at"),
            "producer": self.producer,
            "schemaURL": EVENT_SCHEMA_URL,
            "run": {"runId": runid, "facets": started},
            "job": job,
            "inputs": inputs,
            "outputs": [],
        }
        state = status(obj)
        if state == "RUNNING":
            return [start]
        p = self.producer
        ended: dict[str, Any] = {
            "processing_engine": self.engine,
            "cmfgit_run": run,
            "cmfgit_metrics": _facet(
                _custom_url("cmfgit_metrics"),
                p,
                metrics=_flat(obj.get("metrics") or {}),
                stepMetrics=_finite(obj.get("step_metrics") or {}),
            ),
        }
        tags = obj.get("tags")
        if tags:
            ended["tags"] = _facet(
                SPEC_FACETS["tags"],
                p,
                tags=[{"key": str(k), "value": _text(v), "source": "USER"} for k, v in tags.items()],
            )
        if state == "FAIL":
            ended["errorMessage"] = _facet(
                SPEC_FACETS["errorMessage"], p, message=_error_message(obj), programmingLanguage=_language(obj)
            )
        end = {
            "eventType": state,
            "eventTime": obj.get("ended_at"),
            "producer": p,
            "schemaURL": EVENT_SCHEMA_URL,
            "run": {"runId": runid, "facets": ended},
            "job": job,
            "inputs": inputs,
            "outputs": [self._dataset(ds_ns, a) for a in obj.get("outputs") or () if a.get("hash")],
        }
        return [start, end]

    def _job(self, obj: dict[str, Any], git: dict[str, Any], ds_ns: str) -> dict[str, Any]:
        key = (obj.get("pipeline"), obj.get("stage"), git.get("remote"), git.get("commit"), git.get("branch"), ds_ns)
        job = self._jobs.get(key)
        if job is None:
            job = self._jobs[key] = {
                "namespace": self.namespace or ds_ns,
                "name": f"{obj.get('pipeline')}.{obj.get('stage')}",
                "facets": self._job_facets(git),
            }
            self.shared.add(id(job))
        return job

    def _job_facets(self, git: dict[str, Any]) -> dict[str, Any]:
        facets: dict[str, Any] = {"jobType": self.job_type}
        remote = url_text(str(git.get("remote") or "")).strip()
        uri = _remote_uri(remote) if remote else None
        if uri is not None:
            location: dict[str, Any] = {"type": "git", "url": uri, "repoUrl": remote}
            if git.get("commit"):
                location["version"] = str(git["commit"])
            if git.get("branch"):
                location["branch"] = str(git["branch"])
            facets["sourceCodeLocation"] = _facet(SPEC_FACETS["sourceCodeLocation"], self.producer, **location)
        return facets

    def _run_facet(self, obj: dict[str, Any], rid: str) -> dict[str, Any]:
        code = obj.get("exit_code")
        commit = obj.get("metadata_commit")
        error = obj.get("error")
        return _facet(
            _custom_url("cmfgit_run"),
            self.producer,
            recordId=rid,
            uuid=str(obj.get("uuid") or ""),
            type=str(obj.get("type") or ""),
            site=str(obj.get("site") or ""),
            host=str(obj.get("host") or ""),
            user=str(obj.get("user") or ""),
            command=[str(c) for c in obj.get("command") or ()],
            cwd=obj.get("cwd"),
            startedAt=str(obj.get("started_at")),
            endedAt=obj.get("ended_at"),
            exitCode=code if isinstance(code, int) and not isinstance(code, bool) else None,
            error=error if isinstance(error, str) else None,
            params=_flat(obj.get("params") or {}),
            metadataCommit=commit.get("commit") if isinstance(commit, dict) else None,
        )

    def _start_facets(self, obj: dict[str, Any], git: dict[str, Any]) -> dict[str, Any]:
        p = self.producer
        env = obj.get("env") or {}
        params = obj.get("params") or {}
        facets: dict[str, Any] = {
            "executionParameters": _facet(
                SPEC_FACETS["executionParameters"],
                p,
                parameters=[{"key": str(k), "value": _text(v)} for k, v in params.items()],
            ),
        }
        variables = env.get("vars")
        if variables:
            facets["environmentVariables"] = _facet(
                SPEC_FACETS["environmentVariables"],
                p,
                environmentVariables=[{"name": str(k), "value": str(v)} for k, v in variables.items()],
            )
        facets["cmfgit_environment"] = _facet(
            _custom_url("cmfgit_environment"),
            p,
            python=_opt(env.get("python")),
            platform=_opt(env.get("platform")),
            executable=_opt(env.get("executable")),
            packages=_opt(env.get("packages")),
        )
        dirty = git.get("dirty")
        facets["cmfgit_git"] = _facet(
            _custom_url("cmfgit_git"),
            p,
            commit=git.get("commit"),
            branch=git.get("branch"),
            dirty=dirty if isinstance(dirty, bool) else None,
            tree=git.get("tree"),
            remote=url_text(str(git["remote"])) if git.get("remote") else None,
        )
        return facets

    def _dataset(self, namespace: str, art: dict[str, Any]) -> dict[str, Any]:
        path, digest = str(art.get("path")), str(art["hash"])
        props, aliases = art.get("props"), art.get("aliases")
        key = (namespace, path, digest, art.get("type"), art.get("kind"), art.get("size"))
        if not props and not aliases:
            found = self._datasets.get(key)
            if found is not None:
                return found
        p = self.producer
        size = art.get("size")
        dataset = {
            "namespace": namespace,
            "name": path,
            "facets": {
                "version": _facet(SPEC_FACETS["version"], p, datasetVersion=digest),
                "cmfgit_artifact": _facet(
                    _custom_url("cmfgit_artifact"),
                    p,
                    hash=digest,
                    type=str(art.get("type") or ""),
                    kind=str(art.get("kind") or ""),
                    size=size if isinstance(size, int) and not isinstance(size, bool) else None,
                    props=_finite(props or {}),
                    aliases=[str(a) for a in aliases or ()],
                ),
            },
        }
        if not props and not aliases:
            self._datasets[key] = dataset
            self.shared.add(id(dataset))
        return dataset


def _opt(value: Any) -> str | None:
    return None if value is None else str(value)


def events(
    executions: Iterable[dict[str, Any]], *, namespace: str | None = None, producer: str = PRODUCER
) -> Iterator[dict[str, Any]]:
    """The RunEvents of ``executions`` (JSON objects of execution records, ``{"id": ..., **record}``,
    as ``CmfQuery.executions`` gives them), in their order: START then the end event of each."""
    builder = _Builder(namespace, producer)
    for obj in executions:
        yield from builder.events(obj)


_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def dumps(event: dict[str, Any]) -> str:
    """One event as a JSON line (no newline)."""
    return _ENCODER.encode(event)


PARALLEL_MIN = 4000  # executions from which two worker processes pay for their start
_CHUNK = 1000
_WORK: list[Any] = []  # (items, namespace, producer, (tags, commits) or None), inherited by the forked workers


def _parallel(n: int) -> bool:
    return n >= PARALLEL_MIN and (os.cpu_count() or 1) > 1


def lines(
    executions: Iterable[dict[str, Any]], *, namespace: str | None = None, producer: str = PRODUCER
) -> Iterator[str]:
    """``dumps`` of each of :func:`events`, the same text, faster: the JSON of a job or
    dataset that many events share is encoded once, and a long list of executions is
    turned into text by two worker processes, chunk by chunk, in order."""
    if isinstance(executions, list) and _parallel(len(executions)):
        yield from _parallel_lines(executions, namespace, producer)
        return
    yield from _lines(executions, namespace, producer)


def lines_of_records(
    found: list[tuple[str, bytes]],
    tags: dict[str, dict[str, Any]],
    commits: dict[str, Any],
    *,
    namespace: str | None = None,
    producer: str = PRODUCER,
    blocks: bool = False,
) -> Iterator[str]:
    """:func:`lines` of executions given as (id, canonical bytes), with their tags and
    ``metadata_commit`` by id (``command.select_data``): parsing the records is half of an
    export, so for a long list it is done where the events are made, in the two workers.
    ``blocks``: an item may be several lines joined by newlines (for :func:`write_lines`,
    which then writes a worker's chunk in one call)."""
    if _parallel(len(found)):
        yield from _parallel_lines(found, namespace, producer, (tags, commits), blocks)
        return
    from cmfgit.exporters.command import objects

    yield from _lines(objects(found, tags, commits), namespace, producer)


def _parallel_lines(
    items: list[Any],
    namespace: str | None,
    producer: str,
    raw: tuple[Any, Any] | None = None,
    blocks: bool = False,
) -> Iterator[str]:
    import multiprocessing

    _WORK[:] = [items, namespace, producer, raw]
    try:
        with multiprocessing.get_context("fork").Pool(2) as pool:
            for block in pool.imap(_chunk_lines, range(0, len(items), _CHUNK)):
                if not block:
                    continue
                if blocks:
                    yield block
                else:  # a JSON line holds no newline: json escapes them
                    yield from block.split("\n")
    finally:
        _WORK.clear()


def _chunk_lines(start: int) -> str:
    """The lines of a chunk, joined: one string moves back from a worker fastest."""
    from cmfgit.exporters.command import objects

    items, namespace, producer, raw = _WORK
    chunk = items[start : start + _CHUNK]
    return "\n".join(_lines(objects(chunk, *raw) if raw is not None else chunk, namespace, producer))


def _lines(executions: Iterable[dict[str, Any]], namespace: str | None, producer: str) -> Iterator[str]:
    builder = _Builder(namespace, producer)
    encode = _ENCODER.encode
    encoded: dict[int, str] = {}

    def part(value: dict[str, Any]) -> str:
        key = id(value)
        if key not in builder.shared:
            return encode(value)
        text = encoded.get(key)
        if text is None:
            text = encoded[key] = encode(value)
        return text

    for obj in executions:
        for event in builder.events(obj):
            head = {k: event[k] for k in ("eventType", "eventTime", "producer", "schemaURL", "run")}
            yield (
                f"{encode(head)[:-1]},"
                f'"job":{part(event["job"])},'
                f'"inputs":[{",".join(part(d) for d in event["inputs"])}],'
                f'"outputs":[{",".join(part(d) for d in event["outputs"])}]}}'
            )


def write_lines(lines: Iterable[str], out: IO[str]) -> int:
    """Write ``lines`` as JSON lines to ``out``; returns how many. An item may be several
    lines already joined by newlines (``lines_of_records(blocks=True)``)."""
    n = 0
    for line in lines:
        out.write(line)
        out.write("\n")
        n += line.count("\n") + 1
    return n


def write_file(lines: Iterable[str], path: str | os.PathLike[str]) -> int:
    """Write ``lines`` to ``path`` atomically (a temp file beside it, fsynced, renamed)."""
    target = Path(path)
    if target.is_dir():
        raise UsageError(f"{os.fspath(path)} is a directory; give a file name")
    if not target.parent.is_dir():
        raise UsageError(f"directory {os.fspath(target.parent)} does not exist")
    tmp = target.parent / f"{TMP_PREFIX}{os.getpid()}-{os.urandom(4).hex()}"
    try:
        with open(tmp, "x", encoding="utf-8") as out:
            n = write_lines(lines, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException:
        unlink_quietly(os.fspath(tmp))
        raise
    return n


def endpoint(url: str) -> str:
    """The URL events are POSTed to: ``url`` itself, or Marquez's ``/api/v1/lineage`` when it has no path."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f"--url must be an http:// or https:// URL, not '{url_text(url)}'")
    return url.rstrip("/") + "/api/v1/lineage" if parts.path in ("", "/") else url


def post(lines: Iterable[str], url: str, *, api_key: str | None = None, timeout: float = 30.0) -> int:
    """POST each event to an OpenLineage HTTP endpoint over one kept-alive connection; returns how many.

    ``api_key`` (default: ``$OPENLINEAGE_API_KEY``) is sent as ``Authorization: Bearer``."""
    import http.client
    from urllib.parse import urlsplit

    target = endpoint(url)
    parts = urlsplit(target)
    shown = url_text(target)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    key = api_key if api_key is not None else os.environ.get("OPENLINEAGE_API_KEY")
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    conn_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    host = parts.hostname or ""
    conn = conn_class(host, parts.port, timeout=timeout)
    n = 0
    try:
        for line in lines:
            body = line.encode("utf-8")
            try:
                conn.request("POST", path, body=body, headers=headers)
                response = conn.getresponse()
                answer = response.read()
            except (OSError, http.client.HTTPException) as exc:
                reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
                raise CmfgitError(f"cannot POST to {shown}: {reason} ({n} event(s) sent)") from None
            if response.status >= 300:
                text = answer.decode("utf-8", "replace").strip().replace("\n", " ")[:200]
                raise CmfgitError(
                    f"{shown} answered {response.status} {response.reason}"
                    + (f": {text}" if text else "")
                    + f" ({n} event(s) sent)"
                )
            n += 1
    finally:
        conn.close()
    return n
