"""Retractions: withdrawing records is itself a record (DESIGN §7b).

A per-file merge cannot see a deletion made at another path: a ``git revert``
removes loose files while another branch moved the same records into a pack,
and the next merge would bring them back. So a withdrawal is data: a
retraction record (``cmfgit/retraction/1``) names the ids it withdraws, and
every reader and every union honours it as a two-phase set does. Once an id
is retracted in a view, no layout of loose files and packs brings it back.

Retractions are written

- by ``cmfgit retract ID...`` (and :func:`cmfgit.retract`): :func:`retract`;
- by the hooks, when a commit removes records: pre-commit for the commit it
  prepares (:func:`note_staged_removals`), post-commit for the commits that
  bypass it (``git revert``, ``cherry-pick``, ``commit --no-verify``:
  :func:`note_committed_removals`). A move (``cmfgit gc`` folding loose
  records into packs) removes no id and writes nothing.

This module is on the hooks' path: no yaml, typer or rich.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator

from cmfgit import gitutil, pack
from cmfgit.errors import GitError, RecordError
from cmfgit.repo import OBJECTS_DIR

TYPE_CHECKING = False  # typing's constant without importing typing (the hooks' start-up)
if TYPE_CHECKING:
    from typing import Any

    from cmfgit.repo import Repo
    from cmfgit.store import Store

SCHEMA_LINE = b"\nschema: cmfgit/retraction/1\n"  # canonical keys sort: 'at' and 'ids' come first
_IDS_BLOCK = re.compile(rb"^ids:\n((?:- '?[0-9a-f]{64}'?\n)+)", re.MULTILINE)
_ID = re.compile(rb"[0-9a-f]{64}")
_LOOSE_REL = re.compile(r"^[0-9a-f]{2}/[0-9a-f]{62}\.yaml$")
_FULL_ID = re.compile(r"^[0-9a-f]{64}$")


# -- reading ----------------------------------------------------------------------


def is_retraction(data: bytes) -> bool:
    """Are these canonical bytes a retraction record? (A byte test, no parsing.)"""
    return SCHEMA_LINE in data


def ids_in(data: bytes) -> list[str]:
    """The ids a retraction record's canonical bytes withdraw (none for any other record)."""
    if SCHEMA_LINE not in data:
        return []
    found = _IDS_BLOCK.search(data)
    return [m.decode() for m in _ID.findall(found.group(1))] if found else []


def retracted_by(records: Iterable[bytes]) -> set[str]:
    """Every id that the retraction records among ``records`` withdraw."""
    withdrawn: set[str] = set()
    for data in records:
        if SCHEMA_LINE in data:
            withdrawn.update(ids_in(data))
    return withdrawn


def retracted(store: Store) -> set[str]:
    """The ids withdrawn by the retractions of a working tree's store (loose and packed)."""
    return retracted_by(stored.data for stored in store.iter_records())


def _loose_retracted(repo: Repo) -> set[str]:
    """The ids withdrawn by the loose retractions of the working tree (pending ones are loose)."""
    from cmfgit.store import Store

    found: list[bytes] = []
    for _rid, path in Store(repo.objects_dir).iter_loose():
        try:
            found.append(path.read_bytes())
        except FileNotFoundError:
            continue
    return retracted_by(found)


def live_ids(store: Store) -> set[str]:
    """The ids of the records a reader of this store shows: neither retracted nor retractions."""
    withdrawn: set[str] = set()
    ids: set[str] = set()
    for stored in store.iter_records():
        if SCHEMA_LINE in stored.data:
            withdrawn.update(ids_in(stored.data))
        else:
            ids.add(stored.id)
    return ids - withdrawn


# -- writing ----------------------------------------------------------------------


def record(
    ids: Iterable[str], *, reason: str | None = None, site: str | None = None, user: str | None = None
) -> dict[str, Any]:
    """The retraction record that withdraws ``ids``."""
    from cmfgit import schema

    found: dict[str, Any] = {"schema": schema.RETRACTION, "ids": sorted(set(ids)), "at": schema.utc_now()}
    if reason:
        found["reason"] = reason
    if site:
        found["site"] = site
    if user:
        found["user"] = user
    return found


def _write(repo: Repo, ids: Iterable[str], reason: str | None) -> tuple[str, str]:
    """Store a retraction of ``ids`` as a loose record; returns (its id, its repository-relative path)."""
    from cmfgit.config import site_name
    from cmfgit.recorder import _user
    from cmfgit.store import Store

    store = Store(repo.objects_dir)
    site = site_name(repo, {"cmfgit.site": gitutil.config_get(repo.root, "cmfgit.site") or ""})
    rid = store.put(record(ids, reason=reason, site=site, user=_user()))
    return rid, store.loose_path(rid).relative_to(repo.root).as_posix()


def retract(
    repo: Repo, targets: Iterable[str], *, reason: str | None = None, commit: bool = False
) -> tuple[str | None, list[str], list[str]]:
    """Withdraw the records that ``targets`` (ids or unique prefixes) name.

    A full id may name a record this checkout does not hold (one seen with
    ``log --global``, say); a prefix must name one that it holds.

    Returns (the new retraction's id or None when every target was already
    retracted, the ids it withdraws, the ids that were already retracted).
    A retraction cannot itself be retracted: it is permanent (a two-phase set).
    """
    from cmfgit.errors import ObjectNotFound, UsageError
    from cmfgit.store import Store

    repo.require_initialized()
    store = Store(repo.objects_dir)
    wanted: list[str] = []
    for target in targets:
        try:
            rid = store.resolve(target)
        except ObjectNotFound:
            full = target.strip().lower()
            if not _FULL_ID.match(full):
                raise
            wanted.append(full)  # a record this checkout lacks (seen in the global view, say): withdrawn all the same
            continue
        if is_retraction(store.get_bytes(rid).data):
            raise UsageError(f"{rid[:12]} is a retraction: a retraction is permanent and cannot be retracted")
        wanted.append(rid)
    if not wanted:
        raise UsageError("nothing to retract: give one or more record ids")
    already = retracted(store)
    new = sorted(set(wanted) - already)
    done = sorted(set(wanted) & already)
    if not new:
        return None, [], done
    rid, rel = _write(repo, new, reason)
    if commit:
        from cmfgit.commit import commit_metadata

        commit_metadata(repo, f"cmfgit: retract {len(new)} record(s)", [rel])
    return rid, new, done


# -- merges -----------------------------------------------------------------------


def keep_surviving_files(repo: Repo) -> list[str]:
    """After a merge stopped: resolve each modify/delete conflict under .cmf/objects
    (a pack one side deleted, the other changed) by keeping the version that exists.

    A deletion of records is a retraction's job, and the side that deleted the
    file wrote one, so keeping the records loses nothing and brings nothing
    back. Returns the paths resolved (``git add``-ed); others are left as git
    left them.
    """
    out = gitutil.git(["ls-files", "-u", "-z", "--", OBJECTS_DIR], repo.root)
    stages: dict[str, set[bytes]] = {}
    for entry in out.split(b"\0"):
        if entry:
            meta, _, name = entry.partition(b"\t")
            stages.setdefault(name.decode("utf-8", "surrogateescape"), set()).add(meta.split(b" ")[2])
    resolved = [
        path
        for path, found in sorted(stages.items())
        if not {b"2", b"3"} <= found and _kind(path[len(OBJECTS_DIR) + 1 :]) and (repo.root / path).is_file()
    ]
    if resolved:
        gitutil.git(["add", "--", *resolved], repo.root)
    return resolved


# -- what a commit removes (the hooks) ---------------------------------------------


class _Change:
    __slots__ = ("status", "path", "old", "new")

    def __init__(self, status: str, path: str, old: str, new: str) -> None:
        self.status, self.path, self.old, self.new = status, path, old, new


def _raw_changes(out: bytes) -> list[_Change]:
    """``git diff-* -z --raw`` output: status, path (under .cmf/objects), old and new blob."""
    fields = out.split(b"\0")
    changes = []
    for meta, name in zip(fields[0::2], fields[1::2]):
        parts = meta.split(b" ")
        if len(parts) < 5 or not meta.startswith(b":"):
            continue
        path = name.decode("utf-8", "surrogateescape")[len(OBJECTS_DIR) + 1 :]
        changes.append(_Change(parts[4][:1].decode(), path, parts[2].decode(), parts[3].decode()))
    return changes


def _kind(rel: str) -> str | None:
    if rel.rsplit("/", 1)[-1].startswith("."):
        return None
    if _LOOSE_REL.match(rel):
        return "loose"
    return "pack" if rel.startswith("pack/") and rel.endswith(".yaml") else None


def _records(rel: str, data: bytes) -> dict[str, bytes]:
    """id -> bytes of one record file's version (nothing for a damaged pack: it removes nothing)."""
    kind = _kind(rel)
    if kind == "loose":
        return {rel[:2] + rel[3:-5]: data}
    if kind == "pack":
        try:
            return pack.parse(data, rel, verify=False)
        except RecordError:
            return {}
    return {}


def net_removed(repo: Repo, changes: list[_Change], listing: list[str], env: dict[str, str] | None = None) -> list[str]:
    """The record ids that ``changes`` remove and that no other file still holds.

    ``listing`` is the ``ls-files``/``ls-tree`` command (without paths) that
    lists the new state's files. Retraction records are never counted (they
    are permanent), nor ids that a retraction among the changes withdraws.
    """
    if not any(c.status in "DM" and _kind(c.path) for c in changes):
        return []  # only additions: the common commit
    blobs = sorted({c.old for c in changes if c.status in "DM"} | {c.new for c in changes if c.status in "AM"})
    contents = dict(gitutil.cat_blobs(repo.root, blobs))
    before: dict[str, bytes] = {}
    after: set[str] = set()
    withdrawn: set[str] = set()
    for c in changes:
        if c.status in "DM":
            before.update(_records(c.path, contents[c.old]))
        if c.status in "AM":
            now = _records(c.path, contents[c.new])
            after.update(now)
            withdrawn |= retracted_by(now.values())
    gone = {rid for rid, data in before.items() if rid not in after and SCHEMA_LINE not in data} - withdrawn
    if not gone:
        return []
    # Still held by a file this change did not touch? (loose at its own path, or in another pack)
    touched = {c.path for c in changes}
    loose = [f"{OBJECTS_DIR}/{rid[:2]}/{rid[2:]}.yaml" for rid in sorted(gone)]
    still: list[str] = []
    for start in range(0, len(loose), 500):
        out = gitutil.git([*listing, "--", *loose[start : start + 500]], repo.root, env=env)
        still += [p.decode()[len(OBJECTS_DIR) + 1 :] for p in out.split(b"\0") if p]
    gone -= {p[:2] + p[3:-5] for p in still if _kind(p) == "loose" and p not in touched}
    out = gitutil.git([*listing, "--", f"{OBJECTS_DIR}/pack"], repo.root, env=env)
    others = [p.decode()[len(OBJECTS_DIR) + 1 :] for p in out.split(b"\0") if p]
    other_packs = [p for p in others if _kind(p) == "pack" and p not in touched]
    if gone and other_packs:
        blob_of = _blob_ids(repo, listing, other_packs, env)
        for rel, data in _cat(repo, blob_of):
            records = _records(rel, data)
            gone -= set(records)
            gone -= retracted_by(records.values())
    return sorted(gone)


def _blob_ids(repo: Repo, listing: list[str], rels: list[str], env: dict[str, str] | None) -> dict[str, str]:
    """rel path -> blob id in the state ``listing`` lists (``-s``/non-name-only form)."""
    if listing[0] == "ls-files":
        args = ["ls-files", "-s", "-z", "--", *(f"{OBJECTS_DIR}/{r}" for r in rels)]
    else:
        args = ["ls-tree", "-r", "-z", listing[-1], "--", *(f"{OBJECTS_DIR}/{r}" for r in rels)]
    found: dict[str, str] = {}
    for entry in gitutil.git(args, repo.root, env=env).split(b"\0"):
        if not entry:
            continue
        meta, _, name = entry.partition(b"\t")
        parts = meta.split(b" ")
        blob = parts[1] if listing[0] == "ls-files" else parts[2]
        found[name.decode()[len(OBJECTS_DIR) + 1 :]] = blob.decode()
    return found


def _cat(repo: Repo, blob_of: dict[str, str]) -> Iterator[tuple[str, bytes]]:
    by_blob: dict[str, list[str]] = {}
    for rel, blob in blob_of.items():
        by_blob.setdefault(blob, []).append(rel)
    for blob, data in gitutil.cat_blobs(repo.root, sorted(by_blob)):
        for rel in by_blob[blob]:
            yield rel, data


def note_staged_removals(repo: Repo, env: dict[str, str]) -> str | None:
    """pre-commit: write a retraction of the ids the commit being prepared removes.

    Returns its repository-relative path (for the hook to stage), or None.
    """
    args = ["diff-index", "--cached", "-z", "--no-renames", "--diff-filter=ADM", "HEAD", "--", OBJECTS_DIR]
    try:
        out = gitutil.git(args, repo.root, env=env)
    except GitError:
        return None  # no commit yet: nothing to remove
    changes = _raw_changes(out)
    if not any(c.status in "DM" for c in changes):
        return None
    removed = _still_here(repo, net_removed(repo, changes, ["ls-files", "-z"], env))  # the index git is committing
    return _write(repo, removed, "removed by a commit")[1] if removed else None


def note_committed_removals(repo: Repo, rev: str = "HEAD") -> str | None:
    """post-commit: write a (pending) retraction of the ids commit ``rev`` removed
    relative to its first parent, unless that commit already withdrew them."""
    # One commit: diff-tree compares it with its first parent (and prints nothing for a root commit).
    args = ["diff-tree", "-r", "-z", "--no-commit-id", "--no-renames", "--diff-filter=ADM", rev]
    changes = _raw_changes(gitutil.git([*args, "--", OBJECTS_DIR], repo.root))
    if not any(c.status in "DM" for c in changes):
        return None
    removed = _still_here(repo, net_removed(repo, changes, ["ls-tree", "-r", "-z", "--name-only", rev]))
    if not removed:
        return None
    pending = _loose_retracted(repo)  # e.g. a retraction the next commit will carry
    removed = [rid for rid in removed if rid not in pending]
    return _write(repo, removed, "removed by a commit")[1] if removed else None


def _still_here(repo: Repo, removed: list[str]) -> list[str]:
    """``removed`` less the ids the working tree still holds, loose or in a pack.

    A commit that drops a record the working tree still has is no withdrawal: a
    commit of part of what gc did (the loose file's deletion without the pack that
    now holds it), or ``git rm --cached``. Readers still show such a record, so
    retracting it would hide it everywhere. A revert, or ``git rm``, removes the
    files too.
    """
    if not removed:
        return removed
    objects = repo.objects_dir
    left = [rid for rid in removed if not os.path.lexists(objects / rid[:2] / f"{rid[2:]}.yaml")]
    if not left:
        return left
    markers = {rid: pack.SEPARATOR + rid.encode() for rid in left}
    pack_dir = objects / "pack"
    if pack_dir.is_dir():
        for path in pack_dir.rglob("*.yaml"):
            try:
                data = path.read_bytes()
            except OSError:
                continue
            left = [rid for rid in left if markers[rid] not in data]
            if not left:
                break
    return left
