"""``cmfgit gc``: fold loose records into packs partitioned by site and period.

Loose records (one file each) keep the write path lock-free and merge without
any driver, but git slows down with hundreds of thousands of files. gc moves
them into ``pack/<site>/<period>.yaml`` (see ``pack.py``), so the number of
files stays bounded and merges between sites never touch the same file.

Placement is derived from the record's bytes alone (its ``site`` and its
``started_at``, or ``at`` for an annotation), so a record lands in the same
pack in every clone, and two clones that pack the same records write the
same bytes. ``gc.period`` in ``.cmf/config.yaml`` (year, month or day) sets
the period; ``gc.threshold`` sets when gc runs by itself (0: never).

gc packs only records that fsck accepts (id, canonical form, schema); any
other file stays loose and is reported, so that one bad file never makes a
whole pack invalid.

Safety with concurrent processes: gc holds a lock (one gc at a time), writes
each pack atomically and only then deletes the loose files it packed. A
reader lists loose files before packs, and a loose file that vanishes under
it is then found in its pack; writers never wait for gc.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping
from pathlib import Path

from cmfgit import pack
from cmfgit.config import Config, load_config
from cmfgit.errors import RecordError
from cmfgit.fsutil import FileLock, atomic_write, remove_stale_temps
from cmfgit.repo import Repo
from cmfgit.store import PACK_DIR, Store

PERIOD_LENGTH = {"year": 4, "month": 7, "day": 10}  # characters of YYYY-MM-DD kept
UNDATED = "undated"
NO_SITE = "unknown"
_SHARD = re.compile(r"^[0-9a-f]{2}$")
_DATE = re.compile(r"(\d{4}-\d{2}-\d{2})T")
_UNSAFE = re.compile(r"[^a-z0-9._-]+")
_THRESHOLD = re.compile(rb"^gc:\n(?:  [^\n]*\n)*?  threshold: (-?[0-9]+)\n", re.MULTILINE)


class GcResult:
    """What gc did. A plain class: the pre-commit hook imports this module on every commit."""

    def __init__(self) -> None:
        self.packed = 0  # records newly written into packs
        self.removed_loose = 0  # loose files deleted (packed now, or already packed)
        self.removed_temps = 0  # stale .tmp-* files of killed writers
        self.kept_loose = 0  # records left loose: each would be half its pack or more (see _keep_dominant)
        self.packs: list[str] = []  # packs written, relative to the repository
        self.problems: list[str] = []  # records or packs left alone, and why


@functools.lru_cache(maxsize=256)
def site_dir(site: str) -> str:
    """A safe, case-folded directory name for a site: ``Edge Box #2`` -> ``edge-box-2``."""
    name = _UNSAFE.sub("-", site.strip().lower()).strip(".-")[:64].strip(".-")
    return name or NO_SITE


def _scalar(raw: bytes) -> str:
    """A one-line YAML scalar as the canonical dumper writes it."""
    text = raw.decode("utf-8", "replace").strip()
    if len(text) >= 2 and text[0] == text[-1] == "'":
        return text[1:-1].replace("''", "'")
    if len(text) >= 2 and text[0] == text[-1] == '"':
        from cmfgit import canonical  # rare: escapes need a real YAML parser

        try:
            value = canonical.load(raw.strip(), "site")
        except RecordError:
            return text
        return value if isinstance(value, str) else text
    return text


def placement(data: bytes, period: str = "month") -> str:
    """Where a record belongs: ``pack/<site>/<period>.yaml`` (relative to the objects dir)."""
    found: dict[bytes, bytes] = {}
    for key in (b"site", b"started_at", b"at"):  # bytes.find: many times faster than a multi-line regex
        at = 0 if data.startswith(key + b": ") else data.find(b"\n" + key + b": ") + 1
        if at or data.startswith(key + b": "):
            end = data.find(b"\n", at)
            found[key] = data[at + len(key) + 2 : end if end >= 0 else len(data)]
    site = _scalar(found[b"site"]) if b"site" in found else ""
    moment = found.get(b"started_at") or found.get(b"at") or b""
    date = _DATE.search(moment.decode("ascii", "replace"))
    when = date.group(1)[: PERIOD_LENGTH[period]] if date else UNDATED
    return f"{PACK_DIR}/{site_dir(site)}/{when}.yaml"


def count_loose(objects_dir: Path, stop_above: int | None = None) -> int:
    """How many loose record files there are (cheap: directory listings only)."""
    total = 0
    try:
        shards = [e.path for e in os.scandir(objects_dir) if e.is_dir() and _SHARD.match(e.name)]
    except FileNotFoundError:
        return 0
    for shard in shards:
        try:
            total += sum(1 for name in os.listdir(shard) if not name.startswith("."))
        except FileNotFoundError:
            continue
        if stop_above is not None and total > stop_above:
            break
    return total


def gc_lock(repo: Repo) -> FileLock:
    return FileLock(repo.worktree_state_dir / "locks" / "gc.lock", timeout=300, what="gc lock")


def gc(repo: Repo, config: Config | None = None) -> GcResult:
    """Pack every loose record; delete stale temp files. Safe to run any time."""
    config = config or load_config(repo)
    store = Store(repo.objects_dir)
    result = GcResult()
    with gc_lock(repo):
        result.removed_temps = remove_stale_temps(repo.objects_dir)
        groups: dict[str, dict[str, tuple[bytes, Path]]] = {}
        for rid, path in store.iter_loose():
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                continue
            if pack.digest(data) != rid:
                result.problems.append(f"{store.display(path)}: does not match its id; left loose (see cmfgit fsck)")
                continue
            problem = _invalid(data, store.display(path))
            if problem:  # packed, it would make the whole pack one that fsck and the merge driver reject
                result.problems.append(f"{problem}; left loose (see cmfgit fsck)")
                continue
            groups.setdefault(placement(data, config.pack_period), {})[rid] = (data, path)
        for rel, members in sorted(groups.items()):
            _fold(repo, store, rel, members, result)
    return result


def _invalid(data: bytes, where: str) -> str | None:
    """Why fsck rejects this record (not canonical, bad schema), or None."""
    from cmfgit import canonical, schema

    try:
        schema.validate(canonical.decode(data, where), where)
    except RecordError as exc:
        return str(exc)
    return None


def _fold(repo: Repo, store: Store, rel: str, members: dict[str, tuple[bytes, Path]], result: GcResult) -> None:
    target = repo.objects_dir / rel
    try:
        records = pack.parse(target.read_bytes(), store.display(target), verify=True) if target.exists() else {}
    except RecordError as exc:
        result.problems.append(f"{exc}; its records stay loose until the pack is repaired")
        return
    members = dict(members)
    result.kept_loose += _keep_dominant(records, members)
    new = {rid: data for rid, (data, _path) in members.items() if rid not in records}
    if new:
        written = write_pack(repo.objects_dir, rel, records, new)  # durable before any loose file goes
        result.packs.append(store.display(written))
        result.packed += len(new)
    for _data, path in members.values():
        try:
            os.unlink(path)
            result.removed_loose += 1
        except FileNotFoundError:
            pass


def write_pack(objects_dir: Path, rel: str, packed: Mapping[str, bytes], new: Mapping[str, bytes]) -> Path:
    """Add the records ``new`` to the pack of group ``rel`` (what :func:`placement`
    says), which holds ``packed`` now; returns the pack file written.

    The one place that decides a pack's file name and writes it (gc and pull
    both come here). The write is atomic and durable (temp file, fsync,
    rename, fsync of the directory) before it returns: a reader, or a process
    killed half-way, sees the old pack or the new one, never half of one.
    """
    target = objects_dir / rel
    atomic_write(target, pack.serialize({**packed, **new}))
    _fsync_dir(target.parent)
    return target


_ENTRY = len(pack.SEPARATOR) + pack.ID_HEX_LEN + 1  # '--- # <id>\n' before each record


def _keep_dominant(packed: dict[str, bytes], members: dict[str, tuple[bytes, Path]]) -> int:
    """Leave loose (remove from ``members``) each record that would be half its pack or more.

    Git's rename detection pairs a deleted file with an added one when more
    than half of the added file is the deleted file's bytes. A pack that one
    record dominates (say, the pack of a single record) would then be "the
    loose file, renamed", and merging it with a branch that deleted that loose
    file (a ``git revert``) stops with a spurious rename/delete conflict. With
    every record under half of its pack, git never sees a rename. Returns how
    many records stay loose.
    """
    size = len(pack.HEADER) + sum(_ENTRY + len(d) for d in packed.values())
    size += sum(_ENTRY + len(d) for rid, (d, _p) in members.items() if rid not in packed)
    kept = 0
    while members:
        rid, (data, _path) = max(members.items(), key=lambda item: len(item[1][0]))
        if 2 * len(data) < size:
            break
        del members[rid]
        kept += 1
        if rid not in packed:
            size -= _ENTRY + len(data)
    return kept


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _threshold(repo: Repo) -> int:
    """``gc.threshold``, read without yaml when the config is in its canonical layout
    (the pre-commit hook asks on every commit)."""
    try:
        match = _THRESHOLD.search(repo.config_path.read_bytes())
    except OSError:
        match = None
    return int(match.group(1)) if match else load_config(repo).gc_threshold


def maybe_gc(repo: Repo, config: Config | None = None) -> GcResult | None:
    """Run gc if there are more loose records than ``gc.threshold`` (0: never)."""
    threshold = config.gc_threshold if config is not None else _threshold(repo)
    if threshold <= 0 or count_loose(repo.objects_dir, stop_above=threshold) <= threshold:
        return None
    return gc(repo, config)
