"""The commit of the metadata: which git commit first brought each record into a branch.

CMF keeps, for what it records, the git commit of the metadata; in cmfgit a record is
a file in git, so git knows the commit that first added it. Asking git per record
(``git log --diff-filter=A -- <path>``) would walk the history on every query, and
would lose the answer when gc moves the record from its loose file into a pack. So
the answer is learnt once and kept: a small SQLite table ``first(line, id, commit)``
in ``.git/[worktrees/<name>/]cmf/commits.sqlite``, per *line* (``HEAD``, or the ref
a ``--ref``/``--global`` read names), with the tip it was learnt up to.

Learning walks only the commits new since that tip (``git log --reverse
--topo-order --raw --no-renames <tip>..<new tip> -- .cmf/objects``): a loose file
added names its record; a pack added or changed is read (``git cat-file``) and
each record in it that the line does not know yet gets that commit. A record
already known keeps its first commit, so a gc commit (loose files deleted, a
pack added) changes nothing, and neither does a merge (``git log`` shows merges
without a diff: the side branch's own commits are walked, in order). A tip that
is not a descendant of the one learnt (reset, rebase, another branch checked
out) is learnt again from the root. The table is a cache: deleting it only
costs the next query one walk.

A record of the checkout that no commit of ``HEAD`` added is *pending*
(written, not yet committed).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from cmfgit import gitutil, pack, treeread
from cmfgit.fsutil import FileLock
from cmfgit.repo import OBJECTS_DIR, Repo

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tips(line TEXT PRIMARY KEY, tip TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS first(line TEXT NOT NULL, id TEXT NOT NULL, git_commit TEXT NOT NULL,
                                 PRIMARY KEY(line, id)) WITHOUT ROWID;
"""
_COMMIT = re.compile(rb"^[0-9a-f]{40}([0-9a-f]{24})?$")
_ZERO = re.compile(r"^0+$")
BATCH = 500


def _path(repo: Repo) -> Path:
    return repo.worktree_state_dir / "commits.sqlite"


def _connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(_SCHEMA)
    return conn


def _walk(repo: Repo, revs: Sequence[str]) -> list[tuple[str, list[tuple[str, str]]]]:
    """(commit, [(kind, loose id or pack blob)]) for each commit of ``revs`` that added or
    changed a record file, parents first."""
    out = gitutil.git(
        ["log", "--reverse", "--topo-order", "--raw", "--no-renames", "--no-abbrev", "--format=%x01%H", *revs]
        + ["--", OBJECTS_DIR],
        repo.root,
    )
    commits: list[tuple[str, list[tuple[str, str]]]] = []
    prefix = OBJECTS_DIR.rstrip("/") + "/"
    for line in out.splitlines():
        if line.startswith(b"\x01"):
            sha = line[1:].strip()
            if _COMMIT.match(sha):
                commits.append((sha.decode("ascii"), []))
            continue
        if not line.startswith(b":") or not commits:
            continue
        meta, _, name = line.decode("utf-8", "surrogateescape").partition("\t")
        fields = meta.split()
        if len(fields) < 5 or fields[4][:1] not in ("A", "M") or not name.startswith(prefix):
            continue
        rel = name[len(prefix) :]
        blob = fields[3]
        kind = treeread.classify(rel)
        if kind == "loose":
            found = treeread.TreeFile(rel, blob).loose_id
            if found is not None:
                commits[-1][1].append(("loose", found))
        elif kind == "pack" and not _ZERO.match(blob):
            commits[-1][1].append(("pack", blob))
    return commits


def _pack_ids(data: bytes) -> list[str]:
    try:
        return list(pack.parse(data, where="pack", verify=False))
    except Exception:  # a damaged pack (conflict markers): what can be read of it
        entries, _ = pack.salvage(data)
        return [rid for rid, _, _ in entries]


def _learn_commits(conn: sqlite3.Connection, repo: Repo, line: str, revs: Sequence[str]) -> None:
    commits = _walk(repo, revs)
    blobs = sorted({blob for _, files in commits for kind, blob in files if kind == "pack"})
    ids_of: dict[str, list[str]] = {blob: _pack_ids(data) for blob, data in gitutil.cat_blobs(repo.root, blobs)}
    rows: list[tuple[str, str, str]] = []
    for sha, files in commits:
        for kind, what in files:
            for rid in [what] if kind == "loose" else ids_of.get(what, []):
                rows.append((line, rid, sha))
        if len(rows) >= BATCH:
            conn.executemany("INSERT OR IGNORE INTO first VALUES (?, ?, ?)", rows)
            rows = []
    conn.executemany("INSERT OR IGNORE INTO first VALUES (?, ?, ?)", rows)


def learn(repo: Repo, rev: str = "HEAD") -> tuple[sqlite3.Connection, str]:
    """The table, brought up to ``rev`` (learning only the commits since the last tip), and its line."""
    line = rev
    conn = _connect(_path(repo))
    tip = gitutil.rev_parse(repo.root, f"{rev}^{{commit}}")
    known = conn.execute("SELECT tip FROM tips WHERE line = ?", (line,)).fetchone()
    if tip is None or (known is not None and known[0] == tip):
        return conn, line
    with FileLock(_path(repo).with_suffix(".lock"), what="metadata-commit table"):
        known = conn.execute("SELECT tip FROM tips WHERE line = ?", (line,)).fetchone()
        if known is not None and known[0] == tip:
            return conn, line
        with conn:
            if known is not None and gitutil.git_ok(["merge-base", "--is-ancestor", known[0], tip], repo.root):
                _learn_commits(conn, repo, line, [f"{known[0]}..{tip}"])
            else:  # first use, or the branch moved to a commit that does not descend from the tip learnt
                conn.execute("DELETE FROM first WHERE line = ?", (line,))
                _learn_commits(conn, repo, line, [tip])
            conn.execute("INSERT OR REPLACE INTO tips VALUES (?, ?)", (line, tip))
    return conn, line


def first_commits(repo: Repo, ids: Iterable[str], rev: str = "HEAD") -> dict[str, str | None]:
    """Record id -> the commit of ``rev``'s history that first added it (None: none did)."""
    wanted = sorted(set(ids))
    conn, line = learn(repo, rev)
    found: dict[str, str | None] = dict.fromkeys(wanted)
    try:
        for start in range(0, len(wanted), BATCH):
            chunk = wanted[start : start + BATCH]
            rows = conn.execute(
                f"SELECT id, git_commit FROM first WHERE line = ? AND id IN ({','.join('?' * len(chunk))})",
                [line, *chunk],
            )
            found.update(rows)
    finally:
        conn.close()
    return found


def rev_of_scope(repo: Repo, scope: Any) -> tuple[str, bool]:
    """(the rev whose history answers for ``scope``, whether an unknown record is pending)."""
    kind = getattr(scope, "kind", "checkout")
    if kind == "ref":
        return scope.ref or "HEAD", False
    if kind == "global":
        from cmfgit.index import global_ref

        return global_ref(repo, scope.remote), False
    return "HEAD", kind == "checkout"


def describe(repo: Repo, scope: Any, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Record id -> ``{"commit": <sha or null>, "pending": <bool>}`` (docs/json.md)."""
    rev, checkout = rev_of_scope(repo, scope)
    if repo.bare and rev == "HEAD":
        checkout = False
    commits = first_commits(repo, ids, rev)
    if getattr(scope, "kind", "checkout") == "all-branches" and not repo.bare:
        # Records of other branches are in no commit of HEAD either: pending only if loose here.
        from cmfgit.store import Store

        store = Store(repo.objects_dir)
        return {
            rid: {"commit": sha, "pending": sha is None and store.loose_path(rid).exists()}
            for rid, sha in commits.items()
        }
    return {rid: {"commit": sha, "pending": sha is None and checkout} for rid, sha in commits.items()}
