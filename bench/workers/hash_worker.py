"""Hashing through cmfgit's Hasher, timed inside the process (no start-up).

usage:
  hash_worker.py big FILE           one hash of FILE without the stat cache, then
                                    python blake3 update_mmap (AUTO threads) as the floor
  hash_worker.py small DIR CACHE    DIR hashed with a fresh stat cache, then re-checked
                                    three times through it (a new Hasher each time)
prints one JSON line
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def big(path: str) -> dict[str, object]:
    from blake3 import blake3

    from cmfgit.hashing import Hasher

    hasher = Hasher(None, progress=False)
    t = time.perf_counter()
    digest = hasher.hash_path(path)
    cmfgit_s = time.perf_counter() - t
    t = time.perf_counter()
    floor = blake3(max_threads=blake3.AUTO)
    floor.update_mmap(path)
    floor_hex = floor.hexdigest()
    floor_s = time.perf_counter() - t
    if digest.hash != "blake3:" + floor_hex:
        raise SystemExit(f"hash mismatch: {digest.hash} != {floor_hex}")
    return {"cmfgit_s": cmfgit_s, "blake3_mmap_s": floor_s, "hash": digest.hash, "size": digest.size}


def small(directory: str, cache: str) -> dict[str, object]:
    from cmfgit.hashing import Hasher

    cache_path = Path(cache)
    if cache_path.exists():
        os.unlink(cache_path)
    hasher = Hasher(cache_path, progress=False)
    t = time.perf_counter()
    first = hasher.hash_path(directory)
    first_s = time.perf_counter() - t
    hasher.close()
    rechecks = []
    for _ in range(3):
        hasher = Hasher(cache_path, progress=False)
        t = time.perf_counter()
        again = hasher.hash_path(directory)
        rechecks.append(time.perf_counter() - t)
        hasher.close()
        if again != first:
            raise SystemExit("re-check gave another digest")
    return {"first_s": first_s, "recheck_s": rechecks, "files": first.files, "hash": first.hash}


def main() -> int:
    mode = sys.argv[1]
    result = big(sys.argv[2]) if mode == "big" else small(sys.argv[2], sys.argv[3])
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
