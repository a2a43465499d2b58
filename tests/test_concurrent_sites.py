"""24 sites push at the same moment to one central repository served by git daemon."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import cmfgit, git
from sites import clone_site, pull, records_at, seed_remote, stored_ids

from cmfgit import canonical, reading
from cmfgit.repo import open_repo

SITES = 24
RUNS = 20
SHARED = 4  # sites 0..3 push to main (and must merge each other); the others to their own branch

# One process per site: log RUNS executions with the Python API, wait for the
# starting signal, then push with the real CLI (all sites at once).
WORKER = """
import os, sys, time
import cmfgit
site, ready, go = sys.argv[1:4]
for i in range(int(sys.argv[4])):
    with cmfgit.run(pipeline="sweep", stage="train", params={"site": os.path.basename(site), "i": i},
                    repo=site, command=["train"]) as run:
        run.log_metrics({"loss": 1.0 / (i + 1)})
open(ready, "w").close()
while not os.path.exists(go):
    time.sleep(0.01)
os.chdir(site)
os.execv(sys.executable, [sys.executable, "-m", "cmfgit", "push", "--json"])
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A central bare repository served read-write by git daemon on 127.0.0.1."""
    root = tmp_path / "srv"
    root.mkdir()
    bare, _file_url = seed_remote(root)
    port = _free_port()
    proc = subprocess.Popen(
        [
            "git",
            "daemon",
            "--reuseaddr",
            f"--base-path={root}",
            "--export-all",
            "--enable=receive-pack",
            f"--port={port}",
            "--listen=127.0.0.1",
            "--informative-errors",
            str(root),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"git://127.0.0.1:{port}/{bare.name}"
    try:
        deadline = time.monotonic() + 30
        while subprocess.run(["git", "ls-remote", url], capture_output=True).returncode != 0:
            assert proc.poll() is None, "git daemon exited"
            assert time.monotonic() < deadline, "git daemon did not come up"
            time.sleep(0.1)
        yield bare, url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.slow
def test_many_sites_push_at_once(tmp_path: Path, daemon: tuple[Path, str]) -> None:
    bare, url = daemon
    work = tmp_path / "sites"
    work.mkdir()
    sites = [
        clone_site(work, url, f"site-{i}", branch=None if i < SHARED else f"site/{i}", hooks=True) for i in range(SITES)
    ]
    go = work / "go"
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(site), str(work / f"ready-{i}"), str(go), str(RUNS)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i, site in enumerate(sites)
    ]
    deadline = time.monotonic() + 600
    while not all((work / f"ready-{i}").exists() for i in range(SITES)):
        assert all(w.poll() is None for w in workers), [w.communicate() for w in workers if w.poll() is not None]
        assert time.monotonic() < deadline
        time.sleep(0.05)
    go.touch()  # every site pushes now
    outputs = [w.communicate(timeout=900) for w in workers]
    for worker, (out, err) in zip(workers, outputs):
        assert worker.returncode == 0, f"{out}\n{err}"
        result = json.loads(out)
        # Every site's ref went through in one push: no retry, whoever else pushed.
        assert (result["site"]["attempts"], result["site"]["pushed"], result["site"]["added"]) == (1, True, RUNS)
        assert result["branch_error"] is None and result["pushed"]

    # Each site's own runs, told apart by the site name each record carries.
    own = [
        {rid for rid, data in records_at(site, "HEAD").items() if canonical.load(data)["site"] == site.name}
        for site in sites
    ]
    assert all(len(ids) == RUNS for ids in own)
    everything = set().union(*own)
    assert len(everything) == SITES * RUNS

    # The site refs hold all 480 records, each site's own in its own ref; the
    # materialised cmf/global (updated opportunistically: no hook here) holds no more than them.
    for i in range(SITES):
        assert own[i] <= set(records_at(bare, f"refs/cmf/sites/site-{i}"))
    assert set(records_at(bare, "cmf/global")) <= everything
    # Every site's branch is intact: its own branch holds exactly its runs; main holds
    # the runs of all the sites that share it, and each of them is in its history.
    for i, site in enumerate(sites):
        if i < SHARED:
            assert git(bare, "merge-base", "--is-ancestor", git(site, "rev-parse", "HEAD").strip(), "main") == ""
        else:
            assert git(bare, "rev-parse", f"site/{i}") == git(site, "rev-parse", "HEAD")
            assert set(records_at(bare, f"site/{i}")) == own[i]
    assert set(records_at(bare, "main")) == set().union(*own[:SHARED])
    # fsck is clean in every clone, and git itself finds the central repository sound
    # (the global branch's trees and commits are written by dulwich, not by git).
    for site in sites:
        report = reading.fsck(open_repo(site))
        assert report.ok, report.problems
        assert report.checked >= RUNS
        git(site, "fsck", "--no-progress")
    git(bare, "fsck", "--no-progress", "--strict")

    # A new clone pulls the whole view over git:// as well.
    reader = clone_site(work, url, "reader")
    fetched = cmfgit(reader, "global", "fetch").stdout
    assert f"global     origin: {SITES * RUNS} record(s), from cmf/global and {SITES} site ref(s)" in fetched
    shown = json.loads(cmfgit(reader, "log", "--global", "--json", "-n", "100000").stdout)
    assert {run["id"] for run in shown} == everything
    committed = set(records_at(reader, "HEAD"))
    result = pull(reader)
    assert (result.view_records, result.written) == (SITES * RUNS, SITES * RUNS - len(committed))
    assert stored_ids(reader) == everything
