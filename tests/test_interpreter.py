"""`log-run -- python ...` records the environment of the command's own Python,
not cmfgit's, when the two differ (cmfgit installed with pipx, a project venv)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from blake3 import blake3
from conftest import cmfgit


def last_env(repo: Path) -> dict[str, Any]:
    env: dict[str, Any] = json.loads(cmfgit(repo, "log", "-n", "1", "--json").stdout)[0]["env"]
    return env


def test_a_venv_python_records_the_venv_s_packages(repo: Path, tmp_path: Path) -> None:
    venv = tmp_path / "project-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([python, "-c", "import site; print(site.getsitepackages()[0])"],
                               capture_output=True, text=True, check=True).stdout.strip())  # fmt: skip
    (site / "fake_pkg-1.2.3.dist-info").mkdir(parents=True)
    (site / "other-0.1.egg-info").mkdir()
    # Without the tests' PYTHONPATH (the source tree): the command's Python sees only its venv.
    cmfgit(repo, "log-run", "-s", "train", "--", str(python), "-c", "pass", env={"PYTHONPATH": ""})
    env = last_env(repo)
    assert env["executable"] == str(python)
    assert env["python"] == "{}.{}.{}".format(*sys.version_info[:3])
    assert env["packages"] == "blake3:" + blake3(b"fake-pkg==1.2.3\nother==0.1").hexdigest()


def test_another_interpreter_s_version_is_recorded(repo: Path, tmp_path: Path) -> None:
    fake = tmp_path / "bin" / "python3.99"
    fake.parent.mkdir()
    site = tmp_path / "site"
    (site / "numpy-9.9.dist-info").mkdir(parents=True)
    # Answers the probe like a Python 3.99 would; runs the command otherwise.
    fake.write_text(f'#!/bin/sh\nif [ "$1" = "-c" ]; then printf "3.99.1\\n{site}\\n"; exit 0; fi\necho trained\n')
    fake.chmod(0o755)
    proc = cmfgit(repo, "log-run", "-s", "train", "--", str(fake), "train.py")
    assert proc.stdout == "trained\n"
    env = last_env(repo)
    assert env["python"] == "3.99.1"
    assert env["packages"] == "blake3:" + blake3(b"numpy==9.9").hexdigest()


def test_an_interpreter_that_does_not_answer_leaves_cmfgit_s_own(repo: Path, tmp_path: Path) -> None:
    fake = tmp_path / "python3"
    fake.write_text("#!/bin/sh\nexit 3\n")
    fake.chmod(0o755)
    proc = cmfgit(repo, "log-run", "-s", "train", "--", str(fake), check=False)
    assert proc.returncode == 3
    assert last_env(repo)["python"] == "{}.{}.{}".format(*sys.version_info[:3])


def test_a_script_s_shebang_names_its_python(repo: Path, tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    site = tmp_path / "site"
    (site / "torch-3.0.dist-info").mkdir(parents=True)
    fake = bindir / "python3.98"
    fake.write_text(f'#!/bin/sh\nif [ "$1" = "-c" ]; then printf "3.98.0\\n{site}\\n"; exit 0; fi\necho trained\n')
    fake.chmod(0o755)
    for shebang in (f"#!{fake}", "#!/usr/bin/env python3.98", "#!/usr/bin/env -S python3.98 -u"):
        script = repo / "train.py"
        script.write_text(f"{shebang}\n")
        script.chmod(0o755)
        cmfgit(
            repo,
            "log-run",
            "-s",
            "train",
            "--",
            "./train.py",
            env={"PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"},
        )
        env = last_env(repo)
        assert env["python"] == "3.98.0", shebang
        assert env["packages"] == "blake3:" + blake3(b"torch==3.0").hexdigest()
