"""Putting cached bytes at paths: ``checkout``, the placing half of ``pull``, and ``get``.

Every file is written to a temp name beside it and renamed over the target,
so a reader (or a ``kill -9``) never sees half a file. Placed files are not
fsynced (as DVC's workspace files are not): a power loss may lose or tear
the last placement; a ``kill -9`` never leaves half a file under its name. A pull's small
objects are written from the verified bytes its fetch read (``ready``),
the same bytes that entered the cache. A path whose current
bytes would be lost is *modified*: its bytes are not in the cache (so no
record's version could bring them back). Modified paths are refused, all of
them named and nothing written, unless ``force`` is given. A file that
already holds the wanted bytes is left alone (checked through the stat cache).

A directory is made to match its manifest exactly: files are written or
re-moded, and files the manifest does not have are removed (when their
bytes are cached, or with ``force``).

Paths are checked before anything is written, for every artifact of the
command (all or nothing):

- A recorded path must stay inside the working tree and outside ``.git`` and
  ``.cmf``: an absolute path, a ``..`` component or a ``.git`` one (a
  hand-made record) is refused, even with ``force``.
- A parent that is a file is refused, even with ``force`` (its bytes are
  not the artifact's to drop). A parent that is a symbolic link is followed:
  a link to a data volume is a valid place for artifacts.
- A symbolic link at the recorded path is left alone when it leads to the
  wanted bytes, else refused; ``force`` replaces the link itself, and what
  it points to is never written (as git checks out over a link).
"""

from __future__ import annotations

import os
import re
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path

from cmfgit.data import copying
from cmfgit.data.cache import Cache
from cmfgit.data.manifest import unescape
from cmfgit.data.selection import Artifact
from cmfgit.errors import CmfgitError, MissingObjectError
from cmfgit.fsutil import atomic_write

MODES = {"100644": 0o644, "100755": 0o755}
IN_CACHE = "the cache ('cmfgit artifact fetch' brings it from a data remote)"
_LEFTOVER = re.compile(r"^\.tmp-(\d+)-[0-9a-f]{8}-")


def _leftover(name: str) -> bool:
    """Is ``name`` the temp file of a placement whose process died (``kill -9``)?"""
    found = _LEFTOVER.match(name)
    if found is None:
        return False
    try:
        os.kill(int(found.group(1)), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError, ValueError):
        return False
    return False  # alive: another placement is under way


def _leftovers_beside(target: str) -> list[str]:
    """Temp files that a killed placement of ``target`` left in its directory."""
    directory, name = os.path.split(target)
    try:
        names = os.listdir(directory or ".")
    except OSError:
        return []
    tail = "-" + name[:40]
    return [os.path.join(directory, n) for n in names if n.endswith(tail) and _leftover(n)]


@dataclass
class _Plan:
    shown: str
    writes: list[tuple[str, str, int]] = field(default_factory=list)  # (target, object hex, mode)
    chmods: list[tuple[str, int]] = field(default_factory=list)
    removes: list[str] = field(default_factory=list)  # files, or a directory where a file goes
    modified: list[str] = field(default_factory=list)  # what would be lost
    links: list[str] = field(default_factory=list)  # symbolic links that would be replaced
    unchanged: bool = False
    fresh: bool = False  # nothing was at the target: no directory can be where a file goes


@dataclass
class PlaceResult:
    placed: list[str] = field(default_factory=list)  # paths written (wholly or in part)
    unchanged: list[str] = field(default_factory=list)
    files: int = 0  # files written
    removed: int = 0  # files removed from directories

    def as_json(self) -> dict[str, object]:
        return {"placed": self.placed, "unchanged": self.unchanged, "files": self.files, "removed": self.removed}


def _safe(cache: Cache, hexhash: str) -> bool:
    return cache.has(hexhash)


def _plan_file(cache: Cache, target: str, hexhash: str, mode: int, shown: str, plan: _Plan) -> None:
    plan.removes += _leftovers_beside(target)
    try:
        st = os.stat(target)
    except FileNotFoundError:
        if os.path.islink(target):
            plan.removes.append(target)  # a broken link: nothing to lose
        plan.writes.append((target, hexhash, mode))
        return
    if stat.S_ISDIR(st.st_mode):
        digest, files = cache.hasher.hash_tree(target, shown)
        plan.modified += [os.path.join(shown, f.rel) for f in files if not _safe(cache, f.hex)]
        plan.removes.append(target)
        plan.writes.append((target, hexhash, mode))
        return
    current = cache.hasher.hash_path(target, shown).hash[len("blake3:") :]
    if current == hexhash:
        if (st.st_mode & 0o111 != 0) != (mode & 0o111 != 0):
            plan.chmods.append((target, mode))
        return
    if not _safe(cache, current):
        plan.modified.append(shown)
    plan.writes.append((target, hexhash, mode))


def check_path(root: str, rel: str) -> None:
    """Refuse a recorded path that leaves the working tree, or one whose parent is a file."""
    parts = rel.split("/")
    if (
        not rel
        or os.path.isabs(rel)
        or "\\" in rel
        or any(p in ("", ".", "..") for p in parts)
        or parts[0] == ".cmf"
        or any(p.lower() == ".git" for p in parts)
    ):
        raise CmfgitError(
            f"refused to place '{rel}': a recorded path must stay inside the working tree,"
            " outside .git and .cmf (a hand-made record?); nothing placed"
        )
    current = root
    for i, part in enumerate(parts[:-1]):
        current = os.path.join(current, part)
        if os.path.lexists(current) and not os.path.isdir(current):
            raise CmfgitError(
                f"cannot place {rel}: {'/'.join(parts[: i + 1])} is a file, not a directory (nothing placed)"
            )


def _link_holds(cache: Cache, target: str, hexhash: str, kind: str, shown: str) -> bool:
    """Does the symbolic link ``target`` lead to the wanted bytes already?"""
    try:
        if kind == "dir":
            return os.path.isdir(target) and cache.hasher.hash_tree(target, shown)[0].hash == f"blake3:{hexhash}"
        return os.path.isfile(target) and cache.hasher.hash_path(target, shown).hash == f"blake3:{hexhash}"
    except CmfgitError:
        return False


def plan_one(cache: Cache, target: str, hexhash: str, kind: str, shown: str, mode: int = 0o644) -> _Plan:
    """What placing object ``hexhash`` (a file, or a directory's manifest) at ``target`` takes."""
    plan = _Plan(shown)
    if os.path.islink(target):
        if not (cache.has_tree(hexhash) if kind == "dir" else cache.has(hexhash)):
            raise MissingObjectError(f"blake3:{hexhash}", IN_CACHE, shown)
        if _link_holds(cache, target, hexhash, kind, shown):
            plan.unchanged = True
            return plan
        plan.links.append(f"{shown} is a symbolic link (to {os.readlink(target)})")
        plan.removes.append(target)  # the link itself (with force): what it points to stays
        if kind != "dir":
            plan.writes.append((target, hexhash, mode))
            return plan
        for e in cache.manifest(hexhash) or []:
            plan.writes.append((os.path.join(target, e.path), e.hex, MODES[e.mode]))
        return plan
    if kind != "dir":
        if not cache.has(hexhash):
            raise MissingObjectError(f"blake3:{hexhash}", IN_CACHE, shown)
        _plan_file(cache, target, hexhash, mode, shown, plan)
        plan.unchanged = not (plan.writes or plan.chmods or plan.removes)
        return plan
    entries = cache.manifest(hexhash)
    if entries is None:
        raise MissingObjectError(f"blake3:{hexhash}", IN_CACHE, shown)
    absent = cache.missing([e.hex for e in entries])  # one listing per shard, not a stat per file
    for e in entries:
        if e.hex in absent:
            raise MissingObjectError(f"blake3:{e.hex}", IN_CACHE, f"{shown}/{e.path}")
    current: dict[str, tuple[str, int]] = {}
    if os.path.isdir(target):
        digest, files = cache.hasher.hash_tree(target, shown)
        if digest.hash == f"blake3:{hexhash}":
            plan.unchanged = True
            return plan
        current = {}
        for f in files:
            rel = unescape(f.rel)
            if _leftover(rel.rpartition("/")[2]):
                plan.removes.append(os.path.join(target, rel))  # a killed placement's temp: nothing to lose
            else:
                current[rel] = (f.hex, f.st.st_mode)
    elif os.path.lexists(target):
        _plan_file_in_the_way(cache, target, shown, plan)
    else:
        plan.fresh = True
    wanted = {e.path for e in entries}
    for rel, (hexnow, _mode) in sorted(current.items()):
        if rel not in wanted:
            if not _safe(cache, hexnow):
                plan.modified.append(f"{shown}/{rel}")
            plan.removes.append(os.path.join(target, rel))
    for e in entries:
        full = os.path.join(target, e.path)
        mode = MODES[e.mode]
        have = current.get(e.path)
        if have is None:
            plan.writes.append((full, e.hex, mode))
        elif have[0] == e.hex:
            if (have[1] & 0o111 != 0) != (mode & 0o111 != 0):
                plan.chmods.append((full, mode))
        else:
            if not _safe(cache, have[0]):
                plan.modified.append(f"{shown}/{e.path}")
            plan.writes.append((full, e.hex, mode))
    plan.unchanged = not (plan.writes or plan.chmods or plan.removes)
    return plan


def _plan_file_in_the_way(cache: Cache, target: str, shown: str, plan: _Plan) -> None:
    if os.path.exists(target):
        current = cache.hasher.hash_path(target, shown).hash[len("blake3:") :]
        if not _safe(cache, current):
            plan.modified.append(shown)
    plan.removes.append(target)


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def _prune_empty(path: str, stop: str) -> None:
    parent = os.path.dirname(path)
    while parent and parent != stop and parent.startswith(stop):
        try:
            os.rmdir(parent)
        except OSError:
            return
        parent = os.path.dirname(parent)


def execute(
    cache: Cache, plan: _Plan, top: str, ready: dict[str, bytes] | None = None, jobs: int = 1
) -> tuple[int, int]:
    """Carry out a plan: (files written, files removed). ``ready``: verified bytes of
    cached objects already in memory (a pull's fetch leaves them), written from there
    instead of copied from the cache; ``jobs``: threads for a plan of many files."""
    removed = 0
    for path in plan.removes:
        _remove(path)
        removed += 1
        if path != top and path.startswith(top + os.sep):
            _prune_empty(path, top)
    made: set[str] = set()
    for target, _hexhash, _mode in plan.writes:
        parent = os.path.dirname(target)
        if parent not in made:
            os.makedirs(parent, exist_ok=True)  # once per directory
            made.add(parent)
        if not plan.fresh and os.path.isdir(target) and not os.path.islink(target):
            shutil.rmtree(target)  # a directory where a file goes: its files were checked above
    have = ready if ready is not None else {}

    def write(items: list[tuple[str, str, int]]) -> None:
        for target, hexhash, mode in items:
            data = have.get(hexhash)
            if data is not None:
                atomic_write(target, data, mode=mode, fsync=False)  # temp, then rename: as from the cache
            else:
                copying.place_copy(cache.path(hexhash), target, mode)

    writes = plan.writes
    threads = min(jobs, os.cpu_count() or 1, len(writes) // _PER_THREAD)
    if threads <= 1:
        write(writes)
    else:
        # A few threads (no more than cores: the work is the kernel's, creating files,
        # and more threads only contend for the interpreter lock); each its own slice.
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(write, [writes[i::threads] for i in range(threads)]))  # re-raises an error
    written = len(writes)
    for target, mode in plan.chmods:
        os.chmod(target, mode)
    return written, removed


_PER_THREAD = 256  # fewer files than this per thread: one thread places them


def place(
    root: Path,
    cache: Cache,
    artifacts: list[Artifact],
    force: bool,
    ready: dict[str, bytes] | None = None,
    jobs: int = 1,
) -> PlaceResult:
    """Put each artifact at its recorded path (one artifact per path); ``ready`` and
    ``jobs`` as for :func:`execute`."""
    plans: list[tuple[_Plan, str]] = []
    modified: list[str] = []
    for art in artifacts:
        check_path(os.fspath(root), art.path)
    links: list[str] = []
    for art in artifacts:
        target = os.path.join(root, art.path)
        plan = plan_one(cache, target, art.hex, art.kind, art.path)
        plans.append((plan, target))
        modified += plan.modified
        links += plan.links
    if links and not force:
        more = f" and {len(links) - 1} more" if len(links) > 1 else ""
        raise CmfgitError(f"{links[0]}{more}: not replaced (--force replaces the link itself, never what it points to)")
    if modified and not force:
        shown = ", ".join(modified[:5]) + (f" and {len(modified) - 5} more" if len(modified) > 5 else "")
        raise CmfgitError(
            f"would overwrite {len(modified)} modified file(s) whose bytes are not in the cache: {shown} "
            "(cmfgit artifact add PATH keeps them; --force overwrites)"
        )
    result = PlaceResult()
    for plan, target in plans:
        if plan.unchanged:
            result.unchanged.append(plan.shown)
            continue
        written, removed = execute(cache, plan, target, ready, jobs)
        result.placed.append(plan.shown)
        result.files += written
        result.removed += removed
    return result


def get(cache: Cache, hexhash: str, kind: str, dest: str, force: bool) -> PlaceResult:
    """Put one object (a file, or a directory by its manifest) at ``dest``, anywhere."""
    if os.path.lexists(dest) and not force:
        raise CmfgitError(f"{dest} already exists (--force replaces it)")
    plan = plan_one(cache, os.path.abspath(dest), hexhash, kind, dest)
    result = PlaceResult()
    if plan.unchanged:
        result.unchanged.append(dest)
        return result
    written, removed = execute(cache, plan, os.path.abspath(dest))
    result.placed.append(dest)
    result.files, result.removed = written, removed
    return result
