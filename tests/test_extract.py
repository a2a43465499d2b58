"""The index's fast loader (extract.py) against the full one (fastyaml, then libyaml).

extract.load must accept only canonical text (what it accepts is byte for
byte the dump of what it returns, and libyaml reads the same value), and at
least what fastyaml.load accepts; its scalar shortcuts must agree with
fastyaml._token; and the rows the index derives through it must equal the
rows derived from the record as the full loader reads it, whatever the bytes
(canonical or edited).
"""

from __future__ import annotations

import sys
from typing import Any

import pytest
from conftest import ROOT
from hypothesis import given
from hypothesis import strategies as st
from test_canonical_fast import (
    INTERESTING_BYTES,
    SETTINGS,
    TRAPS,
    _mutate,
    documents,
    libyaml_load,
    numericish,
    same,
    strings,
)

from cmfgit import canonical, extract, fastyaml, index
from cmfgit.errors import RecordError


def check(data: bytes) -> None:
    """extract.load(data) reads canonical text as libyaml does, steps aside otherwise,
    and never steps aside where fastyaml.load answers."""
    fast = extract.load(data)
    if fast is extract.FAIL:
        assert fastyaml.load(data) is fastyaml.FAIL
        return
    assert same(fast, libyaml_load(data))
    assert canonical.dump_libyaml(fast) == data  # accepted means canonical
    reference = fastyaml.load(data)
    assert reference is fastyaml.FAIL or same(fast, reference)


# Documents that mostly take the fast path (simple keys and text), so that edits
# test the layout rules rather than the quoting rules.
simple_text = st.text(st.sampled_from("abcxyz_/.:- 019"), min_size=1, max_size=6)
simple_documents = st.dictionaries(
    st.text(st.sampled_from("abcyno_"), min_size=1, max_size=3),
    st.recursive(
        st.one_of(st.integers(-5, 500), st.floats(allow_nan=False, width=16), simple_text, st.none(), st.booleans()),
        lambda inner: st.one_of(
            st.lists(inner, max_size=3), st.dictionaries(st.text(st.sampled_from("abc"), min_size=1), inner, max_size=3)
        ),
        max_leaves=8,
    ),
    min_size=1,
    max_size=6,
)


@SETTINGS
@given(st.one_of(documents, simple_documents))
def test_reads_canonical_text_as_fastyaml_does(value: Any) -> None:
    check(canonical.dump(value))


@SETTINGS
@given(
    st.one_of(documents, simple_documents),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 2), INTERESTING_BYTES), max_size=3),
)
def test_edited_bytes_are_read_as_libyaml_reads_them_or_refused(value: Any, edits: list[tuple[int, int, int]]) -> None:
    data = canonical.dump(value)
    for at, op, byte in edits:
        data = _mutate(data, at, op, byte)
    check(data)


def _edit_lines(data: bytes, edits: list[tuple[int, int, int]]) -> bytes:
    """Line-level edits: swap two lines, repeat one, drop one, indent or dedent one."""
    lines = data.split(b"\n")[:-1] or [b""]
    for op, a, b in edits:
        a %= len(lines)
        b %= len(lines)
        if op == 0:
            lines[a], lines[b] = lines[b], lines[a]
        elif op == 1:
            lines.insert(b, lines[a])
        elif op == 2 and len(lines) > 1:
            del lines[a]
        elif op == 3:
            lines[a] = b"  " + lines[a]
        elif op == 4:
            lines[a] = lines[a].removeprefix(b"  ")
    return b"\n".join(lines) + b"\n"


@SETTINGS
@given(
    st.one_of(documents, simple_documents),
    st.lists(st.tuples(st.integers(0, 4), st.integers(0, 99), st.integers(0, 99)), min_size=1, max_size=2),
)
def test_edited_lines_are_read_as_libyaml_reads_them_or_refused(value: Any, edits: list[tuple[int, int, int]]) -> None:
    check(_edit_lines(canonical.dump(value), edits))


def _token(tok: str) -> Any:
    try:
        return fastyaml._token(tok)
    except (fastyaml._Reject, fastyaml._Unsure, ValueError, IndexError):
        return fastyaml.FAIL


def _scalar(tok: str) -> Any:
    try:
        return extract._scalar(tok)
    except (fastyaml._Reject, fastyaml._Unsure, ValueError, IndexError):
        return fastyaml.FAIL


tokens = st.one_of(
    strings.filter(bool),
    numericish,
    st.sampled_from(TRAPS[:-9]).map(lambda s: f"'{s}'"),
    st.builds(lambda d: f"'2026-01-0{d}T12:34:56.00000{d}Z'", st.integers(0, 9)),
    st.sampled_from(["'2026-01-01T12:34:56.000000z'", "'2026-01-01T12:34:56.000000Z", "'٢٠٢٦-01-01T12:34:56.000000Z'"]),
    st.floats().map(repr),
    st.floats().map(fastyaml._float),
    st.integers().map(str),
    st.sampled_from(["0", "00", "007", "0123", "-0", "-01", "08", "1_0", "+1", "1.", "01.5", "1.50", "1e5", "1.0e+16"]),
    st.sampled_from(["blake3:" + "0a" * 32, "md5:" + "f" * 32, "a" * 40, "/usr/bin/python3", "Linux-6.1-x86_64"]),
    st.sampled_from(["yes", "No", "null", "TRUE", "off", "_x", "/", "a:b", "a:", "a: b", "a b", "a #b", "x\x7f"]),
)


@SETTINGS
@given(tokens)
def test_scalar_shortcuts_agree_with_fastyaml_token(tok: str) -> None:
    """Whatever _token reads, _scalar reads the same; whatever _scalar reads is
    written as ``tok`` and read back by libyaml as that value."""
    expected, got = _token(tok), _scalar(tok)
    if expected is not fastyaml.FAIL:
        assert same(got, expected)
    if got is not fastyaml.FAIL:
        assert fastyaml._scalar(got) == tok
        assert same(libyaml_load(f"a: {tok}\n".encode())["a"], got)


def _record(params: dict[str, Any], metrics: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    item = {"path": "data/t.csv", "hash": "blake3:" + "ab" * 32, "size": 3, "type": "dataset", "kind": "file"}
    return {
        "schema": "cmfgit/execution/1",
        "uuid": "0" * 32,
        "pipeline": "p",
        "stage": "train",
        "type": "train",
        "command": ["python", "train.py", "--lr=0.1", "it's: fine"],
        "params": params,
        "metrics": metrics,
        "started_at": "2026-01-01T00:00:00.000000Z",
        "ended_at": None,
        "exit_code": 0,
        "site": "lab",
        "host": "h",
        "user": "u",
        "git": {"commit": "c" * 40, "branch": "main", "dirty": False, "remote": None, "tree": "1" * 40},
        "env": {"python": "3.11.7", "platform": "Linux", "vars": {"A": "1 2"}},
        "inputs": [{**item, "props": {}}, {**item, "hash": "md5:" + "0" * 32, "props": {"n": [1, {"a": None}]}}],
        "outputs": [{**item, "aliases": ["md5:" + "1" * 32, item["hash"]], "props": {"x": "y"}}],
        **extra,
    }


records = st.builds(
    _record,
    st.dictionaries(strings, st.one_of(st.integers(), st.floats(), strings, st.booleans(), st.none()), max_size=5),
    st.dictionaries(strings, st.one_of(st.floats(), st.integers()), max_size=4),
    st.dictionaries(st.sampled_from(["x-note", "error", "cwd", "zzz"]), st.one_of(strings, documents), max_size=2),
)


def _rows(d: index.Derived) -> tuple[Any, ...]:
    return (d.id, d.kind, repr(d.execution), d.events, d.aliases, repr(d.kv), d.annotation)


def _full(rid: str, data: bytes) -> index.Derived:
    """What the index derives from the record as the full loader reads it."""
    try:
        record = canonical.load(data)
    except RecordError:
        return index.Derived(rid, index.BAD)
    return index.derive(rid, data, record)


@SETTINGS
@given(
    records,
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 2), INTERESTING_BYTES), max_size=2),
    st.lists(st.tuples(st.integers(0, 4), st.integers(0, 99), st.integers(0, 99)), max_size=1),
)
def test_index_rows_equal_the_full_loaders(
    record: dict[str, Any], edits: list[tuple[int, int, int]], line_edits: list[tuple[int, int, int]]
) -> None:
    data = canonical.dump(record)
    assert extract.load(data) is not extract.FAIL or fastyaml.load(data) is fastyaml.FAIL
    for at, op, byte in edits:
        data = _mutate(data, at, op, byte)
    data = _edit_lines(data, line_edits) if line_edits else data
    rid = canonical.digest(data)
    assert _rows(index.derive(rid, data)) == _rows(_full(rid, data))


@pytest.mark.parametrize("seed", [1, 2])
def test_generated_records_take_the_fast_path(seed: int) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    import gen_records

    for rid, data, record in gen_records.iter_canonical(200, seed=seed):
        assert extract.load(data) == record
        assert index.derive(rid, data).kind == index.EXEC
