"""Record schemas and their validation.

A record is a mapping whose ``schema`` field names its kind and version, for
example ``cmfgit/execution/1``. Validation is strict: unknown fields are
refused (extensions go under keys starting with ``x-``), so a typo in a
hand-written record is found by ``fsck`` instead of being silently ignored.
``docs/format.md`` is the prose version of this module; keep them in step.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from cmfgit.errors import RecordError

TYPE_CHECKING = False  # typing's constant without importing typing (~4 ms of log-run start-up)
if TYPE_CHECKING:
    from datetime import datetime
    from typing import Any

EXECUTION = "cmfgit/execution/1"
ANNOTATION = "cmfgit/annotation/1"
TAG_KIND = "tag"  # annotations of this kind are tags (cmfgit/tags.py)
RETRACTION = "cmfgit/retraction/1"  # withdraws records by id (cmfgit/retractions.py)

ARTIFACT_TYPES = (
    "dataset",
    "model",
    "metrics",
    "step_metrics",
    "dataslice",
    "label",
    "environment",
    "code",
    "other",
)
ARTIFACT_KINDS = ("file", "dir", "missing", "external")
_HASH = re.compile(r"^(blake3:[0-9a-f]{64}|md5:[0-9a-f]{32})$")
_TIME = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z$")
_RECORD_ID = re.compile(r"^[0-9a-f]{64}$")
_OID = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")  # sha1 or sha256 repos
_TYPE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def valid_type_name(name: str) -> bool:
    return bool(_TYPE_NAME.match(name))


_last_second = (-1, "")  # (second, its text): a sweep formats the same second many times


def utc_now() -> str:
    """Now as the canonical timestamp string (microseconds, UTC, 'Z')."""
    global _last_second
    seconds, nanos = divmod(time.time_ns(), 1_000_000_000)  # no datetime import on the hot path
    last = _last_second  # one tuple, read once: safe with threads
    if last[0] != seconds:
        last = _last_second = (seconds, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)))
    return f"{last[1]}.{nanos // 1000:06d}Z"


def format_time(moment: datetime) -> str:
    from datetime import timezone

    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class _Checker:
    """Collects the first problem with a path like ``inputs[1].hash``."""

    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, path: str, reason: str) -> None:
        raise RecordError(self.where, f"{path}: {reason}")

    def mapping(
        self,
        value: Any,
        path: str,
        required: dict[str, Callable[[Any, str], None]],
        optional: dict[str, Callable[[Any, str], None]] | None = None,
    ) -> None:
        if not isinstance(value, dict):
            self.fail(path, "must be a mapping")
        optional = optional or {}
        for key in required:
            if key not in value:
                self.fail(path, f"missing field '{key}'")
        for key, item in value.items():
            check = required.get(key) or optional.get(key)
            if check is None:
                if key.startswith("x-"):
                    continue
                self.fail(path, f"unknown field '{key}'")
            else:
                check(item, f"{path}.{key}" if path else key)

    # Field checkers: each takes (value, path).
    def text(self, value: Any, path: str) -> None:
        if not isinstance(value, str) or not value:
            self.fail(path, "must be a non-empty string")

    def any_text(self, value: Any, path: str) -> None:
        if not isinstance(value, str):
            self.fail(path, "must be a string")

    def opt_text(self, value: Any, path: str) -> None:
        if value is not None and not isinstance(value, str):
            self.fail(path, "must be a string or null")

    def time(self, value: Any, path: str) -> None:
        if not isinstance(value, str) or not _TIME.match(value):
            self.fail(path, "must be a UTC time like 2026-01-01T00:00:00.000000Z")

    def opt_time(self, value: Any, path: str) -> None:
        if value is not None:
            self.time(value, path)

    def opt_int(self, value: Any, path: str) -> None:
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            self.fail(path, "must be an integer or null")

    def count(self, value: Any, path: str) -> None:
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            self.fail(path, "must be a non-negative integer")

    def boolean(self, value: Any, path: str) -> None:
        if not isinstance(value, bool):
            self.fail(path, "must be true or false")

    def opt_oid(self, value: Any, path: str) -> None:
        if value is not None and (not isinstance(value, str) or not _OID.match(value)):
            self.fail(path, "must be a full git object id or null")

    def argv(self, value: Any, path: str) -> None:
        if not isinstance(value, list) or not all(isinstance(a, str) for a in value):
            self.fail(path, "must be a list of strings")

    def free_mapping(self, value: Any, path: str) -> None:
        if not isinstance(value, dict):
            self.fail(path, "must be a mapping")

    def number(self, value: Any, path: str) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(path, "must be a number")

    def metrics(self, value: Any, path: str) -> None:
        if not isinstance(value, dict):
            self.fail(path, "must be a mapping of names to numbers")
        for name, number in value.items():
            self.number(number, f"{path}.{name}")

    def step_metrics(self, value: Any, path: str) -> None:
        if not isinstance(value, dict):
            self.fail(path, "must be a mapping of names to [step, value] lists")
        for name, series in value.items():
            if not isinstance(series, list):
                self.fail(f"{path}.{name}", "must be a list of [step, value] pairs")
            for i, pair in enumerate(series):
                ok = isinstance(pair, list) and len(pair) == 2
                if ok:
                    self.opt_int(pair[0], f"{path}.{name}[{i}][0]")
                    self.number(pair[1], f"{path}.{name}[{i}][1]")
                else:
                    self.fail(f"{path}.{name}[{i}]", "must be a [step, value] pair")

    def artifacts(self, value: Any, path: str) -> None:
        if not isinstance(value, list):
            self.fail(path, "must be a list")
        for i, item in enumerate(value):
            self.artifact(item, f"{path}[{i}]")

    def artifact(self, value: Any, path: str) -> None:
        self.mapping(
            value,
            path,
            required={
                "path": self.text,
                "hash": self.hash_or_null,
                "size": self.opt_int,
                "type": self.type_name,
                "kind": self.kind,
                "props": self.free_mapping,
            },
            # source: where an imported artifact came from (CMF ids, type, name, uri), see docs/format.md
            optional={"aliases": self.aliases, "source": self.free_mapping},
        )
        if value["kind"] == "missing" and value["hash"] is not None:
            self.fail(path, "a missing artifact has no hash")
        if value["kind"] != "missing" and value["hash"] is None:
            self.fail(path, "hash is required unless the artifact is missing")

    def hash_or_null(self, value: Any, path: str) -> None:
        if value is not None and (not isinstance(value, str) or not _HASH.match(value)):
            self.fail(path, "must be 'blake3:<64 hex>' or 'md5:<32 hex>'")

    def aliases(self, value: Any, path: str) -> None:
        # Other identities of the same bytes, e.g. CMF's md5 uri of an imported artifact.
        if not isinstance(value, list):
            self.fail(path, "must be a list of hashes")
        for i, item in enumerate(value):
            self.hash_or_null(item, f"{path}[{i}]")
            if item is None:
                self.fail(f"{path}[{i}]", "must be a hash")

    def type_name(self, value: Any, path: str) -> None:
        # Known types are listed in ARTIFACT_TYPES; others are allowed so that
        # teams can add their own, but they must look like identifiers.
        if not isinstance(value, str) or not _TYPE_NAME.match(value):
            self.fail(path, "must be a lower-case type name such as 'dataset' or 'model'")

    def kind(self, value: Any, path: str) -> None:
        if value not in ARTIFACT_KINDS:
            self.fail(path, f"must be one of {', '.join(ARTIFACT_KINDS)}")


def _validate_execution(record: dict[str, Any], c: _Checker) -> None:
    git = lambda v, p: c.mapping(  # noqa: E731
        v,
        p,
        required={
            "commit": c.opt_oid,
            "branch": c.opt_text,
            "dirty": c.boolean,
            "remote": c.opt_text,
            "tree": c.opt_oid,
        },
        optional={"untracked_skipped": c.count, "tracked_withheld": c.count},
    )
    env = lambda v, p: c.mapping(  # noqa: E731
        v,
        p,
        required={"python": c.any_text, "platform": c.any_text},
        optional={"packages": c.opt_text, "vars": c.free_mapping, "executable": c.any_text},
    )
    c.mapping(
        record,
        "",
        required={
            "schema": c.text,
            "uuid": c.text,
            "pipeline": c.text,
            "stage": c.text,
            "type": c.text,
            "command": c.argv,
            "params": c.free_mapping,
            "started_at": c.time,
            "ended_at": c.opt_time,
            "exit_code": c.opt_int,
            "site": c.any_text,
            "host": c.any_text,
            "user": c.any_text,
            "git": git,
            "env": env,
            "inputs": c.artifacts,
            "outputs": c.artifacts,
            "metrics": c.metrics,
        },
        optional={
            "cwd": c.any_text,
            "error": c.opt_text,
            "step_metrics": c.step_metrics,
            "source": c.free_mapping,
            "properties": c.free_mapping,
        },
    )


def _validate_annotation(record: dict[str, Any], c: _Checker) -> None:
    c.mapping(
        record,
        "",
        required={
            "schema": c.text,
            "target": c.text,
            "kind": c.text,
            "at": c.time,
            "body": c.free_mapping,
        },
        optional={"site": c.any_text, "user": c.any_text},
    )


def _validate_retraction(record: dict[str, Any], c: _Checker) -> None:
    def ids(value: Any, path: str) -> None:
        if not isinstance(value, list) or not value:
            c.fail(path, "must be a non-empty list of record ids")
        for i, item in enumerate(value):
            if not isinstance(item, str) or not _RECORD_ID.match(item):
                c.fail(f"{path}[{i}]", "must be a record id (64 hex digits)")
        if value != sorted(set(value)):
            c.fail(path, "must be sorted, without duplicates")

    c.mapping(
        record,
        "",
        required={"schema": c.text, "ids": ids, "at": c.time},
        optional={"reason": c.any_text, "site": c.any_text, "user": c.any_text},
    )


_VALIDATORS: dict[str, Callable[[dict[str, Any], _Checker], None]] = {
    EXECUTION: _validate_execution,
    ANNOTATION: _validate_annotation,
    RETRACTION: _validate_retraction,
}


_EXEC_REQUIRED = frozenset(
    "schema uuid pipeline stage type command params started_at ended_at exit_code site host user git env"
    " inputs outputs metrics".split()
)
_EXEC_ALLOWED = _EXEC_REQUIRED | {"cwd", "error", "step_metrics", "source", "properties"}
_GIT_KEYS = frozenset({"commit", "branch", "dirty", "remote", "tree"})
_GIT_COUNTS = ("untracked_skipped", "tracked_withheld")  # optional: written when not 0
_GIT_ALLOWED = _GIT_KEYS.union(_GIT_COUNTS)
_ENV_ALLOWED = frozenset({"python", "platform", "packages", "vars", "executable"})
_ART_REQUIRED = frozenset({"path", "hash", "size", "type", "kind", "props"})
_ART_ALLOWED = _ART_REQUIRED | {"aliases", "source"}
_PRESENT_KINDS = frozenset(ARTIFACT_KINDS) - {"missing"}
_STR_TYPE = frozenset({str})
_NUMBER_TYPES = frozenset({int, float})  # exact types: bool is not a number here


def _quick_artifacts(items: Any) -> bool:
    if type(items) is not list:
        return False
    for a in items:
        if type(a) is not dict or not _ART_ALLOWED.issuperset(a):
            return False
        try:
            path, digest, size, kind, name, props = a["path"], a["hash"], a["size"], a["kind"], a["type"], a["props"]
        except KeyError:
            return False
        if not (
            type(path) is str
            and path
            and type(props) is dict
            and (size is None or type(size) is int)
            and type(name) is str
            and _TYPE_NAME.match(name) is not None
        ):
            return False
        if digest is None:
            if kind != "missing":
                return False
        elif (
            type(digest) is not str
            or _HASH.match(digest) is None
            or type(kind) is not str
            or kind not in _PRESENT_KINDS
        ):
            return False
        if len(a) > 6:
            aliases = a.get("aliases", [])
            if type(aliases) is not list or not all(type(h) is str and _HASH.match(h) for h in aliases):
                return False
            if type(a.get("source", {})) is not dict:
                return False
    return True


def _quick_git_counts(git: dict[str, Any]) -> bool:
    """The git section holds the five fields and only counts besides."""
    if not (_GIT_KEYS < git.keys() <= _GIT_ALLOWED):
        return False
    for name in _GIT_COUNTS:
        value = git.get(name, 0)
        if type(value) is not int or value < 0:
            return False
    return True


def _quick_execution(r: dict[str, Any]) -> bool:
    """A sufficient condition for :func:`_validate_execution` to pass, in
    straight-line code (a few times cheaper: every API run validates its
    record). ``False`` only means "not sure": the full check then decides
    and names the problem. Exact types only; subclasses take the full check."""
    if not _EXEC_ALLOWED.issuperset(r):
        return False  # an unknown field (x- extensions included): the full check decides
    try:
        texts = (r["schema"], r["uuid"], r["pipeline"], r["stage"], r["type"])
        site, host, user, command, params = r["site"], r["host"], r["user"], r["command"], r["params"]
        started, ended, code, git, env = r["started_at"], r["ended_at"], r["exit_code"], r["git"], r["env"]
        inputs, outputs, metrics = r["inputs"], r["outputs"], r["metrics"]
    except KeyError:
        return False  # a missing field
    if not (
        _STR_TYPE.issuperset(map(type, texts))
        and all(texts)
        and type(site) is str
        and type(host) is str
        and type(user) is str
        and type(params) is dict
        and type(command) is list
        and _STR_TYPE.issuperset(map(type, command))
        and type(started) is str
        and _TIME.match(started) is not None
        and (ended is None or (type(ended) is str and _TIME.match(ended) is not None))
        and (code is None or type(code) is int)
        and type(git) is dict
        and (git.keys() == _GIT_KEYS or _quick_git_counts(git))
        and type(env) is dict
        and _ENV_ALLOWED.issuperset(env)
        and type(metrics) is dict
        and _NUMBER_TYPES.issuperset(map(type, metrics.values()))
    ):
        return False
    commit, tree, branch, remote = git["commit"], git["tree"], git["branch"], git["remote"]
    if not (
        type(git["dirty"]) is bool
        and (commit is None or (type(commit) is str and _OID.match(commit) is not None))
        and (tree is None or (type(tree) is str and _OID.match(tree) is not None))
        and (branch is None or type(branch) is str)
        and (remote is None or type(remote) is str)
    ):
        return False
    packages = env.get("packages")
    if not (
        type(env.get("python")) is str
        and type(env.get("platform")) is str
        and (packages is None or type(packages) is str)
        and type(env.get("vars", {})) is dict
        and type(env.get("executable", "")) is str
    ):
        return False
    if not (_quick_artifacts(inputs) and _quick_artifacts(outputs)):
        return False
    if len(r) == len(_EXEC_REQUIRED):
        return True
    error = r.get("error")
    if not (
        type(r.get("cwd", "")) is str
        and (error is None or type(error) is str)
        and type(r.get("source", {})) is dict
        and type(r.get("properties", {})) is dict
    ):
        return False
    if "step_metrics" in r:
        steps = r["step_metrics"]
        if type(steps) is not dict:
            return False
        for series in steps.values():
            if type(series) is not list:
                return False
            for pair in series:
                if type(pair) is not list or len(pair) != 2:
                    return False
                step, value = pair
                if (step is not None and type(step) is not int) or not (type(value) is float or type(value) is int):
                    return False
    return True


def validate(record: Any, where: str = "record") -> None:
    """Raise RecordError naming the first problem, or return None."""
    if not isinstance(record, dict):
        raise RecordError(where, "a record must be a YAML mapping")
    schema = record.get("schema")
    if schema == EXECUTION and type(record) is dict and _quick_execution(record):
        return
    validator = _VALIDATORS.get(schema) if isinstance(schema, str) else None
    if validator is None:
        raise RecordError(where, f"unknown schema {schema!r}")
    validator(record, _Checker(where))
