"""cmfgit push and pull against real bare remotes over file:// URLs."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import cmfgit, git
from sites import clone_site, isolate, pull, push, record, records_at, seed_remote, stored_ids

from cmfgit.localview import ArtifactKey, Selection
from cmfgit.schema import utc_now

GLOBAL = "cmf/global"


def test_push_commits_pending_and_updates_global(tmp_path: Path) -> None:
    bare, url = seed_remote(tmp_path)
    site = clone_site(tmp_path, url, "lab")
    ids = {record(site, "wine", "prepare", outputs={"data.csv": "a,b\n"}), record(site, "wine", "train")}
    (site / "notes.txt").write_text("work in progress\n")
    git(site, "add", "notes.txt")  # the user's staged work must stay staged, uncommitted

    out = cmfgit(site, "push").stdout
    assert "committed  2 pending record(s)" in out
    assert "branch     main -> origin/main: pushed" in out
    assert "global     origin/cmf/global: +2 record(s), 2 record(s) in the view" in out

    assert set(records_at(bare, "main")) == ids
    assert set(records_at(bare, GLOBAL)) == ids
    assert git(site, "diff", "--cached", "--name-only").split() == ["notes.txt"]
    assert "notes.txt" not in git(site, "show", "--name-only", "--format=", "HEAD")
    # The clone's copy of the global branch is in step with the remote.
    assert git(site, "rev-parse", f"origin/{GLOBAL}") == git(bare, "rev-parse", GLOBAL)
    # Nothing new: the branch and the global view are both up to date, and no new global commit.
    again = cmfgit(site, "push").stdout
    assert "origin/main: up to date" in again and "already up to date, 2 record(s)" in again
    assert git(bare, "rev-list", "--count", GLOBAL).strip() == "1"


def test_push_new_branch_sets_upstream(tmp_path: Path) -> None:
    bare, url = seed_remote(tmp_path)
    site = clone_site(tmp_path, url, "edge", branch="site/edge")
    rid = record(site, "wine", "evaluate")
    result = push(site)
    assert (result.branch, result.destination, result.pushed) == ("site/edge", "site/edge", True)
    assert git(site, "config", "branch.site/edge.merge").strip() == "refs/heads/site/edge"
    assert set(records_at(bare, "site/edge")) == {rid}
    assert records_at(bare, "main") == {}
    assert set(records_at(bare, GLOBAL)) == {rid}


def test_push_when_remote_moved_merges_and_retries(tmp_path: Path) -> None:
    bare, url = seed_remote(tmp_path)
    a = clone_site(tmp_path, url, "a")
    b = clone_site(tmp_path, url, "b")
    from_a = {record(a, "p", "s", params={"i": i}) for i in range(3)}
    from_b = {record(b, "p", "s", params={"i": 10 + i}) for i in range(2)}
    push(a)
    result = push(b)  # non-fast-forward: fetch, merge via the driver, push again
    assert (result.pushed, result.merges, result.committed) == (True, 1, 2)
    assert result.global_update is not None and result.global_update.added == 2
    assert set(records_at(bare, "main")) == from_a | from_b
    assert set(records_at(bare, GLOBAL)) == from_a | from_b
    parents = git(b, "log", "-1", "--format=%P", "main").split()
    assert len(parents) == 2  # a real merge commit
    assert cmfgit(b, "fsck").returncode == 0


def test_push_with_nothing_pending_still_updates_global(tmp_path: Path) -> None:
    bare, url = seed_remote(tmp_path)
    site = clone_site(tmp_path, url, "lab")
    rid = record(site, "p", "s")
    git(site, "add", ".cmf")
    git(site, "commit", "-q", "-m", "records")
    git(site, "push", "-q", "origin", "main")  # a plain git push: no global view yet
    assert git(bare, "rev-parse", "--verify", "--quiet", GLOBAL, check=False) == ""
    result = push(site)
    assert (result.commit, result.pushed) == (None, False)
    assert result.global_update is not None and result.global_update.updated
    assert set(records_at(bare, GLOBAL)) == {rid}
    # A deleted global branch is rebuilt from scratch (the lease expects it absent).
    git(bare, "update-ref", "-d", f"refs/heads/{GLOBAL}")
    push(site)
    assert set(records_at(bare, GLOBAL)) == {rid}


def test_a_code_conflict_still_publishes_the_metadata_and_leaves_the_tree_alone(tmp_path: Path) -> None:
    bare, url = seed_remote(tmp_path)
    a = clone_site(tmp_path, url, "a")
    b = clone_site(tmp_path, url, "b")
    for site, text in ((a, "from a\n"), (b, "from b\n")):
        (site / "README.md").write_text(text)
        git(site, "commit", "-q", "-am", "edit readme")
    rid = record(b, "p", "s")
    push(a)
    (b / "scratch.txt").write_text("untracked work\n")
    before = git(b, "status", "--porcelain", "--", ":!.cmf")
    proc = cmfgit(b, "push", check=False)
    # The branch is not pushed (exit 1, like git push with a rejected ref), and the message says what to do.
    assert proc.returncode == 1
    assert "branch main not pushed (your metadata is published)" in proc.stderr
    assert "conflict with yours in README.md" in proc.stderr
    assert "run 'git pull origin main', resolve and commit, then 'cmfgit push'" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert "branch     main -> origin/main: NOT pushed" in proc.stdout
    assert "site       origin refs/cmf/sites/b: +1 record(s), 1 in the site ref" in proc.stdout
    # The working tree is as it was: no merge in progress, no markers, the same status.
    assert not (b / ".git" / "MERGE_HEAD").exists()
    assert (b / "README.md").read_text() == "from b\n"
    assert git(b, "status", "--porcelain", "--", ":!.cmf") == before
    # The metadata is published: the site ref and cmf/global hold the record, main does not.
    assert rid in records_at(bare, "refs/cmf/sites/b") and rid in records_at(bare, GLOBAL)
    assert rid not in records_at(bare, "main")
    reader = clone_site(tmp_path, url, "reader")
    pull(reader)
    assert rid in stored_ids(reader)
    # Resolving as told gets the branch pushed too.
    git(b, "pull", "-q", "--no-rebase", "origin", "main", check=False)
    (b / "README.md").write_text("from a and b\n")
    git(b, "commit", "-q", "-am", "merge")
    again = cmfgit(b, "push")
    assert "branch     main -> origin/main: pushed" in again.stdout
    assert rid in records_at(bare, "main")


def test_push_and_pull_errors(tmp_path: Path) -> None:
    _bare, url = seed_remote(tmp_path)
    site = clone_site(tmp_path, url, "lab")
    bad = cmfgit(site, "push", "nowhere", check=False)
    assert bad.returncode == 2 and "no remote named 'nowhere'" in bad.stderr
    git(site, "checkout", "-q", "--detach")
    detached = cmfgit(site, "push", check=False)
    assert detached.returncode == 1 and "HEAD is detached" in detached.stderr  # the clone's state, not the command line
    since = cmfgit(site, "pull", "--since", "last tuesday", check=False)
    assert since.returncode == 2 and "--since: 'last tuesday' is not a date" in since.stderr
    alone = tmp_path / "alone"
    git(tmp_path, "init", "-q", str(alone))
    cmfgit(alone, "init")
    none = cmfgit(alone, "pull", check=False)
    assert none.returncode == 1 and "has no remote" in none.stderr  # exit 2 is for a bad command line only
    pushed = cmfgit(alone, "push", check=False)
    assert pushed.returncode == 1 and "has no remote" in pushed.stderr
    for proc in (bad, detached, since, none, pushed):
        assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Two sites on their own branches, pushed: a lineage chain and unrelated runs.

    wine:    prepare (raw.csv -> train.csv) -> train (train.csv -> model.bin)
             train-other (train.csv -> other.bin), unused downstream
    serve:   evaluate (model.bin -> score.json), at the edge
    sensors: collect (-> readings.csv), at the edge, after ``cut``
    """
    tmp = tmp_path_factory.mktemp("world")
    with pytest.MonkeyPatch.context() as mp:
        isolate(mp, tmp)
        bare, url = seed_remote(tmp)
        lab = clone_site(tmp, url, "lab", branch="site/lab")
        (lab / "raw.csv").write_text("raw\n")
        ids = {
            "prepare": record(lab, "wine", "prepare", inputs=("raw.csv",), outputs={"train.csv": "t\n"}),
            "train": record(lab, "wine", "train", inputs=("train.csv",), outputs={"model.bin": "m1\n"}),
            "other": record(lab, "wine", "train", inputs=("train.csv",), outputs={"other.bin": "m2\n"}),
        }
        push(lab)
        edge = clone_site(tmp, url, "edge", branch="site/edge")
        (edge / "model.bin").write_text("m1\n")  # the deployed model: same bytes, same hash
        ids["evaluate"] = record(edge, "serve", "evaluate", inputs=("model.bin",), outputs={"score.json": "{}\n"})
        # Start the cut on a fresh second, so that a whole-second --since (as a user types
        # it) separates the records made before it from those made after.
        time.sleep(1.01 - time.time() % 1)
        cut = utc_now()
        ids["collect"] = record(edge, "sensors", "collect", outputs={"readings.csv": "r\n"})
        push(edge)
    return {"tmp": tmp, "url": url, "bare": bare, "ids": ids, "cut": cut}


def _pull_into(world: dict[str, object], name: str, *args: str) -> tuple[Path, set[str], str]:
    tmp = world["tmp"]
    assert isinstance(tmp, Path)
    clone = clone_site(tmp, str(world["url"]), name)  # main: code only, no records
    assert stored_ids(clone) == set()
    out = cmfgit(clone, "pull", *args).stdout
    ids = world["ids"]
    assert isinstance(ids, dict)
    by_id = {v: k for k, v in ids.items()}
    return clone, {by_id[r] for r in stored_ids(clone)}, out


def test_pull_with_no_filter_brings_the_whole_view(world: dict[str, object]) -> None:
    clone, got, out = _pull_into(world, "everything")
    assert got == {"prepare", "train", "other", "evaluate", "collect"}
    assert "origin/cmf/global: 5 record(s), all selected" in out and "5 new record(s) written" in out
    # Pending, not committed; valid; and 'cmfgit push' commits them (on a branch of its own,
    # so main stays free of records for the other tests of this module).
    assert ".cmf/objects/" in git(clone, "status", "--porcelain", "--untracked-files=all")
    assert cmfgit(clone, "fsck").returncode == 0
    assert "0 new record(s) written" in cmfgit(clone, "pull").stdout  # idempotent
    git(clone, "checkout", "-q", "-b", "everything")
    assert "committed  5 pending record(s)" in cmfgit(clone, "push").stdout


def _ids(world: dict[str, object]) -> dict[str, str]:
    ids = world["ids"]
    assert isinstance(ids, dict)
    return ids


def _path(key: str) -> ArtifactKey:
    return ArtifactKey(key, path=key)


@pytest.mark.parametrize(
    ("name", "selection", "expected"),
    [
        ("by-pipeline", Selection(pipelines=("sensors",)), {"collect"}),
        ("two-pipelines", Selection(pipelines=("sensors", "serve")), {"collect", "evaluate"}),
        ("by-path", Selection(artifacts=(_path("train.csv"),)), {"prepare", "train", "other"}),
        ("since", Selection(since="CUT"), {"collect"}),
        ("since-and-pipeline", Selection(since="CUT", pipelines=("serve",)), set()),
        ("lineage", Selection(pipelines=("serve",), with_lineage=True), {"evaluate", "train", "prepare"}),
        ("no-lineage", Selection(pipelines=("serve",)), {"evaluate"}),
        ("path-lineage", Selection(artifacts=(_path("other.bin"),), with_lineage=True), {"other", "prepare"}),
    ],
)
def test_pull_filters(world: dict[str, object], name: str, selection: Selection, expected: set[str]) -> None:
    if selection.since == "CUT":
        selection = replace(selection, since=str(world["cut"]))
    tmp = world["tmp"]
    assert isinstance(tmp, Path)
    clone = clone_site(tmp, str(world["url"]), name)  # main: code only, no records
    result = pull(clone, selection)
    by_id = {v: k for k, v in _ids(world).items()}
    assert {by_id[r] for r in stored_ids(clone)} == expected
    assert (result.view_records, result.selected, result.written) == (5, len(expected), len(expected))


def test_pull_filters_from_the_command_line(world: dict[str, object]) -> None:
    cut = str(world["cut"])
    _clone, got, out = _pull_into(world, "cli-since", "--since", cut[:19] + "Z", "-P", "sensors", "-P", "wine")
    assert got == {"collect"} and "5 record(s), 1 match" in out
    _clone, got, _ = _pull_into(world, "cli-lineage", "-P", "serve", "--with-lineage")
    assert got == {"evaluate", "train", "prepare"}


def test_pull_by_artifact_hash_and_by_local_file(world: dict[str, object]) -> None:
    tmp = world["tmp"]
    assert isinstance(tmp, Path)
    from blake3 import blake3

    model = "blake3:" + blake3(b"m1\n").hexdigest()
    clone, got, _ = _pull_into(world, "by-hash", "--artifact", model)
    assert got == {"train", "evaluate"}
    # A bare hex prefix of the hash works too, and --with-lineage walks up from the consumers.
    clone2, got2, _ = _pull_into(world, "by-prefix", "--artifact", model[7:19], "--with-lineage")
    assert got2 == {"train", "evaluate", "prepare"}
    # A path that exists here is hashed: the local file's bytes name the artifact.
    clone3 = clone_site(tmp, str(world["url"]), "by-file")
    (clone3 / "mine.bin").write_text("m2\n")
    cmfgit(clone3, "pull", "--artifact", "mine.bin")
    ids = world["ids"]
    assert isinstance(ids, dict)
    assert stored_ids(clone3) == {ids["other"]}


def test_pull_merges_the_branch_despite_pending_copies(tmp_path: Path) -> None:
    """Records pulled from the global view are pending files; a later pull of a
    branch that carries the same records must not trip over them."""
    bare, url = seed_remote(tmp_path)
    a = clone_site(tmp_path, url, "a")
    b = clone_site(tmp_path, url, "b")
    rid = record(a, "p", "s")
    push(a)  # main now has rid, and so does the global view
    git(b, "checkout", "-q", "-b", "side")
    assert pull(b).written == 1  # side does not exist remotely: only the global view
    assert stored_ids(b) == {rid}
    git(b, "checkout", "-q", "main")  # the pending record comes along, untracked
    # Another date: within the same second, b's commit of the record would be the very
    # commit a pushed (same tree, parent, message and identity), leaving nothing to merge.
    later = {"GIT_AUTHOR_DATE": "2030-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2030-01-01T00:00:00Z"}
    out = cmfgit(b, "pull", env=later).stdout
    assert "committed  1 pending record(s) before merging" in out and "main: merged new commits" in out
    assert set(records_at(b, "HEAD")) == {rid}
    assert git(b, "status", "--porcelain") == ""
    assert set(records_at(bare, "main")) == {rid}


def test_push_refused_by_the_pre_push_hook_says_why(tmp_path: Path) -> None:
    bare, url = seed_remote(tmp_path)
    site = clone_site(tmp_path, url, "lab", hooks=True)
    rid = record(site, "p", "s")
    path = site / ".cmf" / "objects" / rid[:2] / f"{rid[2:]}.yaml"
    path.write_bytes(path.read_bytes().replace(b"stage: s", b"stage: t"))  # a hand edit
    git(site, "add", ".cmf")
    git(site, "commit", "-q", "--no-verify", "-m", "sneak a bad record past pre-commit")
    proc = cmfgit(site, "push", check=False)
    assert proc.returncode == 1
    assert "push refused by the pre-push hook: refusing to push" in proc.stderr
    assert git(bare, "rev-parse", "--verify", "--quiet", "cmf/global", check=False) == ""
    assert records_at(bare, "main") == {}


def test_push_names_what_it_commits_when_it_is_not_records(tmp_path: Path, bare_repo: Path) -> None:
    """A first push after 'cmfgit init' commits cmfgit's settings, and says so."""
    site = tmp_path / "site"
    site.mkdir()
    git(site, "init", "-q", "-b", "main")
    git(site, "remote", "add", "origin", str(bare_repo))
    cmfgit(site, "init", "--site", "lab")
    (site / "README.md").write_text("code\n")
    git(site, "add", "README.md")
    git(site, "commit", "-q", "-m", "code only")
    out = cmfgit(site, "push").stdout
    assert "committed  pending settings in" in out
    assert git(site, "log", "-1", "--format=%s").strip() == "cmfgit: settings"
    assert set(git(site, "show", "--name-only", "--format=", "HEAD").split()) == {".cmf/config.yaml", ".cmf/.gitignore"}
