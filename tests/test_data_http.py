"""A read-only HTTP data remote: a static file server on 127.0.0.1 serving a pushed remote."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import cmfgit
from datahelp import b3, file_hash, fresh_clone, lab, publish, run, write_files

pytest.importorskip("aiohttp")
pytest.importorskip("fsspec")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """(directory, URL) of a static HTTP server on 127.0.0.1."""
    root = tmp_path / "store"
    root.mkdir()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(root)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield root, f"http://127.0.0.1:{port}"
    finally:
        proc.kill()
        proc.wait()


def test_pull_over_http_and_pushing_there_is_refused(tmp_path: Path, served: tuple[Path, str]) -> None:
    store, web = served
    site, url, _ = lab(tmp_path, str(store))
    write_files(site, {"data/set/a.txt": "a\n", "data/set/b/c.txt": "c\n", "models/m.pkl": os.urandom(300_000)})
    run(site, "train", inputs=("data/set",), outputs=("models/m.pkl",))
    publish(site)
    cmfgit(site, "artifact", "push")

    other = fresh_clone(tmp_path, url, "reader")
    cmfgit(other, "remote", "add", "web", web)
    out = cmfgit(other, "artifact", "pull", "-r", "web").stdout
    assert "placed 2 path(s) (3 file(s))" in out
    for rel in ("data/set/a.txt", "data/set/b/c.txt", "models/m.pkl"):
        assert file_hash(other / rel) == file_hash(site / rel)
    refused = cmfgit(other, "artifact", "push", "-r", "web", "--artifact", "models/m.pkl", check=False)
    assert refused.returncode == 1
    assert refused.stderr.strip() == f"cmfgit: error: data remote 'web': {web} is read-only"


def test_a_tampered_object_over_http_is_refused(tmp_path: Path, served: tuple[Path, str]) -> None:
    store, web = served
    site, url, _ = lab(tmp_path, str(store))
    write_files(site, {"data/a.csv": "good\n"})
    run(site, "prepare", outputs=("data/a.csv",))
    publish(site)
    cmfgit(site, "artifact", "push")
    h = b3(b"good\n")[7:]
    obj = store / "blake3" / h[:2] / h[2:]
    os.chmod(obj, 0o644)
    obj.write_bytes(b"evil\n")
    other = fresh_clone(tmp_path, url, "reader")
    cmfgit(other, "remote", "add", "web", web)
    proc = cmfgit(other, "artifact", "pull", "-r", "web", check=False)
    assert proc.returncode == 1 and f"object blake3:{h} from data remote 'web' is corrupt" in proc.stderr
    assert not (other / "data").exists()
    missing = cmfgit(other, "get", "data/a.csv", "-o", str(tmp_path / "x"), "-r", "web", check=False)
    assert missing.returncode == 1 and not (tmp_path / "x").exists()
