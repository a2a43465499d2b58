"""The first answer after a clone, and warm commands that never re-read unchanged packs (issue 11, item 4)."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from conftest import cmfgit, git, make_repo
from qhelp import art, assert_index_matches_scan, execution, put
from test_index import commit_all, runs, write_pack

from cmfgit import index, pack, retractions, tags
from cmfgit.query import CmfQuery
from cmfgit.repo import open_repo


def _refreshed(root: Path) -> index.Index:
    r = open_repo(root)
    ix = index.Index(r, index.index_path(r, index.CHECKOUT))
    assert ix.open_existing()
    ix.refresh_worktree()
    ix.close()
    return ix


def test_a_pack_whose_stat_changed_but_not_its_bytes_is_not_read_again(repo: Path) -> None:
    """A fresh clone's packs are "racy" when the first command indexes them (written
    less than 2 s before); a touched or copied pack has a new stat signature. Neither
    is parsed again when its bytes (its git blob id) are the same."""
    write_pack(repo, "2026-01.yaml", runs("a", 6))
    write_pack(repo, "2026-02.yaml", runs("b", 5, 100))
    commit_all(repo, "packs")
    assert_index_matches_scan(repo)  # built at once: both packs are racy
    packs = sorted((repo / ".cmf/objects/pack").rglob("*.yaml"))
    old = os.stat(packs[0]).st_mtime - 60
    for p in packs:
        os.utime(p, (old, old))  # no longer racy, and a new stat signature
    assert _refreshed(repo).stats["files"] == 0
    copy = packs[1].with_name("copy.tmp")
    shutil.copy2(packs[1], copy)  # another inode, the same bytes
    os.replace(copy, packs[1])
    os.utime(packs[1], (old, old))
    assert _refreshed(repo).stats["files"] == 0
    assert_index_matches_scan(repo)

    # A pack whose bytes did change is read again, whatever its stat says.
    write_pack(repo, "2026-02.yaml", runs("c", 2, 200))
    os.utime(packs[1], (old, old))
    assert _refreshed(repo).stats["files"] == 1
    assert len(assert_index_matches_scan(repo)["executions"]) == 13


# -- the first `log -n N` of a fresh clone ------------------------------------------------

FAST = {"CMFGIT_FIRST_ANSWER_BYTES": "0", "CMFGIT_INDEX_BACKGROUND": "0"}


def _pack(root: Path, site: str, name: str, records: list[dict[str, object]]) -> list[str]:
    from cmfgit import canonical

    encoded = dict(reversed(canonical.encode(r)) for r in records)  # id -> bytes
    path = root / ".cmf/objects/pack" / site / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pack.serialize(encoded))
    return list(encoded)


def _month(m: int, i: int, pipeline: str, stage: str, site: str) -> dict[str, object]:
    return execution(
        stage,
        [art(f"{pipeline}-in{m}")],
        [art(f"{pipeline}-{stage}-{m}-{i}", "model")],
        pipeline=pipeline,
        params={"lr": 0.001 * (i + 1), "m": m},
        metrics={"acc": round(0.5 + i / 100, 6)},
        started_at=f"2026-{m:02d}-{1 + i % 28:02d}T{i % 24:02d}:00:00.000000Z",
        site=site,
    )


def _history(root: Path) -> dict[str, list[str]]:
    """Packs of two sites over four months, the newest executions tagged and one withdrawn
    by records in an old pack (a site whose clock was behind), loose records, and a record
    held by two packs."""
    made: dict[str, list[str]] = {}
    for site, pipeline in (("site-a", "pa"), ("site-b", "pb")):
        for m in range(1, 5):
            stage = "train" if m % 2 else "eval"
            made[f"{site}/{m}"] = _pack(
                root, site, f"2026-{m:02d}.yaml", [_month(m, i, pipeline, stage, site) for i in range(12)]
            )
    newest_a, newest_b = made["site-a/4"], made["site-b/4"]
    notes = [
        tags.annotation(newest_a[11], {"status": "best"}),
        tags.annotation(newest_b[10], {"status": "bad"}),
        retractions.record([newest_b[11]], reason="wrong data"),
    ]
    for note in notes:
        note["at"] = "2026-01-20T00:00:00.000000Z"  # placed with the oldest records
    old = root / ".cmf/objects/pack/site-a/2026-01.yaml"
    from cmfgit import canonical

    existing = pack.parse(old.read_bytes())
    old.write_bytes(pack.serialize({**existing, **dict(reversed(canonical.encode(n)) for n in notes)}))
    dup = root / ".cmf/objects/pack/site-b/2026-04-abcdef12.yaml"  # a content-named copy
    dup.write_bytes((root / ".cmf/objects/pack/site-b/2026-04.yaml").read_bytes())
    put(root, _month(4, 30, "pa", "train", "site-a"), _month(3, 31, "pb", "eval", "site-b"))
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "history")
    return made


def _clone(src: Path, dest: Path) -> Path:
    git(src.parent, "clone", "-q", str(src), str(dest))
    return dest


READS = [
    ["log", "-n", "1"],
    ["log", "-n", "3", "--json"],
    ["log", "-n", "5"],
    ["log", "-n", "14", "--json"],
    ["log", "-n", "40", "--json"],
    ["log", "-n", "200", "--json"],
    ["log", "-n", "4", "-P", "pb", "--json"],
    ["log", "-n", "2", "-s", "eval", "--json"],
    ["log", "-n", "3", "--since", "2026-03-01", "--json"],
]


def test_first_log_of_a_fresh_clone_answers_before_the_index_exists_and_as_the_full_index(tmp_path: Path) -> None:
    src = make_repo(tmp_path / "src")
    made = _history(src)
    clone = _clone(src, tmp_path / "clone")
    index_file = clone / ".git/cmf/index.sqlite"
    first = {}
    for args in READS:
        first[" ".join(args)] = cmfgit(clone, *args, env=FAST).stdout
        assert not index_file.exists()  # answered without building the index
    newest = json.loads(first["log -n 3 --json"])  # a and b tie on the newest start: b's is withdrawn
    a, b = made["site-a/4"], made["site-b/4"]
    assert {o["id"]: o["tags"] for o in newest} == {a[11]: {"status": "best"}, b[10]: {"status": "bad"}, a[10]: {}}
    # show: the records of the prefix, every tag and retraction (a withdrawn one is refused).
    shows = [["show", a[11][:12]], ["show", "--json", b[10]], ["show", b[11][:10]], ["show", "abcdef0123"]]
    shows += [["show", "--json", made["site-a/1"][0][:8]]]
    shown = {}
    for args in shows:
        proc = cmfgit(clone, *args, env=FAST, check=False)
        shown[" ".join(args)] = (proc.returncode, proc.stdout, proc.stderr)
        assert not index_file.exists()
    assert shown[f"show {a[11][:12]}"][1].startswith(f"id: {a[11]}\ntags: status=best\n")
    assert shown[f"show {b[11][:10]}"][0] != 0 and "retracted" in shown[f"show {b[11][:10]}"][2]
    cmfgit(clone, "log", "-n", "1", "--where", "params.m == 4")  # builds the full index
    assert index_file.exists()
    for args in READS:
        assert cmfgit(clone, *args).stdout == first[" ".join(args)], args
    for args in shows:
        proc = cmfgit(clone, *args, check=False)
        assert (proc.returncode, proc.stdout, proc.stderr) == shown[" ".join(args)], args
    assert len(json.loads(first["log -n 200 --json"])) == 12 * 8 + 2 - 1  # every one, less the withdrawn


def test_a_pack_not_placed_by_period_makes_the_first_log_build_the_index(tmp_path: Path) -> None:
    src = make_repo(tmp_path / "src")
    _history(src)
    _pack(src, "site-c", "2026-02.yaml", [_month(9, 1, "pc", "train", "site-c")])  # a September run
    (src / ".cmf/objects/pack/site-c/2026-02.yaml").rename(src / ".cmf/objects/pack/site-c/undated.yaml")
    _pack(src, "site-c", "2026-05.yaml", [_month(2, 1, "pc", "train", "site-c")])  # February, in May's pack
    git(src, "add", "-A")
    git(src, "commit", "-q", "-m", "misplaced")
    clone = _clone(src, tmp_path / "clone")
    out = json.loads(cmfgit(clone, "log", "-n", "2", "--json", env=FAST).stdout)
    assert (clone / ".git/cmf/index.sqlite").exists()  # gave up on the names: the full index answered
    assert [o["started_at"][:7] for o in out] == ["2026-09", "2026-04"]


def test_the_first_log_starts_the_full_build_in_the_background(tmp_path: Path) -> None:
    src = make_repo(tmp_path / "src")
    _history(src)
    clone = _clone(src, tmp_path / "clone")
    first = cmfgit(clone, "log", "-n", "5", env={"CMFGIT_FIRST_ANSWER_BYTES": "0"}).stdout
    index_file = clone / ".git/cmf/index.sqlite"
    for _ in range(600):
        if index_file.exists():
            break
        time.sleep(0.1)
    assert index_file.exists()
    ix = index.Index(open_repo(clone), index_file)
    assert ix.open_existing()
    assert ix.db().execute("SELECT count(*) FROM files WHERE sig = 'racy'").fetchone() == (0,)  # built once settled
    ix.refresh_worktree()
    assert ix.stats["parsed"] == 0 and ix.stats["files"] == 0  # complete: nothing left to read
    ix.close()
    assert cmfgit(clone, "log", "-n", "5").stdout == first
    built = [cmfgit(clone, *args).stdout for args in (["log", "--json"], ["artifacts", "--json"])]
    for suffix in ("", "-wal", "-shm"):
        Path(f"{index_file}{suffix}").unlink(missing_ok=True)
    assert [cmfgit(clone, *args).stdout for args in (["log", "--json"], ["artifacts", "--json"])] == built


def test_the_most_recently_used_artifacts_are_those_of_the_full_ordering(tmp_path: Path) -> None:
    """``artifacts -n N`` walks executions newest first instead of grouping every event:
    the same artifacts in the same order (ties on the newest use broken by hash)."""
    src = make_repo(tmp_path / "src")
    _history(src)
    put(
        src, execution("train", [art("pa-in4")], [art("late")], pipeline="pa", started_at="2026-04-12T11:00:00.000000Z")
    )
    with CmfQuery(src) as q:
        every = q.artifacts()
        for kind in (None, "model", "dataset"):
            for pipeline in (None, "pa", "pb", "none"):
                full = q.artifacts(type=kind, pipeline=pipeline)
                for n in (1, 2, 3, 5, 8, 30, 500):
                    assert q.artifacts(type=kind, pipeline=pipeline, limit=n) == full[:n], (kind, pipeline, n)
    assert len(every) > 30


def test_a_fresh_clones_lineage_answers_before_the_index_exists_and_as_the_full_index(tmp_path: Path) -> None:
    src = make_repo(tmp_path / "src")
    made = _history(src)  # (noise: packs of other runs, tags and a retraction)
    raw, clean, model = art("raw"), art("clean"), art("model", "model")
    prep = execution("prep", [raw], [clean], started_at="2026-01-03T00:00:00.000000Z")
    train = execution("train", [clean], [model], started_at="2026-02-03T00:00:00.000000Z", site="site-b")
    evaluate = execution("eval", [model, raw], [], started_at="2026-03-03T00:00:00.000000Z")
    # Off the chain: a run that read the model and named another hash of it, and the run
    # that made that other hash; and a run that only read the raw data.
    other = execution("report", [art("model", "model", aliases=[art("model-v2")["hash"]])], [])
    export = execution("export", [], [art("model-v2", "model")], started_at="2026-02-09T00:00:00.000000Z")
    reader = execution("peek", [raw], [art("peek-out")], started_at="2026-03-05T00:00:00.000000Z")
    ids = _pack(src, "site-c", "2026-01.yaml", [prep, other]) + _pack(src, "site-c", "2026-02.yaml", [train, export])
    ids += _pack(src, "site-c", "2026-03.yaml", [evaluate, reader])
    git(src, "add", "-A")
    git(src, "commit", "-q", "-m", "a chain")
    prep_id, other_id, train_id, export_id, eval_id, reader_id = ids
    clone = _clone(src, tmp_path / "clone")
    index_file = clone / ".git/cmf/index.sqlite"
    asks = [
        ["lineage", eval_id[:12], "--format", "json"],
        ["lineage", eval_id[:10]],
        ["lineage", train_id[:12], "--up", "--depth", "1", "--format", "json"],
        ["lineage", made["site-a/4"][3][:12], "--format", "json"],
        ["lineage", "abcdef0123"],  # no such run
    ]
    first = {}
    for args in asks:
        proc = cmfgit(clone, *args, env=FAST, check=False)
        said = "".join(line for line in proc.stderr.splitlines(True) if "was not set up for cmfgit" not in line)
        first[" ".join(args)] = (proc.returncode, proc.stdout, said)
        assert not index_file.exists(), args  # answered without the full index
    found = json.loads(first[" ".join(asks[0])][1])
    names = json.dumps(found)
    assert all(rid in names for rid in (prep_id, train_id, export_id, eval_id)), names
    assert other_id not in names and reader_id not in names
    assert first["lineage abcdef0123"][0] != 0
    # An artifact hash prefix is not an execution: the full index answers that.
    cmfgit(clone, "lineage", art("clean")["hash"].split(":")[1][:12], env=FAST)
    assert index_file.exists()
    for args in asks:
        proc = cmfgit(clone, *args, check=False)
        assert (proc.returncode, proc.stdout, proc.stderr) == first[" ".join(args)], args
