"""``cmfgit status``: each recorded artifact path against its latest recorded version.

A path is ``unchanged`` (it holds the bytes recorded last at it),
``modified``, ``missing``, or ``never recorded`` (a path the user named that
no record has). Beside that: whether the version's bytes are in this
clone's cache, and, when asked, on a data remote. Working-tree files are
hashed through the stat cache, so a second status reads nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cmfgit.data.cache import Cache
from cmfgit.data.remote import Backend, object_key
from cmfgit.data.selection import Artifact
from cmfgit.errors import PathError

UNCHANGED, MODIFIED, MISSING, NEVER = "unchanged", "modified", "missing", "never recorded"


@dataclass
class PathStatus:
    path: str
    state: str
    hash: str | None  # the latest recorded version
    kind: str | None
    cached: bool | None  # None: no bytes to cache (md5, external)
    remote: bool | None = None  # None: not asked

    def as_json(self) -> dict[str, object]:
        return {
            "path": self.path,
            "state": self.state,
            "hash": self.hash,
            "kind": self.kind,
            "cached": self.cached,
            "remote": self.remote,
        }


def _state(root: Path, cache: Cache, art: Artifact) -> str:
    full = root / art.path
    if not os.path.lexists(full):
        return MISSING
    if art.kind == "dir" and not full.is_dir() or art.kind == "file" and not full.is_file():
        return MODIFIED
    try:
        return UNCHANGED if cache.hasher.hash_path(full, art.path).hash == art.hash else MODIFIED
    except PathError:
        return MODIFIED


def _md5_state(root: Path, cache: Cache, art: Artifact) -> str:
    """An artifact known only by CMF's md5: through the stat cache as the blake3 object it
    was fetched as, else its bytes read and compared (a directory as DVC's listing of it)."""
    from dataclasses import replace

    from cmfgit.data import dvclayout

    found = dvclayout.cached(cache, art.md5hex or "")
    if found is not None:
        return _state(root, cache, replace(art, hash=f"blake3:{found[0]}", kind=found[1]))
    full = root / art.path
    if not os.path.lexists(full):
        return MISSING
    try:
        if full.is_dir():
            return UNCHANGED if dvclayout.tree_md5(full) == art.md5hex else MODIFIED
        if not full.is_file():
            return MODIFIED
        return UNCHANGED if dvclayout.file_md5(full) == art.md5hex else MODIFIED
    except OSError:  # unreadable: not the recorded bytes, as far as status can tell
        return MODIFIED


def _cached(cache: Cache, art: Artifact) -> bool | None:
    if art.md5hex:
        from cmfgit.data import dvclayout

        return dvclayout.cached(cache, art.md5hex) is not None
    if not art.storable:
        return None
    return cache.has_tree(art.hex) if art.kind == "dir" else cache.has(art.hex)


def status(
    root: Path, cache: Cache, latest: list[Artifact], never: list[str], backend: Backend | None = None
) -> list[PathStatus]:
    """The status of each latest version (one per path), and of paths never recorded."""
    out: list[PathStatus] = []
    for art in sorted(latest, key=lambda a: a.path):
        if art.md5hex:
            state = _md5_state(root, cache, art)
        elif art.kind in ("file", "dir"):
            state = _state(root, cache, art)
        else:  # nothing recorded to compare with
            state = MISSING if not os.path.lexists(root / art.path) else UNCHANGED
        out.append(PathStatus(art.path, state, art.hash, art.kind, _cached(cache, art)))
    if backend is not None:
        keys: dict[str, list[str]] = {}
        for item, art in zip(out, sorted(latest, key=lambda a: a.path)):
            if not art.storable:
                continue
            objects = [art.hex]
            if art.kind == "dir":
                objects += [e.hex for e in cache.manifest(art.hex) or []]
            keys[item.path] = [object_key(h) for h in objects]
        missing = backend.missing(sorted({k for ks in keys.values() for k in ks}))
        for item in out:
            if item.path in keys:
                item.remote = not any(k in missing for k in keys[item.path])
    out += [PathStatus(p, NEVER, None, None, None) for p in sorted(never)]
    return out
