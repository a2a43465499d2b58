"""A directory's manifest object (format.md §5), read back.

The manifest is the text whose blake3 is the directory's identity: one line
``<path>\\t<mode>\\t<size>\\t<blake3 hex>\\n`` per file. In the cache and on a
remote it is stored as an object like any file, so a directory is its
manifest object plus one object per file, and files shared by two versions
of a dataset are stored once.
"""

from __future__ import annotations

import re
from collections import namedtuple

from cmfgit.errors import CmfgitError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NamedTuple

    class Entry(NamedTuple):
        path: str  # relative, '/'-separated, unescaped
        mode: str  # '100644' or '100755'
        size: int
        hex: str  # blake3 hex of the file's bytes

else:
    Entry = namedtuple("Entry", "path mode size hex")

_MODES = frozenset({"100644", "100755"})
_HEX = frozenset("0123456789abcdef")
_DOTS = {".", ".."}
_ESCAPE = re.compile(r"\\(.)")
_UNESCAPE = {"\\": "\\", "t": "\t", "n": "\n"}


def unescape(rel: str) -> str:
    if "\\" not in rel:
        return rel
    return _ESCAPE.sub(lambda m: _UNESCAPE.get(m.group(1), m.group(0)), rel)


def parse(data: bytes, what: str) -> list[Entry]:
    """The entries of a manifest; a CmfgitError naming ``what`` if it is not one."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise CmfgitError(f"{what}: not a directory manifest (not UTF-8)") from None
    if text and not text.endswith("\n"):
        raise CmfgitError(f"{what}: not a directory manifest (no final newline)")
    entries: list[Entry] = []
    append = entries.append
    # Once per file of a dataset (10,000 for a no-op push): split, not a regex per line.
    for number, line in enumerate(text.split("\n")[:-1] if text else [], 1):
        fields = line.split("\t")
        if (
            len(fields) != 4
            or fields[1] not in _MODES
            or not (fields[2].isascii() and fields[2].isdigit())
            or len(fields[3]) != 64
            or not _HEX.issuperset(fields[3])
            or not fields[0]
        ):
            raise CmfgitError(f"{what}: not a directory manifest (line {number})")
        path = unescape(fields[0]) if "\\" in fields[0] else fields[0]
        if path[0] == "/" or "//" in path or path[-1] == "/" or ("." in path and _DOTS & set(path.split("/"))):
            raise CmfgitError(f"{what}: unsafe path in directory manifest: {path!r}")
        append(Entry(path, fields[1], int(fields[2]), fields[3]))
    return entries
