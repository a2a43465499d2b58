"""Moving objects between the cache and a data remote: push and fetch.

Push sends only what the remote lacks: it asks the remote which objects it
has (one listing when there are many), then uploads the rest with ``-j``
threads, files first and directory manifests last, so a manifest on a
remote means its files are there too. Bytes come from the cache; an
artifact that is not cached but whose recorded path still holds the
recorded bytes (checked through the stat cache) enters the cache first.

Fetch downloads into the cache what it lacks, hashing every byte as it is
written; an object whose bytes do not match its name is refused
(``CorruptObjectError``, naming the object and the remote) and never enters
the cache.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from cmfgit.data.cache import Cache
from cmfgit.data.remote import Backend, object_key
from cmfgit.data.selection import Artifact
from cmfgit.errors import CmfgitError, CorruptObjectError, DataError, PathError

DEFAULT_JOBS = min(32, 4 * (os.cpu_count() or 1))


@dataclass
class PushResult:
    remote: str
    pushed: int = 0  # objects uploaded
    bytes: int = 0  # their bytes
    already: int = 0  # objects the remote had
    unavailable: list[Artifact] = field(default_factory=list)  # no bytes here: not cached, path changed

    def as_json(self) -> dict[str, object]:
        return {
            "remote": self.remote,
            "pushed": self.pushed,
            "bytes": self.bytes,
            "already": self.already,
            "unavailable": [{"path": a.path, "hash": a.hash} for a in self.unavailable],
        }


@dataclass
class FetchResult:
    remote: str
    fetched: int = 0
    bytes: int = 0
    cached: int = 0  # objects that were already in the cache

    def as_json(self) -> dict[str, object]:
        return {"remote": self.remote, "fetched": self.fetched, "bytes": self.bytes, "cached": self.cached}


def _unique(artifacts: Iterable[Artifact]) -> list[Artifact]:
    return list({a.hash: a for a in artifacts if a.storable}.values())


def ensure_cached(repo_root: Path, cache: Cache, art: Artifact) -> list[str] | None:
    """The objects of ``art`` (files, then its manifest), put into the cache from the
    working tree if needed; None if its bytes are nowhere here."""
    if art.kind == "dir":
        entries = cache.manifest(art.hex)
        if entries is not None and all(cache.has(e.hex) for e in entries):
            return [e.hex for e in entries] + [art.hex]
    elif cache.has(art.hex):
        return [art.hex]
    full = repo_root / art.path
    want_dir = art.kind == "dir"
    if not (full.is_dir() if want_dir else full.is_file()):
        return None
    try:
        if cache.hasher.hash_path(full, art.path).hash != art.hash:
            return None  # the path holds other bytes now
        cache.add_path(full, art.path)
    except PathError:
        return None
    if want_dir:
        entries = cache.manifest(art.hex) or []
        return [e.hex for e in entries] + [art.hex]
    return [art.hex]


def _run(jobs: int, work: Callable[[str], int], items: list[str]) -> tuple[int, list[BaseException]]:
    """Run ``work`` over ``items`` on ``jobs`` threads: (sum of results, errors)."""
    total = 0
    errors: list[BaseException] = []
    if not items:
        return 0, errors
    with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(items)))) as pool:
        for future in [pool.submit(work, item) for item in items]:
            try:
                total += future.result()
            except (CmfgitError, OSError) as exc:
                errors.append(exc)
    return total, errors


def _raise_first(errors: list[BaseException], what: str) -> None:
    if not errors:
        return
    first = errors[0]
    if len(errors) == 1 and isinstance(first, CmfgitError):
        raise first
    if isinstance(first, OSError):
        text = f"{first.filename or 'I/O'}: {first.strerror or first}"
    else:
        text = str(first)
    more = f" (and {len(errors) - 1} more {what} failed)" if len(errors) > 1 else ""
    raise DataError(f"{text}{more}") from first


def push(repo_root: Path, cache: Cache, backend: Backend, artifacts: Iterable[Artifact], jobs: int) -> PushResult:
    result = PushResult(backend.name)
    files: dict[str, None] = {}
    manifests: dict[str, None] = {}
    for art in _unique(artifacts):
        objects = ensure_cached(repo_root, cache, art)
        if objects is None:
            result.unavailable.append(art)
            continue
        if art.kind == "dir":
            files.update(dict.fromkeys(objects[:-1]))
            manifests[objects[-1]] = None
        else:
            files[objects[0]] = None
    if backend.read_only and (files or manifests):
        from cmfgit.errors import RemoteError

        raise RemoteError(backend.name, f"{backend.url} is read-only")
    for group in (list(files), [m for m in manifests if m not in files]):
        keys = {object_key(h): h for h in group}
        missing = backend.missing(list(keys))
        result.already += len(keys) - len(missing)
        todo = sorted(keys[k] for k in missing)

        def upload(hexhash: str) -> int:
            backend.upload(cache.path(hexhash), object_key(hexhash))
            return cache.size(hexhash)

        sent, errors = _run(jobs, upload, todo)
        result.bytes += sent
        result.pushed += len(todo) - len(errors)
        _raise_first(errors, "uploads")
    return result


def fetch(cache: Cache, backend: Backend, artifacts: Iterable[Artifact], jobs: int) -> FetchResult:
    result = FetchResult(backend.name)
    where = f"data remote '{backend.name}'"

    def download(hexhash: str) -> int:
        tmp, got, size = backend.download(object_key(hexhash), cache.path(hexhash))
        if not cache.accept_temp(tmp, hexhash, got):
            raise CorruptObjectError(f"blake3:{hexhash}", where, f"blake3:{got}")
        return size

    arts = _unique(artifacts)
    manifests = sorted({a.hex for a in arts if a.kind == "dir"})
    todo = [h for h in manifests if not cache.has(h)]
    result.cached += len(manifests) - len(todo)
    got, errors = _run(jobs, download, todo)
    result.fetched += len(todo) - len(errors)
    result.bytes += got
    _raise_first(errors, "downloads")
    wanted: dict[str, None] = {}
    for a in arts:
        if a.kind == "dir":
            for e in cache.manifest(a.hex) or []:
                wanted[e.hex] = None
        else:
            wanted[a.hex] = None
    todo = sorted(h for h in wanted if not cache.has(h))
    result.cached += len(wanted) - len(todo)
    got, errors = _run(jobs, download, todo)
    result.fetched += len(todo) - len(errors)
    result.bytes += got
    _raise_first(errors, "downloads")
    return result
