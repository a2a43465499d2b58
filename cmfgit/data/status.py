"""``cmfgit status``: each recorded artifact path against its latest recorded version.

A path is ``unchanged`` (it holds the bytes recorded last at it),
``modified``, ``missing``, or ``never recorded``: a path the user named that
no record has, or a file in the neighbourhood of recorded ones that no record
has. The neighbourhood, kept small so that status stays fast, is:

- inside a recorded directory that is modified: the files its latest
  manifest lacks (each one; that directory is hashed anyway);
- beside a recorded file or directory: the other entries of its parent
  directory (one level, not recursive; a directory is one row ``dir/``),
  except the top of the repository (code, not a data directory), names
  starting with a dot, paths that lead to recorded ones, and files git
  tracks (git's own status shows those).

Beside that: whether the version's bytes are in this
clone's cache, and, when asked, on a data remote. Working-tree files are
hashed through the stat cache, so a second status reads nothing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cmfgit import gitutil
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


def _new_in_dir(root: Path, cache: Cache, art: Artifact) -> list[str]:
    """Files in the recorded directory ``art`` that its latest manifest lacks."""
    entries = cache.manifest(art.hex) if art.storable else None
    if entries is None:  # not cached: what the version held is not known here
        return []
    known = {e.path for e in entries}
    top = root / art.path
    found: list[str] = []
    for directory, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        rel_dir = os.path.relpath(directory, top)
        for name in files:
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            if not name.startswith(".") and rel.replace(os.sep, "/") not in known:
                found.append(f"{art.path}/{rel}")
    return found


def _tracked(root: Path, dirs: list[str]) -> set[str]:
    """The files git tracks under ``dirs``."""
    if not dirs:
        return set()
    many = len(dirs) > 200  # too many to name on a command line: list the index, then filter
    out = gitutil.git(["ls-files", "-z", "--", *([] if many else [f":(literal){d}" for d in dirs])], root, check=False)
    found = {p for p in out.decode("utf-8", "surrogateescape").split("\0") if p}
    if many:
        wanted = set(dirs)
        found = {p for p in found if any(p.rsplit("/", i)[0] in wanted for i in range(1, p.count("/") + 1))}
    return found


def never_recorded(root: Path, cache: Cache, rows: list[PathStatus], latest: list[Artifact]) -> list[str]:
    """Paths in the neighbourhood of recorded ones that no record has (the module's rule)."""
    recorded = {a.path for a in latest}
    leads = {p.rsplit("/", i)[0] for p in recorded for i in range(1, p.count("/") + 1)}
    found: list[str] = []
    by_path = {a.path: a for a in latest}
    for row in rows:
        art = by_path.get(row.path)
        if art is not None and art.kind == "dir" and row.state == MODIFIED:
            found += [p for p in _new_in_dir(root, cache, art) if p not in recorded]
    inside = [p + "/" for p, a in by_path.items() if a.kind == "dir"]
    parents = [
        parent
        for parent in sorted({p.rpartition("/")[0] for p in recorded} - {""})
        if not (parent + "/").startswith(".cmf/") and not any((parent + "/").startswith(d) for d in inside)
    ]
    tracked = _tracked(root, parents)
    for parent in parents:
        try:
            entries = list(os.scandir(root / parent))
        except OSError:  # missing, or not a directory: its recorded paths say so
            continue
        for entry in entries:
            rel = f"{parent}/{entry.name}"
            if entry.name.startswith(".") or rel in recorded or rel in leads or rel in tracked:
                continue
            if entry.is_dir(follow_symlinks=False):
                if not any(t.startswith(rel + "/") for t in tracked):
                    found.append(rel + "/")
            else:
                found.append(rel)
    return sorted(set(found))


def status(
    root: Path,
    cache: Cache,
    latest: list[Artifact],
    never: list[str],
    backend: Backend | None = None,
    aliases: Mapping[str, str] | None = None,
) -> list[PathStatus]:
    """The status of each latest version (one per path), and of paths never recorded.

    On a remote with DVC's layout, an md5 artifact is there if its object (file, or
    directory listing) is, in DVC 3's or DVC 2's layout; on a DVC-layout remote
    (``layout: dvc``), a blake3 artifact is there if the object of its md5 alias
    (``aliases``: blake3 hash -> md5 hex) is."""
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
        by_md5: dict[str, str] = {}  # path -> the md5 it is read by from this remote
        for item, art in zip(out, sorted(latest, key=lambda a: a.path)):
            md5 = art.md5hex or ((aliases or {}).get(art.hash) if backend.layout == "dvc" else None)
            if md5 is not None:
                by_md5[item.path] = md5
                continue
            if not art.storable:
                continue
            if backend.layout == "dvc":  # no md5 to read it by: not there for cmfgit
                item.remote = False
                continue
            objects = [art.hex]
            if art.kind == "dir":
                objects += [e.hex for e in cache.manifest(art.hex) or []]
            keys[item.path] = [object_key(h) for h in objects]
        missing = backend.missing(sorted({k for ks in keys.values() for k in ks}))
        for item in out:
            if item.path in keys:
                item.remote = not any(k in missing for k in keys[item.path])
        if by_md5:
            from cmfgit.data import dvclayout

            if dvclayout.reads_md5(backend):
                there = dvclayout.present(backend, by_md5.values())
                there |= dvclayout.present(backend, set(by_md5.values()) - there, dvclayout.DIR)
            else:
                there = set()
            for item in out:
                if item.path in by_md5:
                    item.remote = by_md5[item.path] in there
    out += [PathStatus(p, NEVER, None, None, None) for p in sorted(never)]
    return out
