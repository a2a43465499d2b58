"""All access to the git command line goes through this module.

Git is the reference for behaviour, so cmfgit runs the real ``git`` for
anything that touches the index or the working tree. Failures become
:class:`GitError` carrying the command, the exit code and stderr.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from cmfgit.errors import CmfgitError, GitError

# Variables that git sets for hooks and that would redirect a nested git call
# to the wrong repository or index (pre-commit's ``no_git_env`` does the same).
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


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a nested git: inherited, minus location overrides."""
    env = {k: v for k, v in os.environ.items() if k not in _GIT_LOCATION_VARS}
    if extra:
        env.update(extra)
    return env


def git(
    args: Sequence[str],
    cwd: Path | str,
    *,
    input: bytes | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
) -> bytes:
    """Run ``git ARGS`` in ``cwd`` and return stdout as bytes."""
    try:
        proc = subprocess.run(
            ["git", *args],
            cwd=cwd,
            input=input,
            capture_output=True,
            env=dict(env) if env is not None else clean_env(),
        )
    except FileNotFoundError:
        raise CmfgitError("git is not installed or not on PATH") from None
    if check and proc.returncode != 0:
        raise GitError(list(args), proc.returncode, proc.stderr.decode("utf-8", "replace"))
    return proc.stdout


def git_text(args: Sequence[str], cwd: Path | str, **kwargs: object) -> str:
    return git(args, cwd, **kwargs).decode("utf-8", "surrogateescape").strip()  # type: ignore[arg-type]


def git_ok(args: Sequence[str], cwd: Path | str, env: Mapping[str, str] | None = None) -> bool:
    """True if ``git ARGS`` exits 0; output is discarded."""
    return (
        subprocess.run(
            ["git", *args],
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=dict(env) if env is not None else clean_env(),
        ).returncode
        == 0
    )


def start(args: Sequence[str], cwd: Path | str, env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start ``git ARGS`` without waiting, so several can run at once."""
    return subprocess.Popen(
        ["git", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(env) if env is not None else clean_env(),
    )


def finish(proc: subprocess.Popen[bytes], check: bool = True) -> bytes:
    out, err = proc.communicate()
    if check and proc.returncode != 0:
        raise GitError(list(map(str, proc.args))[1:], proc.returncode, err.decode("utf-8", "replace"))  # type: ignore[arg-type]
    return out


def config_get(cwd: Path | str, key: str) -> str | None:
    out = git(["config", "--get", key], cwd, check=False).decode("utf-8", "replace").strip()
    return out or None


def config_set(cwd: Path | str, key: str, value: str) -> None:
    git(["config", key, value], cwd)
