"""Records per second through the canonical codec: fast path vs libyaml.

Builds N realistic execution records (the API shape: 10 params, 2 inputs,
1 output, 5 metrics, git and env blocks), then times, best of 3 passes:
libyaml dump (the reference), cmfgit's dump (fastyaml), libyaml's safe C
load, ``canonical.load_fast``, and ``canonical.decode`` (the strict check
fsck and the merge driver use). Asserts the two dumps are byte-identical.

usage: codec_worker.py N
prints one JSON line
"""

from __future__ import annotations

import json
import os
import sys
import time


def record(i: int) -> dict[str, object]:
    h = os.urandom(32).hex()
    return {
        "schema": "cmfgit/execution/1",
        "uuid": os.urandom(16).hex(),
        "pipeline": f"pipe-{i % 7}",
        "stage": ("prepare", "train", "evaluate")[i % 3],
        "type": "train",
        "command": ["python", "train.py", "--lr", str(0.001 * (i % 9 + 1))],
        "cwd": ".",
        "params": {
            "p0": f"run-{i}",
            "p1": i % 10,
            "lr": 0.001 * (i % 7 + 1),
            "epochs": 10,
            "batch": 64,
            "seed": i,
            "opt": "adam",
            "layers": 4,
            "dropout": 0.1,
            "dataset": "data/train.csv",
        },  # fmt: skip
        "started_at": f"2026-11-{i % 28 + 1:02d}T10:00:{i % 60:02d}.{i % 999999:06d}Z",
        "ended_at": f"2026-11-{i % 28 + 1:02d}T10:01:{i % 60:02d}.{i % 999999:06d}Z",
        "exit_code": 0 if i % 11 else 1,
        "site": f"site-{i % 3}",
        "host": "worker-7",
        "user": "alice",
        "git": {"commit": h[:40], "branch": "main", "dirty": bool(i % 2), "remote": None, "tree": h[24:64]},
        "env": {"python": "3.11.7", "platform": "Linux-6.1-x86_64", "packages": "blake3:" + h, "vars": {}},
        "inputs": [
            {
                "path": f"data/{n}.csv",
                "hash": "blake3:" + os.urandom(32).hex(),
                "size": 4096 + i,
                "type": "dataset",
                "kind": "file",
                "props": {},
            }
            for n in ("train", "test")
        ],  # fmt: skip
        "outputs": [
            {
                "path": "model.pkl",
                "hash": "blake3:" + os.urandom(32).hex(),
                "size": 10_000 + i,
                "type": "model",
                "kind": "file",
                "props": {"framework": "sklearn"},
            }
        ],  # fmt: skip
        "metrics": {"acc": 0.5 + (i % 50) / 100, "loss": 1.0 / (i + 1), "f1": 0.7, "prec": 0.8, "rec": 0.6},
    }


def best(fn, items: list) -> float:  # type: ignore[no-untyped-def,type-arg]
    times = []
    for _ in range(3):
        t = time.perf_counter()
        for item in items:
            fn(item)
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> int:
    n = int(sys.argv[1])
    import yaml

    from cmfgit import canonical

    records = [record(i) for i in range(n)]
    datas = [canonical.dump_libyaml(r) for r in records]
    if any(canonical.dump(r) != d for r, d in zip(records, datas)):
        raise SystemExit("fast dump differs from libyaml")
    loader = yaml.CSafeLoader
    times = {
        "dump_libyaml": best(canonical.dump_libyaml, records),
        "dump_fast": best(canonical.dump, records),
        "load_libyaml": best(lambda d: yaml.load(d, Loader=loader), datas),
        "load_fast": best(canonical.load_fast, datas),
        "decode_strict": best(canonical.decode, datas),
    }
    print(json.dumps({"records": n, "avg_bytes": sum(map(len, datas)) / n, "seconds": times}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
