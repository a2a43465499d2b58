"""The three-way union of record files: the core of ``cmfgit merge-driver``.

Records are immutable and named by their hash, so two versions of a record
file never disagree about a record: they only hold different sets of them.
The merge of base O, ours A and theirs B is therefore a set operation::

    result = (A ∪ B) − {r in O : r not in A or r not in B}

A record that either side added survives; a record that the base had and
either side removed (a ``git revert``, a ``git rm``) stays removed. A plain
union would resurrect reverted records. The output is canonical (a pack is
sorted by id), so the merge is commutative, associative and idempotent, and
both merge orders give the same bytes.

Nothing is dropped silently. An input that does not verify (conflict markers
left by an earlier text merge, garbage, a record whose bytes no longer match
its id) makes the merge unclean: every record that still verifies is kept,
the text that does not is kept verbatim between conflict markers after the
records, and each problem is named. A damaged side is also not trusted to
delete anything, since a record missing from it may just be unreadable.

This module is pure (bytes in, bytes out) and lean: it verifies ids with
blake3 only, and never imports yaml.
"""

from __future__ import annotations

import re

from cmfgit import pack
from cmfgit.errors import RecordError

DEFAULT_MARKER_SIZE = 7
_LOOSE_PATH = re.compile(r"(?:^|/)([0-9a-f]{2})/([0-9a-f]{62})\.yaml$")
_PACK_PATH = re.compile(r"(?:^|/)objects/pack/")
_SEPARATOR_LINE = re.compile(rb"^--- # ([0-9a-f]{64})\n$")


class MergeResult:
    """The merged file, whether git may take it as resolved, and what was wrong.

    A plain class: dataclasses would add ~15 ms to the driver's start-up."""

    __slots__ = ("data", "clean", "problems")

    def __init__(self, data: bytes, clean: bool, problems: list[str] | None = None) -> None:
        self.data = data  # the merged file
        self.clean = clean  # False: git must report a conflict (exit 1)
        self.problems = problems if problems is not None else []  # one line each

    def __repr__(self) -> str:
        return f"MergeResult(clean={self.clean}, problems={self.problems!r}, {len(self.data)} bytes)"


class _Side:
    __slots__ = ("records", "fragments", "problems")

    def __init__(self) -> None:
        self.records: dict[str, bytes] = {}
        self.fragments: list[bytes] = []  # text that did not verify, verbatim
        self.problems: list[str] = []

    @property
    def damaged(self) -> bool:
        return bool(self.problems)


def expected_id(path: str) -> str | None:
    """The record id a loose record file must hold, from its path."""
    match = _LOOSE_PATH.search(path)
    return match.group(1) + match.group(2) if match else None


def merge(base: bytes, ours: bytes, theirs: bytes, path: str, marker_size: int = DEFAULT_MARKER_SIZE) -> MergeResult:
    """Three-way union by id of a pack or loose record file (see module doc)."""
    inputs = (base, ours, theirs)
    as_pack = bool(_PACK_PATH.search(path)) or any(_unmarked(d, marker_size).startswith(pack.HEADER) for d in inputs)
    want = None if as_pack else expected_id(path)
    if not as_pack and want is None:
        return _opaque(base, ours, theirs, path, marker_size)

    old = _read(base, "base", want, marker_size, verify=False)
    mine = _read(ours, "ours", want, marker_size, verify=True)
    other = _read(theirs, "theirs", want, marker_size, verify=True)

    merged = dict(mine.records)
    pack.merge_into(merged, other.records.items())
    for rid in old.records:
        if (not mine.damaged and rid not in mine.records) or (not other.damaged and rid not in other.records):
            merged.pop(rid, None)

    if as_pack:
        data = pack.serialize(merged)
    else:
        data = b"".join(merged[rid] for rid in sorted(merged))
    problems = [f"{path}: {p}" for p in mine.problems + other.problems]
    fragments = (mine.fragments, [f for f in other.fragments if f not in mine.fragments])
    if any(fragments):
        data += _conflict_block(*fragments, marker_size)
    return MergeResult(data, not problems, problems)


# -- reading one side -------------------------------------------------------


def _read(data: bytes, label: str, want: str | None, marker_size: int, *, verify: bool) -> _Side:
    side = _Side()
    if not data.strip():
        return side
    try:  # the common case: an intact file, read in one pass
        if want is None:
            side.records = pack.parse(data, label, verify=verify)
            return side
        if pack.digest(data) == want:
            side.records[want] = data
            return side
    except RecordError:
        pass
    versions = [data]
    if _has_markers(data, marker_size):
        side.problems.append(f"{label}: conflict markers from an earlier text merge")
        versions = _resolve_markers(data, marker_size)
    for version in versions:
        if want is None:
            _read_pack(version, label, side, verify)
        else:
            _read_loose(version, label, want, side)
    return side


def salvage(data: bytes, label: str) -> tuple[dict[str, bytes], list[str]]:
    """Every record of a pack that verifies, as the driver reads a side (conflict
    markers resolved both ways), and one line per problem (empty: intact)."""
    side = _read(data, label, None, DEFAULT_MARKER_SIZE, verify=True)
    return side.records, side.problems


def _read_loose(data: bytes, label: str, want: str, side: _Side) -> None:
    if not data.strip():
        return
    if pack.digest(data) == want:
        side.records[want] = data
        return
    _keep_fragment(side, data, f"{label}: record {want[:12]} does not match its id (edited or corrupted)")


def _read_pack(data: bytes, label: str, side: _Side, verify: bool) -> None:
    try:
        pack.merge_into(side.records, pack.parse(data, label, verify=verify).items())
        return
    except RecordError:
        pass  # salvage below: keep every entry that verifies, name the rest
    if not data.startswith(pack.HEADER):
        side.problems.append(f"{label}: not a cmfgit pack (missing '# cmfgit-pack 1' header)")
    current: str | None = None
    chunk: list[bytes] = []

    def close() -> None:
        if not chunk:
            return
        text = b"".join(chunk)
        body = text.split(b"\n", 1)[1] if current is not None else b""
        if current is not None and pack.digest(body) == current:
            side.records.setdefault(current, body)
        elif current is not None:
            _keep_fragment(side, text, f"{label}: record {current[:12]} does not match its id (edited or corrupted)")
        elif text.strip():
            _keep_fragment(side, text, f"{label}: text outside any record: {_excerpt(text)}")
        chunk.clear()

    lines = data.splitlines(keepends=True)
    if lines and lines[0] == pack.HEADER:
        lines = lines[1:]
    for line in lines:
        match = _SEPARATOR_LINE.match(line)
        if match:
            close()
            current = match.group(1).decode()
        chunk.append(line)
    close()


def _keep_fragment(side: _Side, text: bytes, problem: str) -> None:
    if text not in side.fragments:
        side.fragments.append(text)
        side.problems.append(problem)


def _excerpt(text: bytes) -> str:
    first = text.strip().split(b"\n", 1)[0][:40]
    return repr(first.decode("utf-8", "replace"))


# -- conflict markers -------------------------------------------------------


def _marker_re(marker_size: int) -> re.Pattern[bytes]:
    size = max(marker_size, 1)
    return re.compile(rb"^(<{%d}|\|{%d}|={%d}|>{%d})(?: [^\n]*)?\n?$" % (size, size, size, size))


def has_markers(data: bytes, marker_size: int = DEFAULT_MARKER_SIZE) -> bool:
    """True if ``data`` holds conflict-marker lines (a text merge's leftovers)."""
    return _has_markers(data, marker_size)


def _has_markers(data: bytes, marker_size: int) -> bool:
    size = max(marker_size, 1)
    if not any(c * size in data for c in (b"<", b"=", b">")):
        return False  # the common case, without splitting into lines
    pattern = _marker_re(marker_size)
    return any(pattern.match(line) for line in data.splitlines(keepends=True))


def _unmarked(data: bytes, marker_size: int) -> bytes:
    """``data`` with a leading conflict marker line skipped (to sniff the format)."""
    first, _, rest = data.partition(b"\n")
    return rest if _marker_re(marker_size).match(first + b"\n") else data


# (state, marker) -> next state, while reading git's conflict hunks
_HUNK = {
    ("common", b"<"): "ours",
    ("ours", b"|"): "base",
    ("ours", b"="): "theirs",
    ("base", b"="): "theirs",
    ("theirs", b">"): "common",
}


def _resolve_markers(data: bytes, marker_size: int) -> list[bytes]:
    """The two texts git's text merge combined: every hunk taken as ours, and
    as theirs. A diff3 base section is left out: what it holds beyond both
    sides is what both sides deleted. Malformed markers: the text without them."""
    pattern = _marker_re(marker_size)
    lines = data.splitlines(keepends=True)
    texts: dict[str, list[bytes]] = {"ours": [], "base": [], "theirs": []}
    state = "common"
    for line in lines:
        match = pattern.match(line)
        if match:
            state = _HUNK.get((state, match.group(1)[:1]), "malformed")
            if state == "malformed":
                break
            continue
        for name in texts if state == "common" else (state,):
            texts[name].append(line)
    if state != "common":
        return [b"".join(line for line in lines if not pattern.match(line))]
    return [b"".join(texts["ours"]), b"".join(texts["theirs"])]


def _conflict_block(ours: list[bytes], theirs: list[bytes], marker_size: int) -> bytes:
    def body(parts: list[bytes]) -> bytes:
        return b"".join(p if p.endswith(b"\n") else p + b"\n" for p in parts)

    note = b" (cmfgit merge-driver: text that does not verify; fix or delete it, then git add)"
    return (
        b"<" * marker_size
        + b" ours"
        + note
        + b"\n"
        + body(ours)
        + b"=" * marker_size
        + b"\n"
        + body(theirs)
        + b">" * marker_size
        + b" theirs\n"
    )


def _opaque(base: bytes, ours: bytes, theirs: bytes, path: str, marker_size: int) -> MergeResult:
    """A file under .cmf/objects that is neither a pack nor a loose record."""
    if ours == theirs or theirs == base:
        return MergeResult(ours, True)
    if ours == base:
        return MergeResult(theirs, True)
    problem = f"{path}: not a cmfgit record file, and both sides changed it"
    return MergeResult(_conflict_block([ours], [theirs], marker_size), False, [problem])
