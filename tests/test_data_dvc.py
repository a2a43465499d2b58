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
from cmfdata import EXPORT_JSON, SET1, copy_artifact_files, import_json
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


# -- directories: DVC's <md5>.dir listings -----------------------------------------------------

IMAGES = {
    "artifacts/images/cat.txt": b"meow\n",
    "artifacts/images/sub/dog.txt": b"woof\n",
    "artifacts/images/sub/deeper/empty.bin": b"",
    "artifacts/images/\u00e9t\u00e9 \u00fc.txt": "caf\u00e9\n".encode(),
    "artifacts/images/B.txt": b"upper case sorts first\n",
    "artifacts/images/same.txt": b"meow\n",  # the bytes of cat.txt: one object for both
}


_BUILT: list[tuple[Path, str]] = []  # dvc is slow: one site per session, its store copied per test


def dvc_dir_site(tmp_path: Path) -> tuple[Path, str]:
    """A CMF site that 'dvc add'ed a directory and 'dvc push'ed it: (a copy of its store, the
    md5 of the directory's .dir listing)."""
    if not _BUILT:
        _BUILT.append(_build_dvc_dir_site(tmp_path / "built"))
    built, md5 = _BUILT[0]
    store = tmp_path / "dvc-dir-store"
    shutil.copytree(built, store)
    return store, md5


def _build_dvc_dir_site(tmp_path: Path) -> tuple[Path, str]:
    site = tmp_path / "cmf-dir-site"
    site.mkdir(parents=True)
    git(site, "init", "-q", "-b", "main")
    dvc(site, "init", "-q")
    for rel, data in IMAGES.items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_bytes(data)
    dvc(site, "add", "-q", "artifacts/images")
    text = (site / "artifacts" / "images.dvc").read_text()
    listing = next(line.split()[-1] for line in text.splitlines() if line.strip().startswith("- md5:"))
    assert listing.endswith(".dir")
    store = tmp_path / "dvc-dir-store"
    dvc(site, "remote", "add", "-d", "store", str(store))
    dvc(site, "push", "-q")
    return store, listing[: -len(".dir")]


def export_with_directory(tmp_path: Path, md5: str) -> Path:
    """set1's export, with the prepare stage also writing a directory dataset, as cmflib logs one
    (name ``path:<md5>.dir``, uri ``<md5>.dir``), and train reading it."""
    doc = json.loads(EXPORT_JSON.read_text())
    stages = doc["Pipeline"][0]["stages"]
    art = {
        "type": "Dataset",
        "create_time_since_epoch": 1795725941999,
        "custom_properties": {},
        "id": 99,
        "last_update_time_since_epoch": 1795725941999,
        "name": f"artifacts/images:{md5}.dir",
        "properties": {"Commit": f"{md5}.dir", "git_repo": "", "url": ""},
        "type_id": 14,
        "uri": f"{md5}.dir",
    }
    for stage, kind in zip(stages, (4, 3)):
        stage["executions"][0]["events"].append({"type": kind, "artifact": art})
    out = tmp_path / "with-dir.json"
    out.write_text(json.dumps(doc))
    return out


def test_a_cmf_directory_pulls_from_the_dvc_dir_listing_dvc_wrote(repo: Path, tmp_path: Path) -> None:
    store, md5 = dvc_dir_site(tmp_path)
    assert (store / "files" / "md5" / md5[:2] / (md5[2:] + ".dir")).is_file()
    import_json(repo, export_with_directory(tmp_path, md5))
    # Never fetched, the same bytes in place: status computes DVC's listing md5 of the directory.
    for rel, data in IMAGES.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_bytes(data)
    rows = json.loads(cmfgit(repo, "status", "artifacts/images", "--json").stdout)
    assert [(r["state"], r["cached"]) for r in rows] == [("unchanged", False)]
    (repo / "artifacts/images/cat.txt").write_bytes(b"purr\n")
    assert json.loads(cmfgit(repo, "status", "artifacts/images", "--json").stdout)[0]["state"] == "modified"
    shutil.rmtree(repo / "artifacts")
    cmfgit(repo, "remote", "add", "cmf", str(store), "--layout", "dvc")
    out = cmfgit(repo, "artifact", "pull", "artifacts/images").stdout
    assert "placed 1 path(s)" in out
    placed = {str(p.relative_to(repo)): p.read_bytes() for p in (repo / "artifacts").rglob("*") if p.is_file()}
    assert placed == IMAGES  # every file, the empty one included
    rows = json.loads(cmfgit(repo, "status", "artifacts/images", "--json").stdout)
    assert [(r["state"], r["cached"], r["hash"]) for r in rows] == [("unchanged", True, f"md5:{md5}")]
    (repo / "artifacts/images/sub/dog.txt").write_bytes(b"edited\n")
    assert json.loads(cmfgit(repo, "status", "artifacts/images", "--json").stdout)[0]["state"] == "modified"
    refused = cmfgit(repo, "artifact", "pull", "artifacts/images", check=False)
    assert refused.returncode != 0 and "artifacts/images" in refused.stderr
    cmfgit(repo, "artifact", "pull", "artifacts/images", "--force")
    assert (repo / "artifacts/images/sub/dog.txt").read_bytes() == b"woof\n"
    again = cmfgit(repo, "artifact", "pull", "artifacts/images").stdout
    assert again.startswith("fetched 0 object(s)") and "placed 0 path(s)" in again
    # Gone from the working tree: placed again from the cache, exactly.
    shutil.rmtree(repo / "artifacts/images")
    back = cmfgit(repo, "artifact", "pull", "artifacts/images").stdout
    assert "fetched 0 object(s)" in back and "placed 1 path(s)" in back
    assert (repo / "artifacts/images/\u00e9t\u00e9 \u00fc.txt").read_bytes() == "caf\u00e9\n".encode()


def test_a_tampered_file_of_a_dvc_directory_is_refused(repo: Path, tmp_path: Path) -> None:
    store, md5 = dvc_dir_site(tmp_path)
    m = hashlib.md5(b"woof\n").hexdigest()
    obj = store / "files" / "md5" / m[:2] / m[2:]
    os.chmod(obj, 0o644)
    obj.write_bytes(b"not a dog\n")
    import_json(repo, export_with_directory(tmp_path, md5))
    cmfgit(repo, "remote", "add", "cmf", str(store), "--layout", "dvc")
    proc = cmfgit(repo, "artifact", "pull", "artifacts/images", check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0
    assert f"object md5:{m} from data remote 'cmf' is corrupt" in proc.stderr
    assert not (repo / "artifacts").exists()


def test_a_tampered_dvc_dir_listing_is_refused(repo: Path, tmp_path: Path) -> None:
    store, md5 = dvc_dir_site(tmp_path)
    listing = store / "files" / "md5" / md5[:2] / (md5[2:] + ".dir")
    os.chmod(listing, 0o644)
    listing.write_text('[{"md5": "00000000000000000000000000000000", "relpath": "../escape"}]')
    import_json(repo, export_with_directory(tmp_path, md5))
    cmfgit(repo, "remote", "add", "cmf", str(store), "--layout", "dvc")
    proc = cmfgit(repo, "artifact", "pull", "artifacts/images", check=False)
    assert proc.returncode == 1
    assert f"object md5:{md5}.dir from data remote 'cmf' is corrupt" in proc.stderr
    assert not (repo / "artifacts").exists() and not (tmp_path / "escape").exists()


def test_cmf_artifacts_imported_with_their_bytes_pull_by_their_md5_alias(repo: Path, tmp_path: Path) -> None:
    """Imported where the bytes were: blake3 hashes with CMF's md5 in ``aliases``. Elsewhere
    (no bytes, no cache), they are read from the DVC remote by that md5, and must have the blake3."""
    store = cmf_site_pushes_with_dvc(tmp_path)
    copy_artifact_files(repo)
    import_json(repo, EXPORT_JSON)
    arts = json.loads(cmfgit(repo, "artifacts", "--json").stdout)
    aliased = {p for a in arts if a["hash"].startswith("blake3:") and a["aliases"] for p in a["paths"]}
    assert set(FILES) <= aliased
    shutil.rmtree(repo / "artifacts")
    shutil.rmtree(repo / "cmf_artifacts")
    shutil.rmtree(repo / ".git" / "cmf" / "cache", ignore_errors=True)
    cmfgit(repo, "remote", "add", "cmf", str(store), "--layout", "dvc")
    out = cmfgit(repo, "artifact", "pull", *FILES).stdout
    assert f"fetched {len(FILES)} object(s)" in out and f"placed {len(FILES)} path(s)" in out, out
    for rel in FILES:
        assert (repo / rel).read_bytes() == (SET1 / "artifact_files" / rel).read_bytes(), rel
    # An alias whose bytes are not the record's blake3 is refused.
    shutil.rmtree(repo / ".git" / "cmf" / "cache")
    m = hashlib.md5((SET1 / "artifact_files" / FILES[0]).read_bytes()).hexdigest()
    obj = store / "files" / "md5" / m[:2] / m[2:]
    os.chmod(obj, 0o644)
    obj.write_bytes(b"other bytes\n")
    (repo / FILES[0]).unlink()
    proc = cmfgit(repo, "artifact", "pull", FILES[0], check=False)
    assert proc.returncode == 1 and f"object md5:{m} from data remote 'cmf' is corrupt" in proc.stderr
    assert not (repo / FILES[0]).exists()


def test_cmfgit_push_skips_the_data_of_a_default_dvc_remote(tmp_path: Path) -> None:
    """A CMF remote (read-only for cmfgit) as the default data remote: 'cmfgit push' publishes
    the metadata and does not try to push data there (an error after a good push, before)."""
    from sites import clone_site, seed_remote

    _bare, url = seed_remote(tmp_path)
    site = clone_site(tmp_path, url, "lab")
    (tmp_path / "dvc-store").mkdir()
    cmfgit(site, "remote", "add", "cmf", str(tmp_path / "dvc-store"), "--layout", "dvc")
    import_json(site, EXPORT_JSON)
    out = cmfgit(site, "push").stdout
    assert "branch" in out and "data " not in out
    refused = cmfgit(site, "push", "--data", check=False)  # asked for: refused, as artifact push
    assert refused.returncode == 1 and "read-only for cmfgit" in refused.stderr
