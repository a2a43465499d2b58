"""The object store under ``.cmf/objects``: loose records and packs.

Loose records live at ``<2 hex>/<62 hex>.yaml``, one per file, written once
and never rewritten: concurrent writers need no lock. Packs (``pack/**.yaml``,
see ``pack.py``) hold many records; they are written once and named by their
content, and a record may be in more than one of them (two branches' gcs,
merged). Readers see the union, deduplicated by id.
"""

from __future__ import annotations

import os
import re
from collections import namedtuple
from collections.abc import Iterator
from pathlib import Path

from cmfgit import canonical, pack, schema
from cmfgit.errors import AmbiguousPrefix, ObjectNotFound, RecordError, UsageError
from cmfgit.fsutil import atomic_write

TYPE_CHECKING = False  # typing's constant without importing typing (~4 ms of log-run start-up)
if TYPE_CHECKING:
    from typing import Any

PACK_DIR = "pack"
_LOOSE_NAME = re.compile(r"^[0-9a-f]{62}\.yaml$")
_SHARD = re.compile(r"^[0-9a-f]{2}$")
_PREFIX = re.compile(r"^[0-9a-f]{4,64}$")


# Records of fields: typing.NamedTuple for the type checker, collections.namedtuple
# at run time (importing typing, or dataclasses, costs hot commands milliseconds).
if TYPE_CHECKING:
    from typing import NamedTuple

    class _StoredRecordFields(NamedTuple):
        id: str
        data: bytes  # canonical bytes
        source: str  # the file it came from, relative to the objects dir
else:
    _StoredRecordFields = namedtuple("StoredRecord", "id data source")


class StoredRecord(_StoredRecordFields):
    __slots__ = ()

    def load(self) -> dict[str, Any]:
        value: dict[str, Any] = canonical.load(self.data, self.source)
        return value


class Store:
    def __init__(self, objects_dir: Path) -> None:
        self.objects_dir = objects_dir
        self._objects = os.fspath(objects_dir)  # str paths on the write path: it runs per API run

    # -- writing ----------------------------------------------------------

    def loose_path(self, rid: str) -> Path:
        return self.objects_dir / rid[:2] / f"{rid[2:]}.yaml"

    def put(self, record: dict[str, Any]) -> str:
        """Validate, serialise and store ``record``; returns its id."""
        schema.validate(record)
        data, rid = canonical.encode(record)
        self.put_bytes(rid, data)
        return rid

    def put_bytes(self, rid: str, data: bytes) -> bool:
        """Store canonical bytes under their id unless already present."""
        path = f"{self._objects}/{rid[:2]}/{rid[2:]}.yaml"
        if os.access(path, os.F_OK):  # os.path.exists, without raising and catching an error for a new id
            return False
        atomic_write(path, data)
        return True

    # -- listing ----------------------------------------------------------

    def iter_loose(self) -> Iterator[tuple[str, Path]]:
        try:
            shards = sorted(e.name for e in os.scandir(self.objects_dir) if _SHARD.match(e.name))
        except FileNotFoundError:
            return
        for shard in shards:
            try:
                names = sorted(os.listdir(self.objects_dir / shard))
            except FileNotFoundError:
                continue
            for name in names:
                if _LOOSE_NAME.match(name):
                    yield shard + name[:-5], self.objects_dir / shard / name

    def pack_paths(self) -> list[Path]:
        root = self.objects_dir / PACK_DIR
        if not root.is_dir():
            return []
        return sorted(p for p in root.rglob("*.yaml") if not p.name.startswith("."))

    def read_pack(self, path: Path, verify: bool = False) -> dict[str, bytes]:
        return pack.parse(path.read_bytes(), self.display(path), verify=verify)

    def iter_packs(self) -> Iterator[tuple[Path, dict[str, bytes]]]:
        """Every pack with its records. A pack that a concurrent gc folded away
        between the listing and the read is skipped, and the packs are listed
        again: gc writes the pack that holds its records before deleting it."""
        done: set[Path] = set()
        while True:
            vanished = False
            for path in self.pack_paths():
                if path in done:
                    continue
                done.add(path)
                try:
                    records = self.read_pack(path)
                except FileNotFoundError:
                    vanished = True
                    continue
                yield path, records
            if not vanished:
                return

    def display(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.objects_dir.parent.parent))
        except ValueError:
            return str(path)

    def iter_records(self) -> Iterator[StoredRecord]:
        """Every record once: loose first, then packs (a record may be in both)."""
        seen: set[str] = set()
        for rid, path in self.iter_loose():
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                continue  # packed by a concurrent gc; the pack has it
            seen.add(rid)
            yield StoredRecord(rid, data, self.display(path))
        for path, records in self.iter_packs():
            for rid, data in records.items():
                if rid not in seen:
                    seen.add(rid)
                    yield StoredRecord(rid, data, self.display(path))

    def ids(self) -> set[str]:
        found = {rid for rid, _ in self.iter_loose()}
        for _path, records in self.iter_packs():
            found.update(records)
        return found

    # -- reading one ------------------------------------------------------

    def resolve(self, prefix: str) -> str:
        """The full id starting with ``prefix``, as git resolves short ids."""
        prefix = prefix.strip().lower()
        if not _PREFIX.match(prefix):
            raise UsageError(f"'{prefix}' is not a record id (4 to 64 hex digits)")
        if len(prefix) == 64 and self.loose_path(prefix).exists():
            return prefix
        matches: set[str] = set()
        shard_dir = self.objects_dir / prefix[:2]
        if shard_dir.is_dir():
            rest = prefix[2:]
            matches.update(
                prefix[:2] + n[:-5] for n in os.listdir(shard_dir) if n.startswith(rest) and _LOOSE_NAME.match(n)
            )
        for _path, records in self.iter_packs():
            matches.update(rid for rid in records if rid.startswith(prefix))
        if not matches:
            raise ObjectNotFound(prefix)
        if len(matches) > 1:
            raise AmbiguousPrefix(prefix, sorted(matches))
        return matches.pop()

    def get_bytes(self, rid: str) -> StoredRecord:
        path = self.loose_path(rid)
        try:
            return StoredRecord(rid, path.read_bytes(), self.display(path))
        except FileNotFoundError:
            pass
        for pack_path, records in self.iter_packs():
            data = records.get(rid)
            if data is not None:
                return StoredRecord(rid, data, self.display(pack_path))
        raise ObjectNotFound(rid)

    def get(self, prefix: str) -> tuple[str, dict[str, Any]]:
        """(id, record) for an id or unique prefix."""
        rid = self.resolve(prefix)
        stored = self.get_bytes(rid)
        if canonical.digest(stored.data) != rid:
            raise RecordError(stored.source, f"record {rid[:12]} does not match its id (edited or corrupted)")
        return rid, stored.load()
