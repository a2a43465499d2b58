"""The smaller defects of issue 9, item 13: one test each."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import cmfgit, git

from cmfgit import pack


def test_an_index_path_that_is_a_directory_is_a_clear_error(repo: Path) -> None:
    cmfgit(repo, "log-run", "-s", "train", "--", "true")
    (repo / ".git/cmf/index.sqlite").mkdir(parents=True)
    proc = cmfgit(repo, "log", check=False)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"cmfgit: error: the query index {repo / '.git/cmf/index.sqlite'} is a directory, not a file: "
        "remove it (the index is derived from the records and is rebuilt)"
    ]
    assert "internal error" not in proc.stderr
    assert not list((repo / ".git/cmf").glob(".tmp-*"))  # no half-built index left behind


def test_every_command_summary_is_a_whole_sentence() -> None:
    """click takes a command's summary up to the first '. ': 'e.g.' cut tag's at "(e.g."."""
    from cmfgit.cli import build_command
    from cmfgit.cli.docgen import command_paths

    root = build_command()
    for path in command_paths():
        cmd = root
        for name in path:
            cmd = cmd.commands[name]  # type: ignore[attr-defined]
        summary = cmd.get_short_help_str(limit=1000)
        assert summary.count("(") == summary.count(")"), (path, summary)
        assert not summary.endswith(("e.g.", "i.e.", "etc.")), (path, summary)
    tag = root.commands["tag"]  # type: ignore[attr-defined]
    assert tag.get_short_help_str(limit=1000) == "Tag an execution or an artifact, or list its tags."


def _lose_the_interpreter(repo: Path) -> None:
    """What moving or deleting the virtualenv that ran 'cmfgit init' does to the hooks and the driver."""
    for hook in (repo / ".git/hooks").iterdir():
        text = hook.read_text()
        if "# cmfgit-hook:" in text:
            hook.write_text(
                "\n".join("PY=/moved/venv/bin/python" if ln.startswith("PY=") else ln for ln in text.split("\n"))
            )
    driver = git(repo, "config", "merge.cmfgit.driver").strip()
    assert driver.startswith("PY=")
    git(repo, "config", "merge.cmfgit.driver", "PY=/moved/venv/bin/python;" + driver.split(";", 1)[1])


def _same_pack_on_two_branches(repo: Path) -> None:
    """Both branches pack records into pack/<site>/<month>.yaml, as an older cmfgit named the pack
    it rewrote in place (gc now names packs by content): merging them needs the driver."""
    base = git(repo, "rev-parse", "HEAD").strip()
    for branch in ("one", "two"):
        git(repo, "checkout", "-q", "-b", branch, base)
        for _ in range(2):  # gc leaves a record alone in its pack loose (a pack of one looks like a rename)
            cmfgit(repo, "log-run", "-s", branch, "--", "true")
        cmfgit(repo, "gc")
        (made,) = (repo / ".cmf/objects/pack").rglob("*.yaml")
        made.rename(made.with_name(pack.period_of(made.name) + ".yaml"))
        git(repo, "add", "-A", ".cmf")
        git(repo, "commit", "-qm", branch)


def _git(repo: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, env={**os.environ, **env})


def test_hooks_and_driver_find_cmfgit_on_path_when_the_venv_moved(repo: Path, tmp_path: Path) -> None:
    """Any cmfgit command repairs the setting (log-run reinstalls hooks and driver), so
    everything is prepared first; then only git runs, as after moving the venv."""
    _same_pack_on_two_branches(repo)
    cmfgit(repo, "log-run", "-s", "train", "--", "true")
    _lose_the_interpreter(repo)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "cmfgit").write_text(f'#!/bin/sh\nexec {sys.executable} -m cmfgit "$@"\n')
    (bin_dir / "cmfgit").chmod(0o755)
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}

    merged = _git(repo, env, "merge", "-q", "one", "-m", "merge")  # the driver, found on PATH
    assert merged.returncode == 0, merged.stdout + merged.stderr
    (packed,) = git(repo, "ls-tree", "-r", "--name-only", "HEAD", "--", ".cmf/objects").split()
    assert packed.startswith(".cmf/objects/pack/") and "<<<<<<<" not in (repo / packed).read_text()
    assert len(pack.parse((repo / packed).read_bytes())) == 4

    (repo / "README.md").write_text("changed\n")
    done = _git(repo, env, "commit", "-qam", "train")  # pre-commit stages the pending record
    assert done.returncode == 0 and "cannot find cmfgit" not in done.stderr, done.stderr
    assert len(git(repo, "ls-tree", "-r", "--name-only", "HEAD", "--", ".cmf/objects").split()) == 2
    assert git(repo, "status", "--porcelain", "--", ".cmf") == ""


def test_without_cmfgit_the_hooks_say_so_and_do_not_block_git(repo: Path) -> None:
    _same_pack_on_two_branches(repo)
    cmfgit(repo, "log-run", "-s", "train", "--", "true")
    _lose_the_interpreter(repo)
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": ""}  # no cmfgit on PATH; the system's python3 cannot run it

    merged = _git(repo, env, "merge", "-q", "one", "-m", "merge")
    assert merged.returncode != 0
    assert "is left conflicted. Reinstall cmfgit, then run 'cmfgit init'." in merged.stderr + merged.stdout
    _git(repo, env, "merge", "--abort")

    (repo / "README.md").write_text("changed\n")
    done = _git(repo, env, "commit", "-qam", "code")
    assert done.returncode == 0, done.stderr  # the commit goes through
    assert "cmfgit: cannot find cmfgit (not at /moved/venv/bin/python, not on PATH, not in python3)" in done.stderr
    assert "pre-commit hook is skipped: pending records are neither staged nor checked" in done.stderr
    assert git(repo, "status", "--porcelain", "--", ".cmf/objects").startswith("??")  # still pending
    doctor = cmfgit(repo, "doctor", check=False).stdout
    assert "merge.cmfgit.driver is broken (its Python, /moved/venv/bin/python, is gone)" in doctor
    cmfgit(repo, "log")  # any other command puts this Python back
    assert git(repo, "config", "merge.cmfgit.driver").startswith(f"PY={sys.executable}")
    assert f"PY={sys.executable}\n" in (repo / ".git/hooks/pre-commit").read_text()


def test_read_commands_work_in_a_bare_central_repository_on_its_global_view(repo: Path, tmp_path: Path) -> None:
    import json

    (repo / "data.csv").write_text("a,b\n1,2\n")
    cmfgit(repo, "log-run", "-s", "prepare", "-i", "data.csv", "-o", "train.csv", "--", "cp", "data.csv", "train.csv")
    cmfgit(repo, "log-run", "-s", "train", "-p", "lr=0.1", "-i", "train.csv", "--", "true")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "runs")
    central = tmp_path / "central.git"
    git(tmp_path, "clone", "-q", "--bare", str(repo), str(central))

    before = cmfgit(central, "log", check=False)
    assert before.returncode == 1
    assert before.stderr.strip() == (
        "cmfgit: error: no global metadata branch here (refs/heads/cmf/global): "
        "run 'cmfgit global update' in this repository first"
    )
    cmfgit(central, "global", "update")

    expected = json.loads(cmfgit(repo, "log", "--json").stdout)

    def but_commit(entries: list[dict[str, object]]) -> list[dict[str, object]]:
        # the commit that brought a record into cmf/global is the view's own, not main's
        return [{k: v for k, v in e.items() if k != "metadata_commit"} for e in entries]

    on_global = json.loads(cmfgit(central, "log", "--json").stdout)
    assert but_commit(on_global) == but_commit(expected)
    view_commit = git(central, "log", "-1", "--format=%H", "cmf/global").strip()
    assert {e["metadata_commit"]["commit"] for e in on_global} == {view_commit}  # type: ignore[index]
    assert json.loads(cmfgit(central, "log", "--global", "--json").stdout) == on_global
    assert json.loads(cmfgit(central, "log", "--ref", "main", "--json").stdout) == expected
    train, prepare = (e["id"] for e in expected)
    assert json.loads(cmfgit(central, "show", train[:10], "--json").stdout)["id"] == train
    assert (
        cmfgit(central, "diff", train[:10], prepare[:10]).stdout
        == cmfgit(repo, "diff", train[:10], prepare[:10]).stdout
    )
    lineage = cmfgit(central, "lineage", train[:10]).stdout
    assert lineage == cmfgit(repo, "lineage", train[:10]).stdout and "prepare" in lineage
    for command in ("artifacts", "pipelines"):
        assert cmfgit(central, command, "--json").stdout == cmfgit(repo, command, "--json").stdout
    assert not (central / ".cmf").exists()  # read-only: nothing written into the bare repository's tree
