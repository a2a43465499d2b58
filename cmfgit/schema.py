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
_OID = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")  # sha1 or sha256 repos
_TYPE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def valid_type_name(name: str) -> bool:
    return bool(_TYPE_NAME.match(name))


def utc_now() -> str:
    """Now as the canonical timestamp string (microseconds, UTC, 'Z')."""
    seconds, nanos = divmod(time.time_ns(), 1_000_000_000)  # no datetime import on the hot path
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{nanos // 1000:06d}Z"


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


_VALIDATORS: dict[str, Callable[[dict[str, Any], _Checker], None]] = {
    EXECUTION: _validate_execution,
    ANNOTATION: _validate_annotation,
}


def validate(record: Any, where: str = "record") -> None:
    """Raise RecordError naming the first problem, or return None."""
    if not isinstance(record, dict):
        raise RecordError(where, "a record must be a YAML mapping")
    schema = record.get("schema")
    validator = _VALIDATORS.get(schema) if isinstance(schema, str) else None
    if validator is None:
        raise RecordError(where, f"unknown schema {schema!r}")
    validator(record, _Checker(where))
