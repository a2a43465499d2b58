"""The typer-free path of ``artifact push|fetch|pull``: it reads command lines as
click does, gives the same output as the typer commands, and leaves everything
else to typer."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import cmfgit
from datahelp import fresh_clone, lab, publish, run, write_files

from cmfgit import fastdata


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["artifact", "push"], ("push", {"targets": []})),
        (["artifact", "push", "--json", "-j", "4", "-r", "store"],
         ("push", {"as_json": True, "jobs": 4, "remote": "store", "targets": []})),
        (["artifact", "push", "-j4", "--remote=store", "-P", "a", "--pipeline", "b", "-s", "train"],
         ("push", {"jobs": 4, "remote": "store", "pipeline": ["a", "b"], "stage": ["train"], "targets": []})),
        (["artifact", "fetch", "ab12cd", "data/x", "--with-lineage", "--since", "7d", "-a", "m.pkl"],
         ("fetch", {"targets": ["ab12cd", "data/x"], "with_lineage": True, "since": "7d", "artifact": ["m.pkl"]})),
        (["artifact", "pull", "-f", "--", "-odd-name"], ("pull", {"force": True, "targets": ["-odd-name"]})),
        (["artifact", "pull", "--force", "--json"], ("pull", {"force": True, "as_json": True, "targets": []})),
        (["artifact", "push", "-j", "0"], ("push", {"jobs": 0, "targets": []})),  # run() says why
        (["artifact", "push", "-f"], None),  # pull's flag: typer says it is unknown
        (["artifact", "push", "--help"], None),
        (["artifact", "pull", "-h"], None),
        (["artifact", "push", "-j", "many"], None),
        (["artifact", "push", "-j"], None),
        (["artifact", "push", "--json=yes"], None),
        (["artifact", "pull", "-fj4"], None),  # combined short flags: typer
        (["artifact", "push", "--bogus"], None),
        (["artifact", "gc"], None),
        (["artifact"], None),
        (["push"], None),
    ],
)  # fmt: skip
def test_parse(argv: list[str], expected: object) -> None:
    assert fastdata.parse(argv) == expected


def _both(root: Path, *args: str, reset: Path | None = None) -> list[subprocess.CompletedProcess[str]]:
    """The command through the fast path, then through typer (``reset`` is removed before each)."""
    out = []
    for env in ({}, {"CMFGIT_NO_FASTPATH": "1"}):
        if reset is not None:
            shutil.rmtree(reset, ignore_errors=True)
        out.append(cmfgit(root, *args, check=False, env=env))
    return out


def test_same_output_as_the_typer_commands(tmp_path: Path) -> None:
    site, url, store = lab(tmp_path)
    write_files(site, {"data/set/a.txt": "a\n", "data/set/b.txt": "b\n", "models/m.pkl": b"\0model" * 100})
    first = run(site, "prepare", outputs=("data/set",))
    run(site, "train", inputs=("data/set",), outputs=("models/m.pkl",))
    publish(site)
    cases = [
        ["artifact", "push"],
        ["artifact", "push", "--json"],
        ["artifact", "push", "-j", "1", "-s", "train"],
        ["artifact", "push", "-j", "0"],  # the same error
        ["artifact", "push", "-r", "nowhere"],  # the same error
        ["artifact", "push", "no/such/path"],  # the same error
        ["artifact", "push", first[:8], "--json"],
    ]
    for args in cases:
        fast, slow = _both(site, *args, reset=store / "blake3")
        assert (fast.returncode, fast.stdout, fast.stderr) == (slow.returncode, slow.stdout, slow.stderr), args
        assert "Traceback" not in fast.stderr
    shutil.rmtree(store / "blake3")
    assert json.loads(cmfgit(site, "artifact", "push", "--json").stdout)["pushed"] == 4  # 3 files, 1 manifest
    other = fresh_clone(tmp_path, url, "reader")
    cache = other / ".git" / "cmf" / "cache"
    for args in (["artifact", "fetch", "--json"], ["artifact", "fetch", "-P", "p", "--stage", "train"]):
        fast, slow = _both(other, *args, reset=cache)
        assert (fast.returncode, fast.stdout, fast.stderr) == (slow.returncode, slow.stdout, slow.stderr), args
    for args in (["artifact", "pull"], ["artifact", "pull", "--json", "-j", "2"]):
        fast, slow = [], []
        for env, got in (({}, fast), ({"CMFGIT_NO_FASTPATH": "1"}, slow)):
            shutil.rmtree(cache, ignore_errors=True)
            shutil.rmtree(other / "data", ignore_errors=True)
            shutil.rmtree(other / "models", ignore_errors=True)
            got.append(cmfgit(other, *args, check=False, env=env))
            got.append((other / "models" / "m.pkl").read_bytes())
        assert fast[0].returncode == 0, fast[0].stderr
        assert (fast[0].stdout, fast[0].stderr, fast[1]) == (slow[0].stdout, slow[0].stderr, slow[1]), args
    (other / "models" / "m.pkl").write_bytes(b"edited")
    fast, slow = _both(other, "artifact", "pull")  # a modified file: the same refusal
    assert fast.returncode == slow.returncode == 1 and fast.stderr == slow.stderr and "modified" in fast.stderr


def test_push_does_not_import_typer(tmp_path: Path) -> None:
    site, _url, _store = lab(tmp_path)
    write_files(site, {"models/m.pkl": b"model"})
    run(site, "train", outputs=("models/m.pkl",))
    for args in (["artifact", "push"], ["artifact", "push", "--json"], ["artifact", "fetch"]):
        proc = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "cmfgit", *args], cwd=site, capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stderr
        imported = {line.split("|")[-1].strip().split(".")[0] for line in proc.stderr.splitlines() if "|" in line}
        assert not imported & {"typer", "click", "rich", "pydantic"}, args
