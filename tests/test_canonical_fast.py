"""The pure-Python fast path (fastyaml.py) against libyaml, the reference.

Dumping: whenever the fast emitter answers, its bytes equal libyaml's.
Loading: whatever bytes come in (canonical, mutated, hand-written), the fast
loader gives exactly libyaml's value or steps aside.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cmfgit import canonical, fastyaml
from cmfgit.errors import RecordError

TRAPS = [
    "no", "On", "OFF", "y", "true", "False", "0777", "0o17", "0x1F", "0b101", "1_000", "+1", "-0", "-1",
    "12:30:00", "1:20", "1:20.5", "1e-05", "1.0e+16", "1e5", ".5", "5.", ".inf", "-.Inf", ".nan", "NaN",
    "2026-01-01", "2026-1-1 10:00:00", "2026-01-01T00:00:00.000000Z", "2026-01-01 x",
    "null", "Null", "~", "", " ", " lead", "trail ", ": ", "a: b", "a:b", "a:", ":a", " #", "a #b", "a#b",
    "#x", "- x", "-", "-x", "--", "---", "---x", "...", "..x", "?", "? x", "?x", "!", "&", "*", "&a", "*a",
    "|", ">", "'", "''", "it's", '"', "%", "@", "`", "=", "==", "<<", "<", "[a]", "a[0]", "{a: 1}", ",", "a,b",
    "\\", "é", "日本語", "Ωmega", "\u00a0", "a\u3000b", "\ue000", "\ufffd", "\U0001f600",
    "\n", "a\nb", "\t", "\x00", "\x85", "\u2028", "\ufeff", "\ufffe",
]  # fmt: skip
FLOATS = [1e-05, 0.1, -0.0, 0.0, 1e16, 1e-7, 1e300, 5e-324, 123456789.125, -2.5, 1 / 3, math.inf, -math.inf, math.nan]
KEYS = ["k" * 42, "k" * 127, "k" * 128, "k" * 129, "é" * 42, "é" * 64, "é" * 65, "日" * 42, "日" * 43]

text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
bmp_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x2FF), max_size=12)
strings = st.one_of(st.sampled_from(TRAPS), text, bmp_text)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.sampled_from(FLOATS),
    strings,
)
keys = st.one_of(strings, st.sampled_from(KEYS))
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(keys, inner, max_size=4),
    ),
    max_leaves=16,
)
documents = st.one_of(st.dictionaries(keys, values, max_size=8), st.lists(values, max_size=4))

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def same(a: Any, b: Any) -> bool:
    """Equality that tells 1, 1.0 and True apart and treats nan as equal to nan."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return bool(a == b)


def libyaml_load(data: bytes) -> Any:
    return yaml.load(data, Loader=yaml.CSafeLoader)


@SETTINGS
@given(documents)
def test_fast_dump_is_byte_identical_to_libyaml(value: Any) -> None:
    reference = canonical.dump_libyaml(value)
    fast = fastyaml.dump(value)
    if fast is not None:
        assert fast == reference
    assert canonical.dump(value) == reference


@SETTINGS
@given(documents)
def test_fast_load_reads_what_libyaml_reads(value: Any) -> None:
    data = canonical.dump_libyaml(value)
    fast = fastyaml.load(data)
    if fast is not fastyaml.FAIL:
        assert same(fast, libyaml_load(data))
    assert same(canonical.load_fast(data), libyaml_load(data))
    assert canonical.dump(canonical.load(data)) == data


def _mutate(data: bytes, at: int, op: int, byte: int) -> bytes:
    at %= len(data) + 1
    if op == 0:  # insert
        return data[:at] + bytes([byte]) + data[at:]
    if op == 1:  # delete
        return data[:at] + data[at + 1 :]
    return data[:at] + bytes([byte]) + data[at + 1 :]  # replace


INTERESTING_BYTES = st.sampled_from(list(b" -:'\"\n#{}[]~0.e+xn") + [0xC3, 0xA9, 0x09])


@SETTINGS
@given(documents, st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 2), INTERESTING_BYTES), max_size=3))
def test_fast_load_never_disagrees_on_edited_bytes(value: Any, edits: list[tuple[int, int, int]]) -> None:
    data = canonical.dump_libyaml(value)
    for at, op, byte in edits:
        data = _mutate(data, at, op, byte)
    try:
        expected = canonical.load_libyaml(data)
    except RecordError as exc:
        with pytest.raises(RecordError) as raised:
            canonical.load(data)
        assert str(raised.value) == str(exc)
        return
    fast = fastyaml.load(data)
    if fast is not fastyaml.FAIL:
        assert same(fast, expected)
        assert canonical.dump_libyaml(fast) == data  # accepted means canonical
    assert same(canonical.load(data), expected)


@pytest.mark.parametrize("key", KEYS)
def test_simple_key_length_limit(key: str) -> None:
    """libyaml writes keys over 128 bytes as '? key': the fast path steps aside."""
    value = {key: 1, "b": {key: [key]}}
    reference = canonical.dump_libyaml(value)
    fast = fastyaml.dump(value)
    assert fast == (reference if len(key.encode()) <= 128 else None)
    assert canonical.dump(value) == reference
    assert canonical.load(reference) == value


def test_typical_record_takes_the_fast_path() -> None:
    record = {
        "schema": "cmfgit/execution/1",
        "command": ["python", "train.py", "--lr", "0.01"],
        "started_at": "2026-01-01T00:00:00.000000Z",
        "params": {"lr": 0.01, "epochs": 10, "opt": "adam", "seed": "0777", "flag": "no", "eps": 1e-05},
        "inputs": [{"path": "data/train.csv", "hash": "blake3:" + "ab" * 32, "size": 10, "props": {}}],
        "metrics": {"acc": 0.9, "loss": float("nan")},
        "git": {"commit": None, "dirty": False, "remote": "https://user:REDACTED@host/x.git"},
        "nested": [[1, [2, []]], {}, [{"a": {"b": [{}]}}]],
        "text": "日本語 and it's: fine",
    }
    fast = fastyaml.dump(record)
    assert fast is not None and fast == canonical.dump_libyaml(record)
    loaded = fastyaml.load(fast)
    assert loaded is not fastyaml.FAIL and same(loaded, libyaml_load(fast))
    assert canonical.decode(fast) is not None


@pytest.mark.parametrize(
    "value",
    [{}, [], {"a": {}}, {"a": []}, [[]], [{}], "top-level scalar", 1, None, {"a": "\x85"}, {"a": "\U0001f600"}],
)
def test_edge_shapes_match_libyaml(value: Any) -> None:
    assert canonical.dump(value) == canonical.dump_libyaml(value)
    data = canonical.dump(value)
    assert same(canonical.load(data), libyaml_load(data))


@pytest.mark.parametrize(
    "data",
    [b"a: 1\n", b"a: 01\n", b"a: 1.0e5\n", b"a: yes\n", b"a: 2026-01-01\n", b"b: 1\na: 2\n", b"a:\n  - 1\n"],
)
def test_non_canonical_input_is_read_by_libyaml(data: bytes) -> None:
    """Hand-written YAML (params files, config) still reads as libyaml reads it."""
    value = libyaml_load(data)
    assert same(canonical.load(data), value)
    try:
        is_canonical = canonical.dump_libyaml(value) == data
    except RecordError:  # a date or other non-JSON value
        is_canonical = False
    if is_canonical:
        assert same(canonical.decode(data), value)
    else:
        with pytest.raises(RecordError):
            canonical.decode(data)


def test_strict_decode_still_refuses_non_canonical_bytes() -> None:
    with pytest.raises(RecordError, match="not in canonical form"):
        canonical.decode(b"b: 1\na: 2\n")
    with pytest.raises(RecordError, match="not valid YAML"):
        canonical.load(b"a: [\n")
    with pytest.raises(RecordError, match="not valid YAML.*UTF-8"):
        canonical.load(b"a: \xff\n")


NUMERIC_ALPHABET = "0123456789_-+.:eEbBxXoOaAcCdDfFiInNtTZz \t~!&*<=yYsS"
numericish = st.one_of(
    st.text(st.sampled_from(NUMERIC_ALPHABET), min_size=1, max_size=14),
    st.builds(
        lambda d, sep, frac, tz: f"2026-0{d}-1{d}{sep}0{d}:1{d}:2{d}{frac}{tz}",
        st.integers(1, 9),
        st.sampled_from(["T", "t", " ", "  ", "\t"]),
        st.sampled_from(["", ".", ".5", ".000000"]),
        st.sampled_from(["", "Z", " Z", "+01", "-01:30", "z"]),
    ),
    st.sampled_from(TRAPS),
    st.text(st.sampled_from("0123456789abcdef"), min_size=40, max_size=40),  # git object ids
    st.sampled_from(
        [".inf", "-.Inf", "+.INF", ".NaN", ".nan5", "0x1F", "-0x_a", "0xg", "0b101", "0b2", "1e5", "1.0e+5"]
    ),
)


@settings(max_examples=500, deadline=None)
@given(numericish)
def test_implicit_shortcuts_agree_with_pyyaml_resolver(text: str) -> None:
    """fastyaml._implicit decides without the regex where it can; PyYAML's own
    resolver is the judge (quoted iff it would not read back as a string)."""
    resolved = yaml.resolver.Resolver().resolve(yaml.ScalarNode, text, (True, False))
    assert fastyaml._implicit(text) == (resolved != "tag:yaml.org,2002:str")
    value = {"k": text, text: [text]}
    assert canonical.dump(value) == canonical.dump_libyaml(value)
