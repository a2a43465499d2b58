"""The merge driver on hand-made cases: packs, loose files, damage, the entry point."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import ROOT

from cmfgit import canonical, pack
from cmfgit.merge import merge

PACK = ".cmf/objects/pack/site-a/2026-01.yaml"


def rec(n: int) -> tuple[str, bytes]:
    data, rid = canonical.encode({"schema": "cmfgit/execution/1", "n": n, "note": f"record {n}"})
    return rid, data


BY_N = {n: rec(n)[0] for n in range(6)}
R = dict(rec(n) for n in range(6))
IDS = sorted(R)


def packed(*ids: str) -> bytes:
    return pack.serialize({i: R[i] for i in ids})


def ids_of(data: bytes) -> set[str]:
    return set(pack.parse(data))


def test_add_add_with_empty_base_is_the_union() -> None:
    result = merge(b"", packed(IDS[0], IDS[1]), packed(IDS[1], IDS[2]), PACK)
    assert result.clean and not result.problems
    assert result.data == packed(IDS[0], IDS[1], IDS[2])


def test_deletions_relative_to_base_are_honoured() -> None:
    base = packed(IDS[0], IDS[1])
    result = merge(base, packed(IDS[0]), packed(IDS[0], IDS[1], IDS[2]), PACK)
    assert result.clean
    assert ids_of(result.data) == {IDS[0], IDS[2]}


def test_loose_file_identical_and_tampered() -> None:
    rid = BY_N[3]
    path = f".cmf/objects/{rid[:2]}/{rid[2:]}.yaml"
    assert merge(b"", R[rid], R[rid], path).data == R[rid]
    tampered = R[rid].replace(b"record 3", b"record 9")
    result = merge(b"", tampered, R[rid], path)
    assert not result.clean
    assert result.data.startswith(R[rid])  # the record that verifies comes first
    assert tampered in result.data and b"<<<<<<< ours" in result.data
    assert any(rid[:12] in p and "does not match its id" in p for p in result.problems)


def test_text_merge_conflict_markers_are_resolved_without_loss() -> None:
    # What git's own text merge leaves when the driver was not configured.
    base = packed(IDS[0], IDS[5])
    ours, theirs = packed(IDS[0], IDS[1], IDS[5]), packed(IDS[0], IDS[2], IDS[5])
    head = pack.HEADER + pack.SEPARATOR + IDS[0].encode() + b"\n" + R[IDS[0]]
    tail = pack.SEPARATOR + IDS[5].encode() + b"\n" + R[IDS[5]]
    middle = (
        b"<<<<<<< HEAD\n"
        + pack.SEPARATOR
        + IDS[1].encode()
        + b"\n"
        + R[IDS[1]]
        + b"=======\n"
        + pack.SEPARATOR
        + IDS[2].encode()
        + b"\n"
        + R[IDS[2]]
        + b">>>>>>> theirs\n"
    )
    marked = head + middle + tail if IDS[1] < IDS[5] else head + tail + middle
    result = merge(base, marked, theirs, PACK)
    assert not result.clean
    assert any("conflict markers" in p for p in result.problems)
    assert ids_of(result.data) == {IDS[0], IDS[1], IDS[2], IDS[5]}  # a valid pack again
    assert merge(base, ours, theirs, PACK).data == result.data


def test_garbage_keeps_every_valid_record_and_the_garbage() -> None:
    garbage = b"this is not a pack\n\x00\xff\n"
    result = merge(packed(IDS[0]), packed(IDS[0], IDS[1]), garbage, PACK)
    assert not result.clean
    assert any("theirs" in p and "not a cmfgit pack" in p for p in result.problems)
    assert garbage in result.data
    recovered = merge(b"", result.data, b"", PACK)  # the kept text is still readable later
    assert not recovered.clean and IDS[1].encode() in recovered.data and garbage in recovered.data


def test_tampered_record_in_pack_is_named_and_kept() -> None:
    one = BY_N[1]
    good = packed(IDS[0], one)
    bad = good.replace(b"record 1", b"record X")
    result = merge(b"", good, bad, PACK)
    assert not result.clean
    assert [p for p in result.problems if one[:12] in p and "theirs" in p and "does not match its id" in p]
    assert result.data.startswith(good) and b"record X" in result.data
    # The damaged side deletes nothing: a record missing from it may just be unreadable.
    assert merge(good, good, bad, PACK).data.startswith(good)


def test_opaque_files_merge_trivially_or_conflict() -> None:
    assert merge(b"a\n", b"a\n", b"b\n", ".cmf/objects/README").data == b"b\n"
    conflict = merge(b"a\n", b"b\n", b"c\n", ".cmf/objects/README")
    assert not conflict.clean and b"b\n" in conflict.data and b"c\n" in conflict.data


def run_driver(tmp_path: Path, base: bytes, ours: bytes, theirs: bytes, path: str) -> tuple[int, bytes, str]:
    files = []
    for name, data in (("O", base), ("A", ours), ("B", theirs)):
        (tmp_path / name).write_bytes(data)
        files.append(str(tmp_path / name))
    proc = subprocess.run(
        [sys.executable, "-m", "cmfgit", "merge-driver", *files, "7", path],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    return proc.returncode, (tmp_path / "A").read_bytes(), proc.stderr


def test_entry_point_writes_ours_and_exits_by_cleanliness(tmp_path: Path) -> None:
    code, data, err = run_driver(tmp_path, b"", packed(IDS[0]), packed(IDS[1]), PACK)
    assert (code, err) == (0, "")
    assert data == packed(IDS[0], IDS[1])
    code, data, err = run_driver(tmp_path, b"", packed(IDS[0]), b"<<<<<<< x\ngarbage\n", PACK)
    assert code == 1
    assert PACK in err and "theirs" in err
    assert data.startswith(packed(IDS[0])) and b"garbage" in data
    bad = subprocess.run([sys.executable, "-m", "cmfgit", "merge-driver", "only-one"], capture_output=True, text=True)
    assert bad.returncode == 2 and "usage" in bad.stderr and "Traceback" not in bad.stderr


def test_entry_point_imports_stay_lean() -> None:
    code = (
        "import sys; from cmfgit import merge_driver; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'yaml', 'typer', 'click', 'rich', 'pydantic'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"


def test_diff3_markers_do_not_resurrect_what_both_sides_deleted() -> None:
    def entry(rid: str) -> bytes:
        return pack.SEPARATOR + rid.encode() + b"\n" + R[rid]

    a, gone, b = IDS[0], IDS[1], IDS[2]
    marked = (
        pack.HEADER
        + b"<<<<<<< ours\n"
        + entry(a)
        + b"||||||| base\n"
        + entry(gone)
        + b"=======\n"
        + entry(b)
        + b">>>>>>> theirs\n"
    )
    result = merge(b"", marked, b"", PACK)
    assert not result.clean
    assert set(pack.parse(result.data)) == {a, b}
