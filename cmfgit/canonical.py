"""Canonical YAML bytes of a record, and the record id derived from them.

The canonical form is what libyaml's safe dumper writes with sorted keys, block
style and no line folding. One tweak: strings holding control characters or
YAML line breaks (NEL, U+2028, U+2029) are written double-quoted, because
libyaml's folded single-quoted form does not round-trip all of them.

The data model is JSON's: None, bool, int, float, str, list, and dict with str
keys. Anything else is refused before it can be written.

``id = blake3(canonical bytes)``. Loading canonical bytes and dumping them
again gives the same bytes; ``fsck`` checks exactly that.
"""

from __future__ import annotations

import math
import re
from typing import Any

import yaml
from blake3 import blake3

from cmfgit.errors import RecordError

# libyaml is ~6x faster than pure Python and is what DESIGN §10 measured; the
# pure-Python classes produce the same bytes and are only a fallback.
_BaseDumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

ID_HEX_LEN = 64
_NEEDS_DOUBLE_QUOTES = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]")
_SURROGATE = re.compile("[\ud800-\udfff]")


class _Dumper(_BaseDumper):  # type: ignore[misc]
    pass


def _represent_str(dumper: Any, data: str) -> Any:
    style = '"' if _NEEDS_DOUBLE_QUOTES.search(data) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _represent_str)

_DUMP_OPTIONS: dict[str, Any] = {
    "Dumper": _Dumper,
    "sort_keys": True,
    "default_flow_style": False,
    "allow_unicode": True,
    "width": 2**31 - 1,  # never fold long lines: one value, one line
    "encoding": "utf-8",
}


def check_data(value: Any, where: str = "record") -> None:
    """Raise RecordError unless ``value`` is inside the JSON-like data model."""
    stack: list[tuple[Any, str]] = [(value, where)]
    while stack:
        item, path = stack.pop()
        if item is None or isinstance(item, (bool, int)):
            continue
        if isinstance(item, float):
            continue  # nan and inf are allowed: a diverged loss is a real metric
        if isinstance(item, str):
            if _SURROGATE.search(item):
                raise RecordError(path, "string is not valid unicode (lone surrogate)")
            continue
        if isinstance(item, (list, tuple)):
            stack.extend((v, f"{path}[{i}]") for i, v in enumerate(item))
            continue
        if isinstance(item, dict):
            for k, v in item.items():
                if not isinstance(k, str):
                    raise RecordError(path, f"key {k!r} is not a string")
                if _SURROGATE.search(k):
                    raise RecordError(path, "key is not valid unicode (lone surrogate)")
                stack.append((v, f"{path}.{k}"))
            continue
        raise RecordError(path, f"unsupported value of type {type(item).__name__}")


def _plain(value: Any) -> Any:
    """Tuples become lists so the dumper never writes a python-specific tag."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def dump(value: Any) -> bytes:
    """Canonical bytes of ``value``; validates the data model first."""
    check_data(value)
    data: bytes = yaml.dump(_plain(value), **_DUMP_OPTIONS)
    return data


def load(data: bytes, where: str = "record") -> Any:
    """Parse YAML with the safe (C) loader. Never executes anything."""
    try:
        return yaml.load(data, Loader=_BaseLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise RecordError(where, f"not valid YAML{at}: {problem}") from None
    except UnicodeDecodeError:
        raise RecordError(where, "not valid UTF-8") from None


def digest(data: bytes) -> str:
    """The id of canonical bytes: blake3, 64 hex digits."""
    return blake3(data).hexdigest()


def encode(value: Any) -> tuple[bytes, str]:
    """Canonical bytes and id of ``value``."""
    data = dump(value)
    return data, digest(data)


def decode(data: bytes, where: str = "record", expected_id: str | None = None) -> Any:
    """Load ``data``, checking that it is canonical and, if given, its id.

    This is the strict path used by fsck and the merge driver.
    """
    if expected_id is not None and digest(data) != expected_id:
        raise RecordError(where, "content does not match its id (edited or corrupted)")
    value = load(data, where)
    check_data(value, where)
    if dump(value) != data:
        raise RecordError(where, "not in canonical form")
    return value


def is_finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
