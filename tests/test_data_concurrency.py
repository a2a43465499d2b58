"""Many sites pushing to one data remote at once, and a push killed with SIGKILL."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import cmfgit, git
from datahelp import b3, file_hash, fresh_clone, lab, publish, remote_objects, run, temps, write_files
from sites import clone_site


def _verify(store: Path) -> dict[str, Path]:
    """Every object under its final name holds exactly the bytes it is named by."""
    objects = remote_objects(store)
    bad = [h for h, p in objects.items() if b3(p.read_bytes())[7:] != h]
    assert bad == []
    return objects


def _start(site: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "cmfgit", *args],
        cwd=site,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _count(root: Path) -> int:
    """Files under ``root`` (temps included): how far a transfer has got."""
    return sum(len(names) for _, _, names in os.walk(root))


def _kill_at(proc: subprocess.Popen[str], progress: Path, at: int) -> bool:
    """SIGKILL ``proc`` once ``at`` files exist under ``progress`` (a random point of
    its work, not a time); False if it finished first."""
    while proc.poll() is None:
        if _count(progress) >= at:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            return True
        time.sleep(0.002)
    proc.communicate()
    return False


def test_eight_clones_pushing_at_once_lose_nothing(tmp_path: Path) -> None:
    first, url, store = lab(tmp_path)
    git(first, "push", "-q", "origin", "HEAD")  # the data remote's config, for every clone
    sites = [first] + [clone_site(tmp_path, url, f"site{i}") for i in range(1, 8)]
    expected: set[str] = set()
    for i, site in enumerate(sites):
        shared = {f"data/set/shared-{k:03}.txt": f"same everywhere {k}\n" for k in range(60)}
        own = {f"data/set/own-{k:03}.txt": f"site {i} file {k}\n" for k in range(25)}
        write_files(site, {**shared, **own, "models/m.pkl": os.urandom(200_000)})
        run(site, "prepare", outputs=("data/set", "models/m.pkl"))
        expected |= {b3(c.encode())[7:] for c in [*shared.values(), *own.values()]}
        expected.add(file_hash(site / "models" / "m.pkl")[7:])
    procs = [_start(site, "artifact", "push", "-j", "4", "--json") for site in sites]
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, [err for _, err in results]
    objects = _verify(store)
    manifests = set(objects) - expected
    assert expected <= set(objects) and len(manifests) == 8  # one manifest per site's version of the set
    assert [n for d, _, names in os.walk(store) for n in names if n.startswith(".tmp-")] == []
    # Each site's data comes back whole in a fresh clone of that site's records.
    publish(sites[5])
    other = fresh_clone(tmp_path, url, "reader")
    cmfgit(other, "artifact", "pull")
    assert file_hash(other / "models" / "m.pkl") == file_hash(sites[5] / "models" / "m.pkl")
    assert (other / "data" / "set" / "own-007.txt").read_text() == "site 5 file 7\n"


@pytest.mark.slow
def test_kill_9_during_a_push_of_2000_objects_then_a_clean_resume(tmp_path: Path) -> None:
    site, url, store = lab(tmp_path)
    write_files(site, {f"data/many/{i // 100:02}/{i:04}.bin": os.urandom(2048) + str(i).encode() for i in range(2000)})
    run(site, "prepare", outputs=("data/many",))
    publish(site)
    rng = random.Random(10)
    killed = 0
    cache = site / ".git" / "cmf" / "cache"
    for round in range(6):
        if round % 2:  # push fills the cache from the working tree first: kill it there too
            shutil.rmtree(cache)
            watched, at = cache, rng.randrange(1, 2000)
        else:
            watched, at = store, rng.randrange(1, 2000)
        killed += _kill_at(_start(site, "artifact", "push", "-j", "8"), watched, at)
        _verify(store)  # whatever was cut short, no object holds wrong bytes
        _verify(cache)
        resumed = cmfgit(site, "artifact", "push", "-j", "8").stdout
        assert resumed.startswith("pushed ") and "not available" not in resumed
        assert len(_verify(store)) == 2001
        assert cmfgit(site, "artifact", "push").stdout.startswith("pushed 0 object(s), 0 B; 2,001 already there")
        shutil.rmtree(store / "blake3")  # the next round starts from an empty remote
    assert killed >= 3  # most rounds were cut short somewhere
    cmfgit(site, "artifact", "push")
    other = fresh_clone(tmp_path, url, "reader")
    cmfgit(other, "artifact", "pull")
    status = cmfgit(other, "status", "--json").stdout
    assert '"state": "unchanged"' in status and '"path": "data/many"' in status
    for rel in ("data/many/00/0000.bin", "data/many/19/1999.bin"):
        assert file_hash(other / rel) == file_hash(site / rel)


@pytest.mark.slow
def test_kill_9_during_a_pull_then_a_clean_resume(tmp_path: Path) -> None:
    site, url, _store = lab(tmp_path)
    files = {f"data/many/{i // 100:02}/{i:04}.bin": os.urandom(2048) + str(i).encode() for i in range(2000)}
    write_files(site, files)
    run(site, "prepare", outputs=("data/many",))
    publish(site)
    cmfgit(site, "artifact", "push")
    other = fresh_clone(tmp_path, url, "reader")
    rng = random.Random(11)
    killed = 0
    for round in range(6):
        # Killed while fetching into the cache, or while placing files.
        watched = other / ".git" / "cmf" / "cache" if round % 2 else other / "data"
        killed += _kill_at(_start(other, "artifact", "pull", "-j", "8"), watched, rng.randrange(1, 2000))
        _verify(other / ".git" / "cmf" / "cache")  # no cached object holds wrong bytes
        placed = other / "data" / "many"
        if placed.exists():  # every file placed so far is whole: the recorded bytes, never a prefix
            for path in placed.rglob("*.bin"):
                rel = str(path.relative_to(other))
                if not path.name.startswith(".tmp-"):  # a temp of the killed pull, never a placed file
                    assert path.read_bytes() == files[rel], rel
        resumed = cmfgit(other, "artifact", "pull", "-j", "8").stdout
        assert "placed" in resumed
        status = cmfgit(other, "status", "--json").stdout
        assert '"state": "unchanged"' in status  # the killed pull's temp files are gone too
        assert temps(other / "data") == []
        shutil.rmtree(other / ".git" / "cmf" / "cache")
        shutil.rmtree(other / "data")
    assert killed >= 3  # most rounds were cut short somewhere
