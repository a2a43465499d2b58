"""All access to the git command line goes through this module.

Git is the reference for behaviour, so cmfgit runs the real ``git`` for
anything that touches the index or the working tree. Failures become
:class:`GitError` carrying the command, the exit code and stderr.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from cmfgit.errors import CmfgitError, GitError

# Variables that git sets for hooks and that would redirect a nested git call
# to the wrong repository or index (pre-commit's ``no_git_env`` does the same).
_GIT_LOCATION_VARS = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_PREFIX",
    "GIT_NAMESPACE",
)


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a nested git: inherited, minus location overrides."""
    env = {k: v for k, v in os.environ.items() if k not in _GIT_LOCATION_VARS}
    if extra:
        env.update(extra)
    return env


def git(
    args: Sequence[str],
    cwd: Path | str,
    *,
    input: bytes | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
) -> bytes:
    """Run ``git ARGS`` in ``cwd`` and return stdout as bytes."""
    try:
        proc = subprocess.run(
            ["git", *args],
            cwd=cwd,
            input=input,
            capture_output=True,
            env=dict(env) if env is not None else clean_env(),
        )
    except FileNotFoundError:
        raise CmfgitError("git is not installed or not on PATH") from None
    if check and proc.returncode != 0:
        raise GitError(list(args), proc.returncode, proc.stderr.decode("utf-8", "replace"))
    return proc.stdout


def git_text(args: Sequence[str], cwd: Path | str, **kwargs: object) -> str:
    return git(args, cwd, **kwargs).decode("utf-8", "surrogateescape").strip()  # type: ignore[arg-type]


def git_ok(args: Sequence[str], cwd: Path | str, env: Mapping[str, str] | None = None) -> bool:
    """True if ``git ARGS`` exits 0; output is discarded."""
    return (
        subprocess.run(
            ["git", *args],
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=dict(env) if env is not None else clean_env(),
        ).returncode
        == 0
    )


def start(args: Sequence[str], cwd: Path | str, env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start ``git ARGS`` without waiting, so several can run at once."""
    return subprocess.Popen(
        ["git", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(env) if env is not None else clean_env(),
    )


def finish(proc: subprocess.Popen[bytes], check: bool = True) -> bytes:
    out, err = proc.communicate()
    if check and proc.returncode != 0:
        raise GitError(list(map(str, proc.args))[1:], proc.returncode, err.decode("utf-8", "replace"))  # type: ignore[arg-type]
    return out


# Within config_snapshot(cwd): the config of cwd as one `git config --list` read it.
_SNAPSHOTS: dict[str, dict[str, str]] = {}


def _config_key(key: str) -> str:
    """``Section.sub.Key`` as ``git config --list`` spells it: section and key in lower case."""
    section, _, rest = key.partition(".")
    sub, dot, name = rest.rpartition(".")
    return f"{section.lower()}.{sub}{dot}{name.lower()}"


@contextmanager
def config_snapshot(cwd: Path | str) -> Iterator[None]:
    """Answer :func:`config_get` for ``cwd`` from one ``git config --list`` while
    inside (a push reads half a dozen keys: a git process each otherwise).
    :func:`config_set` keeps it true; nothing else may write the config inside."""
    where = os.fspath(cwd)
    if where in _SNAPSHOTS:  # inside one already (push's command line, then sync.push)
        yield
        return
    _SNAPSHOTS[where] = _config_list(cwd)
    try:
        yield
    finally:
        _SNAPSHOTS.pop(where, None)


def _config_list(cwd: Path | str) -> dict[str, str]:
    values: dict[str, str] = {}
    for item in git(["config", "--list", "-z"], cwd, check=False).split(b"\0"):
        name, _, value = item.partition(b"\n")
        if name:
            values[_config_key(name.decode("utf-8", "replace"))] = value.decode("utf-8", "replace").strip()
    return values


def config_get(cwd: Path | str, key: str) -> str | None:
    snapshot = _SNAPSHOTS.get(os.fspath(cwd))
    if snapshot is not None:
        return snapshot.get(_config_key(key)) or None
    out = git(["config", "--get", key], cwd, check=False).decode("utf-8", "replace").strip()
    return out or None


def config_set(cwd: Path | str, key: str, value: str) -> None:
    git(["config", key, value], cwd)
    snapshot = _SNAPSHOTS.get(os.fspath(cwd))
    if snapshot is not None:
        snapshot[_config_key(key)] = value


# -- reading trees without a checkout (used by treeread.py and the index) ------


def rev_parse(cwd: Path | str, rev: str) -> str | None:
    """The object id ``rev`` names (e.g. ``HEAD:.cmf/objects``), or None if it names nothing."""
    out = git(["rev-parse", "--verify", "--quiet", "--end-of-options", rev], cwd, check=False)
    text = out.decode("ascii", "replace").strip()
    return text or None


def ls_tree_blobs(cwd: Path | str, treeish: str, path: str | None = None) -> list[tuple[str, str]]:
    """(path, blob id) of every blob under ``path`` in ``treeish``, recursively.

    Paths are relative to the tree's root (or to ``path`` when ``treeish`` is
    itself a subtree id and ``path`` is None).
    """
    args = ["ls-tree", "-r", "-z", "--full-tree", treeish]
    if path:
        args += ["--", path]
    out = git(args, cwd)
    files: list[tuple[str, str]] = []
    for entry in out.split(b"\0"):
        if not entry:
            continue
        meta, _, name = entry.partition(b"\t")
        parts = meta.split(b" ")
        if len(parts) == 3 and parts[1] == b"blob":
            files.append((name.decode("utf-8", "surrogateescape"), parts[2].decode("ascii")))
    return files


def diff_tree(cwd: Path | str, old: str, new: str) -> list[tuple[str, str, str]]:
    """Blobs that differ between two trees: (status letter, new blob id, path).

    The status is A, D or M (renames are not detected); a deleted path has
    the all-zero id.
    """
    out = git(["diff-tree", "-r", "-z", "--no-renames", "--no-commit-id", old, new], cwd)
    changes: list[tuple[str, str, str]] = []
    fields = out.split(b"\0")
    i = 0
    while i + 1 < len(fields):
        meta, name = fields[i], fields[i + 1]
        i += 2
        if not meta.startswith(b":"):
            continue
        parts = meta[1:].split(b" ")
        if len(parts) < 5:
            continue
        changes.append((parts[4].decode()[:1], parts[3].decode("ascii"), name.decode("utf-8", "surrogateescape")))
    return changes


def cat_blobs(cwd: Path | str, oids: Sequence[str]) -> Iterator[tuple[str, bytes]]:
    """(id, content) of each object in ``oids``, in order, from one ``git cat-file --batch``.

    A writer thread feeds the ids while this generator reads, so a million
    objects stream through two pipes without deadlock.
    """
    if not oids:
        return
    proc = subprocess.Popen(
        ["git", "cat-file", "--batch"],
        cwd=cwd,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=clean_env(),
    )
    assert proc.stdin is not None and proc.stdout is not None

    def feed() -> None:
        assert proc.stdin is not None
        try:
            for start in range(0, len(oids), 4096):
                proc.stdin.write("".join(f"{oid}\n" for oid in oids[start : start + 4096]).encode("ascii"))
            proc.stdin.close()
        except (BrokenPipeError, ValueError):
            pass

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    try:
        read = proc.stdout.read
        readline = proc.stdout.readline
        for oid in oids:
            header = readline()
            parts = header.split()
            if len(parts) != 3:
                raise GitError(["cat-file", "--batch"], 1, f"object {oid} is missing or unreadable: {header!r}")
            size = int(parts[2])
            data = read(size + 1)
            yield oid, data[:size]
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        writer.join(timeout=5)
        proc.stdout.close()
        if proc.stderr is not None:
            proc.stderr.close()


def for_each_ref(cwd: Path | str, *patterns: str) -> list[tuple[str, str]]:
    """(ref name, object id) of the refs matching ``patterns`` (e.g. ``refs/heads``)."""
    out = git_text(["for-each-ref", "--format=%(refname) %(objectname)", *patterns], cwd)
    return [tuple(line.split(" ", 1)) for line in out.splitlines() if " " in line]  # type: ignore[misc]
