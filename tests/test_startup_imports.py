"""log-run's start-up diet (DESIGN §10: <= 100 ms or <= 5x ``python -c pass``).

Each module below costs a plain ``cmfgit log-run -- true`` milliseconds of
imports and is not needed by it: PyYAML (the fast canonical path writes and
reads the records), typing and dataclasses (inspect), argparse (only for
unusual command lines, after click has read them), sqlite3 (the hash cache, only with artifacts), and
uuid/platform, socket, shutil, json, datetime. The check is on what gets
imported, not on time, so it holds on a busy machine.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import cmfgit

NOT_ON_THE_HOT_PATH = {
    "yaml", "typing", "dataclasses", "inspect", "argparse", "sqlite3",
    "uuid", "platform", "socket", "shutil", "json", "datetime", "getpass",
}  # fmt: skip


def imported_by(argv: list[str], cwd: Path) -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "cmfgit", *argv], cwd=cwd, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}


def test_log_run_imports_only_what_it_needs(repo: Path) -> None:
    cmfgit(repo, "log-run", "-q", "--", "true")  # the first run on a commit also caches its tree
    imported = imported_by(["log-run", "-q", "-s", "train", "-p", "lr=0.1", "--", "true"], repo)
    assert "cmfgit.logrun" in imported
    assert not imported & NOT_ON_THE_HOT_PATH, sorted(imported & NOT_ON_THE_HOT_PATH)
    records = sorted((repo / ".cmf" / "objects").rglob("*.yaml"))
    assert len(records) == 2
    assert b"lr: 0.1\n" in b"".join(r.read_bytes() for r in records)
    assert cmfgit(repo, "fsck").returncode == 0


def test_help_and_errors_are_click_s_like_every_other_command(repo: Path) -> None:
    help_text = cmfgit(repo, "log-run", "--help").stdout
    assert help_text.startswith("Usage: cmfgit log-run [OPTIONS]") and "--metrics-file" in help_text
    bad = cmfgit(repo, "log-run", "--bogus", "--", "true", check=False)
    assert bad.returncode == 2
    assert "No such option: --bogus" in bad.stderr
    assert not list((repo / ".cmf" / "objects").rglob("*.yaml"))
