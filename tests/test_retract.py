"""`cmfgit retract` and retraction records: withdrawn records stay withdrawn for every reader."""

from __future__ import annotations

import json
from pathlib import Path

import recgen
from conftest import cmfgit, git

import cmfgit as api
from cmfgit import canonical, extract, pack, retractions, schema
from cmfgit.errors import RecordError
from cmfgit.store import Store


def logged(path: Path, *args: str) -> list[str]:
    return [r["id"] for r in json.loads(cmfgit(path, "log", "--json", *args).stdout)]


def test_retraction_schema_is_strict() -> None:
    good = retractions.record(["b" * 64, "a" * 64], reason="bad data", site="lab", user="ana")
    schema.validate(good)
    assert good["ids"] == ["a" * 64, "b" * 64]  # sorted: the same withdrawal is the same record
    data, _rid = canonical.encode(good)
    assert retractions.is_retraction(data) and retractions.ids_in(data) == ["a" * 64, "b" * 64]
    assert retractions.ids_in(canonical.encode(recgen.execution(1))[0]) == []
    odd = retractions.record(["0" * 64, "0777" + "1" * 60, "1" * 64, "1e10" + "0" * 60])  # YAML 1.1 look-alikes
    data, _rid = canonical.encode(odd)
    assert retractions.ids_in(data) == odd["ids"]
    assert extract.load(data) == canonical.load(data) == odd  # the index's fast loader reads it as libyaml does
    for broken in (
        {**good, "ids": []},
        {**good, "ids": ["a" * 64, "a" * 64]},
        {**good, "ids": ["b" * 64, "a" * 64]},
        {**good, "ids": ["abc"]},
        {**good, "extra": 1},
        {k: v for k, v in good.items() if k != "at"},
    ):
        try:
            schema.validate(broken)
        except RecordError:
            continue
        raise AssertionError(f"accepted {broken}")


def test_retract_command_withdraws_from_every_reader_and_is_permanent(repo: Path) -> None:
    keep = recgen.write(repo, 1, 2)
    (gone,) = recgen.write(repo, 3)
    git(repo, "add", "-A", ".cmf")
    git(repo, "commit", "-qm", "runs")
    assert sorted(logged(repo)) == sorted([*keep, gone])

    out = cmfgit(repo, "retract", gone[:10], "--reason", "wrong dataset", "--commit")
    assert "retracted 1 record(s)" in out.stdout and "committed" in out.stdout
    assert sorted(logged(repo)) == sorted(keep)
    assert git(repo, "status", "--porcelain") == ""
    (added,) = git(repo, "show", "--name-only", "--format=", "HEAD").split()
    text = (repo / added).read_text()
    assert f"- {gone}\n" in text and "reason: wrong dataset\n" in text and "schema: cmfgit/retraction/1\n" in text

    shown = cmfgit(repo, "show", gone[:10], check=False)
    assert shown.returncode == 1 and "was retracted" in shown.stderr and "Traceback" not in shown.stderr
    assert "4 record(s) ok" in cmfgit(repo, "fsck").stdout  # the retraction is a valid record
    export = json.loads(cmfgit(repo, "export", "-P", "p").stdout)
    exported = [e for p in export["Pipeline"] for s in p["stages"] for e in s["executions"]]
    assert len(exported) == 2

    again = cmfgit(repo, "retract", gone, "--json")
    assert json.loads(again.stdout) == {"retraction": None, "retracted": [], "already_retracted": [gone]}
    (retraction_id,) = {rid for rid in Store(repo / ".cmf/objects").ids()} - {*keep, gone}
    refused = cmfgit(repo, "retract", retraction_id, check=False)
    assert refused.returncode == 2 and "permanent" in refused.stderr
    missing = cmfgit(repo, "retract", "abcdef12", check=False)
    assert missing.returncode == 1 and "no record matches" in missing.stderr
    elsewhere = "e" * 64  # a full id that this checkout lacks (a record of the global view, say)
    assert json.loads(cmfgit(repo, "retract", elsewhere, "--json").stdout)["retracted"] == [elsewhere]
    assert sorted(logged(repo, "--all-branches")) == sorted(keep)

    # Packing changes nothing: gc keeps the retraction (and the records it withdraws, hidden).
    cmfgit(repo, "gc")
    assert sorted(logged(repo)) == sorted(keep)
    assert len(Store(repo / ".cmf/objects").ids() - {*keep, gone, retraction_id}) == 1  # (the second retraction)
    (repo / ".git/cmf/index.sqlite").unlink()  # a fresh build agrees with the incremental one
    assert sorted(logged(repo)) == sorted(keep)

    # An older checkout, from before the retraction, shows the record again; back again, it is withdrawn.
    git(repo, "add", "-A", ".cmf")
    git(repo, "commit", "-qm", "gc")
    git(repo, "checkout", "-q", "HEAD~2")
    assert sorted(logged(repo)) == sorted([*keep, gone])
    git(repo, "checkout", "-q", "main")
    assert sorted(logged(repo)) == sorted(keep)


def test_retracted_runs_leave_lineage_tags_and_queries(repo: Path) -> None:
    (repo / "data.csv").write_text("a,b\n1,2\n")
    make_model = ["sh", "-c", "echo m > model.bin"]
    cmfgit(repo, "log-run", "-s", "prepare", "-i", "data.csv", "-o", "model.bin", "--", *make_model)
    (producer,) = logged(repo)
    cmfgit(repo, "tag", producer, "status=production")
    assert "status=production" in cmfgit(repo, "tag", producer).stdout
    lineage = json.loads(cmfgit(repo, "lineage", "model.bin", "--json").stdout)
    assert producer in json.dumps(lineage)

    assert api.retract(producer[:12], reason="leaked data", repo=repo) == [producer]
    assert logged(repo) == []
    assert producer not in cmfgit(repo, "lineage", "model.bin", "--json", check=False).stdout
    assert json.loads(cmfgit(repo, "pipelines", "--json").stdout) == []
    from cmfgit.query import CmfQuery
    from cmfgit.repo import find_repo

    with CmfQuery(find_repo(repo)) as q:
        assert q.get_all_artifacts() == []  # no execution names model.bin any more
        assert q.get_pipeline_names() == []


def test_pack_readers_and_live_ids_agree(repo: Path) -> None:
    ids = recgen.write(repo, *range(6))
    store = Store(repo / ".cmf/objects")
    rid = store.put(retractions.record(ids[:2]))
    assert retractions.retracted(store) == set(ids[:2])
    assert retractions.live_ids(store) == set(ids[2:])
    cmfgit(repo, "gc")
    assert retractions.live_ids(store) == set(ids[2:])
    packed = {i for p in store.pack_paths() for i in pack.parse(p.read_bytes())}
    assert set(ids) <= packed and rid in store.ids()  # (the retraction, alone in its pack, stays loose)
    assert sorted(logged(repo)) == sorted(ids[2:])


def test_retractions_travel_through_push_the_global_view_and_pull(tmp_path: Path) -> None:
    from sites import clone_site, loose_ids, push, record, seed_remote

    _bare, url = seed_remote(tmp_path)
    lab = clone_site(tmp_path, url, "lab")
    runs = [record(lab, "wine", "train", params={"i": i}) for i in range(3)]
    push(lab)
    edge = clone_site(tmp_path, url, "edge", branch="site/edge")
    cmfgit(edge, "pull", "-P", "wine")
    assert sorted(logged(edge)) == sorted(runs)
    cmfgit(edge, "retract", runs[0], "--reason", "mislabelled")
    push(edge)  # commits the retraction and publishes it

    # The global view holds the record (lab's ref) and its retraction (edge's): it is withdrawn there.
    cmfgit(lab, "pull")
    assert sorted(logged(lab, "--global")) == sorted(runs[1:])
    assert sorted(logged(lab)) == sorted(runs[1:])  # the pull brought the retraction into lab's checkout
    fresh = clone_site(tmp_path, url, "fresh")
    cmfgit(fresh, "pull", "-P", "wine")
    pulled = loose_ids(fresh)  # main has lab's three runs; the pull adds the retraction
    assert set(runs) <= pulled and retractions.retracted(Store(fresh / ".cmf/objects")) == {runs[0]}
    assert sorted(logged(fresh)) == sorted(runs[1:])


def test_fsck_knows_retractions_and_names_a_bad_one(repo: Path) -> None:
    store = Store(repo / ".cmf/objects")
    (rid,) = recgen.write(repo, 1)
    store.put(retractions.record([rid], reason="ok"))
    assert "2 record(s) ok" in cmfgit(repo, "fsck").stdout
    bad = {**retractions.record([rid]), "ids": [rid, "0" * 64]}  # not sorted
    data, bad_id = canonical.encode(bad)
    store.put_bytes(bad_id, data)
    out = cmfgit(repo, "fsck", check=False)
    assert out.returncode == 1 and "ids: must be sorted, without duplicates" in out.stdout + out.stderr


def test_a_revert_of_a_packing_commit_merges_with_a_side_that_ran_gc_again(tmp_path: Path) -> None:
    """Packs are never rewritten: the other side's gc writes a pack of its own, so the revert's
    deletion of the first pack is no modify/delete conflict (it was one, and needed `git add`),
    and the retraction that the revert wrote keeps the reverted records withdrawn."""
    from sites import clone_site, seed_remote

    _bare, url = seed_remote(tmp_path)
    lab = clone_site(tmp_path, url, "lab", hooks=True)
    early = recgen.write(lab, 1, 2)
    git(lab, "add", "-A", ".cmf")
    git(lab, "commit", "-qm", "early runs")
    bad = recgen.write(lab, 3, 4)
    cmfgit(lab, "gc")  # this commit creates the pack
    git(lab, "add", "-A", ".cmf")
    git(lab, "commit", "-qm", "bad runs, packed")
    git(lab, "push", "-q", "origin", "main")

    edge = clone_site(tmp_path, url, "edge", hooks=True)
    later = recgen.write(edge, 5, 6)
    cmfgit(edge, "gc")  # a new pack of the same site and period: the first one is not touched
    git(edge, "add", "-A", ".cmf")
    git(edge, "commit", "-qm", "later runs")
    git(edge, "push", "-q", "origin", "main")

    git(lab, "revert", "--no-edit", "HEAD")  # deletes the pack; the post-commit hook writes the retraction
    assert sorted(logged(lab)) == sorted(early)
    plain = tmp_path / "plain"
    git(tmp_path, "clone", "-q", str(lab), str(plain))
    git(plain, "pull", "-q", "--no-rebase", "--no-edit", url, "main")  # plain git: no driver, no conflict
    assert git(plain, "ls-files", "-u") == "" and git(plain, "status", "--porcelain") == ""
    assert Store(plain / ".cmf/objects").ids() == {*early, *later}  # the reverted pack stays deleted

    cmfgit(lab, "pull")
    assert git(lab, "ls-files", "-u") == "" and not (lab / ".git/MERGE_HEAD").exists()
    assert sorted(logged(lab)) == sorted([*early, *later])
    assert not set(bad) & set(logged(lab))


def test_a_commit_of_a_loose_deletion_whose_record_a_pending_pack_holds_retracts_nothing(repo: Path) -> None:
    """gc moved committed loose records into a pack that is not committed yet; a commit
    of the deletions alone (what a racing `log-run --commit` once made) is no withdrawal:
    the working tree still holds the records, so neither hook may retract them."""
    ids = recgen.write(repo, 1, 2, 3)
    git(repo, "add", "-A", ".cmf")
    git(repo, "commit", "-qm", "runs")
    cmfgit(repo, "gc")
    assert not list((repo / ".cmf/objects").glob("??/*.yaml"))  # all three are in the (untracked) pack
    git(repo, "add", "-u", ".cmf/objects")  # the deletions only
    git(repo, "commit", "-qm", "deletions only")  # pre-commit would stage the pack: compare both hooks
    git(repo, "rm", "-q", "--cached", "-r", ".cmf/objects/pack")
    git(repo, "commit", "-q", "--no-verify", "-m", "the pack taken out again")  # post-commit alone sees this
    assert sorted(logged(repo)) == sorted(ids)
    assert not [p for p in (repo / ".cmf/objects").rglob("*.yaml") if b"cmfgit/retraction/1" in p.read_bytes()]
