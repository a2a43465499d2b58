"""Many sites pushing to one data remote at once, and a push killed with SIGKILL."""

from __future__ import annotations

import json
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


def _age(paths: list[str], seconds: float) -> None:
    """Make files look untouched for ``seconds`` (the killed upload's temps, some time later)."""
    then = time.time() - seconds
    for path in paths:
        os.utime(path, (then, then))


@pytest.mark.slow
def test_kill_9_during_a_push_of_2000_objects_then_a_clean_resume(tmp_path: Path) -> None:
    site, url, store = lab(tmp_path)
    write_files(site, {f"data/many/{i // 100:02}/{i:04}.bin": os.urandom(2048) + str(i).encode() for i in range(2000)})
    run(site, "prepare", outputs=("data/many",))
    publish(site)
    rng = random.Random(10)
    killed = left = 0
    cache = site / ".git" / "cmf" / "cache"
    for round in range(20):
        if round % 4 == 3:  # push fills the cache from the working tree first: kill it there too
            shutil.rmtree(cache)
            watched, at = cache, rng.randrange(1, 2000)
        else:
            watched, at = store, rng.randrange(1, 2000)
        killed += _kill_at(_start(site, "artifact", "push", "-j", "8"), watched, at)
        _verify(store)  # whatever was cut short, no object holds wrong bytes
        _verify(cache)
        stale = temps(store)
        left += len(stale)
        _age(stale, 600)  # the resume comes later: what the killed push left is stale by then
        resumed = cmfgit(site, "artifact", "push", "-j", "8").stdout
        assert resumed.startswith("pushed ") and "not available" not in resumed
        # Exactly the objects, and none of the killed push's temp files.
        assert len(_verify(store)) == 2001 and temps(store) == []
        assert sum(len(names) for _, _, names in os.walk(store)) == 2001
        if round < 19:
            shutil.rmtree(store / "blake3")  # the next round starts from an empty remote
    assert killed >= 15  # most rounds were cut short somewhere
    assert left > 0  # some kills did leave temp files on the remote
    assert cmfgit(site, "artifact", "push").stdout.startswith("pushed 0 object(s), 0 B; 2,001 already there")
    other = fresh_clone(tmp_path, url, "reader")
    cmfgit(other, "artifact", "pull")
    status = cmfgit(other, "status", "--json").stdout
    assert '"state": "unchanged"' in status and '"path": "data/many"' in status
    for rel in ("data/many/00/0000.bin", "data/many/19/1999.bin"):
        assert file_hash(other / rel) == file_hash(site / rel)


def test_stale_temp_files_on_the_remote_are_removed_and_live_ones_kept(tmp_path: Path) -> None:
    site, _url, store = lab(tmp_path)
    write_files(site, {"data/a.csv": "a\n", "data/b.csv": "b\n"})
    run(site, "prepare", outputs=("data/a.csv",))
    shard = store / "blake3" / b3(b"a\n")[7:9]
    other = store / "blake3" / "00"
    shard.mkdir(parents=True)
    other.mkdir(parents=True)
    dead, live, far, far_live = (
        shard / ".tmp-1-deadbeef-x",
        shard / ".tmp-2-0badf00d-y",
        other / ".tmp-3-1",
        other / ".tmp-4-2",
    )
    for path in (dead, live, far, far_live):
        path.write_bytes(b"half an object")
    _age([str(dead), str(far)], 600)
    assert cmfgit(site, "artifact", "push").stdout.startswith("pushed 1 object(s)")
    # In the directory it wrote, the push removed the stale temp; a fresh one may be a live upload.
    assert not dead.exists() and live.exists() and far.exists() and far_live.exists()
    out = cmfgit(site, "artifact", "gc", "--remote").stdout
    assert "removed 1 temp file(s) of killed uploads from data remote 'store'" in out
    assert not far.exists() and live.exists() and far_live.exists()
    cleaned = json.loads(cmfgit(site, "artifact", "gc", "--remote", "--older-than", "0", "--json").stdout)
    assert cleaned["remote"] == "store" and cleaned["remote_temps_removed"] == 2
    assert temps(store) == [] and set(remote_objects(store)) == {b3(b"a\n")[7:]}


@pytest.mark.slow
def test_kill_9_during_a_checkout_then_a_clean_rerun(tmp_path: Path) -> None:
    site, _url, _store = lab(tmp_path)
    files = {f"data/many/{i // 100:02}/{i:04}.bin": os.urandom(1024) + str(i).encode() for i in range(2000)}
    write_files(site, files)
    rid = run(site, "prepare", outputs=("data/many",))
    rng = random.Random(12)
    killed = 0
    for _round in range(6):
        shutil.rmtree(site / "data")
        killed += _kill_at(_start(site, "checkout", rid[:12]), site / "data", rng.randrange(1, 2000))
        for path in (site / "data").rglob("*.bin") if (site / "data").exists() else []:
            if not path.name.startswith(".tmp-"):  # a placed file is whole, never a prefix
                assert path.read_bytes() == files[str(path.relative_to(site))]
        rerun = cmfgit(site, "checkout", rid[:12]).stdout  # no --force: nothing of the user's is at stake
        assert "placed     data/many" in rerun or "unchanged  data/many" in rerun
        assert temps(site / "data") == []
        assert json.loads(cmfgit(site, "status", "data/many", "--json").stdout) == [
            {
                "path": "data/many",
                "state": "unchanged",
                "hash": _hash_of(site, rid),
                "kind": "dir",
                "cached": True,
                "remote": None,
            }
        ]
    assert killed >= 3


def _hash_of(site: Path, rid: str) -> str:
    shown = json.loads(cmfgit(site, "show", rid, "--json").stdout)
    return str(shown["outputs"][0]["hash"])


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
