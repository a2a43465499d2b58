"""An SFTP data remote: OpenSSH's sshd on 127.0.0.1, started by the test with a
throwaway host key and user key. Credentials come from ~/.ssh, as with ssh itself."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from conftest import ROOT, cmfgit, git
from datahelp import b3, file_hash, fresh_clone, publish, remote_objects, run, temps, write_files
from sites import clone_site, seed_remote

pytest.importorskip("sshfs")


def _bench_module(name: str) -> ModuleType:
    """bench/NAME.py, loaded by its path (bench/ is no package, and its module names are not for tests)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


sshserver = _bench_module("sshserver")  # the one sshd set-up, shared with the SFTP benchmark rows
pytestmark = pytest.mark.skipif(sshserver.SSHD is None, reason="OpenSSH's sshd is not installed (.ci/run installs it)")


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[str]:
    """``user@127.0.0.1:port`` of a running sshd that accepts the key in ~/.ssh (this test's HOME)."""
    why = sshserver.why_not()
    if why is not None:
        pytest.skip(why)
    with sshserver.sshd(tmp_path / "sshd", Path(os.environ["HOME"])) as where:
        yield where


def test_push_over_sftp_and_pull_into_a_fresh_clone(tmp_path: Path, sshd: str) -> None:
    store = tmp_path / "sftp-store"
    store.mkdir()
    _bare, url = seed_remote(tmp_path)
    site = clone_site(tmp_path, url, "lab")
    (site / ".gitignore").write_text("data/\n")
    cmfgit(site, "remote", "add", "box", f"ssh://{sshd}{store}", "--default")
    git(site, "add", ".gitignore", ".cmf/config.yaml")
    git(site, "commit", "-q", "-m", "data remote")
    write_files(site, {"data/set/a.txt": "a\n", "data/set/b.txt": "b\n", "data/model.bin": os.urandom(500_000)})
    run(site, "train", inputs=("data/set",), outputs=("data/model.bin",))
    publish(site)
    assert cmfgit(site, "artifact", "push").stdout.startswith("pushed 4 object(s)")
    assert "pushed 0 object(s), 0 B; 4 already there" in cmfgit(site, "artifact", "push").stdout
    objects = remote_objects(store)
    assert len(objects) == 4 and all(b3(p.read_bytes())[7:] == h for h, p in objects.items())
    # The temp file of an upload killed long ago goes; a fresh one (maybe in flight) stays until asked.
    shard = next(iter(objects.values())).parent
    (shard / ".tmp-1-0badc0de").write_bytes(b"half")
    (shard / ".tmp-2-0badc0de").write_bytes(b"half")
    os.utime(shard / ".tmp-1-0badc0de", (time.time() - 600, time.time() - 600))
    assert "removed 1 temp file(s)" in cmfgit(site, "artifact", "gc", "--remote").stdout
    assert "removed 1 temp file(s)" in cmfgit(site, "artifact", "gc", "--remote", "--older-than", "0").stdout
    assert temps(store) == [] and len(remote_objects(store)) == 4

    other = fresh_clone(tmp_path, url, "analyst")
    assert "placed 2 path(s) (3 file(s))" in cmfgit(other, "artifact", "pull").stdout
    for rel in ("data/set/a.txt", "data/set/b.txt", "data/model.bin"):
        assert file_hash(other / rel) == file_hash(site / rel)


def test_a_refused_key_is_one_line(tmp_path: Path, sshd: str) -> None:
    store = tmp_path / "sftp-store"
    store.mkdir()
    site = clone_site(tmp_path, seed_remote(tmp_path)[1], "lab")
    write_files(site, {"data/a.csv": "a\n"})
    run(site, "prepare", outputs=("data/a.csv",))
    cmfgit(site, "remote", "add", "box", f"ssh://{sshd}{store}")
    key = Path(os.environ["HOME"]) / ".ssh" / "id_ed25519"
    key.unlink()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)  # not authorised
    proc = cmfgit(site, "artifact", "push", check=False)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cmfgit: error: data remote 'box': access denied"), proc.stderr
    assert "check the credentials" in lines[0]


def test_many_objects_go_in_one_batch_each_verified_and_a_tampered_or_missing_one_is_refused(
    tmp_path: Path, sshd: str
) -> None:
    """600 objects over SFTP: more than the remote is asked about key by key (its shard
    directories are listed); then a fresh clone pulls
    them in one batch; a tampered object is refused by name, and a missing one is one line."""
    store = tmp_path / "sftp-store"
    store.mkdir()
    _bare, url = seed_remote(tmp_path)
    site = clone_site(tmp_path, url, "lab")
    (site / ".gitignore").write_text("data/\n")
    cmfgit(site, "remote", "add", "box", f"ssh://{sshd}{store}", "--default")
    git(site, "add", ".gitignore", ".cmf/config.yaml")
    git(site, "commit", "-q", "-m", "data remote")
    files = {f"data/set/f{i:04d}.bin": f"object {i}\n".encode() * (1 + i % 7) for i in range(600)}
    write_files(site, {**files, "data/one.txt": "one\n"})
    run(site, "prepare", outputs=("data/set", "data/one.txt"))
    publish(site)
    assert cmfgit(site, "artifact", "push").stdout.startswith("pushed 602 object(s)")
    objects = remote_objects(store)
    assert len(objects) == 602 and all(b3(p.read_bytes())[7:] == h for h, p in objects.items())
    assert temps(store) == []
    assert "pushed 0 object(s), 0 B; 602 already there" in cmfgit(site, "artifact", "push").stdout

    other = fresh_clone(tmp_path, url, "analyst")
    assert "placed 2 path(s) (601 file(s))" in cmfgit(other, "artifact", "pull").stdout
    for rel in files:
        assert (other / rel).read_bytes() == files[rel]
    assert temps(other / ".git" / "cmf") == []

    victim = b3(files["data/set/f0123.bin"])[7:]
    os.chmod(objects[victim], 0o644)
    objects[victim].write_bytes(b"evil\n")
    third = fresh_clone(tmp_path, url, "third")
    proc = cmfgit(third, "artifact", "pull", check=False)
    assert proc.returncode == 1
    assert f"object blake3:{victim} from data remote 'box' is corrupt" in proc.stderr
    assert not (third / "data").exists()
    cache = third / ".git" / "cmf" / "cache" / "blake3"
    assert not (cache / victim[:2] / victim[2:]).exists()
    assert temps(third / ".git" / "cmf") == []

    objects[victim].unlink()
    fourth = fresh_clone(tmp_path, url, "fourth")
    proc = cmfgit(fourth, "artifact", "pull", check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [f"cmfgit: error: object blake3:{victim} is not in data remote 'box'"]
    assert not (fourth / "data").exists()
