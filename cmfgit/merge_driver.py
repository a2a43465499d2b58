"""``cmfgit merge-driver %O %A %B %L %P``: the entry point git calls.

Git runs it once per conflicted record file (``.gitattributes``:
``.cmf/objects/** merge=cmfgit``). It reads the base (%O), ours (%A) and
theirs (%B), writes the merge into %A and exits 0, or 1 when git must report
a conflict. The work is :func:`cmfgit.merge.merge`; this module only does the
file I/O, so start-up stays lean (no yaml, typer or rich).
"""

from __future__ import annotations

import sys
from pathlib import Path

from cmfgit.errors import UsageError
from cmfgit.fsutil import atomic_write
from cmfgit.merge import DEFAULT_MARKER_SIZE, merge

USAGE = "usage: cmfgit merge-driver BASE OURS THEIRS [MARKER_SIZE [PATH]]  (git passes %O %A %B %L %P)"


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        return b""  # add/add: git may pass an empty or absent base
    except OSError as exc:
        raise UsageError(f"merge-driver: cannot read {path}: {exc.strerror}") from None


def main(argv: list[str]) -> int:
    if argv[:1] in (["-h"], ["--help"]):
        print(USAGE)
        return 0
    if not 3 <= len(argv) <= 5:
        raise UsageError(USAGE)
    base, ours, theirs = argv[:3]
    try:
        marker_size = int(argv[3]) if len(argv) > 3 else DEFAULT_MARKER_SIZE
    except ValueError:
        raise UsageError(f"merge-driver: marker size must be a number, not {argv[3]!r}") from None
    path = argv[4] if len(argv) > 4 else ours
    current = _read(ours)
    result = merge(_read(base), current, _read(theirs), path, marker_size)
    if result.data != current:
        atomic_write(Path(ours), result.data, fsync=False)  # git reads it back at once
    for problem in result.problems:
        print(f"cmfgit merge-driver: {problem}", file=sys.stderr)
    if not result.clean:
        print(
            f"cmfgit merge-driver: {path}: kept every record that verifies; the rest is between conflict markers",
            file=sys.stderr,
        )
    return 0 if result.clean else 1
