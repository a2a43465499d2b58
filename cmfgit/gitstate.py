"""The code version of a run: commit, branch, dirty flag, remote and tree.

``tree`` identifies the code even when it is not committed: it is the id of
the working tree as git would commit it now, without ``.cmf/``. For a clean
checkout that is HEAD's tree minus ``.cmf``; for a dirty one it is a snapshot
written with a temporary index: the tracked files as they are and, only when
the ``snapshot.untracked`` setting asks for it, untracked files within bounds
(``snapshot.max_files``, ``max_file_size``, ``max_total_size``), never one
whose name or content the redaction rules flag (redact.secret_path,
redact.secret_content). The untracked files left out are counted in
``untracked_skipped``. See docs/format.md section 3.2.
"""

from __future__ import annotations

import os
import time
from collections import namedtuple

from cmfgit import gitutil
from cmfgit.errors import GitError
from cmfgit.fsutil import atomic_write
from cmfgit.repo import Repo

TYPE_CHECKING = False  # typing's constant without importing typing (~4 ms of log-run start-up)

# Reading stops after this many bytes of untracked files, captured or not: a
# folder of secrets-looking files must not make log-run read without end.
_READ_BUDGET_FACTOR = 2
# A changed tracked file up to this size is scanned for secrets (~35 ms a MiB
# on a busy 2-core machine); a bigger one (data, not code, and a file the user
# already publishes with every commit) goes into the snapshot unscanned, as
# git add -u takes it.
TRACKED_SCAN_MAX = 1 << 20


# Records of fields: typing.NamedTuple for the type checker, collections.namedtuple
# at run time (importing typing, or dataclasses, costs hot commands milliseconds).
if TYPE_CHECKING:
    from typing import Any, NamedTuple

    from cmfgit.config import Config
    from cmfgit.redact import Redactor

    class _GitStateFields(NamedTuple):
        commit: str | None
        branch: str | None
        dirty: bool
        remote: str | None
        tree: str | None
        untracked_skipped: int  # untracked files the snapshot did not capture
        tracked_withheld: int  # changed tracked files kept at their staged version: they hold a secret

    class _SnapshotFields(NamedTuple):
        state: GitState
        config: dict[str, str]  # cmfgit.*, remote.*.url, branch.*.remote, merge.cmfgit.driver
else:
    _GitStateFields = namedtuple(
        "GitState", "commit branch dirty remote tree untracked_skipped tracked_withheld", defaults=(0, 0)
    )
    _SnapshotFields = namedtuple("Snapshot", "state config")


class GitState(_GitStateFields):
    __slots__ = ()

    def as_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "commit": self.commit,
            "branch": self.branch,
            "dirty": self.dirty,
            "remote": self.remote,
            "tree": self.tree,
        }
        if self.untracked_skipped:
            record["untracked_skipped"] = self.untracked_skipped
        if self.tracked_withheld:
            record["tracked_withheld"] = self.tracked_withheld
        return record


class Snapshot(_SnapshotFields):
    """The git state and the git config keys read with it."""

    __slots__ = ()


_CONFIG_KEYS = r"^(cmfgit\..*|remote\..*\.url|branch\..*\.remote|extensions\.objectformat|merge\.cmfgit\.driver)$"
# A reused snapshot is at most this old: HEAD, the branch ref and the index
# show commits, checkouts and staging, but not an edit of a working-tree file,
# so a sweep re-reads the state once a second (a few percent of its time).
REUSE_SECONDS = 1.0
_cache: dict[str, tuple[tuple[int, ...], float, Snapshot]] = {}


def _parse_config(out: bytes) -> dict[str, str]:
    config: dict[str, str] = {}
    for item in out.split(b"\0"):
        if not item:
            continue
        key, _, value = item.partition(b"\n")
        config[key.decode("utf-8", "replace")] = value.decode("utf-8", "replace")
    return config


def _pick_remote(config: dict[str, str], branch: str | None) -> str | None:
    name = config.get(f"branch.{branch}.remote") if branch else None
    if not name:
        remotes = sorted(
            k[len("remote.") : -len(".url")] for k in config if k.startswith("remote.") and k.endswith(".url")
        )
        name = "origin" if "origin" in remotes else (remotes[0] if remotes else None)
    return config.get(f"remote.{name}.url") if name else None


# The clean tree of the last commit seen: ``<commit> <tree>``. A commit's
# tree minus .cmf never changes, so log-runs after the first on a commit
# skip two git processes (ls-tree, mktree).
CLEAN_TREE_CACHE = "cleantree"


def _cached_clean_tree(repo: Repo) -> tuple[str, str] | None:
    try:
        parts = (repo.state_dir / CLEAN_TREE_CACHE).read_bytes().decode("ascii").split()
    except (OSError, UnicodeDecodeError):
        return None
    return (parts[0], parts[1]) if len(parts) == 2 else None


def _clean_tree(repo: Repo, commit: str, cached: tuple[str, str] | None) -> str:
    if cached is not None and cached[0] == commit:
        tree = cached[1]
        # Trust it while the object is there (loose, as mktree wrote it), so
        # that the hooks can keep it reachable; otherwise write it again.
        if os.path.exists(repo.common_dir / "objects" / tree[:2] / tree[2:]):
            return tree
    ls_tree = gitutil.git(["ls-tree", "-z", commit], repo.root)
    entries = [e for e in ls_tree.split(b"\0") if e and not e.endswith(b"\t.cmf")]
    out = gitutil.git(["mktree", "-z"], repo.root, input=b"\0".join(entries) + b"\0" if entries else b"")
    tree = out.decode().strip()
    try:
        atomic_write(repo.state_dir / CLEAN_TREE_CACHE, f"{commit} {tree}\n".encode(), fsync=False)
    except OSError:
        pass  # only a cache
    return tree


def _snapshot_tree(repo: Repo, untracked: list[str], withheld: list[str] | None = None) -> str:
    """Write the dirty working tree (minus .cmf) as a tree object: the tracked
    files as they are, but those ``withheld`` as they are staged, plus the
    ``untracked`` files given (already chosen)."""
    tmp_dir = repo.state_dir / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    tmp_index = tmp_dir / f"index-{os.getpid()}-{os.urandom(3).hex()}"
    real_index = repo.git_dir / "index"
    try:
        if real_index.exists():
            import shutil  # only for a dirty tree: shutil costs start-up time

            # copy2 keeps the mtime too: git trusts a stat match only for files
            # older than the index, so the copy must not look newer than the original
            shutil.copy2(real_index, tmp_index)  # keeps git's stat cache
        env = gitutil.clean_env({"GIT_INDEX_FILE": str(tmp_index)})
        root = repo.root
        gitutil.git(["rm", "-r", "--cached", "-q", "--ignore-unmatch", "--", ".cmf"], root, env=env)
        if withheld:
            specs = [".", ":(exclude).cmf", *(f":(exclude,literal){p}" for p in withheld)]
            listing = b"\0".join(p.encode("utf-8", "surrogateescape") for p in specs) + b"\0"
            args = ["add", "-u", "--pathspec-from-file=-", "--pathspec-file-nul"]
            gitutil.git(args, root, input=listing, env=env)
        else:
            gitutil.git(["add", "-u", "--", ".", ":(exclude).cmf"], root, env=env)
        if untracked:
            # Paths, not pathspecs: update-index is linear where `git add` matches
            # every path against every pathspec.
            listing = b"\0".join(p.encode("utf-8", "surrogateescape") for p in untracked) + b"\0"
            gitutil.git(["update-index", "--add", "-z", "--stdin"], root, input=listing, env=env)
        return gitutil.git(["write-tree"], root, env=env).decode().strip()
    finally:
        try:
            os.unlink(tmp_index)
        except OSError:
            pass


def select_untracked(root: str, untracked: list[str], config: Config, redactor: Redactor | None = None) -> list[str]:
    """The untracked files (``/``-separated, relative to ``root``, in git's order)
    that a snapshot captures under ``config``'s snapshot settings."""
    if not config.snapshot_untracked or not untracked:
        return []
    import stat

    from cmfgit import redact

    red = redactor if redactor is not None else redact.Redactor(config.redact_keys, config.redact_values)
    max_file, max_files, max_total = (
        config.snapshot_max_file_size,
        config.snapshot_max_files,
        config.snapshot_max_total_size,
    )
    budget = max(max_total, max_file) * _READ_BUDGET_FACTOR
    chosen: list[str] = []
    total = 0
    for rel in untracked:
        if len(chosen) >= max_files or budget <= 0:
            break  # the rest is not looked at: a venv/ of 100,000 files costs nothing more
        if rel.endswith("/") or redact.secret_path(rel, red):
            continue  # a nested repository, or a name that says "secret"
        path = os.path.join(root, rel)
        try:
            st = os.lstat(path)
            if st.st_size > max_file or total + st.st_size > max_total:
                continue
            if stat.S_ISLNK(st.st_mode):
                data = os.fsencode(os.readlink(path))
            elif stat.S_ISREG(st.st_mode):
                with open(path, "rb") as fh:
                    data = fh.read(max_file + 1)
            else:
                continue
        except OSError:
            continue  # gone, or unreadable: git could not add it either
        budget -= len(data)
        if len(data) > max_file or total + len(data) > max_total:
            continue  # it grew since lstat
        if redact.secret_content(data, red, rel.rsplit("/", 1)[-1]):
            continue
        chosen.append(rel)
        total += len(data)
    return chosen


def withheld_tracked(root: str, changed: list[str], config: Config, redactor: Redactor | None = None) -> list[str]:
    """The changed tracked files (working-tree edits, not staged) whose content
    the redaction rules flag: the snapshot keeps them as they are staged."""
    if not changed:
        return []
    import stat

    from cmfgit import redact

    red = redactor if redactor is not None else redact.Redactor(config.redact_keys, config.redact_values)
    found: list[str] = []
    for rel in changed:
        path = os.path.join(root, rel)
        try:
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                data = os.fsencode(os.readlink(path))
            elif stat.S_ISREG(st.st_mode) and st.st_size <= TRACKED_SCAN_MAX:
                with open(path, "rb") as fh:
                    data = fh.read(TRACKED_SCAN_MAX)
            else:
                continue
        except OSError:
            continue
        if redact.secret_content(data, red, rel.rsplit("/", 1)[-1]):
            found.append(rel)
    return found


# HEAD's path -> (HEAD's stat, the files whose stats show a commit, a checkout
# or staging): HEAD is read again only when it changes (git replaces it).
_watched: dict[str, tuple[tuple[int, int, int], tuple[str, ...]]] = {}


def _stat_id(path: str) -> tuple[int, int, int]:
    try:
        st = os.stat(path)
    except OSError:
        return (0, 0, 0)
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _cache_key(repo: Repo) -> tuple[int, ...]:
    git_dir = os.fspath(repo.git_dir)  # str paths: this runs per API run
    head_path = git_dir + "/HEAD"
    head = _stat_id(head_path)
    known = _watched.get(head_path)
    if known is not None and known[0] == head:
        paths = known[1]
    else:
        try:
            with open(head_path, "rb") as fh:
                content = fh.read()
        except OSError:
            content = b""
        paths = (git_dir + "/index",)
        if content.startswith(b"ref: "):  # a commit moves the branch ref, not HEAD
            ref = content[5:].strip().decode("utf-8", "replace")
            common_dir = os.fspath(repo.common_dir)
            paths += (os.path.join(common_dir, ref), os.path.join(common_dir, "packed-refs"))
        if len(_watched) >= 16:
            _watched.clear()
        _watched[head_path] = (head, paths)
    key: tuple[int, ...] = head
    for path in paths[:2]:
        key += _stat_id(path)
    if len(paths) == 3 and key[-1] == 0:  # no loose ref: the branch is in packed-refs
        key += _stat_id(paths[2])
    return key


# (git status, git config) processes started by prefetch(), by repository root;
# Popen objects, typed Any so that this module does not import subprocess.
_prefetched: dict[str, tuple[Any, Any]] = {}


def prefetch(repo: Repo) -> None:
    """Start the git processes of the next :func:`capture` of ``repo`` now.

    ``cmfgit log-run`` calls this before importing most of cmfgit, so git
    reads the state while Python imports (DESIGN §10 start-up budget).
    """
    key = str(repo.root)
    if key not in _prefetched:
        _prefetched[key] = _start(repo)


def _start(repo: Repo) -> tuple[Any, Any]:
    root = repo.root
    status = gitutil.start(
        [
            "--no-optional-locks",
            "status",
            "--porcelain=v2",
            "--branch",
            "-z",
            "--untracked-files=all",
            "--",
            ".",
            ":(exclude).cmf",
        ],
        root,
    )
    config_proc = gitutil.start(["config", "-z", "--get-regexp", _CONFIG_KEYS], root)
    return status, config_proc


def _untracked_start(out: bytes) -> int:
    """Where the untracked entries of ``git status --porcelain=v2 -z`` output
    start (``len(out)`` if there are none). The source path of a rename follows
    its '2' entry as an item of its own, and may itself start with '? '."""
    pos = out.find(b"\0? ")
    while pos >= 0:
        item = out.rfind(b"\0", 0, pos) + 1
        if not out.startswith(b"2 ", item):
            return pos + 1
        pos = out.find(b"\0? ", pos + 1)
    return len(out)


def capture(
    repo: Repo, *, reuse: bool = False, config: Config | None = None, redactor: Redactor | None = None
) -> Snapshot:
    """Read the git state. With ``reuse``, a process that records many runs
    (a sweep through the Python API) pays for it once per HEAD, branch or
    index change, and at least every ``REUSE_SECONDS``. ``config`` (the
    committed settings; this clone's ``git config cmfgit.snapshot.*`` applies
    on top) and ``redactor`` decide which untracked files a snapshot takes."""
    if reuse:
        hit = _cache.get(str(repo.root))
        if hit is not None and hit[0] == _cache_key(repo) and time.monotonic() - hit[1] < REUSE_SECONDS:
            return hit[2]
        key, taken = _cache_key(repo), time.monotonic()
    procs = _prefetched.pop(str(repo.root), None)
    status, config_proc = procs if procs is not None else _start(repo)
    cached_tree = _cached_clean_tree(repo)
    status_out = gitutil.finish(status)
    git_config = _parse_config(gitutil.finish(config_proc, check=False))

    if config is None:
        from cmfgit.config import Config

        config = Config()
    settings = config.with_git_config(git_config)  # checks this clone's settings, untracked files or not

    # git lists untracked files ('? path') after every other entry: the head
    # is parsed, the untracked part only counted unless they may be captured.
    cut = _untracked_start(status_out)
    head_out, untracked_out = status_out[:cut], status_out[cut:]
    commit: str | None = None
    branch: str | None = None
    tracked_dirty = False
    changed: list[str] = []  # tracked files edited in the working tree
    for entry in head_out.split(b"\0"):
        if entry.startswith(b"# branch.oid "):
            oid = entry[len(b"# branch.oid ") :].decode()
            commit = None if oid == "(initial)" else oid
        elif entry.startswith(b"# branch.head "):
            head = entry[len(b"# branch.head ") :].decode("utf-8", "replace")
            branch = None if head == "(detached)" else head
        elif entry[:2] in (b"1 ", b"2 ", b"u "):
            tracked_dirty = True
            # '1 XY sub mH mI mW hH hI path', '2 XY sub mH mI mW hH hI Xscore path'
            if entry[3:4] in (b"M", b"T") and entry[:1] != b"u" and entry[5:6] != b"S":
                path = entry.split(b" ", 8 if entry[:1] == b"1" else 9)[-1]
                changed.append(path.decode("utf-8", "surrogateescape"))
        # else: another header, or the source path of a rename ('2' entries carry it as the next item)
    n_untracked = untracked_out.count(b"\0")
    chosen: list[str] = []
    if n_untracked and settings.snapshot_untracked:
        untracked = [e[2:].decode("utf-8", "surrogateescape") for e in untracked_out.split(b"\0") if e]
        chosen = select_untracked(os.fspath(repo.root), untracked, settings, redactor)
    dirty = tracked_dirty or n_untracked > 0
    withheld = withheld_tracked(os.fspath(repo.root), changed, settings, redactor)

    tree: str | None = None
    if not tracked_dirty and not chosen and commit is not None:
        try:
            tree = _clean_tree(repo, commit, cached_tree)  # the snapshot would be HEAD's tree
        except GitError:
            pass  # e.g. the commit's tree is not in this clone: snapshot the files instead
    if tree is None:
        tree = _snapshot_tree(repo, chosen, withheld)
    remote = _pick_remote(git_config, branch)
    state = GitState(commit, branch, dirty, remote, tree, n_untracked - len(chosen), len(withheld))
    snap = Snapshot(state, git_config)
    if reuse:
        _cache[str(repo.root)] = (key, taken, snap)
    return snap
