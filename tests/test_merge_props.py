"""Properties of the three-way union (hypothesis, on the pure function and the entry point)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from cmfgit import canonical, merge_driver, pack
from cmfgit.merge import merge

PACK = ".cmf/objects/pack/edge-1/2026-03.yaml"
UNIVERSE = dict(
    canonical.encode({"schema": "cmfgit/execution/1", "n": n, "params": {"lr": n / 10, "s": "no"}})[::-1]
    for n in range(10)
)
IDS = sorted(UNIVERSE)

subsets = st.frozensets(st.sampled_from(IDS))
merge_settings = settings(max_examples=150, deadline=None)


def packed(ids: frozenset[str]) -> bytes:
    return pack.serialize({i: UNIVERSE[i] for i in ids})


def ids_of(data: bytes) -> frozenset[str]:
    return frozenset(pack.parse(data))


def m(o: frozenset[str], a: frozenset[str], b: frozenset[str]) -> bytes:
    result = merge(packed(o), packed(a), packed(b), PACK)
    assert result.clean and not result.problems
    return result.data


@merge_settings
@given(subsets, subsets, subsets)
def test_result_is_union_minus_deletions(o: frozenset[str], a: frozenset[str], b: frozenset[str]) -> None:
    got = ids_of(m(o, a, b))
    assert got == (a | b) - {r for r in o if r not in a or r not in b}
    assert (a | b) - o <= got  # never drops a record the base lacked
    assert not (o - a) & got and not (o - b) & got  # deletions relative to base are honoured


@merge_settings
@given(subsets, subsets, subsets)
def test_commutative_and_canonical(o: frozenset[str], a: frozenset[str], b: frozenset[str]) -> None:
    data = m(o, a, b)
    assert data == m(o, b, a)
    assert data == packed(ids_of(data))  # canonical bytes: sorted, one entry per id


@merge_settings
@given(subsets, subsets, subsets, subsets)
def test_associative(o: frozenset[str], a: frozenset[str], b: frozenset[str], c: frozenset[str]) -> None:
    left = merge(packed(o), m(o, a, b), packed(c), PACK).data
    right = merge(packed(o), packed(a), m(o, b, c), PACK).data
    assert left == right


@merge_settings
@given(subsets, subsets)
def test_idempotent(o: frozenset[str], a: frozenset[str]) -> None:
    assert m(o, a, a) == packed(a)
    assert m(a, a, a) == packed(a)
    assert m(frozenset(), a, frozenset()) == packed(a)


damage_kinds = st.sampled_from(["garbage", "tamper", "markers", "truncate"])


def damage(data: bytes, kind: str, where: int) -> tuple[bytes, bytes]:
    """A damaged version of ``data`` and a piece of it that must survive verbatim."""
    if kind == "garbage":
        junk = b"\x00 not yaml: [\n"
        cut = len(pack.HEADER) + where % max(1, len(data) - len(pack.HEADER))
        cut = data.rfind(b"\n", 0, cut) + 1 or len(pack.HEADER)
        return data[:cut] + junk + data[cut:], junk
    if kind == "tamper":
        target = data.find(b"n: ") if b"n: " in data else -1
        if target < 0:
            return data + b"stray\n", b"stray\n"
        edited = data[:target] + b"n: 99" + data[target + 4 :]
        line_end = edited.index(b"\n", target)
        return edited, edited[target : line_end + 1]
    if kind == "markers":
        return b"<<<<<<< HEAD\n" + data + b"=======\n>>>>>>> other\n", b""
    cut = max(len(pack.HEADER) + 1, len(data) - 1 - where % 40)
    return data[:cut], b""


@merge_settings
@given(subsets, subsets, subsets, damage_kinds, st.integers(0, 10_000), st.booleans())
def test_malformed_side_is_unclean_and_loses_nothing(
    o: frozenset[str], a: frozenset[str], b: frozenset[str], kind: str, where: int, damage_ours: bool
) -> None:
    bad, kept_text = damage(packed(a), kind, where)
    ours, theirs = (bad, packed(b)) if damage_ours else (packed(b), bad)
    result = merge(packed(o), ours, theirs, PACK)
    if bad == packed(a):
        return
    assert not result.clean and result.problems
    # Every record that still verifies in the damaged side survives, and so does
    # every record of the clean side except what the clean side itself deleted.
    salvaged = {r for r in a if pack.SEPARATOR + r.encode() + b"\n" + UNIVERSE[r] in bad}
    present = {r for r in IDS if pack.SEPARATOR + r.encode() + b"\n" + UNIVERSE[r] in result.data}
    assert salvaged | b <= present | {r for r in o if r not in b}
    assert (salvaged | b) - o <= present
    assert kept_text in result.data


@merge_settings
@given(subsets, subsets, st.sampled_from(["garbage", "tamper", "markers"]))
def test_entry_point_exit_code_and_file(a: frozenset[str], b: frozenset[str], kind: str) -> None:
    bad, kept_text = damage(packed(a), kind, 7)
    with tempfile.TemporaryDirectory() as tmp:
        files = [Path(tmp, n) for n in "OAB"]
        for path, data in zip(files, (b"", packed(b), bad)):
            path.write_bytes(data)
        code = merge_driver.main([str(f) for f in files] + ["7", PACK])
        written = files[1].read_bytes()
    expected = merge(b"", packed(b), bad, PACK)
    assert written == expected.data
    assert code == (0 if expected.clean else 1)
    if bad != packed(a):
        assert code == 1 and kept_text in written
        assert all(pack.SEPARATOR + r.encode() + b"\n" + UNIVERSE[r] in written for r in b)


@merge_settings
@given(st.sampled_from(IDS), st.booleans())
def test_loose_file(rid: str, tamper_theirs: bool) -> None:
    path = f".cmf/objects/{rid[:2]}/{rid[2:]}.yaml"
    good = UNIVERSE[rid]
    assert merge(b"", good, good, path).data == good
    bad = good.replace(b"n: ", b"n: 1")
    ours, theirs = (good, bad) if tamper_theirs else (bad, good)
    result = merge(good, ours, theirs, path)
    assert not result.clean and result.data.startswith(good) and bad in result.data
