"""The first ``cmfgit log -n N`` (or ``show ID``) of a fresh clone, answered before its query index exists.

A full index build reads every record (16-70 s at 100,000 records on a busy
2-core machine). ``log -n N`` only needs the newest executions, and gc packs
records by period (``pack/<site>/<period>[-<hash>].yaml``, the period of each
record's ``started_at``, or ``at``). So when the checkout has no index (and
holds enough records for this to pay), :func:`log_query` indexes in memory the
loose records and the packs newest period first, and stops as soon as the
``N``-th execution found started after the end of every period not read yet:
no unread pack can hold a newer one. The query then runs over that partial
index with the same code as over the full one, and a background process
builds the full index (:func:`start_background_build`).

What the unread packs could still change is read from them too, without
parsing them: every retraction and annotation (a tag of one of the ``N``, a
withdrawal of one) is found by its ``schema:`` line, checked against its id
and indexed. Conflict markers in an unread pack, or an execution in a pack
read whose ``started_at`` is outside the pack's period (a pack gc did not
write), make it give up: the caller builds the full index as before.

Only the checkout scope, only ``log`` with a limit and the default order, and
no ``--where`` (an unknown key is an error that depends on every record).
A damaged record in a pack not read is not counted in the warning line.

``show ID`` (:func:`show_query`) indexes the records whose id starts with ``ID``
(found by their separator line in every pack), every annotation and retraction,
and the loose records; a damaged one among them, or a relative run (``@1``),
makes it use the full index.

``lineage ID`` (upward, the default; :func:`lineage_query`) starts from what
``show`` indexes and follows the walk round by round: for each artifact it
reaches, every entry that names its hash other than as an input (its producers,
and any record naming an alias) is found by a literal search of the packs and
indexed. A prefix that is also an artifact hash, a path, another direction, or
a walk past :data:`MAX_LINEAGE` records uses the full index.
"""

from __future__ import annotations

import bisect
import mmap
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from cmfgit import canonical, index, pack
from cmfgit.repo import Repo

if TYPE_CHECKING:
    from cmfgit.query import CmfQuery

MIN_BYTES = 4 << 20  # packs smaller than this in all: a full build is about as quick
_PERIOD = re.compile(r"^(\d{4}(?:-\d{2}(?:-\d{2})?)?)(?:-[0-9a-z]{6,})?\.yaml$")
_LATEST = "\U0010ffff"  # the bound of a pack whose name gives no period: read first
_NOTES = (b"\nschema: cmfgit/annotation/", b"\nschema: cmfgit/retraction/")


def _min_bytes() -> int:
    try:
        return int(os.environ.get("CMFGIT_FIRST_ANSWER_BYTES", ""))
    except ValueError:
        return MIN_BYTES


def period_bound(path: str) -> tuple[str, str]:
    """(period, a string above every ``started_at`` the pack ``path`` may hold)."""
    match = _PERIOD.match(path.rsplit("/", 1)[-1])
    if match is None:
        return "", _LATEST
    return match.group(1), match.group(1) + "\x7f"


def _files_to_index(repo: Repo) -> tuple[list[str], list[str]] | None:
    """The checkout's loose records and packs (as :func:`_files`) when a partial index
    would pay: no index exists yet and the packs hold enough bytes; else None."""
    existing = index.Index(repo, index.index_path(repo, index.CHECKOUT))
    if existing.open_existing():
        existing.close()
        return None
    loose, paths, size = _files(repo)
    if size < _min_bytes():
        return None
    return loose, paths


def _files(repo: Repo) -> tuple[list[str], list[str], int]:
    """The checkout's loose record files and packs (relative to .cmf/objects), and the packs' bytes."""
    objects = repo.objects_dir
    loose: list[str] = []
    try:
        shards = [e for e in os.listdir(objects) if len(e) == 2 and index._is_hex(e)]
    except FileNotFoundError:
        shards = []
    for shard in shards:
        try:
            names = os.listdir(objects / shard)
        except FileNotFoundError:
            continue
        loose += [f"{shard}/{n}" for n in names if len(n) == 67 and n.endswith(".yaml") and index._is_hex(n[:62])]
    packs: list[str] = []
    size = 0
    for dirpath, dirnames, filenames in os.walk(objects / "pack"):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if name.endswith(".yaml") and not name.startswith("."):
                full = os.path.join(dirpath, name)
                packs.append(os.path.relpath(full, objects).replace(os.sep, "/"))
                try:
                    size += os.stat(full).st_size
                except FileNotFoundError:
                    pass
    return loose, packs, size


_ENTRY = re.compile(rb"\n--- # ([0-9a-f]{64})\n")  # (a literal prefix: much quicker than ^ with re.M)
_EXECUTION = re.compile(rb"\nschema: cmfgit/execution/")
_NOTE = re.compile(rb"\nschema: cmfgit/(?:annotation|retraction)/")
_HEX64 = re.compile(rb"[0-9a-f]{64}")
_STARTED = re.compile(rb"\nstarted_at: '([ -&(-~]*)'\n")  # quoted, printable ASCII, no quote inside


class _Pack:
    """What a scan of one pack's bytes says, without parsing a record."""

    def __init__(self, path: str, data: bytes) -> None:
        self.path = path
        self.data = data
        self.period, self.bound = period_bound(path)
        self.dated: list[tuple[str, int]] = []  # (start, entry) of executions with a plain quoted started_at
        self.always: list[int] = []  # entries of annotations, retractions, executions of unsure start
        self.indexed = 0  # how many of ``dated`` (newest first) are in the partial index
        self.sane = b"\n<<<<<<<" not in data  # no conflict markers (a pack read in full salvages around them)
        self.marks = [(m.start() + 1, m.end(), m.group(1)) for m in _ENTRY.finditer(data)]
        starts = [m[0] for m in self.marks]
        executions = {bisect.bisect(starts, m.start()) - 1 for m in _EXECUTION.finditer(data)}
        dated: dict[int, str] = {}
        for m in _STARTED.finditer(data):
            i = bisect.bisect(starts, m.start()) - 1
            if i >= 0 and i in executions:
                dated[i] = started = m.group(1).decode()
                self.sane = self.sane and started.startswith(self.period)
        self.dated = sorted(((started, i) for i, started in dated.items()), reverse=True)
        notes = {bisect.bisect(starts, m.start()) - 1 for m in _NOTE.finditer(data)}
        self.always = sorted(i for i in (executions - set(dated)) | notes if i >= 0)

    def entry(self, i: int) -> index.Entry:
        _at, body, rid = self.marks[i]
        end = self.marks[i + 1][0] if i + 1 < len(self.marks) else len(self.data)
        return (rid.decode(), self.data[body:end], body, end - body)

    def next_start(self) -> str:
        """The newest start of an execution not indexed yet ('' if none)."""
        return self.dated[self.indexed][0] if self.indexed < len(self.dated) else ""


def log_query(
    repo: Repo,
    limit: int | None,
    *,
    pipeline: str | None = None,
    stage: str | None = None,
    since: str | None = None,
) -> CmfQuery | None:
    """A query over a partial index of the checkout that answers this ``log`` exactly,
    or None when the full index should be used (it exists, or this would not pay)."""
    if limit is None or limit <= 0 or repo.bare:
        return None
    found = _files_to_index(repo)
    if found is None:
        return None
    loose, paths = found
    from cmfgit.query import CmfQuery

    paths.sort(key=lambda p: (period_bound(p)[1], p), reverse=True)
    notes = _scan(repo, paths)  # of the packs not scanned: their annotations and retractions
    if notes is None:
        return None
    scanned: list[_Pack] = []
    rest = list(paths)
    partial = index.Index(repo, index.index_path(repo, index.CHECKOUT))
    query = None
    try:
        want = limit
        while True:
            # Scan every pack of the newest period not scanned yet, while their period
            # may hold something newer than what is indexed.
            while rest and (not scanned or period_bound(rest[0])[1] >= _frontier(scanned)):
                bound = period_bound(rest[0])[1]
                while rest and period_bound(rest[0])[1] == bound:
                    path = rest.pop(0)
                    try:
                        scanned.append(_Pack(path, (repo.objects_dir / path).read_bytes()))
                    except FileNotFoundError:
                        continue
                    if not scanned[-1].sane:
                        return None  # conflict markers, or not placed by period as gc places records
            # Index the ``want`` newest executions scanned (and what must always be).
            chosen: dict[str, list[index.Entry]] = {}
            candidates = sorted(
                ((started, i, n) for i, pk in enumerate(scanned) for n, (started, _e) in enumerate(pk.dated)),
                reverse=True,
            )[:want]
            for pk in scanned:
                pk.indexed = 0
            for _started, i, n in candidates:
                scanned[i].indexed = max(scanned[i].indexed, n + 1)
            for pk in scanned:
                entries = [pk.entry(i) for i in pk.always] + [pk.entry(i) for _s, i in pk.dated[: pk.indexed]]
                chosen[pk.path] = [e for e in entries if canonical.digest(e[1]) == e[0]]
            for path in rest:
                if path in notes:
                    chosen[path] = notes[path]
            partial.load_partial(loose if query is None else [], [], chosen)
            if query is None:
                query = CmfQuery(repo, index=partial, warn=False)
            rows = query.execution_rowids(None, pipeline=pipeline, stage=stage, limit=limit, since=since)
            outside = max(_frontier(scanned), period_bound(rest[0])[1] if rest else "")
            if len(rows) >= limit:
                (last,) = query.db.execute("SELECT started_at FROM executions WHERE rowid = ?", (rows[-1],)).fetchone()
                if last is not None and last > outside:
                    break
            if not outside:
                break  # everything is indexed
            want *= 4
    except BaseException:
        partial.close()
        raise
    start_background_build(repo)
    return query


def _scan(repo: Repo, paths: list[str], prefix: str = "") -> dict[str, list[index.Entry]] | None:
    """Every annotation and retraction of the packs ``paths`` (path -> entries), and the
    records whose id starts with ``prefix`` if given; None when one of those is damaged."""
    wanted = b"\n" + pack.SEPARATOR + prefix.encode() if prefix else None  # (a literal find: quicker than re)
    found: dict[str, list[index.Entry]] = {}
    for path in paths:
        try:
            with open(repo.objects_dir / path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
                entries = _notes_in(data)
                if wanted is not None:
                    at = data.find(wanted)
                    while at >= 0:
                        rid = data[at + 1 + len(pack.SEPARATOR) : at + 1 + len(pack.SEPARATOR) + 64]
                        body = at + 1 + len(pack.SEPARATOR) + 65
                        if data[body - 1 : body] == b"\n" and _HEX64.fullmatch(rid):
                            end = data.find(b"\n" + pack.SEPARATOR, body - 1)
                            end = len(data) if end < 0 else end + 1
                            entries.append((rid.decode(), data[body:end], body, end - body))
                        at = data.find(wanted, at + 1)
                    if entries and data.find(b"\n<<<<<<<") >= 0:
                        return None  # the full build salvages around conflict markers
        except (FileNotFoundError, ValueError):  # (ValueError: an empty file cannot be mapped)
            continue
        good = [e for e in entries if canonical.digest(e[1]) == e[0]]
        if wanted is not None and len(good) < len(entries):
            return None  # a damaged record: the full index names it ("run cmfgit fsck")
        if good:
            found[path] = good
    return found


def show_query(repo: Repo, prefix: str) -> CmfQuery | None:
    """A query over a partial index of the checkout that answers ``show PREFIX`` exactly:
    every record whose id starts with the prefix, every annotation and retraction, and
    the loose records; None when the full index should be used."""
    text = prefix.strip().lower()
    if not 4 <= len(text) <= 64 or any(c not in "0123456789abcdef" for c in text) or repo.bare:
        return None  # (a relative run, @1 or train@2, needs the executions: the full index)
    found = _files_to_index(repo)
    if found is None:
        return None
    loose, paths = found
    chosen = _scan(repo, paths, text)
    if chosen is None:
        return None
    from cmfgit.query import CmfQuery

    partial = index.Index(repo, index.index_path(repo, index.CHECKOUT))
    try:
        partial.load_partial(loose, [], chosen)
        query = CmfQuery(repo, index=partial, warn=False)
    except BaseException:
        partial.close()
        raise
    start_background_build(repo)
    return query


def _frontier(scanned: list[_Pack]) -> str:
    """The newest start among the scanned executions not indexed yet."""
    return max((pk.next_start() for pk in scanned), default="")


def _notes_in(data: bytes | mmap.mmap) -> list[index.Entry]:
    """The annotations and retractions of a pack, found without parsing it."""
    entries: list[index.Entry] = []
    seen: set[int] = set()
    for needle in _NOTES:
        at = data.find(needle)
        while at >= 0:
            start = data.rfind(b"\n" + pack.SEPARATOR, 0, at) + 1
            end = data.find(b"\n" + pack.SEPARATOR, at)
            end = len(data) if end < 0 else end + 1
            body = start + len(pack.SEPARATOR) + pack.ID_HEX_LEN + 1
            if start > 0 and start not in seen:
                seen.add(start)
                rid = data[start + len(pack.SEPARATOR) : body - 1].decode("ascii", "replace")
                entries.append((rid, data[body:end], body, end - body))
            at = data.find(needle, end)
    return entries


def start_background_build(repo: Repo) -> None:
    """Build the checkout's full index in a detached process (it takes the index lock:
    a command that needs the index meanwhile waits for it, as for any build)."""
    if os.environ.get("CMFGIT_INDEX_BACKGROUND") == "0":
        return
    state = repo.worktree_state_dir
    state.mkdir(parents=True, exist_ok=True)
    code = "import sys\nfrom cmfgit import firstread\nsys.exit(firstread.build_main(sys.argv[1]))"
    subprocess.Popen(
        [sys.executable, "-c", code, str(repo.root)],
        cwd=state,  # (not the repository: python -c puts its directory on sys.path)
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
    )


def build_main(root: str) -> int:
    """The background build: the checkout's index, as the next read command would build it."""
    import time

    from cmfgit.repo import open_repo

    try:
        repo = open_repo(Path(root))
        # Files written less than index.RACY_NS ago (a fresh clone's) would be indexed
        # as "racy", and the next command would read or hash them again: let them age first.
        newest = 0
        for dirpath, _dirs, names in os.walk(repo.objects_dir):
            for name in names:
                try:
                    st = os.stat(os.path.join(dirpath, name))
                    newest = max(newest, st.st_mtime_ns, st.st_ctime_ns)
                except FileNotFoundError:
                    pass
        wait = (newest + index.RACY_NS - time.time_ns()) / 1e9 + 0.05
        if wait > 0:
            time.sleep(min(wait, index.RACY_NS / 1e9 + 0.05))
        index.open_index(repo).close()
    except Exception:  # a cache: the next read command builds it and says what is wrong
        return 1
    return 0


MAX_LINEAGE = 20_000  # records a partial lineage may index before the full index is the better way
_ARTIFACT_ALGOS = (b"blake3", b"md5")
_TOP_KEY = re.compile(rb"\n[^ \-\n]")  # a top-level key of a canonical record (sequences are not indented)


def lineage_query(repo: Repo, target: str, cwd: Path | None = None) -> CmfQuery | None:
    """A query over a partial index of the checkout that answers ``lineage ID --up``
    (the default direction) of an execution id prefix exactly, or None when the full
    index should be used.

    It starts from what :func:`show_query` indexes (the records of the prefix, every
    annotation and retraction, the loose records) and then, round by round, for each
    artifact the upward walk reaches, finds every pack entry that mentions its hash
    anywhere but in its ``inputs`` (the producers, and any record naming an alias):
    all the upward walk can follow from that artifact. Hash prefixes that name an
    artifact, paths, relative runs, and walks that reach too many records use the full index.
    """
    text = target.strip().lower()
    if not 4 <= len(text) <= 64 or any(c not in "0123456789abcdef" for c in text) or repo.bare:
        return None
    if os.path.lexists((cwd or Path.cwd()) / target.strip()):
        return None  # a path: the lineage of a file
    found = _files_to_index(repo)
    if found is None:
        return None
    loose, paths = found
    needle = b":" + text.encode()
    maps: list[tuple[str, mmap.mmap]] = []
    partial = index.Index(repo, index.index_path(repo, index.CHECKOUT))
    query = None
    try:
        for path in paths:
            try:
                with open(repo.objects_dir / path, "rb") as fh:
                    data = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
            except (FileNotFoundError, ValueError):
                continue
            maps.append((path, data))
            if _names_artifact(data, needle):
                return None  # also an artifact hash prefix (or ambiguous): the full index decides
        chosen = _scan(repo, paths, text)
        if chosen is None:
            return None
        loose_data = b"".join(p.read_bytes() for p in (repo.objects_dir / name for name in loose) if p.exists())
        if _names_artifact(loose_data, needle):
            return None
        from cmfgit.query import CmfQuery

        partial.load_partial(loose, [], chosen)
        query = CmfQuery(repo, index=partial, warn=False)
        roots = [
            r
            for (r,) in query.db.execute(
                "SELECT r.id FROM records r JOIN executions e ON e.rowid = r.rowid WHERE r.id >= ? AND r.id < ?",
                (text, text + "g"),
            )
        ]
        followed: set[str] = set()
        taken_at = {(p, e[2]) for p, entries in chosen.items() for e in entries}  # (path, offset) indexed
        total = sum(len(v) for v in chosen.values())
        while roots:
            todo = sorted(_reached(query, roots) - followed)
            if not todo:
                break
            followed.update(todo)
            more: dict[str, list[index.Entry]] = {}
            for path, data in maps:
                for h in todo:
                    for entry in _mentions(data, h.encode()):
                        if (path, entry[2]) not in taken_at:
                            taken_at.add((path, entry[2]))
                            more.setdefault(path, []).append(entry)
            good = {p: [e for e in es if canonical.digest(e[1]) == e[0]] for p, es in more.items()}
            total += sum(len(v) for v in good.values())
            if total > MAX_LINEAGE:
                query.close()
                return None
            for path, entries in good.items():
                chosen[path] = chosen.get(path, []) + entries
            if good:  # (a pack given again is indexed again as a whole: give all its entries)
                partial.load_partial([], [], {path: chosen[path] for path in good})
    except BaseException:
        if query is not None:
            query.close()
        else:
            partial.close()
        raise
    finally:
        for _path, data in maps:
            data.close()
    start_background_build(repo)
    return query


def _names_artifact(data: bytes | mmap.mmap, needle: bytes) -> bool:
    """Does ``needle`` (``:`` and a hex prefix) follow an algorithm name (an artifact hash)?"""
    at = data.find(needle)
    while at >= 0:
        if any(data[max(0, at - len(a)) : at] == a for a in _ARTIFACT_ALGOS):
            return True
        at = data.find(needle, at + 1)
    return False


def _reached(query: CmfQuery, roots: list[str]) -> set[str]:
    """The artifacts an upward walk from the executions ``roots`` reaches in the partial index."""
    rowids = query._walk([], roots, True, None)
    db = query.db
    hashes: set[str] = set()
    for start in range(0, len(rowids), 500):
        chunk = sorted(rowids)[start : start + 500]
        marks = ",".join("?" * len(chunk))
        hashes.update(
            h
            for (h,) in db.execute(
                "SELECT a.hash FROM events ev JOIN artifacts a ON a.rowid = ev.art "
                f"WHERE ev.dir = 0 AND ev.exec IN ({marks})",
                chunk,
            )
        )
    for (h,) in db.execute("SELECT a.hash FROM aliases al JOIN artifacts a ON a.rowid = al.art OR a.rowid = al.alias"):
        hashes.add(h)  # (every alias pair known: what the walk may cross to)
    return hashes


def _mentions(data: bytes | mmap.mmap, needle: bytes) -> list[index.Entry]:
    """The entries of a pack that hold ``needle`` other than only as an input (an
    occurrence inside an entry's top-level ``inputs`` is skipped unless the entry names aliases)."""
    entries: list[index.Entry] = []
    at = data.find(needle)
    while at >= 0:
        start = data.rfind(b"\n" + pack.SEPARATOR, 0, at) + 1
        end = data.find(b"\n" + pack.SEPARATOR, at)
        end = len(data) if end < 0 else end + 1
        body = start + len(pack.SEPARATOR) + pack.ID_HEX_LEN + 1
        if start > 0:
            inputs = data.rfind(b"\ninputs:\n", body - 1, at)
            top = _TOP_KEY.search(data, inputs + 1, end) if inputs >= 0 else None
            as_input = inputs >= 0 and (top is None or at < top.start())
            if not as_input or data.find(b"aliases:", body, end) >= 0:
                rid = data[start + len(pack.SEPARATOR) : body - 1].decode("ascii", "replace")
                entries.append((rid, data[body:end], body, end - body))
        at = data.find(needle, end)
    return entries
