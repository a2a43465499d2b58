"""The canonical form: one byte sequence per value, stable under load/dump.

Property tests with hypothesis over the YAML 1.1 traps DESIGN §3 names
(implicit booleans, octals, dates, nulls) and over strings that need quoting
or escaping (line breaks, control characters, NEL, U+2028, ': ', ' #').
"""

from __future__ import annotations

import enum
import math
from typing import Any

import pytest
import yaml
from blake3 import blake3
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cmfgit import canonical, pack, schema
from cmfgit.errors import RecordError

TRAPS = [
    "no", "No", "NO", "on", "off", "yes", "y", "n", "Y", "N", "true", "True", "false", "FALSE",
    "0777", "0o17", "0x1F", "0b101", "1_000", "+1", "-0", "12:30:00", "1:20", "1e-05", "1.0e+16",
    ".inf", "-.inf", ".nan", "NaN", "2026-01-01", "2026-01-01 10:00:00", "2026-01-01T00:00:00.000000Z",
    "null", "Null", "~", "", " ", "  lead", "trail  ", " both ", ": ", "a: b", "a:b", " #", "a #b", "#x",
    "- x", "-", "?", "? x", "!", "!!str", "&a", "*a", "|", ">", "'", '"', "%", "@", "`", "=", "<<",
    "---", "--- # x", "...", "[a]", "{a: 1}", ",", "\\", "a\\nb",
    "\n", "a\nb", "a\n", "\na", " \n ", "\t", "a\tb", "\r", "a\r\nb", "\x00", "\x07", "\x1b[0m", "\x7f",
    "\x85", "a\x85b", "\x9f", "\u2028", "\u2029", "a\u2028b", "\ufeff", "\ufeffa",
    "é", "日本語", "emoji \U0001f600", "Ωmega", "\u00a0nbsp",
]  # fmt: skip

FLOATS = [1e-05, 0.1, -0.0, 0.0, 1e16, 1e300, 5e-324, 123456789.125, -2.5, 1 / 3, math.inf, -math.inf, math.nan]


def _has_control(value: Any) -> bool:
    if isinstance(value, str):
        return any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F or c in "\u2028\u2029\ufeff" for c in value)
    if isinstance(value, dict):
        return any(_has_control(k) or _has_control(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_control(v) for v in value)
    return False


def record_strategy(control: bool) -> st.SearchStrategy[dict[str, Any]]:
    """Records of JSON-like values; ``control=False`` keeps control characters out."""
    if control:
        codec = st.characters(codec="utf-8", exclude_categories=("Cs",))
    else:  # what canonical.py writes double-quoted: C0/C1 controls, U+2028/9, BOM, non-characters
        codec = st.characters(
            codec="utf-8", exclude_categories=("Cs", "Cc", "Zl", "Zp"), exclude_characters="\ufeff\ufffe\uffff"
        )
    traps = st.sampled_from([t for t in TRAPS if control or not _has_control(t)])
    text = st.text(alphabet=codec, max_size=20)
    strings = st.one_of(traps, text, text.map(lambda s: f" {s}\n{s} ") if control else text.map(lambda s: f" {s} "))
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**100), max_value=2**100),
        st.floats(),
        st.sampled_from(FLOATS),
        strings,
    )
    values = st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(st.one_of(traps, text), inner, max_size=4)
        ),
        max_leaves=12,
    )
    return st.dictionaries(st.one_of(traps, text), values, max_size=8)


records = record_strategy(control=True)
plain_records = record_strategy(control=False)

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def same(a: Any, b: Any) -> bool:
    """Structural equality that tells -0.0 from 0.0 and accepts nan == nan."""
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return bool(a == b)


@SETTINGS
@given(records)
def test_dump_load_dump_is_identity_and_id_is_blake3(record: dict[str, Any]) -> None:
    data = canonical.dump(record)
    loaded = canonical.load(data)
    assert same(loaded, record)
    assert canonical.dump(loaded) == data
    data2, rid = canonical.encode(loaded)
    assert data2 == data
    assert rid == blake3(data).hexdigest() == canonical.digest(data)
    # The strict path accepts exactly these bytes under exactly this id.
    assert same(canonical.decode(data, expected_id=rid), record)


@SETTINGS
@given(records)
def test_canonical_lines_never_look_like_a_pack_separator(record: dict[str, Any]) -> None:
    """pack.py relies on this: a record never has a line starting with '--- # '."""
    data = canonical.dump(record)
    assert data.endswith(b"\n")
    assert not any(line.startswith(b"---") for line in data.split(b"\n"))
    rid = canonical.digest(data)
    assert pack.parse(pack.serialize({rid: data})) == {rid: data}


@SETTINGS
@given(plain_records)
def test_canonical_is_the_documented_plain_dump(record: dict[str, Any]) -> None:
    """docs/format.md documents the form as this exact yaml.dump call."""
    plain = yaml.dump(
        record,
        Dumper=yaml.CSafeDumper,
        sort_keys=True,
        default_flow_style=False,
        allow_unicode=True,
        width=2**31 - 1,
    ).encode("utf-8")
    assert canonical.dump(record) == plain


@pytest.mark.parametrize("text", TRAPS)
def test_each_trap_string_stays_a_string(text: str) -> None:
    data = canonical.dump({"v": text, text: 1})
    assert canonical.load(data) == {"v": text, text: 1}


@pytest.mark.parametrize("number", FLOATS)
def test_floats_keep_their_exact_value(number: float) -> None:
    data = canonical.dump({"x": number})
    back = canonical.load(data)["x"]
    assert isinstance(back, float)
    assert same(back, number)


def test_known_bytes() -> None:
    """Pin the form itself: a change here changes every id."""
    record = {"b": [1, 0.1, 1e-05, -0.0, None, True], "a": {"z": "no", "y": "0777", "x": "2026-01-01"}, "c": "a\nb"}
    assert canonical.dump(record) == (
        b"a:\n  x: '2026-01-01'\n  y: '0777'\n  z: 'no'\n"
        b"b:\n- 1\n- 0.1\n- 1.0e-05\n- -0.0\n- null\n- true\n"
        b'c: "a\\nb"\n'
    )


def test_tuples_dump_as_lists() -> None:
    assert canonical.dump({"t": (1, 2)}) == canonical.dump({"t": [1, 2]})


def test_subclasses_of_basic_types_dump_as_their_plain_value() -> None:
    """An IntEnum, a str enum or numpy's float64 (a float subclass) is plain data."""

    class Level(enum.IntEnum):
        HIGH = 3

    class Mode(str, enum.Enum):
        FAST = "fast"

    class Float64(float):
        pass

    value = {"level": Level.HIGH, "mode": Mode.FAST, Mode.FAST: Float64(0.1), "loss": Float64(1e-05)}
    assert canonical.dump(value) == canonical.dump({"level": 3, "mode": "fast", "fast": 0.1, "loss": 1e-05})


@pytest.mark.parametrize(
    "value",
    [{1: "int key"}, {"d": b"bytes"}, {"s": {1, 2}}, {"o": object()}, {"bad": "\ud800"}],
    ids=["int-key", "bytes", "set", "object", "surrogate"],
)
def test_values_outside_the_data_model_are_refused(value: Any) -> None:
    with pytest.raises(RecordError):
        canonical.dump(value)


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"a: 1\nb: 2\n", None),
        (b"b: 2\na: 1\n", "not in canonical form"),
        (b"a:   1\n", "not in canonical form"),
        (b"a: 2026-01-01\n", "unsupported value"),
        (b"a: !!binary aGk=\n", "unsupported value"),
        (b"a: !!python/object:os.system {}\n", "not valid YAML"),
        (b"a: [\n", "not valid YAML"),
        (b"a: \xff\n", "not valid"),
    ],
)
def test_decode_is_strict(data: bytes, reason: str | None) -> None:
    if reason is None:
        assert canonical.decode(data) == {"a": 1, "b": 2}
        return
    with pytest.raises(RecordError, match=reason):
        canonical.decode(data)


def test_decode_checks_the_id() -> None:
    data, rid = canonical.encode({"a": 1})
    assert canonical.decode(data, expected_id=rid) == {"a": 1}
    with pytest.raises(RecordError, match="does not match its id"):
        canonical.decode(data, expected_id="0" * 64)


def test_timestamps_are_quoted_strings() -> None:
    now = schema.utc_now()
    data = canonical.dump({"started_at": now})
    assert data == f"started_at: '{now}'\n".encode()
    assert canonical.load(data) == {"started_at": now}
