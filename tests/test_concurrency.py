"""Many real processes logging into one checkout at the same time lose nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from conftest import cmfgit, git

from cmfgit import canonical

API_WORKER = """
import os, sys, time
import cmfgit

worker, runs, go = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
while not os.path.exists(go):
    time.sleep(0.005)
for i in range(runs):
    with cmfgit.run(pipeline="sweep", stage=f"w{worker}", params={"worker": worker, "i": i}) as run:
        run.log_metrics({"score": worker * 1000 + i})
"""

# $1 worker, $2 runs, $3 the go file
CLI_WORKER = """
set -e
while [ ! -e "$3" ]; do sleep 0.01; done
i=0
while [ $i -lt "$2" ]; do
  "{python}" -m cmfgit log-run -q --commit -P cli -s "c$1" -p worker="$1" -p i="$i" -- true
  i=$((i + 1))
done
"""


def start_together(repo: Path, commands: list[list[str]]) -> list[subprocess.Popen[str]]:
    """Start every process, then release them at once through a 'go' file."""
    go = repo.parent / f"go-{os.getpid()}-{time.monotonic_ns()}"
    procs = [
        subprocess.Popen([*cmd, str(go)], cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for cmd in commands
    ]
    time.sleep(0.5)  # let the interpreters start and block on the go file
    go.touch()
    return procs


def wait_all(procs: list[subprocess.Popen[str]], timeout: float = 300) -> None:
    for proc in procs:
        out, err = proc.communicate(timeout=timeout)
        assert proc.returncode == 0, (proc.args, out, err)


def loose_records(repo: Path) -> list[dict[str, object]]:
    found = []
    for path in (repo / ".cmf" / "objects").glob("??/*.yaml"):
        data = path.read_bytes()
        assert canonical.digest(data) == path.parent.name + path.stem
        found.append(canonical.load(data))
    return found


def test_8_processes_log_200_runs_each_through_the_api(repo: Path) -> None:
    workers, runs = 8, 200
    procs = start_together(repo, [[sys.executable, "-c", API_WORKER, str(w), str(runs)] for w in range(workers)])
    wait_all(procs)

    records = loose_records(repo)
    assert len(records) == workers * runs
    pairs = {(r["params"]["worker"], r["params"]["i"]) for r in records}  # type: ignore[index]
    assert pairs == {(w, i) for w in range(workers) for i in range(runs)}
    assert not list((repo / ".cmf" / "objects").rglob(".tmp-*"))

    listed = json.loads(cmfgit(repo, "log", "--json").stdout)
    assert len(listed) == workers * runs
    assert len({r["id"] for r in listed}) == workers * runs
    assert cmfgit(repo, "fsck").stdout.strip().splitlines()[-1] == f"fsck: {workers * runs} record(s) ok"


def test_concurrent_log_run_with_commit(repo: Path) -> None:
    """4 processes x 5 CLI runs, each committing its record, all at once."""
    (repo / "work.txt").write_text("staged by the user\n")
    git(repo, "add", "work.txt")
    workers, runs = 4, 5
    procs = start_together(
        repo,
        [["sh", "-c", CLI_WORKER.format(python=sys.executable), "worker", str(w), str(runs)] for w in range(workers)],
    )
    wait_all(procs)

    records = loose_records(repo)
    assert len(records) == workers * runs
    assert {(r["params"]["worker"], r["params"]["i"]) for r in records} == {  # type: ignore[index]
        (w, i) for w in range(workers) for i in range(runs)
    }
    tracked = git(repo, "ls-files", ".cmf/objects").split()
    assert len(tracked) == workers * runs
    assert git(repo, "status", "--porcelain", "--", ".cmf") == ""
    assert git(repo, "diff", "--cached", "--name-only").split() == ["work.txt"]
    assert len(git(repo, "log", "--format=%H", "--grep", "cmfgit: record").split()) == workers * runs
    assert cmfgit(repo, "fsck").stdout.strip().splitlines()[-1] == f"fsck: {workers * runs} record(s) ok"
