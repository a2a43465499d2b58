"""Site refs: each site publishes to refs/cmf/sites/<site>; readers union them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from conftest import cmfgit, git
from sites import clone_site, loose_ids, pull, push, record, records_at, seed_remote

from cmfgit import siterefs

GLOBAL = "cmf/global"


def _push_json(site: Path) -> dict[str, object]:
    out = cmfgit(site, "push", "--json").stdout
    result: dict[str, object] = json.loads(out)
    return result


def test_push_publishes_a_site_ref_that_only_fast_forwards(tmp_path: Path) -> None:
    bare, url = seed_remote(tmp_path)
    site = clone_site(tmp_path, url, "lab", branch="site/lab")
    first = {record(site, "wine", "train", params={"i": i}) for i in range(3)}
    result = _push_json(site)
    publish = result["site"]
    assert isinstance(publish, dict)
    assert (publish["ref"], publish["pushed"], publish["attempts"], publish["added"]) == (
        "refs/cmf/sites/lab",
        True,
        1,
        3,
    )
    assert set(records_at(bare, "refs/cmf/sites/lab")) == first
    tip = git(bare, "rev-parse", "refs/cmf/sites/lab").strip()
    assert publish["commit"] == tip
    # The site ref holds .cmf/objects only, and its tree is the branch's own (no new trees).
    assert git(bare, "ls-tree", "--name-only", tip).split() == [".cmf"]
    assert git(bare, "rev-parse", f"{tip}:.cmf/objects") == git(bare, "rev-parse", "site/lab:.cmf/objects")
    # The clone keeps its copy, and its view of the remote.
    assert git(site, "rev-parse", "refs/cmf/remotes/origin/sites/lab").strip() == tip

    second = {record(site, "wine", "train", params={"i": 10 + i}) for i in range(2)}
    again = _push_json(site)
    publish = again["site"]
    assert isinstance(publish, dict) and (publish["added"], publish["records"], publish["attempts"]) == (2, 5, 1)
    new_tip = git(bare, "rev-parse", "refs/cmf/sites/lab").strip()
    assert git(bare, "rev-parse", f"{new_tip}^").strip() == tip  # a fast-forward of the previous value
    assert set(records_at(bare, "refs/cmf/sites/lab")) == first | second
    # Nothing new: the site ref is not pushed again.
    idle = _push_json(site)
    assert isinstance(idle["site"], dict) and (idle["site"]["pushed"], idle["site"]["attempts"]) == (False, 0)
    assert git(bare, "rev-parse", "refs/cmf/sites/lab").strip() == new_tip


def test_readers_union_the_site_refs_even_when_cmf_global_lags(tmp_path: Path) -> None:
    bare, url = seed_remote(tmp_path)
    lab = clone_site(tmp_path, url, "lab", branch="site/lab")
    edge = clone_site(tmp_path, url, "edge", branch="site/edge")
    from_lab = {record(lab, "wine", "train")}
    push(lab)
    stale = git(bare, "rev-parse", GLOBAL).strip()
    from_edge = {record(edge, "wine", "evaluate")}
    push(edge)
    # As if edge had lost every race for cmf/global: the materialised union lags behind.
    git(bare, "update-ref", f"refs/heads/{GLOBAL}", stale)
    assert set(records_at(bare, GLOBAL)) == from_lab
    reader = clone_site(tmp_path, url, "reader")
    fetched = cmfgit(reader, "global", "fetch").stdout
    assert "global     origin: 2 record(s), from cmf/global and 2 site ref(s)" in fetched
    shown = json.loads(cmfgit(reader, "log", "--global", "--json").stdout)
    assert {run["id"] for run in shown} == from_lab | from_edge
    result = pull(reader)
    assert result.view is not None and (result.view.records, result.view.sites) == (2, 2)
    assert loose_ids(reader) == from_lab | from_edge
    # A plain 'git fetch' that brings a newer cmf/global wins over an older union...
    more = {record(lab, "wine", "train", params={"again": True})}
    push(lab)
    git(reader, "fetch", "-q", "origin", f"+refs/heads/{GLOBAL}:refs/remotes/origin/{GLOBAL}")
    shown = json.loads(cmfgit(reader, "log", "--global", "--json").stdout)
    assert more | from_lab <= {run["id"] for run in shown}
    # ... and the next 'cmfgit global fetch' unions the site refs in again.
    cmfgit(reader, "global", "fetch")
    shown = json.loads(cmfgit(reader, "log", "--global", "--json").stdout)
    assert {run["id"] for run in shown} == from_lab | from_edge | more


def test_the_same_site_name_from_two_clones_loses_nothing(tmp_path: Path) -> None:
    bare, url = seed_remote(tmp_path)
    one = clone_site(tmp_path, url, "one", branch="one")
    two = clone_site(tmp_path, url, "two", branch="two")
    for clone in (one, two):
        git(clone, "config", "cmfgit.site", "lab")  # both clones call themselves 'lab'
    mine = {record(one, "wine", "train", params={"clone": 1})}
    assert _push_json(one)["site"]["attempts"] == 1  # type: ignore[index]
    theirs = {record(two, "wine", "train", params={"clone": 2})}
    proc = cmfgit(two, "push")
    assert "cmfgit: warning: another clone also publishes as site 'lab'" in proc.stderr
    assert "give each clone its own name ('git config cmfgit.site NAME')" in proc.stderr
    assert set(records_at(bare, "refs/cmf/sites/lab")) == mine | theirs
    # The first clone pushes again from its stale copy: refused as not a fast-forward,
    # so it takes the other clone's records in first.
    later = {record(one, "wine", "train", params={"clone": 1, "again": True})}
    result = _push_json(one)
    publish = result["site"]
    assert isinstance(publish, dict) and (publish["shared_name"], publish["attempts"], publish["error"]) == (
        True,
        2,
        None,
    )
    assert set(records_at(bare, "refs/cmf/sites/lab")) == mine | theirs | later
    # Every value the ref took is an ancestor of the next: nothing was overwritten.
    chain = git(bare, "rev-list", "--first-parent", "refs/cmf/sites/lab").split()
    assert len(chain) == 3
    assert set(records_at(bare, GLOBAL)) == mine | theirs | later


# A central `update` hook that plays "another site won the race for cmf/global": each
# time a push would move cmf/global, it moves cmf/global first (and notes the attempt).
_RACING_HOOK = """#!/bin/sh
if [ "$1" = refs/heads/cmf/global ]; then
    echo "$1" >> "$0.attempts"
    cur=$(git rev-parse --verify --quiet "$1") || exit 0
    other=$(echo "cmfgit global: another site" | git commit-tree "$cur^{tree}" -p "$cur")
    git update-ref "$1" "$other" "$cur"
fi
exit 0
"""


def test_a_lost_race_for_cmf_global_is_one_attempt_and_no_error(tmp_path: Path) -> None:
    bare, url = seed_remote(tmp_path)
    lab = clone_site(tmp_path, url, "lab", branch="site/lab")
    edge = clone_site(tmp_path, url, "edge", branch="site/edge")
    from_lab = {record(lab, "wine", "train", params={"i": i}) for i in range(2)}
    push(lab)  # cmf/global holds lab's records; lab now knows its tip
    hook = bare / "hooks" / "update"
    hook.write_text(_RACING_HOOK)
    hook.chmod(0o755)
    attempts = bare / "hooks" / "update.attempts"

    from_edge = {record(edge, "wine", "evaluate", params={"i": i}) for i in range(2)}
    proc = cmfgit(edge, "push", "--json")
    assert proc.stderr == ""  # lost, and nothing to say about it on stderr
    result = json.loads(proc.stdout)
    assert (result["site"]["pushed"], result["site"]["attempts"], result["site"]["error"]) == (True, 1, None)
    assert (result["global_update"]["updated"], result["global_update"]["gave_up"]) == (False, True)
    # edge never fetched the view: one fetch, one union, one compare-and-swap push, lost, left.
    assert result["global_update"]["attempts"] == 1 and attempts.read_text().count("cmf/global") == 1

    more = {record(lab, "wine", "train", params={"i": 9})}
    human = cmfgit(lab, "push")
    assert human.stderr == ""
    assert "global     origin/cmf/global: not updated, other sites were updating it (2 tries)" in human.stdout
    assert "nothing is lost: readers union the site refs" in human.stdout
    # lab knew a tip, now stale: its push's lease refused cmf/global before sending it
    # (git's "stale info"), then one more try after the push reached the central, lost.
    assert attempts.read_text().count("cmf/global") == 2

    everything = from_lab | from_edge | more
    assert set(records_at(bare, GLOBAL)) == from_lab  # the materialised union lags ...
    assert set(records_at(bare, "refs/cmf/sites/edge")) == from_edge  # ... the site refs do not
    reader = clone_site(tmp_path, url, "reader")
    fetched = cmfgit(reader, "global", "fetch").stdout
    assert f"global     origin: {len(everything)} record(s), from cmf/global and 2 site ref(s)" in fetched
    shown = json.loads(cmfgit(reader, "log", "--global", "--json").stdout)
    assert {run["id"] for run in shown} == everything
    git(bare, "fsck", "--no-progress", "--strict")


def test_site_names_become_safe_ref_components() -> None:
    assert siterefs.ref_component("site-3_a.b") == "site-3_a.b"
    assert siterefs.ref_component("eu/lab 1") == "eu%2Flab%201"
    assert siterefs.ref_component(".hidden") == "%2Ehidden"
    assert siterefs.ref_component("x.lock") == "x%2Elock"
    assert siterefs.ref_component("a..b") == "a%2E%2Eb"
    for name in ("eu/lab 1", ".hidden", "x.lock", "a..b", "ümlaut", "a@{b}", "x~1^2:3?*["):
        ref = siterefs.site_ref(name)
        assert subprocess.run(["git", "check-ref-format", ref]).returncode == 0, ref


_PUSHER = """
import subprocess, sys, time, os
site, go = sys.argv[1:3]
while not os.path.exists(go):
    time.sleep(0.01)
out = subprocess.run([sys.executable, "-m", "cmfgit", "push", "--json"], cwd=site, capture_output=True, text=True)
sys.stdout.write(out.stdout)
sys.stderr.write(out.stderr)
sys.exit(out.returncode)
"""


def test_the_central_hook_keeps_cmf_global_equal_to_the_union_of_the_site_refs(tmp_path: Path) -> None:
    bare, url = seed_remote(tmp_path)
    # A post-receive hook that was there before is kept, and still sees every push.
    seen = tmp_path / "legacy-saw"
    legacy = bare / "hooks" / "post-receive"
    legacy.write_text(f"#!/bin/sh\ncat >> '{seen}'\n")
    legacy.chmod(0o755)
    installed = cmfgit(tmp_path, "global", "install-hook", "--repo", str(bare)).stdout
    assert f"installed  {bare / 'hooks' / 'post-receive'}" in installed
    assert (bare / "hooks" / "post-receive.legacy").read_text() == f"#!/bin/sh\ncat >> '{seen}'\n"
    cmfgit(tmp_path, "global", "install-hook", "--repo", str(bare))  # idempotent: the legacy hook stays
    assert (bare / "hooks" / "post-receive.legacy").exists()

    count = 6
    sites = [clone_site(tmp_path, url, f"s{i}", branch=f"site/s{i}") for i in range(count)]
    expected: set[str] = set()

    def push_all(round_: int) -> list[dict[str, Any]]:
        go = tmp_path / f"go-{round_}"
        procs = [
            subprocess.Popen([sys.executable, "-c", _PUSHER, str(site), str(go)], stdout=subprocess.PIPE, text=True)
            for site in sites
        ]
        go.touch()
        results = []
        for proc in procs:
            out, _ = proc.communicate(timeout=600)
            assert proc.returncode == 0, out
            results.append(json.loads(out))
        return results

    for round_ in range(2):
        for i, site in enumerate(sites):
            params = [{"site": i, "run": r, "round": round_} for r in range(2)]
            expected |= {record(site, "sweep", "train", params=p) for p in params}
        results = push_all(round_)
        for result in results:
            assert result["site"]["attempts"] == 1 and result["site"]["pushed"]
            assert result["global_update"]["gave_up"] is False
            # The central says it maintains cmf/global (refs/cmf/hooked/*), and its hook had
            # folded the site in by the time the site's push returned: no site pushed a cmf/global.
            assert result["global_update"]["updated"] is False
            # ... and said so on the push's stderr, so the site did not fetch cmf/global to check.
            assert result["global_update"]["by_central"] is True and result["global_update"]["attempts"] == 0
        union: set[str] = set()
        for i in range(count):
            union |= set(records_at(bare, f"refs/cmf/sites/s{i}"))
        assert union == expected
        assert set(records_at(bare, GLOBAL)) == union
        assert "from all branches and site refs" in git(bare, "log", "-1", "--format=%s", GLOBAL)
    git(bare, "fsck", "--no-progress", "--strict")
    assert seen.read_text().count("refs/cmf/sites/") == 2 * count


def test_hooks_that_queue_behind_one_update_are_taken_in_by_it_not_run_again(tmp_path: Path) -> None:
    """A burst of pushes costs one union, not one each, and every push still returns
    with cmf/global holding its records (centralhook.py)."""
    from cmfgit import centralhook

    bare, url = seed_remote(tmp_path)
    cmfgit(tmp_path, "global", "install-hook", "--repo", str(bare))
    sites = [clone_site(tmp_path, url, f"q{i}", branch=f"site/q{i}") for i in range(4)]
    expected = {record(site, "sweep", "train", params={"q": i}) for i, site in enumerate(sites)}
    pending = bare / "cmf" / "locks" / centralhook.PENDING
    procs = []
    with centralhook.lock(bare):  # as if a long union were running: every hook queues
        for site in sites:
            pending.unlink(missing_ok=True)
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "cmfgit", "push", "--json"], cwd=site, stdout=subprocess.PIPE, text=True
                )
            )
            while not pending.exists():  # this push's hook marked, and now waits for the lock
                assert procs[-1].poll() is None
                time.sleep(0.01)
    results = []
    for proc in procs:
        out, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, out
        results.append(json.loads(out)["global_update"])
    # The first hook to get the lock ran the union; it had every push in, so the rest did not.
    assert sorted(r["added"] for r in results) == [0, 0, 0, len(expected)]
    assert all(r["by_central"] and r["records"] == len(expected) for r in results)
    assert set(records_at(bare, GLOBAL)) == expected
    assert not pending.exists()
    assert (bare / "cmf" / "locks" / centralhook.RECORDS).read_text() == f"{len(expected)}\n"
    # The next push alone runs a union of its own again.
    more = record(sites[0], "sweep", "train", params={"q": "again"})
    again: Any = _push_json(sites[0])["global_update"]
    assert (again["records"], again["added"]) == (len(expected) + 1, 1)
    assert more in set(records_at(bare, GLOBAL))


def test_push_without_typer_reads_the_command_line_as_typer_does(tmp_path: Path) -> None:
    from cmfgit import pushrun

    assert pushrun.parse([]) == {"remote": None, "data": None, "as_json": False}
    assert pushrun.parse(["origin", "--json", "--no-data"]) == {"remote": "origin", "data": False, "as_json": True}
    for odd in (["--help"], ["-h"], ["a", "b"], ["--jsn"], ["--data=x"]):
        assert pushrun.parse(odd) is None  # typer handles it (help, errors)
    _bare, url = seed_remote(tmp_path)
    site = clone_site(tmp_path, url, "lab")
    record(site, "wine", "train")
    cmfgit(site, "push")
    fast = cmfgit(site, "push")
    slow = subprocess.run(
        [sys.executable, "-m", "cmfgit", "push"],
        cwd=site,
        capture_output=True,
        text=True,
        env={**os.environ, "CMFGIT_NO_FASTPATH": "1"},
    )
    assert slow.returncode == 0 and (slow.stdout, slow.stderr) == (fast.stdout, fast.stderr)
    assert "site       origin refs/cmf/sites/lab: up to date, 1 record(s)" in fast.stdout
