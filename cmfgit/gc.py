"""``cmfgit gc``: fold loose records into packs partitioned by site and period.

Loose records (one file each) keep the write path lock-free and merge without
any driver, but git slows down with hundreds of thousands of files. gc moves
them into packs (see ``pack.py``), so the number of files stays bounded.

Packs are written once, never rewritten, and named by their content:
``pack/<site>/<period>-<16 hex of blake3>.yaml`` (:func:`write_pack` is the
one function that names and writes a pack). Two gcs on two branches never
write one path with different bytes, and the same records give the same
name, so branches that both ran gc merge with plain git and no driver. A
record may then be in two packs (or loose and packed); readers count it once.

Placement is derived from the record's bytes alone (its ``site`` and its
``started_at``, or ``at`` for an annotation), so a record lands in the same
group in every clone. ``gc.period`` in ``.cmf/config.yaml`` (year, month or
day) sets the period; ``gc.threshold`` sets when gc runs by itself (0: never).

Repacking keeps the number of packs of a group near log2 of its size, as
git's ``repack --geometric`` does: the smallest packs of a group are rolled
into one new pack when together they are more than twice the largest of
them, and the packs rolled up are deleted. A repack only adds a
content-named pack and deletes others, so two branches that repacked merge
with no conflict; at worst a record is in two packs until a later repack.

Git's rename detection pairs a deleted file with an added one of similar
content, and the records of one site are very much alike. Two files whose
sizes are within 2x of each other can then pair, and a merge with a branch
that deleted the same file stops with ``CONFLICT (rename/delete)``. So every
file gc writes is more than twice, or less than half, the size of every file
it deletes (:func:`_apart`), and of every pack an earlier gc of this branch
deleted since it left its upstream (:func:`folded_on_branch`): a merge sees
those deletions too. What cannot be placed so stays loose (or unrepacked)
for a later gc.

gc packs only records that fsck accepts (id, canonical form, schema); any
other file stays loose and is reported, so that one bad file never makes a
whole pack invalid. A pack that does not verify is left alone and named.

Safety with concurrent processes: gc holds a lock (one gc at a time), writes
each pack atomically, fsyncs its directory, and only then deletes the loose
files and packs it folded. A reader that finds a pack gone lists the packs
again and finds its records in the new one; writers never wait for gc.
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
from cmfgit.fsutil import FileLock, atomic_write, fsync_path, remove_stale_temps
from cmfgit.repo import Repo
from cmfgit.store import PACK_DIR, Store

PERIOD_LENGTH = {"year": 4, "month": 7, "day": 10}  # characters of YYYY-MM-DD kept
UNDATED = "undated"
NO_SITE = "unknown"
_SHARD = re.compile(r"^[0-9a-f]{2}$")
_DATE = re.compile(r"(\d{4}-\d{2}-\d{2})T")
_UNSAFE = re.compile(r"[^a-z0-9._-]+")
_PERIOD = re.compile(r"^(?:[0-9]{4}(?:-[0-9]{2}(?:-[0-9]{2})?)?|undated)$")
_THRESHOLD = re.compile(rb"^gc:\n(?:  [^\n]*\n)*?  threshold: (-?[0-9]+)\n", re.MULTILINE)


class GcResult:
    """What gc did. A plain class: the pre-commit hook imports this module on every commit."""

    def __init__(self) -> None:
        self.packed = 0  # records newly written into packs
        self.removed_loose = 0  # loose files deleted (packed now, or already packed)
        self.removed_temps = 0  # stale .tmp-* files of killed writers
        self.kept_loose = 0  # records left loose: their pack would be too small yet (see _keep_dominant, _apart)
        self.packs: list[str] = []  # packs written (gc's and repacks'), relative to the repository
        self.repacked = 0  # packs folded into a bigger one and deleted
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


def group_of(data: bytes, period: str = "month") -> tuple[str, str]:
    """The group of a record: (site directory, period), e.g. ``('edge-box-2', '2026-11')``."""
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
    return site_dir(site), when


def placement(data: bytes, period: str = "month") -> str:
    """Where a record's packs are: ``pack/<site>/<period>`` (each ``<that>-<hash>.yaml``)."""
    site, when = group_of(data, period)
    return f"{PACK_DIR}/{site}/{when}"


def write_pack(repo: Repo, site: str, period: str, records: Mapping[str, bytes]) -> Path:
    """Write ``records`` (id -> canonical bytes) as one pack of ``site`` and ``period``; its path.

    The one function that names and writes a pack:
    ``.cmf/objects/pack/<site_dir(site)>/<period>-<16 hex of blake3>.yaml``. The
    file is written once (temp file, fsync, rename, then an fsync of its
    directory) and never rewritten; when a pack with the same content is there
    already, nothing is written. The records are not checked here: the caller
    has verified them (gc packs only what fsck accepts).
    """
    if not _PERIOD.match(period):
        raise ValueError(f"not a pack period: {period!r}")
    data = pack.serialize(records)
    target = repo.objects_dir / PACK_DIR / site_dir(site) / pack.file_name(period, data)
    if not target.exists():
        atomic_write(target, data)
        fsync_path(target.parent)
    return target


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


class _Pack:
    """A pack of a group: on disk (``path``), or planned in memory (``path`` None)."""

    __slots__ = ("path", "size", "records")

    def __init__(self, path: Path | None, size: int, records: dict[str, bytes] | None = None) -> None:
        self.path = path
        self.size = size
        self.records = records  # None: not read yet


def gc(repo: Repo, config: Config | None = None) -> GcResult:
    """Pack every loose record, repack small packs; delete stale temp files. Safe to run any time."""
    config = config or load_config(repo)
    store = Store(repo.objects_dir)
    result = GcResult()
    with gc_lock(repo):
        result.removed_temps = remove_stale_temps(repo.objects_dir)
        loose: dict[tuple[str, str], dict[str, tuple[bytes, Path]]] = {}
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
            loose.setdefault(group_of(data, config.pack_period), {})[rid] = (data, path)
        groups = _existing(store)
        plan = _Plan(store, loose, groups, result)
        plan.folded_before = folded_on_branch(repo)
        plan.run(repo)
    return result


_BASES = ("@{upstream}", "refs/remotes/origin/HEAD", "refs/heads/main", "refs/heads/master")


def merge_bases(repo: Repo) -> list[str]:
    """The merge bases of HEAD with its upstream, ``origin/HEAD``, ``main`` and ``master``
    (those that exist): what a merge of this branch will be compared with."""
    from cmfgit import gitutil

    found: list[str] = []
    for ref in _BASES:
        out = gitutil.git(["merge-base", "HEAD", ref], repo.root, check=False).decode().strip()
        if out and out not in found:
            found.append(out)
    return found


def held_by_bases(repo: Repo) -> set[str] | None:
    """The paths under .cmf/objects that some merge base holds (what a merge compares each
    side with); None when there is no base to compare with."""
    from cmfgit import gitutil
    from cmfgit.repo import OBJECTS_DIR

    bases = merge_bases(repo)
    if not bases:
        return None
    held: set[str] = set()
    for base in bases:
        listing = gitutil.git(["ls-tree", "-r", "-z", "--name-only", base, "--", OBJECTS_DIR], repo.root)
        held.update(name.decode("utf-8", "surrogateescape") for name in listing.split(b"\0") if name)
    return held


def folded_on_branch(repo: Repo) -> list[int]:
    """Sizes of the packs this branch deleted since it left its upstream (or the default
    branch): packs of their merge base that are gone from the working tree.

    A merge compares each side with the merge base, so a pack that an earlier gc of this
    branch folded is still "deleted" there; a new pack of similar size would pair with it
    in git's rename detection, and conflict if the other branch folded it too."""
    from cmfgit import gitutil
    from cmfgit.repo import OBJECTS_DIR

    sizes: dict[str, int] = {}
    for base in merge_bases(repo):
        listing = gitutil.git(["ls-tree", "-r", "-l", "-z", base, "--", f"{OBJECTS_DIR}/{PACK_DIR}"], repo.root)
        for entry in listing.split(b"\0"):
            meta, _, name = entry.partition(b"\t")
            parts = meta.split()
            if len(parts) == 4 and parts[3].isdigit():
                sizes[name.decode("utf-8", "surrogateescape")] = int(parts[3])
    return [size for rel, size in sizes.items() if not (repo.root / rel).exists()]


def _existing(store: Store) -> dict[tuple[str, str], list[_Pack]]:
    """The packs on disk by group (site directory, period), with their sizes."""
    root = store.objects_dir / PACK_DIR
    found: dict[tuple[str, str], list[_Pack]] = {}
    for path in store.pack_paths():
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            continue
        site = path.parent.relative_to(root).as_posix()
        found.setdefault((site, pack.period_of(path.name)), []).append(_Pack(path, size))
    return found


def _invalid(data: bytes, where: str) -> str | None:
    """Why fsck rejects this record (not canonical, bad schema), or None."""
    from cmfgit import canonical, schema

    try:
        schema.validate(canonical.decode(data, where), where)
    except RecordError as exc:
        return str(exc)
    return None


_ENTRY = len(pack.SEPARATOR) + pack.ID_HEX_LEN + 1  # '--- # <id>\n' before each record


def _pack_size(records: Mapping[str, bytes]) -> int:
    return len(pack.HEADER) + sum(_ENTRY + len(d) for d in records.values())


def _apart(a: int, b: int) -> bool:
    """Are two file sizes more than 2x apart? Then git's rename detection (similarity
    = bytes in common / the larger size, 50% by default) can never pair the files."""
    return max(a, b) > 2 * min(a, b)


class _Plan:
    """What one gc writes and deletes, decided before anything is touched."""

    def __init__(
        self,
        store: Store,
        loose: dict[tuple[str, str], dict[str, tuple[bytes, Path]]],
        groups: dict[tuple[str, str], list[_Pack]],
        result: GcResult,
    ) -> None:
        self.store = store
        self.loose = loose
        self.groups = groups
        self.result = result
        self.new: dict[tuple[str, str], dict[str, bytes]] = {}  # group -> records for its new pack
        self.drop: list[Path] = []  # loose files to delete once the packs are durable
        self.written: dict[tuple[str, str], list[_Pack]] = {}  # group -> packs to write
        self.folded: list[_Pack] = []  # packs on disk to delete once the packs are durable
        self.folded_before: list[int] = []  # sizes of packs an earlier gc of this branch deleted

    def run(self, repo: Repo) -> None:
        dups = self._new_packs(repo)
        self._repack()
        added = [p.size for packs in self.written.values() for p in packs]
        for data, path in dups:  # already packed: the loose copy goes, unless git could pair it with a new pack
            if all(_apart(len(data), size) for size in added):
                self.drop.append(path)
            else:
                self.result.kept_loose += 1
        for (site, period), packs in sorted(self.written.items()):
            for planned in packs:
                assert planned.records is not None
                target = write_pack(repo, site, period, planned.records)
                self.result.packs.append(self.store.display(target))
        for path in self.drop:  # the packs are durable (write_pack fsyncs them and their directory)
            try:
                os.unlink(path)
                self.result.removed_loose += 1
            except FileNotFoundError:
                pass
        for old in self.folded:
            assert old.path is not None
            try:
                os.unlink(old.path)
                self.result.repacked += 1
            except FileNotFoundError:
                pass

    def _records(self, item: _Pack) -> dict[str, bytes] | None:
        """The records of a pack (read and verified on first use); None if it is damaged."""
        if item.records is None:
            assert item.path is not None
            try:
                item.records = pack.parse(item.path.read_bytes(), self.store.display(item.path), verify=True)
            except (RecordError, FileNotFoundError) as exc:
                if isinstance(exc, RecordError):
                    self.result.problems.append(f"{exc}; left alone (see cmfgit fsck)")
                packs = self.groups.get(_group(self.store, item.path), [])
                if item in packs:
                    packs.remove(item)
                return None
        return item.records

    def _new_packs(self, repo: Repo) -> list[tuple[bytes, Path]]:
        """Plan each group's new pack of loose records; returns the loose copies of packed records."""
        dups: list[tuple[bytes, Path]] = []
        staying: list[tuple[bytes, Path]] = []  # fresh records that stay loose
        for key, members in sorted(self.loose.items()):
            packed: set[str] = set()
            for item in list(self.groups.get(key, [])):
                packed.update(self._records(item) or ())
            fresh: dict[str, tuple[bytes, Path]] = {}
            for rid, (data, path) in members.items():
                if rid in packed:
                    dups.append((data, path))
                else:
                    fresh[rid] = (data, path)
            before = dict(fresh)
            self.result.kept_loose += _keep_dominant(fresh)
            staying += [entry for rid, entry in before.items() if rid not in fresh]
            if fresh:
                self.new[key] = {rid: data for rid, (data, _path) in fresh.items()}
        # Every new pack more than twice each loose file this gc deletes: git never pairs them.
        while self.new:
            biggest = max(len(d) for records in self.new.values() for d in records.values())
            small = [
                key
                for key, records in self.new.items()
                if _pack_size(records) <= 2 * biggest
                or not all(_apart(_pack_size(records), d) for d in self.folded_before)
            ]
            if not small:
                break
            for key in small:
                records = self.new.pop(key)
                self.result.kept_loose += len(records)
                staying += [self.loose[key][rid] for rid in records]
        if staying and (self.new or dups) and self._pairs_with_new(repo, staying, dups):
            # Deleting any loose file now would hand git a rename pair: wait, loose, for a later gc.
            self.result.kept_loose += sum(len(records) for records in self.new.values()) + len(dups)
            self.new.clear()
            dups = []
        for key, records in self.new.items():
            self.result.packed += len(records)
            self.written[key] = [_Pack(None, _pack_size(records), records)]
            self.drop += [self.loose[key][rid][1] for rid in records]
        return dups

    def _pairs_with_new(self, repo: Repo, staying: list[tuple[bytes, Path]], dups: list[tuple[bytes, Path]]) -> bool:
        """Would a loose file this gc deletes pair, for git, with a loose file that stays and
        is new on the branch (no merge base holds it)?

        Only files that a merge base holds are deleted for a merge, and only files that
        none holds are added. A merge sees the first deleted and the second added; being much alike they pair as
        a rename, and a branch that deleted the first file (a ``git revert``) stops the merge
        with ``CONFLICT (rename/delete)``. Keeping a packed record's loose copy instead is no
        way out: a revert of the pack's commit, merged with a later gc that drops the copy,
        would lose the record."""
        held = held_by_bases(repo)
        if held is None:
            return False

        def rel(path: Path) -> str:
            return path.relative_to(repo.root).as_posix()

        deleted = [
            len(data)
            for key, records in self.new.items()
            for rid, data in records.items()
            if rel(self.loose[key][rid][1]) in held
        ]
        deleted += [len(data) for data, path in dups if rel(path) in held]
        added = [len(data) for data, path in staying if rel(path) not in held]
        return any(not _apart(a, d) for a in added for d in deleted)

    def _repack(self) -> None:
        """Roll up the smallest packs of each group (geometric), where that pairs no files for git."""
        deleted = [len(self.loose[key][rid][0]) for key, records in self.new.items() for rid in records]
        for key in sorted(set(self.groups) | set(self.written)):
            on_disk = list(self.groups.get(key, []))
            fresh = self.written.get(key, [])
            outputs, folded = self._roll_up(on_disk + fresh)
            if not folded:
                continue
            kept_fresh = [p for p in fresh if p in outputs]
            added = [p.size for k, packs in self.written.items() if k != key for p in packs]
            added += [p.size for p in outputs]
            gone = deleted + self.folded_before + [p.size for p in self.folded]
            gone += [p.size for p in folded if p.path is not None]
            new_sizes = [p.size for p in outputs if p not in kept_fresh]
            new_gone = [p.size for p in folded if p.path is not None]
            if any(not _apart(a, d) for a in new_sizes for d in gone) or any(
                not _apart(a, d) for a in added for d in new_gone
            ):
                continue  # this roll-up would hand git a rename pair: leave it for a later gc
            self.written[key] = outputs
            self.folded += [p for p in folded if p.path is not None]
            deleted += new_gone

    def _roll_up(self, packs: list[_Pack]) -> tuple[list[_Pack], list[_Pack]]:
        """(the packs of a group to write, the packs folded away), rolling up while the
        smallest k packs together are more than twice the largest of them."""
        current = list(packs)
        folded: list[_Pack] = []
        while len(current) > 1:
            current.sort(key=lambda p: (p.size, str(p.path)))
            merged: _Pack | None = None
            for k in range(len(current), 1, -1):
                part = current[:k]
                if sum(p.size for p in part) <= 2 * part[-1].size:
                    continue
                records: dict[str, bytes] = {}
                for item in part:
                    found = self._records(item)
                    if found is None:
                        return self._roll_up([p for p in packs if p is not item])
                    pack.merge_into(records, found.items())
                size = _pack_size(records)
                if size > 2 * part[-1].size:
                    merged = _Pack(None, size, records)
                    break
            if merged is None:
                break
            folded += current[:k]
            current = [merged, *current[k:]]
        if not folded:
            return [], []
        return [p for p in current if p.path is None], folded


def _group(store: Store, path: Path) -> tuple[str, str]:
    return path.parent.relative_to(store.objects_dir / PACK_DIR).as_posix(), pack.period_of(path.name)


def _keep_dominant(members: dict[str, tuple[bytes, Path]]) -> int:
    """Leave loose (remove from ``members``) each record that would be half its new pack or more.

    Git's rename detection pairs a deleted file with an added one when more
    than half of the added file is the deleted file's bytes. A pack that one
    record dominates (say, the pack of a single record) would then be "the
    loose file, renamed", and merging it with a branch that deleted that loose
    file (a ``git revert``) stops with a spurious rename/delete conflict. With
    every record under half of its pack, git never sees a rename. Returns how
    many records stay loose.
    """
    size = len(pack.HEADER) + sum(_ENTRY + len(d) for d, _p in members.values())
    kept = 0
    while members:
        rid, (data, _path) = max(members.items(), key=lambda item: len(item[1][0]))
        if 2 * len(data) < size:
            break
        del members[rid]
        kept += 1
        size -= _ENTRY + len(data)
    return kept


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
