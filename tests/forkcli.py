"""Many runs of the CLI for the start-up of one: for tests that compare dozens of command lines.

One interpreter imports the CLI (typer and all) and then forks a child a run; the child
sets its run's environment, stdin, stdout and stderr, and runs ``cmfgit.main.main`` as
``python -m cmfgit`` does, exiting as it would (``sys.exit(main())``). So each run is a
process that has run nothing before it, started from the state a fresh ``cmfgit``
reaches once its imports are done: some 0.2 s of CPU less a run than :func:`conftest.cmfgit`.

Only for variables that cmfgit reads when a command runs (``CMFGIT_NO_FASTPATH``, say): the
imports saw the test's environment. Tests that check start-up itself (imports, the entry
point) run the real thing; :func:`run_forked`'s callers compare one run with it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

_SERVER = r"""
import contextlib, gc, json, os, shutil, sys
import cmfgit.cli
import cmfgit.main
with contextlib.suppress(ImportError):
    import typer._adapters  # what typer imports on its first command line (pydantic)
gc.freeze()  # else every child's collections and exit touch, and so copy, all of the parent's memory

def serve(runs, tmp, reset):
    done = []
    for i, (argv, env, stdin) in enumerate(runs):
        for path in reset:
            shutil.rmtree(path, ignore_errors=True)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            return child(argv, env, stdin, os.path.join(tmp, str(i)))
        _, status = os.waitpid(pid, 0)
        done.append(os.waitstatus_to_exitcode(status))
    sys.stdout.write(json.dumps(done))
    return 0

def child(argv, env, stdin, base):
    for key, value in env.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    if stdin is None:
        stdin = os.devnull
    for fd, path, flags in ((0, stdin, os.O_RDONLY), (1, base + ".out", os.O_WRONLY | os.O_CREAT),
                            (2, base + ".err", os.O_WRONLY | os.O_CREAT)):
        opened = os.open(path, flags, 0o600)
        os.dup2(opened, fd)
        os.close(opened)
    sys.argv = [os.path.join(os.path.dirname(cmfgit.__file__), "__main__.py"), *argv]
    return cmfgit.main.main(argv)

with open(sys.argv[1], encoding="utf-8") as fh:
    spec = json.load(fh)
sys.exit(serve(spec["runs"], sys.argv[2], spec["reset"]))
"""


def run_forked(
    cwd: Path,
    runs: list[tuple[list[str], dict[str, str | None]]],
    *,
    input: str | None = None,
    base_env: dict[str, str] | None = None,
    reset: Sequence[Path] = (),
) -> list[subprocess.CompletedProcess[str]]:
    """Each (argv, environment changes) as ``cmfgit ARGV`` in ``cwd``, in order; a value of
    None removes the variable. ``input`` is every run's stdin (else /dev/null); ``base_env``
    the environment that all start from (else this process's). The directories in
    ``reset`` are removed before each run."""
    with tempfile.TemporaryDirectory(prefix="forkcli-") as tmp:
        stdin = None
        if input is not None:
            stdin = os.path.join(tmp, "stdin")
            Path(stdin).write_text(input, encoding="utf-8")
        spec = os.path.join(tmp, "runs.json")
        runs_spec = [[argv, env, stdin] for argv, env in runs]
        Path(spec).write_text(json.dumps({"runs": runs_spec, "reset": [str(p) for p in reset]}), encoding="utf-8")
        server = subprocess.run(
            [sys.executable, "-c", _SERVER, spec, tmp],
            cwd=cwd,
            capture_output=True,
            text=True,
            env=base_env,
            timeout=600,
        )
        if server.returncode != 0:
            raise AssertionError(f"forkcli's server exited {server.returncode}:\n{server.stdout}\n{server.stderr}")
        codes = json.loads(server.stdout)
        assert len(codes) == len(runs), server.stderr
        return [
            subprocess.CompletedProcess(
                ["cmfgit", *argv],
                code,
                Path(tmp, f"{i}.out").read_text(encoding="utf-8"),
                Path(tmp, f"{i}.err").read_text(encoding="utf-8"),
            )
            for i, ((argv, _env), code) in enumerate(zip(runs, codes))
        ]
