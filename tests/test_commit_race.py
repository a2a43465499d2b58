"""``log-run --commit`` racing gc commits its record wherever gc moved it (issue 9, item 8)."""

from __future__ import annotations

import sys
from pathlib import Path

from conftest import cmfgit, git
from test_concurrency import start_together

from cmfgit import treeread

# $1 worker, $2 runs, $3 the go file
COMMITTER = """
while [ ! -e "$3" ]; do sleep 0.01; done
i=0
while [ $i -lt "$2" ]; do
  "{python}" -m cmfgit log-run --commit -P race -s "w$1" -p worker="$1" -p i="$i" -- true || exit 1
  i=$((i + 1))
done
"""

# $1 the stop file, $2 the go file
GC_LOOP = """
while [ ! -e "$2" ]; do sleep 0.01; done
while [ ! -e "$1" ]; do "{python}" -m cmfgit gc >/dev/null || exit 1; done
"""


def test_log_run_commit_racing_gc_commits_every_record(repo: Path) -> None:
    workers, runs = 24, 2
    stop = repo.parent / "stop"
    commands = [["sh", "-c", COMMITTER.format(python=sys.executable), "c", str(w), str(runs)] for w in range(workers)]
    commands += [["sh", "-c", GC_LOOP.format(python=sys.executable), "gc", str(stop)] for _ in range(2)]
    procs = start_together(repo, commands)
    committers, loops = procs[:workers], procs[workers:]
    errors = []
    for proc in committers:
        _out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, (proc.args, err)
        errors += [line for line in err.splitlines() if "warning" in line or "error" in line]
    stop.touch()
    for proc in loops:
        _out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
    assert errors == []

    in_head = {canonical_params(data) for _rid, data in treeread.iter_records(repo, "HEAD")}
    assert in_head == {(w, i) for w in range(workers) for i in range(runs)}
    # Nothing is left pending but what gc did after the last commit (packing committed loose files).
    pending = git(repo, "status", "--porcelain", "--untracked-files=all", "--", ".cmf").splitlines()
    assert all(not line.startswith("??") or "/pack/" in line for line in pending), pending
    assert cmfgit(repo, "fsck").stdout.strip().splitlines()[-1] == f"fsck: {workers * runs} record(s) ok"


def canonical_params(data: bytes) -> tuple[int, int]:
    from cmfgit import canonical

    params = canonical.load(data)["params"]
    return int(params["worker"]), int(params["i"])
