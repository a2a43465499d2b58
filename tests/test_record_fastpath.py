"""The API's per-run shortcuts must never change what gets written or accepted.

- ``schema._quick_execution`` is a sufficient condition for the full check:
  whatever it accepts, the full validator accepts too (it may say "not
  sure" more often; the full check then decides and names the problem).
- fastyaml's caches (the sorted order and rendered keys of a mapping's
  shape, the text of floats) give the bytes libyaml gives, including for
  shapes seen before with other values (0.0 and -0.0, True and 1, 1.0).
- The recorded environment variables and the git state are re-read when
  they change between runs of one process.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import cmfgit as cli
from conftest import git
from hypothesis import given, settings
from hypothesis import strategies as st

import cmfgit
from cmfgit import canonical, reading, schema
from cmfgit.errors import RecordError, UsageError
from cmfgit.repo import find_repo

HASH = "blake3:" + "ab" * 32
OID = "1234567890abcdef1234567890abcdef12345678"
BASE: dict[str, Any] = {
    "schema": schema.EXECUTION,
    "uuid": "0123456789abcdef0123456789abcdef",
    "pipeline": "p",
    "stage": "train",
    "type": "train",
    "command": ["python", "train.py"],
    "cwd": ".",
    "params": {"lr": 0.1, "opt": "adam"},
    "started_at": "2026-01-01T00:00:00.000000Z",
    "ended_at": "2026-01-01T00:00:01.000000Z",
    "exit_code": 0,
    "site": "s",
    "host": "h",
    "user": "u",
    "git": {"commit": OID, "branch": "main", "dirty": False, "remote": None, "tree": OID},
    "env": {"python": "3.11.7", "platform": "Linux", "packages": HASH, "vars": {}, "executable": "/bin/python"},
    "inputs": [{"path": "data.csv", "hash": HASH, "size": 3, "type": "dataset", "kind": "file", "props": {}}],
    "outputs": [{"path": "m.bin", "hash": None, "size": None, "type": "model", "kind": "missing", "props": {}}],
    "metrics": {"acc": 0.5, "n": 3},
    "step_metrics": {"loss": [[0, 1.0], [None, 0.5]]},
    "error": None,
}

ODD_VALUES = [None, True, False, 0, 1, -1, 1.5, float("nan"), "", "x", "UPPER", HASH, OID, "missing", "file", [], {}]
ODD_VALUES += [["a"], [1], {"a": 1}, [[0, 1.0]], [[1.5, 1.0]], [[0, "x"]], [0, 1.0], "2026-01-01T00:00:00.000000Z"]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for k, v in value.items():
            found += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found += _paths(v, (*prefix, i))
    return found


PATHS = _paths(BASE)


def _full_check_passes(record: dict[str, Any]) -> bool:
    """What validate() decided before the quick check existed."""
    if record.get("schema") != schema.EXECUTION:
        return False
    try:
        schema._validate_execution(record, schema._Checker("record"))
    except RecordError:
        return False
    return True


def test_the_base_record_takes_the_fast_path() -> None:
    assert schema._quick_execution(copy.deepcopy(BASE))
    assert _full_check_passes(copy.deepcopy(BASE))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(PATHS),
            st.sampled_from(["set", "delete", "extra"]),
            st.sampled_from(range(len(ODD_VALUES))),
        ),
        min_size=1,
        max_size=3,
    )
)
def test_quick_check_never_accepts_what_the_full_check_refuses(edits: list[tuple[Any, str, int]]) -> None:
    record = copy.deepcopy(BASE)
    for path, action, pick in edits:
        parent: Any = record
        try:
            for step in path[:-1]:
                parent = parent[step]
            last = path[-1]
            if action == "delete":
                del parent[last]
            elif action == "extra" and isinstance(parent, dict):
                parent[f"{last}_extra" if pick % 2 else f"x-{last}"] = copy.deepcopy(ODD_VALUES[pick])
            else:
                parent[last] = copy.deepcopy(ODD_VALUES[pick])
        except (KeyError, IndexError, TypeError):
            continue  # the path no longer exists after an earlier edit
    if record.get("schema") == schema.EXECUTION and schema._quick_execution(record):  # as validate() calls it
        assert _full_check_passes(record), record
    # validate() as a whole agrees with the full check either way
    try:
        schema.validate(record)
        accepted = True
    except RecordError:
        accepted = False
    assert accepted == _full_check_passes(record)


def test_mapping_shapes_and_floats_are_cached_without_changing_bytes() -> None:
    values: list[Any] = [0.0, -0.0, 1, True, 1.0, "1", None, float("nan"), float("inf"), 1e-05, 0.1]
    docs = []
    for v in values:
        docs.append({"b": v, "a": [{"k": v, "j": v}], "c": {"z": v}})
        docs.append({"a": [{"j": v, "k": v}], "c": {"z": v}, "b": v})  # same keys, other insertion order
    for _ in range(2):  # the second pass finds every shape and float in the caches
        for doc in docs:
            assert canonical.dump(doc) == canonical.dump_libyaml(doc), doc


@pytest.fixture
def in_repo(repo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(repo)
    return repo


def _record(repo: Path, rid: str | None) -> dict[str, Any]:
    assert rid is not None
    return reading.show(find_repo(repo), rid)[1]


def test_a_sweep_sees_environment_and_branch_changes(in_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    with cmfgit.run(stage="sweep") as first:
        pass
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    with cmfgit.run(stage="sweep") as second:
        pass
    monkeypatch.setenv("OMP_NUM_THREADS", "8")
    git(in_repo, "checkout", "-q", "-b", "other")
    with cmfgit.run(stage="sweep") as third:
        pass
    monkeypatch.delenv("OMP_NUM_THREADS")
    with cmfgit.run(stage="sweep") as fourth:
        pass
    runs = [_record(in_repo, r.id) for r in (first, second, third, fourth)]
    assert [r["env"]["vars"].get("OMP_NUM_THREADS") for r in runs] == [None, "4", "8", None]
    assert [r["git"]["branch"] for r in runs] == ["main", "main", "other", "other"]


def test_bad_step_is_refused_when_given(in_repo: Path) -> None:
    """Refused by log_metric itself, inside the block: the run is recorded as failed,
    with the reason, and no bad step reaches a record."""
    with pytest.raises(UsageError, match="metric 'loss': step must be an integer or None, not str"):
        with cmfgit.run(stage="s") as run:
            run.log_metric("loss", 0.5, step="one")  # type: ignore[arg-type]
    (path,) = (in_repo / ".cmf" / "objects").rglob("*.yaml")
    rec = _record(in_repo, path.parent.name + path.stem)
    assert rec["exit_code"] == 1 and "step must be an integer" in rec["error"] and "step_metrics" not in rec


def test_log_run_commit_needs_no_python_in_post_commit(repo: Path) -> None:
    hook = repo / ".git/hooks/post-commit"
    hook.write_text(
        "\n".join("PY=/nonexistent/python" if ln.startswith("PY=") else ln for ln in hook.read_text().split("\n"))
    )
    (repo / "model.py").write_text("v = 1\n")  # a dirty tree: the run's code version is a snapshot tree
    done = cli(repo, "log-run", "--commit", "-s", "train", "--", "true")
    assert "post-commit hook is skipped" not in done.stderr, done.stderr
    (rid,) = [p.parent.name + p.stem for p in (repo / ".cmf/objects").rglob("*.yaml")]
    tree = _record(repo, rid)["git"]["tree"]
    assert f"refs/cmf/keep/{tree}" in git(repo, "for-each-ref", "refs/cmf/keep")
    assert not list((repo / ".git/cmf").glob("post-commit.*"))


def test_log_run_inside_a_git_hook_asks_git_for_the_repository_once(repo: Path, tmp_path: Path) -> None:
    trace = tmp_path / "trace"
    env = {**os.environ, "GIT_DIR": str(repo / ".git"), "GIT_TRACE": str(trace)}
    subprocess.run(
        [sys.executable, "-m", "cmfgit", "log-run", "-q", "-s", "s", "--", "true"], cwd=repo, env=env, check=True
    )
    asked = [line for line in trace.read_text().splitlines() if "rev-parse --show-toplevel" in line]
    assert len(asked) == 1, asked
