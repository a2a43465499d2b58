"""End-to-end smoke test of the foundation through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

from blake3 import blake3
from conftest import cmfgit


def test_log_run_records_success_and_failure(repo: Path) -> None:
    (repo / "in.txt").write_text("hello\n")
    ok = cmfgit(repo, "log-run", "-s", "copy", "-i", "in.txt", "-o", "out.txt", "--", "sh", "-c", "cp in.txt out.txt")
    assert "recorded" in ok.stderr
    bad = cmfgit(repo, "log-run", "-s", "fail", "--", "sh", "-c", "exit 3", check=False)
    assert bad.returncode == 3
    runs = json.loads(cmfgit(repo, "log", "--json").stdout)
    assert [r["stage"] for r in runs] == ["fail", "copy"]
    assert runs[0]["exit_code"] == 3
    copy = runs[1]
    expected = "blake3:" + blake3(b"hello\n").hexdigest()
    assert copy["inputs"][0]["hash"] == expected
    assert copy["outputs"][0]["hash"] == expected
    assert cmfgit(repo, "fsck").returncode == 0
