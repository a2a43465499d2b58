"""Writing the records a ``cmfgit pull`` brings into the local store.

``localview.py`` decides which records of the global view a pull wants; this
module puts the ones the clone lacks into ``.cmf/objects``:

- **Into packs, directly.** The new records are grouped as gc places them
  (``gc.group_of``: site and period) and each group becomes a new pack
  (write-once, named by content) through ``gc.write_pack``: one atomic write
  (temp file, fsync, rename) and one directory fsync per pack, never one loose
  file per record. A record that would be half its pack or more stays loose,
  as gc leaves it (git's rename detection, see ``gc._keep_dominant``); gc's
  geometric repack later rolls the small packs of many pulls up.
- **Present records are skipped by id.** The ids of the clone's loose files
  come from their names and those of its packs from the separator lines; a
  record already here (loose or packed) is never written again, and only the
  records written are checked against their ids. gc's full check of each
  record (a parse and a schema check, ~0.25 ms a record) is not repeated: the
  view's records passed it in the pre-commit and pre-push hooks where they
  were made, and ``cmfgit fsck`` still checks them here. A record of no known
  schema stays loose, where fsck names it.
- **A no-op touches nothing.** What the last pull brought is remembered per
  worktree (``.git/cmf/pulled``): the tree id of the view's ``.cmf/objects``,
  the selection, the ids chosen and a stat signature of the store. When the
  view's tree and the selection are the same and the store still holds every
  id chosen (its signature unchanged, else its ids read again), the view is
  not read at all and nothing is written.
- **The query index** gets the packs written (``index.add_files``) when it
  exists, so the next read command has nothing to re-read; when it does not,
  the next read command builds it.

Safety: pack writes hold gc's lock (a concurrent gc or pull waits), each pack
is replaced atomically, and the memory of the pull is written last. A pull
killed half-way leaves every pack whole; the next pull skips what arrived and
writes the rest.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from cmfgit import canonical, gc, gitutil, pack, schema, treeread
from cmfgit.config import load_config
from cmfgit.errors import CmfgitError, RecordError
from cmfgit.fsutil import atomic_write
from cmfgit.localview import Selection, choose, needles, schema_of
from cmfgit.repo import OBJECTS_DIR, Repo
from cmfgit.store import PACK_DIR, Store

if TYPE_CHECKING:
    from cmfgit.index import Derived

STATE_FILE = "pulled"
STATE_VERSION = 1
_SHARD = re.compile(r"^[0-9a-f]{2}$")
_SEP = b"\n" + pack.SEPARATOR  # before each entry of a pack: the end of the line before, then '--- # '
_PACKED_KINDS = frozenset(k.encode() for k in (schema.EXECUTION, schema.ANNOTATION, schema.RETRACTION))


@dataclass
class Brought:
    """What one pull did to the local store."""

    view_records: int = 0  # records in the view (as of the pull that read it)
    selected: int = 0  # records the selection wants
    written: int = 0  # records new to this clone, now in its store (pending)
    packs: list[str] = field(default_factory=list)  # pack files written, relative to .cmf/objects
    loose: int = 0  # of ``written``, left loose (dominant in their pack, or a damaged pack)
    unchanged: bool = False  # nothing changed since the last pull: the view was not read
    problems: list[str] = field(default_factory=list)


# -- the local store, cheaply -------------------------------------------------------


def local_ids(objects_dir: Path) -> set[str]:
    """Ids of every record in the store, loose or packed, without reading a record body."""
    found: set[str] = set()
    for rid, _path in Store(objects_dir).iter_loose():
        found.add(rid)
    root = objects_dir / PACK_DIR
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if name.endswith(".yaml") and not name.startswith("."):
                try:
                    with open(os.path.join(dirpath, name), "rb") as fh:
                        data = fh.read()
                except FileNotFoundError:
                    continue
                found.update(content_id.hex() for content_id in _separator_ids(data))
    return found


def signature(objects_dir: Path) -> str:
    """A stat signature of the store: each shard directory's mtime and each pack's
    size, mtime and inode. Adding or removing a loose file, or writing a pack, changes it."""
    parts: list[str] = []
    try:
        entries = sorted((e.name, e) for e in os.scandir(objects_dir) if _SHARD.match(e.name) or e.name == PACK_DIR)
    except FileNotFoundError:
        return ""
    for name, entry in entries:
        try:
            if name != PACK_DIR:
                parts.append(f"{name}:{entry.stat().st_mtime_ns}")
        except FileNotFoundError:
            continue
    for dirpath, dirnames, filenames in os.walk(objects_dir / PACK_DIR):
        dirnames.sort()
        parts.append(f"{dirpath}:{_mtime(dirpath)}")
        for name in sorted(filenames):
            try:
                st = os.stat(os.path.join(dirpath, name))
            except FileNotFoundError:
                continue
            parts.append(f"{name}:{st.st_size}:{st.st_mtime_ns}:{st.st_ino}")
    return canonical.digest("\n".join(parts).encode())


def _mtime(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except FileNotFoundError:
        return -1


# -- what the last pull brought -------------------------------------------------------


def _key(sel: Selection) -> str:
    return repr(sel)


def _state_path(repo: Repo) -> Path:
    return repo.worktree_state_dir / STATE_FILE


def _load_state(repo: Repo) -> tuple[dict[str, object], bytes] | None:
    """(header, chosen ids as 32-byte digests concatenated), or None."""
    try:
        data = _state_path(repo).read_bytes()
    except OSError:
        return None
    head, newline, ids = data.partition(b"\n")
    try:
        header = json.loads(head)
    except ValueError:
        return None
    if not newline or not isinstance(header, dict) or header.get("version") != STATE_VERSION:
        return None
    return header, ids


def _save_state(repo: Repo, tree: str, sel: Selection, chosen: list[str], view_records: int) -> None:
    header = {
        "version": STATE_VERSION,
        "tree": tree,
        "selection": _key(sel),
        "view_records": view_records,
        "selected": len(chosen),
        "store": signature(repo.objects_dir),
    }
    body = b"".join(bytes.fromhex(rid) for rid in sorted(chosen))
    atomic_write(_state_path(repo), json.dumps(header, sort_keys=True).encode() + b"\n" + body, fsync=False)


def _unchanged(repo: Repo, tree: str, sel: Selection) -> Brought | None:
    """What the last pull brought, if a pull of ``tree`` with ``sel`` has nothing to do."""
    state = _load_state(repo)
    if state is None:
        return None
    header, ids = state
    if header.get("tree") != tree or header.get("selection") != _key(sel) or len(ids) % 32:
        return None
    if header.get("store") != signature(repo.objects_dir):
        have = local_ids(repo.objects_dir)
        if any(ids[i : i + 32].hex() not in have for i in range(0, len(ids), 32)):
            return None  # some record it brought is gone (deleted, or checked out away): bring it again
    view, selected = header.get("view_records"), header.get("selected")
    return Brought(
        view_records=view if isinstance(view, int) else 0,
        selected=selected if isinstance(selected, int) else 0,
        unchanged=True,
    )


# -- pulling ----------------------------------------------------------------------------


def bring(repo: Repo, rev: str, sel: Selection, where: str) -> Brought:
    """Bring the records of ``rev`` (a commit of the global view) that ``sel`` wants
    and this clone lacks into its store. ``where`` names the view in errors."""
    tree = treeread.objects_tree(repo.root, rev)
    if tree is None:
        return Brought()
    done = _unchanged(repo, tree, sel)
    if done is not None:
        return done
    result = Brought()
    have = local_ids(repo.objects_dir)
    fresh: dict[str, bytes] = {}
    chosen: list[str] = []

    def view() -> Iterator[tuple[str, bytes]]:
        seen: set[bytes] = set()
        counted = [0]
        wanted = needles(sel)
        yield from read_view(repo.root, tree, wanted, seen, counted)
        # every id when all were read; else the entries (a record in two packs twice)
        result.view_records = len(seen) if wanted is None else counted[0]

    for rid, data in choose(view(), sel):
        chosen.append(rid)
        if rid in have:
            continue
        if canonical.digest(data) != rid:
            raise RecordError(f"{where}: record {rid[:12]}", "does not match its id (corrupted)")
        have.add(rid)
        fresh[rid] = data
    result.selected = len(chosen)
    write_records(repo, fresh, result)
    _save_state(repo, tree, sel, chosen, result.view_records)
    return result


def write_records(
    repo: Repo, fresh: dict[str, bytes], result: Brought, known: Mapping[str, Derived] | None = None
) -> None:
    """Write ``fresh`` (records this clone lacks, checked against their ids) into packs,
    grouped as gc groups them, and index the packs written; what gc would not pack, or
    what would be half its pack or more, stays loose. ``cmfgit bundle import`` at a clone
    writes its records through here too, and the importers, which give ``known`` (the
    index rows of the records they encoded, by id) so that the index need not parse them."""
    period = load_config(repo).pack_period
    groups: dict[tuple[str, str], dict[str, bytes]] = {}
    loose: dict[str, bytes] = {}
    for rid, data in fresh.items():
        if schema_of(data) not in _PACKED_KINDS:
            loose[rid] = data  # not a record gc would pack: loose, for fsck to name
        else:
            groups.setdefault(gc.group_of(data, period), {})[rid] = data
    result.written += len(fresh)
    if not fresh:
        return
    with gc.gc_lock(repo):
        for (site, when), new in sorted(groups.items()):
            _write_pack(repo, site, when, new, loose, result)
        store = Store(repo.objects_dir)
        for rid, data in loose.items():
            store.put_bytes(rid, data)
    result.loose += len(loose)
    _index_packs(repo, result.packs, known)


def _separators(content: bytes) -> list[int]:
    """The offset of each entry separator (``\\n--- # ``) of a pack."""
    starts: list[int] = []
    at = content.find(_SEP)
    while at >= 0:
        starts.append(at)
        at = content.find(_SEP, at + len(_SEP) + pack.ID_HEX_LEN)
    return starts


def _separator_ids(content: bytes) -> Iterator[bytes]:
    """The ids of a pack's entries (as 32 bytes), from its separator lines; damaged ones skipped."""
    width = len(_SEP)
    for at in _separators(content):
        try:
            yield bytes.fromhex(content[at + width : at + width + pack.ID_HEX_LEN].decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            continue


def read_view(
    root: Path, tree: str, wanted: list[bytes] | None, seen: set[bytes], counted: list[int] | None = None
) -> Iterator[tuple[str, bytes]]:
    """(id, bytes) of the records of ``tree`` (a ``.cmf/objects`` tree) that contain
    one of ``wanted`` (all of them when None), each id once; ``seen`` gets the ids
    read (with ``wanted``, those of the matching entries and the loose files), and
    ``counted[0]`` the number of entries in the tree (a record packed twice counts twice).

    Packs are not split into records: only the entries around a match of ``wanted``
    are cut out, found from the separator lines before and after each match, so a
    pull of a slice of a large view costs what that slice costs.
    """
    files = treeread.list_files(root, tree)
    by_blob: dict[str, list[treeread.TreeFile]] = {}
    for f in files:
        by_blob.setdefault(f.blob, []).append(f)
    for blob, content in gitutil.cat_blobs(root, list(by_blob)):
        for f in by_blob[blob]:
            rid = f.loose_id
            if rid is not None:
                if counted is not None:
                    counted[0] += 1
                key = bytes.fromhex(rid)
                if key not in seen:
                    seen.add(key)
                    if wanted is None or any(w in b"\n" + content for w in wanted):
                        yield rid, content
                continue
            where = f"{OBJECTS_DIR}/{f.path}@{blob[:12]}"
            if not content.startswith(pack.HEADER) or (len(content) > len(pack.HEADER) and _SEP not in content):
                pack.parse(content, where, verify=False)  # raises: what is wrong with it
            yield from _pack_entries(content, wanted, seen, where, counted)


def _pack_entries(
    content: bytes, wanted: list[bytes] | None, seen: set[bytes], where: str, counted: list[int] | None = None
) -> Iterator[tuple[str, bytes]]:
    """Every entry of a pack whose id is not in ``seen`` (``wanted``: only those matching)."""
    if wanted is not None:
        yield from _wanted_entries(content, wanted, seen, where, counted)
        return
    starts = _separators(content)
    if counted is not None:
        counted[0] += len(starts)
    width = len(_SEP)
    for i, sep in enumerate(starts):
        key_text = content[sep + width : sep + width + pack.ID_HEX_LEN]
        try:
            key = bytes.fromhex(key_text.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            raise RecordError(where, "damaged pack entry (conflict markers?)") from None
        if key in seen:
            continue  # an id already read from another file
        seen.add(key)
        body_at = sep + width + pack.ID_HEX_LEN + 1
        end = starts[i + 1] + 1 if i + 1 < len(starts) else len(content)
        yield key.hex(), content[body_at:end]


def _wanted_entries(
    content: bytes, wanted: list[bytes], seen: set[bytes], where: str, counted: list[int] | None
) -> Iterator[tuple[str, bytes]]:
    """The entries of a pack that contain one of ``wanted``, found from the matches alone:
    the separator before each match and the one after it (a pull of a slice of a pack
    touches the slice, not every separator line of the pack)."""
    if counted is not None:
        counted[0] += content.count(_SEP)
    width = len(_SEP)
    starts: set[int] = set()
    for needle in wanted:
        at = content.find(needle)
        while at >= 0:
            start = content.rfind(_SEP, 0, at + 1)
            if start >= 0:
                starts.add(start)
            nxt = content.find(_SEP, at + 1)
            if nxt < 0:
                break
            at = content.find(needle, nxt)  # the next entry: this one is taken
    for start in sorted(starts):
        key_text = content[start + width : start + width + pack.ID_HEX_LEN]
        try:
            key = bytes.fromhex(key_text.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            raise RecordError(where, "damaged pack entry (conflict markers?)") from None
        if key in seen:
            continue  # an id already read from another file
        seen.add(key)
        body_at = start + width + pack.ID_HEX_LEN + 1
        end = content.find(_SEP, body_at)
        yield key.hex(), content[body_at : end + 1 if end >= 0 else len(content)]


def _write_pack(
    repo: Repo, site: str, period: str, new: dict[str, bytes], loose: dict[str, bytes], result: Brought
) -> None:
    """Write ``new`` as a pack of its own (packs are written once, named by content), as
    gc would; what must stay loose (half of its pack or more) goes to ``loose``."""
    members = {rid: (data, Path()) for rid, data in new.items()}
    gc._keep_dominant(members)
    loose.update((rid, data) for rid, data in new.items() if rid not in members)
    if members:
        path = gc.write_pack(repo, site, period, {rid: data for rid, (data, _p) in members.items()})
        result.packs.append(path.relative_to(repo.objects_dir).as_posix())


def _index_packs(repo: Repo, paths: list[str], known: Mapping[str, Derived] | None = None) -> None:
    """Give the checkout's query index the packs just written, if it exists."""
    if not paths:
        return
    import sqlite3

    from cmfgit import index

    try:
        index.add_files(repo, paths, known)
    except (CmfgitError, OSError, sqlite3.Error):
        pass  # the index is derived: the next read command finds the packs itself
