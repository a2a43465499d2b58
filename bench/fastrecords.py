"""Valid execution records at memory speed, for the merge and pack benchmarks.

One record is dumped canonically once; the others are that template with the
varying fields (uuid, a param, the start time, the site) substituted as bytes.
Every substituted value is a plain scalar of the same YAML kind as the
sentinel it replaces, so the bytes stay canonical; ``check()`` verifies that
against ``canonical.dump`` for a sample.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from blake3 import blake3

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cmfgit import canonical, pack, schema  # noqa: E402

_UUID, _N, _WHEN, _SITE = "uuidsentinelzz", 987654321, "2099-12-31T23:59:59.000000Z", "sitesentinelzz"


def record(n: int, site: str, when: str) -> dict[str, Any]:
    return {
        "schema": schema.EXECUTION,
        "uuid": f"u{n:031x}",
        "pipeline": "bench",
        "stage": "train",
        "type": "train",
        "command": ["python", "train.py", "--lr", "0.01"],
        "cwd": ".",
        "params": {"lr": 0.01, "epochs": 5, "n": n},
        "started_at": when,
        "ended_at": when,
        "exit_code": 0,
        "site": site,
        "host": "node-1",
        "user": "ana",
        "git": {
            "commit": "0" * 40,
            "branch": "main",
            "dirty": False,
            "remote": "git@example.org:ml/bench.git",
            "tree": "1" * 40,
        },
        "env": {"python": "3.11.7", "platform": "Linux-x86_64", "packages": "blake3:" + "2" * 64},
        "inputs": [
            {
                "path": "data/train.csv",
                "hash": "blake3:" + "3" * 64,
                "size": 1000,
                "type": "dataset",
                "kind": "file",
                "props": {},
            }
        ],
        "outputs": [
            {
                "path": "model.pkl",
                "hash": "blake3:" + "4" * 64,
                "size": 2000,
                "type": "model",
                "kind": "file",
                "props": {},
            }
        ],
        "metrics": {"acc": 0.9, "loss": 0.1},
    }


_TEMPLATE = canonical.dump(record(0, _SITE, _WHEN))
for _fill in (f"u{0:031x}".encode(), b"n: 0\n"):
    assert _fill in _TEMPLATE
_TEMPLATE = (
    _TEMPLATE.replace(f"u{0:031x}".encode(), _UUID.encode())
    .replace(b"  n: 0\n", f"  n: {_N}\n".encode())
    .replace(_SITE.encode(), b"\0SITE\0")
    .replace(_WHEN.encode(), b"\0WHEN\0")
)


def encode(n: int, site: str, when: str) -> bytes:
    """The canonical bytes of ``record(n, site, when)`` (site: a plain, safe name)."""
    return (
        _TEMPLATE.replace(_UUID.encode(), f"u{n:031x}".encode(), 1)
        .replace(f"  n: {_N}\n".encode(), f"  n: {n}\n".encode(), 1)
        .replace(b"\0SITE\0", site.encode())
        .replace(b"\0WHEN\0", when.encode())
    )


def check() -> None:
    for n in (0, 7, 123456):
        assert encode(n, "lab", "2026-03-01T00:00:00.000000Z") == canonical.dump(
            record(n, "lab", "2026-03-01T00:00:00.000000Z")
        )


def generate(start: int, count: int, sites: int = 1, months: int = 1) -> Iterator[tuple[str, bytes, str, str]]:
    """(id, bytes, site, yyyy-mm) for records ``start .. start+count-1``."""
    for n in range(start, start + count):
        site = f"site{n % sites}"
        m = (n // sites) % months
        month = f"{2025 + m // 12}-{1 + m % 12:02d}"
        data = encode(n, site, f"{month}-01T00:00:00.000000Z")
        yield blake3(data).hexdigest(), data, site, month


def write_loose(objects: Path, records: Iterator[tuple[str, bytes, str, str]]) -> int:
    count = 0
    for rid, data, _site, _month in records:
        shard = objects / rid[:2]
        try:
            fd = os.open(shard / f"{rid[2:]}.yaml", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileNotFoundError:
            shard.mkdir(parents=True, exist_ok=True)
            fd = os.open(shard / f"{rid[2:]}.yaml", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, data)
        os.close(fd)
        count += 1
    return count


def write_packed(objects: Path, records: Iterator[tuple[str, bytes, str, str]]) -> int:
    """Into ``pack/<site>/<yyyy-mm>-<hash>.yaml`` (gc's placement and naming): one new
    write-once pack per group, beside whatever packs are there."""
    groups: dict[tuple[str, str], dict[str, bytes]] = {}
    for rid, data, site, month in records:
        groups.setdefault((site, month), {})[rid] = data
    for (site, month), found in groups.items():
        data = pack.serialize(found)
        path = objects / "pack" / site / pack.file_name(month, data)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return sum(len(g) for g in groups.values())


if __name__ == "__main__":
    check()
    print("ok", len(encode(1, "lab", _WHEN)), "bytes per record")
