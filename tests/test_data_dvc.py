"""CMF history pulls its md5 artifacts from a DVC remote that the real ``dvc`` wrote.

CMF stores artifacts with ``dvc push``, so every CMF remote has DVC's layout
(``files/md5/<2>/<30>``). cmfgit reads it with no DVC installed; DVC is only
here to write the remote, as a CMF site would.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cmfdata import EXPORT_JSON, SET1, import_json
from conftest import cmfgit, git


def _dvc() -> str | None:
    for candidate in (os.environ.get("CMFGIT_TEST_DVC"), str(Path(sys.executable).parent / "dvc"), shutil.which("dvc")):
        if candidate and os.path.exists(candidate):
            return candidate
    return None


DVC = _dvc()
pytestmark = pytest.mark.skipif(DVC is None, reason="dvc is not installed (pip install dvc, or set CMFGIT_TEST_DVC)")
# Every artifact of set1's history: datasets, the model, CMF's step metrics and python env.
FILES = sorted(str(p.relative_to(SET1 / "artifact_files")) for p in (SET1 / "artifact_files").rglob("*") if p.is_file())


def dvc(cwd: Path, *args: str) -> None:
    assert DVC is not None
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "DVC_SITE_CACHE_DIR": str(cwd / ".dvc-site")}
    proc = subprocess.run([DVC, *args], cwd=cwd, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, f"dvc {' '.join(args)}: {proc.stdout}\n{proc.stderr}"


def cmf_site_pushes_with_dvc(tmp_path: Path) -> Path:
    """A CMF site: the artifact files, 'dvc add'ed and 'dvc push'ed to a directory remote."""
    site = tmp_path / "cmf-site"
    site.mkdir()
    git(site, "init", "-q", "-b", "main")
    dvc(site, "init", "-q")
    for rel in FILES:
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SET1 / "artifact_files" / rel, site / rel)
        dvc(site, "add", "-q", rel)
    store = tmp_path / "dvc-store"
    dvc(site, "remote", "add", "-d", "store", str(store))
    dvc(site, "push", "-q")
    return store


def test_cmf_history_pulls_its_md5_artifacts_from_a_dvc_remote(repo: Path, tmp_path: Path) -> None:
    store = cmf_site_pushes_with_dvc(tmp_path)
    md5 = {rel: hashlib.md5((SET1 / "artifact_files" / rel).read_bytes()).hexdigest() for rel in FILES}
    assert all((store / "files" / "md5" / m[:2] / m[2:]).is_file() for m in md5.values())  # DVC 3's layout

    import_json(repo, EXPORT_JSON)  # no bytes here: the artifacts are md5 only
    assert not (repo / "artifacts").exists()
    cmfgit(repo, "remote", "add", "cmf", str(store), "--layout", "dvc")
    out = cmfgit(repo, "artifact", "pull", *FILES).stdout  # (set1 has not the bytes of its python env)
    assert f"fetched {len(FILES)} object(s)" in out
    for rel in FILES:
        assert (repo / rel).read_bytes() == (SET1 / "artifact_files" / rel).read_bytes(), rel
    rows = {r["path"]: r for r in json.loads(cmfgit(repo, "status", *FILES, "--json").stdout)}
    assert {(r["state"], r["cached"]) for r in rows.values()} == {("unchanged", True)}
    (repo / FILES[0]).write_bytes(b"edited\n")
    assert json.loads(cmfgit(repo, "status", FILES[0], "--json").stdout)[0]["state"] == "modified"
    cmfgit(repo, "artifact", "pull", FILES[0], "--force")
    again = cmfgit(repo, "artifact", "pull", *FILES).stdout
    assert again.startswith("fetched 0 object(s)") and "placed 0 path(s)" in again  # all there already
    # checkout puts a CMF run's md5 artifacts back from the cache, as any other.
    model = "artifacts/model/model.pkl"
    (repo / model).unlink()
    producer = json.loads(cmfgit(repo, "artifacts", "--json").stdout)
    rid = next(a["producers"][0] for a in producer if model in a["paths"] and a["producers"])
    cmfgit(repo, "checkout", rid[:12], "--outputs")
    assert (repo / model).read_bytes() == (SET1 / "artifact_files" / model).read_bytes()
    refused = cmfgit(repo, "artifact", "push", check=False)
    assert refused.returncode == 1 and "a DVC-layout remote is read-only for cmfgit" in refused.stderr


def test_a_tampered_dvc_object_is_refused(repo: Path, tmp_path: Path) -> None:
    store = cmf_site_pushes_with_dvc(tmp_path)
    m = hashlib.md5((SET1 / "artifact_files" / "artifacts/labels.csv").read_bytes()).hexdigest()
    obj = store / "files" / "md5" / m[:2] / m[2:]
    os.chmod(obj, 0o644)
    obj.write_bytes(b"not the labels\n")
    import_json(repo, EXPORT_JSON)
    cmfgit(repo, "remote", "add", "cmf", str(store), "--layout", "dvc")
    proc = cmfgit(repo, "artifact", "pull", *FILES, check=False)
    assert proc.returncode == 1
    assert f"object md5:{m} from data remote 'cmf' is corrupt" in proc.stderr
    assert not (repo / "artifacts").exists()


def test_md5_artifacts_and_a_blake3_remote_say_what_to_add(repo: Path, tmp_path: Path) -> None:
    import_json(repo, EXPORT_JSON)
    (tmp_path / "b3").mkdir()
    cmfgit(repo, "remote", "add", "store", str(tmp_path / "b3"))
    proc = cmfgit(repo, "artifact", "pull", check=False)
    assert proc.returncode == 1 and "--layout dvc" in proc.stderr
