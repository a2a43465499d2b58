"""Reading canonical records fast, for the query index.

A full index build parses every record. :func:`load` reads canonical bytes
as ``fastyaml.load`` does: it accepts only text that is byte for byte the
canonical dump of the value it returns (so libyaml reads the same value),
and at least every text ``fastyaml.load`` accepts. ``tests/test_extract.py``
checks all of that with hypothesis, on canonical and on edited bytes. It is
faster on records because

- the values that are unique per record (hashes, ids, timestamps, numbers,
  paths) are decided by a few C-level string tests instead of the emitter's
  full quoting analysis, and without filling ``fastyaml``'s string cache
  (which they would otherwise flush every few thousand records);
- lines are scanned where they are, without a list of (indent, text) rows.

Anything else (a quoted key, a string with a space or outside ASCII) goes
through ``fastyaml``'s own checks. :data:`FAIL` means "not canonical, or not
sure": the caller uses libyaml.
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


def _mapping(lines: list[str], i: int, indent: int, content: str | None) -> tuple[dict[str, Any], int]:
    """The mapping at ``indent`` starting at line ``i`` (or at ``content``, its first
    line after a sequence's ``- ``); returns it and the next line's index."""
    d: dict[str, Any] = {}
    n = len(lines)
    pad = " " * indent
    last: str | None = None
    rest: str | None
    while True:
        if content is None:
            if i >= n:
                break
            line = lines[i]
            if indent:
                if not line.startswith(pad):
                    break  # less indented: the mapping ends
                content = line[indent:]
            else:
                content = line
            c = content[:1]
            if c == " ":
                raise _Reject  # more indented than any key can be
            if c == "-" and content.startswith("- "):
                break
            i += 1
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
        if last is not None and key <= last:
            raise _Reject  # keys are sorted and unique
        last = key
        content = None
        if rest is None:  # a non-empty collection follows on the next lines
            if i >= n:
                raise _Reject
            nxt = lines[i]
            inner = indent + 2
            if nxt.startswith(pad + "- "):
                d[key], i = _sequence(lines, i, indent, None)  # indentless, as libyaml writes it
            elif (
                nxt.startswith(pad + "  ")
                and nxt[inner : inner + 1] not in (" ", "")
                and not nxt.startswith("- ", inner)
            ):
                d[key], i = _mapping(lines, i, inner, None)
            else:
                raise _Reject
        elif rest == "{}":
            d[key] = {}
        elif rest == "[]":
            d[key] = []
        else:
            d[key] = _scalar(rest)
    return d, i


def _sequence(lines: list[str], i: int, indent: int, content: str | None) -> tuple[list[Any], int]:
    items: list[Any] = []
    value: Any
    n = len(lines)
    dash = " " * indent + "- "
    while True:
        if content is None:
            if i >= n:
                break
            line = lines[i]
            if not line.startswith(dash):
                break
            content = line[indent + 2 :]
            i += 1
        if content.startswith("- "):
            value, i = _sequence(lines, i, indent + 2, content[2:])
            items.append(value)
        elif content == "{}":
            items.append({})
        elif content == "[]":
            items.append([])
        elif content[0] == "'":
            if _quoted(content)[1] == len(content):
                items.append(_scalar(content))
            else:
                value, i = _mapping(lines, i, indent + 2, content)
                items.append(value)
        elif ": " in content or content[-1] == ":":
            value, i = _mapping(lines, i, indent + 2, content)
            items.append(value)
        else:
            items.append(_scalar(content))
        content = None
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
        first = lines[0]
        if first[:1] == " ":
            return FAIL
        if first.startswith("- "):
            value, i = _sequence(lines, 0, 0, None)
        else:
            value, i = _mapping(lines, 0, 0, None)
    except (_Reject, _Unsure, ValueError, IndexError, RecursionError):
        return FAIL
    if i != len(lines):
        return FAIL
    return value
