"""What 10,000 site refs cost git itself: push, fetch and ls-remote, over git daemon.

    python bench/bench_refs_scale.py [--refs 10000] [--repeat 3]

A bare central with N refs ``refs/cmf/sites/site-<i>`` (each a distinct
one-record commit, in packed-refs), served by ``git daemon`` on 127.0.0.1,
against the same central with no site refs. Measured (median wall time):

- a push of one new commit to a branch (the ref advertisement lists every ref);
- ``git ls-remote`` of ``refs/cmf/sites/*`` (protocol v2, prefix filtered);
- a first fetch of every site ref into an empty clone (what a new reader pays);
- a fetch of every site ref when one of them moved (what a reader pays per update).

Prints a markdown table; the numbers go into docs/distribution.md (10,000 sites).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path


def git(*args: str, cwd: Path | None = None, input: bytes | None = None) -> bytes:
    return subprocess.run(["git", *args], cwd=cwd, input=input, capture_output=True, check=True).stdout


def timed(fn: object, repeat: int) -> float:
    xs = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()  # type: ignore[operator]
        xs.append(time.perf_counter() - t)
    return statistics.median(xs)


def make_central(path: Path, refs: int) -> None:
    """A bare repository with ``main`` and ``refs`` site refs, written by one git fast-import."""
    git("init", "-q", "--bare", "-b", "main", str(path))
    out = ["commit refs/heads/main\ncommitter b <b@x> 0 +0000\ndata 5\nstart\n\n"]
    for i in range(refs):  # one small distinct commit per site: a tree with one blob, like a one-record site ref
        body = f"record {i}\n"
        out.append(
            f"commit refs/cmf/sites/site-{i}\ncommitter b <b@x> 0 +0000\ndata 4\nsite\n"
            f"M 100644 inline r.yaml\ndata {len(body)}\n{body}\n"
        )
    git("fast-import", "--quiet", cwd=path, input="".join(out).encode())
    git("pack-refs", "--all", cwd=path)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--refs", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="refs-scale-") as tmp:
        root = Path(tmp)
        srv = root / "srv"
        srv.mkdir()
        t0 = time.perf_counter()
        make_central(srv / "many.git", args.refs)
        make_central(srv / "none.git", 0)
        setup = time.perf_counter() - t0
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        daemon = subprocess.Popen(
            ["git", "daemon", "--reuseaddr", f"--base-path={srv}", "--export-all", "--enable=receive-pack"]
            + [f"--port={port}", "--listen=127.0.0.1", str(srv)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            url = f"git://127.0.0.1:{port}"
            while subprocess.run(["git", "ls-remote", f"{url}/none.git"], capture_output=True).returncode:
                time.sleep(0.1)
            results: dict[str, dict[str, float]] = {}
            for name in ("none", "many"):
                clone = root / f"clone-{name}"
                git("clone", "-q", f"{url}/{name}.git", str(clone))
                git("config", "user.name", "b", cwd=clone)
                git("config", "user.email", "b@x", cwd=clone)
                counter = [0]

                def push(clone: Path = clone, counter: list[int] = counter) -> None:
                    counter[0] += 1
                    (clone / "f").write_text(str(counter[0]))
                    git("add", "f", cwd=clone)
                    git("commit", "-qm", "x", cwd=clone)
                    git("push", "-q", "origin", "HEAD:refs/heads/main", cwd=clone)

                def ls_remote(name: str = name) -> None:
                    git("ls-remote", f"{url}/{name}.git", "refs/cmf/sites/*")

                spec = "+refs/cmf/sites/*:refs/cmf/remotes/origin/sites/*"

                def first_fetch(name: str = name, spec: str = spec) -> None:
                    reader = root / f"reader-{name}-{time.monotonic_ns()}"
                    git("init", "-q", "--bare", str(reader))
                    git("fetch", "-q", f"{url}/{name}.git", spec, cwd=reader)

                reader = root / f"reader-{name}"
                git("init", "-q", "--bare", str(reader))
                git("fetch", "-q", f"{url}/{name}.git", spec, cwd=reader)

                def again(name: str = name, reader: Path = reader, spec: str = spec) -> None:
                    if name == "many":  # one site moved on
                        central = srv / "many.git"
                        old = git("rev-parse", "refs/cmf/sites/site-0", cwd=central).decode().strip()
                        tree = git("rev-parse", f"{old}^{{tree}}", cwd=central).decode().strip()
                        new = git("commit-tree", tree, "-p", old, "-m", "more", cwd=central).decode().strip()
                        git("update-ref", "refs/cmf/sites/site-0", new, cwd=central)
                    git("fetch", "-q", f"{url}/{name}.git", spec, cwd=reader)

                results[name] = {
                    "push one branch commit": timed(push, args.repeat),
                    "ls-remote refs/cmf/sites/*": timed(ls_remote, args.repeat),
                    "first fetch of every site ref": timed(first_fetch, args.repeat),
                    "fetch when one site ref moved": timed(again, args.repeat),
                }
        finally:
            daemon.terminate()
            daemon.wait()
        print(f"# {args.refs:,} site refs vs none, over git daemon (median of {args.repeat}; setup {setup:.0f} s)")
        print(f"load average {os.getloadavg()[0]:.2f}; {git('--version').decode().strip()}\n")
        print(f"| operation | no site refs | {args.refs:,} site refs | extra |")
        print("|---|---|---|---|")
        for key in results["none"]:
            a, b = results["none"][key], results["many"][key]
            print(f"| {key} | {a * 1000:.0f} ms | {b * 1000:.0f} ms | +{(b - a) * 1000:.0f} ms |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
