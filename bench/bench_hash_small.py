"""Hashing a directory of 10,000 small files (4 KiB each), first and again.

cmfgit: ``workers/hash_worker.py small``: the directory manifest hashed with
an empty stat cache, then re-checked through the cache (files unchanged).
Also end to end through the CLI: ``cmfgit log-run -i data -- true`` twice in
a repo (the second run re-checks). Peer (full run): ``dvc add`` of the same
shape of directory, then ``dvc status`` on it unchanged
(``bench-peers/dvc_bench.py``, its own files and repo).
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Any

import common

NAME = "hash_small"
TITLE = "10,000 small files: first hash and unchanged re-check vs dvc add / dvc status"
FILES = 10_000
KIB = 4


def run(ctx: common.Context) -> dict[str, Any]:
    repo = ctx.make_repo("small")
    data = repo / "data"
    data.mkdir()
    t = time.perf_counter()
    for i in range(FILES):
        with open(data / f"f{i:06d}.bin", "wb") as fh:
            fh.write(os.urandom(KIB << 10))
    write_s = time.perf_counter() - t
    time.sleep(2.1)  # the stat cache trusts only files modified at least 2 s before hashing
    out = ctx.worker("hash_worker", "small", str(data), str(ctx.tmp / "hashcache.sqlite"))
    if out["files"] != FILES:
        raise RuntimeError(f"hashed {out['files']} files, expected {FILES}")

    commands = {"log-run -i data": [ctx.cmfgit, "log-run", "-q", "-s", "hash", "-i", "data", "--", "true"]}
    cli_first = common.time_commands(ctx, commands, 1, repo, warmup=0)["log-run -i data"][0]
    cli_again = common.time_commands(ctx, commands, 3 if ctx.quick else 5, repo, warmup=0)["log-run -i data"]

    dvc = ctx.dvc_bench("big,version", "--small-files", str(FILES), "--small-kib", str(KIB), status_repeats=3)
    results = (dvc or {}).get("results", {})
    add = results.get("dvc_add_smalldir", {}).get("median_s")
    status = results.get("dvc_status_smalldir", {}).get("median_s")
    recheck = statistics.median(out["recheck_s"])
    rows = [
        common.row(
            f"hash {FILES:,} × {KIB} KiB files, first time (empty stat cache)",
            round(out["first_s"], 3),
            "s",
            peer=add,
            peer_name="`dvc add` (hash + copy to cache)" if add else "",
            target="≤ 2 s",
            met=out["first_s"] <= 2.0,
        ),
        common.row(
            f"re-check the {FILES:,} unchanged files (stat cache), median of 3",
            round(recheck, 3),
            "s",
            peer=status,
            peer_name="`dvc status`" if status else "",
            target="≤ 0.3 s",
            met=recheck <= 0.3,
        ),
        common.row(
            "`cmfgit log-run -i data -- true`, first run (hashes) / re-runs (re-check), wall",
            round(statistics.median(cli_again), 3),
            "s",
            note=f"first run {cli_first:.2f} s",
        ),
    ]
    return {
        "rows": rows,
        "raw": {
            "files": FILES,
            "kib": KIB,
            "write_files_s": write_s,
            "cmfgit": out,
            "cli_first_s": cli_first,
            "cli_again_s": cli_again,
            "dvc": dvc,
        },
        "notes": [
            f"Writing the {FILES:,} files took {write_s:.2f} s (kernel time on this disk varies a lot); "
            "they were then left to age 2.1 s, past the stat cache's racy-clean window.",
        ],
    }
