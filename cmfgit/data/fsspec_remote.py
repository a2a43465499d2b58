"""Data remotes through fsspec: ``s3://``, ``ssh://``/``sftp://``, ``http(s)://``
(read-only), ``gs://``, ``az://`` and any other scheme fsspec has a back-end for.

Install the back-ends with the extras: ``pip install 'cmfgit[s3]'`` (s3fs),
``'cmfgit[ssh]'`` (sshfs), ``'cmfgit[http]'`` (aiohttp). Uploads go to a
temp name and are renamed where the back-end can rename (SFTP, local);
object stores (S3, GCS, Azure) make a PUT visible whole, so they are
written in place.
"""

from __future__ import annotations

import os
from typing import Any

from cmfgit.data import copying
from cmfgit.data.local import _object_of
from cmfgit.errors import MissingObjectError, RemoteError
from cmfgit.fsutil import TMP_PREFIX

ATOMIC_PUT = {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "oss"}
READ_ONLY = {"http", "https"}
LIST_ABOVE = 256  # more keys than this: list the remote once instead of asking per key


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
        self.written: set[str] = set()  # directories uploads went to (through a temp name)

    def _path(self, key: str) -> str:
        return f"{self.root}/{key}" if self.root else key

    def missing(self, keys: list[str]) -> set[str]:
        try:
            if len(keys) > LIST_ABOVE and not self.read_only:  # a static HTTP server cannot list
                present: set[str] = set()
                for top in sorted({k.rsplit("/", 2)[0] for k in keys}):  # 'blake3', or DVC's 'files/md5'
                    try:
                        found = self.fs.find(self._path(top))
                    except FileNotFoundError:
                        continue
                    present.update((p[len(self.root) + 1 :] if self.root else p).lstrip("/") for p in found)
                return {k for k in keys if k not in present}
            return {k for k in keys if not self.fs.exists(self._path(k))}
        except (FileNotFoundError, MissingObjectError):
            return set(keys)
        except Exception as exc:
            raise _friendly(self.name, exc) from None

    def upload(self, local: str, key: str) -> None:
        if self.read_only:
            raise RemoteError(self.name, f"{self.protocol}:// remotes are read-only")
        target = self._path(key)
        try:
            parent = target.rsplit("/", 1)[0]
            if not self._atomic_put:
                self.fs.makedirs(parent, exist_ok=True)
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
            raise _friendly(self.name, exc) from None

    def download(self, key: str, target: str) -> tuple[str, str, int]:
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

    def clean_temps(self, older_than: float = 300.0, everywhere: bool = False) -> int:
        """Remove temp files of killed uploads not written for ``older_than`` seconds (see
        local.py). Object stores have none: their PUTs appear whole, with no temp name."""
        import time

        if self._atomic_put or self.read_only:
            return 0
        dirs = set(self.written)
        try:
            if everywhere:
                try:
                    dirs.update(
                        e["name"] for e in self.fs.ls(self._path("blake3"), detail=True) if e["type"] == "directory"
                    )
                except FileNotFoundError:
                    pass
            now = time.time()
            removed = 0
            for directory in sorted(dirs):
                for entry in self.fs.ls(directory, detail=True):
                    name = entry["name"].rstrip("/").rsplit("/", 1)[-1]
                    if not name.startswith(TMP_PREFIX):
                        continue
                    mtime = entry.get("mtime")
                    stamp = mtime.timestamp() if hasattr(mtime, "timestamp") else float(mtime or 0)
                    if now - stamp >= older_than:
                        self.fs.rm(entry["name"])
                        removed += 1
            return removed
        except FileNotFoundError:
            return 0
        except Exception as exc:
            raise _friendly(self.name, exc) from None

    def close(self) -> None:
        pass
