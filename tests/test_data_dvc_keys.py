"""DVC keys beyond ``artifact pull``: ``cmfgit get`` and ``cmfgit status --remote`` read md5
artifacts (CMF's, and blake3 ones with an md5 alias) from a DVC-layout remote, and a
DVC-layout remote may have DVC 2's layout (``<2 hex>/<30 hex>``, no ``files/md5/``).

The remotes are laid out by hand from the files' md5s, as DVC lays them out: DVC 3's
(``tests/test_data_dvc.py`` checks that layout against the real ``dvc``), and DVC 2's, which
the installed DVC (3.x) no longer writes."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from cmfdata import EXPORT_JSON, SET1, copy_artifact_files, import_json
from conftest import cmfgit
from test_data_dvc import FILES, IMAGES, export_with_directory


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _key(md5: str, layout: int, suffix: str = "") -> Path:
    return Path(*(("files", "md5") if layout == 3 else ()), md5[:2], md5[2:] + suffix)


def dvc_store(tmp_path: Path, layout: int, files: dict[str, bytes] | None = None) -> Path:
    """A DVC remote holding set1's artifact files (and ``files``), by md5, in DVC ``layout``'s layout."""
    store = tmp_path / f"dvc{layout}-store"
    contents = {rel: (SET1 / "artifact_files" / rel).read_bytes() for rel in FILES} | (files or {})
    for data in contents.values():
        obj = store / _key(_md5(data), layout)
        obj.parent.mkdir(parents=True, exist_ok=True)
        obj.write_bytes(data)
    return store


def dvc_dir(store: Path, layout: int, tree: dict[str, bytes], top: str) -> str:
    """DVC's ``.dir`` listing of ``tree`` (paths under ``top``), written to ``store``: its md5."""
    entries = sorted(
        ({"md5": _md5(data), "relpath": rel[len(top) + 1 :]} for rel, data in tree.items()), key=lambda e: e["relpath"]
    )
    listing = json.dumps(entries, sort_keys=True).encode()
    md5 = _md5(listing)
    for data in tree.values():
        obj = store / _key(_md5(data), layout)
        obj.parent.mkdir(parents=True, exist_ok=True)
        obj.write_bytes(data)
    (store / _key(md5, layout, ".dir")).parent.mkdir(parents=True, exist_ok=True)
    (store / _key(md5, layout, ".dir")).write_bytes(listing)
    return md5


LABELS = "artifacts/labels.csv"


@pytest.mark.parametrize("layout", [3, 2])
def test_get_reads_a_cmf_md5_artifact_from_a_dvc_remote(repo: Path, tmp_path: Path, layout: int) -> None:
    store = dvc_store(tmp_path, layout)
    import_json(repo, EXPORT_JSON)  # no bytes here: md5 only
    cmfgit(repo, "remote", "add", "cmf", str(store), "--layout", "dvc")
    want = (SET1 / "artifact_files" / LABELS).read_bytes()
    out = cmfgit(repo, "get", LABELS, "-o", str(tmp_path / "labels.csv")).stdout
    assert (tmp_path / "labels.csv").read_bytes() == want
    assert f"md5:{_md5(want)[:15]}" in out and f"{LABELS} -> " in out
    # By its hash, from the cache this time (the remote is gone).
    shutil.rmtree(store)
    cmfgit(repo, "get", f"md5:{_md5(want)}", "-o", str(tmp_path / "again.csv"))
    assert (tmp_path / "again.csv").read_bytes() == want


def test_get_reads_a_blake3_artifact_by_its_md5_alias(repo: Path, tmp_path: Path) -> None:
    store = dvc_store(tmp_path, 3)
    copy_artifact_files(repo)
    import_json(repo, EXPORT_JSON)  # where the bytes are: blake3 hashes, CMF's md5 as aliases
    shutil.rmtree(repo / "artifacts")
    shutil.rmtree(repo / "cmf_artifacts")
    shutil.rmtree(repo / ".git" / "cmf" / "cache", ignore_errors=True)
    cmfgit(repo, "remote", "add", "cmf", str(store), "--layout", "dvc")
    cmfgit(repo, "get", LABELS, "-o", str(tmp_path / "labels.csv"))
    assert (tmp_path / "labels.csv").read_bytes() == (SET1 / "artifact_files" / LABELS).read_bytes()


def test_get_of_a_dvc_directory(repo: Path, tmp_path: Path) -> None:
    store = dvc_store(tmp_path, 2)
    md5 = dvc_dir(store, 2, IMAGES, "artifacts/images")
    import_json(repo, export_with_directory(tmp_path, md5))
    cmfgit(repo, "remote", "add", "cmf", str(store), "--layout", "dvc")
    cmfgit(repo, "get", "artifacts/images", "-o", str(tmp_path / "imgs"))
    got = {str(p.relative_to(tmp_path / "imgs")): p.read_bytes() for p in (tmp_path / "imgs").rglob("*") if p.is_file()}
    assert got == {rel[len("artifacts/images/") :]: data for rel, data in IMAGES.items()}


@pytest.mark.parametrize("layout", [3, 2])
def test_status_remote_sees_md5_artifacts_on_a_dvc_remote(repo: Path, tmp_path: Path, layout: int) -> None:
    store = dvc_store(tmp_path, layout)
    md5 = dvc_dir(store, layout, IMAGES, "artifacts/images")
    import_json(repo, export_with_directory(tmp_path, md5))
    cmfgit(repo, "remote", "add", "cmf", str(store), "--layout", "dvc")
    rows = {r["path"]: r for r in json.loads(cmfgit(repo, "status", "--remote", "--json").stdout)}
    assert {rows[rel]["remote"] for rel in FILES} == {True}
    assert rows["artifacts/images"]["remote"] is True
    gone = _md5((SET1 / "artifact_files" / LABELS).read_bytes())
    (store / _key(gone, layout)).unlink()
    (store / _key(md5, layout, ".dir")).unlink()
    rows = {r["path"]: r for r in json.loads(cmfgit(repo, "status", "--remote", "--json").stdout)}
    assert rows[LABELS]["remote"] is False and rows["artifacts/images"]["remote"] is False
    assert {rows[rel]["remote"] for rel in FILES if rel != LABELS} == {True}
    text = cmfgit(repo, "status", "--remote", LABELS, FILES[1]).stdout.splitlines()
    assert [line.split()[-2:] for line in text] == sorted([["-", LABELS], ["remote", FILES[1]]], key=lambda x: x[1])


def test_status_remote_sees_aliased_blake3_artifacts_on_a_dvc_remote(repo: Path, tmp_path: Path) -> None:
    store = dvc_store(tmp_path, 3)
    copy_artifact_files(repo)
    import_json(repo, EXPORT_JSON)
    cmfgit(repo, "remote", "add", "cmf", str(store), "--layout", "dvc")
    rows = {r["path"]: r for r in json.loads(cmfgit(repo, "status", "--remote", *FILES, "--json").stdout)}
    assert {rows[rel]["remote"] for rel in FILES} == {True}
    (store / _key(_md5((SET1 / "artifact_files" / LABELS).read_bytes()), 3)).unlink()
    rows = {r["path"]: r for r in json.loads(cmfgit(repo, "status", "--remote", *FILES, "--json").stdout)}
    assert rows[LABELS]["remote"] is False


def test_pull_reads_dvc2_layout_files_and_directories(repo: Path, tmp_path: Path) -> None:
    layout = 2
    store = dvc_store(tmp_path, layout)
    md5 = dvc_dir(store, layout, IMAGES, "artifacts/images")
    assert not (store / "files").exists()
    import_json(repo, export_with_directory(tmp_path, md5))
    cmfgit(repo, "remote", "add", "cmf", str(store), "--layout", "dvc")
    out = cmfgit(repo, "artifact", "pull", *FILES, "artifacts/images").stdout  # (not set1's python env)
    assert f"placed {len(FILES) + 1} path(s)" in out, out
    for rel in FILES:
        assert (repo / rel).read_bytes() == (SET1 / "artifact_files" / rel).read_bytes(), rel
    placed = {str(p.relative_to(repo)): p.read_bytes() for p in (repo / "artifacts/images").rglob("*") if p.is_file()}
    assert placed == IMAGES
    # A tampered DVC 2 object is refused by its md5, as a DVC 3 one.
    shutil.rmtree(repo / ".git" / "cmf" / "cache")
    shutil.rmtree(repo / "artifacts")
    m = _md5((SET1 / "artifact_files" / LABELS).read_bytes())
    (store / _key(m, layout)).write_bytes(b"not the labels\n")
    proc = cmfgit(repo, "artifact", "pull", LABELS, check=False)
    assert proc.returncode == 1 and f"object md5:{m} from data remote 'cmf' is corrupt" in proc.stderr
    assert not (repo / LABELS).exists()


def test_a_dvc2_text_file_named_by_its_dos2unix_md5(repo: Path, tmp_path: Path) -> None:
    """DVC 2 named a text file by the md5 of its bytes with CRLF read as LF; the object holds
    the bytes as they were. cmfgit places those bytes, and a DVC 3 object gets no such leeway."""
    crlf = b"a,b\r\nc,d\r\n"
    tree = {"artifacts/images/t.csv": crlf, "artifacts/images/b.bin": b"\0\r\n"}
    store = dvc_store(tmp_path, 2)
    entries = sorted(
        [{"md5": _md5(crlf.replace(b"\r\n", b"\n")), "relpath": "t.csv"}, {"md5": _md5(b"\0\r\n"), "relpath": "b.bin"}],
        key=lambda e: e["relpath"],
    )
    listing = json.dumps(entries, sort_keys=True).encode()
    md5 = _md5(listing)
    for entry, data in zip(entries, (b"\0\r\n", crlf)):
        (store / _key(entry["md5"], 2)).parent.mkdir(parents=True, exist_ok=True)
        (store / _key(entry["md5"], 2)).write_bytes(data)
    (store / _key(md5, 2, ".dir")).parent.mkdir(parents=True, exist_ok=True)
    (store / _key(md5, 2, ".dir")).write_bytes(listing)
    import_json(repo, export_with_directory(tmp_path, md5))
    cmfgit(repo, "remote", "add", "cmf", str(store), "--layout", "dvc")
    cmfgit(repo, "artifact", "pull", "artifacts/images")
    placed = {str(p.relative_to(repo)): p.read_bytes() for p in (repo / "artifacts/images").rglob("*") if p.is_file()}
    assert placed == tree
    # The same object under DVC 3's name (raw md5 only) is refused.
    shutil.rmtree(repo / ".git" / "cmf" / "cache")
    shutil.rmtree(repo / "artifacts")
    lf_md5 = _md5(crlf.replace(b"\r\n", b"\n"))
    (store / _key(lf_md5, 3)).parent.mkdir(parents=True, exist_ok=True)
    (store / _key(lf_md5, 2)).rename(store / _key(lf_md5, 3))
    proc = cmfgit(repo, "artifact", "pull", "artifacts/images", check=False)
    assert proc.returncode == 1 and f"object md5:{lf_md5} from data remote 'cmf' is corrupt" in proc.stderr
