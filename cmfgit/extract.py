"""Reading canonical records fast, for the query index.

A full index build parses every record. :func:`load` reads canonical bytes
as ``fastyaml.load`` does: it accepts only text that is byte for byte the
canonical dump of the value it returns (so libyaml reads the same value),
and at least every text ``fastyaml.load`` accepts. ``tests/test_extract.py``
checks all of that with hypothesis, on canonical and on edited bytes.

It is several times faster on records because most of their lines are the
same from record to record (``  kind: file``, ``stage: train``,
``  lr: 0.001``): each line is classified once (indent, whether it is a
sequence item, key, value, all checked exactly as ``fastyaml`` checks them)
and the classification is kept in a bounded cache, so reading a record is
mostly one dictionary lookup per line plus the layout checks (indentation,
sorted keys) that tie the lines together. The values that are new in each
record (hashes, ids, timestamps, numbers) are decided by a few C-level string
tests instead of the emitter's full quoting analysis.

Anything unusual (a nested inline sequence, a string libyaml would
double-quote) goes to ``fastyaml.load``, and :data:`FAIL` means "not
canonical, or not sure": the caller uses libyaml.
"""

from __future__ import annotations

from typing import Any

from cmfgit import fastyaml
from cmfgit.fastyaml import (
    _IMPLICIT_WORDS,
    _MAX_SIMPLE_KEY,
    _check_text,
    _quoted,
    _Reject,
    _str_cache,
    _token,
    _Unsure,
)

FAIL: Any = fastyaml.FAIL

_DIGITS = frozenset("0123456789")
_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_/")
# Digits to '0', so that one comparison checks the shape of a timestamp.
_ZEROS = str.maketrans("123456789", "000000000")
_TIME_SHAPE = "'0000-00-00T00:00:00.000000Z'"  # quoted, as the emitter writes schema.utc_now's times


def _scalar(tok: str) -> Any:
    """The value of scalar token ``tok``, which must be written canonically.

    The shortcuts decide the common tokens with a few C-level string tests;
    each is a case where ``fastyaml._token`` returns the same value (the
    tests check them against it). Everything else goes to ``_token``.
    """
    if _str_cache.get(tok) == tok:
        return tok  # a string fastyaml has seen written as itself (as its own mapping loop checks)
    c = tok[0]
    if c in _LETTERS:
        # Plain as itself: printable ASCII without a space (so no ': ', ' #'
        # or edge space), not ending in ':', starting with a letter, '_' or
        # '/' (no indicator, no number); of such strings only the boolean and
        # null words would not read back as strings.
        if tok.isascii() and tok.isprintable() and " " not in tok and tok[-1] != ":" and tok not in _IMPLICIT_WORDS:
            return tok
    elif c == "'":
        if len(tok) == 29 and tok.translate(_ZEROS) == _TIME_SHAPE:
            return tok[1:28]
    elif c in _DIGITS:
        if tok.isdigit() and tok.isascii() and (c != "0" or len(tok) == 1):
            return int(tok)
        if "." in tok:
            try:
                x = float(tok)
            except ValueError:
                pass
            else:
                if repr(x) == tok:
                    return x  # how the emitter writes a float that has a '.' (fastyaml._float)
    return _token(tok)


# -- lines --------------------------------------------------------------------------
#
# A line of canonical YAML is its indent and one of:
#   an entry   'key: value', 'key: {}', 'key: []' or 'key:' (a collection follows)
#   an item    '- value', '- {}' or '- []': an item of a sequence
#   a first    '- key: ...': an item that is a mapping, and that mapping's first entry
# A line's class is (indent, kind, key, value). Its value is a scalar, or (for
# the kinds ending in _MORE) one of the markers below: the empty collections
# (the cache must never hand out a mutable object), or 'a collection follows'.
# The meaning of a line never depends on the lines around it; how lines fit
# together (indentation, sorted keys) is checked by the walk (_entries, _items).

ENTRY, ENTRY_MORE, ITEM, ITEM_MORE, FIRST, FIRST_MORE = range(6)
_BLOCK: Any = object()
_EMPTY_MAP: Any = object()
_EMPTY_LIST: Any = object()
_CACHE_MAX = 200_000
_classes: dict[str, tuple[int, int, Any, Any]] = {}


class _Nested(Exception):
    """A sequence directly inside a sequence item ('- - x'): left to fastyaml."""


def _entry(content: str) -> tuple[str, Any]:
    """Key and value of ``key: ...`` (as fastyaml's mapping loop reads them)."""
    rest: str | None
    if content[0] != "'":
        key, sep, rest = content.partition(": ")
        if sep:
            if not rest:
                raise _Reject
        elif content[-1] == ":":
            key, rest = content[:-1], None
        else:
            raise _Reject
        if _str_cache.get(key) != key:
            _check_text(key, key)
    else:
        key, end = _quoted(content)
        _check_text(key, content[:end])
        if end + 1 == len(content) and content[end] == ":":
            rest = None
        elif content.startswith(": ", end) and end + 2 < len(content):
            rest = content[end + 2 :]
        else:
            raise _Reject
    if len(key) > 42 and len(key.encode("utf-8")) > _MAX_SIMPLE_KEY:
        raise _Reject
    if rest is None:
        return key, _BLOCK
    if rest == "{}":
        return key, _EMPTY_MAP
    if rest == "[]":
        return key, _EMPTY_LIST
    return key, _scalar(rest)


def _classify(line: str) -> tuple[int, int, Any, Any]:
    body = line.lstrip(" ")
    indent = len(line) - len(body)
    key: Any = None
    if not body.startswith("- "):
        key, value = _entry(body)
        kind = ENTRY
    else:
        content = body[2:]
        if content.startswith("- "):
            raise _Nested
        kind = ITEM
        if content == "{}":
            value = _EMPTY_MAP
        elif content == "[]":
            value = _EMPTY_LIST
        elif content[0] == "'" and _quoted(content)[1] == len(content):
            value = _scalar(content)
        elif content[0] == "'" or ": " in content or content[-1] == ":":
            key, value = _entry(content)
            kind = FIRST
        else:
            value = _scalar(content)
    if value is _BLOCK or value is _EMPTY_MAP or value is _EMPTY_LIST:
        kind += 1  # the _MORE kind
    if len(_classes) >= _CACHE_MAX:
        _classes.clear()
    cls = _classes[line] = (indent, kind, key, value)
    return cls


# -- the walk -------------------------------------------------------------------------


def _value(lines: list[str], i: int, indent: int, value: Any) -> tuple[Any, int]:
    """The value of an entry at ``indent`` whose line was ``lines[i - 1]`` and
    whose class value was a marker."""
    if value is _BLOCK:  # a non-empty collection follows on the next lines
        if i >= len(lines):
            raise _Reject
        line = lines[i]
        nxt = _classes.get(line) or _classify(line)
        if nxt[0] == indent and nxt[1] >= ITEM:
            return _items(lines, i, indent)  # an indentless sequence, as libyaml writes it
        if nxt[0] == indent + 2 and nxt[1] <= ENTRY_MORE:
            return _entries(lines, i, indent + 2, {}, None)
        raise _Reject
    return ({} if value is _EMPTY_MAP else []), i


def _entries(lines: list[str], i: int, indent: int, d: dict[str, Any], last: str | None) -> tuple[Any, int]:
    """Entries of the mapping ``d`` at ``indent``, from line ``i`` on."""
    n = len(lines)
    get = _classes.get
    while i < n:
        line = lines[i]
        ind, kind, key, value = get(line) or _classify(line)
        if ind != indent or kind > ENTRY_MORE:
            if ind > indent:
                raise _Reject  # more indented than any key can be
            break  # the mapping ends
        if last is not None and key <= last:
            raise _Reject  # keys are sorted and unique
        last = key
        i += 1
        if kind:
            value, i = _value(lines, i, indent, value)
        d[key] = value
    return d, i


def _items(lines: list[str], i: int, indent: int) -> tuple[list[Any], int]:
    """Items of the sequence at ``indent``, from line ``i`` on."""
    items: list[Any] = []
    n = len(lines)
    get = _classes.get
    while i < n:
        line = lines[i]
        ind, kind, key, value = get(line) or _classify(line)
        if ind != indent or kind <= ENTRY_MORE:
            break
        i += 1
        if kind == ITEM:
            items.append(value)
            continue
        if kind == ITEM_MORE:
            items.append({} if value is _EMPTY_MAP else [])
            continue
        if kind == FIRST_MORE:  # a mapping: this entry, then the others at indent + 2
            value, i = _value(lines, i, indent + 2, value)
        value, i = _entries(lines, i, indent + 2, {key: value}, key)
        items.append(value)
    return items, i


def load(data: bytes) -> Any:
    """What ``fastyaml.load(data)`` returns (the value, or :data:`FAIL`), faster."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return FAIL
    if text == "{}\n":
        return {}
    if text == "[]\n":
        return []
    lines = text.split("\n")
    if lines.pop() != "" or not lines:
        return FAIL
    value: Any
    try:
        first = _classes.get(lines[0]) or _classify(lines[0])
        if first[0] != 0:
            return FAIL
        if first[1] <= ENTRY_MORE:
            value, i = _entries(lines, 0, 0, {}, None)
        else:
            value, i = _items(lines, 0, 0)
    except _Nested:
        return fastyaml.load(data)
    except (_Reject, _Unsure, ValueError, IndexError, RecursionError):
        return FAIL
    if i != len(lines):
        return FAIL
    return value
