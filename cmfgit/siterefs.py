"""Site refs: every site publishes its metadata to a ref of its own.

On the central remote each site has one ref, ``refs/cmf/sites/<site>``: a
chain of commits (built tree-level, like ``cmf/global``) whose tree is
``.cmf/objects`` and nothing else. Each new commit is the union of the
previous one and the site's ``HEAD`` (everything the site has on the branch it
pushes), so a site ref only ever fast-forwards, and only from its own site:
``cmfgit push`` publishes it in the same ``git push`` as the branch, in one
round trip, with no compare-and-swap and nobody to race.

The global view is the union of every site ref (as git-annex unions every
clone's ``git-annex`` branch) and of ``cmf/global``, the materialised union
that plain-git readers and hosts without hooks see. Readers fetch
``refs/cmf/sites/*`` with one refspec and union locally; the result is kept in
``refs/cmf/remotes/<remote>/global`` (the view the read commands' ``--global``
and ``cmfgit pull`` use). ``cmf/global`` itself is kept up to date by the
central's ``post-receive`` hook (:func:`install_hook`) or, when the central
runs none, by a site after its own push (a lost race there is only a note).

Local refs of a clone (never pushed)::

    refs/cmf/remotes/<remote>/sites/<site>   the remote's site refs, as last fetched
    refs/cmf/remotes/<remote>/global         the union of those and <remote>/cmf/global

The same site name used from two clones: the second push of the name finds
the remote's site ref moved on (not a fast-forward of what this clone last
published), fetches it, unions its records in and pushes again; nothing is
lost, and when the ref held records this clone lacked the push says so
(``shared_name``). A ref moved on by an import of this site's own bundle at the
central (``cmfgit bundle import``) holds none: that push says nothing.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from dulwich.objects import ObjectID
from dulwich.repo import Repo as DulwichRepo

from cmfgit import centralhook, gitutil, globalview
from cmfgit.errors import CmfgitError, GitError
from cmfgit.globalview import GLOBAL_REF, SITES_PREFIX, build_union, tracking_ref

SITE_TRIES = 3  # only when another clone publishes the same site name
HOOK_NAME = "post-receive"
HOOK_MARKER = "# cmfgit-central-hook:"
# Written by install_hook in the central repository: sites that fetch it leave cmf/global to the hook.
HOOKED_PREFIX = "refs/cmf/hooked/"
HOOKED_REF = HOOKED_PREFIX + HOOK_NAME
_SAFE = re.compile(r"[^A-Za-z0-9_.-]")
# Rejections that mean "the ref moved on since we looked": fetch, union, try again.
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


# -- names -------------------------------------------------------------------------


def ref_component(site: str) -> str:
    """``site`` as one ref name component: unsafe bytes percent-encoded (so
    ``eu/lab`` and ``eu`` never clash as file and directory)."""
    text = _SAFE.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode()), site)
    if text.startswith(".") or text.endswith(".") or ".." in text or text.endswith(".lock"):
        text = text.replace(".", "%2E")
    return text or "%00"


def site_ref(site: str) -> str:
    return SITES_PREFIX + ref_component(site)


def copies_prefix(remote: str) -> str:
    return f"refs/cmf/remotes/{remote}/sites/"


def copy_ref(remote: str, site: str) -> str:
    return copies_prefix(remote) + ref_component(site)


def view_ref(remote: str) -> str:
    """The union of the remote's site refs and its cmf/global, as this clone last computed it."""
    return f"refs/cmf/remotes/{remote}/global"


def sites_refspec(remote: str) -> str:
    return f"+{SITES_PREFIX}*:{copies_prefix(remote)}*"


def hooked_refspec(remote: str) -> str:
    """The central's word that its post-receive hook maintains cmf/global (:data:`HOOKED_REF`)."""
    return f"+{HOOKED_PREFIX}*:refs/cmf/remotes/{remote}/hooked/*"


def hooked_copy(remote: str) -> str:
    return f"refs/cmf/remotes/{remote}/hooked/{HOOK_NAME}"


def global_refspec(remote: str) -> str:
    return f"+{GLOBAL_REF}:{tracking_ref(remote)}"


# -- pushing several refs at once -----------------------------------------------


@dataclass
class RefStatus:
    flag: str  # git push --porcelain: ' ' fast-forward, '+' forced, '-' deleted, '*' new, '!' rejected, '=' up to date
    summary: str

    @property
    def ok(self) -> bool:
        return self.flag != "!"

    @property
    def raced(self) -> bool:
        return not self.ok and any(r in self.summary for r in _RACE)


def push_refs(repo_root: Path, args: list[str], said: list[str] | None = None) -> dict[str, RefStatus]:
    """``git push --porcelain ARGS``: the status of each destination ref.

    Rejected refs are in the answer (flag ``!``); a push that reached no ref
    at all (network, auth, a pre-push hook that refused) raises. ``said``
    gets the lines the remote's hooks printed (``remote: ...``).
    """
    proc = gitutil.start(["push", "--porcelain", *args], repo_root)
    out, err = proc.communicate()
    errors = err.decode("utf-8", "replace")
    if said is not None:
        said.extend(line[len("remote: ") :].strip() for line in errors.splitlines() if line.startswith("remote: "))
    found: dict[str, RefStatus] = {}
    for line in out.decode("utf-8", "replace").splitlines():
        parts = line.split("\t")
        if len(parts) >= 2 and len(parts[0]) == 1 and ":" in parts[1]:
            found[parts[1].rsplit(":", 1)[1]] = RefStatus(parts[0], parts[2] if len(parts) > 2 else "")
    if found:
        for status in found.values():  # a lost ref lock is reported on stderr only
            if not status.ok and not status.raced and any(r in errors for r in _RACE_STDERR):
                status.summary += " (failed to update ref)"
        return found
    if proc.returncode == 0:
        return found
    hook = [line for line in errors.splitlines() if line.startswith("cmfgit: error: ")]
    if hook:  # our own pre-push hook refused: its reason, not git's "failed to push some refs"
        raise CmfgitError(f"push refused by the pre-push hook: {hook[-1][len('cmfgit: error: ') :]}")
    raise GitError(["push", *args], proc.returncode, errors)


# -- this site's ref ---------------------------------------------------------------


@dataclass
class SitePublish:
    """What ``cmfgit push`` did with this site's ref."""

    site: str
    ref: str  # on the remote
    commit: str | None = None  # the site ref's value now (None: never published)
    records: int = 0  # records in the site ref
    added: int = 0  # added by this push
    pushed: bool = False  # the site ref moved on the remote
    attempts: int = 0  # pushes of the site ref (1; more only when another clone uses the same name)
    shared_name: bool = False  # another clone published under this site name: its records were merged in
    error: str | None = None  # the remote refused the site ref (then cmf/global still gets the records)
    skipped: list[str] = field(default_factory=list)


def prepare(
    objects: DulwichRepo, repo_root: Path, remote: str, site: str, head: str, refs: dict[str, str] | None = None
) -> tuple[SitePublish, str | None]:
    """The next commit of this site's ref: what it had (as this clone last
    published or fetched it) united with ``head``. None: nothing new.
    ``refs``: this clone's refs under ``refs/cmf/remotes/<remote>/``, when read already."""
    base = _ref(repo_root, copy_ref(remote, site), refs)
    result = build_union(objects, _oid(base), _oids([head]), what=f"site {site}")
    publish = SitePublish(site, site_ref(site), commit=base, records=result.records, skipped=list(result.skipped))
    if result.commit is None:
        return publish, None
    publish.added = result.added
    return publish, result.commit.decode()


def finish(
    objects: DulwichRepo,
    repo_root: Path,
    remote: str,
    publish: SitePublish,
    new: str,
    status: RefStatus | None,
    head: str,
) -> None:
    """After the push that carried ``new`` to the site ref: record the outcome;
    when another clone moved the ref on, fetch it, union and push again."""
    publish.attempts = 1
    while True:
        if status is not None and status.ok:
            gitutil.git(["update-ref", copy_ref(remote, publish.site), new], repo_root)
            publish.commit, publish.pushed = new, status.flag != "="
            return
        if status is None or not status.raced:
            publish.error = status.summary if status is not None else "not reported by git push"
            return
        if publish.attempts >= SITE_TRIES:
            publish.error = f"{publish.ref} kept moving (another clone publishes as site '{publish.site}')"
            return
        # Not a fast-forward of what this clone published: the ref moved on. Take its
        # records in (never drop them), then push again. Another clone uses the same
        # site name only if the ref holds records this clone lacks: a bundle of this
        # site's own records imported at the central moves the ref on too, with none.
        theirs = _fetch_one(repo_root, remote, publish.ref, copy_ref(remote, publish.site))
        mine = new
        if theirs is not None and build_union(objects, _oid(mine), _oids([theirs]), what="").added:
            publish.shared_name = True
        result = build_union(objects, _oid(theirs), _oids([mine, head]), what=f"site {publish.site}")
        if result.commit is None:  # theirs already holds everything ours did
            assert theirs is not None
            publish.commit, publish.records = theirs, result.records
            return
        new = result.commit.decode()
        publish.records, publish.added = result.records, result.added
        publish.attempts += 1
        status = push_refs(repo_root, ["--no-verify", remote, f"{new}:{publish.ref}"]).get(publish.ref)


def _fetch_one(repo_root: Path, remote: str, ref: str, into: str) -> str | None:
    proc = gitutil.start(["fetch", "--quiet", "--no-tags", remote, f"+{ref}:{into}"], repo_root)
    _out, err = proc.communicate()
    if proc.returncode != 0:
        text = err.decode("utf-8", "replace")
        if "couldn't find remote ref" in text:
            return None
        raise GitError(["fetch", remote, ref], proc.returncode, text)
    return globalview.ref_value(repo_root, into)


def _oid(value: str | None) -> ObjectID | None:
    return ObjectID(value.encode()) if value else None


def _oids(values: list[str]) -> list[ObjectID]:
    return [ObjectID(v.encode()) for v in values if v]


# -- reading: the union of the site refs -----------------------------------------


@dataclass
class Fetched:
    """The remote's cmf/global and site refs, as one fetch brought them."""

    global_tip: str | None
    sites: dict[str, str]  # local copy ref -> commit


def fetch_all(repo_root: Path, remote: str) -> Fetched:
    """Fetch ``cmf/global`` and every ``refs/cmf/sites/*`` of ``remote`` in one
    ``git fetch`` (pruning site refs the remote no longer has)."""
    base = ["fetch", "--quiet", "--no-tags", "--prune", remote]
    patterns = [sites_refspec(remote), hooked_refspec(remote)]
    proc = gitutil.start([*base, global_refspec(remote), *patterns], repo_root)
    _out, err = proc.communicate()
    if proc.returncode != 0:
        text = err.decode("utf-8", "replace")
        if "couldn't find remote ref" not in text:
            raise GitError(["fetch", remote, GLOBAL_REF, SITES_PREFIX + "*"], proc.returncode, text)
        # No cmf/global yet: the site refs alone (the stale copy of the global branch goes).
        gitutil.git([*base, *patterns], repo_root)
        gitutil.git(["update-ref", "-d", tracking_ref(remote)], repo_root, check=False)
    listed = dict(gitutil.for_each_ref(repo_root, tracking_ref(remote), copies_prefix(remote)))  # one git call
    tip = listed.pop(tracking_ref(remote), None)
    return Fetched(tip, listed)


@dataclass
class View:
    """The global view of a remote as a clone sees it: one commit."""

    remote: str
    commit: str | None  # None: the remote has neither cmf/global nor site refs
    records: int = 0
    sites: int = 0  # site refs in the union
    global_tip: str | None = None  # the remote's cmf/global it was built on
    skipped: list[str] = field(default_factory=list)


def union_view(objects: DulwichRepo, repo_root: Path, remote: str, fetched: Fetched) -> View:
    """Union the fetched site refs into the fetched cmf/global; keep it in
    :func:`view_ref` (the remote's own cmf/global when that already holds all)."""
    sources = _oids(sorted(set(fetched.sites.values())))
    result = build_union(objects, _oid(fetched.global_tip), sources, what="site refs")
    commit = result.commit.decode() if result.commit is not None else fetched.global_tip
    ref = view_ref(remote)
    if commit is None:
        gitutil.git(["update-ref", "-d", ref], repo_root, check=False)
    else:
        gitutil.git(["update-ref", ref, commit], repo_root)
    return View(remote, commit, result.records, len(fetched.sites), fetched.global_tip, list(result.skipped))


def fetch_view(repo_root: Path, common_dir: Path, remote: str) -> View:
    """Fetch the remote's site refs and cmf/global, and union them (one fetch)."""
    objects = globalview.open_objects(common_dir)
    try:
        return union_view(objects, repo_root, remote, fetch_all(repo_root, remote))
    finally:
        objects.close()


# -- the materialised union cmf/global, opportunistically ----------------------------


@dataclass
class GlobalUpdate:
    remote: str
    records: int  # record entries in the global view now
    added: int  # added by this update
    updated: bool  # a new cmf/global commit was pushed by this clone
    attempts: int
    skipped: list[str] = field(default_factory=list)  # damaged files left out of the view, one line each
    gave_up: bool = False  # lost its one race after the push: a note, not an error (the site ref has it all)
    by_central: bool = False  # the central's post-receive hook updated it during this push (and said so)
    view: View | None = None  # the union this clone sees now


@dataclass
class Planned:
    """A cmf/global commit built before the push, to go in the same ``git push``."""

    old: str | None  # the tip it was built on (the lease)
    new: str
    records: int
    added: int
    sites: int
    skipped: list[str]

    @property
    def options(self) -> list[str]:
        return [f"--force-with-lease={GLOBAL_REF}:{self.old or ''}"]

    @property
    def refspecs(self) -> list[str]:
        return [f"{self.new}:{GLOBAL_REF}"]


def plan_global(
    objects: DulwichRepo,
    repo_root: Path,
    remote: str,
    own: list[str],
    extra: list[str],
    what: str,
    refs: dict[str, str] | None = None,
) -> Planned | None:
    """The next cmf/global from what this clone last fetched: its tip, united with
    ``own`` (this push's records), the site refs and ``extra`` (fetched remote
    branches). None when there is nothing new, when this clone never fetched the
    view, or when the central maintains it (it has :data:`HOOKED_REF`, or made
    that tip): then :func:`settle_global` checks after the push."""
    old = _ref(repo_root, tracking_ref(remote), refs)
    if old is None or _by_central(objects, old) or _ref(repo_root, hooked_copy(remote), refs):
        return None  # never fetched (so not known), or the central's hook maintains it
    if refs is not None:
        sites = sorted({oid for name, oid in refs.items() if name.startswith(copies_prefix(remote))})
    else:
        sites = sorted({oid for _, oid in gitutil.for_each_ref(repo_root, copies_prefix(remote))})
    result = build_union(objects, _oid(old), _oids([*own, *sites, *extra]), what=what)
    if result.commit is None:
        return None
    return Planned(old, result.commit.decode(), result.records, result.added, len(sites), list(result.skipped))


def settle_global(
    objects: DulwichRepo,
    repo_root: Path,
    remote: str,
    planned: Planned | None,
    status: RefStatus | None,
    own: list[str],
    extra: list[str],
    what: str,
    refs: dict[str, str] | None = None,
    said: list[str] | None = None,
) -> GlobalUpdate:
    """After the push: cmf/global went in with it (done), or lost its race, or was
    not built (the central maintains the view, or this clone never fetched it).
    When the central's post-receive hook said (``said``: the push's ``remote:``
    lines) that it brought cmf/global up to date after this push, that is all;
    else one more try (:func:`update_global`), and a second lost race is left."""
    if planned is not None and status is not None and status.ok:
        _set_refs(repo_root, {tracking_ref(remote): planned.new, view_ref(remote): planned.new})
        view = View(remote, planned.new, planned.records, planned.sites, planned.new, planned.skipped)
        return GlobalUpdate(remote, planned.records, planned.added, True, 1, planned.skipped, view=view)
    if planned is not None and status is not None and not status.raced:
        raise GitError(["push", remote, GLOBAL_REF], 1, status.summary)
    hook = _hook_update(said or [])
    if planned is None and hook is not None:  # the central's hook took this push in, and said so
        return GlobalUpdate(remote, hook[0], hook[1], False, 0, by_central=True)
    return update_global(objects, repo_root, remote, own, extra, what, 2 if planned is not None else 1)


def _ref(repo_root: Path, ref: str, refs: dict[str, str] | None) -> str | None:
    """The commit ``ref`` names: from ``refs`` (read by the caller already), else asked of git."""
    return refs.get(ref) if refs is not None else globalview.ref_value(repo_root, ref)


def _set_refs(repo_root: Path, values: dict[str, str]) -> None:
    """``git update-ref`` of several refs in one git process."""
    lines = "".join(f"update {ref} {oid}\n" for ref, oid in values.items())
    gitutil.git(["update-ref", "--stdin"], repo_root, input=lines.encode())


def update_global(
    objects: DulwichRepo,
    repo_root: Path,
    remote: str,
    own: list[str],
    extra: list[str],
    what: str,
    attempt: int = 1,
) -> GlobalUpdate:
    """Make sure the remote's ``cmf/global`` holds ``own`` (this site's records),
    after the push that published them: one try, never a loop, and a cost that
    does not grow with the number of sites.

    One fetch of cmf/global alone: when it holds them already (the central's
    hook, or another site's union, took them in), nothing is pushed. Otherwise
    the union of it, ``own``, the site refs this clone already has copies of
    (none is fetched for this) and ``extra`` (the remote branches it has
    fetched) is pushed with compare-and-swap, once. A lost race is left as it
    is (``gave_up``, a note): readers union the site refs anyway, and each
    site's next push folds its records in. Many sites pushing at once thus
    cost each one small fetch and one small union, not a fetch of every site
    ref and a union of them all, which grew with the sites (docs/benchmarks.md).
    """
    update = GlobalUpdate(remote, 0, 0, False, attempt)
    old = _fetch_one(repo_root, remote, GLOBAL_REF, tracking_ref(remote))
    mine = build_union(objects, _oid(old), _oids(own), what=what)
    if mine.commit is None and old is not None:  # cmf/global has every record of ours
        gitutil.git(["update-ref", view_ref(remote), old], repo_root)
        update.records, update.skipped = mine.records, list(mine.skipped)
        update.view = View(remote, old, mine.records, 0, old, list(mine.skipped))
        return update
    known = sorted({oid for _, oid in gitutil.for_each_ref(repo_root, copies_prefix(remote))})
    result = build_union(objects, _oid(old), _oids([*own, *known, *extra]), what=what)
    update.records, update.skipped = result.records, list(result.skipped)
    if result.commit is None:
        update.view = View(remote, old, result.records, len(known), old, list(result.skipped))
        return update
    new = result.commit.decode()
    lease = f"--force-with-lease={GLOBAL_REF}:{old or ''}"
    status = push_refs(repo_root, ["--no-verify", lease, remote, f"{new}:{GLOBAL_REF}"]).get(GLOBAL_REF)
    if status is not None and status.ok:
        _set_refs(repo_root, {tracking_ref(remote): new, view_ref(remote): new})
        update.added, update.updated = result.added, True
        update.view = View(remote, new, result.records, len(known), new, list(result.skipped))
        return update
    if status is not None and not status.raced:
        raise GitError(["push", remote, GLOBAL_REF], 1, status.summary)
    # Lost: another site moved cmf/global first. Readers union the site refs anyway.
    update.gave_up = True
    update.view = View(remote, new, result.records, len(known), old, list(result.skipped))
    gitutil.git(["update-ref", view_ref(remote), new], repo_root)
    return update


def _by_central(objects: DulwichRepo, commit: str) -> bool:
    """Was this cmf/global commit made by the central itself ('cmfgit global update',
    its post-receive hook)? Those say so in their first line."""
    tip = objects.object_store[ObjectID(commit.encode())]
    first = getattr(tip, "message", b"").split(b"\n", 1)[0]
    return b" from all branches" in first


# -- the central repository: its post-receive hook ----------------------------------


def hook_script() -> str:
    from cmfgit import launcher

    return f"""#!/bin/sh
{HOOK_MARKER} post-receive (installed by 'cmfgit global install-hook')
# After every push: cmf/global := the union of every branch and every site ref
# (refs/cmf/sites/*). The hook that was here before, if any, is kept as
# post-receive.legacy and runs first, with the same input.
{launcher.variables(chr(10))}
input=$(cat)
if [ -x "$0.legacy" ]; then
    printf '%s\\n' "$input" | "$0.legacy" "$@"
fi
# Only pushes of branches or site refs change the view (not one of cmf/global alone).
printf '%s\\n' "$input" | grep -v ' refs/heads/cmf/global$' | grep -q -e ' refs/heads/' -e ' {SITES_PREFIX}' || exit 0
{launcher.block("hook central-update")}echo "cmfgit: cannot find cmfgit: cmf/global not updated" >&2
"""


def install_hook(git_dir: Path) -> Path:
    """Write the central ``post-receive`` hook into the repository at ``git_dir``
    (bare or not); a foreign hook already there is kept as ``post-receive.legacy``."""
    out = gitutil.git_text(["rev-parse", "--git-path", "hooks"], git_dir)
    hooks = Path(out) if Path(out).is_absolute() else git_dir / out
    hooks.mkdir(parents=True, exist_ok=True)
    path = hooks / HOOK_NAME
    try:
        current = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        current = None
    if current is not None and HOOK_MARKER not in current:
        legacy = hooks / f"{HOOK_NAME}.legacy"
        if legacy.exists():
            raise CmfgitError(f"{path} and {legacy} both exist: merge them by hand, then run this again")
        os.replace(path, legacy)
    from cmfgit.fsutil import atomic_write

    atomic_write(path, hook_script().encode(), fsync=False)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    # Say so to the sites (they fetch refs/cmf/hooked/*): they then push no cmf/global.
    empty = gitutil.git_text(["hash-object", "-t", "tree", "-w", "--stdin"], git_dir, input=b"")
    env = gitutil.clean_env({"GIT_AUTHOR_NAME": "cmfgit", "GIT_AUTHOR_EMAIL": "cmfgit@localhost"})
    env.update({"GIT_COMMITTER_NAME": "cmfgit", "GIT_COMMITTER_EMAIL": "cmfgit@localhost"})
    message = "cmfgit: the post-receive hook of this repository maintains cmf/global\n"
    marker = gitutil.git_text(["commit-tree", empty], git_dir, input=message.encode(), env=env)
    gitutil.git(["update-ref", HOOKED_REF, marker], git_dir)
    return path


# What the central's hook prints once cmf/global holds the push (centralhook.py), read back here:
# 'holds N record(s) (+A)' after its own union, '(already up to date)', or
# '(taken in with a concurrent push)' when another hook's union had this push in.
_HOOK_SAID = re.compile("^" + re.escape(centralhook.SAYS) + r"(\d+) record\(s\)(?: \(\+(\d+)\))?")


def _hook_update(said: list[str]) -> tuple[int, int] | None:
    """The records cmf/global holds, and those its update added, by the central
    hook's word, if it ran and succeeded."""
    for line in said:
        match = _HOOK_SAID.match(line)
        if match:
            return int(match.group(1)), int(match.group(2) or 0)
    return None
