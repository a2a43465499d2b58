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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cmfgit.data.cache import Cache
from cmfgit.data.remote import Backend, object_key
from cmfgit.data.selection import Artifact
from cmfgit.errors import CmfgitError, CorruptObjectError, DataError, PathError
from cmfgit.fsutil import atomic_write, unlink_quietly

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


def ensure_cached(repo_root: Path, cache: Cache, art: Artifact) -> bool:
    """Make sure the bytes of ``art`` are cached, from the working tree if need be;
    False if they are nowhere here. A cached manifest means its files are cached
    (a manifest always enters the cache after its files)."""
    if cache.has(art.hex):
        return True
    full = repo_root / art.path
    if not (full.is_dir() if art.kind == "dir" else full.is_file()):
        return False
    try:
        if cache.hasher.hash_path(full, art.path).hash != art.hash:
            return False  # the path holds other bytes now
        cache.add_path(full, art.path)
    except PathError:
        return False
    return cache.has(art.hex)


_BATCH = 64  # at most this many objects per thread task


def _run(
    jobs: int, work: Callable[[str], int], items: list[str], label: str = "", total_bytes: int | None = None
) -> tuple[int, list[BaseException]]:
    """Run ``work`` over ``items`` on ``jobs`` threads: (sum of results, errors).
    Items go to the threads in batches (one task per object costs more than a
    small object's copy), small enough that every thread has work.
    A progress bar (objects, and bytes when ``total_bytes`` is known) shows on a terminal."""
    errors: list[BaseException] = []
    if not items:
        return 0, errors
    from cmfgit.data.progress import Progress

    progress = Progress(label, len(items), total_bytes)
    size = max(1, min(_BATCH, len(items) // (4 * max(1, jobs))))
    batches = [items[i : i + size] for i in range(0, len(items), size)]

    def task(batch: list[str]) -> int:
        done = 0
        for item in batch:
            try:
                got = work(item)
            except (CmfgitError, OSError) as exc:
                errors.append(exc)  # list.append is atomic
                continue
            done += got
            progress.advance(got)
        return done

    try:
        if len(batches) == 1 or jobs <= 1:
            total = sum(task(b) for b in batches)
        else:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=min(jobs, len(batches))) as pool:
                total = sum(pool.map(task, batches))
    finally:
        progress.close()
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
    tops: dict[str, Artifact] = {}
    for art in _unique(artifacts):
        if ensure_cached(repo_root, cache, art):
            tops[art.hex] = art
        else:
            result.unavailable.append(art)
    if backend.read_only and tops:
        from cmfgit.errors import RemoteError

        raise RemoteError(backend.name, f"{backend.url} is read-only")
    # One question for the artifacts themselves: a manifest on the remote means its
    # files are there too (manifests are uploaded last), so a no-op push of a
    # 10,000-file dataset asks about one object, not 10,001.
    keys = {object_key(h): h for h in tops}
    absent = {keys[k] for k in backend.missing(list(keys))}
    there: set[str] = set()
    files: dict[str, None] = {}
    manifests: list[str] = []
    for h, art in tops.items():
        if art.kind == "dir":
            entries = cache.manifest_hexes(h)
            if h in absent:
                files.update(dict.fromkeys(entries))
                manifests.append(h)
            else:
                there.update(entries, [h])
        elif h in absent:
            files[h] = None
        else:
            there.add(h)
    fkeys = {object_key(h): h for h in files if h not in there}
    todo = sorted(fkeys[k] for k in backend.missing(list(fkeys)))
    result.already = len(there | (set(fkeys.values()) - set(todo)))

    def upload(hexhash: str) -> int:
        backend.upload(cache.path(hexhash), object_key(hexhash))
        return cache.size(hexhash)

    many = getattr(backend, "upload_many", None)  # a batch: one sync for all (local remotes)
    for group in (todo, sorted(manifests)):  # files first, manifests last
        if not group:
            continue
        if many is not None:
            sent, errors = _upload_many(many, cache, group, jobs)
        else:
            size = sum(cache.size(h) for h in group) if len(group) > 1 else None
            sent, errors = _run(jobs, upload, group, "pushing", size)
        result.bytes += sent
        result.pushed += len(group) - len(errors)
        _raise_first(errors, "uploads")
    return result


def _upload_many(many: Any, cache: Cache, group: list[str], jobs: int) -> tuple[int, list[BaseException]]:
    """Upload ``group`` through a back-end's batch upload: (bytes sent, errors)."""
    import threading

    from cmfgit.data.progress import Progress

    sent = [0]
    lock = threading.Lock()
    progress = Progress("pushing", len(group), None)

    def advance(size: int) -> None:
        with lock:
            sent[0] += size
        progress.advance(size)

    try:
        errors: list[BaseException] = many([(cache.path(h), object_key(h)) for h in group], jobs, advance)
    finally:
        progress.close()
    return sent[0], errors


KEEP_BYTES = 256 << 20  # at most this many bytes of small objects kept in memory for placing


def fetch(
    cache: Cache, backend: Backend, artifacts: Iterable[Artifact], jobs: int, keep: dict[str, bytes] | None = None
) -> FetchResult:
    """Download what the cache lacks. A directory's manifest is downloaded (and
    verified) first but enters the cache last, after all its files.

    ``keep``: where to leave the verified bytes of small objects (up to
    ``KEEP_BYTES`` in all), so that a pull places them from memory instead of
    reading the cache objects back."""
    import threading

    from cmfgit.data import copying, manifest

    result = FetchResult(backend.name)
    where = f"data remote '{backend.name}'"
    read_small = getattr(backend, "read_small", None)  # a local remote: one read, no temp to re-read
    kept = [0]
    lock = threading.Lock()

    def download(hexhash: str) -> int:
        key = object_key(hexhash)
        data = read_small(key) if read_small is not None else None
        if data is not None:
            got = copying.hash_bytes(data)
            if got != hexhash:
                raise CorruptObjectError(f"blake3:{hexhash}", where, f"blake3:{got}")
            atomic_write(cache.path(hexhash), data, mode=0o444, fsync=False)  # verified before it has its name
            if keep is not None:
                with lock:
                    if kept[0] + len(data) <= KEEP_BYTES:
                        kept[0] += len(data)
                        keep[hexhash] = data
            return len(data)
        tmp, got, size = backend.download(key, cache.path(hexhash))
        if not cache.accept_temp(tmp, hexhash, got):
            raise CorruptObjectError(f"blake3:{hexhash}", where, f"blake3:{got}")
        return size

    held: dict[str, str] = {}  # manifest hex -> its verified temp file

    def download_manifest(hexhash: str) -> int:
        tmp, got, size = backend.download(object_key(hexhash), cache.path(hexhash))
        if got != hexhash:
            unlink_quietly(tmp)
            raise CorruptObjectError(f"blake3:{hexhash}", where, f"blake3:{got}")
        held[hexhash] = tmp
        return size

    arts = _unique(artifacts)
    try:
        manifests = sorted({a.hex for a in arts if a.kind == "dir"})
        todo = [h for h in manifests if not cache.has(h)]
        result.cached += len(manifests) - len(todo)
        got, errors = _run(jobs, download_manifest, todo, "fetching manifests")
        result.bytes += got
        _raise_first(errors, "downloads")
        wanted: dict[str, int | None] = {}
        for a in arts:
            if a.kind != "dir":
                wanted[a.hex] = a.size
            elif a.hex in held:
                with open(held[a.hex], "rb") as fh:
                    entries = manifest.parse(fh.read(), f"manifest blake3:{a.hex[:12]} from {where}")
                wanted.update((e.hex, e.size) for e in entries)
        files = sorted(cache.missing(list(wanted)))
        result.cached += len(wanted) - len(files)
        sizes = [wanted[h] for h in files]
        known = sum(s for s in sizes if s is not None) if all(s is not None for s in sizes) else None
        many = getattr(backend, "download_many", None)  # a batch on one event loop (fsspec remotes)
        if many is not None:
            got, errors = _download_many(many, cache, files, jobs, known, where)
        else:
            got, errors = _run(jobs, download, files, "fetching", known)
        result.fetched += len(files) - len(errors)
        result.bytes += got
        _raise_first(errors, "downloads")
        for hexhash, tmp in sorted(held.items()):
            cache.accept_temp(tmp, hexhash, hexhash)
            result.fetched += 1
        held.clear()
    finally:
        for tmp in held.values():
            unlink_quietly(tmp)
    return result


def _download_many(
    many: Any, cache: Cache, files: list[str], jobs: int, known: int | None, where: str
) -> tuple[int, list[BaseException]]:
    """Fetch ``files`` into the cache through a back-end's batch download, a chunk at a
    time (so the progress bar moves): (bytes, errors). Each is verified, as ``fetch``'s."""
    from cmfgit.data.progress import Progress

    errors: list[BaseException] = []
    got = 0
    progress = Progress("fetching", len(files), known)
    try:
        step = max(256, 32 * jobs)
        for start in range(0, len(files), step):
            chunk = files[start : start + step]
            results = many([(object_key(h), cache.path(h)) for h in chunk], jobs, progress.advance)
            for hexhash, result in zip(chunk, results):
                if isinstance(result, BaseException):
                    errors.append(result)
                elif cache.accept_temp(result[0], hexhash, result[1]):
                    got += result[2]
                else:
                    errors.append(CorruptObjectError(f"blake3:{hexhash}", where, f"blake3:{result[1]}"))
    finally:
        progress.close()
    return got, errors
