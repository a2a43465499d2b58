"""A pure-Python fast path for canonical YAML, byte-identical to libyaml.

``canonical.dump`` must give exactly the bytes of libyaml's safe dumper (sorted
keys, block style, no folding, our double-quoting rule). Importing PyYAML costs
about 30 ms and walking its representer about 2 ms per record, so the common
case is written here directly:

- :func:`dump` emits the value's YAML text, or returns ``None`` when the value
  holds anything it is not certain about (a string that libyaml would
  double-quote, a key longer than 128 bytes, a top-level scalar, a type outside
  the data model). The caller then falls back to libyaml.
- :func:`load` parses text in exactly that layout, checking every token and
  indent against what :func:`dump` would write: it returns a value only for
  text that is byte for byte ``dump(value)``, so anything it accepts is
  canonical and libyaml reads the same value. Everything else is
  :data:`FAIL`, and the caller uses libyaml.

The rules mirror libyaml's ``yaml_emitter_analyze_scalar`` and
``yaml_emitter_select_scalar_style`` for printable text, and PyYAML's implicit
resolvers (YAML 1.1: ``no``, ``on``, ``0777``, ``2026-01-01``, ``~``...) for
deciding when a string must be quoted. ``tests/test_canonical_fast.py`` checks
both directions against libyaml with hypothesis.
"""

from __future__ import annotations

import re

TYPE_CHECKING = False  # typing's constant without importing typing (~4 ms of log-run start-up)
if TYPE_CHECKING:
    from typing import Any

FAIL: Any = object()  # load() could not be sure; use libyaml

# Characters libyaml writes as they are in a plain or single-quoted scalar
# (printable, not a line break, not a BOM). Anything else is double-quoted by
# libyaml or by our representer, and left to libyaml. The regexes are compiled
# on first use: compiling one over non-ASCII ranges costs milliseconds, and
# start-up time is log-run's budget (DESIGN §10).
_SIMPLE_TEXT = "[\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd]*"
# Indicators that forbid a plain scalar when they come first.
_FIRST_INDICATORS = frozenset("#,[]{}&*!|>'\"%@`")
# PyYAML's implicit resolvers (yaml/resolver.py), as one verbose pattern
# (spaces outside [...] are ignored, exactly as in PyYAML's): a plain
# scalar matching it would not read back as a string, so it is quoted. Each
# resolver's regex only matches strings starting with one of the characters
# it is registered for, so one combined pattern decides the same as
# PyYAML's first-character dispatch.
_IMPLICIT = r"""^(?:
      (?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)
    | (?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?
        |\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?
        |[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))
    | (?:[-+]?0b[0-1_]+
        |[-+]?0[0-7_]+
        |[-+]?(?:0|[1-9][0-9_]*)
        |[-+]?0x[0-9a-fA-F_]+
        |[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)
    | (?:<<)
    | (?:~|null|Null|NULL)
    | (?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]
        |[0-9][0-9][0-9][0-9] -[0-9][0-9]? -[0-9][0-9]?
         (?:[Tt]|[ \t]+)[0-9][0-9]?
         :[0-9][0-9] :[0-9][0-9] (?:\.[0-9]*)?
         (?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)
    | (?:=)
    | (?:!|&|\*)
    )$"""
_IMPLICIT_FIRST = frozenset("yYnNtTfFoO-+0123456789.<~=!&*")
_compiled: dict[str, re.Pattern[str]] = {}


def _simple(s: str) -> bool:
    if s.isascii():
        return s.isprintable()
    pattern = _compiled.get("text")
    if pattern is None:
        pattern = _compiled["text"] = re.compile(_SIMPLE_TEXT)
    return pattern.fullmatch(s) is not None


# The resolvers' matches that are words rather than numbers or dates
# (including every spelling of infinity and not-a-number).
_IMPLICIT_WORDS = frozenset(
    "yes Yes YES no No NO true True TRUE false False FALSE on On ON off Off OFF ~ null Null NULL << = ! & *"
    " .inf .Inf .INF +.inf +.Inf +.INF -.inf -.Inf -.INF .nan .NaN .NAN".split()
)
_NUMERIC_FIRST = frozenset("-+0123456789.")
# Every character the remaining float, int and timestamp forms can match: the
# hexadecimal int (0x...) is the only one with an 'x', and the only one with
# the letters a, c, d, f (so a git object id is decided without the pattern).
_NUMERIC_CHARS = frozenset("0123456789_-+.: \tbeETtZ")
_HEX_INT_CHARS = frozenset("0123456789_-+xabcdefABCDEF")


def _canonical_time(s: str) -> bool:
    """2026-01-01T00:00:00.000000Z, as schema.utc_now writes it (a timestamp)."""
    return (
        len(s) == 27
        and s[4] == s[7] == "-"
        and s[10] == "T"
        and s[13] == s[16] == ":"
        and s[19] == "."
        and s[26] == "Z"
        and s.isascii()
        and (s[:4] + s[5:7] + s[8:10] + s[11:13] + s[14:16] + s[17:19] + s[20:26]).isdigit()
    )


def _implicit(s: str) -> bool:
    """True if plain ``s`` would not read back as a string.

    The shortcuts answer the common cases without compiling the pattern
    (~2 ms): only numbers and dates need it, and none has two dots.
    """
    if not s:
        return True  # the empty plain scalar is null
    c = s[0]
    if c not in _IMPLICIT_FIRST:
        return False
    if s in _IMPLICIT_WORDS:
        return True
    if c not in _NUMERIC_FIRST:
        return False
    if len(s) == 1:
        return c.isdigit()
    if s.count(".") > 1 or not (_HEX_INT_CHARS if "x" in s else _NUMERIC_CHARS).issuperset(s):
        return False
    if _canonical_time(s):
        return True
    pattern = _compiled.get("implicit")
    if pattern is None:
        pattern = _compiled["implicit"] = re.compile(_IMPLICIT, re.X)
    return pattern.match(s) is not None


_SPECIAL_FLOATS = {".nan": float("nan"), ".inf": float("inf"), "-.inf": float("-inf")}
_MAX_SIMPLE_KEY = 128  # libyaml writes longer keys in the '? key' form

_str_cache: dict[str, str] = {}
_STR_CACHE_MAX = 50_000


class _Unsure(Exception):
    """Raised inside the emitter: let libyaml write this value."""


def _text(s: str) -> str:
    """How libyaml writes string ``s`` in block context (plain or single-quoted)."""
    if not s:
        return "''"
    if len(s) == 27 and _canonical_time(s):
        return "'" + s + "'"  # a timestamp as schema.utc_now writes it (unique: not cached)
    if not _simple(s):
        raise _Unsure
    c = s[0]
    if (
        c in _FIRST_INDICATORS
        or c == " "
        or s[-1] == " "
        or s[-1] == ":"
        or (c in "?:-" and (len(s) == 1 or s[1] == " "))
        or (c in "-." and s[:3] in ("---", "..."))
        or ": " in s
        or " #" in s
        or _implicit(s)
    ):
        out = "'" + s.replace("'", "''") + "'"
    else:
        out = s
    if len(_str_cache) >= _STR_CACHE_MAX:
        _str_cache.clear()
    _str_cache[s] = out
    return out


def _float(x: float) -> str:
    """PyYAML's SafeRepresenter.represent_float."""
    if x != x:
        return ".nan"
    if x == _INF:
        return ".inf"
    if x == -_INF:
        return "-.inf"
    r = repr(x).lower()
    if "." not in r and "e" in r:
        r = r.replace("e", ".0e", 1)
    return r


_INF = float("inf")


def _scalar(v: Any) -> str:
    t = type(v)
    if t is str:
        out = _str_cache.get(v)
        return out if out is not None else _text(v)
    if t is int:
        return str(v)
    if t is float:
        return _float(v)
    if t is bool:
        return "true" if v else "false"
    if v is None:
        return "null"
    raise _Unsure


def _key(k: Any) -> str:
    if type(k) is not str:
        raise _Unsure
    out = _str_cache.get(k)
    if out is None:
        out = _text(k)
    if len(k) > 42 and len(k.encode("utf-8")) > _MAX_SIMPLE_KEY:
        raise _Unsure
    return out


# A mapping's lines in order, as (key, "<indent><rendered key>"), by indent and
# keys in insertion order: a sweep writes records of the same shape run after
# run, so each shape is sorted and rendered once. Keys in a cached shape are
# all strings (_key refuses anything else), so an equal shape has equal keys.
_plans: dict[tuple[Any, ...], list[tuple[str, str]]] = {}
_PLAN_MAX_KEYS = 64  # bigger mappings are sorted each time, not kept
_PLANS_MAX = 4096
# Floats as written. Two equal floats that are neither zero (0.0 == -0.0) nor
# NaN have the same bits, so the same text: params and metrics repeat in a sweep.
_float_cache: dict[float, str] = {}


def _plan(d: dict[str, Any], indent: int) -> list[tuple[str, str]]:
    shape = (indent, *d) if len(d) <= _PLAN_MAX_KEYS else None
    plan = _plans.get(shape) if shape is not None else None
    if plan is None:
        pad = " " * indent
        plan = [(k, pad + _key(k)) for k in sorted(d)]
        if shape is not None:
            if len(_plans) >= _PLANS_MAX:
                _plans.clear()
            _plans[shape] = plan
    return plan


def _mapping(d: dict[str, Any], indent: int, inline: bool, out: list[str]) -> None:
    append = out.append
    for k, head in _plan(d, indent):
        if inline:
            head = head[indent:]  # the first key of a sequence item follows its "- "
            inline = False
        v = d[k]
        t = type(v)
        if t is str:
            text = _str_cache.get(v)
            append(f"{head}: {_text(v) if text is None else text}\n")
        elif t is dict:
            if v:
                append(head + ":\n")
                _mapping(v, indent + 2, False, out)
            else:
                append(head + ": {}\n")
        elif t is int:
            append(f"{head}: {v}\n")
        elif t is float:
            text = _float_cache.get(v)
            if text is None:
                text = _float(v)
                if v and v == v and len(_float_cache) < _STR_CACHE_MAX:
                    _float_cache[v] = text
            append(f"{head}: {text}\n")
        elif t is list or t is tuple:
            if v:
                append(head + ":\n")
                _sequence(v, indent, False, out)  # libyaml: indentless in a mapping
            else:
                append(head + ": []\n")
        else:
            append(f"{head}: {_scalar(v)}\n")


def _sequence(items: list[Any] | tuple[Any, ...], indent: int, inline: bool, out: list[str]) -> None:
    dash = " " * indent + "- "
    for v in items:
        if inline:
            out.append("- ")
            inline = False
        else:
            out.append(dash)
        t = type(v)
        if t is dict:
            if v:
                _mapping(v, indent + 2, True, out)
            else:
                out.append("{}\n")
        elif t is list or t is tuple:
            if v:
                _sequence(v, indent + 2, True, out)
            else:
                out.append("[]\n")
        else:
            out.append(_scalar(v) + "\n")


def dump_text(value: Any) -> str | None:
    """The canonical YAML text of a mapping or list, or None if unsure."""
    t = type(value)
    out: list[str] = []
    try:
        if t is dict:
            if not value:
                return "{}\n"
            _mapping(value, 0, False, out)
        elif t is list or t is tuple:
            if not value:
                return "[]\n"
            _sequence(value, 0, False, out)
        else:
            return None  # top-level scalars end with '...'; rare, leave them to libyaml
    except (_Unsure, TypeError, ValueError, RecursionError):
        return None
    return "".join(out)


def dump(value: Any) -> bytes | None:
    """Canonical UTF-8 bytes of ``value``, or None if libyaml must decide."""
    text = dump_text(value)
    return None if text is None else text.encode("utf-8")


# -- loading ----------------------------------------------------------------
#
# The parser accepts only the exact layout the emitter above writes, and checks
# every token against the emitter as it goes: each key and scalar must be
# written exactly as _key/_scalar would write its value, keys must be strictly
# sorted, '{}'/'[]' stand for the empty collections only, and indentation must
# be the emitter's. So an accepted text is byte for byte dump_text(value), and
# libyaml reads it as ``value`` too. Anything else raises _Reject.


class _Reject(Exception):
    """Raised inside the parser: not in the exact canonical layout."""


def _quoted(tok: str) -> tuple[str, int]:
    """A single-quoted scalar at the start of ``tok``: (value, end index)."""
    j = 1
    while True:
        j = tok.find("'", j)
        if j < 0:
            raise _Reject
        if tok.startswith("'", j + 1):
            j += 2
            continue
        return tok[1:j].replace("''", "'"), j + 1


def _check_text(value: str, tok: str) -> str:
    out = _str_cache.get(value)
    if out is None:
        out = _text(value)
    if out != tok:
        raise _Reject
    return value


def _token(tok: str) -> Any:
    """The value of a scalar token, which must be written canonically."""
    c = tok[0]
    if c == "'":
        if len(tok) < 2 or tok[-1] != "'":
            raise _Reject
        return _check_text(tok[1:-1].replace("''", "'"), tok)
    if c in "-0123456789.":
        digits = tok[1:] if c == "-" else tok
        if digits.isascii() and digits.isdigit():
            if digits[0] == "0" and (len(digits) > 1 or c == "-"):
                raise _Reject  # 007 and -0 are not how an int is written
            return int(tok)
        special = _SPECIAL_FLOATS.get(tok)
        if special is not None:
            return special
        try:
            real = float(tok)
        except ValueError:
            pass
        else:
            if _float(real) == tok:
                return real
        # not a number as the emitter writes one: a plain string, or rejected
    elif tok == "null":
        return None
    elif tok == "true":
        return True
    elif tok == "false":
        return False
    return _check_text(tok, tok)


class _Parser:
    __slots__ = ("rows", "i", "n")

    def __init__(self, rows: list[tuple[int, str]]) -> None:
        self.rows = rows  # (indent, text after the indent) per line
        self.i = 0
        self.n = len(rows)

    def mapping(self, indent: int, content: str | None) -> dict[str, Any]:
        d: dict[str, Any] = {}
        rows, n, i = self.rows, self.n, self.i
        cached = _str_cache.get
        last: str | None = None
        rest: str | None
        while True:
            if content is None:
                if i >= n:
                    break
                ind, content = rows[i]
                if ind != indent or content.startswith("- "):
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
                if cached(key) != key:
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
            if rest is None:  # a non-empty collection follows on the next lines
                if i >= n:
                    raise _Reject
                ind, nxt = rows[i]
                self.i = i
                if ind == indent and nxt.startswith("- "):
                    d[key] = self.sequence(indent, None)  # indentless, as libyaml writes it
                elif ind == indent + 2 and not nxt.startswith("- "):
                    d[key] = self.mapping(indent + 2, None)
                else:
                    raise _Reject
                i = self.i
            elif cached(rest) == rest:
                d[key] = rest  # a plain string (written as itself, so not a number, null, ...)
            elif rest == "{}":
                d[key] = {}
            elif rest == "[]":
                d[key] = []
            else:
                d[key] = _token(rest)
            content = None
        self.i = i
        return d

    def sequence(self, indent: int, content: str | None) -> list[Any]:
        items: list[Any] = []
        rows = self.rows
        while True:
            if content is None:
                if self.i >= self.n:
                    break
                ind, line = rows[self.i]
                if ind != indent or not line.startswith("- "):
                    break
                content = line[2:]
                self.i += 1
            if content.startswith("- "):
                items.append(self.sequence(indent + 2, content[2:]))
            elif content == "{}":
                items.append({})
            elif content == "[]":
                items.append([])
            elif content[0] == "'":
                if _quoted(content)[1] == len(content):
                    items.append(_token(content))
                else:
                    items.append(self.mapping(indent + 2, content))
            elif ": " in content or content[-1] == ":":
                items.append(self.mapping(indent + 2, content))
            else:
                items.append(_token(content))
            content = None
        return items


def load_text(text: str) -> Any:
    """Parse canonical YAML text; :data:`FAIL` unless it is exactly canonical."""
    if text == "{}\n":
        return {}
    if text == "[]\n":
        return []
    lines = text.split("\n")
    if lines.pop() != "" or not lines:
        return FAIL
    rows = [(len(line) - len(s), s) for line in lines for s in (line.lstrip(" "),)]
    parser = _Parser(rows)
    try:
        if rows[0][0] != 0:
            return FAIL
        if rows[0][1].startswith("- "):
            value: Any = parser.sequence(0, None)
        else:
            value = parser.mapping(0, None)
    except (_Reject, _Unsure, ValueError, IndexError, RecursionError):
        return FAIL
    if parser.i != parser.n:
        return FAIL
    return value


def load(data: bytes | str) -> Any:
    """Parse canonical YAML bytes; :data:`FAIL` unless exactly canonical."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return FAIL
    else:
        text = data
    return load_text(text)
