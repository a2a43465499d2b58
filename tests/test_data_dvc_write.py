"""cmfgit pushes, the real ``dvc`` pulls: a remote added with ``--dvc-copies`` also gets
DVC's layout (``files/md5/<2>/<30>`` and ``.dir`` listings), byte for byte as DVC writes it.

The DVC side is a separate repository whose ``.dvc`` files are what ``dvc add`` wrote for
identical bytes; its cache is then deleted, so ``dvc pull`` can only get the bytes from
what cmfgit pushed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
from cmfdata import import_json
from conftest import cmfgit, git
from datahelp import run, write_files
from test_data_dvc import DVC, IMAGES, dvc, dvc_dir_site, export_with_directory

pytestmark = pytest.mark.skipif(DVC is None, reason="dvc is not installed (pip install dvc, or set CMFGIT_TEST_DVC)")

FILES: dict[str, bytes | str] = {
    "data/model.bin": os.urandom(300_000),
    "data/set/a.txt": "a\n",
    "data/set/sub/b.txt": "b\n",
    "data/set/copy-of-a.txt": "a\n",
    "data/set/\u00e9t\u00e9.txt": "\u00e9t\u00e9\n",
    "data/set/empty": "",
}


def _bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else value


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def dvc_side(tmp_path: Path, store: Path, name: str = "dvc-side") -> tuple[Path, dict[str, bytes]]:
    """A DVC repo that 'dvc add'ed the same bytes, then lost its cache and the data:
    (the repo, the .dir listings DVC wrote, by md5)."""
    side = tmp_path / name
    side.mkdir()
    git(side, "init", "-q", "-b", "main")
    dvc(side, "init", "-q")
    write_files(side, FILES)
    dvc(side, "add", "-q", "data/model.bin", "data/set")
    listings = {p.parent.name + p.name: p.read_bytes() for p in (side / ".dvc" / "cache").rglob("*.dir")}
    shutil.rmtree(side / ".dvc" / "cache")
    shutil.rmtree(side / "data" / "set")
    (side / "data" / "model.bin").unlink()
    dvc(side, "remote", "add", "-d", "store", str(store))
    return side, listings


def lab_with_dvc_copies(tmp_path: Path, repo: Path, url: str) -> None:
    write_files(repo, FILES)
    (repo / ".gitignore").write_text("data/\n")
    cmfgit(repo, "remote", "add", "store", url, "--dvc-copies")
    run(repo, "train", outputs=("data/model.bin", "data/set"))


def test_cmfgit_pushes_and_dvc_pulls(repo: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    lab_with_dvc_copies(tmp_path, repo, str(store))
    listed = json.loads(cmfgit(repo, "remote", "list", "--json").stdout)
    assert listed == [{"name": "store", "url": str(store), "default": True, "dvc_copies": "true"}]
    out = cmfgit(repo, "artifact", "push").stdout
    # blake3: the model, 4 distinct files of the set, its manifest; DVC: the same 5 files, the listing.
    assert out.startswith("pushed 12 object(s)"), out

    side, listings = dvc_side(tmp_path, store)
    assert len(listings) == 1
    for name, data in listings.items():  # the listing cmfgit wrote is the one DVC writes
        m = name[: -len(".dir")]
        assert (store / "files" / "md5" / m[:2] / (m[2:] + ".dir")).read_bytes() == data
    model = _bytes(FILES["data/model.bin"])
    assert (store / "files" / "md5" / md5(model)[:2] / md5(model)[2:]).read_bytes() == model

    dvc(side, "pull", "-q")
    for rel, value in FILES.items():
        assert (side / rel).read_bytes() == _bytes(value), rel

    again = cmfgit(repo, "artifact", "push").stdout
    assert again.startswith("pushed 0 object(s)") and "8 already there" in again, again


def test_a_second_push_uses_the_md5s_it_remembered(repo: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    write_files(repo, {"data/one.bin": b"one\n"})
    cmfgit(repo, "remote", "add", "store", str(store), "--dvc-copies")
    run(repo, "make", outputs=("data/one.bin",))
    cmfgit(repo, "artifact", "push")
    real = md5(b"one\n")
    assert (store / "files" / "md5" / real[:2] / real[2:]).read_bytes() == b"one\n"
    # The cache says which md5 it computed for that object; a second push reads that, hashes nothing.
    b3 = next(p for p in (repo / ".git" / "cmf" / "cache" / "md5-of").rglob("*") if p.is_file())
    fake = "0" * 32
    b3.write_text(fake + "\n")
    out = cmfgit(repo, "artifact", "push").stdout
    assert out.startswith("pushed 1 object(s)")
    assert (store / "files" / "md5" / "00" / ("0" * 30)).read_bytes() == b"one\n"


def test_a_dvc_copies_remote_is_read_for_md5_artifacts_and_written_as_dvc_would(repo: Path, tmp_path: Path) -> None:
    """CMF history whose directory DVC pushed: pulled from a --dvc-copies remote, then pushed
    again by cmfgit, which finds DVC's own listing there (the same md5: the same bytes)."""
    store, listing = dvc_dir_site(tmp_path)
    import_json(repo, export_with_directory(tmp_path, listing))
    cmfgit(repo, "remote", "add", "cmf", str(store), "--dvc-copies")
    cmfgit(repo, "artifact", "pull", "artifacts/images")
    assert {str(p.relative_to(repo)): p.read_bytes() for p in (repo / "artifacts").rglob("*") if p.is_file()} == IMAGES
    run(repo, "look", inputs=("artifacts/images",))  # a cmfgit run reads it: a blake3 directory now
    before = {p for p in (store / "files").rglob("*")}
    out = cmfgit(repo, "artifact", "push").stdout
    assert out.startswith("pushed 6 object(s)") and "1 already there" in out, out  # 5 files + manifest; the listing
    assert {p for p in (store / "files").rglob("*")} == before  # DVC's copy was there already


def test_a_dvc_layout_remote_stays_read_only_and_the_options_do_not_mix(repo: Path, tmp_path: Path) -> None:
    (tmp_path / "s").mkdir()
    proc = cmfgit(repo, "remote", "add", "s", str(tmp_path / "s"), "--layout", "dvc", "--dvc-copies", check=False)
    assert proc.returncode == 2 and "--dvc-copies is for a cmfgit remote" in proc.stderr
    assert "data:" not in (repo / ".cmf" / "config.yaml").read_text()
    cmfgit(repo, "remote", "add", "s", str(tmp_path / "s"), "--layout", "dvc")
    write_files(repo, {"out.txt": "x\n"})
    run(repo, "make", outputs=("out.txt",))
    refused = cmfgit(repo, "artifact", "push", check=False)
    assert refused.returncode == 1 and "push to a cmfgit remote added with --dvc-copies" in refused.stderr
    assert list((tmp_path / "s").iterdir()) == []
