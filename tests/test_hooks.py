"""The git hooks, end to end through real git commands."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import recgen
from conftest import cmfgit, git, make_repo

import cmfgit as api
from cmfgit import canonical, hooks
from cmfgit.repo import find_repo
from cmfgit.store import Store


def run_once(path: Path, stage: str = "train") -> str:
    with api.run(pipeline="p", stage=stage, repo=path, command=["train"]) as run:
        pass
    assert run.id is not None
    return run.id


def committed(path: Path, rev: str = "HEAD") -> set[str]:
    names = git(path, "ls-tree", "-r", "--name-only", rev, "--", ".cmf/objects").split()
    return {n.split("/")[-2] + n.split("/")[-1][:-5] for n in names if "/pack/" not in n}


def edit(path: Path, name: str = "README.md") -> None:
    with open(path / name, "a") as fh:
        fh.write("more\n")


def test_pending_records_ride_along_with_the_next_commit(repo: Path) -> None:
    first = run_once(repo)
    edit(repo)
    git(repo, "commit", "-qam", "code change")
    assert first in committed(repo)
    assert git(repo, "status", "--porcelain") == ""
    tree = json.loads(cmfgit(repo, "show", first, "--json").stdout)["git"]["tree"]
    assert f"refs/cmf/keep/{tree}" in git(repo, "for-each-ref", "refs/cmf/keep")  # post-commit kept it

    # `git commit --only PATH`: the record rides along, the user's other staged work stays staged.
    second = run_once(repo)
    (repo / "staged.txt").write_text("not yet\n")
    git(repo, "add", "staged.txt")
    edit(repo)
    git(repo, "commit", "-qm", "only the readme", "--", "README.md")
    assert second in committed(repo)
    assert "staged.txt" not in git(repo, "ls-tree", "--name-only", "HEAD")
    assert git(repo, "status", "--porcelain") == "A  staged.txt\n"


def tamper(path: Path) -> Path:
    (rid,) = recgen.write(path, 1)
    loose = Store(path / ".cmf" / "objects").loose_path(rid)
    loose.write_bytes(loose.read_bytes().replace(b"exit_code: 0", b"exit_code: 1"))
    return loose


def test_invalid_records_are_refused_at_commit_and_at_push(repo: Path, bare_repo: Path) -> None:
    git(repo, "remote", "add", "origin", str(bare_repo))
    git(repo, "push", "-q", "-u", "origin", "main")
    head = git(repo, "rev-parse", "HEAD")
    bad = tamper(repo)
    edit(repo)
    refused = subprocess.run(["git", "commit", "-qam", "x"], cwd=repo, capture_output=True, text=True)
    assert refused.returncode != 0
    assert "refusing to commit: 1 invalid record file(s)" in refused.stderr
    assert bad.name in refused.stderr and "does not match its id" in refused.stderr
    assert git(repo, "rev-parse", "HEAD") == head

    git(repo, "add", str(bad))
    git(repo, "commit", "-qam", "sneaked in", "--no-verify")
    pushed = subprocess.run(["git", "push", "-q", "origin", "main"], cwd=repo, capture_output=True, text=True)
    assert pushed.returncode != 0
    assert "refusing to push" in pushed.stderr and bad.name in pushed.stderr
    assert git(bare_repo, "rev-parse", "main") == head

    git(repo, "rm", "-q", str(bad))
    git(repo, "commit", "-qm", "drop the bad record")
    git(repo, "push", "-q", "origin", "main")


def test_existing_user_hooks_still_run(tmp_path: Path, bare_repo: Path) -> None:
    repo = make_repo(tmp_path / "r", init_cmfgit=False)
    log = tmp_path / "hook.log"
    user_hook = f"#!/bin/sh\necho pre-commit >> {log}\nexit ${{FAIL:-0}}\n"
    (repo / ".git/hooks/pre-commit").write_text(user_hook)
    (repo / ".git/hooks/pre-push").write_text(f"#!/bin/sh\necho pre-push $1 >> {log}\ncat >> {log}\n")
    for name in ("pre-commit", "pre-push"):
        os.chmod(repo / ".git/hooks" / name, 0o755)
    out = cmfgit(repo, "init").stdout
    assert "hook pre-commit (the existing hook runs first, as pre-commit.legacy)" in out
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "cmfgit init")
    rid = run_once(repo)
    edit(repo)
    git(repo, "commit", "-qam", "with a record")
    assert rid in committed(repo)
    assert log.read_text().count("pre-commit") == 2

    edit(repo)
    failing = subprocess.run(["git", "commit", "-qam", "x"], cwd=repo, env={**os.environ, "FAIL": "1"})
    assert failing.returncode != 0  # the user's hook still vetoes

    git(repo, "remote", "add", "origin", str(bare_repo))
    git(repo, "push", "-q", "origin", "main")
    head = git(repo, "rev-parse", "HEAD").strip()
    assert f"pre-push origin\nrefs/heads/main {head} refs/heads/main " in log.read_text()  # stdin forwarded

    states = json.loads(cmfgit(repo, "hooks", "status", "--json").stdout)
    assert {s["name"]: (s["state"], s["legacy"]) for s in states}["pre-commit"] == ("installed", True)
    cmfgit(repo, "hooks", "uninstall")
    assert (repo / ".git/hooks/pre-commit").read_text() == user_hook
    assert not (repo / ".git/hooks/post-commit").exists()
    cmfgit(repo, "log")  # auto-configuration does not undo an uninstall
    assert not (repo / ".git/hooks/post-commit").exists()
    assert "installed  hook post-commit" in cmfgit(repo, "hooks", "install").stdout
    assert "already installed" in cmfgit(repo, "hooks", "install").stdout


def test_core_hooks_path_is_honoured(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", init_cmfgit=False)
    git(repo, "config", "core.hooksPath", ".githooks")
    cmfgit(repo, "init")
    assert hooks.MARKER in (repo / ".githooks/pre-commit").read_text()
    assert not (repo / ".git/hooks/pre-commit").exists()
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "init")
    rid = run_once(repo)
    edit(repo)
    git(repo, "commit", "-qam", "code")
    assert rid in committed(repo)


def test_git_worktree_works(repo: Path, tmp_path: Path) -> None:
    wt = tmp_path / "wt"
    git(repo, "worktree", "add", "-q", "-b", "side", str(wt))
    assert all(s.ok for s in hooks.status(find_repo(wt)))
    rid = run_once(wt)
    edit(wt)
    git(wt, "commit", "-qam", "in the worktree")
    assert rid in committed(wt, "side")
    assert rid not in committed(repo, "main") and not Store(repo / ".cmf/objects").ids()
    assert git(wt, "status", "--porcelain") == ""
    tree = json.loads(cmfgit(wt, "show", rid, "--json").stdout)["git"]["tree"]
    assert f"refs/cmf/keep/{tree}" in git(repo, "for-each-ref", "refs/cmf/keep")


def test_no_verify_breaks_nothing_later(repo: Path, bare_repo: Path) -> None:
    git(repo, "remote", "add", "origin", str(bare_repo))
    rid = run_once(repo)
    edit(repo)
    git(repo, "commit", "-qam", "skip hooks", "--no-verify")
    assert rid not in committed(repo)  # still pending, not lost
    assert "?? .cmf/objects/" in git(repo, "status", "--porcelain", "--untracked-files=normal")
    edit(repo)
    git(repo, "commit", "-qam", "with hooks")
    assert rid in committed(repo)
    git(repo, "push", "-q", "-u", "origin", "main")
    assert "1 record(s) ok" in cmfgit(repo, "fsck").stdout


def code_versions(path: Path) -> set[str]:
    found: set[str] = set()
    for stored in Store(path / ".cmf" / "objects").iter_records():
        state = canonical.load(stored.data)["git"]
        found |= {state["commit"], state["tree"]}
    return found - {None}


def test_code_versions_stay_resolvable_after_amend_rebase_and_squash(repo: Path) -> None:
    git(repo, "checkout", "-qb", "work")
    for i in range(3):
        (repo / f"step{i}.py").write_text(f"print({i})\n")
        git(repo, "add", f"step{i}.py")
        git(repo, "commit", "-qm", f"step {i}")
        cmfgit(repo, "log-run", "-q", "-s", f"clean{i}", "--", "true")
        (repo / f"step{i}.py").write_text(f"print({i}, 'dirty')\n")
        cmfgit(repo, "log-run", "-q", "-s", f"dirty{i}", "--", "true")  # its tree is a snapshot
        git(repo, "commit", "-qam", f"step {i} (dirty edit)")
    git(repo, "commit", "-q", "--amend", "-m", "amended")
    git(repo, "checkout", "-q", "main")
    edit(repo)
    git(repo, "commit", "-qam", "main moves on")
    git(repo, "checkout", "-q", "work")
    squash = {
        **os.environ,
        "GIT_EDITOR": "true",
        "GIT_SEQUENCE_EDITOR": "sed -i -e '2s/^pick/squash/' -e '4s/^pick/fixup/'",
    }
    done = subprocess.run(["git", "rebase", "-q", "-i", "main"], cwd=repo, env=squash, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert len(git(repo, "log", "--oneline", "main..work").splitlines()) == 4

    git(repo, "reflog", "expire", "--expire=now", "--all")
    git(repo, "gc", "-q", "--prune=now")
    versions = code_versions(repo)
    assert len(versions) >= 9  # 3 commits + 3 clean trees + 3 snapshot trees at least
    missing = [v for v in versions if subprocess.run(["git", "cat-file", "-e", v], cwd=repo).returncode != 0]
    assert not missing


def test_hooks_do_nothing_without_cmf_or_during_a_merge(repo: Path, tmp_path: Path) -> None:
    shared = repo / ".git/hooks"
    plain = make_repo(tmp_path / "plain", init_cmfgit=False)
    git(plain, "config", "core.hooksPath", str(shared))
    edit(plain)
    done = subprocess.run(["git", "commit", "-qam", "x"], cwd=plain, capture_output=True, text=True)
    assert done.returncode == 0 and done.stderr == ""
    assert not (plain / ".cmf").exists()

    git(repo, "checkout", "-qb", "other")
    (repo / "README.md").write_text("theirs\n")
    git(repo, "commit", "-qam", "theirs")
    git(repo, "checkout", "-q", "main")
    (repo / "README.md").write_text("ours\n")
    git(repo, "commit", "-qam", "ours")
    assert subprocess.run(["git", "merge", "-q", "other"], cwd=repo, capture_output=True).returncode != 0
    rid = run_once(repo)
    (repo / "README.md").write_text("both\n")
    git(repo, "add", "README.md")
    git(repo, "commit", "-q", "--no-edit")
    assert rid not in committed(repo)  # the merge commit holds only the merge
    edit(repo)
    git(repo, "commit", "-qam", "next")
    assert rid in committed(repo)


def test_pre_commit_framework_entry_checks_the_index(repo: Path) -> None:
    bad = tamper(repo)
    git(repo, "add", str(bad))
    refused = cmfgit(repo, "hook", "verify-staged", check=False)
    assert refused.returncode == 1 and bad.name in refused.stderr
    git(repo, "rm", "-q", "--cached", str(bad))
    assert cmfgit(repo, "hook", "verify-staged").returncode == 0


def without_python(path: Path, *names: str) -> None:
    """Point installed hooks at a missing interpreter: a hook that needs Python then says so on stderr."""
    for name in names:
        hook = path / ".git/hooks" / name
        text = hook.read_text()
        hook.write_text("\n".join("PY=/nonexistent/python" if ln.startswith("PY=") else ln for ln in text.split("\n")))


def needed_python(done: subprocess.CompletedProcess[str], name: str) -> bool:
    return f"cmfgit's {name} hook is skipped" in done.stderr


def test_hooks_with_nothing_to_do_do_not_start_python(repo: Path) -> None:
    without_python(repo, "pre-commit", "post-commit", "post-checkout", "post-merge")
    edit(repo)
    done = subprocess.run(["git", "commit", "-qam", "code only"], cwd=repo, capture_output=True, text=True)
    assert done.returncode == 0
    assert not needed_python(done, "pre-commit") and not needed_python(done, "post-commit"), done.stderr
    done = subprocess.run(["git", "checkout", "-qb", "side"], cwd=repo, capture_output=True, text=True)
    assert done.returncode == 0 and not needed_python(done, "post-checkout"), done.stderr

    run_once(repo)  # a pending record: pre-commit has work
    edit(repo)
    done = subprocess.run(["git", "commit", "-qam", "with a record"], cwd=repo, capture_output=True, text=True)
    assert needed_python(done, "pre-commit")

    (repo / ".git/cmf").mkdir(exist_ok=True)
    (repo / ".git/cmf/index.sqlite").write_bytes(b"")  # an index to refresh: post-checkout has work
    done = subprocess.run(["git", "checkout", "-q", "main"], cwd=repo, capture_output=True, text=True)
    assert needed_python(done, "post-checkout")


def tree_of(path: Path, rid: str) -> str:
    tree: str = Store(path / ".cmf/objects").get(rid)[1]["git"]["tree"]
    return tree


def test_post_commit_creates_the_keep_refs_that_pre_commit_left(repo: Path) -> None:
    state = repo / ".git/cmf"
    first = run_once(repo)
    tree = tree_of(repo, first)
    hook = repo / ".git/hooks/commit-msg"
    hook.write_text("#!/bin/sh\nexit 1\n")  # the commit is refused after pre-commit ran
    hook.chmod(0o755)
    edit(repo)
    assert subprocess.run(["git", "commit", "-qam", "refused"], cwd=repo, capture_output=True).returncode != 0
    assert (state / "post-commit.diff").exists()
    assert tree not in git(repo, "for-each-ref", "refs/cmf/keep")  # nothing kept for a commit that was not made
    hook.unlink()

    without_python(repo, "post-commit")
    done = subprocess.run(["git", "commit", "-qam", "made"], cwd=repo, capture_output=True, text=True)
    assert done.returncode == 0 and not needed_python(done, "post-commit"), done.stderr
    assert first in committed(repo)
    assert f"refs/cmf/keep/{tree}" in git(repo, "for-each-ref", "refs/cmf/keep")
    assert not (state / "post-commit.diff").exists() and not (state / "post-commit.refs").exists()
    assert not (state / "index.sqlite").exists()  # (with an index, post-commit starts Python to refresh it)

    # --no-verify: no pre-commit, so post-commit finds the commit's records itself (with Python).
    cmfgit(repo, "hooks", "install")
    (repo / "model.py").write_text("v = 3\n")  # another tree for the next run
    git(repo, "add", "model.py")
    git(repo, "commit", "-qm", "model", "--no-verify")
    second = run_once(repo)
    other_tree = tree_of(repo, second)
    assert other_tree != tree
    git(repo, "add", ".cmf/objects")
    git(repo, "commit", "-qm", "record", "--no-verify")
    assert f"refs/cmf/keep/{other_tree}" in git(repo, "for-each-ref", "refs/cmf/keep")


def test_pre_commit_still_packs_past_the_threshold_with_nothing_pending(repo: Path) -> None:
    config = repo / ".cmf/config.yaml"
    config.write_text(config.read_text().replace("threshold: 1000", "threshold: 2"))
    git(repo, "commit", "-qam", "gc threshold 2")
    recgen.write(repo, 1, 2, 3)
    git(repo, "add", ".cmf/objects")
    git(repo, "commit", "-qm", "three loose records", "--no-verify")
    edit(repo)
    git(repo, "commit", "-qam", "code")  # nothing pending, but 3 loose records > 2: the hook packs them
    assert git(repo, "ls-files", ".cmf/objects").count("pack/") == 1
    assert git(repo, "status", "--porcelain") == ""
