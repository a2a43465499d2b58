"""``cmfgit push`` and ``cmfgit pull``: a clone's metadata to and from a remote.

push
    1. pack past ``gc.threshold``, then commit pending records (only ``.cmf``
       paths; the user's staged work is left alone);
    2. push the current branch to the remote branch of the same name, with the
       code versions the hooks keep (``refs/cmf/keep/*``); when the remote
       moved on, fetch, merge through the merge driver and push again, a
       bounded number of times;
    3. update the remote's global branch ``cmf/global``: fetch it, union it
       tree-level with this clone's records, and push with compare-and-swap
       (``--force-with-lease`` on the value just fetched); on a lost race,
       fetch, union and push again. Racing sites therefore never lose a record.

pull
    1. fetch and merge the branch's upstream (else the same-named remote
       branch), committing pending records first so the merge cannot trip on them;
    2. fetch ``cmf/global`` and write the records of interest (see
       ``localview.py``) that the clone lacks into its packs (``pullstore.py``);
       nothing at all when nothing changed. They are pending: the next commit
       (hooks) or ``cmfgit push`` commits them.

Both configure an unconfigured clone first (the merge driver is per clone).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from dulwich.objects import ObjectID

from cmfgit import gitutil, globalview, localview, pack
from cmfgit.commit import commit_metadata, pending_paths
from cmfgit.errors import CmfgitError, ConflictError, GitError, UsageError
from cmfgit.globalview import GLOBAL_BRANCH, GLOBAL_REF
from cmfgit.repo import CMF_DIR, Repo

BRANCH_ATTEMPTS = 12
GLOBAL_ATTEMPTS = 40
# The code versions that the hooks keep reachable (refs/cmf/keep/<oid>) travel
# with the branch, so every site's runs stay resolvable in the central repo;
# unless the snapshot.push setting says no (see push_keep_refs).
KEEP_REFSPEC = "refs/cmf/keep/*:refs/cmf/keep/*"
PUSH_SETTING = "cmfgit.snapshot.push"
_LOOSE_PATH = re.compile(r"^\.cmf/objects/[0-9a-f]{2}/[0-9a-f]{62}\.yaml$")
_PACK_PREFIX = ".cmf/objects/pack/"
# Rejections that mean "someone else pushed first": fetch, merge or union, retry.
# "failed to update ref" is how receive-pack reports losing the ref lock to a concurrent push.
_RACE = (
    "fetch first",
    "non-fast-forward",
    "stale info",
    "cannot lock",
    "failed to lock",
    "failed to update ref",
    "incorrect old value",
)
_RACE_STDERR = ("cannot lock ref", "failed to update ref", "unable to update local ref")


# -- git plumbing of a remote ---------------------------------------------------


def current_branch(repo: Repo) -> str | None:
    out = gitutil.git(["symbolic-ref", "--quiet", "--short", "HEAD"], repo.root, check=False)
    return out.decode("utf-8", "surrogateescape").strip() or None


def resolve_remote(repo: Repo, remote: str | None, branch: str | None) -> str:
    names = gitutil.git_text(["remote"], repo.root).split()
    if remote is None:
        configured = gitutil.config_get(repo.root, f"branch.{branch}.remote") if branch else None
        if configured and configured in names:
            remote = configured
        elif "origin" in names:
            remote = "origin"
        elif len(names) == 1:
            remote = names[0]
        elif not names:
            raise CmfgitError("this clone has no remote: add one with 'git remote add origin URL'")
        else:
            raise UsageError(f"several remotes ({', '.join(names)}): name the one to use")
    if remote not in names:
        raise UsageError(f"no remote named '{remote}' (remotes: {', '.join(names) or 'none'})")
    return remote


def upstream(repo: Repo, remote: str, branch: str) -> str | None:
    """The branch of ``remote`` that ``branch`` tracks (pulls from), if any."""
    if gitutil.config_get(repo.root, f"branch.{branch}.remote") != remote:
        return None
    merge = gitutil.config_get(repo.root, f"branch.{branch}.merge") or ""
    return merge[len("refs/heads/") :] if merge.startswith("refs/heads/") else None


def fetch_ref(repo: Repo, remote: str, branch: str) -> str | None:
    """Fetch ``refs/heads/<branch>`` of ``remote`` into its tracking ref.

    Returns the fetched commit id, or None when the remote has no such branch
    (the stale tracking ref, if any, is then deleted).
    """
    tracking = f"refs/remotes/{remote}/{branch}"
    proc = gitutil.start(["fetch", "--quiet", "--no-tags", remote, f"+refs/heads/{branch}:{tracking}"], repo.root)
    out, err = proc.communicate()
    if proc.returncode != 0:
        text = err.decode("utf-8", "replace")
        if "couldn't find remote ref" in text:
            gitutil.git(["update-ref", "-d", tracking], repo.root, check=False)
            return None
        raise GitError(["fetch", remote, branch], proc.returncode, text)
    return globalview.ref_value(repo.root, tracking)


@dataclass
class _PushOutcome:
    ok: bool  # False: lost a race (retry); any other failure raises
    up_to_date: bool = False


def _git_push(repo: Repo, args: list[str], ref: str) -> _PushOutcome:
    """``git push --porcelain ARGS``, classified by what happened to ``ref``:
    done, lost a race, or failed."""
    proc = gitutil.start(["push", "--porcelain", *args], repo.root)
    out, err = proc.communicate()
    text = out.decode("utf-8", "replace")
    errors = err.decode("utf-8", "replace")
    flags = [line.split("\t") for line in text.splitlines() if "\t" in line]
    mine = [f for f in flags if len(f) > 1 and f[1].endswith(":" + ref)]
    if proc.returncode == 0 or (mine and all(f[0] != "!" for f in mine)):
        return _PushOutcome(True, up_to_date=bool(mine) and all(f[0] == "=" for f in mine))
    rejected = [f for f in flags if f[0] == "!"]
    summary = "; ".join(f[2] if len(f) > 2 else "rejected" for f in rejected)
    if any(r in summary for r in _RACE) or (not rejected and any(r in errors for r in _RACE_STDERR)):
        return _PushOutcome(False)
    hook = [line for line in errors.splitlines() if line.startswith("cmfgit: error: ")]
    if hook:  # our own pre-push hook refused: its reason, not git's "failed to push some refs"
        raise CmfgitError(f"push refused by the pre-push hook: {hook[-1][len('cmfgit: error: ') :]}")
    raise GitError(["push", *args], proc.returncode, f"{errors}\n{summary}" if summary else errors)


# -- push ---------------------------------------------------------------------------


@dataclass
class GlobalUpdate:
    remote: str
    records: int  # record entries in the global view now
    added: int  # added by this update
    updated: bool  # a new global commit was pushed
    attempts: int
    skipped: list[str] = field(default_factory=list)  # damaged files left out of the view, one line each


@dataclass
class PushResult:
    remote: str
    branch: str | None
    destination: str | None
    committed: int = 0  # records committed by this push
    what: str = ""  # what that commit added, in words
    commit: str | None = None
    pushed: bool = False  # the branch moved on the remote
    merges: int = 0  # merges of the remote branch needed on the way
    configured: list[str] = field(default_factory=list)
    global_update: GlobalUpdate | None = None


def _configure(repo: Repo) -> list[str]:
    from cmfgit.init import ensure_configured

    return ensure_configured(repo)


def describe_pending(committed: int, paths: list[str]) -> str:
    """What committing ``paths`` adds, in words: 'N record(s)', else what the
    files are (packs written by gc, cmfgit's settings)."""
    if committed:
        return f"{committed} record(s)"
    kinds = []
    if any(p.startswith(f"{CMF_DIR}/objects/") for p in paths):
        kinds.append("packs")
    if any(not p.startswith(f"{CMF_DIR}/objects/") for p in paths):
        kinds.append("settings")
    return " and ".join(kinds) or "metadata"


def _count_records(repo: Repo, paths: list[str]) -> int:
    """Records that committing ``paths`` adds to HEAD (not those a gc just moved into a pack)."""
    added = 0
    moved: set[str] = set()
    for path in paths:
        if _LOOSE_PATH.match(path):
            rid = path[13:15] + path[16:-5]
            if (repo.root / path).exists():
                added += 1
            else:
                moved.add(rid)  # deleted: packed by gc (or removed by hand)
    packs = [p for p in paths if p.startswith(_PACK_PREFIX) and p.endswith(".yaml")]
    for path in packs:  # a pack that a repack folded away: its records moved, into a pack added here
        if not (repo.root / path).exists():
            head = gitutil.git(["cat-file", "blob", f"HEAD:{path}"], repo.root, check=False)
            moved.update(pack.parse(head, path, verify=False) if head.startswith(pack.HEADER) else ())
    for path in packs:
        full = repo.root / path
        if full.exists():
            now = pack.parse(full.read_bytes(), path, verify=False)
            head = gitutil.git(["cat-file", "blob", f"HEAD:{path}"], repo.root, check=False)
            before = pack.parse(head, path, verify=False) if head else {}
            added += sum(1 for rid in now if rid not in before and rid not in moved)
    return added


def push(repo: Repo, remote: str | None = None, *, attempts: int = BRANCH_ATTEMPTS) -> PushResult:
    """Commit pending records, push the branch, then update the global view."""
    repo.require_initialized()
    configured = _configure(repo)
    branch = current_branch(repo)
    if branch is None:
        raise CmfgitError("HEAD is detached: check out a branch before 'cmfgit push'")
    if (repo.git_dir / "MERGE_HEAD").exists():
        raise ConflictError("a merge is in progress: finish it (git commit) or abort it, then run 'cmfgit push' again")
    remote = resolve_remote(repo, remote, branch)
    # Like git's push.default=simple: a branch pushes to the remote branch of its
    # own name (site/edge never lands on site/lab, whatever it was branched from).
    destination = branch
    has_upstream = gitutil.config_get(repo.root, f"branch.{branch}.remote") is not None
    result = PushResult(remote, branch, destination, configured=configured)
    from cmfgit.gc import maybe_gc

    maybe_gc(repo)  # as the pre-commit hook would: keep the number of files bounded
    keep_refs = [KEEP_REFSPEC] if push_keep_refs(repo) else []
    paths = pending_paths(repo)
    if paths:
        result.committed = _count_records(repo, paths)
        result.what = describe_pending(result.committed, paths)
        result.commit = commit_metadata(repo, f"cmfgit: {result.what}", paths)
    for attempt in range(1, attempts + 1):
        args = ([] if has_upstream else ["--set-upstream"]) + [remote, f"HEAD:refs/heads/{destination}", *keep_refs]
        outcome = _git_push(repo, args, f"refs/heads/{destination}")
        if outcome.ok:
            result.pushed = not outcome.up_to_date
            break
        if attempt == attempts:
            raise ConflictError(
                f"{remote}/{destination} kept moving: gave up after {attempts} attempts; run 'cmfgit push' again"
            )
        _merge_remote(repo, remote, destination)
        result.merges += 1
        globalview.backoff(attempt)
    result.global_update = update_remote_global(repo, remote, [_head(repo)])
    return result


def push_keep_refs(repo: Repo) -> bool:
    """The snapshot.push setting: this clone's git config, else .cmf/config.yaml."""
    from cmfgit.config import load_config

    value = gitutil.config_get(repo.root, PUSH_SETTING)
    return bool(load_config(repo).with_git_config({PUSH_SETTING: value} if value is not None else {}).snapshot_push)


def _head(repo: Repo) -> str:
    return gitutil.git_text(["rev-parse", "HEAD"], repo.root)


def _merge_remote(repo: Repo, remote: str, branch: str) -> bool:
    """Merge ``remote/branch`` into HEAD through the merge driver. False if nothing to merge.

    A merge that stops on conflicts outside ``.cmf`` is left exactly as git
    left it, and the error says what to do.
    """
    theirs = fetch_ref(repo, remote, branch)
    if theirs is None or gitutil.git_ok(["merge-base", "--is-ancestor", theirs, "HEAD"], repo.root):
        return False
    proc = gitutil.start(
        ["merge", "--no-edit", "-m", f"cmfgit: merge {remote}/{branch}", f"refs/remotes/{remote}/{branch}"],
        repo.root,
    )
    out, err = proc.communicate()
    if proc.returncode == 0:
        return True
    conflicted = gitutil.git(["diff", "--name-only", "--diff-filter=U", "-z"], repo.root).split(b"\0")
    names = [c.decode("utf-8", "surrogateescape") for c in conflicted if c]
    if not names:
        detail = (err or out).decode("utf-8", "replace").strip().splitlines()
        raise ConflictError(
            f"could not merge {remote}/{branch}: {detail[0] if detail else 'git merge failed'} "
            "(commit or stash your changes, then run the command again)"
        )
    outside = [n for n in names if not n.startswith(".cmf/")]
    if not outside:
        from cmfgit.retractions import keep_surviving_files

        kept = set(keep_surviving_files(repo))  # modify/delete of a pack: the retraction does the deleting
        names = [n for n in names if n not in kept]
        if not names:
            gitutil.git(["commit", "--no-edit", "-q"], repo.root)
            return True
    shown = ", ".join((outside or names)[:5]) + (" ..." if len(outside or names) > 5 else "")
    if outside:
        raise ConflictError(
            f"merging {remote}/{branch} left conflicts outside .cmf ({shown}): resolve them and "
            "'git commit' (or 'git merge --abort'), then run the command again"
        )
    raise ConflictError(
        f"the merge driver could not merge {shown} (see the messages above, or 'cmfgit fsck'): fix them and "
        "'git commit', or 'git merge --abort'"
    )


def update_remote_global(repo: Repo, remote: str, sources: list[str], attempts: int = GLOBAL_ATTEMPTS) -> GlobalUpdate:
    """Union ``sources`` (commit ids) and the remote-tracking branches of
    ``remote`` into the remote's ``cmf/global``, with compare-and-swap."""
    objects = globalview.open_objects(repo.common_dir)
    try:
        for attempt in range(1, attempts + 1):
            old = fetch_ref(repo, remote, GLOBAL_BRANCH)
            candidates = sources + _tracking_branches(repo, remote)
            result = globalview.build_union(
                objects,
                ObjectID(old.encode()) if old else None,
                [ObjectID(s.encode()) for s in candidates],
                what=_site_label(repo),
            )
            if result.commit is None:
                return GlobalUpdate(remote, result.records, 0, False, attempt, result.skipped)
            new = result.commit.decode()
            lease = f"--force-with-lease={GLOBAL_REF}:{old or ''}"
            outcome = _git_push(repo, ["--no-verify", lease, remote, f"{new}:{GLOBAL_REF}"], GLOBAL_REF)
            if outcome.ok:
                tracking = globalview.tracking_ref(remote)
                gitutil.git(["update-ref", tracking, new], repo.root)
                return GlobalUpdate(remote, result.records, result.added, True, attempt, result.skipped)
            globalview.backoff(attempt)
    finally:
        objects.close()
    raise ConflictError(
        f"{remote}/{GLOBAL_BRANCH} kept moving: gave up after {attempts} attempts; "
        "your branch is pushed; run 'cmfgit push' again to update the global view"
    )


def _tracking_branches(repo: Repo, remote: str) -> list[str]:
    """Commit ids of ``refs/remotes/<remote>/*``: records already on the remote."""
    out = gitutil.git(
        ["for-each-ref", "--format=%(objectname) %(objecttype) %(refname)", f"refs/remotes/{remote}/"], repo.root
    )
    found: list[str] = []
    for line in out.decode("utf-8", "surrogateescape").splitlines():
        oid, kind, name = line.split(" ", 2)
        if kind == "commit" and name != globalview.tracking_ref(remote):
            found.append(oid)
    return found


def _site_label(repo: Repo) -> str:
    site = gitutil.config_get(repo.root, "cmfgit.site")
    return f"site {site}" if site else ""


# -- pull ---------------------------------------------------------------------------


@dataclass
class PullResult:
    remote: str
    branch: str | None
    merged: bool = False  # the branch merged new commits from the remote
    committed: int = 0  # pending records committed before the merge
    what: str = ""  # what that commit added, in words
    commit: str | None = None  # that commit
    global_commit: str | None = None  # None: the remote has no global view
    view_records: int = 0
    selected: int = 0
    written: int = 0  # records new to this clone, now pending in the working tree
    problems: list[str] = field(default_factory=list)  # records left loose, and why
    configured: list[str] = field(default_factory=list)


def pull(repo: Repo, selection: localview.Selection, remote: str | None = None) -> PullResult:
    """Pull the branch, then bring the selected records of the global view."""
    repo.require_initialized()
    configured = _configure(repo)
    branch = current_branch(repo)
    remote = resolve_remote(repo, remote, branch)
    result = PullResult(remote, branch, configured=configured)
    if branch is not None:
        if (repo.git_dir / "MERGE_HEAD").exists():
            raise ConflictError("a merge is in progress: finish it (git commit) or abort it, then pull again")
        # Like git pull: the upstream branch, else the remote branch of the same name.
        destination = upstream(repo, remote, branch) or branch
        theirs = fetch_ref(repo, remote, destination)
        if theirs is not None and not gitutil.git_ok(["merge-base", "--is-ancestor", theirs, "HEAD"], repo.root):
            # Pending records would block the merge as "untracked files would be
            # overwritten" when the remote has the same ones: commit them first.
            paths = pending_paths(repo)
            if paths:
                result.committed = _count_records(repo, paths)
                result.what = describe_pending(result.committed, paths)
                result.commit = commit_metadata(repo, f"cmfgit: {result.what}", paths)
            result.merged = _merge_remote(repo, remote, destination)
    tip = fetch_ref(repo, remote, GLOBAL_BRANCH)
    if tip is None:
        return result
    result.global_commit = tip
    from cmfgit import pullstore

    brought = pullstore.bring(repo, tip, selection, f"{remote}/{GLOBAL_BRANCH}")
    result.view_records, result.selected, result.written = brought.view_records, brought.selected, brought.written
    result.problems = brought.problems
    if brought.written:
        from cmfgit.gc import maybe_gc

        maybe_gc(repo)  # the few records left loose, past the threshold
    return result
