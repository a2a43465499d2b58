"""Helpers for multi-site tests: a central bare repository and site clones."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import ROOT, git

import cmfgit as api
from cmfgit import sync, treeread
from cmfgit.init import init
from cmfgit.localview import Selection
from cmfgit.repo import open_repo


def isolate(mp: pytest.MonkeyPatch, tmp: Path) -> None:
    """conftest's isolated environment, for fixtures wider than one test."""
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    (home / ".gitconfig").write_text(
        "[user]\n\tname = cmfgit tests\n\temail = tests@example.invalid\n"
        "[init]\n\tdefaultBranch = main\n"
        '[protocol "file"]\n\tallow = always\n'
    )
    mp.setenv("HOME", str(home))
    mp.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for role in ("AUTHOR", "COMMITTER"):
        mp.setenv(f"GIT_{role}_NAME", "cmfgit tests")
        mp.setenv(f"GIT_{role}_EMAIL", "tests@example.invalid")
    mp.setenv("GIT_TERMINAL_PROMPT", "0")
    mp.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    for var in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "CMFGIT_SITE", "CMFGIT_DEBUG"):
        mp.delenv(var, raising=False)


def seed_remote(tmp: Path, name: str = "central.git") -> tuple[Path, str]:
    """A bare central repository whose main has cmfgit initialised (and no records)."""
    bare = tmp / name
    git(tmp, "init", "-q", "--bare", "-b", "main", str(bare))
    url = bare.as_uri()
    seed = tmp / f"seed-{name}"
    seed.mkdir()
    git(seed, "init", "-q", "-b", "main")
    git(seed, "config", "cmfgit.hooks", "false")  # the seed needs no hooks: faster
    (seed / "README.md").write_text("pipeline code\n")
    init(str(seed))
    git(seed, "add", "-A")
    git(seed, "commit", "-q", "-m", "pipeline with cmfgit")
    git(seed, "remote", "add", "origin", url)
    git(seed, "push", "-q", "origin", "main")
    return bare, url


def clone_site(tmp: Path, url: str, name: str, branch: str | None = None, hooks: bool = False) -> Path:
    """A clone of ``url`` set up as site ``name`` (optionally on a new branch).

    Without ``hooks`` the clone opts out of cmfgit's git hooks (as 'cmfgit
    hooks uninstall' does): every hook is a Python start-up, and most sync
    tests are about push and pull, not hooks. Tests that care pass hooks=True.
    """
    git(tmp, "clone", "-q", url, name)
    path = tmp / name
    if not hooks:
        git(path, "config", "cmfgit.hooks", "false")
    init(str(path), site=name)  # what 'cmfgit init --site NAME' does, without a start-up
    if branch:
        git(path, "checkout", "-q", "-b", branch)
    return path


def push(site: Path, remote: str | None = None) -> sync.PushResult:
    """``cmfgit push`` in-process (the CLI is exercised by the tests that read its output)."""
    return sync.push(open_repo(site), remote)


def pull(site: Path, selection: Selection | None = None) -> sync.PullResult:
    return sync.pull(open_repo(site), selection or Selection())


def record(
    repo: Path,
    pipeline: str,
    stage: str,
    inputs: tuple[str, ...] = (),
    outputs: dict[str, str] | None = None,
    params: dict[str, object] | None = None,
) -> str:
    """Log one execution with the Python API; ``outputs`` maps path -> content written."""
    with api.run(pipeline=pipeline, stage=stage, params=params, repo=repo, command=[stage]) as run:
        for path in inputs:
            run.log_input(repo / path)
        for path, content in (outputs or {}).items():
            target = repo / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
            run.log_output(target)
    assert run.id is not None
    return run.id


def records_at(repo: Path, rev: str) -> dict[str, bytes]:
    """Every record at ``rev`` of a repository (bare or not), read without a checkout."""
    return dict(treeread.iter_records(repo, rev))


def loose_ids(repo: Path) -> set[str]:
    """Ids of the loose records in a working tree."""
    root = repo / ".cmf" / "objects"
    found: set[str] = set()
    for shard in os.listdir(root) if root.is_dir() else []:
        if len(shard) == 2:
            found.update(shard + name[:-5] for name in os.listdir(root / shard) if name.endswith(".yaml"))
    return found


def stored_ids(repo: Path) -> set[str]:
    """Ids of every record in a working tree's store, loose or packed (a pull writes packs)."""
    entries = store_entries(repo)
    return set(entries)


def store_entries(repo: Path) -> list[str]:
    """The id of every loose file and every pack entry of a working tree, with repeats."""
    from cmfgit import pack

    found = sorted(loose_ids(repo))
    root = repo / ".cmf" / "objects" / "pack"
    for path in sorted(root.rglob("*.yaml")) if root.is_dir() else []:
        found += list(pack.parse(path.read_bytes(), str(path)))
    return found
