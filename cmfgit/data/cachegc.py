"""``cmfgit artifact gc``: drop cache objects that no record refers to.

The records in scope are those of the checkout and of every local branch,
so switching branches never loses the data of another branch's runs. A
directory refers to its manifest object and to every file it lists.
"""

from __future__ import annotations

from dataclasses import dataclass

from cmfgit.data.cache import Cache
from cmfgit.data.selection import Artifact
from cmfgit.fsutil import remove_stale_temps


@dataclass
class GcResult:
    kept: int
    dropped: int
    bytes: int
    dry_run: bool

    def as_json(self) -> dict[str, object]:
        return {"kept": self.kept, "dropped": self.dropped, "bytes": self.bytes, "dry_run": self.dry_run}


def referenced(cache: Cache, artifacts: list[Artifact]) -> set[str]:
    keep: set[str] = set()
    for art in artifacts:
        if not art.storable:
            continue
        keep.add(art.hex)
        if art.kind == "dir":
            keep.update(e.hex for e in cache.manifest(art.hex) or [])
    return keep


def gc(cache: Cache, artifacts: list[Artifact], dry_run: bool) -> GcResult:
    keep = referenced(cache, artifacts)
    dropped = freed = kept = 0
    for hexhash in cache.iter_objects():
        if hexhash in keep:
            kept += 1
            continue
        dropped += 1
        freed += cache.size(hexhash) if dry_run else cache.remove(hexhash)
    if not dry_run and cache.objects.is_dir():
        remove_stale_temps(cache.objects)
    return GcResult(kept, dropped, freed, dry_run)
