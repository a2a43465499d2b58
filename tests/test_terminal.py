"""What a user meets first at a terminal (issue 9, item 14): narrow terminals,
log's columns, log-run's help and errors, shell completion, progress, --since,
--sort's unknown keys, and the test suite's own skip messages."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from conftest import ROOT, cmfgit
from qhelp import execution, put

from cmfgit.query import CmfQuery
from cmfgit.repo import open_repo


def test_skip_messages_say_how_to_get_the_dependency_not_a_path_on_one_machine(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "-k", "cmflib"]
        + ["tests/test_cmf_export.py", "tests/test_compat.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "CMFLIB_PYTHON": str(tmp_path / "no-such-venv" / "bin" / "python")},
        timeout=300,
    )
    skipped = [line for line in proc.stdout.splitlines() if line.startswith("SKIPPED")]
    assert len(skipped) == 2, proc.stdout[-3000:]
    for line in skipped:
        reason = line.split(": ", 1)[1]
        assert "pip install cmflib==0.1.0" in reason and "CMFLIB_PYTHON" in reason, line
        assert not re.search(r"(^|\s)/(opt|home|usr|work|tmp)/", reason), line


def _three_runs(repo: Path) -> list[str]:
    return put(
        repo,
        execution("prep", params={"k": 1}, metrics={"rows": 10}, started_at="2026-01-05T10:00:00.000000Z"),
        execution("train", params={"lr": 0.1}, metrics={"acc": 0.9}, started_at="2026-02-05T10:00:00.000000Z"),
        execution("train", params={"lr": 0.2}, metrics={"acc": 0.8}, started_at="2026-03-05T10:00:00.000000Z"),
    )


def test_log_since_takes_pull_s_times_on_both_paths(repo: Path) -> None:
    old, mid, new = _three_runs(repo)
    for env in ({}, {"CMFGIT_NO_FASTPATH": "1"}):
        listed = cmfgit(repo, "log", "--since", "2026-02-01", "--json", env=env).stdout
        assert [o["id"] for o in json.loads(listed)] == [new, mid]
        table = cmfgit(repo, "log", "--since=2026-03-05T10:00Z", env=env).stdout
        assert new[:12] in table and mid[:12] not in table and old[:12] not in table
        assert json.loads(cmfgit(repo, "log", "--since", "7d", "--json", env=env).stdout) == []
        with_where = cmfgit(repo, "log", "--since", "2026-01-01", "-w", "params.lr > 0.15", "--json", env=env)
        assert [o["id"] for o in json.loads(with_where.stdout)] == [new]
        bad = cmfgit(repo, "log", "--since", "last tuesday", check=False, env=env)
        assert bad.returncode == 2 and "--since: 'last tuesday' is not a date" in bad.stderr, bad.stderr
    with CmfQuery(open_repo(repo)) as q:
        assert [o["id"] for o in q.executions(since="2026-02-05T10:00:00Z")] == [new, mid]


def test_sort_by_an_unknown_key_is_an_error_naming_it(repo: Path) -> None:
    _three_runs(repo)
    for env in ({}, {"CMFGIT_NO_FASTPATH": "1"}):
        bad = cmfgit(repo, "log", "--sort", "-metrics.acx", check=False, env=env)
        assert bad.returncode == 2, bad.stdout
        assert "--sort: no execution has metric 'acx' (did you mean 'metrics.acc'?)" in bad.stderr, bad.stderr
        other = cmfgit(repo, "log", "--sort", "params.nothere", check=False, env=env)
        assert other.returncode == 2 and "no execution has param 'nothere'" in other.stderr
        assert cmfgit(repo, "log", "--sort", "tags.nothere", check=False, env=env).returncode == 2
        ok = cmfgit(repo, "log", "--sort", "-metrics.acc", "--json", env=env).stdout
        assert [o["metrics"].get("acc") for o in json.loads(ok)] == [0.9, 0.8, None]
        assert cmfgit(repo, "log", "--sort", "started_at", env=env).returncode == 0
