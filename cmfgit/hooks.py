"""The git hooks: metadata travels with the code, and stays valid and resolvable.

``cmfgit init`` (or ``cmfgit hooks install``) writes a small shell script per
hook into the directory ``git rev-parse --git-path hooks`` names (so
``core.hooksPath`` and worktrees are honoured). Each script carries the
marker ``# cmfgit-hook:`` and runs ``python -m cmfgit hook NAME`` with the
Python that installed it (else ``cmfgit`` on PATH, else ``python3 -m cmfgit``;
with none, it says so and lets git go on: see ``launcher.py``); a hook that
was there before is kept as ``NAME.legacy`` and still runs, first.

What each hook does (all are quiet, idempotent, and do nothing in a
repository without ``.cmf/``):

pre-commit
    Packs loose records past ``gc.threshold``, stages every pending change
    under ``.cmf/objects`` into the index git is committing, writes and stages
    a retraction when the commit removes records (``retractions.py``), and
    refuses the commit if a record being committed is invalid. While a rebase,
    merge, cherry-pick or revert is in progress it stages nothing but still
    verifies what is staged.
post-commit
    Keeps the code version (``git.tree``) of each newly committed record
    reachable under ``refs/cmf/keep/<id>``: a run's tree, dirty or clean, is
    written by cmfgit and no commit points to it, so ``git gc`` would prune it.
    Keeps the ``git.commit`` of a record too when the commit's history does not
    reach it (``git merge --squash`` brings a branch's records, not its commits).
    Writes a pending retraction when the commit removed records that pre-commit
    did not see (``git revert`` and ``cherry-pick`` skip pre-commit).
post-rewrite
    After ``commit --amend`` and rebase (squash included), keeps every
    rewritten commit that a record names as its ``git.commit`` under
    ``refs/cmf/keep/<id>``, so the run's code stays resolvable.
pre-push
    Refuses to push invalid records (catches commits made with ``--no-verify``).
    A site ref (``refs/cmf/sites/*``, see ``siterefs.py``) or ``cmf/global``
    holds the records of the branch pushed with it, and every union re-checks
    them: not checked twice. (``cmfgit push`` runs this check itself, and skips
    the hook, when the hook is cmfgit's alone.)
post-merge
    Keeps the ``git.commit`` of each record the merge or pull brought that
    the new HEAD does not reach (a squash made by the host), when this clone
    has that commit.
post-merge, post-checkout (and the three above)
    Call :func:`refresh_index`, the hook point of the query index.

A hook with nothing to do ends in its shell script, without starting Python
(20-50 ms each): no ``.cmf/``; pre-commit with nothing pending under
``.cmf/objects`` and no more loose records than ``gc.threshold``; post-merge
without a query index and with no record brought, post-checkout without
a query index; post-commit when the commit adds or removes no
record, or adds exactly the records pre-commit checked: pre-commit then leaves
the keep refs to create in ``.git/cmf/post-commit.refs`` (and what it checked
in ``post-commit.diff``), and the script creates them with one ``git
update-ref``. Anything else falls through to Python, which decides as before.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from cmfgit import gitutil, pack
from cmfgit.errors import CmfgitError, GitError, NotARepoError, RecordError, UsageError
from cmfgit.fsutil import atomic_write
from cmfgit.repo import OBJECTS_DIR, Repo, find_repo

HOOK_NAMES = ("pre-commit", "post-commit", "pre-push", "post-merge", "post-checkout", "post-rewrite")
MARKER = "# cmfgit-hook:"
KEEP_PREFIX = "refs/cmf/keep/"
HOOKS_SETTING = "cmfgit.hooks"  # 'false' after 'cmfgit hooks uninstall': do not reinstall by itself
USAGE = "usage: cmfgit hook NAME SCRIPT [ARGS...]  (run by the scripts 'cmfgit hooks install' writes)"
_BLOCKING = ("pre-commit", "pre-push")
_READS_STDIN = ("pre-push", "post-rewrite")
_IN_PROGRESS = ("rebase-merge", "rebase-apply", "MERGE_HEAD", "CHERRY_PICK_HEAD", "REVERT_HEAD")
_RESTAGE_FLAG = "restage-after-commit"
# What pre-commit leaves for post-commit: the changes it checked (``git
# diff-index -z`` output) in ``.diff``, the ``git update-ref --stdin`` commands
# of the keep refs in ``.refs``. The post-commit script compares the new
# commit's changes with ``.diff`` and, when they match, only runs update-ref.
_POST_COMMIT = "post-commit"
_GIT_BLOCK = re.compile(rb"^git:\n((?:  [^\n]*\n)+)", re.MULTILINE)
_CODE_FIELD = re.compile(rb"^  (commit|tree): ([0-9a-f]{40}(?:[0-9a-f]{24})?)$", re.MULTILINE)

TEMPLATE = """\
#!/bin/sh
{marker} {name} (installed by 'cmfgit hooks install'; 'cmfgit hooks uninstall' removes it)
# The hook that was here before, if any, is kept as {name}.legacy and runs first.
{variables}
# Nothing for cmfgit to do: run only the hook that was here before, without starting Python.
skip() {{
    if [ -x "$0.legacy" ]; then exec "$0.legacy" "$@"; fi
    exit 0
}}
[ -f .cmf/config.yaml ] || skip "$@"
{shortcut}# Find cmfgit: the interpreter that installed this hook, else 'cmfgit' on PATH, else python3 -m cmfgit.
{launch}why="cannot find cmfgit (not at $PY, not on PATH, not in python3)"
echo "cmfgit: $why: cmfgit's {name} hook is skipped{skipped}; reinstall it, then run 'cmfgit hooks install'" >&2
if [ -x "$0.legacy" ]; then
    exec "$0.legacy" "$@"
fi
"""

# Shell checks that let a hook with nothing to do skip Python's start-up
# (~20-50 ms per hook). Each decides exactly as the Python step would, or
# falls through to it. Git runs these hooks at the top of the working tree.
_GIT_DIR = """\
gd=${{GIT_DIR:-.git}}
[ -d "$gd" ] || gd=$(git rev-parse --git-dir 2>/dev/null) || gd=
"""
_SHORTCUTS = {
    # Nothing pending under .cmf/objects (so nothing to stage or check) and no
    # more loose records than gc.threshold (so nothing to pack).
    "pre-commit": """\
loose() {{ if [ -e "$1" ]; then echo $#; else echo 0; fi; }}
th=$(sed -n 's/^  threshold: \\(-\\{{0,1\\}}[0-9][0-9]*\\)$/\\1/p' .cmf/config.yaml 2>/dev/null)
if [ -n "$th" ] && {{ [ "$th" -le 0 ] || [ "$(loose .cmf/objects/[0-9a-f][0-9a-f]/*)" -le "$th" ]; }} \\
    && out=$(git --no-optional-locks status --porcelain --untracked-files=all -- .cmf/objects 2>/dev/null) \\
    && [ -z "$out" ]; then
    skip "$@"
fi
""",
    # The commit adds no record, or the pre-commit hook already checked exactly
    # what it adds and left the keep refs to create ({post_commit}); no index to refresh.
    "post-commit": _GIT_DIR
    + """\
st=$gd/cmf
if [ -n "$gd" ] && [ ! -f "$st/{restage}" ] && [ ! -f "$st/index.sqlite" ]; then
    changes() {{ git diff-tree -r -z --root --no-commit-id --no-renames --diff-filter=AM "$@" HEAD -- .cmf/objects; }}
    if [ -f "$st/{post_commit}.diff" ]; then
        if changes 2>/dev/null | cmp -s - "$st/{post_commit}.diff" \\
            && {{ [ ! -s "$st/{post_commit}.refs" ] || git update-ref --stdin <"$st/{post_commit}.refs"; }}; then
            rm -f "$st/{post_commit}.diff" "$st/{post_commit}.refs"
            skip "$@"
        fi
    elif git diff-tree -r --quiet --root --no-commit-id --no-renames --diff-filter=AMD HEAD -- .cmf/objects \\
        2>/dev/null; then
        skip "$@"
    fi
fi
""",
    # No query index to refresh.
    "post-checkout": _GIT_DIR
    + """\
[ -n "$gd" ] && [ ! -f "$gd/cmf/index.sqlite" ] && skip "$@"
""",
}
# No query index to refresh, and the merge (or pull) brought no record.
_SHORTCUTS["post-merge"] = _SHORTCUTS["post-checkout"].replace(
    '&& skip "$@"', '&& git diff-tree --quiet ORIG_HEAD HEAD -- .cmf/objects 2>/dev/null && skip "$@"'
)


def refresh_index(repo: Repo) -> None:
    """Hook point of the derived query index (``.git/cmf/index.sqlite``).

    Called after commit, merge, checkout and rewrite (never during a rebase
    or merge in progress, except post-rewrite, which ends a rebase). The index
    is keyed by tree ids, so this only has to be quick, not exact: the index
    must also catch up by itself when hooks did not run.
    """
    if not (repo.worktree_state_dir / "index.sqlite").exists():
        return  # nothing to refresh (the next read builds it); saves importing the index (~50 ms)
    import sqlite3

    from cmfgit import index

    try:
        index.refresh(repo, build_missing=False)  # a missing index is built by the next read, not here
    except (CmfgitError, sqlite3.Error, OSError):
        pass  # the index is a cache: never fail the user's git command over it


# -- installing ---------------------------------------------------------------


def hooks_dir(repo: Repo) -> Path:
    """Where git looks for hooks: honours core.hooksPath and worktrees."""
    out = gitutil.git_text(["rev-parse", "--git-path", "hooks"], repo.root)
    path = Path(out)
    return path if path.is_absolute() else repo.root / path


# What a hook skipped for want of cmfgit means: git goes on (blocking every commit
# of a clone whose cmfgit is gone would be worse), and says what is left undone.
_SKIPPED = {
    "pre-commit": ": pending records are neither staged nor checked (they stay pending, for a later commit)",
    "pre-push": ": the records pushed are not checked",
    "post-commit": ": the code versions of the records committed are not kept (refs/cmf/keep)",
    "post-rewrite": ": rewritten commits that records name are not kept (refs/cmf/keep)",
}


def script(name: str) -> str:
    from cmfgit import launcher  # only to install or check the hooks

    shortcut = _SHORTCUTS.get(name, "").format(restage=_RESTAGE_FLAG, post_commit=_POST_COMMIT)
    return TEMPLATE.format(
        marker=MARKER,
        name=name,
        variables=launcher.variables("\n"),
        shortcut=shortcut,
        launch=launcher.block(f'hook {name} "$0" "$@"'),
        skipped=_SKIPPED.get(name, ""),
    )


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, IsADirectoryError):
        return None


class HookState:
    """One hook as found on disk. (Plain classes here: dataclasses costs every hook ~15 ms.)"""

    __slots__ = ("name", "path", "state", "legacy")

    def __init__(self, name: str, path: Path, state: str, legacy: bool) -> None:
        self.name = name
        self.path = path
        self.state = state  # installed | outdated | missing | foreign
        self.legacy = legacy  # a previous hook is kept as NAME.legacy and chained

    @property
    def ok(self) -> bool:
        return self.state == "installed"


def status(repo: Repo) -> list[HookState]:
    directory = hooks_dir(repo)
    states = []
    for name in HOOK_NAMES:
        path = directory / name
        text = _read_text(path)
        if text is None:
            state = "foreign" if path.is_symlink() else "missing"
        elif MARKER not in text:
            state = "foreign"
        else:
            state = "installed" if text == script(name) else "outdated"
        states.append(HookState(name, path, state, (directory / f"{name}.legacy").exists()))
    return states


def install(repo: Repo) -> list[str]:
    """Install (or update) every hook; a foreign hook is kept as NAME.legacy. Returns what changed."""
    gitutil.git(["config", "--unset-all", HOOKS_SETTING], repo.root, check=False)
    changed: list[str] = []
    for hook in status(repo):
        legacy = hook.path.with_name(f"{hook.name}.legacy")
        if hook.state == "installed":
            continue
        if hook.state == "foreign":
            if legacy.exists() or legacy.is_symlink():
                changed.append(
                    f"hook {hook.name} NOT installed: {hook.path} is not cmfgit's and {legacy.name} exists too "
                    f"(merge them into {legacy.name}, remove {hook.name}, then run 'cmfgit hooks install')"
                )
                continue
            os.replace(hook.path, legacy)
        hook.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(hook.path, script(hook.name).encode(), fsync=False)
        os.chmod(hook.path, 0o755)
        note = {
            "missing": "",
            "outdated": " (updated)",
            "foreign": f" (the existing hook runs first, as {legacy.name})",
        }
        changed.append(f"hook {hook.name}{note[hook.state]}")
    return changed


def install_if_wanted(repo: Repo) -> list[str]:
    """Install the hooks unless the user uninstalled them on purpose."""
    if gitutil.config_get(repo.root, HOOKS_SETTING) == "false":
        return []
    if all(h.ok for h in status(repo)):
        return []
    return install(repo)


def uninstall(repo: Repo) -> list[str]:
    """Remove cmfgit's hooks and put back the hooks they chained."""
    changed: list[str] = []
    for hook in status(repo):
        if hook.state not in ("installed", "outdated"):
            continue
        legacy = hook.path.with_name(f"{hook.name}.legacy")
        if legacy.exists() or legacy.is_symlink():
            os.replace(legacy, hook.path)
            changed.append(f"hook {hook.name} (restored the previous hook)")
        else:
            os.unlink(hook.path)
            changed.append(f"hook {hook.name}")
    gitutil.config_set(repo.root, HOOKS_SETTING, "false")
    return changed


# -- what the hooks check -----------------------------------------------------


class Change:
    """A record file that a commit or push brings."""

    __slots__ = ("path", "new", "old")

    def __init__(self, path: str, new: str, old: tuple[str, ...]) -> None:
        self.path = path  # repository-relative, under .cmf/objects
        self.new = new  # blob id of the version being committed or pushed
        self.old = old  # blob ids of the versions it replaces (none for a new file)


def _blob_pairs(out: bytes) -> Iterator[Change]:
    """Parse ``git diff-* -z --raw`` output (added or modified files only)."""
    fields = out.split(b"\0")
    for meta, name in zip(fields[0::2], fields[1::2]):
        parts = meta.split(b" ")
        if len(parts) < 5 or not meta.startswith(b":"):
            continue
        old = parts[2].decode()
        yield Change(name.decode("utf-8", "surrogateescape"), parts[3].decode(), () if set(old) == {"0"} else (old,))


def _empty_tree(repo: Repo) -> str:
    return gitutil.git_text(["hash-object", "-t", "tree", "--stdin"], repo.root, input=b"")


def staged_changes(repo: Repo, env: dict[str, str]) -> list[Change]:
    """Record files the index (``env``'s GIT_INDEX_FILE) adds or changes relative to HEAD."""
    return list(_blob_pairs(_staged_diff(repo, env)))


def _staged_diff(repo: Repo, env: dict[str, str]) -> bytes:
    """``git diff-index -z`` of the records staged: the very bytes ``git diff-tree``
    prints for the commit made from this index (see the post-commit script)."""
    args = ["diff-index", "--cached", "-z", "--no-renames", "--diff-filter=AM", "HEAD", "--", OBJECTS_DIR]
    try:
        return gitutil.git(args, repo.root, env=env)
    except GitError:  # no commit yet: everything staged is new
        args[5] = _empty_tree(repo)
        return gitutil.git(args, repo.root, env=env)


def tree_changes(repo: Repo, bases: list[str], rev: str) -> list[Change]:
    """Record files ``rev`` adds or changes relative to every commit in ``bases``."""
    if not bases:  # everything at rev is new
        if gitutil.rev_parse(repo.root, f"{rev}:{OBJECTS_DIR}") is None:
            return []
        listing = gitutil.ls_tree_blobs(repo.root, f"{rev}:{OBJECTS_DIR}")
        return [Change(f"{OBJECTS_DIR}/{path}", blob, ()) for path, blob in listing]
    found: dict[str, Change] = {}
    for base in bases:
        out = gitutil.git(
            ["diff-tree", "-r", "-z", "--no-renames", "--diff-filter=AM", base, rev, "--", OBJECTS_DIR], repo.root
        )
        for change in _blob_pairs(out):
            seen = found.get(change.path)
            found[change.path] = Change(change.path, change.new, (seen.old if seen else ()) + change.old)
    return list(found.values())


_LOOSE_REL = re.compile(r"^[0-9a-f]{2}/[0-9a-f]{62}\.yaml$")


def _classify(rel: str) -> str | None:
    """treeread.classify, without importing treeread (dataclasses: ~20 ms of every commit)."""
    if rel.rsplit("/", 1)[-1].startswith("."):
        return None
    if _LOOSE_REL.match(rel):
        return "loose"
    return "pack" if rel.startswith("pack/") and rel.endswith(".yaml") else None


def verify_changes(repo: Repo, changes: list[Change], added: list[bytes] | None = None) -> list[str]:
    """Problems with the records these changes bring (one line each; empty if all valid).

    A loose file is checked in full; a pack has every id checked and the
    records it adds (relative to ``old``) checked in full. The records added
    are appended to ``added`` when it is given.
    """
    from cmfgit import canonical, schema  # the schemas: only when there is work

    def check(data: bytes, where: str, rid: str) -> None:  # reading.check_record, without its imports
        schema.validate(canonical.decode(data, where, rid), where)
        if added is not None:
            added.append(data)

    blobs = sorted({c.new for c in changes} | {o for c in changes for o in c.old})
    contents = dict(gitutil.cat_blobs(repo.root, blobs))
    problems: list[str] = []
    for change in changes:
        rel = change.path[len(OBJECTS_DIR) + 1 :]
        kind = _classify(rel)
        data = contents[change.new]
        try:
            if kind == "loose":
                check(data, change.path, rel[:2] + rel[3:-5])
            elif kind == "pack":
                records = pack.parse(data, change.path, verify=True)
                known = _pack_ids(contents[o] for o in change.old)
                for rid in sorted(set(records) - known):
                    check(records[rid], f"{change.path} (record {rid[:12]})", rid)
            elif not rel.rsplit("/", 1)[-1].startswith("."):
                problems.append(f"{change.path}: not a record file (only records belong under {OBJECTS_DIR})")
        except RecordError as exc:
            from cmfgit.merge import has_markers

            if has_markers(data):
                problems.append(f"{change.path}: conflict markers from a text merge; {_REMERGE}")
            else:
                problems.append(str(exc))
    return problems


_REMERGE = "redo the merge with cmfgit's merge driver: 'git merge --abort', 'cmfgit init', then merge again"


def _pack_ids(versions: Iterable[bytes]) -> set[str]:
    ids: set[str] = set()
    for data in versions:
        try:
            ids.update(pack.parse(data, verify=False))
        except RecordError:
            pass  # an old damaged version: everything in the new one gets checked
    return ids


def refuse(what: str, problems: list[str]) -> None:
    """Print the problems (at most 20) and raise: the hooks' refusal, also used by ``cmfgit push``."""
    _refuse(what, problems)


def _refuse(what: str, problems: list[str]) -> None:
    for problem in problems[:20]:
        print(f"cmfgit: {problem}", file=sys.stderr)
    more = f" (and {len(problems) - 20} more)" if len(problems) > 20 else ""
    raise CmfgitError(
        f"refusing to {what}: {len(problems)} invalid record file(s){more}; "
        "fix or delete them ('cmfgit fsck' lists them)"
    )


# -- keeping code versions reachable --------------------------------------------


def code_versions(data: bytes, fields: tuple[bytes, ...] = (b"commit", b"tree")) -> set[str]:
    """``git.commit``/``git.tree`` ids named by the records in ``data`` (a record or a pack)."""
    found: set[str] = set()
    for block in _GIT_BLOCK.finditer(data):
        found.update(m.group(2).decode() for m in _CODE_FIELD.finditer(block.group(1)) if m.group(1) in fields)
    return found


def keep(repo: Repo, oids: Iterable[str]) -> list[str]:
    """Make objects reachable under ``refs/cmf/keep/<id>`` so that git gc keeps them.

    Objects this clone does not have (a record from another site) are
    skipped. Returns the ids newly kept.
    """
    present = _to_keep(repo, oids)
    if present:
        gitutil.git(["update-ref", "--stdin"], repo.root, input=_keep_commands(present))
    return present


def _keep_commands(oids: list[str]) -> bytes:
    return "".join(f"update {KEEP_PREFIX}{oid} {oid}\n" for oid in oids).encode()


def _to_keep(repo: Repo, oids: Iterable[str]) -> list[str]:
    """The ids among ``oids`` that this clone has and that have no keep ref yet."""
    wanted = set(oids)
    wanted -= _already_kept(repo, wanted)
    if not wanted:
        return []
    # The trees cmfgit writes are loose objects: found without asking git.
    objects = os.path.join(os.fspath(repo.common_dir), "objects")
    present = {oid for oid in wanted if os.path.isfile(os.path.join(objects, oid[:2], oid[2:]))}
    unknown = sorted(wanted - present)
    if unknown:
        listing = "".join(f"{oid}\n" for oid in unknown).encode()
        out = gitutil.git(["cat-file", "--batch-check=%(objectname) %(objecttype)"], repo.root, input=listing)
        present.update(line.split()[0] for line in out.decode().splitlines() if not line.endswith(" missing"))
    return sorted(present)


def _already_kept(repo: Repo, oids: set[str]) -> set[str]:
    """The ids among ``oids`` that have a keep ref: read from the files, saving a git call."""
    if (repo.common_dir / "reftable").exists():
        return {ref[len(KEEP_PREFIX) :] for ref, _ in gitutil.for_each_ref(repo.root, KEEP_PREFIX[:-1])} & oids
    loose = repo.common_dir / KEEP_PREFIX
    found = {oid for oid in oids if (loose / oid).is_file()}
    if found != oids:
        try:
            packed = (repo.common_dir / "packed-refs").read_bytes()
        except FileNotFoundError:
            packed = b""
        found |= {oid for oid in oids - found if f" {KEEP_PREFIX}{oid}\n".encode() in packed}
    return found


def _off_history(repo: Repo, records: list[bytes], head: str) -> list[str]:
    """The ``git.commit`` ids these records name that ``head`` does not reach and no keep
    ref holds yet (those this clone has): a squash merge brings a branch's records
    without its commits, which are lost when the branch is deleted."""
    commits: set[str] = set()
    for data in records:
        commits |= code_versions(data, (b"commit",))
    commits -= _already_kept(repo, commits)
    if not commits:
        return []
    try:  # --ignore-missing: a record from another site names commits this clone lacks
        out = gitutil.git(["rev-list", "--ignore-missing", *sorted(commits), "--not", head, "--"], repo.root)
    except GitError:
        return []  # no commit yet: the records name none
    return sorted(commits & set(out.decode().split()))


def records_added(repo: Repo, rev: str = "HEAD") -> list[bytes]:
    """The records commit ``rev`` adds relative to its first parent (bytes of each file part)."""
    out = gitutil.git(
        ["diff-tree", "-r", "-z", "--root", "--no-commit-id", "--no-renames", "--diff-filter=AM", rev]
        + ["--", OBJECTS_DIR],
        repo.root,
    )
    return _added(repo, list(_blob_pairs(out)))


def _added(repo: Repo, changes: list[Change]) -> list[bytes]:
    """The records ``changes`` add: whole loose files, and the records new in each pack."""
    if not changes:
        return []
    blobs = sorted({c.new for c in changes} | {o for c in changes for o in c.old})
    contents = dict(gitutil.cat_blobs(repo.root, blobs))
    added: list[bytes] = []
    for change in changes:
        data = contents[change.new]
        if not data.startswith(pack.HEADER):
            added.append(data)
            continue
        try:
            records = pack.parse(data, change.path, verify=False)
        except RecordError:
            continue  # pre-push refuses it; nothing to keep from it here
        known = _pack_ids(contents[o] for o in change.old)
        added += [records[rid] for rid in records.keys() - known]
    return added


def _working_tree_records(repo: Repo, since: str = "") -> Iterator[bytes]:
    """Raw bytes of every loose record, and of every pack whose period does
    not end before ``since`` (``YYYY-MM-DD``; packs are named by period)."""
    from cmfgit.store import Store

    store = Store(repo.objects_dir)
    for _rid, path in store.iter_loose():
        try:
            yield path.read_bytes()
        except FileNotFoundError:
            continue
    for path in store.pack_paths():
        period = pack.period_of(path.name)
        if period[:4].isdigit() and period < since[: len(period)]:
            continue  # every run in it started before `since`
        try:
            yield path.read_bytes()
        except FileNotFoundError:
            continue


def _oldest_day(repo: Repo, commits: set[str]) -> str:
    """The day before the oldest of ``commits`` was made: runs on them started after that
    (a day of slack for clocks that disagree)."""
    out = gitutil.git(["show", "-s", "--format=%ct", *sorted(commits), "--"], repo.root, check=False)
    stamps = [int(t) for t in out.split() if t.isdigit()]
    if not stamps:
        return ""
    return time.strftime("%Y-%m-%d", time.gmtime(min(stamps) - 86400))


# -- the hooks themselves -----------------------------------------------------


def in_progress(repo: Repo) -> bool:
    """A rebase, merge, cherry-pick or revert is under way in this worktree."""
    return any((repo.git_dir / name).exists() for name in _IN_PROGRESS)


def _index_env() -> dict[str, str]:
    """The environment for git calls that must see the index git is committing."""
    index = os.environ.get("GIT_INDEX_FILE")
    return gitutil.clean_env({"GIT_INDEX_FILE": os.path.abspath(index)} if index else None)


def _stage_records(repo: Repo, env: dict[str, str] | None = None) -> None:
    """``git add -A .cmf/objects``: new, packed and removed records alike."""
    if not repo.objects_dir.is_dir() and not gitutil.git(["ls-files", "--", OBJECTS_DIR], repo.root, env=env):
        return  # nothing there and nothing tracked: git would call the pathspec an error
    gitutil.git(["add", "-A", "--", OBJECTS_DIR], repo.root, env=env)


def pre_commit(repo: Repo, args: list[str], stdin: bytes) -> None:
    if in_progress(repo):
        # A merge, rebase or cherry-pick commits what git staged: stage nothing more,
        # but verify it (a text merge of a pack leaves conflict markers).
        verify_staged(repo)
        return
    from cmfgit import gc

    gc.maybe_gc(repo)
    env = _index_env()
    nothing_staged = _nothing_staged(repo, env)
    _stage_records(repo, env)
    from cmfgit import retractions

    withdrawn = retractions.note_staged_removals(repo, env)  # a commit that removes records says so as data
    if withdrawn:
        gitutil.git(["add", "--", withdrawn], repo.root, env=env)
    index = os.path.basename(env.get("GIT_INDEX_FILE", "index"))
    if index not in ("index", "index.lock"):
        # `git commit --only PATHS`: git commits a temporary index; the real
        # one must get the same records after the commit (see post_commit).
        flag = repo.worktree_state_dir / _RESTAGE_FLAG
        flag.parent.mkdir(parents=True, exist_ok=True)
        flag.touch()
    diff = _staged_diff(repo, env)
    added: list[bytes] = []
    problems = verify_changes(repo, list(_blob_pairs(diff)), added)
    if problems:
        _refuse("commit", problems)
    if nothing_staged and diff:
        print(_RECORDS_ONLY, file=sys.stderr)
    _leave_for_post_commit(repo, diff, added)


# Git decides that a commit is empty before it runs pre-commit: the records this
# hook stages do not count (see docs/guide.md, "Records ride along").
_RECORDS_ONLY = (
    "cmfgit: only records are pending: git decides before this hook runs whether there is anything to commit; "
    "if it says 'nothing added to commit', run 'git add .cmf' and commit again (or use 'log-run --commit')"
)


def _nothing_staged(repo: Repo, env: dict[str, str]) -> bool:
    """The index git is committing equals HEAD (a commit of records alone, or an --amend)."""
    try:
        gitutil.git(["diff-index", "--cached", "--quiet", "HEAD", "--"], repo.root, env=env)
    except GitError:
        return False  # something is staged (exit 1), or no commit yet
    return True


def _leave_for_post_commit(repo: Repo, diff: bytes, added: list[bytes]) -> None:
    """Save what post-commit would compute for the commit being made, so that
    its script only creates the keep refs (one git process, no Python)."""
    if not diff:
        _forget_post_commit(repo)  # the commit adds no record: the post-commit script sees that itself
        return
    trees: set[str] = set()
    for data in added:
        trees |= code_versions(data, (b"tree",))
    state = repo.worktree_state_dir
    try:
        state.mkdir(parents=True, exist_ok=True)
        kept = sorted(set(_to_keep(repo, trees)) | set(_off_history(repo, added, "HEAD")))
        atomic_write(state / f"{_POST_COMMIT}.refs", _keep_commands(kept), fsync=False)
        atomic_write(state / f"{_POST_COMMIT}.diff", diff, fsync=False)  # last: the script needs both
    except (OSError, GitError):
        _forget_post_commit(repo)  # post-commit then does the work itself


def prepare_own_commit(repo: Repo, paths: list[str]) -> None:
    """Before cmfgit's own ``git commit --only --no-verify -- PATHS`` (after
    ``git add`` of them): leave for post-commit what pre-commit would have, so
    that the post-commit script needs no Python. The records were checked
    when they were written. Best effort: post-commit does the work otherwise."""
    found = _loose_records_added(repo, [p for p in paths if p.startswith(OBJECTS_DIR + "/")])
    if found is None:
        _forget_post_commit(repo)
    else:
        _leave_for_post_commit(repo, *found)


def _loose_records_added(repo: Repo, records: list[str]) -> tuple[bytes, list[bytes]] | None:
    """The staged diff of ``records`` and their bytes, if all are new loose records."""
    if not records:
        return None
    args = ["diff-index", "--cached", "-z", "--no-renames", "--diff-filter=AM", "HEAD", "--", *records]
    try:
        diff = gitutil.git(args, repo.root)
    except GitError:
        return None  # no commit yet
    changes = list(_blob_pairs(diff))
    if any(c.old or _classify(c.path[len(OBJECTS_DIR) + 1 :]) != "loose" for c in changes):
        return None  # packs: post-commit compares versions itself
    try:
        return diff, [(repo.root / c.path).read_bytes() for c in changes]  # loose records are written once
    except OSError:
        return None


def _forget_post_commit(repo: Repo) -> None:
    for suffix in (".diff", ".refs"):
        try:
            os.unlink(repo.worktree_state_dir / f"{_POST_COMMIT}{suffix}")
        except OSError:
            pass


def post_commit(repo: Repo, args: list[str], stdin: bytes) -> None:
    _forget_post_commit(repo)  # left by a pre-commit whose commit this is not (or not only)
    if not any((repo.git_dir / name).exists() for name in ("rebase-merge", "rebase-apply")):  # not mid-rebase
        from cmfgit import retractions

        # git revert, cherry-pick (CHERRY_PICK_HEAD is still there), commit --no-verify: no
        # pre-commit ran; a retraction of what the commit removed is left pending for the next commit.
        retractions.note_committed_removals(repo)
    if in_progress(repo):
        return
    flag = repo.worktree_state_dir / _RESTAGE_FLAG
    if flag.exists():
        _stage_records(repo)
        flag.unlink()
    trees: set[str] = set()
    added = records_added(repo, "HEAD")
    for data in added:
        trees |= code_versions(data, (b"tree",))
    keep(repo, trees | set(_off_history(repo, added, "HEAD")))
    refresh_index(repo)


def post_rewrite(repo: Repo, args: list[str], stdin: bytes) -> None:
    rewritten = {line.split()[0] for line in stdin.decode("ascii", "replace").splitlines() if line.strip()}
    named: set[str] = set()
    if rewritten:
        for data in _working_tree_records(repo, _oldest_day(repo, rewritten)):
            named |= code_versions(data, (b"commit",)) & rewritten
    keep(repo, named)
    refresh_index(repo)


def _zero(oid: str) -> bool:
    return not oid.strip("0")


def push_changes(repo: Repo, remote: str, local: str, remote_oid: str | None) -> list[Change]:
    """Record files that pushing ``local`` would bring to ``remote``."""
    if remote_oid and not _zero(remote_oid) and gitutil.rev_parse(repo.root, f"{remote_oid}^{{commit}}"):
        bases = [remote_oid]
    else:  # a new branch: compare with what the remote already has
        out = gitutil.git_text(["rev-list", "--boundary", local, "--not", f"--remotes={remote}"], repo.root)
        bases = [line[1:] for line in out.splitlines() if line.startswith("-")]
    return tree_changes(repo, bases, local)


# Refs that hold unions of records already checked (site refs, cmf/global; every union re-checks each record).
_UNION_REFS = ("refs/cmf/sites/", "refs/heads/cmf/global")


def pre_push(repo: Repo, args: list[str], stdin: bytes) -> None:
    remote = args[0] if args else "origin"
    changes: list[Change] = []
    for line in stdin.decode("ascii", "replace").splitlines():
        parts = line.split()
        if len(parts) == 4 and not _zero(parts[1]) and not parts[2].startswith(_UNION_REFS):
            changes += push_changes(repo, remote, parts[1], parts[3])
    problems = verify_changes(repo, changes)
    if problems:
        _refuse("push", problems)


def post_merge(repo: Repo, args: list[str], stdin: bytes) -> None:
    if in_progress(repo):
        return
    # Records that a pull or merge brings without their commits (a squash made by the
    # host, such as GitHub's "Squash and merge"): keep the commits this clone has.
    if gitutil.rev_parse(repo.root, "ORIG_HEAD") is not None:
        arrived = _added(repo, tree_changes(repo, ["ORIG_HEAD"], "HEAD"))
        keep(repo, _off_history(repo, arrived, "HEAD"))
    refresh_index(repo)


def post_checkout(repo: Repo, args: list[str], stdin: bytes) -> None:
    if not in_progress(repo):
        refresh_index(repo)


STEPS: dict[str, Callable[[Repo, list[str], bytes], None]] = {
    "pre-commit": pre_commit,
    "post-commit": post_commit,
    "pre-push": pre_push,
    "post-merge": post_merge,
    "post-checkout": post_checkout,
    "post-rewrite": post_rewrite,
}


# -- checks for the pre-commit framework (.pre-commit-hooks.yaml) ----------------


def verify_staged(repo: Repo) -> None:
    """Refuse invalid records in the index (no staging: the framework forbids it)."""
    problems = verify_changes(repo, staged_changes(repo, _index_env()))
    if problems:
        _refuse("commit", problems)


def verify_push(repo: Repo) -> None:
    """Refuse invalid records in what the pre-commit framework says is pushed."""
    remote = os.environ.get("PRE_COMMIT_REMOTE_NAME", "origin")
    local = os.environ.get("PRE_COMMIT_TO_REF", "HEAD")
    problems = verify_changes(repo, push_changes(repo, remote, local, os.environ.get("PRE_COMMIT_FROM_REF")))
    if problems:
        _refuse("push", problems)


CHECKS: dict[str, Callable[[Repo], None]] = {"verify-staged": verify_staged, "verify-push": verify_push}


# -- entry point: `cmfgit hook NAME SCRIPT ARGS...` ------------------------------------


def _repo() -> Repo | None:
    """The repository the hook runs in, if cmfgit is set up there."""
    try:
        repo = find_repo()
    except NotARepoError:
        return None
    return repo if repo.initialized else None


def _run_legacy(script_path: str, name: str, args: list[str], stdin: bytes) -> int:
    legacy = f"{script_path}.legacy"
    if not (os.path.isfile(legacy) and os.access(legacy, os.X_OK)):
        return 0
    feed = stdin if name in _READS_STDIN else None
    return subprocess.run([legacy, *args], input=feed).returncode


def main(argv: list[str]) -> int:
    if argv and argv[0] in CHECKS:
        repo = _repo()
        if repo is not None:
            CHECKS[argv[0]](repo)
        return 0
    if len(argv) < 2 or argv[0] not in STEPS:
        raise UsageError(USAGE)
    name, script_path, args = argv[0], argv[1], argv[2:]
    stdin = sys.stdin.buffer.read() if name in _READS_STDIN else b""
    code = _run_legacy(script_path, name, args, stdin)
    if code and name in _BLOCKING:
        return code
    repo = _repo()
    if repo is None:
        return code
    try:
        STEPS[name](repo, args, stdin)
    except CmfgitError as exc:
        if name in _BLOCKING:
            raise
        print(f"cmfgit: warning: {name} hook: {exc}", file=sys.stderr)
    return code
