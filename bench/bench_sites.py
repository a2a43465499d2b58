"""Many sites push at once: ``cmfgit push`` against plain git, over ``git daemon``.

For each number of sites (8, 32, 100; 4 and 8 with ``--quick``), three central
bare repositories are served read-write over git's protocol on 127.0.0.1 (``git
daemon --inetd`` per connection, behind a listener with a deep backlog: ``_INETD``).
Every site is a clone with cmfgit's hooks installed, on a branch of its own
(``site/<i>``), holding 20 runs logged with the Python API (not timed). The
same record files are copied into two more clones per site, so the three
measures push the same data:

- **plain git**: ``git add -A && git commit && git push`` (no hooks), all sites at once;
- **cmfgit push**: all sites at once, the central runs no hook (each site
  updates ``cmf/global`` itself after its site ref is published);
- **cmfgit push, central hook**: the same with ``cmfgit global install-hook``
  on the central (its post-receive hook maintains ``cmf/global``).

Wall time from the starting signal to the last push's exit. After each cmfgit
run, a fresh clone's ``cmfgit global fetch`` must see every record, and the
``--json`` of every push says how often its site ref was retried (never,
unless two clones share a site name) and what happened to ``cmf/global``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import common

NAME = "sites"
TITLE = "Concurrent `cmfgit push` from many sites vs plain git add+commit+push (same data, same run)"
RUNS = 20

_LOG_RUNS = """
import sys
import cmfgit
site, runs = sys.argv[1], int(sys.argv[2])
for i in range(runs):
    with cmfgit.run(pipeline="sweep", stage="train", params={"i": i}, repo=site, command=["train"]) as run:
        run.log_metrics({"loss": 1.0 / (i + 1)})
"""

# Waits for the starting signal, then runs the command (so that start-up is not staggered),
# and reports the CPU time (user + system) of the command and every process it waited for.
_AT_ONCE = """
import os, resource, subprocess, sys, time
go = sys.argv[1]
while not os.path.exists(go):
    time.sleep(0.005)
# A connection reset would be run again (both sides alike) and counted: there should be
# none since the server listens with a deep backlog (_INETD below).
for attempt in range(5):
    proc = subprocess.run(sys.argv[2:], capture_output=True, text=True)
    if proc.returncode == 0 or not any(m in proc.stderr for m in ("Connection reset", "unable to connect")):
        break
    sys.stderr.write("bench-retry: connection reset\\n")
used = resource.getrusage(resource.RUSAGE_CHILDREN)
sys.stdout.write(proc.stdout)
sys.stderr.write(proc.stderr)
sys.stderr.write(f"bench-cpu: {used.ru_utime + used.ru_stime:.4f}\\n")
sys.exit(proc.returncode)
"""

# git daemon listens with a backlog of 5 (daemon.c: listen(sockfd, 5)): 100 clients
# connecting at once overflow it, and some connections were reset. So the bench
# listens itself, with a backlog of 1024, and serves each connection with
# `git daemon --inetd` (the same server code, one process per connection, as git
# daemon forks one), for plain git and cmfgit alike.
_INETD = """
import socket, subprocess, sys
port, base = int(sys.argv[1]), sys.argv[2]
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port))
srv.listen(1024)
argv = ["git", "daemon", "--inetd", "--export-all", "--enable=receive-pack", "--log-destination=none",
        f"--base-path={base}", base]
running = []
while True:
    conn, _ = srv.accept()
    running = [p for p in running if p.poll() is None]  # reaped here (SIGCHLD ignored would break git's waits)
    running.append(subprocess.Popen(argv, stdin=conn.fileno(), stdout=conn.fileno(), stderr=subprocess.DEVNULL))
    conn.close()
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


RESETS: dict[str, int] = {}


CPU: dict[str, float] = {}


def _at_once(ctx: common.Context, work: Path, commands: list[tuple[Path, list[str]]]) -> tuple[float, list[str]]:
    """Run every command in its directory at the same moment; wall time and stdouts
    (and the CPU time the commands used, in :data:`CPU`)."""
    go = work / f"go-{time.monotonic_ns()}"
    procs = [
        subprocess.Popen(
            [ctx.python, "-c", _AT_ONCE, str(go), *argv],
            cwd=cwd,
            env=ctx.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for cwd, argv in commands
    ]
    time.sleep(1.0 + len(commands) * 0.05)  # every waiter started
    start = time.perf_counter()
    go.touch()
    outs = []
    for proc in procs:
        out, err = proc.communicate(timeout=3600)
        if proc.returncode != 0:
            raise RuntimeError(f"exited {proc.returncode}:\n{out[-2000:]}\n{err[-3000:]}")
        outs.append(out)
        RESETS[str(go)] = RESETS.get(str(go), 0) + err.count("bench-retry:")
        CPU[str(go)] = CPU.get(str(go), 0.0) + sum(
            float(line.split(": ", 1)[1]) for line in err.splitlines() if line.startswith("bench-cpu: ")
        )
    return time.perf_counter() - start, outs


def _one_size(ctx: common.Context, sites: int) -> dict[str, Any]:
    root = ctx.mkdtemp(f"sites{sites}-")
    srv = root / "srv"
    srv.mkdir()
    seed = ctx.make_repo("seed")
    for name in ("plain", "cmfgit", "hook"):
        ctx.run(["git", "clone", "-q", "--bare", str(seed), str(srv / f"{name}.git")])
    ctx.run([ctx.cmfgit, "global", "install-hook", "--repo", str(srv / "hook.git")])
    port = _free_port()
    daemon = subprocess.Popen(
        [ctx.python, "-c", _INETD, str(port), str(srv)],
        env=ctx.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"git://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while subprocess.run(["git", "ls-remote", f"{url}/plain.git"], capture_output=True).returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError("git daemon did not come up")
            time.sleep(0.1)
        # One clone set up for cmfgit (hooks installed), copied for every site.
        template = root / "template"
        ctx.run(["git", "clone", "-q", f"{url}/cmfgit.git", str(template)])
        ctx.run([ctx.cmfgit, "init"], template)
        dirs: dict[str, list[Path]] = {"plain": [], "cmfgit": [], "hook": []}
        for i in range(sites):
            site = root / "cmfgit" / f"site-{i}"
            shutil.copytree(template, site, symlinks=True)
            ctx.run(["git", "config", "cmfgit.site", f"site-{i}"], site)
            ctx.run(["git", "checkout", "-q", "-b", f"site/{i}"], site)
            dirs["cmfgit"].append(site)
        # The runs, logged with the API at every site (two at a time: not timed).
        pending = list(dirs["cmfgit"])
        while pending:
            batch, pending = pending[:2], pending[2:]
            procs = [subprocess.Popen([ctx.python, "-c", _LOG_RUNS, str(s), str(RUNS)], env=ctx.env) for s in batch]
            if any(p.wait() for p in procs):
                raise RuntimeError("logging the runs failed")
        for name in ("plain", "hook"):
            for i, site in enumerate(dirs["cmfgit"]):
                copy = root / name / f"site-{i}"
                shutil.copytree(site, copy, symlinks=True)
                ctx.run(["git", "remote", "set-url", "origin", f"{url}/{name}.git"], copy)
                dirs[name].append(copy)
        empty = root / "no-hooks"
        empty.mkdir()
        for copy in dirs["plain"]:
            ctx.run(["git", "config", "core.hooksPath", str(empty)], copy)

        branch = "refs/heads/$(git symbolic-ref --short HEAD)"
        # (idempotent, so that a re-run after a reset connection only pushes)
        commit = "{ git diff --cached --quiet || git commit -q -m runs; }"
        plain = f"git add -A && {commit} && git push -q origin HEAD:{branch}"
        load_before = common.loadavg()
        RESETS.clear()
        CPU.clear()
        t_plain, _ = _at_once(ctx, root, [(d, ["sh", "-c", plain]) for d in dirs["plain"]])
        t_cmfgit, out_cmfgit = _at_once(ctx, root, [(d, [ctx.cmfgit, "push", "--json"]) for d in dirs["cmfgit"]])
        t_hook, out_hook = _at_once(ctx, root, [(d, [ctx.cmfgit, "push", "--json"]) for d in dirs["hook"]])
        resets = list(RESETS.values())  # connections reset, re-run: plain, cmfgit, hook
        # CPU per push (user + system of the command and its git processes; not the server's)
        cpu = [round(c / sites, 4) for c in CPU.values()]
        load_after = common.loadavg()

        def summary(outs: list[str], central: str) -> dict[str, Any]:
            results = [json.loads(o) for o in outs]
            reader = root / f"reader-{central}"
            ctx.run(["git", "clone", "-q", f"{url}/{central}.git", str(reader)])
            said = ctx.run([ctx.cmfgit, "global", "fetch"], reader).stdout
            seen = json.loads(ctx.run([ctx.cmfgit, "log", "--global", "--json", "-n", "1000000"], reader).stdout)
            if len(seen) != sites * RUNS:
                raise RuntimeError(f"{central}: the global view has {len(seen)} runs, not {sites * RUNS}: {said}")
            materialised = ctx.run(
                ["git", "--git-dir", str(srv / f"{central}.git"), "log", "-1", "--format=%B", "cmf/global"]
            ).stdout
            count = [line.split(": ")[1] for line in materialised.splitlines() if line.startswith("Cmfgit-Records:")]
            return {
                "site_retries": sum(r["site"]["attempts"] - 1 for r in results),
                "site_attempts_max": max(r["site"]["attempts"] for r in results),
                "global_pushed": sum(1 for r in results if r["global_update"]["updated"]),
                "global_attempts": sum(r["global_update"]["attempts"] for r in results),
                "global_gave_up": sum(1 for r in results if r["global_update"]["gave_up"]),
                "view_records": len(seen),
                "cmf_global_records": int(count[0]) if count else 0,
            }

        return {
            "sites": sites,
            "runs_per_site": RUNS,
            "plain_s": round(t_plain, 3),
            "cmfgit_s": round(t_cmfgit, 3),
            "hook_s": round(t_hook, 3),
            "cmfgit": summary(out_cmfgit, "cmfgit"),
            "hook": summary(out_hook, "hook"),
            "loadavg": [load_before, load_after],
            "connection_resets_rerun": resets,
            "cpu_per_push_s": {"plain": cpu[0], "cmfgit": cpu[1], "hook": cpu[2]},
        }
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)


def run(ctx: common.Context) -> dict[str, Any]:
    sizes = [4, 8] if ctx.quick else [int(n) for n in os.environ.get("CMFGIT_BENCH_SITES", "8,32,100").split(",")]
    found = []
    for n in sizes:
        found.append(_one_size(ctx, n))
        print(f"sites: {json.dumps(found[-1])}", flush=True)  # each size as it completes (a long run)
    rows = []
    for r in found:
        for key, label, side in (("cmfgit_s", "no central hook", "cmfgit"), ("hook_s", "central hook", "hook")):
            s = r[side]
            rows.append(
                common.row(
                    f"{r['sites']} sites x {RUNS} runs push at once, {label}",
                    r[key],
                    "s",
                    peer=r["plain_s"],
                    peer_name="plain git add+commit+push",
                    target="<= 3x plain git",
                    met=r[key] <= 3 * r["plain_s"],
                    note=f"{r[key] / r['plain_s']:.1f}x plain; CPU per push {r['cpu_per_push_s'][side]:.3f} s "
                    f"(plain {r['cpu_per_push_s']['plain']:.3f} s); site-ref retries {s['site_retries']}; "
                    f"cmf/global pushed by {s['global_pushed']} site(s), {s['global_gave_up']} gave up; "
                    f"view {s['view_records']} records, cmf/global {s['cmf_global_records']}",
                )
            )
    return {"rows": rows, "raw": {"sizes": found}}
