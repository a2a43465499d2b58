"""``kill -9`` at random moments never leaves a bad record behind (DESIGN §11)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import cmfgit, git

from cmfgit.fsutil import TMP_PREFIX
from cmfgit.reading import check_record

# argv: the ready file, and after how many completed runs to create it (0: once imported).
API_LOOP = """
import os, sys, cmfgit
ready, ready_after = sys.argv[1], int(sys.argv[2])
i = 0
while True:
    if i == ready_after:
        open(ready, "w").close()
    with cmfgit.run(pipeline="crash", stage="api", params={"i": i, "pid": os.getpid()}) as run:
        run.log_input("in.bin")
        with open("out.bin", "wb") as fh:
            fh.write(os.urandom(4096))
        run.log_output("out.bin", type="model")
        run.log_metrics({"i": i})
    i += 1
"""

MIN_KILLS = 30


def verify_new_records(objects: Path, verified: set[str]) -> int:
    """Check every visible record not checked before; returns the temp files seen."""
    temps = 0
    for path in objects.rglob("*"):
        if not path.is_file():
            continue
        if path.name.startswith(TMP_PREFIX):
            temps += 1
            continue
        name = path.relative_to(objects).as_posix()
        if name in verified:
            continue
        rid = path.parent.name + path.stem
        check_record(path.read_bytes(), name, rid)  # raises on any damage
        verified.add(name)
    return temps


def test_kill_9_at_random_moments_leaves_a_valid_store(repo: Path) -> None:
    seed = int(os.environ.get("CMFGIT_CRASH_SEED", time.time_ns() % 1_000_000))
    rng = random.Random(seed)
    # The API loops can complete thousands of records; keep them loose (no auto-gc
    # on the final --commit) so that the checks below see every one as a file.
    config = repo / ".cmf" / "config.yaml"
    config.write_text(config.read_text(encoding="utf-8").replace("threshold: 1000", "threshold: 0"), encoding="utf-8")
    git(repo, "commit", "-q", "-m", "no auto gc", "--", ".cmf/config.yaml")
    (repo / "in.bin").write_bytes(os.urandom(1 << 16))
    objects = repo / ".cmf" / "objects"
    log_run = [sys.executable, "-m", "cmfgit", "log-run", "-q", "-s", "cli", "-i", "in.bin"]
    log_run += ["-o", "copy.bin", "--", "cp", "in.bin", "copy.bin"]
    verified: set[str] = set()
    kills = rounds = temps = 0
    while kills < MIN_KILLS:
        rounds += 1
        assert rounds <= 4 * MIN_KILLS, f"only {kills} kills landed in {rounds} rounds (seed {seed})"
        cli = rounds % 3 == 0
        ready = repo.parent / f"ready-{rounds}"
        # API loops: half are killed in their first run (session set-up, git
        # state), half in the steady state after a few records.
        command = log_run if cli else [sys.executable, "-c", API_LOOP, str(ready), str(3 * (rounds % 2))]
        proc = subprocess.Popen(command, cwd=repo, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if not cli:
            while not ready.exists() and proc.poll() is None:
                time.sleep(0.005)
        # log-run: from start-up to the end of its single run.
        time.sleep(rng.uniform(0.0, 0.5 if cli else 0.3))
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate()
        if proc.returncode == -signal.SIGKILL:
            kills += 1
        else:
            assert proc.returncode == 0, err  # finished before the kill: fine
        temps = verify_new_records(objects, verified)

    assert verified, f"no record was ever completed (seed {seed})"
    print(f"crash test: seed {seed}, {kills} kills in {rounds} rounds, {len(verified)} records, {temps} temp files")
    # A writer killed mid-write leaves at most a temp file; plant one to be sure.
    (objects / "ab").mkdir(exist_ok=True)
    (objects / "ab" / f"{TMP_PREFIX}4242-deadbeef").write_bytes(b"schema: cmfgit/exec")
    temps = verify_new_records(objects, verified)
    assert temps >= 1

    # Readers, git and fsck ignore temp files; every visible record is valid.
    listed = json.loads(cmfgit(repo, "log", "--json").stdout)
    assert len(listed) == len(verified)
    status = git(repo, "status", "--porcelain", "--untracked-files=all")
    assert TMP_PREFIX not in status
    assert status.count(".cmf/objects/") == len(verified)
    assert cmfgit(repo, "fsck").stdout.strip().splitlines()[-1] == f"fsck: {len(verified)} record(s) ok"

    # The store still works after all this.
    cmfgit(repo, "log-run", "-q", "-s", "after", "--commit", "--", "true")
    pending = git(repo, "status", "--porcelain", "--untracked-files=all", "--", ".cmf").splitlines()
    assert len(pending) == len(verified) and all(line.startswith("?? .cmf/objects/") for line in pending)
