"""Data remotes: `cmfgit remote add/list/remove`, credentials refused, clear failures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import cmfgit
from datahelp import b3, write_files

from cmfgit import canonical


def config(repo: Path) -> dict[str, object]:
    doc = canonical.load((repo / ".cmf" / "config.yaml").read_bytes(), "config")
    assert isinstance(doc, dict)
    return doc


def test_add_list_remove(repo: Path, tmp_path: Path) -> None:
    out = cmfgit(repo, "remote", "add", "store", str(tmp_path / "store")).stdout
    assert "added data remote 'store'" in out and "(default)" in out  # the first one is the default
    cmfgit(repo, "remote", "add", "s3", "s3://bucket/cmf", "--endpoint", "http://127.0.0.1:9000")
    cmfgit(repo, "remote", "add", "nas", "file:///mnt/nas/cmf", "--default")
    assert config(repo)["data"] == {
        "remote": "nas",
        "remotes": {
            "nas": {"url": "file:///mnt/nas/cmf"},
            "s3": {"endpoint": "http://127.0.0.1:9000", "url": "s3://bucket/cmf"},
            "store": {"url": str(tmp_path / "store")},
        },
    }
    listed = json.loads(cmfgit(repo, "remote", "list", "--json").stdout)
    assert [(r["name"], r["default"]) for r in listed] == [("nas", True), ("s3", False), ("store", False)]
    assert "* nas" in cmfgit(repo, "remote", "list").stdout
    cmfgit(repo, "remote", "remove", "nas")
    assert set(config(repo)["data"]["remotes"]) == {"s3", "store"}  # type: ignore[index]
    assert "remote" not in config(repo)["data"]  # type: ignore[operator]
    # Other settings are kept.
    assert config(repo)["gc"] == {"period": "month", "threshold": 1000}


@pytest.mark.parametrize(
    "url",
    ["s3://AKIA:hunter2@bucket/x", "https://user:pa55@files.example.org/data", "https://h/x?X-Amz-Signature=abc"],
)
def test_a_url_with_credentials_is_refused(repo: Path, url: str) -> None:
    before = (repo / ".cmf" / "config.yaml").read_bytes()
    proc = cmfgit(repo, "remote", "add", "bad", url, check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "credentials never go in .cmf/config.yaml" in lines[0]
    assert "hunter2" not in proc.stderr and "pa55" not in proc.stderr
    assert (repo / ".cmf" / "config.yaml").read_bytes() == before


def test_duplicate_and_unknown_names(repo: Path, tmp_path: Path) -> None:
    cmfgit(repo, "remote", "add", "store", str(tmp_path))
    dup = cmfgit(repo, "remote", "add", "store", str(tmp_path), check=False)
    assert dup.returncode == 2 and "already exists" in dup.stderr
    gone = cmfgit(repo, "remote", "remove", "nope", check=False)
    assert gone.returncode == 2 and "no data remote 'nope'" in gone.stderr
    bad = cmfgit(repo, "remote", "add", "a b", str(tmp_path), check=False)
    assert bad.returncode == 2 and "not a remote name" in bad.stderr


def _recorded(repo: Path) -> None:
    import cmfgit as api

    write_files(repo, {"model.pkl": b"weights"})
    with api.run(pipeline="p", stage="train", repo=repo, command=["train"]) as r:
        r.log_output(repo / "model.pkl")


def test_an_unreachable_remote_is_one_line_and_exit_1(repo: Path, tmp_path: Path) -> None:
    _recorded(repo)
    cmfgit(repo, "remote", "add", "store", str(tmp_path / "not-mounted"))
    proc = cmfgit(repo, "artifact", "push", check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"cmfgit: error: data remote 'store': {tmp_path / 'not-mounted'} does not exist (create it, or mount it)"
    ]
    assert "Traceback" not in proc.stderr


def test_no_remote_configured(repo: Path) -> None:
    _recorded(repo)
    proc = cmfgit(repo, "artifact", "push", check=False)
    assert proc.returncode == 2
    assert "no data remote: add one with 'cmfgit remote add NAME URL'" in proc.stderr


def test_a_scheme_whose_backend_is_not_installed(repo: Path) -> None:
    pytest.importorskip("fsspec")
    try:
        import gcsfs  # noqa: F401

        pytest.skip("gcsfs is installed")
    except ImportError:
        pass
    _recorded(repo)
    cmfgit(repo, "remote", "add", "gcs", "gs://bucket/x")
    proc = cmfgit(repo, "artifact", "push", check=False)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "data remote 'gcs'" in lines[0] and "not installed" in lines[0], proc.stderr


def test_the_fsspec_backend_round_trip(repo: Path, tmp_path: Path) -> None:
    """fsspec's own local file system (local://): the code path every other scheme takes."""
    pytest.importorskip("fsspec")
    _recorded(repo)
    store = tmp_path / "fs-store"
    store.mkdir()
    cmfgit(repo, "remote", "add", "fs", f"local://{store}")
    assert "pushed 1 object(s)" in cmfgit(repo, "artifact", "push").stdout
    h = b3(b"weights")
    assert (store / "blake3" / h[7:9] / h[9:]).read_bytes() == b"weights"
    assert "pushed 0 object(s), 0 B; 1 already there" in cmfgit(repo, "artifact", "push").stdout
    (repo / "model.pkl").unlink()
    cmfgit(repo, "artifact", "gc")  # still referenced: kept; drop the cache to force a download
    import shutil

    shutil.rmtree(repo / ".git" / "cmf" / "cache")
    cmfgit(repo, "artifact", "pull")
    assert (repo / "model.pkl").read_bytes() == b"weights"


def test_a_branch_older_than_the_data_remote_uses_the_default_branchs(tmp_path: Path) -> None:
    from conftest import git
    from datahelp import file_hash, run
    from sites import clone_site, seed_remote

    _bare, url = seed_remote(tmp_path)
    lab = clone_site(tmp_path, url, "lab")
    (lab / ".gitignore").write_text("data/\n")
    git(lab, "add", ".gitignore")
    git(lab, "commit", "-q", "-m", "ignore data")
    git(lab, "push", "-q", "origin", "main")
    git(lab, "checkout", "-q", "-b", "feature")  # branched before the data remote was added
    write_files(lab, {"data/a.csv": "a\n"})
    run(lab, "prepare", outputs=("data/a.csv",))
    git(lab, "add", ".cmf")
    git(lab, "commit", "-q", "-m", "records")
    git(lab, "push", "-q", "origin", "feature")
    git(lab, "checkout", "-q", "main")
    store = tmp_path / "store"
    store.mkdir()
    cmfgit(lab, "remote", "add", "store", str(store), "--default")  # on main, at another site's desk
    git(lab, "commit", "-q", "-am", "data remote")
    git(lab, "push", "-q", "origin", "main")
    git(lab, "checkout", "-q", "feature")
    git(lab, "fetch", "-q", "origin")

    note = (
        "cmfgit: note: this branch's .cmf/config.yaml names no data remote;"
        " using the data remotes of origin/main's (merge it, or 'cmfgit remote add', to keep them here)"
    )
    pushed = cmfgit(lab, "artifact", "push")
    assert pushed.stdout.startswith("pushed 1 object(s)") and pushed.stderr.strip() == note
    assert "store" in cmfgit(lab, "remote", "list").stdout
    analyst = clone_site(tmp_path, url, "analyst", branch=None)
    git(analyst, "checkout", "-q", "feature")
    pulled = cmfgit(analyst, "artifact", "pull")
    assert "placed     data/a.csv" in pulled.stdout and pulled.stderr.strip() == note
    assert file_hash(analyst / "data" / "a.csv") == b3(b"a\n")
    # The branch's own config wins once it names a remote.
    other = tmp_path / "other-store"
    other.mkdir()
    cmfgit(analyst, "remote", "add", "mine", str(other))
    assert cmfgit(analyst, "artifact", "push").stderr == ""
    # cmfgit push pushes the data too (the default branch's default remote), saying so once.
    write_files(lab, {"data/b.csv": "b\n"})
    run(lab, "prepare", outputs=("data/b.csv",))
    pushed = cmfgit(lab, "push")
    assert "data       store: pushed 1 object(s)" in pushed.stdout and pushed.stderr.count(note) == 1


def test_the_fsspec_backend_removes_stale_temp_files(repo: Path, tmp_path: Path) -> None:
    """local:// goes through fsspec, as sftp:// does: a killed upload's temp is removed once stale."""
    import os
    import time

    pytest.importorskip("fsspec")
    _recorded(repo)
    store = tmp_path / "fs-store"
    shard = store / "blake3" / b3(b"weights")[7:9]
    shard.mkdir(parents=True)
    stale, fresh = shard / ".tmp-1-0badc0de", shard / ".tmp-2-0badc0de"
    for path in (stale, fresh):
        path.write_bytes(b"half")
    os.utime(stale, (time.time() - 600, time.time() - 600))
    cmfgit(repo, "remote", "add", "fs", f"local://{store}")
    assert "pushed 1 object(s)" in cmfgit(repo, "artifact", "push").stdout
    assert not stale.exists() and fresh.exists()
    assert "removed 1 temp file(s)" in cmfgit(repo, "artifact", "gc", "--remote", "--older-than", "0").stdout
    assert sorted(os.listdir(shard)) == [b3(b"weights")[9:]]
