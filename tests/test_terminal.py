"""What a user meets first at a terminal (issue 9, item 14): narrow terminals,
log's columns, log-run's help and errors, shell completion, progress, --since,
--sort's unknown keys, and the test suite's own skip messages."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from conftest import ROOT


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
