"""Data remotes: where the bytes of artifacts are kept, shared by every clone.

Remotes are named in ``.cmf/config.yaml`` (committed), under ``data``::

    data:
      remote: store              # the default data remote
      remotes:
        store:
          url: /mnt/shared/cmf-data
        s3:
          url: s3://bucket/prefix
          endpoint: http://127.0.0.1:9000

Credentials never go there (the file is committed): a URL with a password,
or with a secret in its query, is refused. Back-ends find credentials where
their own tools do (the environment, ``~/.aws``, the ssh agent and
``~/.ssh/config``), or in this clone's git config as
``cmfgit.remote.<name>.<option>`` (passed to the back-end, never committed).

A URL without a scheme, or ``file://``, is a local or mounted directory and
needs no extra dependency. Every other scheme goes through fsspec.

A branch whose config predates ``cmfgit remote add`` (the remote was added on
another branch, or by another site) names no data remote. The data commands
then use the data remotes of the default branch's config: the git remote's
``HEAD`` (``origin/main``), else its ``main`` or ``master``, else the local
``main`` or ``master``; and say which on stderr. (The global view ``cmf/global``
holds records only, no config, so it is not where they are.) The branch's own
config wins as soon as it names one.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl, unquote, urlsplit

from cmfgit import gitutil
from cmfgit.config import load_document, save_document
from cmfgit.errors import RecordError, RemoteError, UsageError
from cmfgit.repo import Repo

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_SECRET_QUERY = re.compile(r"pass|secret|token|sig|credential|key", re.I)
CREDENTIALS_HELP = (
    "credentials never go in .cmf/config.yaml (it is committed): use the environment, ~/.aws, "
    "the ssh agent or ~/.ssh/config, or this clone's git config 'cmfgit.remote.NAME.OPTION'"
)
OPTIONS = ("endpoint", "layout", "dvc_copies")  # committed per-remote settings besides url
LAYOUTS = ("blake3", "dvc")  # dvc: DVC's (and so CMF's) files/md5/<2>/<30>, read for md5 artifacts
_TRUE = ("true", "yes", "1", "on")

# Schemes and the extra that brings their fsspec back-end.
EXTRAS = {"s3": "s3", "ssh": "ssh", "sftp": "ssh", "http": "http", "https": "http", "gs": "gcs", "gcs": "gcs"}


class Backend(Protocol):
    """What a data remote can do; keys are ``blake3/<2 hex>/<62 hex>``."""

    name: str
    url: str
    read_only: bool
    layout: str  # 'blake3', or 'dvc' (md5 objects only, read-only for cmfgit)
    dvc_copies: bool  # a blake3 remote that also holds DVC's layout: md5 copies written on push, and read

    def missing(self, keys: list[str]) -> set[str]:
        """Those of ``keys`` the remote does not have."""

    def upload(self, local: str, key: str) -> None:
        """Put the file ``local`` at ``key``, appearing whole or not at all."""

    def download(self, key: str, target: str) -> tuple[str, str, int]:
        """Write ``key`` to a temp file beside ``target``, hashing as it goes:
        ``(temp, blake3 hex, size)``; MissingObjectError if it is absent."""

    def clean_temps(self, older_than: float = ..., everywhere: bool = False) -> int:
        """Remove the temp files of killed uploads (not written for ``older_than``
        seconds) where this back-end uploaded, or everywhere: how many."""

    def close(self) -> None: ...


@dataclass
class RemoteSpec:
    name: str
    url: str
    options: dict[str, str] = field(default_factory=dict)
    default: bool = False

    @property
    def scheme(self) -> str:
        return scheme_of(self.url)

    @property
    def layout(self) -> str:
        return self.options.get("layout") or "blake3"

    @property
    def dvc_copies(self) -> bool:
        return str(self.options.get("dvc_copies", "")).lower() in _TRUE


def scheme_of(url: str) -> str:
    """``''`` for a local path (including ``file://``), else the URL's scheme."""
    found = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", url)
    if found is None:
        return ""
    scheme = found.group(1).lower()
    return "" if scheme == "file" else scheme


def check_url(url: str) -> str:
    """``url`` if it may be committed; a UsageError if it carries credentials."""
    text = url.strip()
    if not text:
        raise UsageError("a data remote needs a URL or a path")
    if any(c in text for c in "\n\r\t"):
        raise UsageError("a data remote URL may not contain control characters")
    if "://" in text:
        parts = urlsplit(text)
        if parts.password is not None:
            raise UsageError(f"the URL carries a password; {CREDENTIALS_HELP}")
        if any(_SECRET_QUERY.search(k) for k, _ in parse_qsl(parts.query, keep_blank_values=True)):
            raise UsageError(f"the URL's query carries a secret; {CREDENTIALS_HELP}")
    return text


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise UsageError(f"'{name}' is not a remote name (letters, digits, '.', '_', '-'; at most 64)")
    return name


def _data_section(doc: dict[str, Any], where: str) -> dict[str, Any]:
    data = doc.get("data") or {}
    if not isinstance(data, dict):
        raise RecordError(where, "'data' must be a mapping")
    remotes = data.get("remotes") or {}
    if not isinstance(remotes, dict) or not all(isinstance(v, dict) for v in remotes.values()):
        raise RecordError(where, "'data.remotes' must map names to {url: ...}")
    return data


def remotes(repo: Repo) -> list[RemoteSpec]:
    """The data remotes of the config, by name."""
    where = str(repo.config_path)
    return _specs(_data_section(load_document(repo), where), where)


_NOTED: dict[Path, str] = {}


def _git_remote(repo: Repo) -> str:
    branch = gitutil.git(["symbolic-ref", "-q", "--short", "HEAD"], repo.root, check=False).decode().strip()
    configured = gitutil.config_get(repo.root, f"branch.{branch}.remote") if branch else None
    return configured if configured and configured != "." else "origin"


def fallback(repo: Repo) -> tuple[str, list[RemoteSpec]] | None:
    """(where, remotes) from the default branch's config, for a branch whose config names none."""
    from cmfgit import canonical

    origin = _git_remote(repo)
    head = gitutil.git(["symbolic-ref", "-q", f"refs/remotes/{origin}/HEAD"], repo.root, check=False).decode().strip()
    candidates = [head] if head else []
    candidates += [
        f"refs/remotes/{origin}/main",
        f"refs/remotes/{origin}/master",
        "refs/heads/main",
        "refs/heads/master",
    ]
    current = gitutil.git(["symbolic-ref", "-q", "HEAD"], repo.root, check=False).decode().strip()
    for ref in dict.fromkeys(c for c in candidates if c != current):
        raw = gitutil.git(["cat-file", "-p", f"{ref}:.cmf/config.yaml"], repo.root, check=False)
        if not raw:
            continue
        shown = ref.removeprefix("refs/remotes/").removeprefix("refs/heads/")
        where = f"{shown}:.cmf/config.yaml"
        doc = canonical.load(raw, where)
        if not isinstance(doc, dict):
            continue
        found = _specs(_data_section(doc, where), where)
        if found:
            return shown, found
    return None


def effective(repo: Repo) -> list[RemoteSpec]:
    """The config's data remotes, else (with a note on stderr) the default branch's."""
    known = remotes(repo)
    if known:
        return known
    found = fallback(repo)
    if found is None:
        return []
    import sys

    if _NOTED.get(repo.root) == found[0]:
        return found[1]
    _NOTED[repo.root] = found[0]  # said once per command, however often it is asked
    print(
        f"cmfgit: note: this branch's .cmf/config.yaml names no data remote; using the data remotes of"
        f" {found[0]}'s (merge it, or 'cmfgit remote add', to keep them here)",
        file=sys.stderr,
    )
    return found[1]


def _specs(data: dict[str, Any], where: str) -> list[RemoteSpec]:
    default = data.get("remote")
    found = []
    for name, body in sorted((data.get("remotes") or {}).items()):
        url = body.get("url")
        if not isinstance(url, str) or not url:
            raise RecordError(where, f"data remote '{name}' has no url")
        options = {k: str(v) for k, v in body.items() if k != "url" and v is not None}
        found.append(RemoteSpec(str(name), url, options, default == name))
    return found


def add(repo: Repo, name: str, url: str, default: bool = False, options: Mapping[str, str] | None = None) -> RemoteSpec:
    check_name(name)
    url = check_url(url)
    for key, value in (options or {}).items():
        if key not in OPTIONS:
            raise UsageError(f"unknown data remote option '{key}'")
        if key == "layout" and value not in LAYOUTS:
            raise UsageError(f"--layout must be {' or '.join(LAYOUTS)}")
        if key == "dvc_copies" and value and (options or {}).get("layout") == "dvc":
            raise UsageError(
                "--dvc-copies is for a cmfgit remote: it then holds DVC's layout too (and is read for md5 "
                "artifacts), so --layout dvc is not needed"
            )
        if "://" in value:
            check_url(value)
    doc = load_document(repo)
    data = dict(_data_section(doc, str(repo.config_path)))
    table = dict(data.get("remotes") or {})
    if name in table:
        raise UsageError(f"data remote '{name}' already exists ({table[name].get('url')}); remove it first")
    table[name] = {"url": url, **{k: v for k, v in (options or {}).items() if v}}
    data["remotes"] = table
    if default or len(table) == 1:
        data["remote"] = name
    doc["data"] = data
    save_document(repo, doc)
    return RemoteSpec(name, url, dict(options or {}), data.get("remote") == name)


def remove(repo: Repo, name: str) -> RemoteSpec:
    doc = load_document(repo)
    data = dict(_data_section(doc, str(repo.config_path)))
    table = dict(data.get("remotes") or {})
    if name not in table:
        raise UsageError(f"no data remote '{name}' (see 'cmfgit remote list')")
    body = table.pop(name)
    data["remotes"] = table
    if data.get("remote") == name:
        data.pop("remote")
    doc["data"] = data
    save_document(repo, doc)
    return RemoteSpec(name, str(body.get("url")))


def resolve(repo: Repo, name: str | None) -> RemoteSpec:
    """The remote called ``name``, else the default one, else the only one."""
    known = effective(repo)
    if name is not None:
        for spec in known:
            if spec.name == name:
                return spec
        raise UsageError(f"no data remote '{name}' (see 'cmfgit remote list')")
    for spec in known:
        if spec.default:
            return spec
    if len(known) == 1:
        return known[0]
    if not known:
        raise UsageError("no data remote: add one with 'cmfgit remote add NAME URL'")
    raise UsageError("several data remotes and no default: pass -r NAME, or 'cmfgit remote add ... --default'")


def clone_options(repo: Repo, name: str) -> dict[str, str]:
    """This clone's ``cmfgit.remote.<name>.*`` git config: credentials and options never committed."""
    prefix = f"cmfgit.remote.{name}."
    out = gitutil.git(["config", "--get-regexp", "^" + re.escape(prefix)], repo.root, check=False)
    found = {}
    for line in out.decode("utf-8", "replace").splitlines():
        key, _, value = line.partition(" ")
        found[key[len(prefix) :]] = value
    return found


def local_root(repo: Repo, url: str) -> Path:
    """The directory of a local remote: a path (relative to the repository root) or file:// URL."""
    if url.lower().startswith("file://"):
        path = unquote(urlsplit(url).path)
    else:
        path = url
    full = Path(os.path.expanduser(path))
    return full if full.is_absolute() else repo.root / full


def open_backend(repo: Repo, spec: RemoteSpec) -> Backend:
    """The back-end of ``spec``; a RemoteError if it needs a package that is missing."""
    if spec.scheme == "":
        from cmfgit.data.local import LocalBackend

        backend: Backend = LocalBackend(spec.name, spec.url, local_root(repo, spec.url))
        backend.layout = spec.layout
        backend.dvc_copies = spec.dvc_copies
        return backend
    try:
        import fsspec  # noqa: F401
    except ImportError:
        extra = EXTRAS.get(spec.scheme)
        hint = f"pip install 'cmfgit[{extra}]'" if extra else "pip install fsspec and its back-end for this scheme"
        raise RemoteError(spec.name, f"the {spec.scheme}:// scheme needs fsspec: {hint}") from None
    from cmfgit.data.fsspec_remote import FsspecBackend

    options = {k: v for k, v in spec.options.items() if k not in ("layout", "dvc_copies")}
    fs_backend: Backend = FsspecBackend(spec.name, spec.url, {**options, **clone_options(repo, spec.name)})
    fs_backend.layout = spec.layout
    fs_backend.dvc_copies = spec.dvc_copies
    return fs_backend


def object_key(hexhash: str) -> str:
    return f"blake3/{hexhash[:2]}/{hexhash[2:]}"


def dvc_key(md5hex: str) -> str:
    """Where DVC 3 (and so CMF) keeps a file by its md5 on a remote."""
    return f"files/md5/{md5hex[:2]}/{md5hex[2:]}"
