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
packs diffable, and lets git's own text merge combine most concurrent edits.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from blake3 import blake3

from cmfgit.errors import RecordError

# Not imported from canonical.py: the merge driver reads packs and must not pay
# for importing yaml. Keep in step with canonical.ID_HEX_LEN / canonical.digest.
ID_HEX_LEN = 64


def digest(data: bytes) -> str:
    """blake3 of ``data``, as canonical.digest (the id of canonical bytes)."""
    return blake3(data).hexdigest()  # type: ignore[no-any-return]


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


def merge_into(base: dict[str, bytes], more: Iterable[tuple[str, bytes]]) -> dict[str, bytes]:
    for rid, data in more:
        base.setdefault(rid, data)
    return base
