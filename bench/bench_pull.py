"""Benchmark: ``cmfgit pull --pipeline`` of a slice of a large global view.

    python bench/bench_pull.py [--records 100000] [--python PY]

A central bare repository whose ``cmf/global`` holds N records (default
100,000) in packs, as gc places them (4 sites x 24 months = 96 packs), over
6 pipelines, so one pipeline is about 1/6 of the view (16,667 of 100,000).
In a fresh clone of it, in one run:

- ``git fetch`` of ``cmf/global`` (the peer: what the pull fetches, in a
  second fresh clone of the same state);
- ``cmfgit pull --pipeline p1`` (the first pull: fetch, choose, write);
- the same pull again (a no-op: nothing changed);
- the first ``cmfgit log -n 5`` after it (the query index is built);
- the same pull in a third clone whose query index exists (the pull indexes
  what it writes), and the first log after it.

It also checks what the pull wrote: every selected record present exactly
once, and how many loose files and packs it left. Prints a markdown table,
with the machine and its load average.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fastrecords  # noqa: E402

SITES, MONTHS, PIPELINES = 4, 24, 6
PIPELINE = "p1"

NAME = "pull"
TITLE = "cmfgit pull --pipeline of ~1/6 of a large global view, vs the git fetch under it; no-op re-pull"


def _records(n: int) -> dict[tuple[str, str], dict[str, bytes]]:
    """Records grouped by (site, month), pipeline ``p<n % 6>``."""
    from blake3 import blake3

    groups: dict[tuple[str, str], dict[str, bytes]] = {}
    for _rid, data, site, month in fastrecords.generate(0, n, SITES, MONTHS):
        number = int(data.split(b"\n  n: ", 1)[1].split(b"\n", 1)[0])
        data = data.replace(b"\npipeline: bench\n", f"\npipeline: p{number % PIPELINES}\n".encode(), 1)
        groups.setdefault((site, month), {})[blake3(data).hexdigest()] = data
    return groups


class _Runner:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.cpu = 0.0

    def run(self, argv: Sequence[str], cwd: Path) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(list(argv), cwd=cwd, env=self.env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(map(str, argv))} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
        return proc

    def timed(self, argv: Sequence[str], cwd: Path) -> tuple[float, str]:
        """Wall seconds and stdout; the CPU seconds (user + system) go to ``self.cpu``."""
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = self.run(argv, cwd)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        return wall, proc.stdout


def central(r: _Runner, cmfgit: list[str], tmp: Path, n: int) -> tuple[str, int]:
    """A bare central repository: main initialised for cmfgit, cmf/global with ``n`` records."""
    from cmfgit import pack

    bare = tmp / "central.git"
    r.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], tmp)
    seed = tmp / "seed"
    seed.mkdir()
    r.run(["git", "init", "-q", "-b", "main"], seed)
    (seed / "README").write_text("pipeline code\n")
    r.run([*cmfgit, "init", "--site", "seed"], seed)
    r.run([*cmfgit, "hooks", "uninstall"], seed)
    r.run(["git", "add", "-A"], seed)
    r.run(["git", "commit", "-q", "-m", "pipeline with cmfgit"], seed)
    r.run(["git", "push", "-q", bare.as_uri(), "main"], seed)
    r.run(["git", "checkout", "-q", "-b", "global"], seed)
    selected = 0
    for (site, month), records in _records(n).items():
        path = seed / ".cmf" / "objects" / "pack" / site / f"{month}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pack.serialize(records))
        selected += sum(1 for data in records.values() if f"\npipeline: {PIPELINE}\n".encode() in data)
    r.run(["git", "add", "-A"], seed)
    # With the trailer cmfgit's own global updates write: readers take the count from it
    # (without it every pull, even a no-op, counts the view's records by reading every pack).
    r.run(["git", "commit", "-q", "-m", f"global view: {n} records", "-m", f"Cmfgit-Records: {n}"], seed)
    r.run(["git", "push", "-q", bare.as_uri(), "global:refs/heads/cmf/global"], seed)
    return bare.as_uri(), selected


def measure(cmfgit: list[str], env: dict[str, str], tmp: Path, n: int) -> dict[str, Any]:
    r = _Runner(env)
    url, expected = central(r, cmfgit, tmp, n)
    result: dict[str, Any] = {"records": n, "expected": expected}
    plain = tmp / "plain"
    r.run(["git", "clone", "-q", "--single-branch", "-b", "main", url, str(plain)], tmp)
    site = tmp / "site"
    r.run(["git", "clone", "-q", "--single-branch", "-b", "main", url, str(site)], tmp)
    r.run([*cmfgit, "init", "--site", "reader"], site)
    fetch = ["git", "fetch", "-q", "--no-tags", "origin", "+refs/heads/cmf/global:refs/remotes/origin/cmf/global"]
    result["git_fetch"], _ = r.timed(fetch, plain)
    result["git_fetch_cpu"] = r.cpu
    result["pull"], out = r.timed([*cmfgit, "pull", "--pipeline", PIPELINE], site)
    result["pull_cpu"] = r.cpu
    result["pull_out"] = out.strip()
    status_before = r.run(["git", "status", "--porcelain", "--untracked-files=all"], site).stdout
    result["noop_pull"], out = r.timed([*cmfgit, "pull", "--pipeline", PIPELINE], site)
    result["noop_pull_cpu"] = r.cpu
    result["noop_out"] = out.strip()
    result["noop_status_same"] = status_before == r.run(["git", "status", "--porcelain", "-uall"], site).stdout
    result["first_log"], _ = r.timed([*cmfgit, "log", "-n", "5"], site)
    result["first_log_cpu"] = r.cpu
    result["second_log"], _ = r.timed([*cmfgit, "log", "-n", "5"], site)
    result["second_log_cpu"] = r.cpu
    # The same pull into a clone whose query index exists already (a clone in use):
    # the pull then indexes the records it writes, and the next log has nothing to do.
    used = tmp / "used"
    r.run(["git", "clone", "-q", "--single-branch", "-b", "main", url, str(used)], tmp)
    r.run([*cmfgit, "init", "--site", "reader"], used)
    r.run([*cmfgit, "log", "-n", "1"], used)
    result["indexed_pull"], _ = r.timed([*cmfgit, "pull", "--pipeline", PIPELINE], used)
    result["indexed_pull_cpu"] = r.cpu
    result["indexed_log"], _ = r.timed([*cmfgit, "log", "-n", "5"], used)
    result["indexed_log_cpu"] = r.cpu
    objects = site / ".cmf" / "objects"
    loose = sum(len(os.listdir(objects / d)) for d in os.listdir(objects) if len(d) == 2)
    packs = list((objects / "pack").rglob("*.yaml")) if (objects / "pack").is_dir() else []
    from cmfgit import pack

    ids: list[str] = []
    for p in packs:
        ids += list(pack.parse(p.read_bytes(), str(p), verify=False))
    result["loose_files"], result["packs"], result["packed_records"] = loose, len(packs), len(ids)
    result["distinct_packed"] = len(set(ids))
    return result


def table(result: dict[str, Any]) -> str:
    fetch = result["git_fetch"]
    lines = [
        "| measure | wall s | CPU s (user+sys) | wall vs `git fetch` | target |",
        "|---|---|---|---|---|",
        f"| `git fetch` of cmf/global ({result['records']:,} records) | {fetch:.2f} | {result['git_fetch_cpu']:.2f} "
        "| 1.0× | |",
        f"| `cmfgit pull --pipeline {PIPELINE}` ({result['expected']:,} records) | {result['pull']:.2f} | "
        f"{result['pull_cpu']:.2f} | {result['pull'] / fetch:.1f}× | <= 3× |",
        f"| the same pull again (no-op) | {result['noop_pull']:.2f} | {result['noop_pull_cpu']:.2f} | | <= 0.5 s |",
        f"| first `cmfgit log -n 5` after it | {result['first_log']:.2f} | {result['first_log_cpu']:.2f} | | |",
        f"| second `cmfgit log -n 5` | {result['second_log']:.2f} | {result['second_log_cpu']:.2f} | | |",
        f"| the pull into a clone whose index exists (it indexes what it writes) | {result['indexed_pull']:.2f} | "
        f"{result['indexed_pull_cpu']:.2f} | {result['indexed_pull'] / fetch:.1f}× | |",
        f"| first `cmfgit log -n 5` after that | {result['indexed_log']:.2f} | {result['indexed_log_cpu']:.2f} | | |",
    ]
    lines.append("")
    lines.append(
        f"written: {result['packed_records']:,} records in {result['packs']} packs "
        f"({result['distinct_packed']:,} distinct), {result['loose_files']} loose files; "
        f"no-op pull left `git status` unchanged: {result['noop_status_same']}"
    )
    return "\n".join(lines)


# -- as a module of the bench harness (bench/run.py) ---------------------------------


def run(ctx: Any) -> dict[str, Any]:
    """The harness entry point: 100,000 records, or 20,000 with --quick."""
    import common

    n = 20_000 if ctx.quick else 100_000
    fastrecords.check()
    r = measure([ctx.cmfgit], ctx.env, ctx.mkdtemp("pull-"), n)
    print(table(r))
    rows = [
        common.row(
            f"cmfgit pull --pipeline ({r['expected']:,} of {n:,} records)",
            round(r["pull"], 3),
            "s",
            peer=round(r["git_fetch"], 3),
            peer_name="git fetch of cmf/global",
            target="<= 3x git fetch",
            met=r["pull"] <= 3 * r["git_fetch"],
        ),
        common.row("no-op re-pull", round(r["noop_pull"], 3), "s", target="<= 0.5 s", met=r["noop_pull"] <= 0.5),
        common.row("first cmfgit log -n 5 after the pull", round(r["first_log"], 3), "s"),
    ]
    return {"rows": rows, "raw": r, "notes": [f"{r['packs']} packs and {r['loose_files']} loose files written"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--python", default=sys.executable, help="the python whose cmfgit is measured")
    args = parser.parse_args()
    from bench_merge import env_for, machine

    fastrecords.check()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="cmfgit-bench-pull-", ignore_cleanup_errors=True) as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "home").mkdir()
        env = env_for(tmp / "home")
        env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)  # this tree's cmfgit
        result = measure([args.python, "-m", "cmfgit"], env, tmp, args.records)
    load_after = os.getloadavg()
    print(f"machine: {machine()}; loadavg before {load_before[0]:.2f}, after {load_after[0]:.2f}")
    print(f"command: python bench/bench_pull.py --records {args.records}")
    print()
    print(table(result))
    print()
    print(f"pull said: {result['pull_out']!r}")
    print(f"no-op pull said: {result['noop_out']!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
