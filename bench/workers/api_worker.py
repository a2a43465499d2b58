"""Executions per second through the Python API, in one process.

Runs in the bench venv (cmfgit installed as users get it). Each execution has
the shape DESIGN §10 names: 10 params, 2 inputs, 1 output, 5 metrics; no git
commit. The inputs and the output are files that already exist and are older
than the hash cache's racy-clean window (2 s), so they are re-checked through
the stat cache, as in a sweep over hyper-parameters. ``--fresh-output``
rewrites the 4 KiB output before each run, so it is hashed every time.

Also measures the floor every execution pays: creating a record-sized file,
fsync, rename (DESIGN §11 keeps the fsync), after the runs; and, inside each
run, the time its record's create, fsync and rename took (wrappers around
``os.open``/``os.fsync``/``os.replace`` that call the real functions).

usage: api_worker.py REPO RUNS [--fresh-output]
prints one JSON line
"""

from __future__ import annotations

import json
import os
import sys
import time


def main() -> int:
    repo, runs = sys.argv[1], int(sys.argv[2])
    fresh = "--fresh-output" in sys.argv[3:]
    os.chdir(repo)
    t0 = time.perf_counter()
    import cmfgit
    import cmfgit.api  # noqa: F401  (the import cost is reported apart)

    import_s = time.perf_counter() - t0

    def one(i: int) -> None:
        if fresh:
            with open("model.bin", "wb") as fh:
                fh.write(os.urandom(4096))
        params = {
            "p0": f"run-{i}", "p1": i % 10, "lr": 0.001 * (i % 7 + 1), "epochs": 10, "batch": 64,
            "seed": i, "opt": "adam", "layers": 4, "dropout": 0.1, "dataset": "train.csv",
        }  # fmt: skip
        with cmfgit.run(pipeline="bench", stage="train", params=params) as run:
            run.log_input("data/a.csv", type="dataset")
            run.log_input("data/b.csv", type="dataset")
            run.log_output("model.bin", type="model")
            run.log_metrics({"acc": 0.5 + (i % 50) / 100, "loss": 1.0 / (i + 1), "f1": 0.7, "prec": 0.8, "rec": 0.6})

    # The record's own file-system calls, timed inside the runs: creating the
    # temp file (os.open with O_CREAT), fsync and the rename. The wrappers call
    # the real functions (about a microsecond each of overhead); the split
    # says how much of a run the disk takes at that very moment.
    spent = [0.0, 0.0]  # [create + rename, fsync] of the current run
    real_open, real_fsync, real_replace = os.open, os.fsync, os.replace

    def timed_open(path, flags, *args, **kwargs):  # type: ignore[no-untyped-def]
        if not flags & os.O_CREAT:
            return real_open(path, flags, *args, **kwargs)
        t = time.perf_counter()
        try:
            return real_open(path, flags, *args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - t

    def timed_fsync(fd):  # type: ignore[no-untyped-def]
        t = time.perf_counter()
        try:
            return real_fsync(fd)
        finally:
            spent[1] += time.perf_counter() - t

    def timed_replace(*args, **kwargs):  # type: ignore[no-untyped-def]
        t = time.perf_counter()
        try:
            return real_replace(*args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - t

    os.open, os.fsync, os.replace = timed_open, timed_fsync, timed_replace
    one(0)  # opens the session: config, hash cache, git state
    per_run, run_fsync, run_create_rename = [], [], []
    loop0 = time.perf_counter()
    for i in range(1, runs + 1):
        spent[0] = spent[1] = 0.0
        t = time.perf_counter()
        one(i)
        per_run.append(time.perf_counter() - t)
        run_create_rename.append(spent[0])
        run_fsync.append(spent[1])
    loop_s = time.perf_counter() - loop0
    os.open, os.fsync, os.replace = real_open, real_fsync, real_replace

    # The fsync floor, on the same file system: a new record-sized file in one
    # of 256 directories, fsync, rename (what fsutil.atomic_write does).
    sample = max((p for p in os.scandir(".cmf/objects") if p.is_dir()), key=lambda e: e.name)
    record = next(os.scandir(sample.path))
    payload = open(record.path, "rb").read()
    floor_dir = os.path.join(".git", "bench-fsync")
    fsync_times = []
    for i in range(runs):
        shard = os.path.join(floor_dir, f"{i % 256:02x}")
        os.makedirs(shard, exist_ok=True)
        tmp = os.path.join(shard, f".tmp-{i}")
        t = time.perf_counter()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, payload)
        os.fsync(fd)
        os.close(fd)
        os.replace(tmp, os.path.join(shard, f"{i}.yaml"))
        fsync_times.append(time.perf_counter() - t)
    print(
        json.dumps(
            {
                "runs": runs,
                "fresh_output": fresh,
                "import_s": import_s,
                "loop_s": loop_s,
                "per_run_s": per_run,
                "run_fsync_s": run_fsync,
                "run_create_rename_s": run_create_rename,
                "fsync_floor_s": fsync_times,
                "record_bytes": len(payload),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
