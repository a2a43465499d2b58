"""An S3 data remote: moto's server mode on 127.0.0.1, started by the test.

moto speaks the S3 HTTP protocol (it is not AWS): this checks cmfgit's S3 path
through s3fs end to end, with real HTTP, an endpoint setting as for MinIO or
Ceph, and credentials from the environment only.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import cmfgit, git
from datahelp import b3, file_hash, fresh_clone, publish, run, write_files
from sites import clone_site, seed_remote

pytest.importorskip("s3fs")
pytest.importorskip("moto.server")

CREDS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def s3_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", "from moto.server import main; main()", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("moto server did not start") from None
                time.sleep(0.1)
        for key, value in CREDS.items():
            monkeypatch.setenv(key, value)
        endpoint = f"http://127.0.0.1:{port}"
        import s3fs

        s3fs.S3FileSystem(client_kwargs={"endpoint_url": endpoint}).mkdir("cmf-data")
        yield endpoint
    finally:
        proc.kill()
        proc.wait()


def _lab(tmp: Path, endpoint: str) -> tuple[Path, str]:
    _bare, url = seed_remote(tmp)
    site = clone_site(tmp, url, "lab")
    (site / ".gitignore").write_text("data/\n")
    cmfgit(site, "remote", "add", "s3", "s3://cmf-data/project", "--endpoint", endpoint, "--default")
    git(site, "add", ".gitignore", ".cmf/config.yaml")
    git(site, "commit", "-q", "-m", "data remote")
    return site, url


def test_push_to_s3_and_pull_into_a_fresh_clone(tmp_path: Path, s3_endpoint: str) -> None:
    import s3fs

    site, url = _lab(tmp_path, s3_endpoint)
    write_files(site, {"data/set/a.txt": "a\n", "data/set/b.txt": "b\n", "data/model.bin": os.urandom(1 << 20)})
    run(site, "train", inputs=("data/set",), outputs=("data/model.bin",))
    publish(site)
    assert cmfgit(site, "artifact", "push").stdout.startswith("pushed 4 object(s), 1.0 MB; 0 already there")
    assert json.loads(cmfgit(site, "artifact", "push", "--json").stdout)["already"] == 4
    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3_endpoint})
    keys = {k.rsplit("/", 2)[-2] + k.rsplit("/", 1)[-1] for k in fs.find("cmf-data/project/blake3")}
    assert b3(b"a\n")[7:] in keys and len(keys) == 4

    other = fresh_clone(tmp_path, url, "analyst")
    assert "placed 2 path(s) (3 file(s))" in cmfgit(other, "artifact", "pull").stdout
    for rel in ("data/set/a.txt", "data/set/b.txt", "data/model.bin"):
        assert file_hash(other / rel) == file_hash(site / rel)
    rows = json.loads(cmfgit(other, "status", "--remote", "--json").stdout)
    assert {(r["path"], r["state"], r["remote"]) for r in rows} == {
        ("data/set", "unchanged", True),
        ("data/model.bin", "unchanged", True),
    }


def test_a_tampered_s3_object_is_refused(tmp_path: Path, s3_endpoint: str) -> None:
    import s3fs

    site, url = _lab(tmp_path, s3_endpoint)
    write_files(site, {"data/a.csv": "good\n"})
    run(site, "prepare", outputs=("data/a.csv",))
    publish(site)
    cmfgit(site, "artifact", "push")
    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3_endpoint})
    h = b3(b"good\n")[7:]
    fs.pipe(f"cmf-data/project/blake3/{h[:2]}/{h[2:]}", b"evil\n")
    other = fresh_clone(tmp_path, url, "b")
    proc = cmfgit(other, "artifact", "pull", check=False)
    assert proc.returncode == 1
    assert f"object blake3:{h} from data remote 's3' is corrupt" in proc.stderr
    assert not (other / "data").exists()


def test_s3_without_credentials_or_endpoint_is_one_line(tmp_path: Path, s3_endpoint: str) -> None:
    site, _url = _lab(tmp_path, s3_endpoint)
    write_files(site, {"data/a.csv": "a\n"})
    run(site, "prepare", outputs=("data/a.csv",))
    no_creds = {k: "" for k in CREDS}
    proc = cmfgit(site, "artifact", "push", check=False, env=no_creds)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cmfgit: error: data remote 's3': no credentials found")
    cmfgit(site, "remote", "add", "down", "s3://cmf-data/x", "--endpoint", f"http://127.0.0.1:{_free_port()}")
    proc = cmfgit(site, "artifact", "push", "-r", "down", check=False)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cmfgit: error: data remote 'down': unreachable")


def test_credentials_from_this_clones_git_config(tmp_path: Path, s3_endpoint: str) -> None:
    """cmfgit.remote.NAME.OPTION (never committed) goes to the back-end: here s3fs's key and secret."""
    site, _url = _lab(tmp_path, s3_endpoint)
    write_files(site, {"data/a.csv": "a\n"})
    run(site, "prepare", outputs=("data/a.csv",))
    no_env = {k: "" for k in CREDS}
    assert cmfgit(site, "artifact", "push", check=False, env=no_env).returncode == 1
    git(site, "config", "cmfgit.remote.s3.key", "testing")
    git(site, "config", "cmfgit.remote.s3.secret", "testing")
    assert cmfgit(site, "artifact", "push", env=no_env).stdout.startswith("pushed 1 object(s)")
    assert "testing" not in (site / ".cmf" / "config.yaml").read_text()
