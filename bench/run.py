"""Run cmfgit's benchmarks side by side with its peers, in one command.

    python bench/run.py                 # everything (about 10 minutes)
    python bench/run.py --quick         # smaller sizes, fewer repeats, no slow peers
    python bench/run.py --only logrun api
    python bench/run.py --list
    python bench/run.py --all           # also the standalone merge/packs/index scripts

Prints a markdown table per benchmark and appends one JSON line per
benchmark to ``bench/results/<name>.jsonl``. See ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

# The benchmarks, in the order they run. To add one, write bench/bench_<name>.py
# (NAME, TITLE, run(ctx) -> dict with "rows") and list its module here.
BENCHMARKS = [
    "bench_logrun",
    "bench_api",
    "bench_hash_big",
    "bench_hash_small",
    "bench_codec",
    "bench_untracked",
    "bench_data",
    "bench_pull",
    "bench_clone",
    "bench_sites",
    "bench_ui",
]

# Standalone scripts that print their own tables, run as they are with the
# bench venv's python: name -> (script, arguments with --quick, arguments
# otherwise). They are long, so they run only when named with --only, or
# with --all.
SCRIPTS: dict[str, tuple[str, list[str], list[str]]] = {
    "merge": ("bench_merge.py", ["--records", "2000", "--repeat", "1"], []),
    "packs": ("bench_packs.py", ["--records", "10000", "--repeat", "2"], ["--records", "100000"]),
    "index": ("bench_index.py", ["10000"], ["100000"]),
    "refs_scale": ("bench_refs_scale.py", ["--refs", "1000", "--repeat", "1"], ["--refs", "10000"]),
    "export": ("bench_export.py", ["10000", "--repeat", "2"], ["100000", "--repeat", "2"]),
    "mlflow_import": ("bench_mlflow_import.py", ["--runs", "2000", "--repeat", "1"], ["--runs", "10000"]),
}


def load_benchmarks() -> list[ModuleType]:
    return [importlib.import_module(name) for name in BENCHMARKS]


class _Script:
    """A standalone script as a benchmark: its output is kept as it is."""

    def __init__(self, name: str, script: str, quick: list[str], full: list[str]) -> None:
        self.NAME = name
        self.TITLE = f"bench/{script} (its own table)"
        self.script, self.quick, self.full = script, quick, full

    def run(self, ctx: common.Context) -> dict[str, object]:
        args = self.quick if ctx.quick else self.full
        argv = [ctx.python, str(common.BENCH_DIR / self.script), *args]
        proc = ctx.run(argv, cwd=ctx.tmp)
        print(proc.stdout.rstrip())
        if proc.stderr.strip():
            print(proc.stderr.rstrip())
        return {"rows": [], "raw": {"argv": argv[1:], "stdout": proc.stdout, "stderr": proc.stderr[-20000:]}}


def find_peers(skip: set[str]) -> dict[str, str | None]:
    peers: dict[str, str | None] = {}
    for name, path in common.PEER_PATHS.items():
        override = os.environ.get(f"CMFGIT_BENCH_{name.upper()}")
        path = override or path
        peers[name] = path if name not in skip and path and os.access(path, os.X_OK) else None
    return peers


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller sizes and fewer repeats; skips slow peers")
    ap.add_argument("--only", nargs="+", metavar="NAME", help="run only these benchmarks")
    ap.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    ap.add_argument("--all", action="store_true", help="also run the standalone scripts (" + ", ".join(SCRIPTS) + ")")
    ap.add_argument(
        "--venv",
        default=os.environ.get("CMFGIT_BENCH_VENV", "/tmp/cmfgit-bench-venv"),
        help="the bench venv (created if missing; default %(default)s)",
    )
    ap.add_argument("--no-install", action="store_true", help="use the bench venv as it is (no reinstall)")
    ap.add_argument("--no-peers", nargs="*", metavar="PEER", help="skip these peers (all if none named)")
    ap.add_argument("--no-save", action="store_true", help="do not append to bench/results/")
    ap.add_argument("--tmp", default=None, help="parent of the temp dir (default: the system's)")
    args = ap.parse_args(argv)

    benchmarks: list[Any] = load_benchmarks()
    scripts = [_Script(name, *spec) for name, spec in SCRIPTS.items()]
    if args.list:
        for mod in benchmarks + scripts:
            print(f"{mod.NAME:12s} {mod.TITLE}")
        return 0
    if args.only:
        known = {mod.NAME for mod in benchmarks + scripts}
        unknown = set(args.only) - known
        if unknown:
            ap.error(f"unknown benchmark(s): {', '.join(sorted(unknown))} (known: {', '.join(sorted(known))})")
        benchmarks = [mod for mod in benchmarks + scripts if mod.NAME in args.only]
    elif args.all:
        benchmarks += scripts

    skip = set(common.PEER_PATHS) if args.no_peers == [] else set(args.no_peers or ())
    peers = find_peers(skip)
    python = common.install_venv(Path(args.venv), reinstall=not args.no_install)
    commit = common.source_commit()
    host = common.machine()
    print(f"# cmfgit benchmarks ({'quick' if args.quick else 'full'}), tree {commit}")
    print(f"machine: {host['nproc']} cores, {host['cpu']}; python {host['python']}; {host['git']}")
    print(f"load average at start: {common.loadavg()}")
    print("peers: " + ", ".join(f"{k}={'yes' if v else 'no'}" for k, v in peers.items()))

    failures = 0
    tmp = Path(tempfile.mkdtemp(prefix="cmfgit-bench-", dir=args.tmp))
    try:
        for mod in benchmarks:
            ctx = common.Context(python, Path(tempfile.mkdtemp(prefix=f"{mod.NAME}-", dir=tmp)), args.quick, peers)
            print(f"\n## {mod.NAME}: {mod.TITLE}\n", flush=True)
            load_start, started = common.loadavg(), time.time()
            record: dict[str, object] = {
                "bench": mod.NAME,
                "quick": args.quick,
                "commit": commit,
                "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
                "machine": host,
                "loadavg_start": load_start,
            }
            try:
                result = mod.run(ctx)
                record["rows"] = result["rows"]
                record["raw"] = result.get("raw", {})
                if result["rows"]:
                    print(common.markdown(result["rows"]))
                for note in result.get("notes", []):
                    print(f"\n- {note}")
            except Exception as exc:  # one broken benchmark must not hide the others
                failures += 1
                record["error"] = f"{type(exc).__name__}: {exc}"[-3000:]
                print(f"FAILED: {record['error']}")
            record["seconds"] = round(time.time() - started, 1)
            record["loadavg_end"] = common.loadavg()
            print(f"\n(load average {load_start} -> {record['loadavg_end']}; {record['seconds']} s)", flush=True)
            if not args.no_save:
                common.RESULTS_DIR.mkdir(exist_ok=True)
                with open(common.RESULTS_DIR / f"{mod.NAME}.jsonl", "a", encoding="utf-8") as out:
                    out.write(json.dumps(record) + "\n")
            shutil.rmtree(ctx.tmp, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\nload average at end: {common.loadavg()}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
