"""Hashing one big file (1 GiB; 256 MiB with --quick), page cache warm.

cmfgit's Hasher (no stat cache, timed in-process) interleaved with ``b3sum``
(the whole process) and Python blake3's ``update_mmap`` with AUTO threads
(in the same worker, right after cmfgit). In the full run, ``dvc add`` of a
1 GiB file (``bench-peers/dvc_bench.py``; it also copies into its cache).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import time
from typing import Any

import common

NAME = "hash_big"
TITLE = "hashing one big file vs b3sum"


def run(ctx: common.Context) -> dict[str, Any]:
    mib = 256 if ctx.quick else 1024
    repeats = 3 if ctx.quick else 5
    path = ctx.tmp / "big.bin"
    with open(path, "wb") as fh:
        for _ in range(mib // 64):
            fh.write(os.urandom(64 << 20))
    subprocess.run(["cat", str(path)], stdout=subprocess.DEVNULL, check=True)  # warm the page cache
    size_mb = (mib << 20) / 1e6
    b3sum = ctx.peer("b3sum")
    cmfgit_s: list[float] = []
    floor_s: list[float] = []
    b3sum_s: list[float] = []
    for _ in range(repeats):
        out = ctx.worker("hash_worker", "big", str(path))
        cmfgit_s.append(out["cmfgit_s"])
        floor_s.append(out["blake3_mmap_s"])
        if b3sum:
            t = time.perf_counter()
            proc = ctx.run([b3sum, str(path)])
            b3sum_s.append(time.perf_counter() - t)
            if "blake3:" + proc.stdout.split()[0] != out["hash"]:
                raise RuntimeError("b3sum and cmfgit disagree")
    dvc = ctx.dvc_bench("small,version", "--big-mib", str(mib))

    mbps = size_mb / statistics.median(cmfgit_s)
    rows = []
    if b3sum_s:
        b3 = size_mb / statistics.median(b3sum_s)
        rows.append(
            common.row(
                f"hash {mib} MiB, MB/s (median of {repeats})",
                round(mbps, 1),
                "MB/s",
                peer=round(b3, 1),
                peer_name="b3sum",
                higher_is_better=True,
                target="≥ 90% of b3sum",
                met=mbps >= 0.9 * b3,
                note=f"{mbps / b3:.0%} of b3sum",
            )
        )
    floor = size_mb / statistics.median(floor_s)
    rows.append(
        common.row(
            f"hash {mib} MiB, MB/s",
            round(mbps, 1),
            "MB/s",
            peer=round(floor, 1),
            peer_name="python blake3 update_mmap (AUTO threads)",
            higher_is_better=True,
        )
    )
    dvc_add = (dvc or {}).get("results", {}).get("dvc_add_big")
    if dvc_add:
        rows.append(
            common.row(
                f"hash {mib} MiB, MB/s",
                round(mbps, 1),
                "MB/s",
                peer=dvc_add["MB_per_s"],
                peer_name="`dvc add` (hash + copy to cache)",
                higher_is_better=True,
            )
        )
    return {
        "rows": rows,
        "raw": {
            "mib": mib,
            "cmfgit_s": cmfgit_s,
            "blake3_mmap_s": floor_s,
            "b3sum_s": b3sum_s,
            "dvc": dvc,
        },
        "notes": [f"The file was written then read once, so the page cache is warm; {ctx.peers.get('b3sum')}."],
    }
