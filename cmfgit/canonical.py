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

from blake3 import blake3

from cmfgit import fastyaml
from cmfgit.errors import RecordError

TYPE_CHECKING = False  # typing's constant without importing typing (~4 ms of log-run start-up)
if TYPE_CHECKING:
    from typing import Any

ID_HEX_LEN = 64
# Written double-quoted (see the module doc). Compiled on first use: a regex
# over non-ASCII ranges costs milliseconds to compile, at every start-up.
_NEEDS_DOUBLE_QUOTES = "[\x00-\x1f\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]"


def _has_surrogate(text: str) -> bool:
    """True if ``text`` holds a lone surrogate (it cannot be UTF-8)."""
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


# PyYAML is imported only when the fast path (fastyaml.py) is unsure: it costs
# ~30 ms of start-up, a third of log-run's budget (DESIGN §10).
_libyaml: dict[str, Any] = {}


def _yaml() -> dict[str, Any]:
    """PyYAML's module, loader and dump options, set up on first use.

    libyaml is ~6x faster than pure Python and is what DESIGN §10 measured;
    the pure-Python classes produce the same bytes and are only a fallback.
    """
    if not _libyaml:
        import yaml

        base_dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

        class _Dumper(base_dumper):  # type: ignore[misc,valid-type]
            pass

        def _represent_str(dumper: Any, data: str) -> Any:
            style = '"' if needs_double_quotes.search(data) else None
            return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)

        _Dumper.add_representer(str, _represent_str)
        needs_double_quotes = re.compile(_NEEDS_DOUBLE_QUOTES)
        _libyaml["yaml"] = yaml
        _libyaml["loader"] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        _libyaml["dump_options"] = {
            "Dumper": _Dumper,
            "sort_keys": True,
            "default_flow_style": False,
            "allow_unicode": True,
            "width": 2**31 - 1,  # never fold long lines: one value, one line
            "encoding": "utf-8",
        }
    return _libyaml


# Bounds on what users hand in: params and metrics files, and API values
# (docs/format.md, section 3.5). A YAML alias can make a value contain itself
# (``a: &x [*x]``) or expand a small file into billions of values.
MAX_INPUT_DEPTH = 100  # levels of nesting
MAX_INPUT_VALUES = 1_000_000  # values of a params or metrics file, aliases expanded
MAX_INPUT_BYTES = 16 * 1024 * 1024  # size of a params or metrics file
_RECORD_MAX_DEPTH = 200  # a record: its own few levels above values of at most MAX_INPUT_DEPTH


def too_deep(levels: int = MAX_INPUT_DEPTH) -> str:
    """The one wording of the nesting bound, for every reader of input."""
    return f"nested more than {levels} levels deep (or contains itself)"


def check_data(
    value: Any, where: str = "record", max_depth: int = _RECORD_MAX_DEPTH, max_values: int | None = None
) -> None:
    """Raise RecordError unless ``value`` is inside the JSON-like data model, at most
    ``max_depth`` levels deep (so a value that contains itself is refused) and, if
    given, with at most ``max_values`` values in all (shared values counted each time)."""
    stack: list[tuple[Any, str, int]] = [(value, where, 1)]
    count = 0
    while stack:
        item, path, depth = stack.pop()
        if item is None or isinstance(item, (bool, int)):
            continue
        if isinstance(item, float):
            continue  # nan and inf are allowed: a diverged loss is a real metric
        if isinstance(item, str):
            if _has_surrogate(item):
                raise RecordError(path, "string is not valid unicode (lone surrogate)")
            continue
        if isinstance(item, (list, tuple, dict)):
            if depth > max_depth:
                raise RecordError(where, too_deep(max_depth))
            count += len(item)
            if max_values is not None and count > max_values:
                raise RecordError(where, f"holds more than {max_values:,} values (YAML aliases expanded)")
        if isinstance(item, (list, tuple)):
            stack.extend((v, f"{path}[{i}]", depth + 1) for i, v in enumerate(item))
            continue
        if isinstance(item, dict):
            for k, v in item.items():
                if not isinstance(k, str):
                    raise RecordError(path, f"key {k!r} is not a string")
                if _has_surrogate(k):
                    raise RecordError(path, "key is not valid unicode (lone surrogate)")
                stack.append((v, f"{path}.{k}", depth + 1))
            continue
        raise RecordError(path, f"unsupported value of type {type(item).__name__}")


def check_input(value: Any, where: str) -> None:
    """:func:`check_data` with the bounds of user input (a params or metrics file)."""
    check_data(value, where, MAX_INPUT_DEPTH, MAX_INPUT_VALUES)


def _plain(value: Any) -> Any:
    """Exact built-in types, so the dumper never writes a python-specific tag:
    tuples become lists, and subclasses of int, float and str (an IntEnum,
    numpy's float64) become the plain value."""
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    kind = type(value)
    if kind is str or kind is int or kind is float or kind is bool or value is None:
        return value
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):  # bool cannot be subclassed
        return int(value)
    if isinstance(value, float):
        return float(value)
    return value


def dump(value: Any) -> bytes:
    """Canonical bytes of ``value``; validates the data model first."""
    fast = fastyaml.dump(value)  # exact types only: anything it accepts is valid data
    if fast is not None:
        return fast
    return dump_libyaml(value)


def dump_libyaml(value: Any) -> bytes:
    """Canonical bytes through libyaml: the reference the fast path matches."""
    check_data(value)
    lib = _yaml()
    data: bytes = lib["yaml"].dump(_plain(value), **lib["dump_options"])
    return data


def load(data: bytes, where: str = "record") -> Any:
    """Parse YAML safely. Never executes anything.

    Canonical bytes take the fast path (:func:`load_fast`); anything else is
    read by libyaml's safe loader, with the same result either way.
    """
    value = fastyaml.load(data)
    if value is not fastyaml.FAIL:
        return value
    return load_libyaml(data, where)


def load_fast(data: bytes, where: str = "record") -> Any:
    """The same as :func:`load`; named for readers that load many records
    (the query index): canonical records parse without libyaml, ~3x faster."""
    return load(data, where)


def load_libyaml(data: bytes, where: str = "record") -> Any:
    """Parse YAML with libyaml's safe (C) loader."""
    yaml = _yaml()["yaml"]
    try:
        return yaml.load(data, Loader=_libyaml["loader"])
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise RecordError(where, f"not valid YAML{at}: {problem}") from None
    except UnicodeDecodeError:
        raise RecordError(where, "not valid UTF-8") from None
    except RecursionError:  # libyaml refuses past 1000 levels; its Python constructor may stop first
        raise RecordError(where, too_deep()) from None
    except ValueError as exc:  # an integer of more than 4300 digits (sys.get_int_max_str_digits)
        raise RecordError(where, f"not valid YAML: {str(exc).split(':')[0]}") from None


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
    value = fastyaml.load(data)
    if value is not fastyaml.FAIL:
        return value  # the fast loader accepts only bytes it re-emits exactly: canonical
    value = load_libyaml(data, where)
    check_data(value, where)
    if dump(value) != data:
        raise RecordError(where, "not in canonical form")
    return value


def is_finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
