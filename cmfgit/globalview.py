"""The global metadata view: the branch ``cmf/global``, built tree-level.

``cmf/global`` holds ``.cmf/objects/...`` and nothing else: the union of the
records of every commit fed into it (every site, every branch). It is built
from git objects alone with dulwich, so it needs no working tree and runs in a
bare repository (from a ``post-receive`` hook) as well as in a clone.

The union is of object paths. Loose records are content-addressed, so one path
always holds the same bytes, and so do packs (``pack/<site>/<period>-<hash>.yaml``,
named by their content); a record in two packs is counted once. An older pack
path (``pack/<site>/<period>.yaml``, rewritten in place by earlier versions) may
hold different bytes on two branches of the same site; their records are then
unioned into one pack. The view is append-only: a record that a branch later
removes (``git revert``, ``gc``) stays in the global view.

Each global commit has the previous global tip as its only parent, so the
branch never drags code history along. Its message carries trailers::

    Cmfgit-Records: 400          record entries in the view
    Cmfgit-Source: <tree id>     a source ``.cmf/objects`` tree the view contains

A later union skips a source whose objects tree the tip already lists, so
re-running it over unchanged branches costs almost nothing.
"""

from __future__ import annotations

import re
import stat
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from dulwich.objects import Blob, Commit, ObjectID, Tree
from dulwich.repo import Repo as DulwichRepo

from cmfgit import canonical, centralhook, gitutil, pack, treeread
from cmfgit.errors import CmfgitError, NotARepoError, RecordError
from cmfgit.merge import salvage

GLOBAL_BRANCH = "cmf/global"
GLOBAL_REF = "refs/heads/" + GLOBAL_BRANCH
OBJECTS_PATH = (b".cmf", b"objects")
RECORDS_TRAILER = "Cmfgit-Records"
SOURCE_TRAILER = "Cmfgit-Source"
IDENTITY = b"cmfgit <cmfgit@localhost>"

_TREE_MODE = stat.S_IFDIR
_BLOB_MODE = stat.S_IFREG | 0o644
_SHARD = re.compile(rb"^[0-9a-f]{2}$")
_LOOSE = re.compile(rb"^[0-9a-f]{62}\.yaml$")


def tracking_ref(remote: str) -> str:
    """Where a clone keeps its copy of the remote's global branch."""
    return f"refs/remotes/{remote}/{GLOBAL_BRANCH}"


def open_objects(git_dir: Path) -> DulwichRepo:
    """The dulwich repository of a git dir (bare, or a clone's common dir)."""
    return DulwichRepo(str(git_dir))


# -- reading ------------------------------------------------------------------


def objects_tree(repo: DulwichRepo, commit_id: ObjectID) -> ObjectID | None:
    """The tree id of ``.cmf/objects`` in a commit, or None if it has none."""
    obj = repo.object_store[commit_id]
    if not isinstance(obj, Commit):
        raise CmfgitError(f"{commit_id.decode()} is not a commit")
    tree_id: ObjectID = ObjectID(obj.tree)
    for name in OBJECTS_PATH:
        tree = repo.object_store[tree_id]
        assert isinstance(tree, Tree)
        try:
            mode, sha = tree[name]
        except KeyError:
            return None
        if not stat.S_ISDIR(mode):
            return None
        tree_id = ObjectID(sha)
    return tree_id


def _blob(repo: DulwichRepo, sha: ObjectID) -> bytes:
    obj = repo.object_store[sha]
    if not isinstance(obj, Blob):
        raise CmfgitError(f"object {sha.decode()} is not a blob")
    return obj.as_raw_string()


def trailers(message: bytes) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in message.decode("utf-8", "replace").splitlines():
        key, sep, value = line.partition(": ")
        if sep and key.startswith("Cmfgit-"):
            found.setdefault(key, []).append(value.strip())
    return found


# -- the union ------------------------------------------------------------------


# Loose record blobs found to match their ids, per object store, for the life of the
# process: a push unions the same new records three times (its site ref, the check of
# cmf/global, the union pushed to it), and each check is a git cat-file and a hash.
_VERIFIED: dict[str, set[tuple[ObjectID, str]]] = {}


class _Union:
    """Unions trees into the object store, counting records the base lacked."""

    def __init__(self, repo: DulwichRepo, base: ObjectID | None) -> None:
        self.repo = repo
        self.store = repo.object_store
        self.base = base  # the view's objects tree before this union
        self.added = 0
        self.skipped: list[str] = []  # one line per damaged file left out (or only partly taken)
        self._trees: dict[ObjectID, Tree] = {}
        self._intact: set[ObjectID] = set()  # loose blobs already checked against their names
        self._counted: set[str] = set()  # packed records counted as added by this union
        self._group_ids: dict[str, set[str]] = {}  # pack group -> ids the base view packs in it

    def check_loose(self, base: ObjectID | None, others: list[ObjectID]) -> None:
        """Check the loose records new to the view against their ids in one ``git cat-file``
        (reading them one by one through dulwich costs ~20x more)."""
        wanted: dict[ObjectID, str] = {}
        for sha in dict.fromkeys(others):
            if sha == base:
                continue
            have = self.tree(base) if base is not None else None
            for shard in self.tree(sha).items():
                if not (stat.S_ISDIR(shard.mode) and _SHARD.match(shard.path)):
                    continue
                had = have[shard.path] if have is not None and shard.path in have else None
                if had is not None and had[1] == shard.sha:
                    continue
                old = self.tree(ObjectID(had[1])) if had is not None and stat.S_ISDIR(had[0]) else None
                for entry in self.tree(ObjectID(shard.sha)).items():
                    if _LOOSE.match(entry.path) and (old is None or entry.path not in old):
                        wanted[ObjectID(entry.sha)] = (shard.path + entry.path).decode()[:-5]
        verified = _VERIFIED.setdefault(str(self.repo.path), set())
        self._intact.update(sha for sha, rid in wanted.items() if (sha, rid) in verified)
        blobs = [sha.decode() for sha, rid in wanted.items() if (sha, rid) not in verified]
        for blob, content in gitutil.cat_blobs(self.repo.path, blobs):
            sha = ObjectID(blob.encode())
            if canonical.digest(content) == wanted[sha]:
                self._intact.add(sha)
                verified.add((sha, wanted[sha]))

    def loose_in_base(self, rid: str) -> bool:
        """True if the view already holds ``rid`` as a loose record (before a gc packed it)."""
        if self.base is None:
            return False
        root = self.tree(self.base)
        shard = rid[:2].encode()
        if shard not in root:
            return False
        mode, sha = root[shard]
        return stat.S_ISDIR(mode) and (rid[2:] + ".yaml").encode() in self.tree(ObjectID(sha))

    def packed_in_base(self, path: str) -> set[str]:
        """The ids the view held before this union in the packs of ``path``'s group (its
        site directory and period), read once per group."""
        folder, _, name = path.rpartition("/")
        group = f"{folder}/{pack.period_of(name)}"
        found = self._group_ids.get(group)
        if found is not None:
            return found
        found = self._group_ids[group] = set()
        tree = self.base
        for part in folder.split("/"):
            if tree is None:
                break
            entries = self.tree(tree)
            step = part.encode("utf-8", "surrogateescape")
            tree = ObjectID(entries[step][1]) if step in entries and stat.S_ISDIR(entries[step][0]) else None
        if tree is None:
            return found
        blobs = [
            entry.sha.decode()
            for entry in self.tree(tree).items()
            if not stat.S_ISDIR(entry.mode)
            and entry.path.endswith(b".yaml")
            and pack.period_of(entry.path.decode("utf-8", "replace")) == group.rpartition("/")[2]
        ]
        for _blob, data in gitutil.cat_blobs(self.repo.path, blobs):
            try:
                found.update(pack.parse(data, path, verify=False))
            except RecordError:
                found.update(salvage(data, path)[0])
        return found

    def tree(self, sha: ObjectID) -> Tree:
        cached = self._trees.get(sha)
        if cached is None:
            obj = self.store[sha]
            if not isinstance(obj, Tree):
                raise CmfgitError(f"object {sha.decode()} is not a tree")
            cached = self._trees[sha] = obj
        return cached

    def union(self, base: ObjectID | None, others: list[ObjectID], path: str) -> ObjectID | None:
        """A tree holding ``base`` and every tree in ``others``, without what is damaged
        (None: nothing left). Every new record is checked against its id."""
        todo = [t for t in dict.fromkeys(others) if t != base]
        if not todo:
            return base
        base_tree = self.tree(base) if base is not None else None
        names: dict[bytes, list[tuple[int, ObjectID]]] = {}
        for sha in todo:
            for entry in self.tree(sha).items():
                names.setdefault(entry.path, []).append((entry.mode, entry.sha))
        result = Tree()
        if base_tree is not None:
            for entry in base_tree.items():
                result.add(entry.path, entry.mode, entry.sha)
        for name, entries in names.items():
            sub = f"{path}/{name.decode('utf-8', 'surrogateescape')}" if path else name.decode("utf-8", "replace")
            have: tuple[int, ObjectID] | None = None
            if base_tree is not None and name in base_tree:
                have = base_tree[name]
            dirs = {stat.S_ISDIR(mode) for mode, _ in entries} | ({stat.S_ISDIR(have[0])} if have else set())
            if len(dirs) > 1:
                raise RecordError(f".cmf/objects/{sub}", "is a file on one side and a directory on another")
            shas = [sha for _, sha in entries]
            if dirs == {True}:
                merged = self.union(have[1] if have else None, shas, sub)
                if merged is not None:
                    result.add(name, _TREE_MODE, merged)
            else:
                merged = self.union_blobs(have[1] if have else None, shas, sub)
                if merged is not None:
                    result.add(name, _BLOB_MODE, merged)
        if base is not None and result.id == base:
            return base
        if not len(result):
            return None
        if result.id not in self.store:
            self.store.add_object(result)
        self._trees[result.id] = result
        return result.id

    # -- each record once: what a site's gc or repack replaced leaves the view too -------

    def compact(self, base: ObjectID | None, root: ObjectID) -> ObjectID:
        """``root`` (the union's objects tree) without the files whose every record another
        file of the view holds: the packs a repack folded into a bigger one, and loose
        records a gc packed. Only the groups (site directory and period) this union
        touched are read; a pack that does not parse is never dropped, nor used to drop."""
        from cmfgit import gc

        packs = self._files(root, "pack")
        before = dict(self._files(base, "pack")) if base is not None else {}
        loose = self._loose(root)
        loose_before = set(self._loose(base)) if base is not None else set()
        groups: dict[str, list[tuple[str, ObjectID]]] = {}
        for path, sha in packs.items():
            groups.setdefault(_group(path), []).append((path, sha))
        touched = {_group(p) for p, sha in packs.items() if before.get(p) != sha}
        new_loose = [rid for rid in loose if rid not in loose_before]
        if new_loose:
            shas = [loose[rid][1].decode() for rid in new_loose]
            for _blob_id, data in gitutil.cat_blobs(self.repo.path, shas):
                site, day = gc.group_of(data, "day")
                touched.update(
                    g for g in groups if g.startswith(f"pack/{site}/") and day.startswith(g.rpartition("/")[2])
                )
        if not touched:
            return root
        wanted = sorted({sha.decode() for g in touched for _p, sha in groups[g]})
        ids: dict[str, set[str] | None] = {}
        for blob_id, data in gitutil.cat_blobs(self.repo.path, wanted):
            try:
                ids[blob_id] = set(pack.parse(data, "pack", verify=False))
            except RecordError:
                ids[blob_id] = None
        drop: set[str] = set()
        covered: set[str] = set()
        in_base: set[str] = set()
        for g in sorted(touched):
            members = [(p, sha, ids.get(sha.decode())) for p, sha in groups[g]]
            seen: set[str] = set()
            for p, _sha, found in sorted(members, key=lambda m: (-len(m[2] or ()), m[0])):
                if found is not None and found <= seen:
                    drop.add(p)
                    continue
                seen |= found or set()
            for p, sha, found in members:
                if found is not None and before.get(p) == sha:
                    in_base |= found
            covered |= seen
        for rid, (path, _sha) in loose.items():
            if rid in covered:
                drop.add(path)
                if rid not in loose_before and rid in in_base and rid in self._counted:
                    self._counted.discard(rid)  # (counted as new when picked: the view held it packed)
                    self.added -= 1
        if not drop:
            return root
        dirs = {d for path in drop for d in _ancestors(path)}
        return self._without(root, drop, dirs, "") or root

    def _files(self, root: ObjectID, under: str) -> dict[str, ObjectID]:
        """Path -> blob of the ``.yaml`` files below ``under`` in the objects tree ``root``."""
        found: dict[str, ObjectID] = {}
        top = self.tree(root)
        if under.encode() not in top or not stat.S_ISDIR(top[under.encode()][0]):
            return found
        todo = [(under, ObjectID(top[under.encode()][1]))]
        while todo:
            prefix, sha = todo.pop()
            for entry in self.tree(sha).items():
                path = f"{prefix}/{entry.path.decode('utf-8', 'surrogateescape')}"
                if stat.S_ISDIR(entry.mode):
                    todo.append((path, ObjectID(entry.sha)))
                elif path.endswith(".yaml"):
                    found[path] = ObjectID(entry.sha)
        return found

    def _loose(self, root: ObjectID) -> dict[str, tuple[str, ObjectID]]:
        """Id -> (path, blob) of the loose records of the objects tree ``root``."""
        found: dict[str, tuple[str, ObjectID]] = {}
        for shard in self.tree(root).items():
            if stat.S_ISDIR(shard.mode) and _SHARD.match(shard.path):
                for entry in self.tree(ObjectID(shard.sha)).items():
                    if _LOOSE.match(entry.path):
                        name = entry.path.decode()
                        found[shard.path.decode() + name[:-5]] = (f"{shard.path.decode()}/{name}", ObjectID(entry.sha))
        return found

    def _without(self, sha: ObjectID, drop: set[str], dirs: set[str], prefix: str) -> ObjectID | None:
        """The tree ``sha`` (at ``prefix``) without the files ``drop``; None when nothing is left."""
        result = Tree()
        changed = False
        for entry in self.tree(sha).items():
            path = prefix + entry.path.decode("utf-8", "surrogateescape")
            if stat.S_ISDIR(entry.mode):
                if path in dirs:
                    sub = self._without(ObjectID(entry.sha), drop, dirs, path + "/")
                    if sub != entry.sha:
                        changed = True
                    if sub is not None:
                        result.add(entry.path, entry.mode, sub)
                    continue
            elif path in drop:
                changed = True
                continue
            result.add(entry.path, entry.mode, entry.sha)
        if not changed:
            return sha
        if not len(result):
            return None
        if result.id not in self.store:
            self.store.add_object(result)
        self._trees[result.id] = result
        return result.id

    def union_blobs(self, base: ObjectID | None, others: list[ObjectID], path: str) -> ObjectID | None:
        todo = [b for b in dict.fromkeys(others) if b != base]
        if not todo:
            return base
        kind = _kind(path)
        if kind == "loose":
            return self._pick_loose(base, ([base] if base is not None else []) + todo, path)
        if kind == "pack":
            return self._union_packs(base, todo, path)
        return base if base is not None else todo[0]  # not a record file: the first one wins, deterministically

    def _pick_loose(self, base: ObjectID | None, candidates: list[ObjectID], path: str) -> ObjectID | None:
        if base is not None:
            return base  # the view's own copy was checked when it came in
        rid = path.replace("/", "").removesuffix(".yaml")
        for sha in candidates:
            if sha in self._intact or canonical.digest(_blob(self.repo, sha)) == rid:
                if rid not in self._counted:  # not also in a pack this union brought
                    self._counted.add(rid)
                    self.added += 1
                return sha
        self.skipped.append(f".cmf/objects/{path}: skipped: does not match its id (edited or corrupted)")
        return None

    def _union_packs(self, base: ObjectID | None, todo: list[ObjectID], path: str) -> ObjectID | None:
        # The same site's pack diverged between branches: union its records,
        # never a choice between them. A damaged version (conflict markers
        # pushed with --no-verify, an edited record) gives what still verifies.
        where = f".cmf/objects/{path}"
        records: dict[str, bytes] = {}
        if base is not None:
            try:
                records = pack.parse(_blob(self.repo, base), where, verify=False)
            except RecordError:  # a view written before damage was skipped: keep what verifies
                records = salvage(_blob(self.repo, base), where)[0]
        before = set(records)
        clean: ObjectID | None = None
        for sha in todo:
            found, problems = salvage(_blob(self.repo, sha), where)
            if problems:
                self.skipped.append(
                    f"{where}: skipped {len(problems)} damaged part(s) (conflict markers or records that do not "
                    f"match their ids); kept the {len(found)} record(s) that verify"
                )
            elif base is None and len(todo) == 1:
                clean = sha  # one intact version, nothing to union: the blob as it is
            pack.merge_into(records, found.items())
        # Packs are named by content, so one record can come in several packs (two branches'
        # gcs, a repack): count it once, against the view's packs of its group.
        known = self.packed_in_base(path) if base is None else set()
        new = [r for r in records if r not in before and r not in known and r not in self._counted]
        new = [r for r in new if not self.loose_in_base(r)]
        self._counted.update(new)
        self.added += len(new)
        if clean is not None:
            return clean
        if not records:
            return None
        blob = Blob.from_string(pack.serialize(records))
        if blob.id not in self.store:
            self.store.add_object(blob)
        return blob.id


def _group(path: str) -> str:
    """``pack/<site>/<period>`` of a pack's path relative to ``.cmf/objects``."""
    folder, _, name = path.rpartition("/")
    return f"{folder}/{pack.period_of(name)}"


def _ancestors(path: str) -> list[str]:
    parts = path.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def _kind(path: str) -> str:
    """'loose', 'pack' or 'other' for a path relative to ``.cmf/objects``."""
    parts = path.split("/")
    if len(parts) == 2 and _SHARD.match(parts[0].encode()) and _LOOSE.match(parts[1].encode()):
        return "loose"
    if parts[0] == "pack" and len(parts) > 1 and path.endswith(".yaml"):
        return "pack"
    return "other"


@dataclass
class UnionResult:
    """What a union produced. ``commit`` is None when the view did not change."""

    commit: ObjectID | None
    base: ObjectID | None
    records: int
    added: int
    sources: int
    merged: int  # sources that were not already in the view
    skipped: list[str] = field(default_factory=list)  # damaged files left out, one line each


def build_union(
    repo: DulwichRepo,
    base_commit: ObjectID | None,
    sources: Iterable[ObjectID],
    what: str = "",
) -> UnionResult:
    """Union the ``.cmf/objects`` of ``sources`` (commit ids) into the view at
    ``base_commit``. Writes the new objects and returns the new commit id
    (not yet referenced by any ref), or None when nothing was new."""
    source_list = list(dict.fromkeys(sources))
    base_tree: ObjectID | None = None
    known: set[str] = set()
    base_records = 0
    if base_commit is not None:
        tip = repo.object_store[base_commit]
        if not isinstance(tip, Commit):
            raise CmfgitError(f"{GLOBAL_BRANCH} does not point to a commit")
        base_tree = objects_tree(repo, base_commit)
        found = trailers(tip.message)
        known.update(found.get(SOURCE_TRAILER, []))
        counted = found.get(RECORDS_TRAILER)
        if counted and counted[0].isdigit():
            base_records = int(counted[0])
        else:
            base_records = sum(1 for _ in treeread.iter_records(repo.path, base_commit.decode()))
    trees: list[ObjectID] = []
    for commit_id in source_list:
        tree = objects_tree(repo, commit_id)
        if tree is not None:
            trees.append(tree)
    fresh = [t for t in dict.fromkeys(trees) if t != base_tree and t.decode() not in known]
    union = _Union(repo, base_tree)
    if fresh:
        union.check_loose(base_tree, fresh)
    new_tree = union.union(base_tree, fresh, "") if fresh else base_tree
    if fresh and new_tree is not None and new_tree != base_tree:
        new_tree = union.compact(base_tree, new_tree)
    if new_tree is None or (new_tree == base_tree and base_commit is not None):
        return UnionResult(None, base_commit, base_records, 0, len(source_list), 0, union.skipped)  # nothing new
    records = base_records + union.added
    # Every source tree is now in the view: list them all, so the next union skips them.
    commit = _commit(repo, new_tree, base_commit, records, union.added, list(dict.fromkeys(trees)), what)
    return UnionResult(commit, base_commit, records, union.added, len(source_list), len(fresh), union.skipped)


def _commit(
    repo: DulwichRepo,
    objects: ObjectID,
    parent: ObjectID | None,
    records: int,
    added: int,
    sources: list[ObjectID],
    what: str,
) -> ObjectID:
    store = repo.object_store
    cmf = Tree()
    cmf.add(OBJECTS_PATH[1], _TREE_MODE, objects)
    store.add_object(cmf)
    root = Tree()
    root.add(OBJECTS_PATH[0], _TREE_MODE, cmf.id)
    store.add_object(root)
    commit = Commit()
    commit.tree = root.id
    commit.parents = [parent] if parent is not None else []
    commit.author = commit.committer = IDENTITY
    commit.author_time = commit.commit_time = int(time.time())
    commit.author_timezone = commit.commit_timezone = 0
    lines = [f"cmfgit global: +{added} record(s){' from ' + what if what else ''}", ""]
    lines.append(f"{RECORDS_TRAILER}: {records}")
    lines += [f"{SOURCE_TRAILER}: {s.decode()}" for s in sources]
    commit.message = ("\n".join(lines) + "\n").encode()
    store.add_object(commit)
    return commit.id


# -- updating the branch in a repository (bare or not) --------------------------


def git_dir_of(path: Path) -> Path:
    """The (common) git dir of the repository at ``path``, bare or not."""
    out = gitutil.git(["rev-parse", "--path-format=absolute", "--git-common-dir"], path, check=False)
    text = out.decode("utf-8", "surrogateescape").strip()
    if not text:
        raise NotARepoError(str(path))
    return Path(text)


def ref_value(git_dir: Path, ref: str) -> str | None:
    out = gitutil.git(["rev-parse", "--verify", "--quiet", ref + "^{commit}"], git_dir, check=False)
    value = out.decode().strip()
    return value or None


SITES_PREFIX = "refs/cmf/sites/"  # each site's own ref (siterefs.py)


def local_branches(git_dir: Path, exclude: str = GLOBAL_REF) -> list[str]:
    """Commit ids of every branch and every site ref of a repository, except the global branch."""
    out = gitutil.git(
        ["for-each-ref", "--format=%(objectname) %(objecttype) %(refname)", "refs/heads/", SITES_PREFIX], git_dir
    )
    ids: list[str] = []
    for line in out.decode().splitlines():
        oid, kind, name = line.split(" ", 2)
        if name != exclude and kind == "commit":
            ids.append(oid)
    return ids


@dataclass
class UpdateResult:
    ref: str
    old: str | None
    new: str | None  # None: already up to date
    records: int
    added: int
    attempts: int
    skipped: list[str] = field(default_factory=list)  # damaged files left out of the view, one line each


def update_local(
    git_dir: Path, attempts: int = 20, what: str = "all branches and site refs", locked: bool = True
) -> UpdateResult:
    """Union every branch and site ref of the repository at ``git_dir`` into its
    own ``cmf/global`` (``cmfgit global update``), with compare-and-swap.

    With ``locked`` the update holds ``<git dir>/cmf/locks/global.lock``, so
    concurrent runs (one post-receive hook per push) queue instead of racing;
    each reads the refs once it holds the lock, so the last one sees every push
    that came before it. Compare-and-swap still guards against sites that push
    ``cmf/global`` themselves."""
    if locked:
        with centralhook.lock(git_dir):
            return update_held(git_dir, attempts, what)
    repo = open_objects(git_dir)
    try:
        for attempt in range(1, attempts + 1):
            old = ref_value(git_dir, GLOBAL_REF)
            sources = [ObjectID(s.encode()) for s in local_branches(git_dir)]
            result = build_union(repo, ObjectID(old.encode()) if old else None, sources, what)
            if result.commit is None:
                return UpdateResult(GLOBAL_REF, old, None, result.records, 0, attempt, result.skipped)
            new = result.commit.decode()
            expected = old if old is not None else "0" * len(new)
            message = f"cmfgit global update: +{result.added} record(s)"
            if gitutil.git_ok(["update-ref", "-m", message, GLOBAL_REF, new, expected], git_dir):
                return UpdateResult(GLOBAL_REF, old, new, result.records, result.added, attempt, result.skipped)
            backoff(attempt)
    finally:
        repo.close()
    raise CmfgitError(f"could not update {GLOBAL_BRANCH} after {attempts} attempts: it kept moving; run it again")


def update_held(git_dir: Path, attempts: int = 20, what: str = "all branches and site refs") -> UpdateResult:
    """:func:`update_local` by the holder of the lock: it first takes in every push
    that marked ``global.pending`` (``centralhook.py``), then leaves the count for
    the hooks it took in."""
    centralhook.taken(git_dir)
    result = update_local(git_dir, attempts, what, locked=False)
    centralhook.remember(git_dir, result.records)
    return result


def backoff(attempt: int) -> None:
    """Sleep a little, more after each lost race, with jitter so racers spread out."""
    import random

    time.sleep(random.uniform(0.02, 0.1) * min(attempt, 10))
