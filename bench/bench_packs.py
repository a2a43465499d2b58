"""Benchmark: git with many records, loose versus packed.

    python bench/bench_packs.py [--records 100000] [--layouts loose,packed] [--repeat 5]
    python bench/bench_packs.py --records 1000000 --layouts packed

For each layout, in a fresh repository (records spread over 4 sites and 24
months, as ``cmfgit gc`` places them):

- ``git add -A`` and ``git commit`` of all the records (once);
- ``git status`` (median);
- add one record and commit: write one loose record, ``git add`` it,
  ``git commit`` — plain git, hooks off (median; target <= 0.2 s at 1,000,000);
- the same with cmfgit's hooks on (pre-commit stages and verifies the record,
  post-commit keeps its code version);
- ``cmfgit log-run --commit -- true`` end to end (median).

Automatic gc is off (``gc.threshold: 0``) so that the loose layout stays loose.
Prints a markdown table, with the machine and its load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fastrecords  # noqa: E402
from bench_merge import env_for, machine, sh  # noqa: E402

SITES, MONTHS = 4, 24


def seconds(args: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    sh(args, cwd, env)
    return time.perf_counter() - start


def median(fn: object, repeat: int) -> float:
    return statistics.median(fn() for _ in range(repeat))  # type: ignore[operator]


def measure(python_exe: str, tmp: Path, env: dict[str, str], n: int, layout: str, repeat: int) -> dict[str, float]:
    repo = tmp / layout
    repo.mkdir()
    sh(["git", "init", "-q"], repo, env)
    sh([python_exe, "-m", "cmfgit", "init", "--site", "site0"], repo, env)
    config = repo / ".cmf" / "config.yaml"
    config.write_text(config.read_text().replace("threshold: 1000", "threshold: 0"))
    sh([python_exe, "-m", "cmfgit", "hooks", "uninstall"], repo, env)
    objects = repo / ".cmf" / "objects"
    write = fastrecords.write_packed if layout == "packed" else fastrecords.write_loose
    start = time.perf_counter()
    write(objects, fastrecords.generate(0, n, SITES, MONTHS))
    made = time.perf_counter() - start
    result = {"write": made}
    result["add"] = seconds(["git", "add", "-A"], repo, env)
    result["commit"] = seconds(["git", "commit", "-q", "-m", "records"], repo, env)
    sh(["git", "status", "--porcelain"], repo, env)  # warm
    result["status"] = median(lambda: seconds(["git", "status", "--porcelain"], repo, env), repeat)
    counter = iter(range(n, n + 10 * repeat + 10))

    def add_one() -> float:
        fastrecords.write_loose(objects, fastrecords.generate(next(counter), 1, SITES, MONTHS))
        start = time.perf_counter()
        sh(["git", "add", "-A", ".cmf/objects"], repo, env)
        sh(["git", "commit", "-q", "-m", "one record"], repo, env)
        return time.perf_counter() - start

    result["add_one"] = median(add_one, repeat)
    sh([python_exe, "-m", "cmfgit", "hooks", "install"], repo, env)
    result["add_one_hooks"] = median(add_one, repeat)
    log_run = [python_exe, "-m", "cmfgit", "log-run", "-q", "--commit", "-s", "bench", "--", "true"]
    result["log_run_commit"] = median(lambda: seconds(log_run, repo, env), repeat)
    result["files"] = float(len(subprocess.run(["git", "ls-files"], cwd=repo, capture_output=True).stdout.splitlines()))
    return result


# -- as a module of the bench harness (bench/run.py) ---------------------------------

NAME = "packs"
TITLE = "git with many records: loose vs packed (status, add one record and commit)"


def run(ctx: Any) -> dict[str, Any]:
    """The harness entry point (``run(ctx)`` in bench/README.md): 100,000 records, or 10,000 with --quick."""
    import common

    n = 10_000 if ctx.quick else 100_000
    repeat = 3 if ctx.quick else 5
    fastrecords.check()
    r = {layout: measure(ctx.python, ctx.mkdtemp(f"packs-{layout}-"), ctx.env, n, layout, repeat) for layout in LAYOUTS}
    rows = []
    for key, label in (("status", "git status"), ("add_one", "add one record and commit (plain git)")):
        rows.append(
            common.row(
                f"{label}, {n:,} records packed",
                round(r["packed"][key], 4),
                "s",
                peer=round(r["loose"][key], 4),
                peer_name=f"{n:,} records loose",
                target="<= 0.2 s at 1,000,000",
            )
        )
    rows.append(
        common.row("add one record and commit, cmfgit hooks on (packed)", round(r["packed"]["add_one_hooks"], 4), "s")
    )
    rows.append(common.row("cmfgit log-run --commit -- true (packed)", round(r["packed"]["log_run_commit"], 4), "s"))
    return {
        "rows": rows,
        "raw": r,
        "notes": ["1,000,000 records: python bench/bench_packs.py --records 1000000 --layouts packed"],
    }


LAYOUTS = ("loose", "packed")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--layouts", default="loose,packed")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    fastrecords.check()
    load_before = os.getloadavg()
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="cmfgit-bench-packs-", ignore_cleanup_errors=True) as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "home").mkdir()
        env = env_for(tmp / "home")
        python = median(lambda: seconds([sys.executable, "-c", "pass"], tmp, env), 5)
        for layout in args.layouts.split(","):
            results[layout] = measure(sys.executable, tmp, env, args.records, layout, args.repeat)
    load_after = os.getloadavg()
    layouts = list(results)
    print(f"machine: {machine()}; loadavg before {load_before[0]:.2f}, after {load_after[0]:.2f}")
    print(
        f"command: python bench/bench_packs.py --records {args.records} --layouts {args.layouts} --repeat {args.repeat}"
    )
    print(f"records: {args.records:,} ({SITES} sites x {MONTHS} months); `python -c pass`: {python * 1000:.0f} ms")
    print()
    print("| measure | " + " | ".join(layouts) + " |")
    print("|---|" + "---|" * len(layouts))
    rows = [
        ("tracked files", "files", "{:,.0f}"),
        ("write the records (generator)", "write", "{:.1f} s"),
        ("`git add -A` (all records)", "add", "{:.1f} s"),
        ("`git commit` (all records)", "commit", "{:.1f} s"),
        ("`git status`", "status", "{:.3f} s"),
        ("add one record and commit (git, no hooks)", "add_one", "{:.3f} s"),
        ("add one record and commit (git, cmfgit hooks)", "add_one_hooks", "{:.3f} s"),
        ("`cmfgit log-run --commit -- true`", "log_run_commit", "{:.3f} s"),
    ]
    for label, key, fmt in rows:
        print(f"| {label} | " + " | ".join(fmt.format(results[k][key]) for k in layouts) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
