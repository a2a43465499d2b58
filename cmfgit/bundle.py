"""``cmfgit bundle``: a site's records, and their artifact bytes, in one file.

For sites with no link, or a one-way one: the file travels on removable
media and is imported at the central repository (or at another site) as if
the site had pushed. The container is a tar file (format.md §14)::

    cmfgit-bundle.json               the manifest: site, commit, record count, and
                                     the size and blake3 of every other member
    metadata.bundle                  a git bundle of one ref, refs/cmf/bundle/<site>: a
                                     commit with no parent whose tree is the selected
                                     records, loose (.cmf/objects/<2>/<62>.yaml)
    objects/blake3/<2>/<62>          artifact objects from the data cache: files
                                     first, directory manifests last

create
    selects records as ``cmfgit artifact push`` selects artifacts (run ids,
    ``--pipeline``, ``--stage``, ``--since``, ``--artifact``, paths,
    ``--with-lineage``; the annotations of what is selected, and every
    retraction, come along; nothing: every record), checks each one, commits
    them tree-level (no checkout touched), runs ``git bundle create``, and
    writes the container to a temp file beside FILE, renamed into place once
    it is whole. Objects are streamed from the cache, never held in memory.

import
    reads every member before writing anything: the manifest, the git bundle
    (hash, ``git bundle verify``, its one ref) and each object (streamed to a
    temp file in the cache, hashed as it is written). It then checks each
    record against its id and its schema. Only when all of it holds are the
    objects renamed into the cache (files first, so a cached manifest means its
    files are cached) and the records published:

    - in a bare repository (the central one), as a push would: the site's ref
      ``refs/cmf/sites/<site>`` and ``cmf/global`` each become the union of
      what they held and the bundle's records (``globalview.build_union``,
      updated with compare-and-swap);
    - in a clone, as a pull would: the records it lacks are written into
      ``.cmf/objects`` as pending records, into packs grouped as gc groups them
      (``pullstore.write_records``: a few fsyncs per pack, not one file per record).

    Importing the same bundle again changes nothing: the union already lists
    the bundle's tree, and every record and object is already there.

The git objects of a bundle whose records then fail a check are left
unreferenced in the object store (git's gc drops them); no ref moves.
"""

from __future__ import annotations

import io
import json
import os
import re
import stat
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from cmfgit import canonical, gitutil, retractions, schema
from cmfgit.errors import BundleError, CmfgitError, CorruptObjectError, GitError, RecordError
from cmfgit.fsutil import TMP_PREFIX, unlink_quietly
from cmfgit.repo import Repo

TYPE_CHECKING = False
if TYPE_CHECKING:
    from cmfgit.data.cache import Cache
    from cmfgit.data.selection import Artifact, Query

FORMAT = "cmfgit-bundle/1"
MANIFEST = "cmfgit-bundle.json"
METADATA = "metadata.bundle"
OBJECTS = "objects/blake3/"
BUNDLE_REF_PREFIX = "refs/cmf/bundle/"  # at the site: the records of the last bundle it made
SITE_REF_PREFIX = "refs/cmf/sites/"  # at the central repository: what each site published
MAX_MANIFEST = 256 << 20  # bytes: a manifest that lists a million objects is ~100 MB

_BLOB_MODE = stat.S_IFREG | 0o644
_TREE_MODE = stat.S_IFDIR
_HEX = re.compile(r"^[0-9a-f]{64}$")
_SHA = re.compile(r"^[0-9a-f]{40}$")
_RECORD_PATH = re.compile(rb"^\.cmf/objects/([0-9a-f]{2})/([0-9a-f]{62})\.yaml$")
_SCHEMA = re.compile(rb"^schema: (\S+)$", re.M)


def site_ref(site: str) -> str:
    """The central repository's ref of a site's records: the ref ``cmfgit push`` publishes to."""
    from cmfgit import siterefs

    return siterefs.site_ref(site)


def bundle_ref(site: str) -> str:
    from cmfgit.gc import site_dir

    return BUNDLE_REF_PREFIX + site_dir(site)


def check_record(rid: str, data: bytes, where: str) -> None:
    """A record's bytes are canonical, match its id, and pass its schema (RecordError if not)."""
    from cmfgit import extract

    if canonical.digest(data) != rid:
        raise RecordError(where, "content does not match its id (edited or corrupted)")
    value = extract.load(data)  # the index's loader: accepts only canonical bytes, several times faster
    if value is extract.FAIL:
        value = canonical.decode(data, where)  # the strict path: libyaml, then canonical form
    schema.validate(value, where)


# -- which records ----------------------------------------------------------------------


def _source_records(repo: Repo) -> dict[str, bytes]:
    """Every record the repository has: the checkout's (committed or pending), or a bare
    repository's global view."""
    if repo.bare:
        from cmfgit import globalview, treeread

        if globalview.ref_value(repo.root, globalview.GLOBAL_REF) is None:
            return {}
        return dict(treeread.iter_records(repo.root, globalview.GLOBAL_REF))
    from cmfgit.store import Store

    return {stored.id: stored.data for stored in Store(repo.objects_dir).iter_records()}


def _hashes(record: dict[str, Any]) -> set[str]:
    found: set[str] = set()
    for art in list(record.get("inputs") or []) + list(record.get("outputs") or []):
        if isinstance(art, dict):
            for value in [art.get("hash"), *(art.get("aliases") or [])]:
                if isinstance(value, str):
                    found.add(value)
    return found


def with_context(records: dict[str, bytes], executions: set[str]) -> set[str]:
    """``executions`` and what travels with them: the annotations that target them or
    their artifacts, and every retraction (a two-phase set, as a pull brings it);
    never a record a retraction withdraws."""
    withdrawals = {rid for rid, data in records.items() if retractions.is_retraction(data)}
    withdrawn = retractions.retracted_by(records[rid] for rid in withdrawals)
    chosen = {rid for rid in executions if rid in records and rid not in withdrawn}
    targets = set(chosen)
    for rid in chosen:
        value = canonical.load(records[rid], f"record {rid[:12]}")
        if isinstance(value, dict):
            targets |= _hashes(value)
    notes: set[str] = set()
    annotation = schema.ANNOTATION.encode()
    for rid, data in records.items():
        found = _SCHEMA.search(data)
        if found is None or found.group(1) != annotation or rid in withdrawn:
            continue
        value = canonical.load(data, f"record {rid[:12]}")
        if isinstance(value, dict) and value.get("target") in targets:
            notes.add(rid)
    return chosen | notes | withdrawals


def select_records(repo: Repo, query: Query, cwd: Path | None = None) -> dict[str, bytes]:
    """The records a bundle of ``query`` carries (id -> canonical bytes)."""
    held = _source_records(repo)
    if query.everything:
        return held
    from cmfgit.data.selection import runs
    from cmfgit.query import CmfQuery

    with CmfQuery(repo) as q:
        executions = runs(repo, q, query, cwd)
    return {rid: held[rid] for rid in sorted(with_context(held, executions))}


# -- create -------------------------------------------------------------------------------


@dataclass
class CreateResult:
    path: str
    site: str
    ref: str
    commit: str
    records: int
    objects: int = 0
    data_bytes: int = 0  # the artifact objects' bytes
    size: int = 0  # the bundle file's size
    unavailable: list[Artifact] = field(default_factory=list)  # selected, but their bytes are not here

    def as_json(self) -> dict[str, object]:
        return {
            "path": self.path,
            "site": self.site,
            "ref": self.ref,
            "commit": self.commit,
            "records": self.records,
            "objects": self.objects,
            "data_bytes": self.data_bytes,
            "size": self.size,
            "unavailable": [{"path": a.path, "hash": a.hash} for a in self.unavailable],
        }


def _commit_records(repo: Repo, records: dict[str, bytes], site: str) -> str:
    """A commit with no parent whose tree is ``.cmf/objects`` holding ``records`` loose,
    written into the object store as one pack (no checkout, no index)."""
    from dulwich.objects import Blob, Commit, ShaFile, Tree

    from cmfgit import globalview

    objects = globalview.open_objects(repo.common_dir)
    try:
        store = objects.object_store
        new: list[ShaFile] = []
        shards: dict[str, Tree] = {}
        for rid in sorted(records):
            blob = Blob.from_string(records[rid])
            new.append(blob)
            shards.setdefault(rid[:2], Tree()).add(f"{rid[2:]}.yaml".encode(), _BLOB_MODE, blob.id)
        top = Tree()
        for shard, tree in sorted(shards.items()):
            new.append(tree)
            top.add(shard.encode(), _TREE_MODE, tree.id)
        cmf = Tree()
        cmf.add(b"objects", _TREE_MODE, top.id)
        root = Tree()
        root.add(b".cmf", _TREE_MODE, cmf.id)
        commit = Commit()
        commit.tree = root.id
        commit.parents = []
        commit.author = commit.committer = globalview.IDENTITY
        commit.author_time = commit.commit_time = int(time.time())
        commit.author_timezone = commit.commit_timezone = 0
        commit.message = f"cmfgit bundle: {len(records)} record(s) from site {site}\n".encode()
        new += [top, cmf, root, commit]
        # One pack of them all (an object git already has is then stored twice, harmlessly:
        # asking the store about each costs more than writing it).
        store.add_objects([(obj, None) for obj in new])
        return commit.id.decode()
    finally:
        objects.close()


def _data_objects(repo: Repo, query: Query, cwd: Path | None) -> tuple[list[tuple[str, str]], list[Artifact]]:
    """(hex, kind) of the selected artifacts' objects, files first and manifests
    last, and the artifacts whose bytes are not here (not cached, path changed)."""
    from cmfgit.data import transfer
    from cmfgit.data.cache import Cache
    from cmfgit.data.selection import select
    from cmfgit.query import CmfQuery

    with CmfQuery(repo) as q:
        chosen = select(repo, q, query, cwd)
    files: dict[str, None] = {}
    manifests: set[str] = set()
    missing: list[Artifact] = []
    with Cache.of(repo) as cache:
        for art in chosen.by_hash().values():
            here = cache.has(art.hex) if repo.bare else transfer.ensure_cached(repo.root, cache, art)
            if not here or (art.kind == "dir" and not cache.has_tree(art.hex)):
                missing.append(art)
            elif art.kind == "dir":
                files.update(dict.fromkeys(cache.manifest_hexes(art.hex)))
                manifests.add(art.hex)
            else:
                files[art.hex] = None
    ordered = [(h, "file") for h in sorted(set(files) - manifests)] + [(h, "manifest") for h in sorted(manifests)]
    return ordered, missing


def _tarinfo(name: str, size: int, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o444
    info.mtime = mtime
    info.type = tarfile.REGTYPE
    return info


def _temp_beside(target: str) -> str:
    directory, name = os.path.split(target)
    return os.path.join(directory, f"{TMP_PREFIX}{os.getpid()}-{os.urandom(4).hex()}-{name[:40]}")


def create(
    repo: Repo, target: str | os.PathLike[str], query: Query, with_data: bool = False, cwd: Path | None = None
) -> CreateResult:
    """Write the bundle of ``query`` (records, and with ``with_data`` their artifact objects) to ``target``."""
    from cmfgit import __version__
    from cmfgit.config import site_name
    from cmfgit.data.cache import Cache
    from cmfgit.data.copying import hash_file

    path = os.path.abspath(os.fspath(target))
    if os.path.isdir(path):
        raise BundleError(os.fspath(target), "is a directory: name the bundle file to write")
    if not os.path.isdir(os.path.dirname(path)):
        raise BundleError(os.fspath(target), "its directory does not exist")
    site = site_name(repo)
    records = select_records(repo, query, cwd)
    if not records:
        raise CmfgitError("nothing to bundle: no record is selected")
    for rid, data in records.items():
        check_record(rid, data, f"record {rid[:12]}")
    commit = _commit_records(repo, records, site)
    ref = bundle_ref(site)
    before = gitutil.rev_parse(repo.root, ref)
    result = CreateResult(os.fspath(target), site, ref, commit, len(records))
    tmp_dir = repo.state_dir / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    meta = str(tmp_dir / f"{TMP_PREFIX}{os.getpid()}-{os.urandom(4).hex()}.bundle")
    out = _temp_beside(path)
    try:
        gitutil.git(["update-ref", "-m", "cmfgit bundle create", ref, commit], repo.root)
        objects: list[tuple[str, str]] = []
        if with_data:
            objects, result.unavailable = _data_objects(repo, query, cwd)
        gitutil.git(["bundle", "create", "--quiet", meta, ref], repo.root)
        meta_size, meta_hash = os.path.getsize(meta), hash_file(meta)
        with Cache.of(repo) as cache:
            sizes = [cache.size(h) for h, _kind in objects]
            doc = {
                "format": FORMAT,
                "cmfgit": __version__,
                "created": schema.utc_now(),
                "site": site,
                "ref": ref,
                "commit": commit,
                "records": len(records),
                "metadata": {"size": meta_size, "blake3": meta_hash},
                "objects": [{"blake3": h, "kind": kind, "size": n} for (h, kind), n in zip(objects, sizes)],
            }
            manifest = (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode()
            mtime = int(time.time())
            with open(out, "xb") as fh:
                with tarfile.open(fileobj=fh, mode="w", format=tarfile.PAX_FORMAT) as tar:
                    tar.addfile(_tarinfo(MANIFEST, len(manifest), mtime), io.BytesIO(manifest))
                    with open(meta, "rb") as src:
                        tar.addfile(_tarinfo(METADATA, meta_size, mtime), src)
                    for (hexhash, _kind), size in zip(objects, sizes):
                        with open(cache.path(hexhash), "rb") as src:
                            tar.addfile(_tarinfo(_member(hexhash), size, mtime), src)
                        result.objects += 1
                        result.data_bytes += size
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(out, path)
    except BaseException as exc:
        unlink_quietly(out)
        # The ref names the last bundle made: put it back.
        gitutil.git(["update-ref", ref, before] if before else ["update-ref", "-d", ref], repo.root, check=False)
        if isinstance(exc, OSError):
            raise BundleError(os.fspath(target), f"cannot write it: {exc.strerror or exc}") from None
        raise
    finally:
        unlink_quietly(meta)
    result.size = os.path.getsize(path)
    return result


def _member(hexhash: str) -> str:
    return f"{OBJECTS}{hexhash[:2]}/{hexhash[2:]}"


# -- import -------------------------------------------------------------------------------


@dataclass
class ImportResult:
    path: str
    site: str
    records: int  # records in the bundle
    bare: bool
    written: int = 0  # in a clone: records new to it, now pending
    site_ref: str | None = None  # in a bare repository: the site's ref
    site_added: int = 0
    global_added: int = 0
    global_records: int = 0
    updated: list[str] = field(default_factory=list)  # refs that moved
    objects: int = 0  # artifact objects in the bundle
    stored: int = 0  # of them, new to the cache
    data_skipped: bool = False  # --no-data
    remote: str | None = None  # the data remote the objects were also uploaded to
    uploaded: int = 0  # objects that remote lacked
    skipped: list[str] = field(default_factory=list)  # damaged files a union left out

    @property
    def nothing_new(self) -> bool:
        return not (self.written or self.updated or self.stored or self.uploaded)

    def as_json(self) -> dict[str, object]:
        return {
            "path": self.path,
            "site": self.site,
            "records": self.records,
            "written": self.written,
            "site_ref": self.site_ref,
            "site_added": self.site_added,
            "global_added": self.global_added,
            "global_records": self.global_records,
            "updated": self.updated,
            "objects": self.objects,
            "stored": self.stored,
            "remote": self.remote,
            "uploaded": self.uploaded,
            "nothing_new": self.nothing_new,
        }


@dataclass
class _Manifest:
    site: str
    ref: str
    commit: str
    records: int
    meta_size: int
    meta_hash: str
    objects: list[tuple[str, str, int]]  # (hex, kind, size)


def _parse_manifest(shown: str, data: bytes) -> _Manifest:
    def bad(why: str) -> BundleError:
        return BundleError(shown, f"not a cmfgit bundle ({MANIFEST}: {why})")

    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise bad("not JSON") from None
    if not isinstance(doc, dict):
        raise bad("not a mapping")
    if doc.get("format") != FORMAT:
        raise BundleError(shown, f"unknown bundle format {doc.get('format')!r} (this cmfgit reads {FORMAT})")
    site, ref, commit, records, meta, objects = (
        doc.get(k) for k in ("site", "ref", "commit", "records", "metadata", "objects")
    )
    # The site's name goes into commit messages: one printable line, or a line break could forge a trailer.
    if not isinstance(site, str) or not site or len(site) > 200 or not site.isprintable():
        raise bad("bad site name")
    if not isinstance(ref, str) or ref != bundle_ref(site):
        raise bad("bad ref")
    if not isinstance(commit, str) or not _SHA.match(commit):
        raise bad("bad commit")
    if type(records) is not int or records < 0:
        raise bad("bad record count")
    if not isinstance(meta, dict) or type(meta.get("size")) is not int or not _HEX.match(str(meta.get("blake3"))):
        raise bad("bad metadata entry")
    if not isinstance(objects, list):
        raise bad("bad object list")
    listed: list[tuple[str, str, int]] = []
    seen: set[str] = set()
    for item in objects:
        if not isinstance(item, dict):
            raise bad("bad object entry")
        hexhash, kind, size = item.get("blake3"), item.get("kind"), item.get("size")
        if not isinstance(hexhash, str) or not _HEX.match(hexhash) or hexhash in seen:
            raise bad("bad or repeated object name")
        if kind not in ("file", "manifest") or type(size) is not int or size < 0:
            raise bad(f"bad object entry for blake3:{hexhash}")
        seen.add(hexhash)
        listed.append((hexhash, str(kind), size))
    return _Manifest(site, ref, commit, records, int(meta["size"]), str(meta["blake3"]), listed)


class _Reader:
    """The members of a bundle file in order, each checked against the manifest."""

    def __init__(self, path: Path, shown: str) -> None:
        self.shown = shown
        try:
            self.tar = tarfile.open(path, mode="r:")
        except (tarfile.TarError, EOFError):
            raise BundleError(shown, "not a cmfgit bundle (not a tar file)") from None
        self._members: Iterator[tarfile.TarInfo] = iter(self.tar)

    def close(self) -> None:
        self.tar.close()

    def next(self, name: str, size: int | None) -> tarfile.TarInfo:
        member = next(self._members, None)
        if member is None:
            raise BundleError(self.shown, f"truncated: {name} is missing")
        if member.name != name or not member.isreg():
            raise BundleError(self.shown, f"not a cmfgit bundle: found {member.name!r} where {name} belongs")
        if size is not None and member.size != size:
            raise BundleError(self.shown, f"{name}: {member.size} bytes, the manifest says {size}")
        return member

    def open(self, member: tarfile.TarInfo) -> IO[bytes]:
        fh = self.tar.extractfile(member)
        assert fh is not None  # a regular file
        return fh

    def end(self) -> None:
        extra = next(self._members, None)
        if extra is not None:
            raise BundleError(self.shown, f"not a cmfgit bundle: {extra.name!r} is not in its manifest")


def _to_temp(fh: IO[bytes], size: int, target: str) -> tuple[str, str]:
    """Stream exactly ``size`` bytes of ``fh`` to a temp file beside ``target``: (temp, blake3 hex)."""
    from cmfgit.data.copying import write_stream_to_temp

    left = size

    def read(n: int) -> bytes:
        nonlocal left
        if not left:
            return b""
        chunk = fh.read(min(left, n))
        if not chunk:
            raise tarfile.ReadError("unexpected end of data")
        left -= len(chunk)
        return chunk

    tmp, got, _ = write_stream_to_temp(read, target)
    return tmp, got


@dataclass
class _Incoming:
    """What an import read and checked, not yet in place."""

    manifest: _Manifest
    meta: str = ""  # the git bundle, in a temp file
    objects: dict[str, str] = field(default_factory=dict)  # hex -> verified temp file in the cache
    temps: list[str] = field(default_factory=list)

    def discard(self) -> None:
        for tmp in self.temps:
            unlink_quietly(tmp)


def _read(repo: Repo, path: Path, shown: str, cache: Cache | None) -> _Incoming:
    """Read every member, hash it, and keep it in a temp file (objects the cache
    lacks go beside their place in it). Raises BundleError with nothing written."""
    reader = _Reader(path, shown)
    incoming: _Incoming | None = None
    try:
        member = reader.next(MANIFEST, None)
        if member.size > MAX_MANIFEST:
            raise BundleError(shown, f"not a cmfgit bundle ({MANIFEST} of {member.size} bytes)")
        incoming = _Incoming(_parse_manifest(shown, reader.open(member).read()))
        m = incoming.manifest
        member = reader.next(METADATA, m.meta_size)
        tmp_dir = repo.state_dir / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        tmp, got = _to_temp(reader.open(member), member.size, str(tmp_dir / "incoming.bundle"))
        incoming.temps.append(tmp)
        incoming.meta = tmp
        if got != m.meta_hash:
            raise BundleError(shown, f"{METADATA} is corrupt (its bytes hash to blake3:{got}, not {m.meta_hash})")
        for hexhash, _kind, size in m.objects:
            member = reader.next(_member(hexhash), size)
            if cache is None or cache.has(hexhash) or hexhash in incoming.objects:
                continue
            tmp, got = _to_temp(reader.open(member), size, cache.path(hexhash))
            incoming.temps.append(tmp)
            if got != hexhash:
                raise CorruptObjectError(f"blake3:{hexhash}", f"bundle {shown}", f"blake3:{got}")
            incoming.objects[hexhash] = tmp
        reader.end()
    except (tarfile.TarError, EOFError) as exc:
        if incoming is not None:
            incoming.discard()
        raise BundleError(shown, f"truncated or damaged ({exc})") from None
    except BaseException:
        if incoming is not None:
            incoming.discard()
        raise
    finally:
        reader.close()
    return incoming


def _check_manifests(incoming: _Incoming, cache: Cache, shown: str) -> None:
    """A directory manifest enters the cache only with all of its files."""
    from cmfgit.data import manifest

    for hexhash, kind, _size in incoming.manifest.objects:
        tmp = incoming.objects.get(hexhash)
        if kind != "manifest" or tmp is None:
            continue
        with open(tmp, "rb") as fh:
            entries = manifest.parse(fh.read(), f"{shown}: manifest blake3:{hexhash[:12]}")
        lacking = [e.hex for e in entries if e.hex not in incoming.objects and not cache.has(e.hex)]
        if lacking:
            raise BundleError(shown, f"directory blake3:{hexhash[:12]} lists {len(lacking)} file(s) the bundle lacks")


def _unbundle(repo: Repo, incoming: _Incoming, shown: str) -> None:
    """Check the git bundle and bring its objects in (no ref moves)."""
    m = incoming.manifest
    try:
        gitutil.git(["bundle", "verify", "--quiet", incoming.meta], repo.root)
        heads = gitutil.git_text(["bundle", "list-heads", incoming.meta], repo.root).splitlines()
    except GitError as exc:
        raise BundleError(shown, f"{METADATA} is not a usable git bundle ({exc})") from None
    if heads != [f"{m.commit} {m.ref}"]:
        raise BundleError(shown, f"{METADATA} does not hold exactly {m.ref} at {m.commit[:12]}")
    gitutil.git(["bundle", "unbundle", incoming.meta], repo.root)


def _check_records(repo: Repo, incoming: _Incoming, shown: str, known: set[str]) -> dict[str, bytes]:
    """The bundle commit's records that ``known`` lacks, each checked; its tree must hold
    loose records and nothing else, as many as the manifest says."""
    m = incoming.manifest
    kind = gitutil.git_text(["cat-file", "-t", m.commit], repo.root)
    if kind != "commit":
        raise BundleError(shown, f"{m.commit[:12]} is a {kind}, not a commit")
    out = gitutil.git(["ls-tree", "-r", "-z", "--full-tree", m.commit], repo.root)
    entries: list[tuple[str, str]] = []  # (blob, the id its name gives)
    for entry in out.split(b"\0"):
        if not entry:
            continue
        meta, _, name = entry.partition(b"\t")
        mode, kind_, oid = meta.decode("ascii", "replace").split(" ")
        found = _RECORD_PATH.match(name)
        if found is None or mode != "100644" or kind_ != "blob":
            shown_name = name.decode("utf-8", "replace")
            raise BundleError(shown, f"not a cmfgit bundle: its commit holds {shown_name!r}, not only loose records")
        entries.append((oid, (found.group(1) + found.group(2)).decode()))
    if len(entries) != m.records:
        raise BundleError(shown, f"holds {len(entries)} record(s), its manifest says {m.records}")
    records: dict[str, bytes] = {}
    for (_oid, rid), (_blob, data) in zip(entries, gitutil.cat_blobs(repo.root, [oid for oid, _ in entries])):
        try:
            if rid not in known:
                check_record(rid, data, f"record {rid[:12]}")
                records[rid] = data
            elif canonical.digest(data) != rid:  # known here: the same bytes, or refused
                raise RecordError(f"record {rid[:12]}", "content does not match its id (edited or corrupted)")
        except RecordError as exc:
            raise BundleError(shown, f"refused, nothing imported: {exc}") from None
    return records


def _loose_in_view(repo: Repo) -> set[str]:
    """The ids of the loose records of a bare repository's cmf/global (the union never
    takes another copy of those: their names are their hashes)."""
    from cmfgit import globalview

    if globalview.ref_value(repo.root, globalview.GLOBAL_REF) is None:
        return set()
    found: set[str] = set()
    for path, _blob in gitutil.ls_tree_blobs(repo.root, globalview.GLOBAL_REF, ".cmf/objects"):
        loose = _RECORD_PATH.match(path.encode("utf-8", "surrogateescape"))
        if loose is not None:
            found.add((loose.group(1) + loose.group(2)).decode())
    return found


def _published(repo: Repo, m: _Manifest) -> bool:
    """Do the site's ref and cmf/global both list the bundle's tree as a source already
    (an import of the same bundle again)? Then its records were checked when they came in."""
    from cmfgit import globalview

    tree = gitutil.rev_parse(repo.root, f"{m.commit}^{{tree}}:.cmf/objects")
    for ref in (site_ref(m.site), globalview.GLOBAL_REF):
        tip = globalview.ref_value(repo.root, ref)
        if tip is None or tree is None:
            return False
        message = gitutil.git(["cat-file", "commit", tip], repo.root).partition(b"\n\n")[2]
        if tree not in globalview.trailers(message).get(globalview.SOURCE_TRAILER, []):
            return False
    return True


def _advance(git_dir: Path, ref: str, source: str, what: str, attempts: int = 20) -> tuple[bool, int, int, list[str]]:
    """Make ``ref`` the union of what it holds and commit ``source``, with compare-and-swap
    (the new commit has the old tip as parent: a fast-forward). (moved, records, added, skipped)."""
    from dulwich.objects import ObjectID

    from cmfgit import globalview

    objects = globalview.open_objects(git_dir)
    try:
        for attempt in range(1, attempts + 1):
            old = globalview.ref_value(git_dir, ref)
            result = globalview.build_union(
                objects, ObjectID(old.encode()) if old else None, [ObjectID(source.encode())], what
            )
            if result.commit is None:
                return False, result.records, 0, result.skipped
            new = result.commit.decode()
            message = f"cmfgit bundle import: +{result.added} record(s) from {what}"
            if gitutil.git_ok(["update-ref", "-m", message, ref, new, old or "0" * 40], git_dir):
                return True, result.records, result.added, result.skipped
            globalview.backoff(attempt)
    finally:
        objects.close()
    raise CmfgitError(f"could not update {ref} after {attempts} attempts: it kept moving; import again")


def import_bundle(
    repo: Repo, file: str | os.PathLike[str], with_data: bool = True, remote_name: str | None = None
) -> ImportResult:
    """Import a bundle file: every member checked first, then published (see the module docstring)."""
    from cmfgit.data.cache import Cache

    shown = os.fspath(file)
    if remote_name is not None and not with_data:
        from cmfgit.errors import UsageError

        raise UsageError("-r uploads the bundle's objects: it cannot go with --no-data")
    path = Path(file)
    if not path.is_file():
        raise BundleError(shown, "no such file")
    if not repo.bare:
        repo.require_initialized()
    with Cache.of(repo) as cache:
        incoming = _read(repo, path, shown, cache if with_data else None)
        try:
            m = incoming.manifest
            if with_data:
                _check_manifests(incoming, cache, shown)
            _unbundle(repo, incoming, shown)
            if repo.bare:
                # Every record new to the view is checked (none, if this bundle is in already).
                records = {} if _published(repo, m) else _check_records(repo, incoming, shown, _loose_in_view(repo))
            else:
                from cmfgit.store import Store

                records = _check_records(repo, incoming, shown, Store(repo.objects_dir).ids())
            result = ImportResult(shown, m.site, m.records, repo.bare, objects=len(m.objects))
            result.data_skipped = not with_data
            # -- every check passed: from here on, writes --
            kinds = {h: kind for h, kind, _ in m.objects}
            for hexhash in sorted(incoming.objects, key=lambda h: (kinds[h] == "manifest", h)):
                if cache.accept_temp(incoming.objects[hexhash], hexhash, hexhash):
                    result.stored += 1
            incoming.objects.clear()
            if repo.bare:
                _publish_central(repo, m, result)
            else:
                _publish_clone(repo, records, result)
        finally:
            incoming.discard()
    if remote_name is not None and with_data:
        result.remote, result.uploaded = _upload(repo, [h for h, _, _ in m.objects], kinds, remote_name)
    return result


def _publish_central(repo: Repo, m: _Manifest, result: ImportResult) -> None:
    """As a push: the site's ref, then cmf/global, each the union with the bundle's records."""
    from cmfgit.globalview import GLOBAL_REF

    what = f"site {m.site} (bundle)"
    result.site_ref = site_ref(m.site)
    moved, _records, result.site_added, skipped = _advance(repo.common_dir, result.site_ref, m.commit, what)
    if moved:
        result.updated.append(result.site_ref)
    moved, result.global_records, result.global_added, more = _advance(repo.common_dir, GLOBAL_REF, m.commit, what)
    if moved:
        result.updated.append(GLOBAL_REF)
    result.skipped = sorted(set(skipped + more))


def _publish_clone(repo: Repo, records: dict[str, bytes], result: ImportResult) -> None:
    """As a pull: the records this clone lacks (see _check_records), written into packs
    (``pullstore.write_records``), pending until committed."""
    from cmfgit import pullstore

    brought = pullstore.Brought()
    pullstore.write_records(repo, dict(sorted(records.items())), brought)
    result.written = brought.written


def _upload(repo: Repo, hexes: list[str], kinds: dict[str, str], remote_name: str) -> tuple[str, int]:
    """The bundle's objects to a data remote too (only what it lacks; manifests last)."""
    from cmfgit.data import remote
    from cmfgit.data.cache import Cache

    backend = remote.open_backend(repo, _data_remote(repo, remote_name))
    try:
        if backend.layout == "dvc" or backend.read_only:
            from cmfgit.errors import RemoteError

            raise RemoteError(backend.name, "is read-only for cmfgit: the bundle's objects cannot be uploaded to it")
        keys = {remote.object_key(h): h for h in hexes}
        absent = sorted((keys[k] for k in backend.missing(list(keys))), key=lambda h: (kinds[h] == "manifest", h))
        with Cache.of(repo) as cache:
            for hexhash in absent:
                backend.upload(cache.path(hexhash), remote.object_key(hexhash))
        return backend.name, len(absent)
    finally:
        backend.close()


def _data_remote(repo: Repo, name: str) -> Any:
    """A data remote of this clone's config by name, else a URL or an absolute path (a
    bare central repository has no config: ``-r /srv/cmf-data``, ``-r s3://bucket/cmf``)."""
    from cmfgit.data import remote
    from cmfgit.errors import UsageError

    if not repo.bare:
        for spec in remote.remotes(repo):
            if spec.name == name:
                return spec
    if "://" in name or os.path.isabs(name):
        return remote.RemoteSpec(name, remote.check_url(name))
    where = "this bare repository has none by name" if repo.bare else "see 'cmfgit remote list'"
    raise UsageError(f"no data remote '{name}' ({where}): give a URL or an absolute path")
