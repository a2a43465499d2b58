"""DVC's layout on a data remote, read and written: where CMF's data is.

CMF stores artifacts with ``dvc push``, so a CMF remote has DVC 3's layout::

    files/md5/<2 hex>/<30 hex>        a file: the bytes whose md5 is its name
    files/md5/<2 hex>/<30 hex>.dir    a directory: its listing, whose md5 is its name

A listing is what DVC writes: ``json.dumps(entries, sort_keys=True)`` of a list of
``{"md5": <file md5>, "relpath": <'/'-separated path>}`` sorted by ``relpath``,
UTF-8, no final newline; each file is also an object of its own.

DVC 2 kept the same objects without the ``files/md5/`` prefix (``<2 hex>/<30 hex>``,
``<2 hex>/<30 hex>.dir``, the same listings). Both are read, with no setting: an object
not in DVC 3's layout is looked for in DVC 2's (a remote DVC 2 pushed to, then DVC 3, has
both). Written copies always have DVC 3's.

Read (a remote with ``layout: dvc`` or ``dvc_copies``): an ``md5:`` artifact is
the file object of that md5, else the directory listing of that md5. A listing
is verified by its md5 and parsed (paths checked), every file is verified by
its md5, hashed with blake3 and cached, and the directory's manifest (format.md
§5, mode ``100644`` unless the listing says ``isexec``) enters the cache last.

Written (``dvc_copies``): after the blake3 push, each file artifact also goes
to ``files/md5/...`` and each directory's files then its listing, so that
``dvc pull`` and ``cmf artifact pull`` read what cmfgit pushed. Only what the
remote lacks is sent; a listing goes after its files, so a present listing
means its files are there. md5s are computed only here, from the (verified)
cache objects, and remembered in the cache, so a second push hashes nothing.

The cache keeps both directions::

    md5/<2>/<30>             the blake3 hex of the file with that md5
    md5/<2>/<30>.dir         the blake3 hex of the manifest of the directory with that listing
    md5-of/<2>/<62>          the md5 of that object's bytes
    md5-of/<2>/<62>.dir      the md5 of the DVC listing of that manifest
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed

from blake3 import blake3

from cmfgit.data.cache import Cache
from cmfgit.data.remote import Backend, dvc_key
from cmfgit.data.selection import Artifact
from cmfgit.data.transfer import FetchResult
from cmfgit.errors import CmfgitError, CorruptObjectError, DataError, MissingObjectError, RemoteError
from cmfgit.fsutil import TMP_PREFIX, atomic_write, unlink_quietly
from cmfgit.repo import Repo

DIR = ".dir"
_MD5 = re.compile(r"^[0-9a-f]{32}$")
_HASH_THREADS = os.cpu_count() or 1


def reads_md5(backend: Backend) -> bool:
    """The remote has DVC's layout: md5 artifacts are read from it."""
    return backend.layout == "dvc" or backend.dvc_copies


def dir_key(md5hex: str) -> str:
    return dvc_key(md5hex) + DIR


def dvc2_key(md5hex: str, suffix: str = "") -> str:
    """Where DVC 2 kept an object by its md5: the remote's top, no ``files/md5/``."""
    return f"{md5hex[:2]}/{md5hex[2:]}{suffix}"


def present(backend: Backend, md5s: Iterable[str], suffix: str = "") -> set[str]:
    """Those of ``md5s`` the remote has (``suffix`` ``.dir``: as directory listings), in DVC 3's
    layout or, for those it lacks there, DVC 2's: two questions at most, each for many keys."""
    wanted = sorted(set(md5s))
    keys = {dvc_key(m) + suffix: m for m in wanted}
    absent = {keys[k] for k in backend.missing(list(keys))}
    old = {dvc2_key(m, suffix): m for m in absent}
    still = {old[k] for k in backend.missing(list(old))} if old else set()
    return set(wanted) - still


def download_md5(backend: Backend, md5hex: str, beside: str, suffix: str = "") -> tuple[str, str, int, bool]:
    """``backend.download`` of the object of an md5 (``suffix`` ``.dir``: its listing): DVC 3's
    key, else DVC 2's (then the last item is True); a MissingObjectError naming DVC 3's key
    if it is in neither."""
    try:
        return (*backend.download(dvc_key(md5hex) + suffix, beside), False)
    except MissingObjectError as first:
        try:
            return (*backend.download(dvc2_key(md5hex, suffix), beside), True)
        except MissingObjectError:
            raise first from None


_TEXT_CHARS = bytes(range(32, 127)) + b"\n\r\t\f\b"


def _is_text(block: bytes) -> bool:
    return not block or (b"\0" not in block and len(block.translate(None, _TEXT_CHARS)) / len(block) <= 0.30)


def dos2unix_md5s(path: str | os.PathLike[str]) -> set[str]:
    """The md5s DVC 2 may have given a file (its ``md5-dos2unix``): read in 1 MiB chunks,
    each with its ``\\r\\n`` hashed as ``\\n`` (a pair split by a chunk's end stays) when it
    is text: the whole file, judged by its first 512 bytes (DVC 2), or each chunk, judged by
    its own (``dvc-data``, which DVC 3 checks legacy objects with). Text is at most 30%
    outside printable ASCII and ``\\n\\r\\t\\f\\b``, with no NUL."""
    whole, each = hashlib.md5(usedforsecurity=False), hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        first = True
        text = False
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            if first:
                text, first = _is_text(chunk[:512]), False
            unix = chunk.replace(b"\r\n", b"\n")
            whole.update(unix if text else chunk)
            each.update(unix if _is_text(chunk[:512]) else chunk)
    return {whole.hexdigest(), each.hexdigest()}


# -- listings ------------------------------------------------------------------------------


def listing_bytes(entries: Iterable[tuple[str, str]]) -> bytes:
    """DVC's ``.dir`` listing of ``(relpath, md5)`` pairs, byte for byte as DVC writes it."""
    items = sorted(({"md5": m, "relpath": rel} for rel, m in entries), key=lambda d: d["relpath"])
    return json.dumps(items, sort_keys=True).encode("utf-8")


def parse_listing(data: bytes, what: str) -> list[tuple[str, str, bool]]:
    """``(relpath, md5, isexec)`` of each file of a listing; a DataError naming ``what`` if it is not one."""
    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise DataError(f"{what} is not a DVC directory listing (not JSON)") from None
    if not isinstance(raw, list):
        raise DataError(f"{what} is not a DVC directory listing (not a list)")
    out: list[tuple[str, str, bool]] = []
    seen: set[str] = set()
    for item in raw:
        rel = item.get("relpath") if isinstance(item, dict) else None
        md5 = item.get("md5") if isinstance(item, dict) else None
        if not isinstance(rel, str) or not isinstance(md5, str) or not _MD5.match(md5):
            raise DataError(f"{what} is not a DVC directory listing (an entry without relpath and md5)")
        parts = rel.split("/")
        if rel.startswith("/") or "\0" in rel or any(p in ("", ".", "..") for p in parts) or rel in seen:
            raise DataError(f"{what}: unsafe or repeated path in a DVC directory listing: {rel!r}")
        seen.add(rel)
        out.append((rel, md5, item.get("isexec") is True))
    return out


def _escape(rel: str) -> str:  # a manifest line's path (format.md §5)
    return rel.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def manifest_of(cache: Cache, entries: list[tuple[str, str, bool]]) -> bytes:
    """The cmfgit manifest of a listing whose files are all cached."""
    lines = []
    for rel, md5, isexec in sorted(entries):  # str order is UTF-8 byte order
        hexhash = cache.blake3_of_md5(md5)
        if hexhash is None:
            raise CmfgitError(f"md5:{md5} ({rel}) is not in the cache")
        lines.append(f"{_escape(rel)}\t{'100755' if isexec else '100644'}\t{cache.size(hexhash)}\t{hexhash}\n")
    return "".join(lines).encode("utf-8")


def file_md5(path: str | os.PathLike[str]) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def tree_md5(path: str | os.PathLike[str]) -> str:
    """The md5 DVC gives a directory (of its listing): every file under it (links to files followed)."""
    top = os.fspath(path)
    pairs = []
    for here, _dirs, names in os.walk(top):
        for name in names:
            full = os.path.join(here, name)
            if os.path.isfile(full):
                pairs.append((os.path.relpath(full, top).replace(os.sep, "/"), file_md5(full)))
    return hashlib.md5(listing_bytes(pairs), usedforsecurity=False).hexdigest()


# -- what the cache remembers ----------------------------------------------------------------


def _read_map(path: str) -> str | None:
    try:
        with open(path, encoding="ascii") as fh:
            return fh.read().strip()
    except (FileNotFoundError, NotADirectoryError, UnicodeDecodeError):
        return None


def _md5_of_path(cache: Cache, hexhash: str, suffix: str = "") -> str:
    return os.path.join(cache.root, "md5-of", hexhash[:2], hexhash[2:] + suffix)


def remembered_uri(cache_root: str | os.PathLike[str], hexhash: str, is_dir: bool) -> str | None:
    """The DVC identity the cache remembers for a blake3 object (read only, nothing computed):
    ``<md5>`` of a file, ``<md5>.dir`` of a directory manifest (learnt when it was pushed to a
    ``dvc_copies`` remote or fetched from a DVC one); None if it remembers none."""
    suffix = DIR if is_dir else ""
    known = _read_map(os.path.join(os.fspath(cache_root), "md5-of", hexhash[:2], hexhash[2:] + suffix))
    return known + suffix if known is not None and _MD5.match(known) else None


def cached(cache: Cache, md5hex: str) -> tuple[str, str] | None:
    """``(blake3 hex, 'file' or 'dir')`` of the object an md5 was fetched (or pushed) as, if cached."""
    manifest = _read_map(os.path.join(cache.root, "md5", md5hex[:2], md5hex[2:] + DIR))
    if manifest is not None and len(manifest) == 64 and cache.has(manifest):
        return manifest, "dir"
    hexhash = cache.blake3_of_md5(md5hex)
    return (hexhash, "file") if hexhash is not None else None


def _remember_dir(cache: Cache, md5hex: str, manifest: str, both: bool = True) -> None:
    """The directory of listing ``md5hex`` is the manifest ``manifest`` (and, if ``both``,
    the listing of that manifest is ``md5hex``)."""
    atomic_write(os.path.join(cache.root, "md5", md5hex[:2], md5hex[2:] + DIR), manifest.encode() + b"\n", fsync=False)
    if both:
        atomic_write(_md5_of_path(cache, manifest, DIR), md5hex.encode() + b"\n", fsync=False)


def _compute_md5(cache: Cache, hexhash: str) -> str:
    md5 = file_md5(cache.path(hexhash))
    atomic_write(_md5_of_path(cache, hexhash), md5.encode() + b"\n", fsync=False)
    return md5


def _md5s(cache: Cache, hexes: Iterable[str]) -> dict[str, str]:
    """blake3 hex -> md5 of each cached object: remembered, else computed once on every
    core (and remembered), so a second push hashes nothing."""
    found: dict[str, str] = {}
    todo: list[str] = []
    for h in sorted(set(hexes)):
        known = _read_map(_md5_of_path(cache, h))
        if known is not None and _MD5.match(known):
            found[h] = known
        else:
            todo.append(h)
    if len(todo) < 2:
        found.update((h, _compute_md5(cache, h)) for h in todo)
        return found
    with ThreadPoolExecutor(max_workers=min(_HASH_THREADS, len(todo))) as pool:
        found.update(zip(todo, pool.map(lambda h: _compute_md5(cache, h), todo)))
    return found


def listing_of(cache: Cache, manifest: str) -> tuple[str, bytes, dict[str, str]]:
    """The DVC listing of a cached directory manifest: (its md5, its bytes, file md5 -> blake3 hex)."""
    entries = cache.manifest(manifest) or []
    md5 = _md5s(cache, (e.hex for e in entries))
    data = listing_bytes((e.path, md5[e.hex]) for e in entries)
    listing = hashlib.md5(data, usedforsecurity=False).hexdigest()
    _remember_dir(cache, listing, manifest)
    return listing, data, {md5[e.hex]: e.hex for e in entries}


def dir_md5(cache: Cache, manifest: str) -> str:
    known = _read_map(_md5_of_path(cache, manifest, DIR))
    if known is not None and _MD5.match(known):
        return known
    return listing_of(cache, manifest)[0]


# -- threads -----------------------------------------------------------------------------


def _run(jobs: int, work: Callable[[str], int], items: list[str], label: str) -> int:
    """``work`` over ``items`` on ``jobs`` threads, a progress bar on a terminal: the sum of
    the results; the first error is raised once all are done (what succeeded stays)."""
    from cmfgit.data.progress import Progress

    if not items:
        return 0
    total = 0
    errors: list[BaseException] = []
    progress = Progress(label, len(items), None)
    try:
        with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(items)))) as pool:
            for future in as_completed([pool.submit(work, item) for item in items]):
                try:
                    size = future.result()
                    total += size
                    progress.advance(size)
                except (CmfgitError, OSError) as exc:
                    errors.append(exc)
    finally:
        progress.close()
    if errors:
        first = errors[0]
        more = f" (and {len(errors) - 1} more failed)" if len(errors) > 1 else ""
        if isinstance(first, CmfgitError) and not more:
            raise first
        text = f"{first.filename or 'I/O'}: {first.strerror or first}" if isinstance(first, OSError) else str(first)
        raise DataError(f"{text}{more}") from first
    return total


# -- reading -------------------------------------------------------------------------------


def _fetch_files(cache: Cache, backend: Backend, md5s: list[str], jobs: int, result: FetchResult) -> None:
    """Fetch the file objects of these md5s that the cache lacks: each is checked against
    its md5, hashed with blake3 as it is written, cached under that, and remembered."""
    where = f"data remote '{backend.name}'"
    wanted = sorted(set(md5s))
    todo = [m for m in wanted if cache.blake3_of_md5(m) is None]
    result.cached += len(wanted) - len(todo)

    def download(md5hex: str) -> int:
        beside = os.path.join(cache.root, "md5", md5hex[:2], md5hex[2:])
        tmp, hexhash, size, legacy = download_md5(backend, md5hex, beside)
        try:
            actual = file_md5(tmp)
            if actual != md5hex and not (legacy and md5hex in dos2unix_md5s(tmp)):  # DVC 2: text by dos2unix
                raise CorruptObjectError(f"md5:{md5hex}", where, f"md5:{actual}")
            target = cache.path(hexhash)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.replace(tmp, target)
        except BaseException:
            unlink_quietly(tmp)
            raise
        cache.remember_md5(md5hex, hexhash)
        atomic_write(_md5_of_path(cache, hexhash), md5hex.encode() + b"\n", fsync=False)
        return size

    result.bytes += _run(jobs, download, todo, "fetching")
    result.fetched += len(todo)


def _fetch_listing(cache: Cache, backend: Backend, md5hex: str) -> tuple[list[tuple[str, str, bool]], bytes]:
    """A directory's listing, verified by its md5 and parsed."""
    where = f"data remote '{backend.name}'"
    tmp, _b3, _size, _legacy = download_md5(
        backend, md5hex, os.path.join(cache.root, "md5", md5hex[:2], md5hex[2:] + DIR), DIR
    )
    try:
        with open(tmp, "rb") as fh:
            data = fh.read()
    finally:
        unlink_quietly(tmp)
    actual = hashlib.md5(data, usedforsecurity=False).hexdigest()
    if actual != md5hex:
        raise CorruptObjectError(f"md5:{md5hex}{DIR}", where, f"md5:{actual}")
    return parse_listing(data, f"object md5:{md5hex}{DIR} from {where}"), data


def fetch(cache: Cache, backend: Backend, md5s: Iterable[str], jobs: int) -> FetchResult:
    """Fetch md5 artifacts, files or directories, from a DVC-layout remote into the cache."""
    result = FetchResult(backend.name)
    wanted = sorted(set(md5s))
    if wanted and not reads_md5(backend):
        raise RemoteError(
            backend.name,
            f"{len(wanted)} artifact(s) are known only by md5 (imported from CMF): their bytes are on a DVC remote; "
            "add it with 'cmfgit remote add NAME URL --layout dvc'",
        )
    todo = [m for m in wanted if cached(cache, m) is None]
    result.cached = len(wanted) - len(todo)
    dirs = sorted(present(backend, todo, DIR))
    listings = {m: _fetch_listing(cache, backend, m) for m in dirs}
    inner = [md5 for entries, _ in listings.values() for _rel, md5, _x in entries]
    _fetch_files(cache, backend, [m for m in todo if m not in listings] + inner, jobs, result)
    for m, (entries, data) in sorted(listings.items()):
        manifest_bytes = manifest_of(cache, entries)
        manifest = blake3(manifest_bytes).hexdigest()
        cache.add_bytes(manifest_bytes, manifest)  # after its files, as every manifest
        # A listing cmfgit writes the same (no extra keys): a push to a DVC remote will find it.
        _remember_dir(cache, m, manifest, listing_bytes((r, md5) for r, md5, _x in entries) == data)
        result.fetched += 1
        result.bytes += len(data)
    return result


def md5_aliases(repo: Repo, hashes: Iterable[str]) -> dict[str, str]:
    """blake3 hash -> md5 hex, for the artifacts a record also names by an md5 (``aliases``:
    CMF history imported where its bytes were, or ``cmfgit.compat.Cmf``'s files)."""
    from cmfgit.query import CmfQuery

    wanted = sorted(set(hashes))
    found: dict[str, str] = {}
    if not wanted:
        return found
    wanted_set = set(wanted)
    with CmfQuery(repo) as q:
        for start in range(0, len(wanted), 400):
            chunk = wanted[start : start + 400]
            marks = ",".join("?" * len(chunk))
            rows = q.db.execute(
                "SELECT x.hash, y.hash FROM aliases al JOIN artifacts x ON x.rowid = al.art "
                f"JOIN artifacts y ON y.rowid = al.alias WHERE x.hash IN ({marks}) OR y.hash IN ({marks})",
                chunk + chunk,
            )
            for a, b in rows:
                for h, other in ((a, b), (b, a)):
                    if other.startswith("md5:") and _MD5.match(other[4:]) and h in wanted_set:
                        found.setdefault(h, other[4:])
    return found


def fetch_aliased(repo: Repo, cache: Cache, backend: Backend, artifacts: list[Artifact], jobs: int) -> FetchResult:
    """Fetch blake3 artifacts the cache lacks by their md5 alias, from a DVC-layout remote:
    the bytes must have the md5, then the record's blake3 (else CorruptObjectError)."""
    todo = [a for a in artifacts if a.storable and not cache.has(a.hex)]
    aliases = md5_aliases(repo, (a.hash for a in todo))
    result = fetch(cache, backend, [aliases[a.hash] for a in todo if a.hash in aliases], jobs)
    where = f"data remote '{backend.name}'"
    for a in todo:
        m = aliases.get(a.hash)
        got = cached(cache, m) if m else None
        if got is not None and got[0] != a.hex:
            raise CorruptObjectError(f"md5:{m}", where, f"blake3:{got[0]}, not {a.hash} as the records say")
    return result


def as_blake3(cache: Cache, art: Artifact) -> Artifact:
    """An md5-only artifact as the blake3 object (file or directory) it was fetched as, for placing."""
    from dataclasses import replace

    found = cached(cache, art.md5hex or "")
    if found is None:
        raise MissingObjectError(art.hash, "the cache ('cmfgit artifact fetch -r DVC-REMOTE' brings it)", art.path)
    return replace(art, hash=f"blake3:{found[0]}", kind=found[1])


# -- writing -------------------------------------------------------------------------------


def push_copies(cache: Cache, backend: Backend, artifacts: Iterable[Artifact], jobs: int) -> tuple[int, int, int]:
    """Write DVC's copy of each cached artifact that the remote lacks: (objects, bytes, already there)."""
    tops = {a.hex: a.kind for a in artifacts if a.storable and cache.has(a.hex)}
    file_md5 = _md5s(cache, (h for h, kind in tops.items() if kind != "dir"))
    keys: dict[str, str] = {dvc_key(m): h for h, m in file_md5.items()}
    dirs = {dir_key(dir_md5(cache, h)): h for h, kind in sorted(tops.items()) if kind == "dir"}
    absent = backend.missing(sorted({*keys, *dirs}))
    already = len({*keys, *dirs}) - len(absent)
    files = {k: h for k, h in keys.items() if k in absent}
    listings: dict[str, bytes] = {}
    inner: dict[str, str] = {}
    for key, manifest in sorted(dirs.items()):
        if key in absent:
            _m, listings[key], members = listing_of(cache, manifest)
            inner.update((dvc_key(m), h) for m, h in members.items() if dvc_key(m) not in keys)
    lacking = backend.missing(sorted(inner)) if inner else set()
    already += len(inner) - len(lacking)
    files.update((k, inner[k]) for k in lacking)

    def upload(key: str) -> int:
        backend.upload(cache.path(files[key]), key)
        return cache.size(files[key])

    def upload_listing(key: str) -> int:
        tmp = os.path.join(cache.root, "md5-of", f"{TMP_PREFIX}{os.getpid()}-{os.urandom(4).hex()}{DIR}")
        os.makedirs(os.path.dirname(tmp), exist_ok=True)
        with open(tmp, "wb") as fh:
            fh.write(listings[key])
        try:
            backend.upload(tmp, key)
        finally:
            unlink_quietly(tmp)
        return len(listings[key])

    sent = _run(jobs, upload, sorted(files), "pushing DVC copies")
    sent += _run(jobs, upload_listing, sorted(listings), "pushing DVC listings")  # after their files
    return len(files) + len(listings), sent, already
