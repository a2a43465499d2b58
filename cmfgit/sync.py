"""``cmfgit push`` and ``cmfgit pull``: a clone's metadata to and from a remote.

push
    1. pack past ``gc.threshold``, then commit pending records (only ``.cmf``
       paths; the user's staged work is left alone);
    2. one ``git push`` of the current branch (to the remote branch of the
       same name), this site's ref ``refs/cmf/sites/<site>`` (``siterefs.py``:
       it only fast-forwards from this site, so it never races) and the code
       versions the hooks keep (``refs/cmf/keep/*``). The metadata is then
       published whatever happens to the branch;
    3. when the remote branch moved on: merge it, only if that cannot stop on
       code conflicts (tried first with ``git merge-tree``) and never leaving
       a merge in progress, then push the branch again (bounded); otherwise
       the branch is left unpushed and the result says why (``branch_error``);
    4. bring ``cmf/global`` up to date if the central's hook has not already
       (compare-and-swap, one try after the push, then a note: readers union the site refs).

pull
    1. fetch and merge the branch's upstream (else the same-named remote
       branch), committing pending records first so the merge cannot trip on them;
    2. fetch ``cmf/global`` and the site refs, union them (``siterefs.py``) and
       write the records of interest (see ``localview.py``) that the clone lacks
       into its packs (``pullstore.py``); nothing at all when nothing changed.
       They are pending: the next commit (hooks) or ``cmfgit push`` commits them.

Both configure an unconfigured clone first (the merge driver is per clone).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cmfgit import gitutil, globalview, pack, siterefs
from cmfgit.commit import commit_metadata, pending_paths
from cmfgit.config import site_name
from cmfgit.errors import CmfgitError, ConflictError, GitError, UsageError
from cmfgit.globalview import GLOBAL_BRANCH
from cmfgit.repo import CMF_DIR, Repo
from cmfgit.siterefs import GlobalUpdate, SitePublish

if TYPE_CHECKING:  # pull's selection; push does without it (localview: ~60 ms of CPU to import)
    from cmfgit import localview

BRANCH_ATTEMPTS = 12
# The code versions that the hooks keep reachable (refs/cmf/keep/<oid>) travel
# with the branch, so every site's runs stay resolvable in the central repo;
# unless the snapshot.push setting says no (see push_keep_refs).
KEEP_REFSPEC = "refs/cmf/keep/*:refs/cmf/keep/*"
PUSH_SETTING = "cmfgit.snapshot.push"
_LOOSE_PATH = re.compile(r"^\.cmf/objects/[0-9a-f]{2}/[0-9a-f]{62}\.yaml$")
_PACK_PREFIX = ".cmf/objects/pack/"


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


# -- push ---------------------------------------------------------------------------


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
    branch_error: str | None = None  # the branch was not pushed: why, and what to do (metadata still published)
    site: SitePublish | None = None  # this site's ref on the remote (siterefs.py)
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
    # Every git process is a few ms of CPU, paid by each of many sites pushing at once:
    # the config is read once (the snapshot), the remote's refs here once (_remote_refs).
    with gitutil.config_snapshot(repo.root):
        branch = current_branch(repo)
        if branch is None:
            raise CmfgitError("HEAD is detached: check out a branch before 'cmfgit push'")
        if (repo.git_dir / "MERGE_HEAD").exists():
            raise ConflictError(
                "a merge is in progress: finish it (git commit) or abort it, then run 'cmfgit push' again"
            )
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
        site = site_name(repo)
        label = _site_label(repo)
        refs = _remote_refs(repo, remote)
        checked = _verify_here(repo, remote, refs.get(f"refs/remotes/{remote}/{destination}"))
    head = result.commit or _head(repo)  # commit_metadata returns the new HEAD
    objects = globalview.open_objects(repo.common_dir)
    try:
        # One git push: the branch, this site's ref and the keep refs. The site ref
        # only fast-forwards from this site, so it goes through whatever the branch does.
        publish, new = siterefs.prepare(objects, repo.root, remote, site, head, refs=refs)
        extra = _tracking_branches(refs, remote)
        # cmf/global rides in the same push when this clone can build it (compare-and-swap
        # on the tip it last fetched), unless the central maintains it (its hook).
        planned = siterefs.plan_global(objects, repo.root, remote, [new or head], extra, label, refs=refs)
        branch_ref = f"refs/heads/{destination}"
        branch_args = ([] if has_upstream else ["--set-upstream"]) + (["--no-verify"] if checked else [])
        branch_args += [remote, f"HEAD:{branch_ref}"]
        said: list[str] = []  # what the central's hooks print
        statuses = siterefs.push_refs(
            repo.root,
            [
                *(planned.options if planned is not None else []),
                *branch_args,
                *([f"{new}:{publish.ref}"] if new else []),
                *keep_refs,
                *(planned.refspecs if planned is not None else []),
            ],
            said,
        )
        if new is not None:
            siterefs.finish(objects, repo.root, remote, publish, new, statuses.get(publish.ref), head)
        result.site = publish
        _settle_branch(repo, result, statuses.get(branch_ref), [*branch_args, *keep_refs], attempts)
        own = publish.commit if publish.commit and publish.error is None else _head(repo)
        result.global_update = siterefs.settle_global(
            objects,
            repo.root,
            remote,
            planned,
            statuses.get(globalview.GLOBAL_REF),
            [own],
            extra,
            label,
            refs=refs,
            said=said if publish.error is None else None,  # the hook saw the site ref
        )
    finally:
        objects.close()
    return result


def _remote_refs(repo: Repo, remote: str) -> dict[str, str]:
    """Commit ids of this clone's refs about ``remote`` (``refs/remotes/<remote>/*``
    and ``refs/cmf/remotes/<remote>/*``), in one git call, as the push starts."""
    out = gitutil.git(
        [
            "for-each-ref",
            "--format=%(objectname) %(objecttype) %(refname)",
            f"refs/remotes/{remote}/",
            f"refs/cmf/remotes/{remote}/",
        ],
        repo.root,
    )
    found: dict[str, str] = {}
    for line in out.decode("utf-8", "surrogateescape").splitlines():
        oid, kind, name = line.split(" ", 2)
        if kind == "commit":
            found[name] = oid
    return found


def _verify_here(repo: Repo, remote: str, remote_oid: str | None) -> bool:
    """Run the pre-push hook's check of the records pushed here (``remote_oid``: the
    remote branch as last fetched), in this process, when that hook is cmfgit's own
    and nothing else: the push can then skip it (``--no-verify``) and a Python
    start-up. False: git runs the hooks as usual."""
    from cmfgit import hooks

    path = hooks.hooks_dir(repo) / "pre-push"
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    if hooks.MARKER not in text or path.with_name("pre-push.legacy").exists():
        return False
    problems = hooks.verify_changes(repo, hooks.push_changes(repo, remote, "HEAD", remote_oid))
    if problems:
        try:
            hooks.refuse("push", problems)
        except CmfgitError as exc:
            raise CmfgitError(f"push refused by the pre-push hook: {exc}") from None
    return True


def _settle_branch(
    repo: Repo, result: PushResult, status: siterefs.RefStatus | None, args: list[str], attempts: int
) -> None:
    """The branch's part of the push. When the remote branch moved on, merge it
    (only if that cannot stop on conflicts, and never leaving a merge in
    progress) and push again; else say why the branch is not pushed."""
    remote, destination = result.remote, result.destination or ""
    ref = f"refs/heads/{destination}"
    for attempt in range(1, attempts + 1):
        if status is not None and status.ok:
            result.pushed = status.flag != "="
            return
        if status is None or not status.raced:
            reason = status.summary if status is not None else "git push did not report it"
            result.branch_error = f"{remote} refused {destination} ({reason}); your metadata is published"
            return
        problem = _merge_for_push(repo, remote, destination)
        if problem is not None:
            result.branch_error = problem
            return
        result.merges += 1
        if attempt > 1:
            globalview.backoff(attempt)
        status = siterefs.push_refs(repo.root, args).get(ref)
    result.branch_error = (
        f"{remote}/{destination} kept moving: gave up after {attempts} attempts (your metadata is published); "
        "run 'cmfgit push' again"
    )


def _merge_for_push(repo: Repo, remote: str, branch: str) -> str | None:
    """Merge ``remote/branch`` into HEAD for a push, or say why not (None: merged,
    or nothing to merge). The merge is tried first without touching anything
    (``git merge-tree``): a conflict in code files is the user's to resolve,
    so it is only reported. A real merge that still stops is aborted, so the
    working tree is left as it was."""
    theirs = fetch_ref(repo, remote, branch)
    if theirs is None or gitutil.git_ok(["merge-base", "--is-ancestor", theirs, "HEAD"], repo.root):
        return None
    advice = f"run 'git pull {remote} {branch}', resolve and commit, then 'cmfgit push'"
    where = f"branch {branch} not pushed (your metadata is published): {remote}/{branch} has new commits"
    proc = gitutil.start(
        ["merge-tree", "--write-tree", "--name-only", "--no-messages", "-z", "HEAD", theirs], repo.root
    )
    out, err = proc.communicate()
    if proc.returncode not in (0, 1):
        detail = err.decode("utf-8", "replace").strip().splitlines()
        return f"{where} that cannot be merged here ({detail[0] if detail else 'git merge-tree failed'}); {advice}"
    conflicted = [p.decode("utf-8", "surrogateescape") for p in out.split(b"\0")[1:] if p]
    outside = [n for n in conflicted if not n.startswith(".cmf/")]
    if outside:
        shown = ", ".join(outside[:5]) + (" ..." if len(outside) > 5 else "")
        return f"{where} that conflict with yours in {shown}; {advice}"
    dirty = gitutil.git(["status", "--porcelain", "--untracked-files=no"], repo.root).strip()
    if conflicted and dirty:
        return (
            f"{where}; merging them needs the merge driver and you have uncommitted changes: "
            f"commit or stash them, {advice}"
        )
    merge = gitutil.start(
        ["merge", "--no-edit", "-m", f"cmfgit: merge {remote}/{branch}", f"refs/remotes/{remote}/{branch}"], repo.root
    )
    m_out, m_err = merge.communicate()
    if merge.returncode == 0:
        return None
    names = [
        c.decode("utf-8", "surrogateescape")
        for c in gitutil.git(["diff", "--name-only", "--diff-filter=U", "-z"], repo.root).split(b"\0")
        if c
    ]
    if not names and not (repo.git_dir / "MERGE_HEAD").exists():
        detail = (m_err or m_out).decode("utf-8", "replace").strip().splitlines()
        why = detail[0] if detail else "git merge failed"
        return f"{where} and git did not merge them ({why}): commit or stash your changes, {advice}"
    if names and all(n.startswith(".cmf/") for n in names):
        from cmfgit.retractions import keep_surviving_files

        kept = set(keep_surviving_files(repo))  # modify/delete of a pack: the retraction does the deleting
        if not [n for n in names if n not in kept]:
            gitutil.git(["commit", "--no-edit", "-q"], repo.root)
            return None
    gitutil.git(["merge", "--abort"], repo.root, check=False)
    shown = ", ".join(names[:5]) + (" ..." if len(names) > 5 else "")
    return (
        f"{where}, and the merge driver could not merge {shown or 'them'} (the merge was undone; see 'cmfgit fsck'); "
        f"{advice}"
    )


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


def _tracking_branches(refs: dict[str, str], remote: str) -> list[str]:
    """Commit ids of ``refs/remotes/<remote>/*`` (of :func:`_remote_refs`): records already on the remote."""
    prefix, skip = f"refs/remotes/{remote}/", globalview.tracking_ref(remote)
    return [oid for name, oid in refs.items() if name.startswith(prefix) and name != skip]


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
    view: siterefs.View | None = None  # the union of the remote's site refs and cmf/global


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
    view = siterefs.fetch_view(repo.root, repo.common_dir, remote)  # cmf/global and every site ref, one fetch
    result.view = view
    tip = view.commit
    if tip is None:
        return result
    result.global_commit = tip
    from cmfgit import pullstore

    brought = pullstore.bring(repo, tip, selection, f"{remote}/{GLOBAL_BRANCH}")
    result.selected, result.written = brought.selected, brought.written
    # the view's count as its union knows it (its commit's trailer), else the entries read
    result.view_records = view.records or brought.view_records
    result.problems = brought.problems
    if brought.written:
        from cmfgit.gc import maybe_gc

        maybe_gc(repo)  # the few records left loose, past the threshold
    return result
