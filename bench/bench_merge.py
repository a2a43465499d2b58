"""Benchmark: merging records (the merge driver, and git merge of two busy branches).

    python bench/bench_merge.py [--records 10000] [--base 1000] [--repeat 3]

Measures, in fresh temporary repositories:

- merge-driver start-up: ``python -m cmfgit merge-driver`` on tiny packs,
  against ``python -c pass`` in the same run (DESIGN §5: paid once per file);
- the pure merge of one pack where each side added N records;
- ``git merge`` of two branches that each add N records in the same site and
  period (so both change the same pack and git calls the driver), with
  cmfgit's hooks installed as a user has them (target: <= 2 s for N=10,000);
- the same with the N records left loose (no driver: git merges new files).

Prints a markdown table, with the machine and its load average.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import fastrecords  # noqa: E402

from cmfgit import pack  # noqa: E402
from cmfgit.merge import merge  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def env_for(home: Path) -> dict[str, str]:
    (home / ".gitconfig").write_text(
        "[user]\n\tname = bench\n\temail = bench@example.invalid\n[init]\n\tdefaultBranch = main\n"
        "[gc]\n\tauto = 0\n"  # no background git gc in the middle of a measurement
    )
    # Compiled .pyc files are used (and written) as in an installed cmfgit.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE" and not k.startswith("GIT_")}
    return {**env, "HOME": str(home), "GIT_CONFIG_NOSYSTEM": "1", "PYTHONPATH": str(ROOT)}


def timed(fn: Callable[[], object], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def sh(args: list[str], cwd: Path, env: dict[str, str]) -> None:
    subprocess.run(args, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def machine() -> str:
    git = subprocess.run(["git", "--version"], capture_output=True, text=True).stdout.strip()
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {git}"


def startup(python_exe: str, tmp: Path, env: dict[str, str], repeat: int) -> tuple[float, float]:
    r0, r1, r2 = (r[:2] for r in fastrecords.generate(0, 3))
    base, ours, theirs = pack.serialize(dict([r0])), pack.serialize(dict([r0, r1])), pack.serialize(dict([r0, r2]))
    for name, data in (("O", base), ("B", theirs)):
        (tmp / name).write_bytes(data)

    def driver() -> None:
        (tmp / "A").write_bytes(ours)
        sh(
            [
                python_exe,
                "-m",
                "cmfgit",
                "merge-driver",
                "O",
                "A",
                "B",
                "7",
                ".cmf/objects/pack/site0/2025-01.yaml",
            ],
            tmp,
            env,
        )

    def python() -> None:
        sh([python_exe, "-c", "pass"], tmp, env)

    # Interleaved, so that a burst of load on the shared machine hits both alike.
    pairs = [(timed(driver, 1), timed(python, 1)) for _ in range(repeat)]
    return statistics.median(d for d, _ in pairs), statistics.median(p for _, p in pairs)


def pure_merge(n: int, base_n: int, repeat: int) -> float:
    base = dict(r[:2] for r in fastrecords.generate(0, base_n))
    ours = {**base, **dict(r[:2] for r in fastrecords.generate(base_n, n))}
    theirs = {**base, **dict(r[:2] for r in fastrecords.generate(base_n + n, n))}
    o, a, b = (pack.serialize(x) for x in (base, ours, theirs))
    path = ".cmf/objects/pack/site0/2025-01.yaml"
    result = merge(o, a, b, path)
    assert result.clean and len(pack.parse(result.data)) == base_n + 2 * n
    return timed(lambda: merge(o, a, b, path), repeat)


def git_merge(
    python_exe: str, tmp: Path, env: dict[str, str], n: int, base_n: int, repeat: int, packed: bool, hooks: bool
) -> float:
    repo = tmp / f"{'packed' if packed else 'loose'}-{'hooks' if hooks else 'nohooks'}"
    repo.mkdir()
    sh(["git", "init", "-q"], repo, env)
    sh([python_exe, "-m", "cmfgit", "init", "--site", "site0"], repo, env)
    if not hooks:
        sh([python_exe, "-m", "cmfgit", "hooks", "uninstall"], repo, env)
    if not packed:  # keep them loose: no automatic gc from the pre-commit hook
        config = repo / ".cmf" / "config.yaml"
        config.write_text(config.read_text().replace("threshold: 1000", "threshold: 0"))
    objects = repo / ".cmf" / "objects"
    write = fastrecords.write_packed if packed else fastrecords.write_loose
    write(objects, fastrecords.generate(0, base_n))
    sh(["git", "add", "-A"], repo, env)
    sh(["git", "commit", "-q", "-m", "base"], repo, env)
    for branch, start in (("a", base_n), ("b", base_n + n)):
        sh(["git", "checkout", "-q", "-b", branch, "main"], repo, env)
        write(objects, fastrecords.generate(start, n))
        sh(["git", "add", "-A"], repo, env)
        sh(["git", "commit", "-q", "-m", branch], repo, env)
    sh(["git", "checkout", "-q", "a"], repo, env)
    tip = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()

    def once() -> None:
        sh(["git", "reset", "-q", "--hard", tip], repo, env)
        start = time.perf_counter()
        sh(["git", "merge", "-q", "--no-edit", "b"], repo, env)
        samples.append(time.perf_counter() - start)

    samples: list[float] = []
    for _ in range(repeat):
        once()
    if packed:  # packs are written once, named by content: the merge adds the other side's pack
        ids = {rid for path in (objects / "pack").rglob("*.yaml") for rid in pack.parse(path.read_bytes())}
        assert len(ids) == base_n + 2 * n
    else:
        assert sum(1 for _ in objects.glob("??/*.yaml")) == base_n + 2 * n
    return statistics.median(samples)


def measure(python_exe: str, tmp: Path, env: dict[str, str], n: int, base_n: int, repeat: int) -> dict[str, float]:
    fastrecords.check()
    driver, python = startup(python_exe, tmp, env, max(repeat, 20))
    return {
        "python": python,
        "driver": driver,
        "pure": pure_merge(n, base_n, repeat),
        "packed": git_merge(python_exe, tmp, env, n, base_n, repeat, packed=True, hooks=True),
        "bare": git_merge(python_exe, tmp, env, n, base_n, repeat, packed=True, hooks=False),
        "loose": git_merge(python_exe, tmp, env, n, base_n, repeat, packed=False, hooks=True),
    }


# -- as a module of the bench harness (bench/run.py) ---------------------------------

NAME = "merge"
TITLE = "merging records: driver start-up, and git merge of two branches that each add 10,000 records"


def run(ctx: Any) -> dict[str, Any]:
    """The harness entry point (``run(ctx)`` in bench/README.md)."""
    import common

    n = 2_000 if ctx.quick else 10_000
    r = measure(ctx.python, ctx.mkdtemp("merge-"), ctx.env, n, 1_000, 2 if ctx.quick else 3)
    rows = [
        common.row(
            "merge-driver start-up (tiny pack)",
            round(r["driver"] * 1000, 1),
            "ms",
            peer=round(r["python"] * 1000, 1),
            peer_name="python -c pass",
        ),
        common.row(f"merge of one pack, {n:,} + {n:,} new records (pure function)", round(r["pure"], 3), "s"),
        common.row(
            f"git merge, two branches each adding {n:,} records, same site and period (packed, hooks on)",
            round(r["packed"], 3),
            "s",
            target="<= 2 s at 10,000",
            met=r["packed"] <= 2.0 if n == 10_000 else None,
        ),
        common.row("the same merge, hooks off", round(r["bare"], 3), "s"),
        common.row("the same records left loose (no driver)", round(r["loose"], 3), "s"),
    ]
    return {"rows": rows, "raw": r}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000, help="records each branch adds")
    parser.add_argument("--base", type=int, default=1_000, help="records both branches start from")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="cmfgit-bench-merge-", ignore_cleanup_errors=True) as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "home").mkdir()
        r = measure(sys.executable, tmp, env_for(tmp / "home"), args.records, args.base, args.repeat)
    load_after = os.getloadavg()
    n = f"{args.records:,}"
    print(f"machine: {machine()}; loadavg before {load_before[0]:.2f}, after {load_after[0]:.2f}")
    print(f"command: python bench/bench_merge.py --records {args.records} --base {args.base} --repeat {args.repeat}")
    print()
    print("| measure | median | note |")
    print("|---|---|---|")
    print(f"| `python -c pass` | {r['python'] * 1000:.0f} ms | floor, same run |")
    print(
        f"| merge-driver start-up (tiny pack) | {r['driver'] * 1000:.0f} ms "
        f"| {r['driver'] / r['python']:.1f}x `python -c pass` |"
    )
    print(f"| merge of one pack, {n} + {n} new records (pure function) | {r['pure'] * 1000:.0f} ms | in-process |")
    what = f"`git merge`, two branches each adding {n} records, same site+period (packed)"
    print(f"| {what} | {r['packed']:.2f} s | target <= 2 s; no driver (a pack per side); hooks on |")
    print(f"| the same, hooks off | {r['bare']:.2f} s | git only |")
    print(
        f"| `git merge`, the same records left loose | {r['loose']:.2f} s | no driver: {2 * args.records:,} new files |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
