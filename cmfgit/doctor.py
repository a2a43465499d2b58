"""``cmfgit doctor``: is this clone set up, and is its metadata where it should be?

Each check gives a status (ok, warn or error), one line of detail and, when
something is wrong, the command that fixes it. Doctor only reads: it does not
configure the clone (every other command does that by itself).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cmfgit import gitutil, treeread
from cmfgit.errors import CmfgitError, RecordError
from cmfgit.repo import OBJECTS_DIR, Repo

OK, WARN, ERROR = "ok", "warn", "error"


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok | warn | error
    detail: str
    fix: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "detail": self.detail, "fix": self.fix}


@dataclass
class Report:
    root: str
    checks: list[Check] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(c.status != ERROR for c in self.checks)

    def add(self, name: str, status: str, detail: str, fix: str | None = None) -> None:
        self.checks.append(Check(name, status, detail, fix))

    def as_json(self) -> dict[str, Any]:
        return {"root": self.root, "ok": self.ok, "checks": [c.as_json() for c in self.checks], **self.facts}


def diagnose(repo: Repo, remote: str | None = None, run_fsck: bool = False) -> Report:
    report = Report(str(repo.root))
    if not repo.initialized:
        report.add("setup", ERROR, f"cmfgit is not initialised in {repo.root}", "cmfgit init")
        return report
    _driver(repo, report)
    _hooks(repo, report)
    _state(repo, report)
    _records(repo, report)
    name = _remote(repo, report, remote)
    if name is not None:
        _global(repo, report, name)
    if run_fsck:
        _fsck(repo, report)
    return report


def _driver(repo: Repo, report: Report) -> None:
    from cmfgit.init import driver_command, driver_usable

    value = gitutil.config_get(repo.root, "merge.cmfgit.driver")
    report.facts["merge_driver"] = value
    if value == driver_command():
        report.add("merge driver", OK, "merge.cmfgit.driver runs this cmfgit")
    elif driver_usable(value):
        from cmfgit.launcher import recorded_python

        shown = recorded_python(value or "") or value  # the driver's shell text names its Python first
        report.add("merge driver", OK, f"merge.cmfgit.driver is set by another install: {shown}")
    else:
        from cmfgit.launcher import recorded_python

        python = recorded_python(value or "")
        what = "not set" if not value else f"broken (its Python, {python}, is gone)" if python else f"broken ({value})"
        report.add(
            "merge driver", ERROR, f"merge.cmfgit.driver is {what}: git would merge records as text", "cmfgit init"
        )
    probe = f"{OBJECTS_DIR}/00/{'0' * 62}.yaml"
    out = gitutil.git_text(["check-attr", "merge", "--", probe], repo.root)
    if out.endswith(": cmfgit"):
        report.add("attributes", OK, ".gitattributes sends .cmf/objects/** to the merge driver")
    else:
        report.add("attributes", ERROR, f"{probe} has no 'merge=cmfgit' attribute", "cmfgit init")


def _hooks(repo: Repo, report: Report) -> None:
    from cmfgit import hooks

    states = hooks.status(repo)
    report.facts["hooks"] = {h.name: {"state": h.state, "legacy": h.legacy, "path": str(h.path)} for h in states}
    if all(h.ok for h in states):
        chained = [h.name for h in states if h.legacy]
        extra = f"; chains the previous {', '.join(chained)}" if chained else ""
        report.add("hooks", OK, f"installed in {states[0].path.parent}{extra}")
        return
    bad = ", ".join(f"{h.name} {h.state}" for h in states if not h.ok)
    if gitutil.config_get(repo.root, hooks.HOOKS_SETTING) == "false":
        report.add("hooks", WARN, f"uninstalled on purpose (cmfgit.hooks=false): {bad}", "cmfgit hooks install")
    else:
        report.add("hooks", WARN, f"not all installed: {bad}", "cmfgit hooks install")


def _state(repo: Repo, report: Report) -> None:
    from cmfgit.commit import pending_paths
    from cmfgit.hooks import in_progress

    pending = pending_paths(repo)
    report.facts["pending_paths"] = len(pending)
    if pending:
        report.add(
            "pending", OK, f"{len(pending)} path(s) under .cmf not committed yet (the next commit or push takes them)"
        )
    else:
        report.add("pending", OK, "no pending records")
    if in_progress(repo):
        report.add("operation", WARN, "a rebase, merge, cherry-pick or revert is in progress: the hooks wait for it")


def _records(repo: Repo, report: Report) -> None:
    from cmfgit.config import load_config
    from cmfgit.gc import count_loose
    from cmfgit.store import Store

    store = Store(repo.objects_dir)
    loose = count_loose(repo.objects_dir)
    packs = store.pack_paths()
    packed_ids: set[str] = set()  # a record in two packs (two branches' gcs, merged) counts once
    for path in packs:
        try:
            packed_ids.update(store.read_pack(path))
        except RecordError as exc:
            report.add("packs", ERROR, str(exc), "cmfgit fsck")
        except FileNotFoundError:
            continue  # folded away by a concurrent gc
    packed = len(packed_ids)
    threshold = load_config(repo).gc_threshold
    report.facts["records"] = {"loose": loose, "packed": packed, "packs": len(packs), "gc_threshold": threshold}
    detail = f"{loose} loose, {packed} packed in {len(packs)} pack(s)"
    if threshold > 0 and loose > threshold:
        report.add("store", WARN, f"{detail}; more loose than gc.threshold ({threshold})", "cmfgit gc")
    else:
        report.add("store", OK, detail)


def _remote(repo: Repo, report: Report, remote: str | None) -> str | None:
    names = gitutil.git_text(["remote"], repo.root).split()
    if remote is None:
        branch = gitutil.git_text(["branch", "--show-current"], repo.root)
        configured = gitutil.config_get(repo.root, f"branch.{branch}.remote") if branch else None
        remote = configured if configured in names else ("origin" if "origin" in names else None)
        if remote is None and len(names) == 1:
            remote = names[0]
    if remote is None or remote not in names:
        report.facts["remote"] = None
        missing = f"no remote named '{remote}'" if remote else "no remote"
        report.add("remote", WARN, f"{missing}: push and pull need one", "git remote add origin URL")
        return None
    url = gitutil.config_get(repo.root, f"remote.{remote}.url")
    if url:  # never print a token or password kept in the URL
        from cmfgit.config import load_config
        from cmfgit.redact import Redactor

        config = load_config(repo)
        url = Redactor(config.redact_keys, config.redact_values).text(url)
    report.facts["remote"] = {"name": remote, "url": url}
    report.add("remote", OK, f"{remote} ({url})")
    return remote


def _global(repo: Repo, report: Report, remote: str) -> None:
    from cmfgit.globalview import tracking_ref

    ref = tracking_ref(remote)
    facts: dict[str, Any] = {"ref": ref, "fetched": False, "missing": None}
    report.facts["global"] = facts
    if gitutil.rev_parse(repo.root, ref) is None:
        report.add("global view", WARN, f"{ref} not fetched yet", "cmfgit push (or cmfgit pull)")
        return
    facts["fetched"] = True
    try:
        missing = _not_in(repo, "HEAD", ref)
    except CmfgitError as exc:
        report.add("global view", WARN, f"cannot compare with {ref}: {exc}")
        return
    facts["missing"] = len(missing)
    if missing:
        report.add(
            "global view", WARN, f"{len(missing)} committed record(s) not in {ref} (as last fetched)", "cmfgit push"
        )
    else:
        report.add("global view", OK, f"every committed record is in {ref} (as last fetched)")


def _not_in(repo: Repo, rev: str, other: str) -> set[str]:
    """Ids of records at ``rev`` that ``other`` lacks; files with equal blobs are skipped unread."""
    mine_tree = treeread.objects_tree(repo.root, rev) if gitutil.rev_parse(repo.root, rev) else None
    if mine_tree is None:
        return set()
    theirs_tree = treeread.objects_tree(repo.root, other)
    mine = treeread.list_files(repo.root, mine_tree)
    theirs = treeread.list_files(repo.root, theirs_tree) if theirs_tree else []
    blobs = {f.path: f.blob for f in theirs}
    changed = [f for f in mine if blobs.get(f.path) != f.blob]
    if not changed:
        return set()
    have = {f.loose_id for f in theirs if f.loose_id}
    for _f, records in treeread.read_files(repo.root, [f for f in theirs if f.is_pack]):
        have.update(records)
    wanted: set[str] = set()
    for f in changed:
        if f.loose_id:
            wanted.add(f.loose_id)
    for _f, records in treeread.read_files(repo.root, [f for f in changed if f.is_pack]):
        wanted.update(records)
    return wanted - have


def _fsck(repo: Repo, report: Report) -> None:
    from cmfgit.reading import fsck

    result = fsck(repo)
    report.facts["fsck"] = {"checked": result.checked, "problems": [str(p) for p in result.problems]}
    if result.problems:
        report.add("fsck", ERROR, f"{len(result.problems)} problem(s) in {result.checked} record(s)", "cmfgit fsck")
    else:
        report.add("fsck", OK, f"{result.checked} record(s) verified")
