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

_LINE = re.compile(r"^(.+)\t(100644|100755)\t(\d+)\t([0-9a-f]{64})$")
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
    for number, line in enumerate(text.splitlines(), 1):
        found = _LINE.match(line)
        if found is None:
            raise CmfgitError(f"{what}: not a directory manifest (line {number})")
        path = unescape(found.group(1))
        parts = path.split("/")
        if path.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise CmfgitError(f"{what}: unsafe path in directory manifest: {path!r}")
        entries.append(Entry(path, found.group(2), int(found.group(3)), found.group(4)))
    return entries
