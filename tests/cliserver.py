"""The CLI without its start-up: ``cmfgit ARGS`` as a fork of an interpreter that has imported it.

A run of the CLI costs a Python start-up and the import of typer, pydantic and cmfgit, some
0.1 to 0.25 s of CPU, before the command does anything; the suite runs the CLI thousands of
times. Here one interpreter a pytest worker (the server) imports the CLI once and forks for
every run: a child sets the run's directory, environment, stdin, stdout and stderr and runs
``cmfgit.main.main`` as ``python -m cmfgit`` does (``sys.exit(main())``, the interpreter's
own exit). So each run is still a process of its own that has run nothing before it, from
the state a fresh ``cmfgit`` reaches once its imports are done.

What a fork cannot give is what a start-up reads: the environment at import time (the
locale, ``PYTHON*``, typer's ``TERMINAL_WIDTH``...). :func:`forkable` lets a run through only
when its environment differs from the server's in variables read while a command runs
(``RUNTIME_VARIABLES``); any other run, and any run when ``CMFGIT_TESTS_REAL_CLI=1``, starts
the CLI for real. Tests of start-up itself (imports, the entry point, signals) run their own
processes.

The server: a listening Unix socket; each connection gets a handler (a fork), which forks the
run, sends its pid (so that a timeout can kill it), waits for it and sends its exit code.
Concurrent runs are concurrent processes, as before.
"""

from __future__ import annotations

import atexit
import json
import locale
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

# Read while a command runs, never while cmfgit, typer, click or rich are imported.
RUNTIME_VARIABLES = re.compile(r"HOME|PATH|COLUMNS|LINES|TERM|NO_COLOR|GIT_\w+|CMFGIT_\w+|PYTEST_\w+")

_SERVER = r"""
import contextlib, gc, json, os, select, socket, sys
import cmfgit
import cmfgit.cli
import cmfgit.main
with contextlib.suppress(ImportError):
    import typer._adapters  # what typer imports on its first command line (pydantic)

def serve(path):
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    gc.freeze()  # else every child's collections, and its exit, copy all of this memory
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    children = 0
    while True:
        readable, _, _ = select.select([listener, sys.stdin], [], [], 1.0)
        while children and os.waitpid(-1, os.WNOHANG)[0]:  # reaped here, their CPU counts as ours
            children -= 1
        if sys.stdin in readable and not os.read(sys.stdin.fileno(), 4096):
            for _ in range(children):  # the pytest worker is done (or gone)
                os.wait()
            return None
        if listener not in readable:
            continue
        conn, _ = listener.accept()
        if os.fork():
            conn.close()
            children += 1
            continue
        listener.close()
        request = json.loads(conn.makefile("rb").readline())
        pid = os.fork()
        if pid == 0:
            conn.close()
            return request
        conn.sendall(b"%d\n" % pid)
        _, status = os.waitpid(pid, 0)
        conn.sendall(b"%d\n" % os.waitstatus_to_exitcode(status))
        conn.close()
        os._exit(0)


def run(request):
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    for fd, path, flags in ((0, request["stdin"], os.O_RDONLY), (1, request["out"], os.O_WRONLY),
                            (2, request["err"], os.O_WRONLY)):
        opened = os.open(path, flags)
        os.dup2(opened, fd)
        os.close(opened)
    sys.path[0] = os.getcwd()  # as `python -m` puts the directory it runs in first
    sys.argv = [os.path.join(os.path.dirname(cmfgit.__file__), "__main__.py"), *request["argv"]]
    return cmfgit.main.main(request["argv"])

request = serve(sys.argv[1])
if request is not None:
    sys.exit(run(request))
"""


class Server:
    """One per process (pytest worker); started on first use, gone with the process."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="cmfgit-cli-"))
        self.socket = str(self.dir / "socket")
        self.env = dict(os.environ)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _SERVER, self.socket],
            cwd=self.dir,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=self.env,
        )
        assert self.proc.stdout is not None
        if self.proc.stdout.readline() != b"ready\n":
            raise RuntimeError("the CLI server did not start")
        atexit.register(self.close)
        self.runs = 0
        self.source = _source_state()

    def close(self) -> None:
        atexit.unregister(self.close)
        assert self.proc.stdin is not None
        self.proc.stdin.close()  # the server waits for its runs, then exits
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def forkable(self, env: dict[str, str]) -> bool:
        changed = {k for k in env.keys() | self.env.keys() if env.get(k) != self.env.get(k)}
        return all(RUNTIME_VARIABLES.fullmatch(k) for k in changed)

    def run(
        self, argv: list[str], cwd: Path, env: dict[str, str], input: str | None, timeout: float | None
    ) -> subprocess.CompletedProcess[str]:
        self.runs += 1
        base = self.dir / f"{os.getpid()}-{self.runs}"
        out, err = Path(f"{base}.out"), Path(f"{base}.err")
        stdin = Path(f"{base}.in") if input is not None else Path(os.devnull)
        out.touch()
        err.touch()
        if input is not None:
            stdin.write_text(input)
        request = {"argv": argv, "cwd": str(Path(cwd).resolve()), "env": env}
        request.update(stdin=str(stdin), out=str(out), err=str(err))
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.connect(self.socket)
                conn.sendall(json.dumps(request).encode() + b"\n")
                answers = conn.makefile("rb")
                pid = int(answers.readline())
                conn.settimeout(timeout)
                try:
                    code = int(answers.readline())
                except TimeoutError:
                    os.kill(pid, signal.SIGKILL)
                    raise subprocess.TimeoutExpired(["cmfgit", *argv], timeout or 0) from None
            return subprocess.CompletedProcess(["cmfgit", *argv], code, _text(out), _text(err))
        finally:
            for path in (out, err, stdin):
                if path.parent == self.dir:
                    path.unlink(missing_ok=True)


def _text(path: Path) -> str:
    """As ``subprocess.run(text=True)`` decodes: the locale's encoding, universal newlines."""
    data = path.read_bytes().decode(locale.getpreferredencoding(False))
    return data.replace("\r\n", "\n").replace("\r", "\n")


_PACKAGE = Path(__file__).resolve().parent.parent / "cmfgit"


def _source_state() -> tuple[tuple[str, int], ...]:
    """The package's files and their times: a server that imported other code is replaced."""
    found = []
    for directory, _dirs, names in os.walk(_PACKAGE):
        for name in names:
            if name.endswith(".py"):
                path = os.path.join(directory, name)
                found.append((path, os.stat(path).st_mtime_ns))
    return tuple(sorted(found))


_SERVERS: dict[int, Server] = {}


def server() -> Server | None:
    """This process's server, or None when runs are to start the CLI for real."""
    if os.environ.get("CMFGIT_TESTS_REAL_CLI") == "1" or not hasattr(os, "fork"):
        return None
    found = _SERVERS.get(os.getpid())
    if found is not None and found.source != _source_state():  # cmfgit was edited since it started
        found.close()
        found = None
    if found is None:
        try:
            found = Server()
        except (OSError, RuntimeError) as exc:  # a socket path too long for AF_UNIX, say: start-ups, then
            print(f"tests/cliserver.py: no CLI server ({exc}); the CLI starts for every run", file=sys.stderr)
            os.environ["CMFGIT_TESTS_REAL_CLI"] = "1"
            return None
        _SERVERS[os.getpid()] = found
    return found
