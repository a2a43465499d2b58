"""Outputs enter the data cache when log-run or the API records them (data.cache_outputs)."""

from __future__ import annotations

import errno
import fcntl
import json
import os
from pathlib import Path

import pytest
from conftest import cmfgit
from datahelp import b3, write_files

import cmfgit as api
from cmfgit.config import load_document, save_document
from cmfgit.repo import open_repo


def cached(repo: Path) -> set[str]:
    root = repo / ".git" / "cmf" / "cache" / "blake3"
    return {s.name + o.name for s in (root.iterdir() if root.is_dir() else []) for o in s.iterdir()}


def set_mode(repo: Path, mode: str) -> None:
    r = open_repo(repo)
    doc = load_document(r)
    doc["data"] = {**(doc.get("data") or {}), "cache_outputs": mode}
    save_document(r, doc)


def can_reflink(directory: Path) -> bool:
    a, b = directory / "reflink-probe-a", directory / "reflink-probe-b"
    a.write_bytes(b"probe")
    with open(a, "rb") as src, open(b, "wb") as dst:
        try:
            fcntl.ioctl(dst.fileno(), 0x40049409, src.fileno())
            return True
        except OSError as exc:
            assert exc.errno in (errno.EOPNOTSUPP, errno.ENOTTY, errno.EXDEV, errno.EINVAL, errno.ENOSYS)
            return False
        finally:
            a.unlink()
            b.unlink()


def test_log_run_outputs_enter_the_cache_by_default(repo: Path) -> None:
    write_files(repo, {"data/in.csv": "in\n"})
    cmfgit(
        repo,
        "log-run",
        "-q",
        "-s",
        "train",
        "-i",
        "data/in.csv",
        "-o",
        "model.pkl",
        "--",
        "sh",
        "-c",
        "echo w > model.pkl",
    )
    assert cached(repo) == {b3(b"w\n")[7:]}  # the output, not the input
    rows = json.loads(cmfgit(repo, "status", "--json").stdout)
    assert {(r["path"], r["cached"]) for r in rows} == {("data/in.csv", False), ("model.pkl", True)}


def test_api_directory_outputs_enter_the_cache(repo: Path) -> None:
    with api.run(pipeline="p", stage="prepare", repo=repo, command=["prepare"]) as run:
        write_files(repo, {"data/out/a.txt": "a\n", "data/out/b.txt": "b\n"})
        run.log_output(repo / "data" / "out")
    objects = cached(repo)
    assert {b3(b"a\n")[7:], b3(b"b\n")[7:]} < objects and len(objects) == 3  # + the manifest
    assert '"cached": true' in cmfgit(repo, "status", "--json").stdout


def test_checkout_outputs_of_an_older_run_needs_no_force(repo: Path) -> None:
    write_files(repo, {"model.pkl": "v1\n"})
    first = cmfgit(repo, "log-run", "-s", "train", "-o", "model.pkl", "--", "true").stderr.split()[2]
    write_files(repo, {"model.pkl": "v2\n"})
    cmfgit(repo, "log-run", "-q", "-s", "train", "-o", "model.pkl", "--", "true")
    cmfgit(repo, "checkout", first, "--outputs")  # v2 is cached: nothing is lost
    assert (repo / "model.pkl").read_text() == "v1\n"


def test_mode_none_records_hashes_only(repo: Path) -> None:
    set_mode(repo, "none")
    write_files(repo, {"big.bin": "huge\n"})
    cmfgit(repo, "log-run", "-q", "-s", "s", "-o", "big.bin", "--", "true")
    assert cached(repo) == set()


def test_mode_reflink_never_makes_a_full_copy(repo: Path) -> None:
    set_mode(repo, "reflink")
    write_files(repo, {"big.bin": "huge\n"})
    cmfgit(repo, "log-run", "-q", "-s", "s", "-o", "big.bin", "--", "true")
    assert cached(repo) == ({b3(b"huge\n")[7:]} if can_reflink(repo) else set())


def test_a_bad_mode_is_refused(repo: Path) -> None:
    set_mode(repo, "hardlink")
    proc = cmfgit(repo, "log-run", "-s", "s", "--", "true", check=False)
    assert proc.returncode == 1
    assert "'data.cache_outputs' must be copy, reflink or none" in proc.stderr


@pytest.mark.parametrize("mode", ["copy"])
def test_a_cached_output_is_independent_of_the_working_file(repo: Path, mode: str) -> None:
    set_mode(repo, mode)
    write_files(repo, {"model.pkl": "trained\n"})
    cmfgit(repo, "log-run", "-q", "-s", "s", "-o", "model.pkl", "--", "true")
    with open(repo / "model.pkl", "r+") as fh:  # an in-place edit
        fh.write("XXXXXXX")
    obj = repo / ".git" / "cmf" / "cache" / "blake3" / b3(b"trained\n")[7:9] / b3(b"trained\n")[9:]
    assert obj.read_bytes() == b"trained\n"
    assert os.stat(obj).st_nlink == 1  # never a hardlink


def test_compat_outputs_enter_the_cache(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cmfgit.compat import Cmf

    monkeypatch.chdir(repo)
    write_files(repo, {"data.csv": "a,b\n", "model.pkl": "weights\n"})
    cmf = Cmf(filepath="mlmd", pipeline_name="p")
    cmf.create_context(pipeline_stage="train")
    cmf.create_execution(execution_type="train")
    cmf.log_dataset("data.csv", "input")
    cmf.log_model("model.pkl", "output")
    cmf.finalize()
    assert cached(repo) == {b3(b"weights\n")[7:]}
