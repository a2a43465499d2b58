"""The vocabulary shared by CMF import, export and ``cmfgit.compat``.

HPE's Common Metadata Framework (cmflib) keeps metadata in MLMD: contexts
(a ``Parent_Context`` per pipeline, a ``Pipeline_Stage`` per stage),
executions, artifacts and events. ``cmf metadata export`` writes it as
``{"Pipeline": [pipeline, ...]}`` where a pipeline holds ``stages``, a stage
``executions`` and an execution ``events``, each event embedding its artifact.
This module names those pieces and converts values between CMF and cmfgit;
``docs/coming-from-cmf.md`` is its prose version.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any, NoReturn

from blake3 import blake3

from cmfgit import schema
from cmfgit.errors import ForeignFormatError

# CMF artifact type names <-> cmfgit artifact types.
CMF_TO_TYPE = {
    "Dataset": "dataset",
    "Model": "model",
    "Metrics": "metrics",
    "Step_Metrics": "step_metrics",
    "Dataslice": "dataslice",
    "Label": "label",
    "Environment": "environment",
}
TYPE_TO_CMF = {v: k for k, v in CMF_TO_TYPE.items()}
DEFAULT_CMF_TYPE = "Dataset"  # cmfgit types CMF does not know (code, other, ...) export as datasets

PIPELINE_TYPE = "Parent_Context"
STAGE_TYPE = "Pipeline_Stage"

# MLMD event types (ml_metadata Event.Type).
INPUT, OUTPUT = 3, 4
INPUT_EVENTS = frozenset({0, 2, 3, 5})  # UNKNOWN, DECLARED_INPUT, INPUT, INTERNAL_INPUT
OUTPUT_EVENTS = frozenset({1, 4, 6, 7})  # DECLARED_OUTPUT, OUTPUT, INTERNAL_OUTPUT, PENDING_OUTPUT

# Execution custom properties that cmflib adds itself: not user params.
# A failed run, in the execution's custom properties (CMF's export has no outcome field, and
# cmflib's pull keeps custom properties): ``Execution_state: FAILED`` (MLMD's state name),
# ``Exit_Code``, and ``Execution_error`` when the record holds an error.
STATE_KEY, EXIT_CODE_KEY, ERROR_KEY = "Execution_state", "Exit_Code", "Execution_error"
FAILED = "FAILED"
NOT_PARAMS = frozenset({"Python_Env", "original_create_time_since_epoch", STATE_KEY, EXIT_CODE_KEY, ERROR_KEY})

SITE = "cmf"  # the site of imported executions: CMF records none, and ids must not depend on who imports

_MD5 = re.compile(r"^[0-9a-f]{32}$")
_MD5_DIR = re.compile(r"^([0-9a-f]{32})\.dir$")  # DVC's md5 of a directory listing
_BLAKE3 = re.compile(r"^[0-9a-f]{64}$")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def cmfgit_type(cmf_type: str) -> str:
    """The cmfgit artifact type of a CMF artifact type name."""
    known = CMF_TO_TYPE.get(cmf_type)
    if known:
        return known
    name = re.sub(r"[^a-z0-9_]+", "_", cmf_type.lower()).strip("_")
    return name if schema.valid_type_name(name) else "other"


def cmf_type(record_type: str) -> str:
    return TYPE_TO_CMF.get(record_type, DEFAULT_CMF_TYPE)


def is_input(event_type: Any) -> bool:
    return event_type in INPUT_EVENTS or event_type not in OUTPUT_EVENTS


# -- identities -------------------------------------------------------------


def hash_of_uri(uri: str, name: str) -> str:
    """The cmfgit hash of a CMF artifact without local bytes.

    A DVC md5 (file, or ``<md5>.dir`` for a directory) becomes ``md5:<hex>``;
    a 64-hex uri is a blake3 that cmfgit exported; anything else (the uuid1
    uri of a Metrics artifact) is named by the blake3 of ``cmf-uri:<uri>``.
    """
    uri = uri.strip()
    if _MD5.match(uri):
        return f"md5:{uri}"
    found = _MD5_DIR.match(uri)
    if found:
        return f"md5:{found.group(1)}"
    if _BLAKE3.match(uri):
        return f"blake3:{uri}"
    text = f"cmf-uri:{uri}" if uri else f"cmf-name:{name}"
    return "blake3:" + blake3(text.encode("utf-8")).hexdigest()


def md5_of_uri(uri: str) -> str | None:
    """The md5 hex of a file uri (not of a DVC directory listing), else None."""
    return uri if _MD5.match(uri) else None


def md5_of_dir_uri(uri: str) -> str | None:
    """The md5 of DVC's listing in a directory uri ``<md5>.dir``, else None."""
    return uri[: -len(".dir")] if uri.endswith(".dir") and _MD5.match(uri[: -len(".dir")]) else None


def blake3_of_uri(uri: str) -> str | None:
    return uri if _BLAKE3.match(uri) else None


def uri_of_hash(value: str) -> str:
    """The CMF uri of a cmfgit hash: its hex digits."""
    return value.split(":", 1)[1] if ":" in value else value


def path_of_name(name: str) -> str:
    """The path in a CMF artifact name ``path:uri[:execution id[:uuid]]`` (cmflib splits on ':')."""
    return name.split(":", 1)[0]


# -- values -----------------------------------------------------------------


def time_of_ms(ms: Any) -> str:
    """A canonical UTC timestamp from milliseconds since the epoch (MLMD's clock)."""
    value = ms if isinstance(ms, int) and not isinstance(ms, bool) else 0
    return schema.format_time(_EPOCH + timedelta(milliseconds=value))


def ms_of_time(text: str | None) -> int:
    if not text:
        return 0
    moment = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def restore_float(value: Any) -> Any:
    """Undo cmflib's ``update_execution`` stringification of floats.

    cmflib stores every non-int custom property of an execution with
    ``str(value)``, so ``0.25`` comes back as ``"0.25"``. A string that is
    exactly ``str()`` of a float is taken to be that float; any other string
    (``"007"``, ``"1.50"``, ``"abc"``) stays a string.
    """
    if not isinstance(value, str):
        return value
    try:
        number = float(value)
    except ValueError:
        return value
    return number if repr(number) == value else value


def cmf_value(value: Any) -> int | float | str:
    """A value CMF can store (int, double or string) for a cmfgit value.

    Floats stay floats (cmflib would have stringified them); booleans become
    0/1 as cmflib stores them; lists, mappings and null become JSON text.
    """
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float, str)):
        return value
    import json

    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def cmf_values(values: dict[str, Any]) -> dict[str, int | float | str]:
    return {k: cmf_value(v) for k, v in values.items()}


# -- the export structure ------------------------------------------------------

_SCALAR = (str, int, float, bool, type(None))


class _Shape:
    """Checks that a parsed JSON document is a CMF export, naming the first problem."""

    def __init__(self, path: str) -> None:
        self.path = path

    def fail(self, where: str, reason: str) -> NoReturn:
        raise ForeignFormatError(self.path, f"not a CMF export: {where}: {reason}")

    def mapping(self, value: Any, where: str, required: dict[str, tuple[type, ...]]) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(where, "must be an object")
        for key, kinds in required.items():
            if key not in value:
                self.fail(where, f"missing '{key}'")
            if not isinstance(value[key], kinds) or (isinstance(value[key], bool) and bool not in kinds):
                self.fail(f"{where}.{key}", f"must be {' or '.join(k.__name__ for k in kinds)}")
        for key in ("properties", "custom_properties"):
            props = value.get(key, {})
            if not isinstance(props, dict):
                self.fail(f"{where}.{key}", "must be an object")
            for name, item in props.items():
                if not isinstance(item, _SCALAR):
                    self.fail(f"{where}.{key}.{name}", "must be a string or a number")
        for key in ("id", "type_id", "create_time_since_epoch", "last_update_time_since_epoch"):
            item = value.get(key, 0)
            if not isinstance(item, int) or isinstance(item, bool):
                self.fail(f"{where}.{key}", "must be an integer")
        checked: dict[str, Any] = value
        return checked


def check_export(document: Any, path: str) -> list[dict[str, Any]]:
    """The pipelines of a CMF export document, or ForeignFormatError naming what is wrong."""
    shape = _Shape(path)
    if not isinstance(document, dict) or "Pipeline" not in document:
        raise ForeignFormatError(path, 'not a CMF export: expected a JSON object {"Pipeline": [...]}')
    pipelines: list[dict[str, Any]] = document["Pipeline"]
    if not isinstance(pipelines, list):
        shape.fail("Pipeline", "must be a list")
    for p, pipeline in enumerate(pipelines):
        where = f"Pipeline[{p}]"
        shape.mapping(pipeline, where, {"name": (str,), "stages": (list,)})
        for s, stage in enumerate(pipeline["stages"]):
            swhere = f"{where}.stages[{s}]"
            shape.mapping(stage, swhere, {"name": (str,), "executions": (list,)})
            for e, execution in enumerate(stage["executions"]):
                ewhere = f"{swhere}.executions[{e}]"
                shape.mapping(
                    execution,
                    ewhere,
                    {"type": (str,), "events": (list,), "properties": (dict,), "custom_properties": (dict,)},
                )
                for v, event in enumerate(execution["events"]):
                    vwhere = f"{ewhere}.events[{v}]"
                    shape.mapping(event, vwhere, {"type": (int,), "artifact": (dict,)})
                    shape.mapping(event["artifact"], f"{vwhere}.artifact", {"type": (str,)})
                    for key in ("name", "uri"):
                        if not isinstance(event["artifact"].get(key, ""), str):
                            shape.fail(f"{vwhere}.artifact.{key}", "must be a string")
    return pipelines
