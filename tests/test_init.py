"""``cmfgit init``: what it creates, idempotence, fresh clones, the site name."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from conftest import cmfgit, git, make_repo

from cmfgit import canonical

ATTRIBUTES_LINE = ".cmf/objects/** merge=cmfgit linguist-generated=true"


def state(repo: Path) -> dict[str, bytes]:
    """Every file init may touch, with its bytes."""
    paths = [repo / ".gitattributes", repo / ".git" / "config"]
    paths += sorted(p for p in (repo / ".cmf").rglob("*") if p.is_file())
    paths += sorted(p for p in (repo / ".git" / "hooks").iterdir() if not p.name.endswith(".sample"))
    return {str(p.relative_to(repo)): p.read_bytes() for p in paths if p.is_file()}


def test_init_creates_config_ignore_attributes_and_driver(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", init_cmfgit=False)
    (repo / ".gitattributes").write_text("*.png binary")  # no final newline: init must not glue lines
    proc = cmfgit(repo, "init", "--site", "lab-1", "--pipeline", "wine")
    assert "created    .cmf/config.yaml" in proc.stdout

    config = canonical.load((repo / ".cmf" / "config.yaml").read_bytes())
    assert config["schema"] == "cmfgit/config/1"
    assert config["pipeline"] == "wine"
    assert canonical.dump(config) == (repo / ".cmf" / "config.yaml").read_bytes()  # canonical
    assert ".tmp-*" in (repo / ".cmf" / ".gitignore").read_text().splitlines()
    attributes = (repo / ".gitattributes").read_text().splitlines()
    assert attributes[0] == "*.png binary"
    assert attributes.count(ATTRIBUTES_LINE) == 1
    assert git(repo, "check-attr", "merge", "--", ".cmf/objects/ab/cd.yaml").strip().endswith("merge: cmfgit")
    driver = git(repo, "config", "merge.cmfgit.driver").strip()
    # This interpreter first; else cmfgit on PATH, else python3 -m cmfgit (tests/test_issue9_small.py).
    assert driver.startswith((f"PY={sys.executable}; ", f"PY='{sys.executable}'; "))
    assert 'exec "$PY" -m cmfgit merge-driver %O %A %B %L %P;' in driver
    assert git(repo, "config", "cmfgit.site").strip() == "lab-1"
    assert (repo / ".cmf" / "objects").is_dir()

    # Records carry the site; $CMFGIT_SITE overrides it for one run.
    cmfgit(repo, "log-run", "-s", "a", "--", "true")
    cmfgit(repo, "log-run", "-s", "b", "--", "true", env={"CMFGIT_SITE": "edge-7"})
    sites = {r["stage"]: (r["site"], r["pipeline"]) for r in json.loads(cmfgit(repo, "log", "--json").stdout)}
    assert sites == {"a": ("lab-1", "wine"), "b": ("edge-7", "wine")}


def test_init_is_idempotent(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", init_cmfgit=False)
    cmfgit(repo, "init", "--site", "lab")
    first = state(repo)
    again = cmfgit(repo, "init", "--site", "lab")
    assert "already set up" in again.stdout
    assert state(repo) == first
    # From a subdirectory too: the repository root is found, nothing is added there.
    (repo / "src").mkdir()
    cmfgit(repo / "src", "init")
    assert state(repo) == first
    assert not (repo / "src" / ".cmf").exists()
    # A new site name is the only change.
    cmfgit(repo, "init", "--site", "lab-2")
    changed = state(repo)
    assert {k for k in first if first[k] != changed[k]} == {".git/config"}
    assert git(repo, "config", "cmfgit.site").strip() == "lab-2"
    # A new default pipeline changes only that setting in the config.
    before = canonical.load((repo / ".cmf" / "config.yaml").read_bytes())
    assert "default pipeline 'wine'" in cmfgit(repo, "init", "--pipeline", "wine").stdout
    after = canonical.load((repo / ".cmf" / "config.yaml").read_bytes())
    assert after == {**before, "pipeline": "wine"}
    assert "already set up" in cmfgit(repo, "init", "--pipeline", "wine").stdout


def test_init_in_a_fresh_clone(tmp_path: Path, bare_repo: Path) -> None:
    origin = make_repo(tmp_path / "origin", site="origin-site")
    cmfgit(origin, "log-run", "--commit", "-s", "a", "--", "true")
    git(origin, "remote", "add", "origin", str(bare_repo))
    git(origin, "push", "-q", "origin", "main")

    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(bare_repo), str(clone))
    committed = {p: (clone / p).read_bytes() for p in (".gitattributes", ".cmf/config.yaml", ".cmf/.gitignore")}
    cmfgit(clone, "init", "--site", "clone-site")
    # Committed files are untouched, the driver and site are configured per clone.
    assert {p: (clone / p).read_bytes() for p in committed} == committed
    assert git(clone, "status", "--porcelain") == ""
    assert "-m cmfgit merge-driver %O %A %B %L %P;" in git(clone, "config", "merge.cmfgit.driver")
    assert git(clone, "config", "cmfgit.site").strip() == "clone-site"
    before = state(clone)
    assert "already set up" in cmfgit(clone, "init", "--site", "clone-site").stdout
    assert state(clone) == before

    cmfgit(clone, "log-run", "-s", "b", "--", "true")
    runs = {r["stage"]: r["site"] for r in json.loads(cmfgit(clone, "log", "--json").stdout)}
    assert runs == {"a": "origin-site", "b": "clone-site"}
    assert "2 record(s) ok" in cmfgit(clone, "fsck").stdout


def test_init_in_a_repository_without_commits(tmp_path: Path) -> None:
    repo = tmp_path / "unborn"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    cmfgit(repo, "init")
    (repo / "train.py").write_text("print(1)\n")
    git(repo, "config", "cmfgit.snapshot.untracked", "true")  # untracked files are not captured by default
    cmfgit(repo, "log-run", "-s", "first", "--", "true")
    (run,) = json.loads(cmfgit(repo, "log", "--json").stdout)
    assert run["git"]["commit"] is None
    assert run["git"]["branch"] == "main"
    assert run["git"]["dirty"] is True
    assert len(run["git"]["tree"]) == 40  # the uncommitted code is still identified
    assert "train.py" in git(repo, "ls-tree", "--name-only", run["git"]["tree"])


def test_init_outside_a_repository(tmp_path: Path) -> None:
    proc = cmfgit(tmp_path, "init", check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"cmfgit: error: not a git repository (or any parent): {tmp_path}"
    assert list(tmp_path.iterdir()) == []


def test_init_refuses_an_unprintable_site_name(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", init_cmfgit=False)
    for site in ("", "  ", "edge\n2", "tab\there"):
        proc = cmfgit(repo, "init", "--site", site, check=False)
        assert proc.returncode == 2 and "a site name needs printable characters" in proc.stderr
        assert not (repo / ".cmf").exists()


def test_init_writes_down_the_pipeline_name_every_clone_shares(tmp_path: Path, bare_repo: Path) -> None:
    """Not the directory name of each clone: 'git clone URL my-copy' must not rename the pipeline."""
    repo = make_repo(tmp_path / "wine-quality", init_cmfgit=False)
    git(repo, "remote", "add", "origin", "git@example.invalid:team/wine-quality.git")
    cmfgit(repo, "init")
    assert canonical.load((repo / ".cmf" / "config.yaml").read_bytes())["pipeline"] == "wine-quality"
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "cmfgit")
    git(repo, "push", "-q", str(bare_repo), "HEAD:main")
    clone = tmp_path / "my-copy"
    git(tmp_path, "clone", "-q", str(bare_repo), str(clone))
    cmfgit(clone, "log-run", "-s", "train", "--", "true")
    assert json.loads(cmfgit(clone, "log", "--json").stdout)[0]["pipeline"] == "wine-quality"


def test_without_a_pipeline_setting_worktrees_share_the_clone_s_name(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "project")
    config = canonical.load((repo / ".cmf" / "config.yaml").read_bytes())
    (repo / ".cmf" / "config.yaml").write_bytes(canonical.dump({**config, "pipeline": None}))
    git(repo, "commit", "-q", "-am", "no pipeline setting")
    git(repo, "worktree", "add", "-q", str(tmp_path / "project-hotfix"), "-b", "hotfix")
    cmfgit(tmp_path / "project-hotfix", "log-run", "-s", "train", "--", "true")
    assert json.loads(cmfgit(tmp_path / "project-hotfix", "log", "--json").stdout)[0]["pipeline"] == "project"
