"""The ``--where`` expression language: parsed here, never ``eval``-ed.

::

    params.lr >= 0.01 and metrics.acc > 0.9
    stage == "train" and not (exit_code != 0 or site in ("edge1", "edge2"))
    pipeline ~ "wine*" and started_at >= "2026-01"

Grammar (keywords are case-insensitive)::

    expr       := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | "(" expr ")" | comparison
    comparison := field OP value | field "in" "(" value ("," value)* ")" | field "~" string
    OP         := "==" | "=" | "!=" | "<" | "<=" | ">" | ">="
    value      := number | string ('...' or "...") | true | false | null
    field      := pipeline | stage | type | site | host | user | exit_code | started_at
                | ended_at | time | duration | id | uuid | commit | branch
                | params.KEY | metrics.KEY | tags.KEY | params["any key"] | metrics["any key"]

A comparison with a missing param or metric is false (``not`` makes it true).
Numbers compare with numbers and strings with strings; ``true``/``false``
compare as 1/0; ``== null`` means missing or null; ``~`` is a glob (``*``,
``?``, ``[abc]``). Errors are :class:`WhereError`, which names the column and
draws a caret under the spot.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Union

from cmfgit.errors import UsageError

# Fields of an execution and their index column; kind: 'text', 'int', 'num' or 'time'.
# 'duration' is no column: seconds from started_at to ended_at, computed (see field_sql).
CORE_FIELDS: dict[str, tuple[str, str]] = {
    "pipeline": ("pipeline", "text"),
    "stage": ("stage", "text"),
    "type": ("type", "text"),
    "site": ("site", "text"),
    "host": ("host", "text"),
    "user": ("user", "text"),
    "exit_code": ("exit_code", "int"),
    "started_at": ("started_at", "time"),
    "ended_at": ("ended_at", "time"),
    "time": ("started_at", "time"),
    "duration": ("duration", "num"),
    "id": ("id", "text"),
    "uuid": ("uuid", "text"),
    "commit": ("git_commit", "text"),
    "git.commit": ("git_commit", "text"),
    "branch": ("git_branch", "text"),
    "git.branch": ("git_branch", "text"),
}
NAMESPACES = ("params", "metrics", "tags")  # tags: see cmfgit/tags.py; values are text
OPS = ("==", "!=", "<", "<=", ">", ">=")
KEYWORDS = ("and", "or", "not", "in", "true", "false", "null")
# Limits that keep parsing and compiling (both recursive) far from Python's recursion limit.
MAX_NESTING = 30  # parentheses and 'not's inside each other
MAX_TERMS = 300  # comparisons in one expression


class WhereError(UsageError):
    """A bad expression: the message says what and where, with a caret under the spot."""

    def __init__(self, text: str, pos: int, message: str) -> None:
        caret = " " * (pos + 2) + "^"
        super().__init__(f"--where: {message} at column {pos + 1}\n  {text}\n{caret}")
        self.text = text
        self.pos = pos
        self.message = message


# -- the syntax tree ------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    ns: str  # '' for a core field, else 'params' or 'metrics'
    name: str  # core field name, or the param/metric key
    pos: int

    def __str__(self) -> str:
        return f"{self.ns}.{self.name}" if self.ns else self.name


@dataclass(frozen=True)
class Compare:
    field: Field
    op: str  # one of OPS, 'in' or '~'
    value: Any  # a literal; a tuple of literals for 'in'
    pos: int


@dataclass(frozen=True)
class And:
    left: Node
    right: Node


@dataclass(frozen=True)
class Or:
    left: Node
    right: Node


@dataclass(frozen=True)
class Not:
    operand: Node


Node = Union[Compare, And, Or, Not]


# -- tokens ---------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![\w.]))
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<op>==|!=|<=|>=|=|<|>|~)
  | (?P<punct>[()\[\],])
  | (?P<name>[A-Za-z_][\w.\-/:]*)
    """,
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'"}


@dataclass(frozen=True)
class Token:
    kind: str  # number, string, op, punct, name, keyword, end
    text: str
    value: Any
    pos: int


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            if text[pos] in "\"'":
                raise WhereError(text, pos, "unterminated string")
            raise WhereError(text, pos, f"unexpected character {text[pos]!r}")
        kind = m.lastgroup or ""
        raw = m.group()
        if kind == "number":
            value: Any = float(raw) if any(c in raw for c in ".eE") else int(raw)
            tokens.append(Token(kind, raw, value, pos))
        elif kind == "string":
            tokens.append(Token(kind, raw, _unquote(text, raw, pos), pos))
        elif kind == "name" and raw.lower() in KEYWORDS:
            tokens.append(Token("keyword", raw, raw.lower(), pos))
        elif kind != "space":
            tokens.append(Token(kind, raw, "==" if raw == "=" else raw, pos))
        pos = m.end()
    tokens.append(Token("end", "", None, len(text)))
    return tokens


def _unquote(text: str, raw: str, pos: int) -> str:
    out: list[str] = []
    i = 1
    while i < len(raw) - 1:
        c = raw[i]
        if c == "\\":
            nxt = raw[i + 1]
            if nxt not in _ESCAPES:
                raise WhereError(text, pos + i, f"unknown escape '\\{nxt}' in a string")
            out.append(_ESCAPES[nxt])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


# -- parsing --------------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0
        self.depth = 0
        self.terms = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def is_kw(self, word: str) -> bool:
        return self.tok.kind == "keyword" and self.tok.value == word

    def fail(self, message: str, tok: Token | None = None) -> WhereError:
        return WhereError(self.text, (tok or self.tok).pos, message)

    def describe(self, tok: Token) -> str:
        return "the end of the expression" if tok.kind == "end" else f"'{tok.text}'"

    def parse(self) -> Node:
        if self.tok.kind == "end":
            raise self.fail("empty expression")
        node = self.or_expr()
        if self.tok.kind != "end":
            if self.tok.kind in ("name", "string", "number"):
                raise self.fail(f"expected 'and', 'or' or ')' before {self.describe(self.tok)}")
            raise self.fail(f"unexpected {self.describe(self.tok)}")
        return node

    def or_expr(self) -> Node:
        node = self.and_expr()
        while self.is_kw("or"):
            self.take()
            node = Or(node, self.and_expr())
        return node

    def and_expr(self) -> Node:
        node = self.not_expr()
        while self.is_kw("and"):
            self.take()
            node = And(node, self.not_expr())
        return node

    def not_expr(self) -> Node:
        if not (self.is_kw("not") or (self.tok.kind == "punct" and self.tok.text == "(")):
            self.terms += 1
            if self.terms > MAX_TERMS:
                raise self.fail(f"more than {MAX_TERMS} comparisons")
            return self.comparison()
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise self.fail(f"nested more than {MAX_NESTING} deep")
        try:
            return self._nested()
        finally:
            self.depth -= 1

    def _nested(self) -> Node:
        """``not X`` or ``( X )``."""
        if self.is_kw("not"):
            self.take()
            return Not(self.not_expr())
        opening = self.take()
        node = self.or_expr()
        if not (self.tok.kind == "punct" and self.tok.text == ")"):
            if self.tok.kind == "end":
                raise self.fail("missing ')' for this '('", opening)
            raise self.fail(f"expected ')' but found {self.describe(self.tok)}")
        self.take()
        return node

    def field(self) -> Field:
        tok = self.tok
        if tok.kind != "name":
            raise self.fail(f"expected a field such as params.lr or stage, found {self.describe(tok)}")
        self.take()
        name = tok.text
        if name in NAMESPACES and self.tok.kind == "punct" and self.tok.text == "[":
            self.take()
            quoted = self.take()
            if quoted.kind != "string":
                raise self.fail("expected a quoted key inside [ ]", quoted)
            if not (self.tok.kind == "punct" and self.tok.text == "]"):
                raise self.fail("expected ']'")
            self.take()
            return Field(name, quoted.value, tok.pos)
        ns, _, key = name.partition(".")
        if ns in NAMESPACES:
            if not key:
                raise WhereError(self.text, tok.pos, f"'{name}' needs a key, e.g. {ns}.lr")
            return Field(ns, key, tok.pos)
        if name not in CORE_FIELDS:
            raise WhereError(self.text, tok.pos, f"unknown field '{name}'{_suggest(name)}")
        return Field("", name, tok.pos)

    def comparison(self) -> Node:
        field = self.field()
        op = self.tok
        if op.kind == "keyword" and op.value == "in":
            self.take()
            return Compare(field, "in", self.value_list(), op.pos)
        if op.kind != "op":
            raise self.fail(f"expected a comparison (==, !=, <, <=, >, >=, in, ~) after '{field}'")
        self.take()
        value = self.value(op.text)
        if op.value == "~" and not isinstance(value, str):
            raise self.fail("'~' needs a quoted glob pattern", self.tokens[self.i - 1])
        node = Compare(field, op.value, value, op.pos)
        _check_types(self.text, node, self.tokens[self.i - 1])
        return node

    def value(self, after: str) -> Any:
        tok = self.tok
        if tok.kind in ("number", "string"):
            self.take()
            return tok.value
        if tok.kind == "keyword" and tok.value in ("true", "false", "null"):
            self.take()
            return {"true": True, "false": False, "null": None}[tok.value]
        if tok.kind == "name":
            raise self.fail(f"expected a value after '{after}'; quote text: \"{tok.text}\"")
        raise self.fail(f"expected a value after '{after}', found {self.describe(tok)}")

    def value_list(self) -> tuple[Any, ...]:
        if not (self.tok.kind == "punct" and self.tok.text == "("):
            raise self.fail("expected '(' after 'in'")
        self.take()
        values = [self.value("(")]
        while self.tok.kind == "punct" and self.tok.text == ",":
            self.take()
            values.append(self.value(","))
        if not (self.tok.kind == "punct" and self.tok.text == ")"):
            raise self.fail(f"expected ',' or ')' in the list, found {self.describe(self.tok)}")
        self.take()
        if any(v is None for v in values):
            raise self.fail("null cannot be in a list; use '== null'")
        return tuple(values)


def _suggest(name: str) -> str:
    import difflib  # only on an error

    choices = [*CORE_FIELDS, "params.<key>", "metrics.<key>"]
    close = difflib.get_close_matches(name, [*CORE_FIELDS, "params", "metrics"], n=1)
    if close:
        hint = close[0] + ("." if close[0] in NAMESPACES else "")
        return f" (did you mean '{hint}'?)"
    return f" (fields: {', '.join(choices)})"


def _check_types(text: str, node: Compare, value_tok: Token) -> None:
    values = node.value if isinstance(node.value, tuple) else (node.value,)
    if None in values and node.op not in ("==", "!="):
        raise WhereError(text, node.pos, "null only compares with == or !=")
    if node.field.ns:
        return
    kind = CORE_FIELDS[node.field.name][1]
    for v in values:
        if v is None:
            continue
        numeric = isinstance(v, (int, float)) and not isinstance(v, bool)
        if kind in ("int", "num") and not numeric:
            raise WhereError(text, value_tok.pos, f"'{node.field}' is a number; compare it with a number")
        if kind in ("text", "time") and not isinstance(v, str):
            raise WhereError(text, value_tok.pos, f"'{node.field}' is text; quote the value")


def parse(text: str) -> Node:
    """The syntax tree of ``text``; raises WhereError."""
    return _Parser(text).parse()


def fields(node: Node) -> list[Field]:
    """Every field the expression uses, in order."""
    if isinstance(node, Compare):
        return [node.field]
    if isinstance(node, Not):
        return fields(node.operand)
    return fields(node.left) + fields(node.right)


def conjuncts(node: Node) -> list[Node]:
    """The terms of a top-level ``and`` chain."""
    if isinstance(node, And):
        return conjuncts(node.left) + conjuncts(node.right)
    return [node]


# -- compiling to SQL over the index ------------------------------------------------------

BIG = 1.7976931348623157e308  # the index clamps infinities to this


def _json_path(key: str) -> str:
    # SQLite (3.40) matches a quoted path label against the key as the JSON text
    # spells it, so escape it as the index's encoder did.
    return '$."' + json.dumps(key, ensure_ascii=False)[1:-1] + '"'


def sql_text(text: str) -> str:
    """``text`` as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def field_sql(field: Field) -> str:
    """A SQL expression for ``field`` over ``executions e`` joined with ``records r``
    (tags: over the query's temporary ``tag_values`` table)."""
    if field.ns == "tags":
        return f"(SELECT tv.val FROM tag_values tv WHERE tv.exec = e.rowid AND tv.name = {sql_text(field.name)})"
    if field.ns and '"' in field.name:  # a path label cannot hold '"' in SQLite 3.40: look the key up
        return f"(SELECT je.value FROM json_each(e.{field.ns}) je WHERE je.key = {sql_text(field.name)})"
    if field.ns:
        return f"json_extract(e.{field.ns}, {sql_text(_json_path(field.name))})"
    column = CORE_FIELDS[field.name][0]
    if column == "duration":
        return DURATION_SQL
    return "r.id" if column == "id" else f"e.{column}"


def _micros_sql(column: str) -> str:
    """A record time (always ``YYYY-MM-DDTHH:MM:SS.ffffffZ``: schema.py) as whole
    microseconds since the epoch. The seconds go to unixepoch() without the fraction,
    which SQLite would round to milliseconds (59.999999 would make the next second)."""
    return f"(unixepoch(substr({column}, 1, 19)) * 1000000 + CAST(substr({column}, 21, 6) AS INTEGER))"


# compare.duration in SQL, to the same float: the microseconds between, over 10**6.
DURATION_SQL = f"(({_micros_sql('e.ended_at')} - {_micros_sql('e.started_at')}) / 1000000.0)"


def value_condition(column: str, op: str, value: Any, args: list[Any]) -> str:
    """``column op value`` where numbers match only numbers and text only text.

    ``column`` is evaluated once (BETWEEN), which matters for json_extract.
    In SQLite every number sorts before every string, and every string
    before every blob, so ranges can be fenced by type.
    """
    if value is None:
        return f"{column} IS NULL" if op == "==" else f"{column} IS NOT NULL"
    if isinstance(value, bool):
        value = int(value)
    if op == "in":
        args.extend(int(v) if isinstance(v, bool) else v for v in value)
        return f"{column} IN ({', '.join('?' * len(value))})"
    if op == "~":
        args.append(value)
        return f"{column} GLOB ?"
    if op == "==":
        args.append(value)
        return f"{column} = ?"
    if op == "!=":
        args.append(value)
        return f"{column} != ?"
    if isinstance(value, str):
        bounds: tuple[str | bytes, str | bytes] = ("", value) if op in ("<", "<=") else (value, b"")
        args.extend(bounds)
        cond = f"{column} BETWEEN ? AND ?"
        if op in ("<", ">"):
            args.append(value)
            cond = f"({cond} AND {column} != ?)"
        return cond
    number = float(value)
    if op == "<":
        low, high = -BIG, math.nextafter(number, -math.inf)
    elif op == "<=":
        low, high = -BIG, number
    elif op == ">":
        low, high = math.nextafter(number, math.inf), BIG
    else:
        low, high = number, BIG
    args.extend([low, high])
    return f"{column} BETWEEN ? AND ?"


def to_sql(node: Node, args: list[Any]) -> str:
    """A SQL condition equivalent to ``node``; appends its parameters to ``args``."""
    if isinstance(node, Compare):
        return value_condition(field_sql(node.field), node.op, node.value, args)
    if isinstance(node, Not):
        return f"NOT coalesce({to_sql(node.operand, args)}, 0)"
    # A chain of the same operator is one flat SQL list: SQLite's parser has a
    # small stack, and a long 'or' nested pairwise would overflow it.
    kind = type(node)
    chain: list[Node] = []
    todo: list[Node] = [node]
    while todo:
        item = todo.pop()
        if isinstance(item, (And, Or)) and type(item) is kind:
            todo += [item.right, item.left]
        else:
            chain.append(item)
    joiner = " AND " if kind is And else " OR "
    return "(" + joiner.join(to_sql(item, args) for item in chain) + ")"
