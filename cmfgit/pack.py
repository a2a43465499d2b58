"""The pack file format: many records in one file.

A pack is a YAML stream whose documents are canonical records, sorted by id::

    # cmfgit-pack 1
    --- # <64-hex id>
    <canonical record bytes>
    --- # <64-hex id>
    ...

Each record keeps its exact canonical bytes, so an id is checked with one
blake3 call and packs are split, unioned and rewritten without parsing YAML.
The separator cannot occur inside a canonical record: at column 0 a record
only has keys and ``- `` items, and never a multi-line scalar. Sorting keeps
packs diffable.

A pack is written once and never rewritten: its file is named by its period
and by its content, ``<period>-<16 hex of blake3 of the pack bytes>.yaml``
(:func:`file_name`), so two gcs never write one path with different bytes and
the same records always give the same name. Packs named ``<period>.yaml``
were written by earlier versions, which rewrote them; they are still read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from blake3 import blake3

from cmfgit.errors import RecordError

# Not imported from canonical.py: the merge driver reads packs and must not pay
# for importing yaml. Keep in step with canonical.ID_HEX_LEN / canonical.digest.
ID_HEX_LEN = 64


def digest(data: bytes) -> str:
    """blake3 of ``data``, as canonical.digest (the id of canonical bytes)."""
    return blake3(data).hexdigest()  # type: ignore[no-any-return]


NAME_HASH_LEN = 16  # hex digits of the pack's blake3 in its file name
_NAMED = re.compile(r"^(.+)-[0-9a-f]{16}\.yaml$")  # NAME_HASH_LEN hex digits


def file_name(period: str, data: bytes) -> str:
    """The file name of the pack ``data`` of ``period``: ``<period>-<16 hex of its blake3>.yaml``."""
    return f"{period}-{digest(data)[:NAME_HASH_LEN]}.yaml"


def period_of(name: str) -> str:
    """The period a pack's file name gives (``2026-03-<hash>.yaml`` and the older ``2026-03.yaml``)."""
    match = _NAMED.match(name)
    if match:
        return match.group(1)
    return name[:-5] if name.endswith(".yaml") else name


def is_write_once(name: str) -> bool:
    """Is this a content-named pack (not one of the rewritten ``<period>.yaml`` of earlier versions)?"""
    return bool(_NAMED.match(name))


HEADER = b"# cmfgit-pack 1\n"
SEPARATOR = b"--- # "
_HEX = frozenset(b"0123456789abcdef")


def serialize(records: Mapping[str, bytes]) -> bytes:
    """The pack holding ``records`` (id -> canonical bytes), sorted by id."""
    parts = [HEADER]
    for rid in sorted(records):
        parts += [SEPARATOR, rid.encode(), b"\n", records[rid]]
    return b"".join(parts)


def parse(data: bytes, where: str = "pack", verify: bool = True) -> dict[str, bytes]:
    """id -> canonical bytes of every record in a pack.

    With ``verify`` each id is checked against its bytes (one blake3 per
    record). Any damage, including conflict markers left by a text merge,
    raises RecordError naming the pack and the record.
    """
    if not data.startswith(HEADER):
        raise RecordError(where, "not a cmfgit pack (missing '# cmfgit-pack 1' header)")
    body = data[len(HEADER) :]
    if not body:
        return {}
    if not body.startswith(SEPARATOR) or not body.endswith(b"\n"):
        raise RecordError(where, "damaged pack (bad start or end; conflict markers?)")
    records: dict[str, bytes] = {}
    previous = ""
    for chunk in (b"\n" + body[:-1]).split(b"\n" + SEPARATOR)[1:]:
        rid_bytes, newline, record = chunk[:ID_HEX_LEN], chunk[ID_HEX_LEN : ID_HEX_LEN + 1], chunk[ID_HEX_LEN + 1 :]
        if len(rid_bytes) != ID_HEX_LEN or newline != b"\n" or not _HEX.issuperset(rid_bytes):
            raise RecordError(where, f"damaged pack entry after {previous[:12] or 'the header'}")
        rid = rid_bytes.decode()
        record += b"\n"
        if verify and digest(record) != rid:
            raise RecordError(where, f"record {rid[:12]} does not match its id (edited or corrupted)")
        if rid <= previous:
            raise RecordError(where, f"record {rid[:12]} is out of order or duplicated")
        records[rid] = record
        previous = rid
    return records


# A conflict-marker line (git's default size), as a text merge leaves at the end of an entry.
_MARKERS = (b"<<<<<<<", b"|||||||", b"=======", b">>>>>>>")


def _strip_markers(body: bytes) -> bytes:
    """``body`` without the conflict-marker lines at its end."""
    while body:
        cut = body.rfind(b"\n", 0, len(body) - 1) + 1
        line = body[cut:]
        if line[:7] not in _MARKERS or line[7:8] not in (b" ", b"\n"):
            break
        body = body[:cut]
    return body


def salvage(data: bytes) -> tuple[list[tuple[str, int, int]], list[str | None]]:
    """Every record of a pack, damaged or not, whose bytes still match its id.

    Returns ``(id, offset, length)`` of each such record, in file order, and
    the damaged entries: the id of each one whose bytes do not match (None
    for text that is not an entry at all, or a missing header). Conflict
    markers that a text merge left after an intact record do not spoil it.
    """
    found: list[tuple[str, int, int]] = []
    damaged: list[str | None] = []
    seen: set[str] = set()
    start = len(HEADER) if data.startswith(HEADER) else 0
    at = start
    if data[start : start + len(SEPARATOR)] != SEPARATOR:
        nxt = data.find(b"\n" + SEPARATOR, start)
        at = nxt + 1 if nxt >= 0 else len(data)
    if not start or _strip_markers(data[start:at]).strip():
        damaged.append(None)  # no header, or text before the first entry
    while at < len(data):
        nxt = data.find(b"\n" + SEPARATOR, at)
        end = nxt + 1 if nxt >= 0 else len(data)
        body_at = at + len(SEPARATOR) + ID_HEX_LEN + 1
        rid_bytes = data[at + len(SEPARATOR) : body_at - 1]
        if len(rid_bytes) != ID_HEX_LEN or data[body_at - 1 : body_at] != b"\n" or not _HEX.issuperset(rid_bytes):
            damaged.append(None)
        else:
            rid = rid_bytes.decode()
            body = data[body_at:end]
            if digest(body) != rid:
                body = _strip_markers(body)
            if body and digest(body) == rid:
                if rid not in seen:
                    seen.add(rid)
                    found.append((rid, body_at, len(body)))
            else:
                damaged.append(rid)
        at = end
    return found, damaged


def merge_into(base: dict[str, bytes], more: Iterable[tuple[str, bytes]]) -> dict[str, bytes]:
    for rid, data in more:
        base.setdefault(rid, data)
    return base
