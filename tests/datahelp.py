"""Helpers for the artifact-data tests: sites with data, runs that read and write files."""

from __future__ import annotations

import json
import os
from pathlib import Path

from blake3 import blake3
from conftest import cmfgit, git
from sites import clone_site, seed_remote

import cmfgit as api


def b3(data: bytes) -> str:
    return "blake3:" + blake3(data).hexdigest()


def file_hash(path: Path) -> str:
    return b3(path.read_bytes())


def lab(tmp: Path, remote_url: str | None = None) -> tuple[Path, str, Path]:
    """A git central repo, a site 'lab' cloned from it with a default data remote
    (a directory, unless ``remote_url`` is given), committed. Returns (site, git url, store dir)."""
    _bare, url = seed_remote(tmp)
    site = clone_site(tmp, url, "lab")
    (site / ".gitignore").write_text("data/\nmodels/\n")  # the bytes travel by the data remote, not git
    store = tmp / "store"
    store.mkdir(exist_ok=True)
    cmfgit(site, "remote", "add", "store", remote_url or str(store), "--default")
    git(site, "add", ".gitignore", ".cmf/config.yaml")
    git(site, "commit", "-q", "-m", "data remote")
    return site, url, store


def set_cache_outputs(repo: Path, mode: str) -> None:
    """Set data.cache_outputs in the config (uncommitted)."""
    from cmfgit.config import load_document, save_document
    from cmfgit.repo import open_repo

    r = open_repo(repo)
    doc = load_document(r)
    doc["data"] = {**(doc.get("data") or {}), "cache_outputs": mode}
    save_document(r, doc)


def write_files(root: Path, files: dict[str, bytes | str]) -> None:
    for rel, content in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content.encode() if isinstance(content, str) else content)


def run(site: Path, stage: str, inputs: tuple[str, ...] = (), outputs: tuple[str, ...] = ()) -> str:
    """Record one execution that read ``inputs`` and wrote ``outputs`` (files or directories that exist)."""
    with api.run(pipeline="p", stage=stage, repo=site, command=[stage]) as r:
        for path in inputs:
            r.log_input(site / path)
        for path in outputs:
            r.log_output(site / path)
    assert r.id is not None
    return r.id


def publish(site: Path) -> None:
    """Commit the pending records and push them (metadata only) to the git remote."""
    git(site, "add", ".cmf")
    git(site, "commit", "-q", "-m", "records", check=False)
    git(site, "push", "-q", "origin", "HEAD")


def fresh_clone(tmp: Path, url: str, name: str) -> Path:
    return clone_site(tmp, url, name)


def remote_objects(store: Path) -> dict[str, Path]:
    """hex -> file of every object in a local remote (temp files excluded)."""
    found = {}
    for shard in (store / "blake3").iterdir() if (store / "blake3").is_dir() else []:
        for obj in shard.iterdir():
            if not obj.name.startswith(".tmp-"):
                found[shard.name + obj.name] = obj
    return found


def temps(root: Path) -> list[str]:
    return [os.path.join(d, n) for d, _, names in os.walk(root) for n in names if n.startswith(".tmp-")]


def as_json(proc_stdout: str) -> object:
    return json.loads(proc_stdout)
