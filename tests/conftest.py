"""Shared fixtures: real git, real temp repos, the real cmfgit CLI.

Every test runs with a private HOME and pinned git identity, so the user's
own git config never leaks in and commits are reproducible.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import cliserver
import pytest
from hypothesis import settings

# Property tests draw the same examples on every run (CI must not fail on a new random
# draw of an old test); HYPOTHESIS_PROFILE=explore draws fresh ones, to look for bugs.
settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
settings.register_profile("explore", deadline=None, derandomize=False, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

ROOT = Path(__file__).resolve().parent.parent

# The interop tests that run HPE's cmflib itself need cmflib 0.1.0 in a venv of its own
# (it pins old ml-metadata): CMFLIB_PYTHON names that venv's python.
CMFLIB_PYTHON = Path(os.environ.get("CMFLIB_PYTHON") or "/opt/cmfref/venv/bin/python")
CMFLIB_MISSING = (
    "needs cmflib 0.1.0 in its own venv: python3 -m venv V && V/bin/pip install cmflib==0.1.0,"
    " then set CMFLIB_PYTHON=V/bin/python"
)

# Longest first. pyproject runs xdist with --dist worksteal: each worker takes half
# of this order and an idle one steals the other's tail, so with the long scenarios
# at the front both workers end on short tests together (in file order, a long test
# that starts last keeps one core busy alone for a minute). Marked slow, or known long
# (see the --durations table at the end of every run):
_LONG_TESTS = (
    "tests/test_crash.py::",
    "tests/test_fastread.py::",
    "tests/test_fastdata.py::test_same_output_as_the_typer_commands",
    "tests/test_data_dvc_s3.py::",
    "tests/test_data_dvc.py::",
    "tests/test_data_dvc_write.py::",
    "tests/test_import_dvc.py::",
    "tests/test_firstanswer.py::test_first_log_of_a_fresh_clone",
    "tests/test_git_scenarios.py::test_revert_stays_reverted_after_merging_a_branch_that_ran_gc",
    "tests/test_docs.py::test_every_command_has_help",
    "tests/test_docs.py::test_cli_reference_is_current",
    "tests/test_data_transfer.py::test_a_5000_file_dataset",
    "tests/test_readme_tour.py::",
    "tests/test_site.py::test_the_pages_from_file_urls_and_a_static_server",
    "tests/test_site.py::test_static_source_answers_every_endpoint_as_the_server",
    "tests/test_demo.py::",
    "tests/test_export_openlineage.py::test_demo",  # builds the demo once per module (~30 s)
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def long(item: pytest.Item) -> bool:
        return item.get_closest_marker("slow") is not None or item.nodeid.startswith(_LONG_TESTS)

    items.sort(key=lambda item: not long(item))  # stable: files keep their order


_GIT_LOCATION_VARS = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_PREFIX",
    "GIT_NAMESPACE",
)


@pytest.fixture(autouse=True)
def isolated_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    home = tmp_path_factory.mktemp("home")
    (home / ".gitconfig").write_text(
        "[user]\n\tname = cmfgit tests\n\temail = tests@example.invalid\n"
        "[init]\n\tdefaultBranch = main\n"
        '[protocol "file"]\n\tallow = always\n'
    )
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_AUTHOR_NAME", "cmfgit tests")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "tests@example.invalid")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "cmfgit tests")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "tests@example.invalid")
    monkeypatch.setenv("GIT_TERMINAL_PROMPT", "0")
    # Subprocesses (the CLI, and the hooks and merge driver that git starts)
    # import cmfgit from this source tree, whatever is installed.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    for var in (*_GIT_LOCATION_VARS, "CMFGIT_SITE", "CMFGIT_DEBUG"):
        monkeypatch.delenv(var, raising=False)
    yield


def git(cwd: Path, *args: str, check: bool = True, input: str | None = None) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, input=input)
    if check and proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def cmfgit(
    cwd: Path,
    *args: str,
    check: bool = True,
    env: dict[str, str] | None = None,
    input: str | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a process of its own, as a user would: a fork of an interpreter
    that has imported it (tests/cliserver.py), or a start-up when the environment is one
    that a start-up reads."""
    full_env = {**os.environ, **(env or {})}
    server = cliserver.server()
    if server is not None and server.forkable(full_env) and Path(cwd).is_dir():
        proc = server.run(list(args), cwd, full_env, input, timeout)
    else:
        proc = subprocess.run(
            [sys.executable, "-m", "cmfgit", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            env=full_env,
            input=input,
            timeout=timeout,
        )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"cmfgit {' '.join(args)} exited {proc.returncode}:\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return proc


def _build_repo(path: Path, init_cmfgit: bool, site: str | None) -> None:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    (path / "README.md").write_text("test repo\n")
    git(path, "add", "README.md")
    git(path, "commit", "-q", "-m", "initial")
    if init_cmfgit:
        args = ["init"] + (["--site", site] if site else [])
        cmfgit(path, *args)
        git(path, "add", "-A")
        git(path, "commit", "-q", "-m", "cmfgit init")


# make_repo builds each kind of repository (directory name, init, site) once per
# worker with the real git and CLI, then copies it: a build is a `cmfgit init` and
# two commits whose hooks are Python start-ups, ~1 s on a loaded CI machine, for
# each of some 500 tests. Nothing in a repository names its own path (the hooks and
# the merge driver name the interpreter and the package), so a copy is the same
# repository; the pipeline name is the directory's name, hence the key.
_TEMPLATE_ROOT: list[Path] = []
_TEMPLATES: dict[tuple[str, bool, str | None], Path] = {}


@pytest.fixture(autouse=True, scope="session")
def _repo_templates(tmp_path_factory: pytest.TempPathFactory) -> None:
    _TEMPLATE_ROOT.append(tmp_path_factory.mktemp("repo-templates"))


def make_repo(path: Path, init_cmfgit: bool = True, site: str | None = None) -> Path:
    if not _TEMPLATE_ROOT or (path.exists() and any(path.iterdir())):
        _build_repo(path, init_cmfgit, site)  # outside pytest, or files to commit with it
        return path
    key = (path.name, init_cmfgit, site)
    template = _TEMPLATES.get(key)
    if template is None:
        template = _TEMPLATE_ROOT[0] / str(len(_TEMPLATES)) / path.name
        _build_repo(template, init_cmfgit, site)
        _TEMPLATES[key] = template
    if path.exists():
        path.rmdir()
    shutil.copytree(template, path, symlinks=True)
    git(path, "update-index", "-q", "--refresh")  # the copies' inodes differ from the index's
    return path


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository with one commit and cmfgit initialised and committed."""
    return make_repo(tmp_path / "repo")


@pytest.fixture
def bare_repo(tmp_path: Path) -> Path:
    path = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(path))
    return path
