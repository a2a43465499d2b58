"""cmfgit pushes DVC's layout to S3 (moto's server mode on 127.0.0.1: the S3 HTTP protocol,
not AWS), and the real ``dvc`` pulls those exact objects.

This venv's dvc has no S3 back-end (dvc-s3), so the objects cmfgit wrote to S3 are copied
down as they are, key for key, into a directory that ``dvc pull`` reads.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from conftest import cmfgit, git
from datahelp import run, write_files
from test_data_dvc import DVC, dvc
from test_data_s3 import s3_endpoint  # noqa: F401  (the fixture)

pytestmark = pytest.mark.skipif(DVC is None, reason="dvc is not installed (pip install dvc, or set CMFGIT_TEST_DVC)")

# More files than fsspec_remote.LIST_ABOVE: the remote is listed once instead of asked per key.
FILES = {f"data/set/part-{i:03d}.txt": f"row {i}\n" for i in range(300)}
FILES["data/model.bin"] = "weights\n"


def test_cmfgit_pushes_dvc_copies_to_s3_and_dvc_pulls_them(repo: Path, tmp_path: Path, s3_endpoint: str) -> None:  # noqa: F811
    import s3fs

    write_files(repo, FILES)
    (repo / ".gitignore").write_text("data/\n")
    cmfgit(repo, "remote", "add", "s3", "s3://cmf-data/dvc", "--endpoint", s3_endpoint, "--dvc-copies")
    run(repo, "train", outputs=("data/set", "data/model.bin"))
    out = cmfgit(repo, "artifact", "push").stdout
    assert out.startswith("pushed 604 object(s)"), out  # 301 files and a manifest; 301 copies and a listing

    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3_endpoint})
    listing = [k for k in fs.find("cmf-data/dvc/files/md5") if k.endswith(".dir")]
    assert len(listing) == 1
    # A push that finds the files there sends only the missing listing (one listing of the
    # remote answers for the 300 files, under files/md5 as under blake3).
    fs.rm(listing[0])
    again = cmfgit(repo, "artifact", "push").stdout
    assert again.startswith("pushed 1 object(s)") and "603 already there" in again, again

    store = tmp_path / "from-s3"
    fs.get("cmf-data/dvc/files", str(store / "files"), recursive=True)
    side = tmp_path / "dvc-side"
    side.mkdir()
    git(side, "init", "-q", "-b", "main")
    dvc(side, "init", "-q")
    write_files(side, FILES)
    dvc(side, "add", "-q", "data/set", "data/model.bin")
    shutil.rmtree(side / ".dvc" / "cache")
    shutil.rmtree(side / "data" / "set")  # (data/*.dvc stay)
    (side / "data" / "model.bin").unlink()
    dvc(side, "remote", "add", "-d", "store", str(store))
    dvc(side, "pull", "-q")
    for rel, text in FILES.items():
        assert (side / rel).read_text() == text, rel
    m = hashlib.md5(b"weights\n").hexdigest()
    assert fs.cat(f"cmf-data/dvc/files/md5/{m[:2]}/{m[2:]}") == b"weights\n"
