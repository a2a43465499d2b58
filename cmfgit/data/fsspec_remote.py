"""Data remotes through fsspec: ``s3://``, ``ssh://``/``sftp://``, ``http(s)://``
(read-only), ``gs://``, ``az://`` and any other scheme fsspec has a back-end for.

Install the back-ends with the extras: ``pip install 'cmfgit[s3]'`` (s3fs),
``'cmfgit[ssh]'`` (sshfs), ``'cmfgit[http]'`` (aiohttp). Uploads go to a
temp name and are renamed where the back-end can rename (SFTP, local);
object stores (S3, GCS, Azure) make a PUT visible whole, so they are
written in place.

Many objects move as one batch on the back-end's own event loop (every
fsspec back-end cmfgit names is asynchronous): up to ``inflight(jobs)``
transfers at once, so a small object costs a share of the round trips, not
all of them. A push lists each shard's parent once and makes only the shard
directories that are missing (one ``mkdir`` each, not a ``makedirs`` per
object); over SFTP the files go straight through the pooled SFTP channels
(sshfs' own put would make the parent again for each file), to a temp name,
then ``posix_rename``. A download goes to a local temp file, which is then
hashed: what is verified is what was written. Which keys a remote has is
asked with one listing per shard directory, all at once (or one ``exists``
per key, all at once, for a few keys or a static HTTP server).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Any

from cmfgit.data import copying
from cmfgit.data.local import _object_of
from cmfgit.errors import CmfgitError, MissingObjectError, RemoteError
from cmfgit.fsutil import TMP_PREFIX, temp_path, unlink_quietly

ATOMIC_PUT = {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "oss"}
READ_ONLY = {"http", "https"}
LIST_ABOVE = 256  # more keys than this: list their shard directories instead of asking per key
SMALL = 1 << 20  # SFTP: objects up to this size are uploaded by open, write, close (no stat first)
INFLIGHT = 128  # at most this many transfers (or questions) at once on one remote


def inflight(jobs: int) -> int:
    """How many transfers a batch keeps going at once for ``-j jobs``: small objects are
    bound by round trips, not bandwidth, so several per job."""
    return max(1, min(INFLIGHT, 8 * jobs))


def _friendly(name: str, exc: BaseException) -> RemoteError:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    lowered = text.lower()
    if isinstance(exc, PermissionError) or "access denied" in lowered or "forbidden" in lowered:
        return RemoteError(name, f"access denied ({text}); check the credentials")
    if "unable to locate credentials" in lowered or "nocredentials" in lowered:
        return RemoteError(
            name,
            f"no credentials found ({text}): set them in the environment or ~/.aws, or in this clone's "
            f"git config cmfgit.remote.{name}.key / .secret",
        )
    if "credential" in lowered or "signature" in lowered or "invalidaccesskey" in lowered:
        return RemoteError(name, f"bad credentials ({text})")
    if "connect" in lowered or isinstance(exc, (ConnectionError, TimeoutError)):
        return RemoteError(name, f"unreachable ({text})")
    return RemoteError(name, f"{type(exc).__name__}: {text}")


def _not_found(exc: BaseException) -> bool:
    """A back-end's "no such object" that is not a FileNotFoundError (asyncssh's own, say)."""
    return type(exc).__name__ in ("SFTPNoSuchFile", "NoSuchKey") or "no such file" in str(exc).lower()


class FsspecBackend:
    layout = "blake3"
    dvc_copies = False

    def __init__(self, name: str, url: str, options: dict[str, str]) -> None:
        import fsspec

        self.name = name
        self.url = url
        self.protocol = url.split("://", 1)[0].lower()
        self.read_only = self.protocol in READ_ONLY
        storage: dict[str, Any] = {k: v for k, v in options.items() if k != "endpoint"}
        if options.get("endpoint"):
            if self.protocol in ("s3", "s3a"):
                storage.setdefault("client_kwargs", {})["endpoint_url"] = options["endpoint"]
            else:
                storage["endpoint_url"] = options["endpoint"]
        if self.protocol in ("s3", "s3a"):
            # Fail in seconds, not minutes, when the endpoint is down.
            storage.setdefault("config_kwargs", {"connect_timeout": 10, "retries": {"max_attempts": 2}})
        try:
            self.fs, self.root = fsspec.core.url_to_fs(url, **storage)
        except ImportError as exc:
            raise RemoteError(name, f"the {self.protocol}:// back-end is not installed ({exc})") from None
        except Exception as exc:  # a back-end's own error: say it in one line
            raise _friendly(name, exc) from None
        self.root = self.root.rstrip("/")
        self._atomic_put = self.protocol in ATOMIC_PUT
        self._async = bool(getattr(self.fs, "async_impl", False))
        self._sftp_pool = getattr(self.fs, "_pool", None) if self.protocol in ("ssh", "sftp") else None
        self.written: set[str] = set()  # directories uploads went to (through a temp name)
        self._made: set[str] = set()  # directories known to exist on the remote

    def _path(self, key: str) -> str:
        return f"{self.root}/{key}" if self.root else key

    def _key(self, path: str) -> str:
        path = path.rstrip("/")
        return (path[len(self.root) + 1 :] if self.root else path).lstrip("/")

    def _batch(self, make: Callable[[], Awaitable[Any]]) -> Any:
        """Run the coroutine ``make()`` returns on the back-end's event loop, from this thread."""
        from fsspec.asyn import sync

        return sync(self.fs.loop, make)

    @staticmethod
    async def _each(limit: int, work: Callable[[Any], Awaitable[Any]], items: list[Any]) -> list[Any]:
        """``work`` over ``items``, at most ``limit`` at once: the results, an exception for each that failed."""
        gate = asyncio.Semaphore(limit)

        async def one(item: Any) -> Any:
            async with gate:
                return await work(item)

        return list(await asyncio.gather(*(one(i) for i in items), return_exceptions=True))

    # -- which keys are there -----------------------------------------------------------------

    def missing(self, keys: list[str]) -> set[str]:
        try:
            if self._async:
                return self._missing_async(keys)
            if len(keys) > LIST_ABOVE and not self.read_only:  # a static HTTP server cannot list
                present: set[str] = set()
                for top in sorted({k.rsplit("/", 2)[0] for k in keys}):  # 'blake3', or DVC's 'files/md5'
                    try:
                        found = self.fs.find(self._path(top))
                    except FileNotFoundError:
                        continue
                    present.update(self._key(p) for p in found)
                return {k for k in keys if k not in present}
            return {k for k in keys if not self.fs.exists(self._path(k))}
        except (FileNotFoundError, MissingObjectError):
            return set(keys)
        except Exception as exc:
            raise _friendly(self.name, exc) from None

    def _missing_async(self, keys: list[str]) -> set[str]:
        if not keys:
            return set()
        if len(keys) <= LIST_ABOVE or self.read_only:  # (a static HTTP server cannot list)

            async def exists(key: str) -> bool:
                return bool(await self.fs._exists(self._path(key)))

            answers = self._batch(lambda: self._each(INFLIGHT, exists, keys))
            for answer in answers:
                if isinstance(answer, BaseException):
                    raise answer
            return {k for k, there in zip(keys, answers) if not there}
        shards = sorted({k.rpartition("/")[0] for k in keys})

        async def names(shard: str) -> set[str]:
            try:
                listed = await self.fs._ls(self._path(shard), detail=False, refresh=True)
            except FileNotFoundError:
                return set()
            return {self._key(p if isinstance(p, str) else p["name"]) for p in listed}

        present = set()
        for found in self._batch(lambda: self._each(INFLIGHT, names, shards)):
            if isinstance(found, BaseException):
                raise found
            present |= found
        return {k for k in keys if k not in present}

    # -- uploads ------------------------------------------------------------------------------

    def upload(self, local: str, key: str) -> None:
        errors = self.upload_many([(local, key)], 1, lambda _size: None)
        if errors:
            raise errors[0]

    def upload_many(
        self, items: list[tuple[str, str]], jobs: int, advance: Callable[[int], None]
    ) -> list[BaseException]:
        """Upload ``(local file, key)`` pairs, ``inflight(jobs)`` at a time, each appearing
        whole or not at all; ``advance(size)`` as each is done. The errors, one per object
        that failed (the others are uploaded)."""
        if self.read_only:
            raise RemoteError(self.name, f"{self.protocol}:// remotes are read-only")
        if not items:
            return []
        try:
            if not self._async:
                return self._upload_sync(items, advance)
            if not self._atomic_put:
                self._batch(lambda: self._make_dirs(sorted({self._path(k).rsplit("/", 1)[0] for _, k in items})))
            results = self._batch(
                lambda: self._each(inflight(jobs), lambda item: self._put(item[0], item[1], advance), items)
            )
        except RemoteError:
            raise
        except Exception as exc:
            raise _friendly(self.name, exc) from None
        return [_friendly(self.name, r) if not isinstance(r, RemoteError) else r for r in results if r is not None]

    async def _make_dirs(self, parents: list[str]) -> None:
        """Make the shard directories ``parents`` that are missing: their parent listed once
        (made if need be), then one mkdir per missing shard, all at once."""
        todo = [p for p in parents if p not in self._made]
        self.written.update(parents)
        by_top: dict[str, list[str]] = {}
        for p in todo:
            by_top.setdefault(p.rsplit("/", 1)[0], []).append(p)
        for top, shards in sorted(by_top.items()):
            try:
                listed = await self.fs._ls(top, detail=False)
                there = {(e if isinstance(e, str) else e["name"]).rstrip("/") for e in listed}
            except FileNotFoundError:
                await self.fs._makedirs(top, exist_ok=True)
                there = set()
            lacking = [s for s in shards if s not in there]

            async def mkdir(path: str) -> None:
                try:
                    await self.fs._mkdir(path, create_parents=False)
                except FileExistsError:
                    pass  # another site made it first
                except OSError:
                    if not await self.fs._isdir(path):
                        raise

            for result in await self._each(INFLIGHT, mkdir, lacking):
                if isinstance(result, BaseException):
                    raise result
            self._made.update(shards)

    async def _put(self, local: str, key: str, advance: Callable[[int], None]) -> None:
        target = self._path(key)
        if self._atomic_put:
            await self.fs._put_file(local, target)
        else:
            tmp = f"{target.rsplit('/', 1)[0]}/{TMP_PREFIX}{os.getpid()}-{os.urandom(4).hex()}"
            if self._sftp_pool is not None and os.path.getsize(local) <= SMALL:
                # open, write, close: sshfs' _put_file would make the parent again, and
                # asyncssh's put stat the target first, for each small object
                with open(local, "rb") as fh:
                    data = fh.read()
                async with self._sftp_pool.get() as channel:
                    async with channel.open(tmp, "wb") as remote:
                        await remote.write(data)
            else:  # (a big one: sshfs' tuned block sizes, and one makedirs is nothing beside it)
                await self.fs._put_file(local, tmp)
            try:
                await self.fs._mv(tmp, target)
            except Exception:
                if not await self.fs._exists(target):
                    raise
                await self.fs._rm_file(tmp)  # another site got there first: same bytes
        advance(os.path.getsize(local))

    def _upload_sync(self, items: list[tuple[str, str]], advance: Callable[[int], None]) -> list[BaseException]:
        """A back-end without an event loop: one object after another."""
        errors: list[BaseException] = []
        for local, key in items:
            target = self._path(key)
            try:
                if not self._atomic_put:
                    parent = target.rsplit("/", 1)[0]
                    if parent not in self._made:
                        self.fs.makedirs(parent, exist_ok=True)
                        self._made.add(parent)
                    self.written.add(parent)
                    tmp = f"{parent}/{TMP_PREFIX}{os.getpid()}-{os.urandom(4).hex()}"
                    self.fs.put_file(local, tmp)
                    try:
                        self.fs.mv(tmp, target)
                    except Exception:
                        if not self.fs.exists(target):
                            raise
                        self.fs.rm(tmp)  # another site got there first: same bytes
                else:
                    self.fs.put_file(local, target)
            except Exception as exc:
                errors.append(_friendly(self.name, exc))
                continue
            advance(os.path.getsize(local))
        return errors

    # -- downloads ----------------------------------------------------------------------------

    def download(self, key: str, target: str) -> tuple[str, str, int]:
        if self._async:
            got = self.download_many([(key, target)], 1, lambda _size: None)[0]
            if isinstance(got, BaseException):
                raise got
            return got
        try:
            fh = self.fs.open(self._path(key), "rb")
        except FileNotFoundError:
            raise MissingObjectError(_object_of(key), f"data remote '{self.name}'") from None
        except Exception as exc:
            raise _friendly(self.name, exc) from None
        try:
            with fh:
                return copying.write_stream_to_temp(fh.read, target)
        except FileNotFoundError:
            raise MissingObjectError(_object_of(key), f"data remote '{self.name}'") from None
        except OSError:
            raise
        except Exception as exc:
            raise _friendly(self.name, exc) from None

    def download_many(
        self, items: list[tuple[str, str]], jobs: int, advance: Callable[[int], None]
    ) -> list[tuple[str, str, int] | BaseException]:
        """Download ``(key, target)`` pairs, ``inflight(jobs)`` at a time, each to a temp file
        beside its target, then hash what was written: for each, ``(temp, blake3 hex, size)``
        as ``download`` gives, or the error (MissingObjectError if the remote lacks it)."""
        if not self._async:
            out: list[tuple[str, str, int] | BaseException] = []
            for key, target in items:
                try:
                    out.append(self.download(key, target))
                except (CmfgitError, OSError) as exc:
                    out.append(exc)
                    continue
                advance(out[-1][2])  # type: ignore[index]
            return out
        for directory in sorted({os.path.dirname(t) for _, t in items}):
            os.makedirs(directory, exist_ok=True)
        temps = [temp_path(t) for _, t in items]

        async def get(i: int) -> None:
            await self.fs._get_file(self._path(items[i][0]), temps[i])

        results = self._batch(lambda: self._each(inflight(jobs), get, list(range(len(items)))))
        out = []
        for (key, _target), tmp, result in zip(items, temps, results):
            if result is None:
                try:
                    os.chmod(tmp, 0o444)
                    size = os.path.getsize(tmp)
                    out.append((tmp, copying.hash_file(tmp), size))
                    advance(size)
                    continue
                except OSError as exc:
                    result = exc
            unlink_quietly(tmp)
            if isinstance(result, FileNotFoundError) or _not_found(result):
                out.append(MissingObjectError(_object_of(key), f"data remote '{self.name}'"))
            elif isinstance(result, (CmfgitError, OSError)) and not isinstance(result, PermissionError):
                out.append(result)
            else:
                out.append(_friendly(self.name, result))
        return out

    def _listings(self, dirs: list[str]) -> list[list[dict[str, Any]]]:
        """The detailed listing of each of ``dirs`` (empty if it is not there), all asked at once."""

        async def ls(directory: str) -> list[dict[str, Any]]:
            try:
                return list(await self.fs._ls(directory, detail=True))
            except FileNotFoundError:
                return []

        if not self._async:
            out = []
            for directory in dirs:
                try:
                    out.append(list(self.fs.ls(directory, detail=True)))
                except FileNotFoundError:
                    out.append([])
            return out
        found = self._batch(lambda: self._each(INFLIGHT, ls, dirs))
        for item in found:
            if isinstance(item, BaseException):
                raise item
        return list(found)

    def clean_temps(self, older_than: float = 300.0, everywhere: bool = False) -> int:
        """Remove temp files of killed uploads not written for ``older_than`` seconds (see
        local.py). Object stores have none: their PUTs appear whole, with no temp name."""
        import time

        if self._atomic_put or self.read_only:
            return 0
        dirs = set(self.written)
        try:
            if everywhere:
                tops = self._listings([self._path("blake3"), self._path("files/md5")])
                dirs.update(e["name"].rstrip("/") for top in tops for e in top if e["type"] == "directory")
            now = time.time()
            stale = []
            for listing in self._listings(sorted(dirs)):
                for entry in listing:
                    name = entry["name"].rstrip("/").rsplit("/", 1)[-1]
                    if not name.startswith(TMP_PREFIX):
                        continue
                    mtime: Any = entry.get("mtime")
                    stamp = mtime.timestamp() if hasattr(mtime, "timestamp") else float(mtime or 0)
                    if now - stamp >= older_than:
                        stale.append(entry["name"])
            for path in stale:
                self.fs.rm_file(path)
            return len(stale)
        except FileNotFoundError:
            return 0
        except Exception as exc:
            raise _friendly(self.name, exc) from None

    def close(self) -> None:
        pass
