"""gitutil.config_snapshot: one `git config --list` answers config_get as git would."""

from __future__ import annotations

from pathlib import Path

from conftest import git

from cmfgit import gitutil


def test_a_config_snapshot_answers_as_git_config_get_does(repo: Path) -> None:
    git(repo, "config", "Branch.site/Lab.Remote", "origin")  # section and key case-insensitive, not the middle
    git(repo, "config", "cmfgit.site", "eu lab")
    git(repo, "config", "--add", "cmfgit.multi", "first")
    git(repo, "config", "--add", "cmfgit.multi", "last")
    keys = ["branch.site/Lab.remote", "BRANCH.site/Lab.REMOTE", "branch.site/lab.remote", "cmfgit.site"]
    keys += ["CmfGit.Site", "cmfgit.multi", "cmfgit.absent", "nosuchkey"]
    expected = {key: gitutil.config_get(repo, key) for key in keys}
    assert expected["branch.site/Lab.remote"] == "origin" and expected["branch.site/lab.remote"] is None
    assert expected["cmfgit.multi"] == "last" and expected["CmfGit.Site"] == "eu lab"
    with gitutil.config_snapshot(repo):
        assert {key: gitutil.config_get(repo, key) for key in keys} == expected
        gitutil.config_set(repo, "cmfgit.site", "edge")  # written through, and kept true
        assert gitutil.config_get(repo, "cmfgit.site") == "edge"
        git(repo, "config", "cmfgit.site", "elsewhere")  # not through gitutil: the snapshot holds
        assert gitutil.config_get(repo, "cmfgit.site") == "edge"
    assert gitutil.config_get(repo, "cmfgit.site") == "elsewhere"  # outside: git itself again
