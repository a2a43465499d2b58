"""Finding the repository and the places cmfgit keeps things in it.

Discovery walks up from the working directory in-process (no ``git``
subprocess on the hot path). When git's location variables are set, as they
are inside hooks, git itself is asked instead.
"""

from __future__ import annotations

import os
from collections import namedtuple
from pathlib import Path

from cmfgit import gitutil
from cmfgit.errors import NotARepoError, NotInitializedError, PathError

TYPE_CHECKING = False  # typing's constant without importing typing (~4 ms of log-run start-up)

CMF_DIR = ".cmf"
OBJECTS_DIR = ".cmf/objects"
CONFIG_FILE = ".cmf/config.yaml"


# Records of fields: typing.NamedTuple for the type checker, collections.namedtuple
# at run time (importing typing, or dataclasses, costs hot commands milliseconds).
if TYPE_CHECKING:
    from typing import NamedTuple

    class _RepoFields(NamedTuple):
        root: Path  # top of the working tree
        git_dir: Path  # this worktree's git dir (.git, or .git/worktrees/<name>)
        common_dir: Path  # the shared git dir (objects, refs, config, hooks)
else:
    _RepoFields = namedtuple("Repo", "root git_dir common_dir")


class Repo(_RepoFields):
    __slots__ = ()

    @property
    def cmf_dir(self) -> Path:
        return self.root / CMF_DIR

    @property
    def objects_dir(self) -> Path:
        return self.root / OBJECTS_DIR

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_FILE

    @property
    def state_dir(self) -> Path:
        """Per-clone state shared by worktrees: hash cache, locks. Never committed."""
        return self.common_dir / "cmf"

    @property
    def worktree_state_dir(self) -> Path:
        """Per-worktree state: the query index follows the checkout."""
        return self.git_dir / "cmf"

    @property
    def bare(self) -> bool:
        """A repository without a working tree (a central repository): ``root`` is its git dir."""
        return self.root == self.git_dir

    @property
    def initialized(self) -> bool:
        return self.config_path.is_file()

    @property
    def name(self) -> str:
        """The project's directory name, the same in every worktree of a clone: the
        default pipeline name when the config sets none."""
        if self.common_dir.name == ".git":
            return self.common_dir.parent.name
        return self.root.name

    def require_initialized(self) -> Repo:
        if not self.initialized:
            raise NotInitializedError(str(self.root))
        return self

    def relpath(self, path: str | os.PathLike[str], cwd: str | os.PathLike[str] | None = None) -> str:
        """Repo-relative POSIX path of ``path``; refuses paths outside the repo.

        The check is lexical (symlinks are not resolved) so that a link
        inside the repository to a data volume is a valid artifact path.
        """
        raw = os.fspath(path)
        base = cwd if cwd is not None else os.getcwd()
        full = os.path.normpath(os.path.join(base, raw))
        root = os.path.normpath(self.root)
        if full != root and not full.startswith(root + os.sep):
            # The working directory may be reached through a symlink.
            real = os.path.realpath(full)
            real_root = os.path.realpath(root)
            if real == real_root or real.startswith(real_root + os.sep):
                full, root = real, real_root
            else:
                raise PathError(raw, "is outside the repository")
        # Both are normalised and full is root or under it: relpath's answer, without its cost.
        rel = "." if full == root else (full[len(root) + 1 :] if not root.endswith(os.sep) else full[len(root) :])
        if rel == ".":
            raise PathError(raw, "is the repository itself, not an artifact")
        top = rel.split(os.sep)[0]
        if top == ".git":
            raise PathError(raw, "is inside .git")
        if top == CMF_DIR:
            raise PathError(raw, "is cmfgit's own metadata (.cmf), not an artifact")
        return rel.replace(os.sep, "/")


def _read_gitfile(dotgit: Path) -> Path | None:
    try:
        text = dotgit.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    if not text.startswith("gitdir:"):
        return None
    target = Path(text[len("gitdir:") :].strip())
    return target if target.is_absolute() else (dotgit.parent / target).resolve()


def _common_dir(git_dir: Path) -> Path:
    try:
        rel = (git_dir / "commondir").read_text(encoding="utf-8").strip()
    except OSError:
        return git_dir
    common = Path(rel)
    return common if common.is_absolute() else (git_dir / common).resolve()


def find_repo(start: str | os.PathLike[str] | None = None) -> Repo:
    """The repository containing ``start`` (default: the working directory)."""
    here = Path(start) if start is not None else Path.cwd()
    if any(v in os.environ for v in ("GIT_DIR", "GIT_WORK_TREE", "GIT_COMMON_DIR")):
        return _ask_git(here)
    here = here.absolute()
    for candidate in (here, *here.parents):
        dotgit = candidate / ".git"
        if dotgit.is_dir():
            if not (dotgit / "HEAD").exists():
                continue
            return Repo(candidate, dotgit, _common_dir(dotgit))
        if dotgit.is_file():
            git_dir = _read_gitfile(dotgit)
            if git_dir is not None and git_dir.is_dir():
                return Repo(candidate, git_dir, _common_dir(git_dir))
    raise NotARepoError(str(here))


# (cwd, start, GIT_DIR, GIT_WORK_TREE, GIT_COMMON_DIR) -> what git answered:
# log-run looks the repository up twice (its prefetch, then the run), and
# inside git hooks, where git sets these variables, each look-up is a process.
_asked: dict[tuple[str | None, ...], Repo] = {}


def _ask_git(here: Path) -> Repo:
    env = os.environ
    key = (os.getcwd(), os.fspath(here), env.get("GIT_DIR"), env.get("GIT_WORK_TREE"), env.get("GIT_COMMON_DIR"))
    found = _asked.get(key)
    if found is None:
        found = _asked[key] = _ask_git_now(here)
    return found


def _ask_git_now(here: Path) -> Repo:
    out = gitutil.git(
        ["rev-parse", "--show-toplevel", "--absolute-git-dir", "--git-common-dir"],
        here,
        env=os.environ,
        check=False,
    ).decode("utf-8", "surrogateescape")
    lines = out.splitlines()
    if len(lines) != 3 or not lines[0]:
        raise NotARepoError(str(here))
    git_dir = Path(lines[1])
    common = Path(lines[2])
    if not common.is_absolute():
        common = (here / common).resolve()
    return Repo(Path(lines[0]), git_dir, common)


def open_repo(start: str | os.PathLike[str] | None = None) -> Repo:
    """The initialised repository containing ``start``, or a clear error."""
    return find_repo(start).require_initialized()


def open_read_repo(start: str | os.PathLike[str] | None = None) -> Repo:
    """The repository the read commands work in: an initialised one, or a bare one
    (a central repository; it has no checkout, so they read its global view)."""
    try:
        return open_repo(start)
    except NotARepoError:
        here = Path(start) if start is not None else Path.cwd()
        out = gitutil.git(
            ["rev-parse", "--is-bare-repository", "--absolute-git-dir", "--git-common-dir"],
            here,
            env=os.environ,
            check=False,
        ).decode("utf-8", "surrogateescape")
        lines = out.splitlines()
        if len(lines) != 3 or lines[0] != "true":
            raise
        git_dir = Path(lines[1])
        common = Path(lines[2])
        return Repo(git_dir, git_dir, common if common.is_absolute() else (here / common).resolve())
